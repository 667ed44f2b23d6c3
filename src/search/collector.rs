//! A top-k collector that applies deflect's optional filters (language, kind, audience,
//! product) per hit from fast fields, while keeping tantivy's block-max WAND pruning.
//!
//! Filters as `Must` clauses would stop tantivy from pruning the union of query terms;
//! checking them in the pruning callback keeps the fast path for every query.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::query::Weight;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use super::query::ContentFilters;

/// Collects the `limit` best-scoring live documents that pass the filters.
pub(crate) struct FilteredTopDocs<'filters> {
    limit: usize,
    filters: &'filters ContentFilters,
    /// The score a document must beat to enter the overall top `limit`, carried from
    /// one segment to the next (segments are searched one after the other) so later
    /// segments start pruning at once. `f32` bits.
    bar_bits: AtomicU32,
}

impl FilteredTopDocs<'_> {
    pub fn new(limit: usize, filters: &ContentFilters) -> FilteredTopDocs<'_> {
        FilteredTopDocs {
            limit,
            filters,
            bar_bits: AtomicU32::new(Score::MIN.to_bits()),
        }
    }

    fn bar(&self) -> Score {
        Score::from_bits(self.bar_bits.load(AtomicOrdering::Relaxed))
    }

    fn raise_bar(&self, score: Score) {
        // `fetch_max` on the bits would compare negative floats wrongly.
        let _ =
            self.bar_bits
                .fetch_update(AtomicOrdering::Relaxed, AtomicOrdering::Relaxed, |bits| {
                    (score > Score::from_bits(bits)).then_some(score.to_bits())
                });
    }
}

impl Collector for FilteredTopDocs<'_> {
    type Fruit = Vec<(Score, DocAddress)>;
    type Child = FilteredTopSegment;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<FilteredTopSegment> {
        Ok(FilteredTopSegment {
            segment_ord,
            filter: SegmentFilter::new(reader, self.filters)?,
            top: TopScores::new(self.limit),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(Score, DocAddress)>>) -> tantivy::Result<Self::Fruit> {
        let mut merged: Vec<(Score, DocAddress)> = fruits.into_iter().flatten().collect();
        merged.sort_by(|left, right| {
            right
                .0
                .partial_cmp(&left.0)
                .unwrap_or(Ordering::Equal)
                .then_with(|| left.1.cmp(&right.1))
        });
        merged.truncate(self.limit);
        Ok(merged)
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Vec<(Score, DocAddress)>> {
        let Some(filter) = SegmentFilter::new(reader, self.filters)? else {
            return Ok(Vec::new());
        };
        let mut top = TopScores::new(self.limit);
        let alive_bitset = reader.alive_bitset();
        let bar_of_earlier_segments = self.bar();
        weight.for_each_pruning(bar_of_earlier_segments, reader, &mut |doc, score| {
            let is_deleted = alive_bitset.is_some_and(|alive| alive.is_deleted(doc));
            if !is_deleted && filter.accepts(doc) {
                top.push(score, doc);
            }
            top.threshold().max(bar_of_earlier_segments)
        })?;
        self.raise_bar(top.threshold());
        Ok(top.into_sorted(segment_ord))
    }
}

/// The per-segment side of [`FilteredTopDocs`], used when tantivy does not prune.
pub(crate) struct FilteredTopSegment {
    segment_ord: SegmentOrdinal,
    filter: Option<SegmentFilter>,
    top: TopScores,
}

impl SegmentCollector for FilteredTopSegment {
    type Fruit = Vec<(Score, DocAddress)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self
            .filter
            .as_ref()
            .is_some_and(|filter| filter.accepts(doc))
        {
            self.top.push(score, doc);
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.top.into_sorted(self.segment_ord)
    }
}

/// The filters of one query resolved to one segment's term ordinals.
struct SegmentFilter {
    language: Option<(StrColumn, u64)>,
    kinds: Option<(StrColumn, Vec<u64>)>,
    /// Documents without audiences are for everyone; `None` as ordinal means the
    /// requested audience does not occur in this segment.
    audience: Option<(StrColumn, Option<u64>)>,
    product: Option<(StrColumn, u64)>,
}

impl SegmentFilter {
    /// Returns `None` when no document of the segment can pass.
    fn new(
        reader: &SegmentReader,
        filters: &ContentFilters,
    ) -> tantivy::Result<Option<SegmentFilter>> {
        let fast_fields = reader.fast_fields();
        let column = |name: &str| -> tantivy::Result<Option<StrColumn>> { fast_fields.str(name) };
        let ordinal = |column: &StrColumn, value: &str| -> tantivy::Result<Option<u64>> {
            Ok(column.dictionary().term_ord(value.as_bytes())?)
        };

        let language = match &filters.language {
            None => None,
            Some(language) => {
                let Some(column) = column("language")? else {
                    return Ok(None);
                };
                let Some(ord) = ordinal(&column, language)? else {
                    return Ok(None);
                };
                Some((column, ord))
            }
        };
        let kinds = if filters.kinds.is_empty() {
            None
        } else {
            let Some(column) = column("kind")? else {
                return Ok(None);
            };
            let mut ords = Vec::new();
            for kind in &filters.kinds {
                if let Some(ord) = ordinal(&column, kind.as_str())? {
                    ords.push(ord);
                }
            }
            if ords.is_empty() {
                return Ok(None);
            }
            Some((column, ords))
        };
        let audience = match &filters.audience {
            None => None,
            Some(audience) => match column("audiences")? {
                // No document of the segment names an audience: all are for everyone.
                None => None,
                Some(column) => {
                    let ord = ordinal(&column, audience)?;
                    Some((column, ord))
                }
            },
        };
        let product = match &filters.product {
            None => None,
            Some(product) => {
                let Some(column) = column("products")? else {
                    return Ok(None);
                };
                let Some(ord) = ordinal(&column, product)? else {
                    return Ok(None);
                };
                Some((column, ord))
            }
        };
        Ok(Some(SegmentFilter {
            language,
            kinds,
            audience,
            product,
        }))
    }

    fn accepts(&self, doc: DocId) -> bool {
        if let Some((column, wanted)) = &self.language {
            if column.ords().first(doc) != Some(*wanted) {
                return false;
            }
        }
        if let Some((column, wanted)) = &self.kinds {
            match column.ords().first(doc) {
                Some(kind) if wanted.contains(&kind) => {}
                _ => return false,
            }
        }
        if let Some((column, wanted)) = &self.audience {
            let mut audiences = column.term_ords(doc).peekable();
            let for_everyone = audiences.peek().is_none();
            if !for_everyone && !audiences.any(|audience| Some(audience) == *wanted) {
                return false;
            }
        }
        if let Some((column, wanted)) = &self.product {
            if !column.term_ords(doc).any(|product| product == *wanted) {
                return false;
            }
        }
        true
    }
}

/// A min-heap of the best scores seen so far, whose smallest entry is the bar a new
/// document has to clear once the heap is full.
struct TopScores {
    limit: usize,
    heap: BinaryHeap<Reverse<ScoredDoc>>,
}

#[derive(PartialEq)]
struct ScoredDoc {
    score: Score,
    doc: DocId,
}

impl Eq for ScoredDoc {}

impl PartialOrd for ScoredDoc {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ScoredDoc {
    fn cmp(&self, other: &Self) -> Ordering {
        // Higher score first; on ties the lower doc id wins (it arrived first).
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| other.doc.cmp(&self.doc))
    }
}

impl TopScores {
    fn new(limit: usize) -> TopScores {
        TopScores {
            limit,
            heap: BinaryHeap::with_capacity(limit + 1),
        }
    }

    fn push(&mut self, score: Score, doc: DocId) {
        if self.limit == 0 {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(Reverse(ScoredDoc { score, doc }));
            return;
        }
        let beats_the_worst = self
            .heap
            .peek()
            .is_some_and(|Reverse(worst)| score > worst.score);
        if beats_the_worst {
            self.heap.pop();
            self.heap.push(Reverse(ScoredDoc { score, doc }));
        }
    }

    fn threshold(&self) -> Score {
        if self.heap.len() < self.limit {
            return Score::MIN;
        }
        self.heap
            .peek()
            .map_or(Score::MIN, |Reverse(worst)| worst.score)
    }

    fn into_sorted(self, segment_ord: SegmentOrdinal) -> Vec<(Score, DocAddress)> {
        let mut scored: Vec<ScoredDoc> = self.heap.into_iter().map(|Reverse(doc)| doc).collect();
        scored.sort_by(|left, right| right.cmp(left));
        scored
            .into_iter()
            .map(|scored| (scored.score, DocAddress::new(segment_ord, scored.doc)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_scores_keep_the_best_and_raise_the_bar() {
        let mut top = TopScores::new(2);
        top.push(1.0, 1);
        assert_eq!(top.threshold(), Score::MIN);
        top.push(3.0, 2);
        top.push(2.0, 3);
        assert_eq!(top.threshold(), 2.0);
        let docs: Vec<u32> = top
            .into_sorted(0)
            .iter()
            .map(|(_, address)| address.doc_id)
            .collect();
        assert_eq!(docs, [2, 3]);
    }
}
