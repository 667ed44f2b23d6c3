//! One search's memo of the term dictionary: each term's entry in each segment, looked up
//! once.
//!
//! A search asks for the same terms again and again: resolving the draft's words reads
//! their document frequencies, the scoring query reads them again to weigh its clauses
//! and then opens their postings, and the best hits' matched words and confidence open
//! them once more. Every one of those walked the term dictionary's FST, which was 3-4% of
//! the server's CPU per keystroke; a hash look-up of a term already seen costs a fraction
//! of that. Each segment's inverted index readers are kept too, since tantivy hands them
//! out from behind a lock.
//!
//! The memo lives for one search on one thread, so it needs no lock.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use tantivy::postings::{BlockSegmentPostings, SegmentPostings, TermInfo};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{InvertedIndexReader, Searcher, Term};

/// The term dictionary of a searcher's segments, remembered for one search.
pub(crate) struct TermLookups<'searcher> {
    searcher: &'searcher Searcher,
    segments: RefCell<Vec<SegmentLookups>>,
}

/// What one segment has answered so far.
#[derive(Default)]
struct SegmentLookups {
    /// A search reads five fields at most: a list beats a map.
    inverted_indexes: Vec<(Field, Arc<InvertedIndexReader>)>,
    /// `None` for a term the segment does not have.
    term_infos: HashMap<Term, Option<TermInfo>, foldhash::fast::RandomState>,
}

impl<'searcher> TermLookups<'searcher> {
    pub fn new(searcher: &'searcher Searcher) -> TermLookups<'searcher> {
        let segments = searcher
            .segment_readers()
            .iter()
            .map(|_| SegmentLookups::default())
            .collect();
        TermLookups {
            searcher,
            segments: RefCell::new(segments),
        }
    }

    pub fn searcher(&self) -> &'searcher Searcher {
        self.searcher
    }

    /// Returns the inverted index of `field` in the segment `segment_ord`.
    pub fn inverted_index(
        &self,
        segment_ord: u32,
        field: Field,
    ) -> tantivy::Result<Arc<InvertedIndexReader>> {
        let mut segments = self.segments.borrow_mut();
        let segment = &mut segments[segment_ord as usize];
        if let Some((_, inverted_index)) = segment
            .inverted_indexes
            .iter()
            .find(|(known, _)| *known == field)
        {
            return Ok(inverted_index.clone());
        }
        let inverted_index = self
            .searcher
            .segment_reader(segment_ord)
            .inverted_index(field)?;
        segment
            .inverted_indexes
            .push((field, inverted_index.clone()));
        Ok(inverted_index)
    }

    /// Returns the dictionary entry of `term` in the segment `segment_ord`, `None` when
    /// the segment does not have it.
    pub fn term_info(&self, segment_ord: u32, term: &Term) -> tantivy::Result<Option<TermInfo>> {
        if let Some(term_info) = self.segments.borrow()[segment_ord as usize]
            .term_infos
            .get(term)
        {
            return Ok(term_info.clone());
        }
        let term_info = self
            .inverted_index(segment_ord, term.field())?
            .get_term_info(term)?;
        self.segments.borrow_mut()[segment_ord as usize]
            .term_infos
            .insert(term.clone(), term_info.clone());
        Ok(term_info)
    }

    /// Returns how many documents of all segments have `term`, deleted ones included,
    /// as [`Searcher::doc_freq`] does.
    pub fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let mut doc_freq = 0;
        for segment_ord in 0..self.segment_count() {
            if let Some(term_info) = self.term_info(segment_ord, term)? {
                doc_freq += u64::from(term_info.doc_freq);
            }
        }
        Ok(doc_freq)
    }

    /// Returns the postings of `term` in the segment `segment_ord` a block at a time,
    /// `None` when the segment does not have it.
    pub fn block_postings(
        &self,
        segment_ord: u32,
        term: &Term,
        option: IndexRecordOption,
    ) -> tantivy::Result<Option<BlockSegmentPostings>> {
        self.read_term(segment_ord, term, |inverted_index, term_info| {
            inverted_index.read_block_postings_from_terminfo(term_info, option)
        })
    }

    /// Returns the postings of `term` in the segment `segment_ord` a document at a time,
    /// `None` when the segment does not have it.
    pub fn postings(
        &self,
        segment_ord: u32,
        term: &Term,
        option: IndexRecordOption,
    ) -> tantivy::Result<Option<SegmentPostings>> {
        self.read_term(segment_ord, term, |inverted_index, term_info| {
            inverted_index.read_postings_from_terminfo(term_info, option)
        })
    }

    /// Calls `read` with the inverted index and the entry of `term` in the segment
    /// `segment_ord`, when the segment has the term.
    fn read_term<Read>(
        &self,
        segment_ord: u32,
        term: &Term,
        read: impl FnOnce(&InvertedIndexReader, &TermInfo) -> std::io::Result<Read>,
    ) -> tantivy::Result<Option<Read>> {
        let Some(term_info) = self.term_info(segment_ord, term)? else {
            return Ok(None);
        };
        let inverted_index = self.inverted_index(segment_ord, term.field())?;
        Ok(Some(read(&inverted_index, &term_info)?))
    }

    fn segment_count(&self) -> u32 {
        self.searcher.segment_readers().len() as u32
    }
}

#[cfg(test)]
mod tests {
    use tantivy::schema::{Schema, STRING};
    use tantivy::{doc, Index, IndexWriter};

    use super::*;

    /// An index of three segments: "a" in each, "b" in the second only.
    fn index_of_three_segments() -> (Index, Field) {
        let mut builder = Schema::builder();
        let field = builder.add_text_field("word", STRING);
        let index = Index::create_in_ram(builder.build());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for words in [&["a"][..], &["a", "b", "b"], &["a"]] {
            for word in words {
                writer.add_document(doc!(field => *word)).unwrap();
            }
            writer.commit().unwrap();
        }
        (index, field)
    }

    #[test]
    fn document_frequencies_are_the_searchers_in_every_segment() {
        let (index, field) = index_of_three_segments();
        let searcher = index.reader().unwrap().searcher();
        assert_eq!(searcher.segment_readers().len(), 3);
        let lookups = TermLookups::new(&searcher);

        for word in ["a", "b", "c", "a", "b"] {
            let term = Term::from_field_text(field, word);
            assert_eq!(
                lookups.doc_freq(&term).unwrap(),
                searcher.doc_freq(&term).unwrap(),
                "{word}"
            );
        }
    }

    #[test]
    fn postings_are_those_of_the_segment_asked_for() {
        let (index, field) = index_of_three_segments();
        let searcher = index.reader().unwrap().searcher();
        let lookups = TermLookups::new(&searcher);
        let b = Term::from_field_text(field, "b");

        let segments_with_b: Vec<u32> = (0..3)
            .filter(|segment_ord| {
                lookups
                    .postings(*segment_ord, &b, IndexRecordOption::Basic)
                    .unwrap()
                    .is_some()
            })
            .collect();
        let block_docs = (0..3)
            .filter_map(|segment_ord| {
                lookups
                    .block_postings(segment_ord, &b, IndexRecordOption::Basic)
                    .unwrap()
            })
            .map(|blocks| blocks.docs().len())
            .collect::<Vec<_>>();

        let expected: Vec<u32> = (0..3)
            .filter(|segment_ord| {
                searcher
                    .segment_reader(*segment_ord)
                    .inverted_index(field)
                    .unwrap()
                    .doc_freq(&b)
                    .unwrap()
                    > 0
            })
            .collect();
        assert_eq!(segments_with_b.len(), 1);
        assert_eq!(segments_with_b, expected);
        assert_eq!(block_docs, vec![2]);
    }
}
