//! How sure deflect is that its best hit answers the draft, and so whether to abstain.
//!
//! A raw BM25 score says little on its own: it grows with the length of the draft and
//! the rarity of its words. What separates "nothing fits" from "this fits" is how much
//! of the draft the best document explains, weighed by how telling each word is.

use super::document_matches::DocumentMatches;
use super::words::ResolvedWord;

/// Returns the share of the query's weight (inverse document frequency) that the best
/// hit contains, from 0 to 1.
///
/// Stop words count with `stop_word_weight`, like in scoring; a word the content does
/// not have at all counts fully against the hit.
pub(crate) fn coverage(
    words: &[ResolvedWord],
    best_hit: &DocumentMatches,
    stop_word_weight: f32,
) -> f32 {
    let mut total = 0.0;
    let mut found = 0.0;
    for (position, word) in words.iter().enumerate() {
        let weight = if word.is_stop_word {
            word.idf * stop_word_weight
        } else {
            word.idf
        };
        total += weight;
        if best_hit.has_word(words, position) {
            found += weight;
        }
    }
    if total == 0.0 {
        return if best_hit.prefix { 1.0 } else { 0.0 };
    }
    found / total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::words::IndexTerm;

    fn word(idf: f32, is_stop_word: bool) -> ResolvedWord {
        ResolvedWord {
            index_terms: vec![IndexTerm {
                text: String::new(),
                weight: 1.0,
                doc_freqs: [1, 1, 1],
            }],
            idf,
            occurrences: 1,
            is_being_typed: false,
            is_stop_word,
            is_scored: true,
        }
    }

    #[test]
    fn coverage_weighs_words_by_rarity() {
        let words = [word(3.0, false), word(1.0, false)];
        let rare_found = DocumentMatches {
            terms: vec![vec![true], vec![false]],
            prefix: false,
        };
        assert!((coverage(&words, &rare_found, 0.5) - 0.75).abs() < 1e-6);
    }

    #[test]
    fn stop_words_weigh_less() {
        let words = [word(2.0, false), word(2.0, true)];
        let stop_word_missing = DocumentMatches {
            terms: vec![vec![true], vec![false]],
            prefix: false,
        };
        assert!((coverage(&words, &stop_word_missing, 0.5) - 2.0 / 3.0).abs() < 1e-6);
    }
}
