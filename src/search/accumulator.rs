//! Scores a query term at a time: every posting of every term is added into one dense
//! array of scores per segment, and the best documents are read off that array.
//!
//! tantivy's block-max WAND skips postings that cannot reach the top k, but it pays for
//! that per document with a sorted list of cursors (one per term and field, 10 to 50 in
//! a deflect query). A help center's words are common across its articles, so little
//! can be skipped and the bookkeeping costs more than it saves: on the benchmark catalog
//! (100,000 documents), reading every posting with tantivy's own union was already
//! faster than WAND (short drafts: 1.7 against 2.4 ms of CPU per search), and adding
//! whole decoded blocks into an array is faster again, since the inner loop is one
//! field-norm look-up and one multiply-add per posting.
//!
//! Scores are tantivy's BM25 (its inverse document frequency and length normalization,
//! the tenant's statistics, the clause's boost) with a configurable term-frequency
//! saturation `k1` ([`TermWeight`]); with tantivy's own `k1` (1.2) they are exactly
//! tantivy's scores, except that the order in which one document's clause scores are
//! summed can differ, in the last bit.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Mutex;

use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::BlockSegmentPostings;
use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocAddress, DocId, Score, SegmentReader, Term};

use super::query::ContentFilters;
use super::segment_filter::SegmentFilter;
use super::term_lookups::TermLookups;

/// One clause of a query: an index term and what its BM25 score is multiplied by.
#[derive(Debug, Clone)]
pub(crate) struct WeightedTerm {
    pub term: Term,
    pub boost: Score,
}

/// Score arrays kept from one search to the next, at most one per search running at the
/// same time, so the steady state allocates nothing.
///
/// Every array handed back is all zeros again.
#[derive(Default)]
pub(crate) struct ScoreBuffers {
    free: Mutex<Vec<ScoringScratch>>,
}

/// What one search scores into.
#[derive(Default)]
struct ScoringScratch {
    /// A score per document of the segment being scored; all zeros between segments.
    scores: Vec<Score>,
    /// The maximum of each chunk of `scores`.
    chunk_maxima: Vec<Score>,
    /// Room to select the highest of `chunk_maxima`.
    selection: Vec<u32>,
}

/// Below this ratio of postings to documents, a segment's touched documents are listed
/// instead of its whole array being scanned and cleared (many tenants in one index).
const SPARSE_POSTINGS_PER_DOCUMENT: u64 = 8;

/// Scores scanned at a time for the best documents.
const SCAN_CHUNK: usize = 64;

impl ScoreBuffers {
    /// Returns the `limit` best live documents passing `filters`, best first (the lower
    /// address wins a tie). Documents no term matches are never returned. Every posting
    /// is read: the searcher calls `top_documents_in_two_phases` (`common_words.rs`),
    /// and this is what the tests hold it against.
    #[cfg(test)]
    pub fn top_documents(
        &self,
        searcher: &tantivy::Searcher,
        terms: &[WeightedTerm],
        statistics: &dyn Bm25StatisticsProvider,
        k1: Score,
        filters: &ContentFilters,
        limit: usize,
    ) -> tantivy::Result<Vec<(Score, DocAddress)>> {
        let clauses = clauses_of(terms, statistics, k1)?;
        let clause_refs: Vec<&Clause<'_>> = clauses.iter().collect();
        self.top_of_clauses(&TermLookups::new(searcher), &clause_refs, filters, limit)
    }

    /// [`ScoreBuffers::top_documents`] of clauses already weighted.
    pub(super) fn top_of_clauses(
        &self,
        lookups: &TermLookups<'_>,
        clauses: &[&Clause<'_>],
        filters: &ContentFilters,
        limit: usize,
    ) -> tantivy::Result<Vec<(Score, DocAddress)>> {
        let mut top = TopScores::new(limit);
        let mut scratch = self.take();
        let mut outcome = Ok(());
        for segment_ord in 0..lookups.searcher().segment_readers().len() as u32 {
            outcome = score_segment(
                lookups,
                segment_ord,
                clauses,
                filters,
                &mut scratch,
                &mut top,
            );
            if outcome.is_err() {
                break;
            }
        }
        // `score_segment` leaves the scores zeroed even when it fails.
        self.give_back(scratch);
        outcome?;
        Ok(top.into_sorted())
    }

    fn take(&self) -> ScoringScratch {
        self.lock().pop().unwrap_or_default()
    }

    fn give_back(&self, scratch: ScoringScratch) {
        self.lock().push(scratch);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ScoringScratch>> {
        // A poisoned pool still holds zeroed buffers: a panicking holder had taken its
        // own buffer out.
        self.free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Adds the scores `terms` give each of `top_docs` and sorts them again, best first.
///
/// Only the candidates' postings are read (by skipping to them), so this suits terms
/// that are in nearly every document, such as stop words.
pub(crate) fn add_scores(
    lookups: &TermLookups<'_>,
    terms: &[WeightedTerm],
    statistics: &dyn Bm25StatisticsProvider,
    k1: Score,
    top_docs: &mut [(Score, DocAddress)],
) -> tantivy::Result<()> {
    let clauses = clauses_of(terms, statistics, k1)?;
    let clause_refs: Vec<&Clause<'_>> = clauses.iter().collect();
    add_clause_scores(lookups, &clause_refs, top_docs)
}

/// [`add_scores`] of clauses already weighted.
pub(super) fn add_clause_scores(
    lookups: &TermLookups<'_>,
    clauses: &[&Clause<'_>],
    top_docs: &mut [(Score, DocAddress)],
) -> tantivy::Result<()> {
    let mut in_doc_order: Vec<usize> = (0..top_docs.len()).collect();
    in_doc_order.sort_by_key(|position| top_docs[*position].1);
    for clause in clauses {
        let mut segment_postings: Option<(u32, Option<TermPostings>)> = None;
        for position in &in_doc_order {
            let address = top_docs[*position].1;
            let is_new_segment = segment_postings
                .as_ref()
                .is_none_or(|(segment_ord, _)| *segment_ord != address.segment_ord);
            if is_new_segment {
                segment_postings = Some((
                    address.segment_ord,
                    TermPostings::open(lookups, address.segment_ord, clause.term)?,
                ));
            }
            let Some((_, Some(postings))) = segment_postings.as_mut() else {
                continue;
            };
            let in_block = postings.blocks.seek(address.doc_id);
            if postings.blocks.doc(in_block) == address.doc_id {
                let fieldnorm_id = postings.fieldnorms.fieldnorm_id(address.doc_id);
                top_docs[*position].0 += clause
                    .weight
                    .score(fieldnorm_id, postings.blocks.freq(in_block));
            }
        }
    }
    top_docs.sort_by(|left, right| right.0.total_cmp(&left.0).then(left.1.cmp(&right.1)));
    Ok(())
}

/// tantivy's `k1`: with it, scores are tantivy's own.
#[cfg(test)]
pub(crate) const TANTIVY_K1: Score = 1.2;

/// BM25's length normalization, as in tantivy.
const LENGTH_NORMALIZATION: Score = 0.75;

/// The BM25 weight of one clause: `idf * (1 + k1) * boost * tf / (tf + k1 * (1 - b + b *
/// length / average length))`, the denominator's length part cached per field-norm id
/// like tantivy's `Bm25Weight` does.
///
/// `k1` sets how fast repeated occurrences stop adding to the score. tantivy fixes it at
/// 1.2; a higher value lets a word that a document uses in many places (an article whose
/// questions all ask about "reservations") count for more than one mentioned in passing,
/// which ranks better on every relevance set (README, "Relevance").
struct TermWeight {
    weight: Score,
    length_norms: Box<[Score; 256]>,
}

impl TermWeight {
    fn new(idf: Score, average_fieldnorm: Score, k1: Score, boost: Score) -> TermWeight {
        let mut length_norms = Box::new([0.0; 256]);
        for (fieldnorm_id, norm) in length_norms.iter_mut().enumerate() {
            let fieldnorm = FieldNormReader::id_to_fieldnorm(fieldnorm_id as u8);
            *norm = length_norm(fieldnorm, average_fieldnorm, k1);
        }
        TermWeight {
            weight: idf * (1.0 + k1) * boost,
            length_norms,
        }
    }

    #[inline]
    fn score(&self, fieldnorm_id: u8, term_freq: u32) -> Score {
        saturate(
            self.weight,
            term_freq,
            self.length_norms[fieldnorm_id as usize],
        )
    }
}

/// tantivy's inverse document frequency, computed in the same order.
fn inverse_document_frequency(doc_freq: u64, total_num_docs: u64) -> Score {
    let doc_freq = doc_freq.min(total_num_docs);
    let ratio = ((total_num_docs - doc_freq) as Score + 0.5) / (doc_freq as Score + 0.5);
    (1.0 + ratio).ln()
}

/// The length part of BM25's denominator for a field of `fieldnorm` words.
fn length_norm(fieldnorm: u32, average_fieldnorm: Score, k1: Score) -> Score {
    k1 * (1.0 - LENGTH_NORMALIZATION
        + LENGTH_NORMALIZATION * fieldnorm as Score / average_fieldnorm)
}

/// `weight` (idf, `1 + k1` and boost) times the saturated term frequency.
#[inline]
fn saturate(weight: Score, term_freq: u32, length_norm: Score) -> Score {
    // Converted through i32, which vectorizes four at a time ([`BlockScores`]); a term
    // frequency fits in one.
    let term_freq = term_freq as i32 as Score;
    weight * (term_freq / (term_freq + length_norm))
}

fn average_fieldnorm(
    statistics: &dyn Bm25StatisticsProvider,
    field: Field,
    total_num_docs: u64,
) -> tantivy::Result<Score> {
    Ok(statistics.total_num_tokens(field)? as Score / total_num_docs as Score)
}

/// One clause of a query with its BM25 weight and tenant document frequency.
pub(super) struct Clause<'terms> {
    pub term: &'terms Term,
    pub doc_freq: u64,
    weight: TermWeight,
}

/// Weighs `terms` with the statistics' document frequencies and field lengths.
pub(super) fn clauses_of<'terms>(
    terms: &'terms [WeightedTerm],
    statistics: &dyn Bm25StatisticsProvider,
    k1: Score,
) -> tantivy::Result<Vec<Clause<'terms>>> {
    let total_num_docs = statistics.total_num_docs()?;
    let mut clauses = Vec::with_capacity(terms.len());
    for term in terms {
        let average_fieldnorm = average_fieldnorm(statistics, term.term.field(), total_num_docs)?;
        let doc_freq = statistics.doc_freq(&term.term)?;
        let idf = inverse_document_frequency(doc_freq, total_num_docs);
        clauses.push(Clause {
            term: &term.term,
            doc_freq,
            weight: TermWeight::new(idf, average_fieldnorm, k1, term.boost),
        });
    }
    Ok(clauses)
}

/// Returns the score `terms` give the one document at `address` with `k1`: what
/// [`add_scores`] would add to it.
///
/// For one document the 256-entry length tables of [`TermWeight`] cost more than they
/// save.
pub(crate) fn score_document(
    lookups: &TermLookups<'_>,
    terms: &[WeightedTerm],
    statistics: &dyn Bm25StatisticsProvider,
    k1: Score,
    address: DocAddress,
) -> tantivy::Result<Score> {
    let total_num_docs = statistics.total_num_docs()?;
    let mut fields: Vec<FieldScoring> = Vec::new();
    let mut score = 0.0;
    for term in terms {
        let field = term.term.field();
        let position = match fields.iter().position(|known| known.field == field) {
            Some(position) => position,
            None => {
                fields.push(FieldScoring::open(
                    lookups,
                    address.segment_ord,
                    field,
                    statistics,
                    total_num_docs,
                )?);
                fields.len() - 1
            }
        };
        let scoring = &fields[position];
        let Some(mut postings) = lookups.block_postings(
            address.segment_ord,
            &term.term,
            IndexRecordOption::WithFreqs,
        )?
        else {
            continue;
        };
        let in_block = postings.seek(address.doc_id);
        if postings.doc(in_block) != address.doc_id {
            continue;
        }
        let doc_freq = statistics.doc_freq(&term.term)?;
        let weight = inverse_document_frequency(doc_freq, total_num_docs) * (1.0 + k1) * term.boost;
        let fieldnorm = scoring.fieldnorms.fieldnorm(address.doc_id);
        score += saturate(
            weight,
            postings.freq(in_block),
            length_norm(fieldnorm, scoring.average_fieldnorm, k1),
        );
    }
    Ok(score)
}

/// What [`score_document`] needs of one field of the document's segment.
struct FieldScoring {
    field: Field,
    fieldnorms: FieldNormReader,
    average_fieldnorm: Score,
}

impl FieldScoring {
    fn open(
        lookups: &TermLookups<'_>,
        segment_ord: u32,
        field: Field,
        statistics: &dyn Bm25StatisticsProvider,
        total_num_docs: u64,
    ) -> tantivy::Result<FieldScoring> {
        Ok(FieldScoring {
            field,
            fieldnorms: field_norms(lookups.searcher().segment_reader(segment_ord), field)?,
            average_fieldnorm: average_fieldnorm(statistics, field, total_num_docs)?,
        })
    }
}

/// Returns a field's norms; as tantivy's term scorer does, a field without norms counts
/// every value as 1.
fn field_norms(reader: &SegmentReader, field: Field) -> tantivy::Result<FieldNormReader> {
    Ok(match reader.fieldnorms_readers().get_field(field)? {
        Some(fieldnorms) => fieldnorms,
        None => FieldNormReader::constant(reader.max_doc(), 1),
    })
}

/// A term's postings in one segment with the field norms its scores need.
struct TermPostings {
    blocks: BlockSegmentPostings,
    fieldnorms: FieldNormReader,
}

impl TermPostings {
    /// Returns `None` when the segment `segment_ord` does not have the term.
    fn open(
        lookups: &TermLookups<'_>,
        segment_ord: u32,
        term: &Term,
    ) -> tantivy::Result<Option<TermPostings>> {
        let Some(blocks) =
            lookups.block_postings(segment_ord, term, IndexRecordOption::WithFreqs)?
        else {
            return Ok(None);
        };
        let reader = lookups.searcher().segment_reader(segment_ord);
        let fieldnorms = field_norms(reader, term.field())?;
        Ok(Some(TermPostings { blocks, fieldnorms }))
    }
}

/// Scores the segment `segment_ord` into `scratch` and offers its documents to `top`;
/// leaves its scores all zeros.
fn score_segment(
    lookups: &TermLookups<'_>,
    segment_ord: u32,
    clauses: &[&Clause<'_>],
    filters: &ContentFilters,
    scratch: &mut ScoringScratch,
    top: &mut TopScores,
) -> tantivy::Result<()> {
    let reader = lookups.searcher().segment_reader(segment_ord);
    let Some(filter) = SegmentFilter::new(reader, filters)? else {
        return Ok(());
    };
    let mut postings_by_term = Vec::with_capacity(clauses.len());
    let mut total_postings: u64 = 0;
    for clause in clauses {
        if let Some(postings) = TermPostings::open(lookups, segment_ord, clause.term)? {
            total_postings += u64::from(postings.blocks.doc_freq());
            postings_by_term.push((postings, &clause.weight));
        }
    }
    if postings_by_term.is_empty() {
        return Ok(());
    }
    let max_doc = reader.max_doc() as usize;
    let ScoringScratch {
        scores,
        chunk_maxima,
        selection,
    } = scratch;
    if scores.len() < max_doc {
        scores.resize(max_doc, 0.0);
    }
    let scores = &mut scores[..max_doc];
    let is_sparse = total_postings * SPARSE_POSTINGS_PER_DOCUMENT < max_doc as u64;
    let mut touched: Vec<DocId> = Vec::new();
    let mut block_scores = BlockScores::default();
    for (postings, weight) in postings_by_term.iter_mut() {
        let TermPostings { blocks, fieldnorms } = postings;
        loop {
            let docs = blocks.docs();
            if docs.is_empty() {
                break;
            }
            let block = block_scores.compute(weight, fieldnorms, docs, blocks.freqs());
            if is_sparse {
                for (doc, score) in docs.iter().zip(block) {
                    let slot = &mut scores[*doc as usize];
                    if *slot == 0.0 {
                        touched.push(*doc);
                    }
                    *slot += score;
                }
            } else {
                for (doc, score) in docs.iter().zip(block) {
                    scores[*doc as usize] += score;
                }
            }
            blocks.advance();
        }
    }

    let alive = reader.alive_bitset();
    let top_limit = top.limit;
    let mut bar = top.bar();
    // Returns the new bar when the document entered the top.
    let mut offer = |doc: DocId, score: Score| -> Option<Score> {
        let is_candidate = alive.is_none_or(|alive| alive.is_alive(doc)) && filter.accepts(doc);
        is_candidate.then(|| {
            top.push(score, DocAddress::new(segment_ord, doc));
            top.bar()
        })
    };
    // Unmatched documents stay at 0; BM25 scores of matches are positive. The bar test
    // is inline: it runs once per document of the segment.
    if is_sparse {
        for doc in touched {
            let score = std::mem::take(&mut scores[doc as usize]);
            if score > 0.0 && score >= bar {
                bar = offer(doc, score).unwrap_or(bar);
            }
        }
    } else {
        // Chunk by chunk: the maximum of a chunk vectorizes, and most chunks hold
        // nothing that can enter the top once it has filled. The chunks with the highest
        // maxima go first, so the bar rises at once: in document order a low bar lets
        // most chunks of a large segment be scanned score by score, which for a pool of
        // candidates (`common_words.rs`) cost more than the scoring. Any order gives the
        // same top, since a score enters or not by its value and address alone.
        let maxima = chunk_maxima_of(scores, chunk_maxima);
        let first_pass_floor = nth_highest(maxima, top_limit, selection);
        for pass in [ChunkPass::HighMaxima, ChunkPass::TheRest] {
            for (chunk_number, chunk) in scores.chunks(SCAN_CHUNK).enumerate() {
                let chunk_max = maxima[chunk_number];
                let in_pass = match pass {
                    ChunkPass::HighMaxima => chunk_max >= first_pass_floor,
                    ChunkPass::TheRest => chunk_max < first_pass_floor,
                };
                if !in_pass || chunk_max <= 0.0 || chunk_max < bar {
                    continue;
                }
                for (offset, score) in chunk.iter().enumerate() {
                    if *score > 0.0 && *score >= bar {
                        let doc = (chunk_number * SCAN_CHUNK + offset) as DocId;
                        bar = offer(doc, *score).unwrap_or(bar);
                    }
                }
            }
        }
        scores.fill(0.0);
    }
    Ok(())
}

/// The most postings one decoded block holds (tantivy's compression block).
const POSTINGS_PER_BLOCK: usize = 128;

/// Scores one decoded block of postings at a time, apart from adding them up.
///
/// Adding scores into the array goes document by document, but computing them need not:
/// done for a whole block first, the division of BM25's saturation runs four lanes at a
/// time instead of one posting at a time (the profile had put a third of the scoring
/// loop's samples right after that division).
struct BlockScores {
    length_norms: [Score; POSTINGS_PER_BLOCK],
    scores: [Score; POSTINGS_PER_BLOCK],
}

impl Default for BlockScores {
    fn default() -> BlockScores {
        BlockScores {
            length_norms: [0.0; POSTINGS_PER_BLOCK],
            scores: [0.0; POSTINGS_PER_BLOCK],
        }
    }
}

impl BlockScores {
    /// Returns the scores `weight` gives the postings `docs` and `term_freqs`, in order.
    fn compute(
        &mut self,
        weight: &TermWeight,
        fieldnorms: &FieldNormReader,
        docs: &[DocId],
        term_freqs: &[u32],
    ) -> &[Score] {
        debug_assert!(
            docs.len() <= POSTINGS_PER_BLOCK,
            "tantivy decodes 128 at a time"
        );
        let count = docs.len().min(POSTINGS_PER_BLOCK);
        let length_norms = &mut self.length_norms[..count];
        for (length_norm, doc) in length_norms.iter_mut().zip(docs) {
            *length_norm = weight.length_norms[fieldnorms.fieldnorm_id(*doc) as usize];
        }
        let scores = &mut self.scores[..count];
        for ((score, term_freq), length_norm) in
            scores.iter_mut().zip(term_freqs).zip(&*length_norms)
        {
            *score = saturate(weight.weight, *term_freq, *length_norm);
        }
        scores
    }
}

/// The two passes over a segment's chunks of scores.
#[derive(Clone, Copy)]
enum ChunkPass {
    /// The chunks whose maxima are among the `limit` highest.
    HighMaxima,
    TheRest,
}

/// Writes the maximum of every chunk of `scores` into `maxima` and returns them.
fn chunk_maxima_of<'maxima>(scores: &[Score], maxima: &'maxima mut Vec<Score>) -> &'maxima [Score] {
    maxima.clear();
    maxima.extend(scores.chunks(SCAN_CHUNK).map(chunk_maximum));
    maxima
}

/// Returns the `n`-th highest of `values` (non-negative; the lowest when there are fewer),
/// using `buffer` to select it.
fn nth_highest(values: &[Score], n: usize, buffer: &mut Vec<u32>) -> Score {
    if values.is_empty() || n == 0 {
        return Score::MAX;
    }
    buffer.clear();
    // Non-negative floats order like their bits.
    buffer.extend(values.iter().map(|value| value.to_bits()));
    let position = n.min(buffer.len()) - 1;
    let (_, nth, _) = buffer.select_nth_unstable_by(position, |left, right| right.cmp(left));
    Score::from_bits(*nth)
}

/// The largest score of a chunk (scores are never negative).
///
/// Kept in eight lanes, each one `if score > lane { score } else { lane }`: that is
/// exactly what the SSE instruction `maxps` computes, so the compiler turns the lanes
/// into two of them per eight scores on any x86-64 CPU. A float `max` reduction stays
/// scalar (it must keep the order of NaN comparisons), and an integer one over the
/// scores' bits has no instruction before SSE4.1's `pmaxud`, so on the baseline it was
/// emulated with several per four scores (−1.8% of a keystroke's CPU with the lanes).
fn chunk_maximum(chunk: &[Score]) -> Score {
    const LANES: usize = 8;
    let higher = |left: Score, right: Score| if right > left { right } else { left };
    let mut lanes = [0.0; LANES];
    let mut blocks = chunk.chunks_exact(LANES);
    for block in &mut blocks {
        for (lane, score) in lanes.iter_mut().zip(block) {
            *lane = higher(*lane, *score);
        }
    }
    let lanes_maximum = lanes.into_iter().fold(0.0, higher);
    blocks
        .remainder()
        .iter()
        .copied()
        .fold(lanes_maximum, higher)
}

/// A min-heap of the best scores seen so far, whose smallest entry is the bar a new
/// document has to clear once the heap is full.
struct TopScores {
    limit: usize,
    heap: BinaryHeap<ScoredDoc>,
}

/// Ordered worst first, so the heap's top is the entry to replace.
#[derive(PartialEq)]
struct ScoredDoc {
    score: Score,
    address: DocAddress,
}

impl Eq for ScoredDoc {}

impl PartialOrd for ScoredDoc {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ScoredDoc {
    fn cmp(&self, other: &Self) -> Ordering {
        // Lower score is "greater" (worse); on ties the higher address is worse.
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.address.cmp(&other.address))
    }
}

impl TopScores {
    fn new(limit: usize) -> TopScores {
        TopScores {
            limit,
            heap: BinaryHeap::with_capacity(limit + 1),
        }
    }

    /// Returns the lowest score that can still enter (any score while not full).
    fn bar(&self) -> Score {
        if self.heap.len() < self.limit {
            return Score::MIN;
        }
        self.heap.peek().map_or(Score::MIN, |worst| worst.score)
    }

    fn push(&mut self, score: Score, address: DocAddress) {
        if self.limit == 0 {
            return;
        }
        let candidate = ScoredDoc { score, address };
        if self.heap.len() < self.limit {
            self.heap.push(candidate);
            return;
        }
        let beats_the_worst = self.heap.peek().is_some_and(|worst| candidate < *worst);
        if beats_the_worst {
            self.heap.pop();
            self.heap.push(candidate);
        }
    }

    fn into_sorted(self) -> Vec<(Score, DocAddress)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|scored| (scored.score, scored.address))
            .collect()
    }
}

/// Small in-memory indexes for the scoring tests here and in `common_words.rs`.
#[cfg(test)]
pub(super) mod test_index {
    use tantivy::schema::{Field, Schema, STORED, TEXT};
    use tantivy::{doc, Index, IndexWriter, Score, Term};

    pub(crate) use super::TANTIVY_K1;
    use super::{ContentFilters, ScoreBuffers, WeightedTerm};
    use tantivy::{DocAddress, Searcher};

    /// An index of `texts` in one field, one segment per chunk of `per_segment`, with
    /// the documents at `deleted` positions deleted again.
    pub fn index_of(texts: &[String], per_segment: usize, deleted: &[usize]) -> (Index, Field) {
        let mut schema = Schema::builder();
        let body = schema.add_text_field("body", TEXT | STORED);
        let id = schema.add_u64_field("id", tantivy::schema::INDEXED);
        let index = Index::create_in_ram(schema.build());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for (position, chunk) in texts.chunks(per_segment).enumerate() {
            for (offset, text) in chunk.iter().enumerate() {
                let number = (position * per_segment + offset) as u64;
                writer
                    .add_document(doc!(body => text.as_str(), id => number))
                    .unwrap();
            }
            writer.commit().unwrap();
        }
        for position in deleted {
            writer.delete_term(Term::from_field_u64(id, *position as u64));
        }
        writer.commit().unwrap();
        (index, body)
    }

    /// The exact top: [`ScoreBuffers::top_documents`] with tantivy's `k1` and no filters.
    pub fn exact_top(
        searcher: &Searcher,
        terms: &[WeightedTerm],
        limit: usize,
    ) -> Vec<(Score, DocAddress)> {
        ScoreBuffers::default()
            .top_documents(
                searcher,
                terms,
                searcher,
                TANTIVY_K1,
                &ContentFilters::default(),
                limit,
            )
            .unwrap()
    }

    /// One clause per word of the body field, with its boost.
    pub fn weighted(body: Field, words: &[(&str, Score)]) -> Vec<WeightedTerm> {
        words
            .iter()
            .map(|(word, boost)| WeightedTerm {
                term: Term::from_field_text(body, word),
                boost: *boost,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use tantivy::collector::TopDocs;
    use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
    use tantivy::Searcher;

    use super::test_index::{exact_top, index_of, weighted};
    use super::*;

    fn texts(count: usize) -> Vec<String> {
        let words = [
            "reset", "password", "invoice", "card", "login", "export", "the", "a",
        ];
        (0..count)
            .map(|number| {
                (0..(3 + number % 7))
                    .map(|position| words[(number * 7 + position * position * 3) % words.len()])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    fn tantivy_top(
        searcher: &Searcher,
        terms: &[WeightedTerm],
        limit: usize,
    ) -> Vec<(Score, DocAddress)> {
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .iter()
            .map(|weighted| {
                let term_query =
                    TermQuery::new(weighted.term.clone(), IndexRecordOption::WithFreqs);
                let boosted: Box<dyn Query> =
                    Box::new(BoostQuery::new(Box::new(term_query), weighted.boost));
                (Occur::Should, boosted)
            })
            .collect();
        searcher
            .search(
                &BooleanQuery::new(clauses),
                &TopDocs::with_limit(limit).order_by_score(),
            )
            .unwrap()
    }

    fn assert_same_ranking(ours: &[(Score, DocAddress)], theirs: &[(Score, DocAddress)]) {
        assert_eq!(ours.len(), theirs.len());
        for ((our_score, our_address), (their_score, their_address)) in ours.iter().zip(theirs) {
            assert!(
                (our_score - their_score).abs() < 1e-4,
                "{our_score} against {their_score}"
            );
            // Equal scores may come in either order; different ones may not.
            if (our_score - their_score).abs() < 1e-6 {
                continue;
            }
            assert_eq!(our_address, their_address);
        }
    }

    #[test]
    fn top_documents_score_like_a_tantivy_boolean_query() {
        let (index, body) = index_of(&texts(3_000), 1_000, &[]);
        let searcher = index.reader().unwrap().searcher();
        let terms = weighted(body, &[("reset", 1.0), ("invoice", 0.5), ("the", 0.2)]);

        let ours = ScoreBuffers::default()
            .top_documents(
                &searcher,
                &terms,
                &searcher,
                TANTIVY_K1,
                &ContentFilters::default(),
                10,
            )
            .unwrap();

        assert_same_ranking(&ours, &tantivy_top(&searcher, &terms, 10));
        let scores: Vec<Score> = ours.iter().map(|(score, _)| *score).collect();
        assert!(
            scores.windows(2).all(|pair| pair[0] >= pair[1]),
            "best first: {scores:?}"
        );
    }

    #[test]
    fn rare_terms_take_the_sparse_path_and_score_the_same() {
        let mut texts = texts(4_000);
        texts[17] = "quota exceeded quota".to_owned();
        texts[3_017] = "quota".to_owned();
        let (index, body) = index_of(&texts, 2_000, &[]);
        let searcher = index.reader().unwrap().searcher();
        let terms = weighted(body, &[("quota", 1.0)]);
        let buffers = ScoreBuffers::default();

        let ours = buffers
            .top_documents(
                &searcher,
                &terms,
                &searcher,
                TANTIVY_K1,
                &ContentFilters::default(),
                5,
            )
            .unwrap();

        assert_same_ranking(&ours, &tantivy_top(&searcher, &terms, 5));
        assert_eq!(ours.len(), 2);
        let scratch = buffers.take();
        assert!(
            scratch.scores.iter().all(|score| *score == 0.0),
            "the buffer is zeroed again"
        );
    }

    #[test]
    fn deleted_documents_are_never_returned() {
        let (index, body) = index_of(&texts(500), 500, &[0, 7, 14]);
        let searcher = index.reader().unwrap().searcher();
        let terms = weighted(body, &[("reset", 1.0), ("password", 1.0)]);

        let ours = ScoreBuffers::default()
            .top_documents(
                &searcher,
                &terms,
                &searcher,
                TANTIVY_K1,
                &ContentFilters::default(),
                500,
            )
            .unwrap();

        let theirs = tantivy_top(&searcher, &terms, 500);
        assert_eq!(ours.len(), theirs.len());
        let deleted: Vec<DocId> = vec![0, 7, 14];
        assert!(ours
            .iter()
            .all(|(_, address)| !deleted.contains(&address.doc_id)));
    }

    #[test]
    fn the_top_is_found_when_the_best_chunks_hold_deleted_documents() {
        // The chunks with the highest maxima are scanned first; with the best documents
        // deleted, the top has to come from the other chunks.
        let texts = texts(5_000);
        let (index, body) = index_of(&texts, 5_000, &[]);
        let searcher = index.reader().unwrap().searcher();
        let terms = weighted(body, &[("reset", 1.0), ("invoice", 0.5), ("the", 0.2)]);
        let best: Vec<usize> = tantivy_top(&searcher, &terms, 40)
            .iter()
            .map(|(_, address)| address.doc_id as usize)
            .collect();
        let (index, body) = index_of(&texts, 5_000, &best);
        let searcher = index.reader().unwrap().searcher();
        let terms = weighted(body, &[("reset", 1.0), ("invoice", 0.5), ("the", 0.2)]);

        let ours = exact_top(&searcher, &terms, 10);

        assert_same_ranking(&ours, &tantivy_top(&searcher, &terms, 10));
        assert!(ours
            .iter()
            .all(|(_, address)| !best.contains(&(address.doc_id as usize))));
    }

    #[test]
    fn a_chunk_maximum_is_its_highest_score_wherever_it_lies() {
        assert_eq!(chunk_maximum(&[]), 0.0);
        for length in [1, 7, 8, 9, 63, 64] {
            for position in 0..length {
                let mut chunk: Vec<Score> = (0..length).map(|n| (n % 5) as Score * 0.1).collect();
                chunk[position] = 3.5;

                assert_eq!(chunk_maximum(&chunk), 3.5, "at {position} of {length}");
            }
            assert_eq!(chunk_maximum(&vec![0.0; length]), 0.0);
        }
    }

    #[test]
    fn nth_highest_selects_by_value() {
        let mut buffer = Vec::new();
        let values = [0.5, 3.0, 0.0, 2.0, 1.0];
        assert_eq!(nth_highest(&values, 1, &mut buffer), 3.0);
        assert_eq!(nth_highest(&values, 3, &mut buffer), 1.0);
        assert_eq!(nth_highest(&values, 9, &mut buffer), 0.0);
        assert_eq!(nth_highest(&[], 2, &mut buffer), Score::MAX);
    }

    #[test]
    fn added_scores_equal_the_scores_of_the_whole_query() {
        let (index, body) = index_of(&texts(2_000), 700, &[]);
        let searcher = index.reader().unwrap().searcher();
        let searched = weighted(body, &[("card", 1.0), ("login", 1.0)]);
        let added = weighted(body, &[("the", 0.3), ("a", 0.3)]);
        let mut top = ScoreBuffers::default()
            .top_documents(
                &searcher,
                &searched,
                &searcher,
                TANTIVY_K1,
                &ContentFilters::default(),
                2_000,
            )
            .unwrap();

        add_scores(
            &TermLookups::new(&searcher),
            &added,
            &searcher,
            TANTIVY_K1,
            &mut top,
        )
        .unwrap();

        let whole: Vec<WeightedTerm> = searched.iter().chain(&added).cloned().collect();
        let mut expected = tantivy_top(&searcher, &whole, 2_000);
        // The whole query also finds documents with only the added words.
        let found: std::collections::HashSet<DocAddress> =
            top.iter().map(|(_, address)| *address).collect();
        expected.retain(|(_, address)| found.contains(address));
        assert_same_ranking(&top, &expected);
    }

    #[test]
    fn one_document_scores_what_the_ranking_gave_it_in_one_segment_or_several() {
        let k1 = 2.0;
        for documents_per_segment in [3_000, 700] {
            let (index, body) = index_of(&texts(3_000), documents_per_segment, &[]);
            let searcher = index.reader().unwrap().searcher();
            let terms = weighted(
                body,
                &[
                    ("reset", 1.0),
                    ("invoice", 0.5),
                    ("the", 0.2),
                    ("absent", 1.0),
                ],
            );
            let ranked = ScoreBuffers::default()
                .top_documents(
                    &searcher,
                    &terms,
                    &searcher,
                    k1,
                    &ContentFilters::default(),
                    50,
                )
                .unwrap();
            assert_eq!(ranked.len(), 50);

            for (ranked_score, address) in ranked {
                let lookups = TermLookups::new(&searcher);
                let alone = score_document(&lookups, &terms, &searcher, k1, address).unwrap();
                assert!(
                    (alone - ranked_score).abs() < 1e-4,
                    "{alone} against {ranked_score} at {address:?}, {documents_per_segment} per segment"
                );
            }
        }
    }

    fn address(doc: DocId) -> DocAddress {
        DocAddress::new(0, doc)
    }

    #[test]
    fn top_scores_keep_the_best_and_raise_the_bar() {
        let mut top = TopScores::new(2);
        top.push(1.0, address(1));
        assert_eq!(top.bar(), Score::MIN);
        top.push(3.0, address(2));
        top.push(2.0, address(3));
        assert_eq!(top.bar(), 2.0);
        let docs: Vec<DocId> = top
            .into_sorted()
            .iter()
            .map(|(_, address)| address.doc_id)
            .collect();
        assert_eq!(docs, [2, 3]);
    }

    #[test]
    fn on_a_tie_the_earlier_document_stays() {
        let mut top = TopScores::new(1);
        top.push(2.0, address(5));
        top.push(2.0, address(9));
        top.push(2.0, address(1));
        let docs: Vec<DocId> = top
            .into_sorted()
            .iter()
            .map(|(_, address)| address.doc_id)
            .collect();
        assert_eq!(docs, [1]);
    }

    #[test]
    fn a_higher_k1_lets_repeated_occurrences_count_for_more() {
        let ratio_of_ten_to_one = |k1: Score| {
            let weight = TermWeight::new(2.0, 20.0, k1, 1.0);
            let fieldnorm_id = tantivy::fieldnorm::FieldNormReader::fieldnorm_to_id(20);
            weight.score(fieldnorm_id, 10) / weight.score(fieldnorm_id, 1)
        };
        assert!(ratio_of_ten_to_one(2.5) > ratio_of_ten_to_one(TANTIVY_K1));
    }
}
