//! Turns a draft ticket into a structured query: analysed terms, the word still being
//! typed, and filters.
//!
//! Customer text never reaches a query-syntax parser. tantivy's parser treats `title:`,
//! `-`, quotes and parentheses as syntax (and deeply nested parentheses can abort the
//! process), so the query is assembled from terms here instead.

use crate::domain::{ContentKind, DraftTicket, TenantId};
use crate::text::analysis::{fold, for_each_word, Analyzer, Word};
use crate::text::language::{primary_subtag, Language};
use crate::text::normalizer::normalize_draft;

use super::document::{MAX_PREFIX_CHARS, MIN_PREFIX_CHARS};

/// The knobs of matching and ranking; defaults are tuned on `../shared/relevance/` (see
/// README, "Relevance").
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchTuning {
    /// At most this many characters of a normalized draft are searched.
    pub max_draft_chars: usize,
    /// At most this many distinct terms are read from a draft (the first ones typed).
    pub max_query_terms: usize,
    /// At most this many of them, the rarest, are scored (and as many word pairs); the
    /// others still count for confidence. Scoring cost grows with every word, relevance
    /// barely after a dozen.
    pub max_scored_words: usize,
    /// Drafts with at most this many content words are searched with their stop words
    /// in every field ("not happening"); longer ones use body stop words only to
    /// re-rank, since those match nearly every document.
    pub max_content_words_for_stop_words: usize,
    pub title_boost: f32,
    pub summary_boost: f32,
    pub body_boost: f32,
    /// BM25's term-frequency saturation: how much a word used many times in a field
    /// counts over one used once (tantivy's 1.2 saturates soonest).
    pub bm25_k1: f32,
    /// The `k1` of the best hit's score that confidence is computed from (see
    /// `searcher.rs`, `confidence_score`).
    pub confidence_bm25_k1: f32,
    /// Weight of a neighbouring word pair of the draft found in a document.
    pub pair_boost: f32,
    /// Weight of a match of the word still being typed against title and summary words.
    pub prefix_boost: f32,
    /// Weight of a typo correction relative to the word as typed.
    pub typo_weight: f32,
    /// Weight of a stop word ("how", "not") relative to other words.
    pub stop_word_weight: f32,
    /// Weight, in confidence, of a word the content does not contain at all, relative to
    /// the rarest word it does contain.
    pub unknown_word_weight: f32,
    /// Words of at least this many characters tolerate one typo...
    pub typo_min_chars: usize,
    /// ...and words of at least this many, two.
    pub two_typos_min_chars: usize,
    /// At most this many results from one course.
    pub max_results_per_course: usize,
    /// Confidence is the best hit's score divided by the draft's weight (the inverse
    /// document frequencies of its words), times the draft's word count raised to this
    /// power: long drafts are rarely matched in full ...
    pub draft_length_exponent: f32,
    /// ... relative to this, about what a draft matched in full reaches (confidence 1).
    pub full_match_score: f32,
    /// A best hit containing less than this share of the draft's weight has its
    /// coverage as confidence (see `confidence.rs`).
    pub min_coverage: f32,
    /// A word in at least this share of a tenant's documents ...
    pub common_word_share: f32,
    /// ... and in at least this many is scored on the best candidates of the draft's
    /// other words only, not in every document that has it (`common_words.rs`).
    pub min_common_word_documents: u64,
    /// Those candidates are this many times the candidates the search needs.
    pub common_word_pool_factor: usize,
    /// Abstain when the confidence is below this ...
    pub min_confidence: f32,
    /// ... or the best hit scores below this.
    pub min_score: f32,
}

impl Default for SearchTuning {
    fn default() -> Self {
        SearchTuning {
            max_draft_chars: 1_000,
            max_query_terms: 64,
            max_scored_words: 12,
            max_content_words_for_stop_words: 2,
            title_boost: 0.75,
            summary_boost: 1.0,
            body_boost: 1.0,
            bm25_k1: 2.0,
            confidence_bm25_k1: 1.2,
            pair_boost: 0.3,
            prefix_boost: 0.3,
            typo_weight: 0.6,
            stop_word_weight: 0.8,
            unknown_word_weight: 1.0,
            typo_min_chars: 5,
            two_typos_min_chars: 9,
            max_results_per_course: 2,
            draft_length_exponent: 0.3,
            full_match_score: 4.0,
            min_coverage: 0.15,
            common_word_share: 0.2,
            min_common_word_documents: 10_000,
            common_word_pool_factor: 4,
            min_confidence: 0.22,
            min_score: 0.0,
        }
    }
}

/// Words longer than this are never corrected for typos: long tokens are identifiers,
/// codes or pasted noise, and the automaton for them is expensive.
pub const MAX_TYPO_TOLERANT_CHARS: usize = 20;

/// Optional restrictions of which documents may be suggested.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentFilters {
    /// Primary language subtag (`de` for `de-AT`).
    pub language: Option<String>,
    pub audience: Option<String>,
    pub product: Option<String>,
    pub kinds: Vec<ContentKind>,
}

/// One distinct analysed word of the draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryTerm {
    /// The index term (stemmed, folded), without tenant scope.
    pub term: String,
    /// How often the draft uses it.
    pub occurrences: u32,
    /// Whether a missing term may be replaced by a close one from the index (for the
    /// word being typed, only when it starts no indexed word either).
    pub typo_tolerant: bool,
    /// True for the word still being typed: it also matches through `prefix`.
    pub is_being_typed: bool,
    /// A stop word of the query's language: searched, with less weight.
    pub is_stop_word: bool,
}

/// A draft ready to be searched.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentQuery {
    pub tenant: TenantId,
    pub language: Language,
    pub terms: Vec<QueryTerm>,
    /// Index terms of neighbouring word pairs of the draft (the word being typed left
    /// out), matched against the document's word pairs.
    pub pairs: Vec<String>,
    /// The folded word still being typed, matched against indexed title and summary
    /// prefixes.
    pub prefix: Option<String>,
    pub filters: ContentFilters,
    pub limit: usize,
    /// Documents never returned: those whose id or course (diversity group) is here.
    pub excluded: std::collections::BTreeSet<String>,
    /// True when the draft was longer than the searched budget.
    pub truncated: bool,
}

impl ContentQuery {
    /// Builds the query for `draft` of `tenant`. `default_locale` decides the analysis
    /// language when the draft names none.
    pub fn from_draft(
        tenant: TenantId,
        draft: &DraftTicket,
        default_locale: &str,
        tuning: &SearchTuning,
    ) -> ContentQuery {
        let normalized = normalize_draft(&draft.text, tuning.max_draft_chars);
        let language = Language::from_locale(draft.locale.as_deref().unwrap_or(default_locale));
        let analyzer = Analyzer::of(language);

        let mut words: Vec<Word<'_>> = Vec::new();
        for_each_word(&normalized.text, |word| words.push(word));
        let last_word_index = words.len().checked_sub(1);

        let mut terms: Vec<QueryTerm> = Vec::new();
        for (index, word) in words.iter().enumerate() {
            let is_being_typed = normalized.last_token_is_prefix && Some(index) == last_word_index;
            let term = analyzer.term(word.surface);
            if let Some(existing) = terms.iter_mut().find(|existing| existing.term == term) {
                existing.occurrences += 1;
                existing.is_being_typed &= is_being_typed;
                continue;
            }
            if terms.len() == tuning.max_query_terms {
                continue;
            }
            let char_count = word.surface.chars().count();
            terms.push(QueryTerm {
                typo_tolerant: char_count >= tuning.typo_min_chars
                    && char_count <= MAX_TYPO_TOLERANT_CHARS,
                is_stop_word: analyzer.is_stop_word(word.surface),
                term,
                occurrences: 1,
                is_being_typed,
            });
        }

        let searched_text = match (normalized.last_token_is_prefix, words.last()) {
            (true, Some(last)) => &normalized.text[..last.offset_from],
            _ => normalized.text.as_str(),
        };
        let mut pairs: Vec<String> = Vec::new();
        analyzer.for_each_pair(searched_text, |pair| {
            if pairs.len() < tuning.max_query_terms && !pairs.contains(&pair) {
                pairs.push(pair);
            }
        });

        let prefix = match (normalized.last_token_is_prefix, words.last()) {
            (true, Some(last)) => {
                let folded: String = fold(last.surface).chars().take(MAX_PREFIX_CHARS).collect();
                let long_enough = folded.chars().count() >= MIN_PREFIX_CHARS;
                (long_enough && !analyzer.is_stop_word(last.surface)).then_some(folded)
            }
            _ => None,
        };

        ContentQuery {
            tenant,
            language,
            terms,
            pairs,
            prefix,
            filters: ContentFilters {
                language: draft.locale.as_deref().map(primary_subtag),
                audience: draft.audience.clone(),
                product: draft.product.clone(),
                kinds: draft.kinds.clone(),
            },
            limit: draft.limit,
            excluded: draft.excluded_content.clone(),
            truncated: normalized.truncated,
        }
    }

    /// Returns whether there is anything to search for.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty() && self.prefix.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SuggestRequestBody;

    fn query(text: &str) -> ContentQuery {
        let body = SuggestRequestBody {
            text: Some(text.to_owned()),
            ..Default::default()
        };
        let draft = DraftTicket::parse(body, 3, 20).unwrap();
        ContentQuery::from_draft(
            TenantId::parse("t").unwrap(),
            &draft,
            "en",
            &SearchTuning::default(),
        )
    }

    #[test]
    fn the_word_being_typed_becomes_a_prefix() {
        let built = query("cannot reset my passw");
        assert_eq!(built.prefix.as_deref(), Some("passw"));
        let typed = built
            .terms
            .iter()
            .find(|term| term.term == "passw")
            .unwrap();
        assert!(typed.is_being_typed);
        assert!(typed.typo_tolerant);
    }

    #[test]
    fn query_syntax_is_just_text() {
        let built = query("title: (a:(^ -* \"unbalanced");
        assert_eq!(
            built
                .terms
                .iter()
                .map(|term| term.term.as_str())
                .collect::<Vec<_>>(),
            ["titl", "a", "unbalanc"]
        );
    }

    #[test]
    fn repeated_words_count_and_terms_are_capped() {
        let built = query("invoice invoice invoice");
        assert_eq!(built.terms.len(), 1);
        assert_eq!(built.terms[0].occurrences, 3);
        let many: String = (0..200).map(|number| format!("word{number} ")).collect();
        assert_eq!(query(&many).terms.len(), 64);
    }

    #[test]
    fn a_stop_word_being_typed_is_no_prefix() {
        let built = query("how do i");
        assert_eq!(built.prefix, None);
        assert!(built.terms.iter().all(|term| term.is_stop_word));
    }
}
