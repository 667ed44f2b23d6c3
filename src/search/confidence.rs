//! How sure deflect is that its best hit answers the draft, and so whether to abstain.
//!
//! A raw BM25 score says little on its own: it grows with the length of the draft and
//! the rarity of its words. Divided by what the draft weighs (the inverse document
//! frequencies of its words), it says how much of the draft the best hit explains, and
//! how strongly: a word found once in a long body counts less than one found in a title,
//! many times or next to its neighbour in the draft. Whether the words are there at all
//! (coverage) separates "nothing fits" from "this fits" less well on the relevance sets:
//! documents made of many examples or long threads contain most everyday words somewhere.
//! Both score and weight scale with the inverse document frequencies, so the ratio means
//! the same for a catalog of three articles and one of thousands.

use super::document_matches::DocumentMatches;
use super::query::SearchTuning;
use super::words::ResolvedWord;

/// What confidence is computed from; `deflect eval --dump` writes it for tuning.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ConfidenceInputs {
    /// Score of the best hit (0 when nothing was found).
    pub best_score: f32,
    /// Sum of the weights of the draft's words (see [`word_weight`]).
    pub draft_weight: f32,
    /// Distinct words of the draft, stop words included.
    pub draft_words: usize,
    /// Share of the draft's weight that the best hit contains (see [`coverage`]).
    pub coverage: f32,
}

impl ConfidenceInputs {
    /// Returns the inputs for the words of a draft, before any hit is known.
    pub(crate) fn of_draft(words: &[ResolvedWord], stop_word_weight: f32) -> ConfidenceInputs {
        ConfidenceInputs {
            best_score: 0.0,
            draft_weight: words
                .iter()
                .map(|word| word_weight(word, stop_word_weight))
                .sum(),
            draft_words: words.len(),
            coverage: 0.0,
        }
    }
}

/// Returns a word's weight in confidence: its inverse document frequency, scaled down
/// for a stop word like in scoring. A word the content lacks weighs as set by
/// `unknown_word_weight` (see `words.rs`).
pub(crate) fn word_weight(word: &ResolvedWord, stop_word_weight: f32) -> f32 {
    if word.is_stop_word {
        word.idf * stop_word_weight
    } else {
        word.idf
    }
}

/// Returns how well the best hit explains the draft, from 0 to 1: its score per unit of
/// the draft's weight, relative to `full_match_score` (about what a draft whose every
/// word the hit contains scores).
///
/// The score per weight is multiplied by the draft's word count raised to
/// `draft_length_exponent`: a long draft carries words no document has (names,
/// greetings, detail), so even the right document rarely matches it in full.
///
/// A hit that contains less than `min_coverage` of the draft's weight explains no more
/// than that share, however well its few shared words (often stop words: "what is the
/// weather in paris") score.
pub(crate) fn confidence(inputs: ConfidenceInputs, tuning: &SearchTuning) -> f32 {
    if inputs.best_score <= 0.0 {
        return 0.0;
    }
    if inputs.coverage < tuning.min_coverage {
        return inputs.coverage.max(0.0);
    }
    if inputs.draft_weight <= 0.0 || tuning.full_match_score <= 0.0 {
        // Nothing to measure against (a draft of weightless words that still matched).
        return 1.0;
    }
    let length_allowance = (inputs.draft_words.max(1) as f32).powf(tuning.draft_length_exponent);
    let per_weight = inputs.best_score / inputs.draft_weight * length_allowance;
    (per_weight / tuning.full_match_score).clamp(0.0, 1.0)
}

/// Returns the share of the query's weight that the best hit contains, from 0 to 1.
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
        let weight = word_weight(word, stop_word_weight);
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

    fn tuning(exponent: f32, full_match_score: f32) -> SearchTuning {
        SearchTuning {
            draft_length_exponent: exponent,
            full_match_score,
            ..SearchTuning::default()
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

    fn inputs(best_score: f32, draft_weight: f32, draft_words: usize) -> ConfidenceInputs {
        ConfidenceInputs {
            best_score,
            draft_weight,
            draft_words,
            coverage: 1.0,
        }
    }

    #[test]
    fn a_hit_containing_little_of_the_draft_is_capped_at_its_coverage() {
        let tuning = SearchTuning::default();
        let barely_covered = ConfidenceInputs {
            coverage: tuning.min_coverage / 2.0,
            ..inputs(1e6, 1.0, 1)
        };
        assert_eq!(
            confidence(barely_covered, &tuning),
            tuning.min_coverage / 2.0
        );
    }

    #[test]
    fn stop_words_weigh_less_in_the_draft() {
        let words = [word(2.0, false), word(2.0, true)];
        let draft = ConfidenceInputs::of_draft(&words, 0.5);
        assert!((draft.draft_weight - 3.0).abs() < 1e-6);
        assert_eq!(draft.draft_words, 2);
    }

    #[test]
    fn confidence_is_the_score_per_weight_relative_to_a_full_match() {
        let draft = inputs(4.0, 4.0, 4);
        assert!((confidence(draft, &tuning(0.0, 2.0)) - 0.5).abs() < 1e-6);
        // A longer draft needs less score per weight.
        assert!((confidence(draft, &tuning(0.5, 2.0)) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn the_same_score_means_less_for_a_heavier_draft() {
        let tuning = SearchTuning::default();
        assert!(
            confidence(inputs(6.0, 20.0, 4), &tuning) < confidence(inputs(6.0, 5.0, 4), &tuning)
        );
    }

    #[test]
    fn confidence_does_not_depend_on_the_scale_of_the_weights() {
        // A small catalog gives every word a low inverse document frequency, and so
        // lower scores too.
        let tuning = SearchTuning::default();
        let large_catalog = confidence(inputs(8.0, 10.0, 3), &tuning);
        let small_catalog = confidence(inputs(0.8, 1.0, 3), &tuning);
        assert!((large_catalog - small_catalog).abs() < 1e-6);
    }

    #[test]
    fn confidence_stays_between_0_and_1() {
        let tuning = SearchTuning::default();
        assert_eq!(confidence(inputs(1e6, 1.0, 1), &tuning), 1.0);
        assert_eq!(confidence(ConfidenceInputs::default(), &tuning), 0.0);
        assert_eq!(confidence(inputs(1.0, 0.0, 0), &tuning), 1.0);
    }
}
