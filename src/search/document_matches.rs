//! Which of a query's words one hit contains, read from the postings.
//!
//! Confidence and the `matched_terms` of a hit need to know which query words a document
//! has. Seeking each term's postings to the document costs microseconds; analysing the
//! stored text again would cost a pass over the whole body per hit.

use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocAddress, DocSet, Term};

use super::index::IndexError;
use super::term_lookups::TermLookups;
use super::terms::scoped;
use super::words::{ResolvedWord, TextFields};

/// The query words found in one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DocumentMatches {
    /// Per query word, per index term of the word: whether the document contains it in
    /// its title, summary or body.
    pub terms: Vec<Vec<bool>>,
    /// Whether a title or summary word starts with the word being typed.
    pub prefix: bool,
}

impl DocumentMatches {
    /// Returns whether the document contains word `position` in any of its forms
    /// (the word being typed also through its prefix).
    pub fn has_word(&self, words: &[ResolvedWord], position: usize) -> bool {
        self.terms[position].iter().any(|found| *found)
            || (words[position].is_being_typed && self.prefix)
    }
}

/// Which words [`find_matches`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WordsToMatch {
    /// Every word: the best hit's coverage decides whether to abstain.
    All,
    /// Content words only: all the other hits need is which terms to highlight, and
    /// stop words are never highlighted. Stop words are reported as not found.
    ContentWords,
}

/// Slots of [`TextFields`] (title, summary, body) in the order they are searched.
const FIELDS_MOST_LIKELY_FIRST: [usize; 3] = [2, 1, 0];

/// Looks up each index term of `words` (and the prefix, when there is one) in the
/// document at `address`.
pub(crate) fn find_matches(
    lookups: &TermLookups<'_>,
    address: DocAddress,
    scope: &str,
    words: &[ResolvedWord],
    words_to_match: WordsToMatch,
    text_fields: &TextFields,
    prefix_opt: Option<(Field, &str)>,
) -> Result<DocumentMatches, IndexError> {
    let contains = |term: &Term| -> Result<bool, IndexError> {
        let postings = lookups.postings(address.segment_ord, term, IndexRecordOption::Basic)?;
        let Some(mut postings) = postings else {
            return Ok(false);
        };
        // Postings start on their first document; `seek` may only move forward.
        if postings.doc() < address.doc_id {
            postings.seek(address.doc_id);
        }
        Ok(postings.doc() == address.doc_id)
    };

    let mut terms = Vec::with_capacity(words.len());
    for word in words {
        let mut found_terms = Vec::with_capacity(word.index_terms.len());
        if word.is_stop_word && words_to_match == WordsToMatch::ContentWords {
            found_terms.resize(word.index_terms.len(), false);
            terms.push(found_terms);
            continue;
        }
        for index_term in &word.index_terms {
            let scoped_term = scoped(scope, &index_term.text);
            let mut found = false;
            // The body first: a word a document has is most often in its body, and
            // every look-up opens a posting list.
            for slot in FIELDS_MOST_LIKELY_FIRST {
                let (field, _) = &text_fields[slot];
                if found || index_term.doc_freqs[slot] == 0 {
                    continue;
                }
                let term = Term::from_field_text(*field, &scoped_term);
                found = contains(&term)?;
            }
            found_terms.push(found);
        }
        terms.push(found_terms);
    }
    let prefix = match prefix_opt {
        Some((prefixes_field, prefix)) => contains(&Term::from_field_text(
            prefixes_field,
            &scoped(scope, prefix),
        ))?,
        None => false,
    };
    Ok(DocumentMatches { terms, prefix })
}
