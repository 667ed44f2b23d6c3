//! The search path: resolves the draft's words against the index (`words.rs`), scores
//! the rarest words in title, summary and body, the word pairs and the typed prefix
//! (`accumulator.rs`), re-ranks the candidates with the stop words' scores, keeps
//! results diverse, decides from the best hit whether to abstain (`confidence.rs`) and
//! cuts snippets for the hits it returns.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use tantivy::columnar::StrColumn;
use tantivy::schema::Field;
use tantivy::{DocAddress, Searcher, SegmentOrdinal, TantivyDocument, Term};

use super::accumulator::{add_scores, score_document, ScoreBuffers, WeightedTerm};
use super::common_words::CommonWordSplit;
use super::confidence::{confidence, coverage, ConfidenceInputs};
use super::document::StoredDocument;
use super::document_matches::{find_matches, DocumentMatches, WordsToMatch};
use super::index::{ContentIndex, IndexError};
use super::query::{ContentQuery, SearchTuning};
use super::schema::ContentSchema;
use super::serving::{ServedGeneration, ServingIndex};
use super::snippet::{best_passage, MatchTargets};
use super::statistics::{TenantStatistics, TenantTotalsCache};
use super::term_lookups::TermLookups;
use super::terms::{scope_of, scoped};
use super::words::{resolve_words, ResolvedWord, TextFields};
use crate::text::analysis::Analyzer;
use crate::text::language::Language;
use crate::text::sections::{section_at, ContentSection};

/// Extra candidates read at most for excluded documents, however many there are.
const MAX_EXTRA_CANDIDATES: usize = 200;

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
    /// The section of the body the snippet's first match is in, when the body has
    /// sections.
    pub section: Option<ContentSection>,
}

/// The answer to one query.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    /// Empty when abstaining.
    pub hits: Vec<SearchHit>,
    pub abstained: bool,
    /// How well the best hit explains the draft, 0 to 1 (see `confidence.rs`).
    pub confidence: f32,
    /// What `confidence` was computed from.
    pub confidence_inputs: ConfidenceInputs,
}

/// Searches the serving index with one tuning. Cheap to clone; every call takes the
/// serving generation and a fresh tantivy `Searcher` once, so it always sees the last
/// commit and one query never mixes two generations.
#[derive(Clone)]
pub struct ContentSearcher {
    serving: ServingIndex,
    /// The same in every generation a build opens (the bundled schema).
    schema: ContentSchema,
    tuning: SearchTuning,
    tenant_totals: std::sync::Arc<TenantTotalsCache>,
    score_buffers: std::sync::Arc<ScoreBuffers>,
}

/// What one search works with once the query words are resolved.
struct SearchContext<'search> {
    /// The request's searcher with its term dictionary, each term looked up once.
    lookups: &'search TermLookups<'search>,
    query: &'search ContentQuery,
    scope: String,
    text_fields: TextFields,
    words: Vec<ResolvedWord>,
}

impl ContentSearcher {
    /// Searches `index` alone (evaluation, benchmarks).
    pub fn new(index: ContentIndex, tuning: SearchTuning) -> ContentSearcher {
        ContentSearcher::serving(
            ServingIndex::new(ServedGeneration {
                number: 0,
                index,
                writer: None,
                writer_thread: None,
            }),
            tuning,
        )
    }

    /// Searches whichever generation `serving` serves at the time of each query.
    pub fn serving(serving: ServingIndex, tuning: SearchTuning) -> ContentSearcher {
        let schema = serving.current().index.schema.clone();
        ContentSearcher {
            serving,
            schema,
            tuning,
            tenant_totals: Default::default(),
            score_buffers: Default::default(),
        }
    }

    pub fn tuning(&self) -> &SearchTuning {
        &self.tuning
    }

    /// Runs `query`. CPU-bound: call it from a blocking thread.
    pub fn search(&self, query: &ContentQuery) -> Result<SearchOutcome, IndexError> {
        let abstain = |confidence, confidence_inputs| SearchOutcome {
            hits: Vec::new(),
            abstained: true,
            confidence,
            confidence_inputs,
        };
        if query.is_empty() {
            return Ok(abstain(0.0, ConfidenceInputs::default()));
        }
        let served = self.serving.current();
        let searcher = served.index.reader.searcher();
        let fields = self.schema.fields;
        let scope = scope_of(&query.tenant);
        let text_fields = [
            (fields.title, self.tuning.title_boost),
            (fields.summary, self.tuning.summary_boost),
            (fields.body, self.tuning.body_boost),
        ];
        let totals = self.tenant_totals.totals(
            served.number,
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
        let lookups = TermLookups::new(&searcher);
        let statistics = TenantStatistics {
            lookups: &lookups,
            totals,
        };
        let words = resolve_words(
            &lookups,
            query,
            &scope,
            &text_fields,
            fields.prefixes,
            &self.tuning,
            total_docs,
        )?;
        let context = SearchContext {
            lookups: &lookups,
            query,
            scope,
            text_fields,
            words,
        };

        let mut confidence_inputs =
            ConfidenceInputs::of_draft(&context.words, self.tuning.stop_word_weight);
        let scoring_terms = self.scoring_terms(&context)?;
        if scoring_terms.is_empty() {
            return Ok(abstain(0.0, confidence_inputs));
        }
        // More than `limit`: diversity skips some, stop words may re-order them, and
        // excluded documents (a customer's completed lessons) are passed over.
        let candidates = query.limit * 3 + 5 + query.excluded.len().min(MAX_EXTRA_CANDIDATES);
        let mut top_docs = self.score_buffers.top_documents_in_two_phases(
            &lookups,
            &scoring_terms,
            &statistics,
            self.tuning.bm25_k1,
            &query.filters,
            candidates,
            &CommonWordSplit {
                share: self.tuning.common_word_share,
                min_documents: self.tuning.min_common_word_documents,
                pool_factor: self.tuning.common_word_pool_factor,
            },
        )?;
        let re_ranking_terms = self.re_ranking_terms(&context);
        if !re_ranking_terms.is_empty() {
            add_scores(
                &lookups,
                &re_ranking_terms,
                &statistics,
                self.tuning.bm25_k1,
                &mut top_docs,
            )?;
        }

        let mut hits: Vec<SearchHit> = Vec::with_capacity(query.limit);
        let mut best_confidence = 0.0;
        let mut per_group: HashMap<GroupKey, usize> = HashMap::new();
        let mut group_columns = GroupColumns::new(self.schema.schema.get_field_name(fields.group));
        // Ordinals name a group within one segment only, and exclusions name groups.
        let groups_by_name = searcher.segment_readers().len() > 1 || !query.excluded.is_empty();
        for (score, address) in top_docs {
            if hits.len() == query.limit {
                break;
            }
            let group = group_columns.group_of(&searcher, address, groups_by_name)?;
            if matches!(&group, GroupKey::Name(name) if query.excluded.contains(name)) {
                continue;
            }
            let group_count = per_group.entry(group).or_default();
            if *group_count >= self.tuning.max_results_per_course {
                continue;
            }
            // A lesson is told from its course only by its stored id, so it is loaded
            // here when something is excluded (and later, for hits only, otherwise).
            let stored = if query.excluded.is_empty() {
                None
            } else {
                let stored = load_stored(&searcher, self.schema.fields.source, address)?;
                if query.excluded.contains(&stored.document.id) {
                    continue;
                }
                Some(stored)
            };
            *group_count += 1;

            let words_to_match = if hits.is_empty() {
                WordsToMatch::All
            } else {
                WordsToMatch::ContentWords
            };
            let matches = self.find_matches(&context, address, words_to_match)?;
            // The best hit decides whether to abstain.
            if hits.is_empty() {
                confidence_inputs.best_score = self.confidence_score(
                    &context,
                    &statistics,
                    [&scoring_terms, &re_ranking_terms],
                    score,
                    address,
                )?;
                confidence_inputs.coverage =
                    coverage(&context.words, &matches, self.tuning.stop_word_weight);
                best_confidence = confidence(confidence_inputs, &self.tuning);
                let too_weak =
                    score < self.tuning.min_score || best_confidence < self.tuning.min_confidence;
                if too_weak {
                    return Ok(abstain(best_confidence, confidence_inputs));
                }
            }
            hits.push(self.hit(&context, address, stored, score, &matches)?);
        }
        Ok(SearchOutcome {
            abstained: hits.is_empty(),
            hits,
            confidence: best_confidence,
            confidence_inputs,
        })
    }

    /// Returns the best hit's score as confidence sees it: with `confidence_bm25_k1`
    /// instead of the ranking's `bm25_k1`, and with the content words a long draft has
    /// beyond `max_scored_words` (the same score when neither applies).
    ///
    /// A higher `k1` ranks better where articles repeat their topic's words (lists of
    /// example questions), but raises the scores of exactly those articles: measured
    /// with it, the threshold that keeps off-topic drafts out also silences articles that
    /// mention a word once (README, "Relevance"). Confidence keeps its own, lower `k1`.
    ///
    /// The words left out of the scoring query weigh in the draft's weight (a long draft
    /// about something else still abstains), so they count in the score it is compared
    /// with too: otherwise a long draft could never reach the confidence of a short one
    /// with the same words.
    fn confidence_score(
        &self,
        context: &SearchContext<'_>,
        statistics: &TenantStatistics<'_>,
        clause_lists: [&[WeightedTerm]; 2],
        ranking_score: f32,
        address: DocAddress,
    ) -> Result<f32, IndexError> {
        let mut unscored: Vec<WeightedTerm> = Vec::new();
        for word in context.words.iter() {
            if !word.is_scored && !word.is_stop_word {
                self.push_word_clauses(context, word, &mut unscored);
            }
        }
        let k1 = self.tuning.confidence_bm25_k1;
        if k1 == self.tuning.bm25_k1 && unscored.is_empty() {
            return Ok(ranking_score);
        }
        let mut score = 0.0;
        for clauses in clause_lists.into_iter().chain([unscored.as_slice()]) {
            score += score_document(context.lookups, clauses, statistics, k1, address)?;
        }
        Ok(score)
    }

    /// Returns the clauses of the BM25 query: the scored words in each text field they
    /// occur in, the draft's word pairs and the word being typed as a prefix (none when
    /// the index has none of them).
    fn scoring_terms(&self, context: &SearchContext<'_>) -> Result<Vec<WeightedTerm>, IndexError> {
        let fields = self.schema.fields;
        let lookups = context.lookups;
        let mut clauses: Vec<WeightedTerm> = Vec::new();
        for word in context.words.iter() {
            if word.is_scored {
                self.push_word_clauses(context, word, &mut clauses);
            }
        }
        // Like words, only the rarest pairs are scored: a long draft has dozens.
        let mut pairs = Vec::with_capacity(context.query.pairs.len());
        for pair in &context.query.pairs {
            let term = Term::from_field_text(fields.pairs, &scoped(&context.scope, pair));
            let doc_freq = lookups.doc_freq(&term)?;
            if doc_freq > 0 {
                pairs.push((doc_freq, term));
            }
        }
        pairs.sort_by_key(|(doc_freq, _)| *doc_freq);
        for (_, term) in pairs.into_iter().take(self.tuning.max_scored_words) {
            clauses.push(WeightedTerm {
                term,
                boost: self.tuning.pair_boost,
            });
        }
        if let Some(prefix) = &context.query.prefix {
            let term = Term::from_field_text(fields.prefixes, &scoped(&context.scope, prefix));
            if lookups.doc_freq(&term)? > 0 {
                clauses.push(WeightedTerm {
                    term,
                    boost: self.tuning.prefix_boost,
                });
            }
        }
        Ok(clauses)
    }

    /// Returns the clauses [`ContentSearcher::scoring_terms`] leaves out: the stop words
    /// of drafts with more content words. They weigh little but do decide between close
    /// candidates ("card not working" against "card working"), so they are added to the
    /// candidates' scores instead of being searched: their postings cover nearly every
    /// document.
    fn re_ranking_terms(&self, context: &SearchContext<'_>) -> Vec<WeightedTerm> {
        let mut clauses: Vec<WeightedTerm> = Vec::new();
        for word in context.words.iter() {
            if !word.is_scored && word.is_stop_word {
                self.push_word_clauses(context, word, &mut clauses);
            }
        }
        clauses
    }

    /// Adds one clause per index term of `word` and text field it occurs in.
    fn push_word_clauses(
        &self,
        context: &SearchContext<'_>,
        word: &ResolvedWord,
        clauses: &mut Vec<WeightedTerm>,
    ) {
        let repetition = 1.0 + 0.25 * (word.occurrences.saturating_sub(1).min(4) as f32);
        let word_weight = if word.is_stop_word {
            self.tuning.stop_word_weight * repetition
        } else {
            repetition
        };
        for index_term in &word.index_terms {
            let scoped_term = scoped(&context.scope, &index_term.text);
            for (slot, (field, field_boost)) in context.text_fields.iter().enumerate() {
                if index_term.doc_freqs[slot] == 0 {
                    continue;
                }
                clauses.push(WeightedTerm {
                    term: Term::from_field_text(*field, &scoped_term),
                    boost: field_boost * index_term.weight * word_weight,
                });
            }
        }
    }

    fn find_matches(
        &self,
        context: &SearchContext<'_>,
        address: DocAddress,
        words_to_match: WordsToMatch,
    ) -> Result<DocumentMatches, IndexError> {
        let prefixes_field = self.schema.fields.prefixes;
        find_matches(
            context.lookups,
            address,
            &context.scope,
            &context.words,
            words_to_match,
            &context.text_fields,
            context
                .query
                .prefix
                .as_deref()
                .map(|prefix| (prefixes_field, prefix)),
        )
    }

    /// Loads a hit's stored document (unless `stored` has it already) and cuts its
    /// snippet.
    fn hit(
        &self,
        context: &SearchContext<'_>,
        address: DocAddress,
        stored: Option<StoredDocument>,
        score: f32,
        matches: &DocumentMatches,
    ) -> Result<SearchHit, IndexError> {
        let stored = match stored {
            Some(stored) => stored,
            None => load_stored(
                context.lookups.searcher(),
                self.schema.fields.source,
                address,
            )?,
        };
        let mut matched_terms: Vec<String> = Vec::new();
        for (word, found_terms) in context.words.iter().zip(&matches.terms) {
            if word.is_stop_word {
                continue;
            }
            for (index_term, found) in word.index_terms.iter().zip(found_terms) {
                if *found && !matched_terms.contains(&index_term.text) {
                    matched_terms.push(index_term.text.clone());
                }
            }
        }
        let highlighted: Vec<&str> = matched_terms.iter().map(String::as_str).collect();
        let targets = MatchTargets {
            terms: &highlighted,
            prefix: context.query.prefix.as_deref().filter(|_| matches.prefix),
        };
        let analyzer = Analyzer::of(Language::from_locale(&stored.document.locale));
        let body_text = stored.body_text();
        let snippet_source = if body_text.is_empty() {
            stored
                .document
                .summary
                .as_deref()
                .unwrap_or(&stored.document.title)
        } else {
            body_text.as_ref()
        };
        let passage = best_passage(snippet_source, analyzer, &targets);
        let section = match (&stored.document.sections, passage.first_match_offset) {
            (Some(sections), Some(byte_offset)) if !body_text.is_empty() => {
                let char_offset = body_text[..byte_offset].chars().count();
                section_at(sections, char_offset).cloned()
            }
            _ => None,
        };
        let snippet = passage.html;
        if matches.prefix {
            if let Some(prefix) = &context.query.prefix {
                matched_terms.push(format!("{prefix}*"));
            }
        }
        Ok(SearchHit {
            stored,
            score,
            snippet,
            matched_terms,
            section,
        })
    }
}

/// The course (diversity group) of a hit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum GroupKey {
    /// The group's term ordinal in the segment's `group` column: cheap, and enough to
    /// tell groups apart when the index has one segment.
    Ordinal(u64),
    /// The group's name (empty when the document has none).
    Name(String),
}

/// Reads the course (diversity group) of hits from the `group` fast field, opening each
/// segment's column once per search.
struct GroupColumns<'schema> {
    field_name: &'schema str,
    by_segment: HashMap<SegmentOrdinal, Option<StrColumn>>,
}

impl<'schema> GroupColumns<'schema> {
    fn new(field_name: &'schema str) -> GroupColumns<'schema> {
        GroupColumns {
            field_name,
            by_segment: HashMap::new(),
        }
    }

    /// Returns the group of the hit at `address`: its name when `by_name` (looking a
    /// name up in the column's dictionary costs microseconds), its ordinal otherwise.
    fn group_of(
        &mut self,
        searcher: &Searcher,
        address: DocAddress,
        by_name: bool,
    ) -> Result<GroupKey, IndexError> {
        let column = match self.by_segment.entry(address.segment_ord) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let segment_reader = searcher.segment_reader(address.segment_ord);
                entry.insert(segment_reader.fast_fields().str(self.field_name)?)
            }
        };
        let ordinal = column
            .as_ref()
            .and_then(|column| column.term_ords(address.doc_id).next());
        if !by_name {
            return Ok(GroupKey::Ordinal(ordinal.unwrap_or(u64::MAX)));
        }
        let mut name = String::new();
        if let (Some(column), Some(ordinal)) = (column, ordinal) {
            column
                .ord_to_str(ordinal, &mut name)
                .map_err(tantivy::TantivyError::from)?;
        }
        Ok(GroupKey::Name(name))
    }
}

fn load_stored(
    searcher: &Searcher,
    source_field: Field,
    address: tantivy::DocAddress,
) -> Result<StoredDocument, IndexError> {
    let indexed: TantivyDocument = searcher.doc(address)?;
    StoredDocument::from_indexed(&indexed, source_field)?.ok_or_else(|| {
        IndexError::Tantivy(tantivy::TantivyError::InternalError(
            "indexed document without source".to_owned(),
        ))
    })
}
