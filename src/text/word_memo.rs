//! A per-thread memo of analysed words, kept compact and bounded in bytes.
//!
//! Stemming and Unicode folding cost far more than a hash look-up, and indexing, drafts
//! and snippets analyse the same words over and over, so each thread remembers what it
//! analysed. A long-running server meets many distinct words, though: with a map of
//! two `String`s per word, one language's 50,000 words took 8-10 MiB of heap per thread,
//! and each of eight languages had its own. Here every word of every language shares one
//! text buffer and takes an 8-byte slot, and the memo is emptied when either bound is
//! reached, so a thread's memo never holds more than about 2 MiB.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Words remembered per thread before the memo is emptied.
const MAX_WORDS: usize = 50_000;

/// Bytes of surface words and terms remembered per thread before the memo is emptied.
const MAX_TEXT_BYTES: usize = 1 << 20;

/// Longest surface word or term remembered, in bytes; a longer one (a pasted token of
/// a log) is analysed each time. Fits the entries' one-byte lengths.
const MAX_REMEMBERED_WORD_BYTES: usize = u8::MAX as usize;

/// A word's analysis as the index sees it, borrowed from the memo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalysedWordRef<'memo> {
    pub term: &'memo str,
    pub is_stop_word: bool,
}

/// One remembered word: its surface at `start` in the text buffer, then its term, unless
/// the term is the surface itself (a word already lowercase that stems to itself).
#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u32,
    surface_len: u8,
    term_len: u8,
    /// The language's slot in the low bits, then [`STOP_WORD`] and [`TERM_IS_SURFACE`].
    flags: u8,
}

const LANGUAGE_BITS: u8 = 0b0000_1111;
/// Languages the memo tells apart: as many as [`LANGUAGE_BITS`] can number.
pub(crate) const MAX_LANGUAGES: usize = LANGUAGE_BITS as usize + 1;
const STOP_WORD: u8 = 0b0001_0000;
const TERM_IS_SURFACE: u8 = 0b0010_0000;

impl Entry {
    fn language_slot(self) -> u8 {
        self.flags & LANGUAGE_BITS
    }

    fn surface(self, text: &str) -> &str {
        let start = self.start as usize;
        &text[start..start + usize::from(self.surface_len)]
    }

    fn analysed(self, text: &str) -> AnalysedWordRef<'_> {
        let surface_end = self.start as usize + usize::from(self.surface_len);
        let term = if self.flags & TERM_IS_SURFACE != 0 {
            self.surface(text)
        } else {
            &text[surface_end..surface_end + usize::from(self.term_len)]
        };
        AnalysedWordRef {
            term,
            is_stop_word: self.flags & STOP_WORD != 0,
        }
    }
}

/// Returns the memo's hash of a surface word of one language: the same on look-up and
/// when the table grows and places its entries again.
fn hash_of(hasher: &foldhash::fast::RandomState, language_slot: u8, surface: &str) -> u64 {
    hasher.hash_one((language_slot, surface))
}

/// Surface word (per language) -> its analysis.
#[derive(Default)]
pub(crate) struct WordMemo {
    text: String,
    entries: HashTable<Entry>,
    /// foldhash: several times faster than the standard hasher on short words, and
    /// randomly seeded per process, so customer text cannot be crafted to collide.
    hasher: foldhash::fast::RandomState,
}

impl WordMemo {
    /// Returns the analysis of `surface` in the language of `language_slot`, computing
    /// and remembering it with `analyse` (which returns the term and whether the word is
    /// a stop word) when it is not remembered yet.
    pub fn analysed<R>(
        &mut self,
        language_slot: u8,
        surface: &str,
        analyse: impl FnOnce() -> (String, bool),
        use_word: impl FnOnce(AnalysedWordRef<'_>) -> R,
    ) -> R {
        debug_assert!(language_slot <= LANGUAGE_BITS);
        let hash = hash_of(&self.hasher, language_slot, surface);
        let is_this_word = |entry: &Entry| {
            entry.language_slot() == language_slot && entry.surface(&self.text) == surface
        };
        if let Some(entry) = self.entries.find(hash, is_this_word) {
            return use_word(entry.analysed(&self.text));
        }
        let (term, is_stop_word) = analyse();
        let Some(entry) = self.remember(hash, language_slot, surface, &term, is_stop_word) else {
            return use_word(AnalysedWordRef {
                term: &term,
                is_stop_word,
            });
        };
        use_word(entry.analysed(&self.text))
    }

    fn remember(
        &mut self,
        hash: u64,
        language_slot: u8,
        surface: &str,
        term: &str,
        is_stop_word: bool,
    ) -> Option<Entry> {
        if surface.len() > MAX_REMEMBERED_WORD_BYTES || term.len() > MAX_REMEMBERED_WORD_BYTES {
            return None;
        }
        let term_is_surface = term == surface;
        let added_bytes = surface.len() + if term_is_surface { 0 } else { term.len() };
        if self.entries.len() >= MAX_WORDS || self.text.len() + added_bytes > MAX_TEXT_BYTES {
            self.entries.clear();
            self.text.clear();
        }
        let mut flags = language_slot;
        if is_stop_word {
            flags |= STOP_WORD;
        }
        if term_is_surface {
            flags |= TERM_IS_SURFACE;
        }
        let entry = Entry {
            start: u32::try_from(self.text.len()).expect("the text is bounded far below 4 GiB"),
            surface_len: surface.len() as u8,
            term_len: term.len() as u8,
            flags,
        };
        self.text.push_str(surface);
        if !term_is_surface {
            self.text.push_str(term);
        }
        let (text, hasher) = (&self.text, &self.hasher);
        self.entries.insert_unique(hash, entry, |stored| {
            hash_of(hasher, stored.language_slot(), stored.surface(text))
        });
        Some(entry)
    }

    /// Returns the number of remembered words and the bytes of their text.
    #[cfg(test)]
    fn size(&self) -> (usize, usize) {
        (self.entries.len(), self.text.len())
    }

    /// Returns the heap the memo holds: its slots (and their control bytes) and text.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.entries.capacity() * (std::mem::size_of::<Entry>() + 1) + self.text.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENGLISH: u8 = 0;
    const GERMAN: u8 = 1;

    fn analysed_term(memo: &mut WordMemo, slot: u8, surface: &str, analyses: &mut usize) -> String {
        memo.analysed(
            slot,
            surface,
            || {
                *analyses += 1;
                (surface.to_lowercase(), false)
            },
            |analysed| analysed.term.to_owned(),
        )
    }

    #[test]
    fn a_remembered_word_is_analysed_once_and_read_back_as_analysed() {
        let mut memo = WordMemo::default();
        let mut analyses = 0;

        let first = analysed_term(&mut memo, ENGLISH, "Invoice", &mut analyses);
        let second = analysed_term(&mut memo, ENGLISH, "Invoice", &mut analyses);

        assert_eq!((first.as_str(), second.as_str()), ("invoice", "invoice"));
        assert_eq!(analyses, 1);
    }

    #[test]
    fn the_same_word_is_remembered_per_language() {
        let mut memo = WordMemo::default();
        let mut analyses = 0;

        analysed_term(&mut memo, ENGLISH, "Rechnung", &mut analyses);
        analysed_term(&mut memo, GERMAN, "Rechnung", &mut analyses);
        analysed_term(&mut memo, GERMAN, "Rechnung", &mut analyses);

        assert_eq!(analyses, 2);
        assert_eq!(memo.size().0, 2);
    }

    #[test]
    fn a_term_equal_to_its_surface_is_kept_once_and_a_stop_word_is_flagged() {
        let mut memo = WordMemo::default();

        let the = memo.analysed(
            ENGLISH,
            "the",
            || ("the".to_owned(), true),
            |word| (word.term.to_owned(), word.is_stop_word),
        );
        let invoices = memo.analysed(
            ENGLISH,
            "Invoices",
            || ("invoic".to_owned(), false),
            |word| (word.term.to_owned(), word.is_stop_word),
        );

        assert_eq!(the, ("the".to_owned(), true));
        assert_eq!(invoices, ("invoic".to_owned(), false));
        assert_eq!(
            memo.size(),
            (2, "the".len() + "Invoices".len() + "invoic".len())
        );
    }

    #[test]
    fn an_overlong_word_is_analysed_each_time_and_never_remembered() {
        let mut memo = WordMemo::default();
        let mut analyses = 0;
        let token = "x".repeat(MAX_REMEMBERED_WORD_BYTES + 1);

        let first = analysed_term(&mut memo, ENGLISH, &token, &mut analyses);
        let second = analysed_term(&mut memo, ENGLISH, &token, &mut analyses);

        assert_eq!((first, second), (token.clone(), token));
        assert_eq!(analyses, 2);
        assert_eq!(memo.size(), (0, 0));
    }

    #[test]
    fn many_distinct_words_keep_the_memo_within_its_bounds() {
        let mut memo = WordMemo::default();
        let mut analyses = 0;
        let mut peak_heap = 0;

        for number in 0..3 * MAX_WORDS {
            // Words of 8 and of 24 letters, as a catalog's names and a log's tokens.
            let surface = if number % 2 == 0 {
                format!("Word{number:04}")
            } else {
                format!("Averyveryverylongword{number:07}")
            };
            let term = analysed_term(&mut memo, (number % 8) as u8, &surface, &mut analyses);
            assert_eq!(term, surface.to_lowercase());
            let (words, text_bytes) = memo.size();
            assert!(words <= MAX_WORDS && text_bytes <= MAX_TEXT_BYTES);
            peak_heap = peak_heap.max(memo.heap_bytes());
        }

        assert!(
            peak_heap <= 2 * MAX_TEXT_BYTES,
            "the memo held {peak_heap} bytes at its peak"
        );
    }
}
