//! Scoring in two phases where a catalog is large: the words that a large share of its
//! documents contain are scored on the best candidates of the draft's other words only.
//!
//! On a large catalog most of a query's postings belong to a few such words. On the
//! benchmark catalog (100,000 documents) a keystroke's query reads 169,000 postings on
//! average, and two thirds of them are two body words found in over 30% of the
//! documents. What such a word adds to one document is small, since its inverse document
//! frequency is low, yet reading its list costs more than all the other clauses
//! together. Exact pruning (MaxScore, block-max WAND) cannot skip them: together they
//! can still add more than the best documents have (BENCHMARKS.md, "Fifth run").
//!
//! So the other clauses find a pool of candidates several times larger than the search
//! needs, and the common words' scores are added to those alone, by skipping to them in
//! their lists, as the stop words of long drafts always were. Each returned document's
//! score is its whole score. The ranking differs from reading everything only where a
//! document outside the pool would have been carried into the top by common words
//! alone; on the benchmark's 4,000 drafts the first three results were the same for
//! 99.75% of them (BENCHMARKS.md, "Eighth run"). Catalogs below
//! `min_common_word_documents` documents, every relevance set among them, are always
//! scored whole.

use tantivy::query::Bm25StatisticsProvider;
use tantivy::{DocAddress, Score};

use super::accumulator::{add_clause_scores, clauses_of, Clause, ScoreBuffers, WeightedTerm};
use super::query::ContentFilters;
use super::term_lookups::TermLookups;

/// When a word is common, and how large the pool of candidates is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CommonWordSplit {
    /// A word in at least this share of the tenant's documents is common ...
    pub share: f32,
    /// ... when that is at least this many documents.
    pub min_documents: u64,
    /// The other words find this many times the candidates the search asked for.
    pub pool_factor: usize,
}

impl CommonWordSplit {
    /// Returns the document frequency from which a term is common.
    fn common_from(&self, total_num_docs: u64) -> u64 {
        // In f32, as the share is: 0.2 of 100,000 is then 20,000, not 20,001.
        let by_share = (self.share * total_num_docs as f32).ceil() as u64;
        by_share.max(self.min_documents).max(1)
    }
}

impl ScoreBuffers {
    /// Returns the `limit` best live documents passing `filters`, best first, as reading
    /// every posting would (`top_documents`, which the tests hold this against), but with
    /// the clauses of common words scored on the pool of the other clauses' best
    /// documents only.
    ///
    /// Every clause is read in full when none is common, when all are, or when the
    /// other clauses match fewer documents than the pool holds (then the top may need
    /// documents that only common words match).
    #[allow(clippy::too_many_arguments)]
    pub fn top_documents_in_two_phases(
        &self,
        lookups: &TermLookups<'_>,
        terms: &[WeightedTerm],
        statistics: &dyn Bm25StatisticsProvider,
        k1: Score,
        filters: &ContentFilters,
        limit: usize,
        split: &CommonWordSplit,
    ) -> tantivy::Result<Vec<(Score, DocAddress)>> {
        let clauses = clauses_of(terms, statistics, k1)?;
        let every_clause: Vec<&Clause<'_>> = clauses.iter().collect();
        let common_from = split.common_from(statistics.total_num_docs()?);
        let (common, selective): (Vec<&Clause<'_>>, Vec<&Clause<'_>>) = clauses
            .iter()
            .partition(|clause| clause.doc_freq >= common_from);
        if common.is_empty() || selective.is_empty() {
            return self.top_of_clauses(lookups, &every_clause, filters, limit);
        }
        let pool = limit.saturating_mul(split.pool_factor.max(1));
        let mut top = self.top_of_clauses(lookups, &selective, filters, pool)?;
        if top.len() < pool {
            return self.top_of_clauses(lookups, &every_clause, filters, limit);
        }
        add_clause_scores(lookups, &common, &mut top)?;
        top.truncate(limit);
        Ok(top)
    }
}

#[cfg(test)]
mod tests {
    use tantivy::{DocId, Index, Searcher};

    use super::*;
    use crate::search::accumulator::test_index::{exact_top, index_of, weighted, TANTIVY_K1};

    fn top(
        searcher: &Searcher,
        terms: &[WeightedTerm],
        limit: usize,
        split: &CommonWordSplit,
    ) -> Vec<(Score, DocAddress)> {
        ScoreBuffers::default()
            .top_documents_in_two_phases(
                &TermLookups::new(searcher),
                terms,
                searcher,
                TANTIVY_K1,
                &ContentFilters::default(),
                limit,
                split,
            )
            .unwrap()
    }

    fn assert_same_documents_and_scores(
        ours: &[(Score, DocAddress)],
        exact: &[(Score, DocAddress)],
    ) {
        assert_eq!(ours.len(), exact.len());
        for ((our_score, our_address), (exact_score, exact_address)) in ours.iter().zip(exact) {
            assert_eq!(our_address, exact_address, "{ours:?} against {exact:?}");
            assert!(
                (our_score - exact_score).abs() < 1e-4,
                "{our_score} against {exact_score}"
            );
        }
    }

    /// 2,000 documents: "filler" in three of every five (one to three times), "quota"
    /// in every tenth, "limit" twice in every twentieth.
    fn catalog() -> Vec<String> {
        (0..2_000)
            .map(|number| {
                let mut words = vec!["other"];
                if number % 5 < 3 {
                    words.extend(std::iter::repeat_n("filler", 1 + number % 3));
                }
                if number % 10 == 0 {
                    words.push("quota");
                }
                if number % 20 == 0 {
                    words.extend(["limit", "limit"]);
                }
                words.join(" ")
            })
            .collect()
    }

    /// With a common word weighing far more than the rare one, a document with the
    /// common word only, thirty times over, is the best of all.
    fn catalog_with_a_document_of_filler() -> Vec<String> {
        let mut texts = catalog();
        texts[3] = vec!["filler"; 30].join(" ");
        texts
    }

    const FILLER_ONLY: DocId = 3;

    /// That catalog in one segment, and a query whose rare word ("limit") weighs little
    /// and whose common word ("filler") weighs much.
    fn filler_outweighing_limit() -> (Index, Vec<WeightedTerm>) {
        let (index, body) = index_of(&catalog_with_a_document_of_filler(), 2_000, &[]);
        let terms = weighted(body, &[("limit", 0.1), ("filler", 5.0)]);
        (index, terms)
    }

    /// Words in half the documents or more are common.
    fn split_with_pool_factor(pool_factor: usize) -> CommonWordSplit {
        CommonWordSplit {
            share: 0.5,
            min_documents: 100,
            pool_factor,
        }
    }

    #[test]
    fn common_words_are_added_to_the_candidates_whole() {
        let (index, body) = index_of(&catalog(), 700, &[]);
        let searcher = index.reader().unwrap().searcher();
        let terms = weighted(body, &[("quota", 1.0), ("filler", 0.5)]);
        // A pool of 10 x 20 = 200: every document with "quota".
        let split = split_with_pool_factor(20);

        let two_phases = top(&searcher, &terms, 10, &split);

        assert_same_documents_and_scores(&two_phases, &exact_top(&searcher, &terms, 10));
    }

    #[test]
    fn a_pool_the_other_words_cannot_fill_reads_every_clause() {
        let (index, terms) = filler_outweighing_limit();
        let searcher = index.reader().unwrap().searcher();
        // 5 x 40 = 200 candidates, and only 100 documents have "limit".
        let split = split_with_pool_factor(40);

        let two_phases = top(&searcher, &terms, 5, &split);

        let exact = exact_top(&searcher, &terms, 5);
        assert_eq!(exact[0].1.doc_id, FILLER_ONLY);
        assert_same_documents_and_scores(&two_phases, &exact);
    }

    #[test]
    fn a_document_only_common_words_carry_is_left_out_once_the_pool_is_full() {
        // The trade this module makes, pinned down: the catalog above, and a pool of 20
        // that the 100 documents with "limit" fill.
        let (index, terms) = filler_outweighing_limit();
        let searcher = index.reader().unwrap().searcher();
        let split = split_with_pool_factor(4);

        let two_phases = top(&searcher, &terms, 5, &split);

        assert_eq!(exact_top(&searcher, &terms, 5)[0].1.doc_id, FILLER_ONLY);
        assert_eq!(two_phases.len(), 5);
        assert!(two_phases
            .iter()
            .all(|(_, address)| address.doc_id % 20 == 0));
    }

    #[test]
    fn small_catalogs_are_always_scored_whole() {
        let (index, terms) = filler_outweighing_limit();
        let searcher = index.reader().unwrap().searcher();
        let split = CommonWordSplit {
            share: 0.2,
            min_documents: 10_000,
            pool_factor: 1,
        };

        let two_phases = top(&searcher, &terms, 5, &split);

        assert_eq!(two_phases[0].1.doc_id, FILLER_ONLY);
        assert_same_documents_and_scores(&two_phases, &exact_top(&searcher, &terms, 5));
    }

    #[test]
    fn a_word_is_common_from_its_share_or_the_minimum_whichever_is_more() {
        let split = CommonWordSplit {
            share: 0.2,
            min_documents: 10_000,
            pool_factor: 4,
        };
        assert_eq!(split.common_from(100_000), 20_000);
        assert_eq!(split.common_from(20_000), 10_000);
        assert_eq!(split.common_from(0), 10_000);
    }
}
