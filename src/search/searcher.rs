//! The search path: resolves query terms against the index (typo corrections included),
//! runs one BM25 query over title, summary, body and typed prefixes, keeps results
//! diverse, cuts snippets and decides whether the best hit is good enough to show.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use levenshtein_automata::{Distance, LevenshteinAutomatonBuilder, DFA};
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{Searcher, TantivyDocument, Term};

use super::collector::FilteredTopDocs;
use super::document::StoredDocument;
use super::index::{ContentIndex, IndexError};
use super::query::{ContentQuery, SearchTuning};
use super::snippet::{best_passage, collect_matches, MatchTargets};
use super::statistics::{TenantStatistics, TenantTotalsCache};
use super::terms::{scope_of, scoped};
use crate::text::analysis::Analyzer;
use crate::text::language::Language;

/// One suggested document.
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub stored: StoredDocument,
    pub score: f32,
    /// HTML passage with matched words in `<mark>`.
    pub snippet: String,
    /// The draft's words (analysed, stop words left out) found in the document, and the
    /// word being typed as `prefix*` when it matched.
    pub matched_terms: Vec<String>,
}

/// The answer to one query.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    /// Empty when abstaining.
    pub hits: Vec<SearchHit>,
    pub abstained: bool,
    /// Share of the query's weight that the best hit covers, 0 to 1.
    pub confidence: f32,
}

/// Searches one index with one tuning. Cheap to clone; every call takes a fresh
/// tantivy `Searcher`, so it always sees the last commit.
#[derive(Clone)]
pub struct ContentSearcher {
    index: ContentIndex,
    tuning: SearchTuning,
    tenant_totals: std::sync::Arc<TenantTotalsCache>,
}

/// A query word resolved against the index: the index terms that stand for it and how
/// much it weighs.
struct ResolvedWord {
    /// (unscoped index term, weight relative to the word as typed)
    index_terms: Vec<(String, f32)>,
    /// Inverse document frequency of the word's best index term.
    idf: f32,
    occurrences: u32,
    is_being_typed: bool,
    is_stop_word: bool,
}

impl ContentSearcher {
    pub fn new(index: ContentIndex, tuning: SearchTuning) -> ContentSearcher {
        ContentSearcher {
            index,
            tuning,
            tenant_totals: Default::default(),
        }
    }

    pub fn tuning(&self) -> &SearchTuning {
        &self.tuning
    }

    /// Runs `query`. CPU-bound: call it from a blocking thread.
    pub fn search(&self, query: &ContentQuery) -> Result<SearchOutcome, IndexError> {
        let abstain = |confidence| SearchOutcome {
            hits: Vec::new(),
            abstained: true,
            confidence,
        };
        if query.is_empty() {
            return Ok(abstain(0.0));
        }
        let searcher = self.index.reader.searcher();
        let fields = self.index.schema.fields;
        let scope = scope_of(&query.tenant);
        let text_fields = [
            (fields.title, self.tuning.title_boost),
            (fields.summary, self.tuning.summary_boost),
            (fields.body, self.tuning.body_boost),
        ];
        let totals = self.tenant_totals.totals(
            &searcher,
            fields.tenant,
            &[
                fields.title,
                fields.summary,
                fields.body,
                fields.pairs,
                fields.prefixes,
            ],
            &query.tenant,
        )?;
        let total_docs = totals.documents.max(1) as f32;
        let statistics = TenantStatistics {
            searcher: &searcher,
            totals,
        };

        let words = self.resolve_words(&searcher, query, &scope, &text_fields, total_docs)?;
        let prefix_doc_freq = match &query.prefix {
            Some(prefix) => searcher.doc_freq(&Term::from_field_text(
                fields.prefixes,
                &scoped(&scope, prefix),
            ))?,
            None => 0,
        };

        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for word in &words {
            let repetition = 1.0 + 0.25 * (word.occurrences.saturating_sub(1).min(4) as f32);
            let word_weight = if word.is_stop_word {
                self.tuning.stop_word_weight * repetition
            } else {
                repetition
            };
            for (index_term, relative_weight) in &word.index_terms {
                for (field, field_boost) in text_fields {
                    let term = Term::from_field_text(field, &scoped(&scope, index_term));
                    if searcher.doc_freq(&term)? == 0 {
                        continue;
                    }
                    clauses.push((
                        Occur::Should,
                        boosted_term(term, field_boost * relative_weight * word_weight),
                    ));
                }
            }
        }
        for pair in &query.pairs {
            let term = Term::from_field_text(fields.pairs, &scoped(&scope, pair));
            if searcher.doc_freq(&term)? > 0 {
                clauses.push((Occur::Should, boosted_term(term, self.tuning.pair_boost)));
            }
        }
        if prefix_doc_freq > 0 {
            if let Some(prefix) = &query.prefix {
                let term = Term::from_field_text(fields.prefixes, &scoped(&scope, prefix));
                clauses.push((Occur::Should, boosted_term(term, self.tuning.prefix_boost)));
            }
        }
        if clauses.is_empty() {
            return Ok(abstain(0.0));
        }

        let candidates = query.limit * 3 + 5;
        let collector = FilteredTopDocs {
            limit: candidates,
            filters: &query.filters,
        };
        let top_docs = searcher.search_with_statistics_provider(
            &BooleanQuery::new(clauses),
            &collector,
            &statistics,
        )?;

        let query_terms: HashSet<String> = words
            .iter()
            .flat_map(|word| word.index_terms.iter().map(|(term, _)| term.clone()))
            .collect();
        let targets = MatchTargets {
            terms: &query_terms,
            prefix: query.prefix.as_deref(),
        };

        let mut hits: Vec<SearchHit> = Vec::with_capacity(query.limit);
        let mut per_group: HashMap<String, usize> = HashMap::new();
        let mut confidence = 0.0;
        for (score, address) in top_docs {
            if hits.len() == query.limit {
                break;
            }
            let stored = load_stored(&searcher, fields.source, address)?;
            let group_count = per_group
                .entry(stored.document.group().to_owned())
                .or_default();
            if *group_count >= self.tuning.max_results_per_course {
                continue;
            }
            *group_count += 1;

            let analyzer = Analyzer::of(Language::from_locale(&stored.document.locale));
            let mut matched = HashSet::new();
            let mut prefix_matched = false;
            for text in [
                stored.document.title.as_str(),
                stored.document.summary.as_deref().unwrap_or_default(),
                stored.body_text.as_str(),
            ] {
                prefix_matched |= collect_matches(text, analyzer, &targets, &mut matched);
            }
            prefix_matched |= stored
                .document
                .course_title
                .iter()
                .chain(stored.document.tags.iter())
                .any(|extra| collect_matches(extra, analyzer, &targets, &mut matched));

            // The best hit decides whether to abstain.
            if hits.is_empty() {
                confidence = coverage(
                    &words,
                    &matched,
                    prefix_matched,
                    self.tuning.stop_word_weight,
                );
                let too_weak =
                    score < self.tuning.min_score || confidence < self.tuning.min_confidence;
                if too_weak {
                    return Ok(abstain(confidence));
                }
            }
            let snippet_source = if stored.body_text.is_empty() {
                stored
                    .document
                    .summary
                    .as_deref()
                    .unwrap_or(&stored.document.title)
            } else {
                stored.body_text.as_str()
            };
            let snippet = best_passage(snippet_source, analyzer, &targets).html;
            let mut matched_terms: Vec<String> = words
                .iter()
                .filter(|word| !word.is_stop_word)
                .flat_map(|word| word.index_terms.iter().map(|(term, _)| term))
                .filter(|term| matched.contains(*term))
                .cloned()
                .collect();
            if prefix_matched {
                if let Some(prefix) = &query.prefix {
                    matched_terms.push(format!("{prefix}*"));
                }
            }
            let mut seen = HashSet::new();
            matched_terms.retain(|term| seen.insert(term.clone()));
            hits.push(SearchHit {
                stored,
                score,
                snippet,
                matched_terms,
            });
        }
        Ok(SearchOutcome {
            abstained: hits.is_empty(),
            hits,
            confidence,
        })
    }

    /// Looks every query word up in the index; a word the index does not know is
    /// replaced by up to two close terms (typo tolerance).
    fn resolve_words(
        &self,
        searcher: &Searcher,
        query: &ContentQuery,
        scope: &str,
        text_fields: &[(Field, f32); 3],
        total_docs: f32,
    ) -> Result<Vec<ResolvedWord>, IndexError> {
        let fields = self.index.schema.fields;
        let mut words = Vec::with_capacity(query.terms.len());
        for query_term in &query.terms {
            let doc_freq = max_doc_freq(searcher, text_fields, &scoped(scope, &query_term.term))?;
            let mut index_terms = vec![(query_term.term.clone(), 1.0)];
            let mut best_doc_freq = doc_freq;
            if doc_freq == 0 && query_term.is_being_typed {
                if let Some(prefix) = &query.prefix {
                    best_doc_freq = searcher.doc_freq(&Term::from_field_text(
                        fields.prefixes,
                        &scoped(scope, prefix),
                    ))?;
                }
            }
            // A word being typed that starts no indexed word may be a finished word with
            // a typo ("pasword" at the end of a draft): correct it like any other.
            if best_doc_freq == 0 && query_term.typo_tolerant {
                let char_count = query_term.term.chars().count();
                let distance = if char_count >= self.tuning.two_typos_min_chars {
                    2
                } else {
                    1
                };
                for (correction, correction_doc_freq) in
                    typo_corrections(searcher, text_fields, scope, &query_term.term, distance)?
                {
                    best_doc_freq = best_doc_freq.max(correction_doc_freq);
                    index_terms.push((correction, self.tuning.typo_weight));
                }
            }
            words.push(ResolvedWord {
                index_terms,
                idf: if best_doc_freq == 0 {
                    // A word the tenant's content does not have at all is strong
                    // evidence that the draft is about something else.
                    inverse_document_frequency(0.0, total_docs) * self.tuning.unknown_word_weight
                } else {
                    inverse_document_frequency(best_doc_freq as f32, total_docs)
                },
                occurrences: query_term.occurrences,
                is_being_typed: query_term.is_being_typed,
                is_stop_word: query_term.is_stop_word,
            });
        }
        Ok(words)
    }
}

fn boosted_term(term: Term, boost: f32) -> Box<dyn Query> {
    let term_query = TermQuery::new(term, IndexRecordOption::WithFreqs);
    if (boost - 1.0).abs() < f32::EPSILON {
        Box::new(term_query)
    } else {
        Box::new(BoostQuery::new(Box::new(term_query), boost))
    }
}

fn max_doc_freq(
    searcher: &Searcher,
    text_fields: &[(Field, f32); 3],
    scoped_term: &str,
) -> Result<u64, IndexError> {
    let mut max = 0;
    for (field, _) in text_fields {
        max = max.max(searcher.doc_freq(&Term::from_field_text(*field, scoped_term))?);
    }
    Ok(max)
}

/// BM25's inverse document frequency; an unknown word weighs as much as the rarest one.
fn inverse_document_frequency(doc_freq: f32, total_docs: f32) -> f32 {
    (1.0 + (total_docs - doc_freq + 0.5) / (doc_freq + 0.5)).ln()
}

/// Returns the share of the query's weight found in a document.
///
/// Stop words count with `stop_word_weight`, like in scoring.
fn coverage(
    words: &[ResolvedWord],
    matched: &HashSet<String>,
    prefix_matched: bool,
    stop_word_weight: f32,
) -> f32 {
    let mut total = 0.0;
    let mut found = 0.0;
    for word in words {
        let weight = if word.is_stop_word {
            word.idf * stop_word_weight
        } else {
            word.idf
        };
        total += weight;
        let word_found = word
            .index_terms
            .iter()
            .any(|(term, _)| matched.contains(term))
            || (word.is_being_typed && prefix_matched);
        if word_found {
            found += weight;
        }
    }
    if total == 0.0 {
        return if prefix_matched { 1.0 } else { 0.0 };
    }
    found / total
}

fn load_stored(
    searcher: &Searcher,
    source_field: Field,
    address: tantivy::DocAddress,
) -> Result<StoredDocument, IndexError> {
    let document: TantivyDocument = searcher.doc(address)?;
    let bytes = document
        .get_first(source_field)
        .and_then(|value| value.as_bytes())
        .ok_or_else(|| {
            tantivy::TantivyError::InternalError("indexed document without source".to_owned())
        })?;
    serde_json::from_slice(bytes).map_err(|error| {
        IndexError::Tantivy(tantivy::TantivyError::InternalError(format!(
            "stored document is not valid JSON: {error}"
        )))
    })
}

/// Returns up to two index terms within `distance` edits of `term`, most frequent first.
fn typo_corrections(
    searcher: &Searcher,
    text_fields: &[(Field, f32); 3],
    scope: &str,
    term: &str,
    distance: u8,
) -> Result<Vec<(String, u64)>, IndexError> {
    let dfa = levenshtein_builder(distance).build_dfa(&scoped(scope, term));
    let mut candidates: HashMap<String, u64> = HashMap::new();
    for segment_reader in searcher.segment_readers() {
        for (field, _) in text_fields {
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
                let doc_freq = u64::from(stream.value().doc_freq);
                let entry = candidates.entry(candidate.to_owned()).or_default();
                *entry = (*entry).max(doc_freq);
            }
        }
    }
    let mut ranked: Vec<(String, u64)> = candidates.into_iter().collect();
    ranked.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
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
