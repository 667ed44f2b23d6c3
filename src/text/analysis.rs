//! Splits text into index terms: words, lowercased, stemmed by language, accents folded.
//!
//! Stop words are indexed like any word: in support drafts "not", "no" and "how" often
//! carry the meaning ("card not working", "who made you"), and BM25 already gives common
//! words little weight. The stop word lists of `index_schema/stopwords/` lower a stop
//! word's weight in queries and keep it out of highlights and prefixes instead.
//!
//! deflect analyses text itself (instead of registering tantivy tokenizers) because the
//! language is a property of each document and each query, not of a field: one `body`
//! field holds English and German articles, each stemmed by its own rules.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::OnceLock;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::language::Language;
pub use super::word_memo::AnalysedWordRef;
use super::word_memo::{WordMemo, MAX_LANGUAGES};

/// Words longer than this are not words (hashes, base64, pasted logs) and are skipped.
pub const MAX_WORD_CHARS: usize = 40;

/// One word of a text, as it appears and as it is indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word<'text> {
    /// The word as written.
    pub surface: &'text str,
    /// Byte offsets of `surface` in the analysed text.
    pub offset_from: usize,
    pub offset_to: usize,
}

/// Calls `on_word` for each word of `text`, in order.
///
/// A word is a run of letters and digits; an apostrophe between two letters joins
/// (`don't` is one word). Each CJK ideograph or kana is a word of its own, since those
/// scripts do not separate words with spaces.
///
/// This runs over every document indexed and every hit's body for its snippet, so
/// ASCII, nearly every byte of most catalogs, is read a byte at a time without decoding
/// characters; everything else goes through the definition of
/// [`for_each_word_slowly`], which the tests check it against.
pub fn for_each_word<'text>(text: &'text str, mut on_word: impl FnMut(Word<'text>)) {
    for_each_word_while(text, |word| {
        on_word(word);
        true
    });
}

/// Like [`for_each_word`], but stops at the first word for which `on_word` returns false
/// (a snippet stops reading a body once it has its passage).
pub fn for_each_word_while<'text>(text: &'text str, mut on_word: impl FnMut(Word<'text>) -> bool) {
    let bytes = text.as_bytes();
    let mut word_start: Option<usize> = None;
    let mut offset = 0;
    while offset < bytes.len() {
        let byte = bytes[offset];
        if byte.is_ascii_alphanumeric() {
            word_start.get_or_insert(offset);
            offset += 1;
            while offset < bytes.len() && bytes[offset].is_ascii_alphanumeric() {
                offset += 1;
            }
            continue;
        }
        if byte.is_ascii() {
            // A space or punctuation: ends the word unless it is a joining apostrophe.
            let joins = byte == b'\''
                && word_start.is_some()
                && is_joining_apostrophe('\'', &text[offset + 1..]);
            if !joins {
                if let Some(start) = word_start.take() {
                    if !emit_word(text, start, offset, &mut on_word) {
                        return;
                    }
                }
            }
            offset += 1;
            continue;
        }
        let character = text[offset..].chars().next().unwrap_or_default();
        let next_offset = offset + character.len_utf8();
        if is_cjk(character) {
            if let Some(start) = word_start.take() {
                if !emit_word(text, start, offset, &mut on_word) {
                    return;
                }
            }
            let goes_on = on_word(Word {
                surface: &text[offset..next_offset],
                offset_from: offset,
                offset_to: next_offset,
            });
            if !goes_on {
                return;
            }
        } else if character.is_alphanumeric() {
            word_start.get_or_insert(offset);
        } else if !(word_start.is_some() && is_joining_apostrophe(character, &text[next_offset..]))
        {
            if let Some(start) = word_start.take() {
                if !emit_word(text, start, offset, &mut on_word) {
                    return;
                }
            }
        }
        offset = next_offset;
    }
    if let Some(start) = word_start {
        emit_word(text, start, text.len(), &mut on_word);
    }
}

/// Returns whether `character`, right after a letter or digit, joins the word it ends
/// with the one starting `rest`.
fn is_joining_apostrophe(character: char, rest: &str) -> bool {
    matches!(character, '\'' | '’')
        && rest
            .chars()
            .next()
            .is_some_and(|next| next.is_alphabetic() && !is_cjk(next))
}

/// The character-by-character definition [`for_each_word`] must agree with.
#[cfg(test)]
fn for_each_word_slowly<'text>(text: &'text str, mut on_each_word: impl FnMut(Word<'text>)) {
    let mut on_word = |word: Word<'text>| {
        on_each_word(word);
        true
    };
    let mut word_start: Option<usize> = None;
    let mut characters = text.char_indices().peekable();
    while let Some((offset, character)) = characters.next() {
        if is_cjk(character) {
            if let Some(start) = word_start.take() {
                emit_word(text, start, offset, &mut on_word);
            }
            let end = offset + character.len_utf8();
            on_word(Word {
                surface: &text[offset..end],
                offset_from: offset,
                offset_to: end,
            });
            continue;
        }
        if character.is_alphanumeric() {
            word_start.get_or_insert(offset);
            continue;
        }
        let joins_apostrophe = matches!(character, '\'' | '’')
            && word_start.is_some()
            && characters
                .peek()
                .is_some_and(|(_, next)| next.is_alphabetic() && !is_cjk(*next));
        if joins_apostrophe {
            continue;
        }
        if let Some(start) = word_start.take() {
            emit_word(text, start, offset, &mut on_word);
        }
    }
    if let Some(start) = word_start {
        emit_word(text, start, text.len(), &mut on_word);
    }
}

/// Calls `on_word` with the word from `start` to `end` unless it is too long; returns
/// whether to go on.
fn emit_word<'text>(
    text: &'text str,
    start: usize,
    end: usize,
    on_word: &mut impl FnMut(Word<'text>) -> bool,
) -> bool {
    let surface = &text[start..end];
    // A word has no more characters than bytes: only long ones need counting.
    if surface.len() > MAX_WORD_CHARS && surface.chars().count() > MAX_WORD_CHARS {
        return true;
    }
    on_word(Word {
        surface,
        offset_from: start,
        offset_to: end,
    })
}

fn is_cjk(character: char) -> bool {
    matches!(character,
        '\u{3040}'..='\u{30FF}'   // hiragana, katakana
        | '\u{3400}'..='\u{4DBF}' // CJK extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
        | '\u{F900}'..='\u{FAFF}' // compatibility ideographs
        | '\u{AC00}'..='\u{D7AF}' // hangul syllables
    )
}

/// Returns a word lowercased, with apostrophes removed and accents folded (`Café` ->
/// `cafe`, `Straße` -> `strasse`): the form used for prefixes and as stemmer output.
pub fn fold(surface: &str) -> String {
    if surface.is_ascii() {
        // Nothing to decompose: most words of most catalogs take this path.
        let mut folded = surface.to_ascii_lowercase();
        folded.retain(|character| character != '\'');
        return folded;
    }
    fold_unicode(surface)
}

/// [`fold`] for any text: decomposes, drops combining marks, expands ligatures.
fn fold_unicode(surface: &str) -> String {
    let mut folded = String::with_capacity(surface.len());
    for character in surface.nfd() {
        if is_combining_mark(character) || matches!(character, '\'' | '’') {
            continue;
        }
        match character {
            'ß' => folded.push_str("ss"),
            'æ' | 'Æ' => folded.push_str("ae"),
            'ø' | 'Ø' => folded.push('o'),
            'œ' | 'Œ' => folded.push_str("oe"),
            _ => folded.extend(character.to_lowercase()),
        }
    }
    folded
}

/// A word as the index sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysedWord {
    pub term: String,
    pub is_stop_word: bool,
}

/// The rules that turn a word into an index term for one language.
pub struct Analyzer {
    language: Language,
    /// Position of `language` in `ALL_LANGUAGES`: its words' key in the per-thread memo.
    slot: u8,
    stop_words: HashSet<String>,
    stemmer: Option<Stemmer>,
}

impl Analyzer {
    /// Returns the shared analyzer of `language`.
    pub fn of(language: Language) -> &'static Analyzer {
        static ANALYZERS: OnceLock<Vec<Analyzer>> = OnceLock::new();
        let analyzers = ANALYZERS.get_or_init(|| {
            ALL_LANGUAGES
                .iter()
                .map(|language| Analyzer::build(*language))
                .collect()
        });
        &analyzers[language_slot(language)]
    }

    fn build(language: Language) -> Analyzer {
        let stop_words = stop_word_list(language)
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|word| word.to_lowercase().replace(['\'', '’'], ""))
            .filter(|word| !AMBIGUOUS_CONTRACTIONS.contains(&word.as_str()))
            .collect();
        Analyzer {
            language,
            slot: u8::try_from(language_slot(language))
                .expect("fewer languages than MAX_LANGUAGES"),
            stop_words,
            stemmer: stemming_algorithm(language).map(Stemmer::create),
        }
    }

    pub fn language(&self) -> Language {
        self.language
    }

    /// Returns the index term of a word (stop words have terms too).
    pub fn term(&self, surface: &str) -> String {
        self.analyse_word(surface).term
    }

    /// Returns whether the word is a stop word of this language.
    pub fn is_stop_word(&self, surface: &str) -> bool {
        self.with_analysed_word(surface, |analysed| analysed.is_stop_word)
    }

    /// Returns the index term of a word and whether it is a stop word.
    ///
    /// Results are remembered per thread ([`WordMemo`]): indexing and snippets analyse
    /// the same few thousand words over and over, and stemming plus Unicode folding cost
    /// far more than a hash lookup.
    pub fn analyse_word(&self, surface: &str) -> AnalysedWord {
        self.with_analysed_word(surface, |analysed| AnalysedWord {
            term: analysed.term.to_owned(),
            is_stop_word: analysed.is_stop_word,
        })
    }

    /// Calls `use_word` with the analysis of a word, without copying it out of the
    /// memo (see [`Analyzer::analyse_word`]).
    pub fn with_analysed_word<R>(
        &self,
        surface: &str,
        use_word: impl FnOnce(AnalysedWordRef<'_>) -> R,
    ) -> R {
        WORD_MEMO.with(|memo| {
            memo.borrow_mut().analysed(
                self.slot,
                surface,
                || (self.stem_and_fold(surface), self.look_up_stop_word(surface)),
                use_word,
            )
        })
    }

    fn stem_and_fold(&self, surface: &str) -> String {
        let lowercase = surface.to_lowercase();
        let without_apostrophes: Cow<str> = if lowercase.contains(['\'', '’']) {
            Cow::Owned(lowercase.replace(['\'', '’'], ""))
        } else {
            Cow::Borrowed(&lowercase)
        };
        let stemmed = match &self.stemmer {
            Some(stemmer) => stemmer.stem(&without_apostrophes),
            None => Cow::Borrowed(without_apostrophes.as_ref()),
        };
        fold(&stemmed)
    }

    fn look_up_stop_word(&self, surface: &str) -> bool {
        let lowercase = surface.to_lowercase().replace(['\'', '’'], "");
        self.stop_words.contains(&lowercase)
    }

    /// Calls `on_pair` with the index terms of each two neighbouring words among the
    /// first [`MAX_PAIRED_WORDS`] words of `text` that no sentence punctuation separates
    /// ("reset password", "not arrived"). Word pairs reward drafts that use the same
    /// phrases as a document.
    pub fn for_each_pair(&self, text: &str, mut on_pair: impl FnMut(String)) {
        self.for_each_term_and_pair(
            text,
            |_, _| {},
            |first, second| on_pair(pair_term(first, second)),
        );
    }

    /// Calls `on_term` with each word of `text` and its index term, and `on_pair` with
    /// the index terms of each word pair as [`Analyzer::for_each_pair`] does: one pass
    /// for both.
    pub fn for_each_term_and_pair<'text>(
        &self,
        text: &'text str,
        mut on_term: impl FnMut(Word<'text>, &str),
        mut on_pair: impl FnMut(&str, &str),
    ) {
        // Two buffers reused for every word: a document has hundreds of words, and a copy
        // of each term in a new string was an allocation and a free per word.
        let mut term = String::new();
        let mut previous_term = String::new();
        let mut previous_end: Option<usize> = None;
        let mut words_seen = 0;
        for_each_word(text, |word| {
            self.with_analysed_word(word.surface, |analysed| {
                term.clear();
                term.push_str(analysed.term);
            });
            words_seen += 1;
            if let Some(previous_end) = previous_end {
                let gap = &text[previous_end..word.offset_from];
                if words_seen <= MAX_PAIRED_WORDS && !gap.contains(SENTENCE_BREAKS) {
                    on_pair(&previous_term, &term);
                }
            }
            previous_end = Some(word.offset_to);
            on_term(word, &term);
            std::mem::swap(&mut previous_term, &mut term);
        });
    }

    /// Calls `on_term` with each word of `text` and its index term.
    pub fn for_each_term<'text>(
        &self,
        text: &'text str,
        mut on_term: impl FnMut(Word<'text>, String),
    ) {
        for_each_word(text, |word| {
            let term = self.term(word.surface);
            on_term(word, term);
        });
    }
}

thread_local! {
    /// Every language's analysed words on this thread.
    static WORD_MEMO: std::cell::RefCell<WordMemo> = std::cell::RefCell::new(WordMemo::default());
}

/// Characters that end a sentence, a list item or a line: word pairs never span them.
/// Word pairs are taken from this many words of a text at most: its title, its summary
/// and the opening of its body, which say what a document is about.
///
/// Nearly every pair of neighbouring words is a term of its own, so pairs were two
/// thirds of the benchmark index (100,000 documents of 100-800 words) and half the
/// indexing work, most of them from deep inside long bodies: each rare pair costs
/// tantivy a few cache misses in its term table. From 250 words to 200 (schema version
/// 6), `deflect index` of that catalog took 6% less time and its postings 8% less
/// space, while no figure of the relevance sets moved by more than 0.003 either way
/// (banking77 success@1 +0.003, clinc150's out-of-scope abstention one query of 100
/// fewer). At 150 words banking77 loses 0.003 in success@1, @3 and @5; at 100, 0.007.
pub const MAX_PAIRED_WORDS: usize = 200;

const SENTENCE_BREAKS: [char; 8] = ['.', '!', '?', ';', ':', '\n', '•', '|'];

/// Returns the index term of a word pair.
pub fn pair_term(first: &str, second: &str) -> String {
    let mut pair = String::with_capacity(first.len() + second.len() + 1);
    pair.push_str(first);
    pair.push(' ');
    pair.push_str(second);
    pair
}

/// Every language deflect analyses; a language's position is its key in the per-thread memo.
pub(crate) const ALL_LANGUAGES: [Language; 8] = [
    Language::English,
    Language::German,
    Language::French,
    Language::Spanish,
    Language::Portuguese,
    Language::Italian,
    Language::Dutch,
    Language::Unstemmed,
];

// A language's slot shares a byte with the memo's flags: more languages than it numbers
// would turn into flags in a release build.
const _: () = assert!(ALL_LANGUAGES.len() <= MAX_LANGUAGES);

/// Returns the position of `language` in `ALL_LANGUAGES`.
fn language_slot(language: Language) -> usize {
    ALL_LANGUAGES
        .iter()
        .position(|candidate| *candidate == language)
        .expect("every language is in ALL_LANGUAGES")
}

/// Contractions whose apostrophe-free spelling is a real word (`she'll` -> `shell`,
/// `I'd` -> `id`), which must stay searchable.
const AMBIGUOUS_CONTRACTIONS: [&str; 5] = ["shell", "well", "wed", "hell", "id"];

fn stemming_algorithm(language: Language) -> Option<Algorithm> {
    match language {
        Language::English => Some(Algorithm::English),
        Language::German => Some(Algorithm::German),
        Language::French => Some(Algorithm::French),
        Language::Spanish => Some(Algorithm::Spanish),
        Language::Portuguese => Some(Algorithm::Portuguese),
        Language::Italian => Some(Algorithm::Italian),
        Language::Dutch => Some(Algorithm::Dutch),
        Language::Unstemmed => None,
    }
}

fn stop_word_list(language: Language) -> &'static str {
    match language {
        Language::English => include_str!("../../index_schema/stopwords/en.txt"),
        Language::German => include_str!("../../index_schema/stopwords/de.txt"),
        Language::French => include_str!("../../index_schema/stopwords/fr.txt"),
        Language::Spanish => include_str!("../../index_schema/stopwords/es.txt"),
        Language::Portuguese => include_str!("../../index_schema/stopwords/pt.txt"),
        Language::Italian => include_str!("../../index_schema/stopwords/it.txt"),
        Language::Dutch => include_str!("../../index_schema/stopwords/nl.txt"),
        Language::Unstemmed => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(language: Language, text: &str) -> Vec<String> {
        let analyzer = Analyzer::of(language);
        let mut collected = Vec::new();
        analyzer.for_each_term(text, |word, term| {
            if !analyzer.is_stop_word(word.surface) {
                collected.push(term);
            }
        });
        collected
    }

    #[test]
    fn english_recognises_stop_words_and_stems() {
        assert_eq!(
            terms(Language::English, "How do I reset my Passwords?"),
            ["reset", "password"]
        );
        assert_eq!(Analyzer::of(Language::English).term("How"), "how");
    }

    #[test]
    fn german_stems_and_folds_umlauts() {
        assert_eq!(
            terms(Language::German, "Rechnungen herunterladen für Kündigung"),
            ["rechnung", "herunterlad", "kundig"]
        );
    }

    #[test]
    fn contractions_are_one_word_and_ambiguous_ones_survive() {
        assert_eq!(
            terms(Language::English, "I don't see my user id"),
            ["see", "user", "id"]
        );
    }

    #[test]
    fn word_pairs_do_not_span_sentences() {
        let mut pairs = Vec::new();
        Analyzer::of(Language::English)
            .for_each_pair("Card not arrived. Refund please", |pair| pairs.push(pair));
        assert_eq!(pairs, ["card not", "not arriv", "refund pleas"]);
    }

    #[test]
    fn cjk_characters_are_words_of_their_own() {
        let mut surfaces = Vec::new();
        for_each_word("密码重置help", |word| surfaces.push(word.surface));
        assert_eq!(surfaces, ["密", "码", "重", "置", "help"]);
    }

    /// A word with what it borrows copied, to compare two splitters' words.
    fn owned(word: Word<'_>) -> (String, usize, usize) {
        (word.surface.to_owned(), word.offset_from, word.offset_to)
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_settings::regressions_kept_in_tests())]

        #[test]
        fn the_fast_word_splitter_agrees_with_its_definition(
            text in "[a-zA-Z0-9 '’.,\\-éßÜ密码ー٣\n\u{200B}]{0,60}"
        ) {
            let mut fast = Vec::new();
            for_each_word(&text, |word| fast.push(owned(word)));
            let mut slow = Vec::new();
            for_each_word_slowly(&text, |word| slow.push(owned(word)));
            proptest::prop_assert_eq!(fast, slow);
        }

        #[test]
        fn terms_and_pairs_in_one_pass_are_the_terms_and_their_neighbours(
            text in "[a-zA-Z'éÜ ]{0,80}"
        ) {
            let analyzer = Analyzer::of(Language::English);
            let mut terms = Vec::new();
            let mut pairs = Vec::new();
            analyzer.for_each_term_and_pair(
                &text,
                |_, term| terms.push(term.to_owned()),
                |first, second| pairs.push(pair_term(first, second)),
            );
            let mut alone = Vec::new();
            analyzer.for_each_term(&text, |_, term| alone.push(term));
            let neighbours: Vec<String> = alone
                .windows(2)
                .map(|two| pair_term(&two[0], &two[1]))
                .collect();
            proptest::prop_assert_eq!(terms, alone);
            proptest::prop_assert_eq!(pairs, neighbours);
        }

        #[test]
        fn the_ascii_fast_path_folds_like_the_unicode_one(word in "[ -~]{0,24}") {
            proptest::prop_assert_eq!(fold(&word), fold_unicode(&word));
        }
    }

    #[test]
    fn remembered_terms_equal_fresh_ones() {
        let analyzer = Analyzer::of(Language::German);
        let first = analyzer.analyse_word("Kündigungen");
        let remembered = analyzer.analyse_word("Kündigungen");
        assert_eq!(first, remembered);
        assert_eq!(first.term, analyzer.stem_and_fold("Kündigungen"));
        assert!(Analyzer::of(Language::English).is_stop_word("The"));
    }

    #[test]
    fn overlong_tokens_are_skipped() {
        let long = "x".repeat(100_000);
        assert_eq!(
            terms(Language::English, &format!("invoice {long} missing")),
            ["invoic", "miss"]
        );
    }
}
