//! Resolves the words of a query against the index: which index terms stand for each
//! word (typo corrections included), how often each term occurs per text field, and
//! which words are worth scoring.
//!
//! Every later step (building the scoring query, judging confidence, naming matched
//! terms) reads these figures instead of asking the term dictionaries again.

use std::collections::HashMap;
use std::sync::OnceLock;

use levenshtein_automata::{Distance, LevenshteinAutomatonBuilder, DFA};
use tantivy::schema::Field;
use tantivy::{Searcher, Term};

use super::index::IndexError;
use super::query::{ContentQuery, SearchTuning};
use super::term_lookups::TermLookups;
use super::terms::scoped;

/// The text fields a word is searched in, in the order of [`IndexTerm::doc_freqs`]:
/// title, summary, body.
pub(crate) type TextFields = [(Field, f32); 3];

/// One index term standing for a query word.
#[derive(Debug, Clone)]
pub(crate) struct IndexTerm {
    /// Unscoped index term.
    pub text: String,
    /// Weight relative to the word as typed (below 1 for typo corrections).
    pub weight: f32,
    /// Tenant document frequency in title, summary and body.
    pub doc_freqs: [u64; 3],
}

impl IndexTerm {
    pub fn is_indexed(&self) -> bool {
        self.doc_freqs.iter().any(|doc_freq| *doc_freq > 0)
    }
}

/// A query word resolved against the index.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedWord {
    /// The word as typed first, then its typo corrections.
    pub index_terms: Vec<IndexTerm>,
    /// Inverse document frequency of the word's best index term (the weight of a word
    /// the content does not have at all is set by `unknown_word_weight`).
    pub idf: f32,
    pub occurrences: u32,
    pub is_being_typed: bool,
    pub is_stop_word: bool,
    /// Whether the scoring query searches this word (see [`select_scored_words`]).
    pub is_scored: bool,
}

/// Looks every query word up in the index; a word the index does not know is given up
/// to two close terms (typo tolerance).
pub(crate) fn resolve_words(
    lookups: &TermLookups<'_>,
    query: &ContentQuery,
    scope: &str,
    text_fields: &TextFields,
    prefixes_field: Field,
    tuning: &SearchTuning,
    total_docs: f32,
) -> Result<Vec<ResolvedWord>, IndexError> {
    let mut words = Vec::with_capacity(query.terms.len());
    for query_term in &query.terms {
        let as_typed = IndexTerm {
            doc_freqs: doc_freqs(lookups, text_fields, &scoped(scope, &query_term.term))?,
            text: query_term.term.clone(),
            weight: 1.0,
        };
        let mut best_doc_freq = max_doc_freq(&as_typed);
        let mut index_terms = vec![as_typed];
        if best_doc_freq == 0 && query_term.is_being_typed {
            if let Some(prefix) = &query.prefix {
                best_doc_freq = lookups.doc_freq(&Term::from_field_text(
                    prefixes_field,
                    &scoped(scope, prefix),
                ))?;
            }
        }
        // A word being typed that starts no indexed word may be a finished word with a
        // typo ("pasword" at the end of a draft): correct it like any other.
        if best_doc_freq == 0 && query_term.typo_tolerant {
            let char_count = query_term.term.chars().count();
            let distance = if char_count >= tuning.two_typos_min_chars {
                2
            } else {
                1
            };
            for correction in typo_corrections(
                lookups.searcher(),
                text_fields,
                scope,
                &query_term.term,
                distance,
            )? {
                best_doc_freq = best_doc_freq.max(max_doc_freq(&correction));
                index_terms.push(IndexTerm {
                    weight: tuning.typo_weight,
                    ..correction
                });
            }
        }
        words.push(ResolvedWord {
            index_terms,
            idf: if best_doc_freq == 0 {
                // A word the tenant's content does not have at all is strong evidence
                // that the draft is about something else.
                inverse_document_frequency(0.0, total_docs) * tuning.unknown_word_weight
            } else {
                inverse_document_frequency(best_doc_freq as f32, total_docs)
            },
            occurrences: query_term.occurrences,
            is_being_typed: query_term.is_being_typed,
            is_stop_word: query_term.is_stop_word,
            is_scored: false,
        });
    }
    select_scored_words(
        &mut words,
        tuning.max_scored_words,
        tuning.max_content_words_for_stop_words,
    );
    Ok(words)
}

/// Marks the words the scoring query searches in every text field: the
/// `max_scored_words` rarest content words the index has, and the stop words too when
/// the draft has at most `max_content_words_for_stop_words` content words ("not
/// happening", "who made you": there the stop words are the meaning). In longer drafts
/// stop words match nearly every document and would cost most of the search, so they
/// only re-rank the candidates the other words found (see `searcher.rs`).
///
/// Words left out still count for confidence: in the draft's weight, so a long draft
/// about something else still abstains, and in the best hit's score it is compared with
/// (`confidence_score` in `searcher.rs`), so a long draft about this can still pass.
pub(crate) fn select_scored_words(
    words: &mut [ResolvedWord],
    max_scored_words: usize,
    max_content_words_for_stop_words: usize,
) {
    let is_candidate = |word: &ResolvedWord, stop_words: bool| {
        word.is_stop_word == stop_words && word.index_terms.iter().any(IndexTerm::is_indexed)
    };
    let has_content_word = words.iter().any(|word| is_candidate(word, false));
    let mut candidates: Vec<usize> = (0..words.len())
        .filter(|position| is_candidate(&words[*position], !has_content_word))
        .collect();
    // Rarest first; the earlier word wins a tie so the choice is stable.
    candidates.sort_by(|left, right| {
        words[*right]
            .idf
            .total_cmp(&words[*left].idf)
            .then(left.cmp(right))
    });
    for position in candidates.into_iter().take(max_scored_words) {
        words[position].is_scored = true;
    }
    let content_words = words
        .iter()
        .filter(|word| is_candidate(word, false))
        .count();
    if content_words <= max_content_words_for_stop_words {
        for word in words.iter_mut() {
            if is_candidate(word, true) {
                word.is_scored = true;
            }
        }
    }
}

fn doc_freqs(
    lookups: &TermLookups<'_>,
    text_fields: &TextFields,
    scoped_term: &str,
) -> Result<[u64; 3], IndexError> {
    let mut doc_freqs = [0; 3];
    for (slot, (field, _)) in doc_freqs.iter_mut().zip(text_fields) {
        *slot = lookups.doc_freq(&Term::from_field_text(*field, scoped_term))?;
    }
    Ok(doc_freqs)
}

fn max_doc_freq(term: &IndexTerm) -> u64 {
    term.doc_freqs.iter().copied().max().unwrap_or(0)
}

/// BM25's inverse document frequency; an unknown word weighs as much as the rarest one.
pub(crate) fn inverse_document_frequency(doc_freq: f32, total_docs: f32) -> f32 {
    (1.0 + (total_docs - doc_freq + 0.5) / (doc_freq + 0.5)).ln()
}

/// Returns up to two index terms within `distance` edits of `term`, most frequent first.
fn typo_corrections(
    searcher: &Searcher,
    text_fields: &TextFields,
    scope: &str,
    term: &str,
    distance: u8,
) -> Result<Vec<IndexTerm>, IndexError> {
    let dfa = levenshtein_builder(distance).build_dfa(&scoped(scope, term));
    let mut candidates: HashMap<String, [u64; 3]> = HashMap::new();
    for segment_reader in searcher.segment_readers() {
        for (slot, (field, _)) in text_fields.iter().enumerate() {
            let inverted_index = segment_reader.inverted_index(*field)?;
            let mut stream = inverted_index
                .terms()
                .search(DfaAutomaton(&dfa))
                .into_stream()
                .map_err(tantivy::TantivyError::from)?;
            while stream.advance() {
                let Some(candidate) = stream.key().strip_prefix(scope.as_bytes()) else {
                    continue;
                };
                let Ok(candidate) = std::str::from_utf8(candidate) else {
                    continue;
                };
                if candidate == term {
                    continue;
                }
                let doc_freqs = candidates.entry(candidate.to_owned()).or_default();
                // Summed over segments, like `Searcher::doc_freq` (deleted documents
                // included).
                doc_freqs[slot] += u64::from(stream.value().doc_freq);
            }
        }
    }
    let mut ranked: Vec<IndexTerm> = candidates
        .into_iter()
        .map(|(text, doc_freqs)| IndexTerm {
            text,
            weight: 1.0,
            doc_freqs,
        })
        .collect();
    ranked.sort_by(|left, right| {
        max_doc_freq(right)
            .cmp(&max_doc_freq(left))
            .then_with(|| left.text.cmp(&right.text))
    });
    ranked.truncate(2);
    Ok(ranked)
}

fn levenshtein_builder(distance: u8) -> &'static LevenshteinAutomatonBuilder {
    static ONE_EDIT: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    static TWO_EDITS: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    if distance >= 2 {
        TWO_EDITS.get_or_init(|| LevenshteinAutomatonBuilder::new(2, true))
    } else {
        ONE_EDIT.get_or_init(|| LevenshteinAutomatonBuilder::new(1, true))
    }
}

/// Lets tantivy's term dictionary walk a Levenshtein automaton.
struct DfaAutomaton<'dfa>(&'dfa DFA);

impl tantivy_fst::Automaton for DfaAutomaton<'_> {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != levenshtein_automata::SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(idf: f32, is_stop_word: bool, indexed: bool) -> ResolvedWord {
        ResolvedWord {
            index_terms: vec![IndexTerm {
                text: String::new(),
                weight: 1.0,
                doc_freqs: [0, 0, u64::from(indexed)],
            }],
            idf,
            occurrences: 1,
            is_being_typed: false,
            is_stop_word,
            is_scored: false,
        }
    }

    fn scored(words: &[ResolvedWord]) -> Vec<bool> {
        words.iter().map(|word| word.is_scored).collect()
    }

    #[test]
    fn the_rarest_content_words_are_scored() {
        let mut words = vec![
            word(1.0, false, true),
            word(3.0, false, true),
            word(0.1, true, true),
            word(2.0, false, true),
            word(9.0, false, false),
        ];
        select_scored_words(&mut words, 2, 1);
        assert_eq!(scored(&words), [false, true, false, true, false]);
    }

    #[test]
    fn stop_words_are_scored_when_nothing_else_is_known() {
        let mut words = vec![word(0.1, true, true), word(9.0, false, false)];
        select_scored_words(&mut words, 12, 0);
        assert_eq!(scored(&words), [true, false]);
    }

    #[test]
    fn stop_words_are_scored_in_drafts_of_few_content_words() {
        let mut words = vec![word(0.1, true, true), word(3.0, false, true)];
        select_scored_words(&mut words, 12, 1);
        assert_eq!(scored(&words), [true, true]);
        let mut longer = vec![
            word(0.1, true, true),
            word(3.0, false, true),
            word(2.0, false, true),
        ];
        select_scored_words(&mut longer, 12, 1);
        assert_eq!(scored(&longer), [false, true, true]);
    }
}
