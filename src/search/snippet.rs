//! Cuts the passage of a document that best matches a query and highlights the matched
//! words.
//!
//! tantivy's snippet generator only knows exact query terms; deflect also highlights the
//! word being typed (a prefix), so it cuts its own passages.

use crate::text::analysis::{fold, Analyzer};
use crate::text::normalizer::head;

/// Words in a snippet.
const SNIPPET_WORDS: usize = 30;
/// Only the start of very long bodies is scanned for a passage.
const MAX_SCANNED_BYTES: usize = 64 * 1024;

/// What a query looks for in a document's text.
pub struct MatchTargets<'query> {
    /// Index terms (unscoped) to highlight: the query's content words the document has.
    pub terms: &'query [&'query str],
    /// The folded word being typed.
    pub prefix: Option<&'query str>,
}

impl MatchTargets<'_> {
    /// Returns which target a word is: the position of its term in `terms`, or
    /// `terms.len()` for the prefix. A stop word is never the prefix's target: like the
    /// index (`document.rs`), a typed "th" means "theme", not "the".
    fn target_of(
        &self,
        analyzer: &Analyzer,
        openings: &TermOpenings,
        surface: &str,
    ) -> Option<usize> {
        if !self.terms.is_empty() && openings.could_start(surface) {
            let position = analyzer.with_analysed_word(surface, |analysed| {
                self.terms
                    .iter()
                    .position(|target| *target == analysed.term)
            });
            if position.is_some() {
                return position;
            }
        }
        let prefix = self.prefix?;
        let completes_prefix =
            folded_starts_with(surface, prefix) && !analyzer.is_stop_word(surface);
        completes_prefix.then_some(self.terms.len())
    }
}

/// The first two letters of the terms to highlight.
///
/// Stemming and folding change the end of a word, never its first two letters or
/// digits (every stemmer's suffixes start after them; a `y` that becomes `i` aside),
/// so a word starting with other ASCII letters is no target and need not be analysed:
/// most words of a body are skipped that way. With the first letter only, the
/// snippets' look-ups in the analysis memo were 3.8% of the server's CPU under load.
struct TermOpenings {
    /// By lowercase first byte, a bit for each second byte a target starts with
    /// (all bits when a target is that one letter, or goes on with a non-ASCII one).
    second_bytes: [u128; 128],
}

impl TermOpenings {
    fn of(terms: &[&str]) -> TermOpenings {
        let mut second_bytes = [0u128; 128];
        for term in terms {
            let mut bytes = term.bytes();
            let Some(first) = bytes.next().filter(u8::is_ascii) else {
                // A term starting with anything else: no word can be skipped.
                return TermOpenings {
                    second_bytes: [u128::MAX; 128],
                };
            };
            second_bytes[usize::from(first)] |= match bytes.next() {
                // English stems "dying", "lying" and "tying" to "die", "lie" and "tie".
                Some(b'i') => 1 << b'i' | 1 << b'y',
                Some(second) if second.is_ascii() => 1 << second,
                _ => u128::MAX,
            };
        }
        TermOpenings { second_bytes }
    }

    /// Returns false only for words whose term cannot start like any target's.
    fn could_start(&self, surface: &str) -> bool {
        let mut bytes = surface.bytes();
        let Some(first) = bytes.next().filter(u8::is_ascii_alphanumeric) else {
            return true;
        };
        let seconds = self.second_bytes[usize::from(first.to_ascii_lowercase())];
        match bytes.next() {
            Some(second) if second.is_ascii_alphanumeric() => {
                seconds & (1 << second.to_ascii_lowercase()) != 0
            }
            // An apostrophe or a non-ASCII letter may be dropped or folded.
            _ => seconds != 0,
        }
    }
}

/// Returns whether `fold(surface)` starts with `prefix`, without folding ASCII words
/// into a new string (this runs for every word of every hit's body).
fn folded_starts_with(surface: &str, prefix: &str) -> bool {
    if !surface.is_ascii() {
        return fold(surface).starts_with(prefix);
    }
    let mut folded = surface
        .bytes()
        .filter(|byte| *byte != b'\'')
        .map(|byte| byte.to_ascii_lowercase());
    prefix.bytes().all(|wanted| folded.next() == Some(wanted))
}

/// How often each target occurs in a window of words, and how many distinct ones do.
struct TargetsInWindow {
    occurrences: Vec<usize>,
    distinct: usize,
}

impl TargetsInWindow {
    fn new(target_count: usize) -> TargetsInWindow {
        TargetsInWindow {
            occurrences: vec![0; target_count],
            distinct: 0,
        }
    }

    fn enter(&mut self, target: Option<usize>) {
        if let Some(target) = target {
            self.occurrences[target] += 1;
            self.distinct += usize::from(self.occurrences[target] == 1);
        }
    }

    fn leave(&mut self, target: Option<usize>) {
        if let Some(target) = target {
            self.occurrences[target] -= 1;
            self.distinct -= usize::from(self.occurrences[target] == 0);
        }
    }
}

/// A matched passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// HTML: the text escaped, matched words in `<mark>`, `…` where text was cut.
    pub html: String,
    /// Byte offset in the text of the passage's first matched word; `None` when nothing
    /// matched.
    pub first_match_offset: Option<usize>,
}

/// Returns the best passage of `text` (the window with most distinct matched terms, the
/// earliest on ties), or its start when nothing matches.
pub fn best_passage(text: &str, analyzer: &Analyzer, targets: &MatchTargets<'_>) -> Snippet {
    cut_best_passage(
        text,
        analyzer,
        targets,
        ReadingOfText::UntilThePassageIsFound,
    )
}

/// How much of a text [`cut_best_passage`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadingOfText {
    /// Up to [`MAX_SCANNED_BYTES`].
    Whole,
    /// Only until a window holds every target (no later window can be better, and on
    /// ties the earliest wins), and far enough beyond it to cut the passage. Snippets
    /// were a tenth of the server's CPU at 100,000 documents, most of it reading the
    /// rest of bodies whose passage had been found.
    UntilThePassageIsFound,
}

fn cut_best_passage(
    text: &str,
    analyzer: &Analyzer,
    targets: &MatchTargets<'_>,
    reading: ReadingOfText,
) -> Snippet {
    let scanned = head(text, MAX_SCANNED_BYTES);
    // About one word per six bytes of prose: sized once instead of grown a few times.
    let mut words: Vec<(usize, usize, Option<usize>)> = Vec::with_capacity(scanned.len() / 6 + 1);
    let openings = TermOpenings::of(targets.terms);
    let target_count = targets.terms.len() + 1;
    let every_target = targets.terms.len() + usize::from(targets.prefix.is_some());
    let mut latest_window = TargetsInWindow::new(target_count);
    // Once the passage is found: how many words to read in all.
    let mut words_to_read: Option<usize> = None;
    crate::text::analysis::for_each_word_while(scanned, |word| {
        let target = targets.target_of(analyzer, &openings, word.surface);
        words.push((word.offset_from, word.offset_to, target));
        if let Some(words_to_read) = words_to_read {
            return words.len() < words_to_read;
        }
        if reading == ReadingOfText::Whole || every_target == 0 {
            return true;
        }
        latest_window.enter(target);
        if words.len() > SNIPPET_WORDS {
            latest_window.leave(words[words.len() - 1 - SNIPPET_WORDS].2);
        }
        if words.len() >= SNIPPET_WORDS && latest_window.distinct == every_target {
            // The passage starts at most SNIPPET_WORDS - 5 words into this window and
            // takes SNIPPET_WORDS words; one more tells that the text goes on.
            words_to_read = Some(words.len() + SNIPPET_WORDS + 1);
        }
        true
    });
    if words.is_empty() {
        return Snippet {
            html: html_escape::encode_text(head(scanned, 200)).into_owned(),
            first_match_offset: None,
        };
    }

    // Slide a window of `window` words over the text, counting how often each target
    // occurs in it, and keep the first window with the most distinct targets.
    let window = SNIPPET_WORDS.min(words.len());
    let mut in_window = TargetsInWindow::new(target_count);
    for (_, _, target) in &words[..window] {
        in_window.enter(*target);
    }
    let mut best_start = 0;
    let mut best_distinct = in_window.distinct;
    for start in 1..=(words.len() - window) {
        in_window.leave(words[start - 1].2);
        in_window.enter(words[start + window - 1].2);
        if in_window.distinct > best_distinct {
            best_distinct = in_window.distinct;
            best_start = start;
        }
    }
    // Start a little before the first match so the passage reads as a sentence, but
    // never so early that the window loses its last match.
    let window_words = &words[best_start..best_start + window];
    let first_match_in_window = window_words
        .iter()
        .position(|(_, _, matched)| matched.is_some());
    let first_match_offset = first_match_in_window.map(|offset| words[best_start + offset].0);
    let first_match = first_match_in_window.map_or(best_start, |offset| best_start + offset);
    let last_match = window_words
        .iter()
        .rposition(|(_, _, matched)| matched.is_some())
        .map_or(best_start, |offset| best_start + offset);
    let start = first_match
        .saturating_sub(5)
        .max((last_match + 1).saturating_sub(window));
    let end = (start + window).min(words.len());
    let start = end.saturating_sub(window);

    let mut html = String::new();
    if start > 0 {
        html.push('…');
    }
    let mut cursor = words[start].0;
    for (offset_from, offset_to, matched) in &words[start..end] {
        html.push_str(&html_escape::encode_text(&scanned[cursor..*offset_from]));
        let surface = html_escape::encode_text(&scanned[*offset_from..*offset_to]);
        if matched.is_some() {
            html.push_str("<mark>");
            html.push_str(&surface);
            html.push_str("</mark>");
        } else {
            html.push_str(&surface);
        }
        cursor = *offset_to;
    }
    let passage_end = words[end - 1].1;
    let trailing = &scanned[passage_end..];
    let sentence_end = trailing
        .char_indices()
        .take_while(|(offset, _)| *offset < 2)
        .find(|(_, character)| matches!(character, '.' | '!' | '?'))
        .map(|(offset, character)| offset + character.len_utf8());
    if let Some(sentence_end) = sentence_end {
        html.push_str(&html_escape::encode_text(&trailing[..sentence_end]));
    }
    // A passage that ends with its sentence needs no ellipsis ("… ein.…" read badly).
    let is_cut = end < words.len() || scanned.len() < text.len();
    if is_cut && sentence_end.is_none() {
        html.push('…');
    }
    Snippet {
        html,
        first_match_offset,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::text::language::Language;

    proptest! {
        #![proptest_config(crate::proptest_settings::regressions_kept_in_tests())]

        #[test]
        fn reading_until_the_passage_is_found_cuts_the_passage_of_the_whole_text(
            words in proptest::collection::vec(
                prop_oneof![
                    8 => Just("lorem"), 4 => Just("ipsum."), 2 => Just("dolor"),
                    1 => Just("passwords"), 1 => Just("reset"), 1 => Just("Invoice,"),
                    1 => Just("resending")
                ],
                0..300,
            ),
            with_prefix in any::<bool>(),
        ) {
            let text = words.join(" ");
            let targets = MatchTargets {
                terms: &["password", "invoic"],
                prefix: with_prefix.then_some("rese"),
            };
            let analyzer = Analyzer::of(Language::English);
            prop_assert_eq!(
                cut_best_passage(&text, analyzer, &targets, ReadingOfText::UntilThePassageIsFound),
                cut_best_passage(&text, analyzer, &targets, ReadingOfText::Whole)
            );
        }

        #[test]
        fn prefix_test_agrees_with_folding(surface in "[a-zA-Z'é]{0,12}", prefix in "[a-z]{0,4}") {
            prop_assert_eq!(
                folded_starts_with(&surface, &prefix),
                fold(&surface).starts_with(&prefix)
            );
        }
    }

    #[test]
    fn analysis_keeps_the_first_two_letters_of_every_word() {
        let mut text = String::from(include_str!("../demo/catalog.ndjson"));
        for stop_words in ["en", "de", "fr", "es", "pt", "it", "nl"] {
            let path = format!(
                "{}/index_schema/stopwords/{stop_words}.txt",
                env!("CARGO_MANIFEST_DIR")
            );
            text.push_str(&std::fs::read_to_string(path).unwrap());
        }
        text.push_str(include_str!("../../benches/catalog/support_words.txt"));
        text.push_str(
            " dying lying tying skies skis news ugly early Über ÄRGER 3D x86 I'm ties dies cries \
             yelling Yvonne quelques qui ijs ijzer aimer eaux",
        );
        let mut checked = 0;
        for language in crate::text::analysis::ALL_LANGUAGES {
            let analyzer = Analyzer::of(language);
            crate::text::analysis::for_each_word(&text, |word| {
                let term = analyzer.term(word.surface);
                let openings = TermOpenings::of(&[term.as_str()]);
                assert!(
                    term.is_empty() || openings.could_start(word.surface),
                    "{language:?}: {} -> {term}",
                    word.surface
                );
                checked += 1;
            });
        }
        assert!(checked > 10_000, "only {checked} words checked");
    }

    #[test]
    fn only_words_starting_like_a_target_are_analysed() {
        let openings = TermOpenings::of(&["password", "2fa", "x"]);

        for could_be_a_target in [
            "Passwords",
            "pASS",
            "2FA",
            "x86",
            "xylophone",
            "p",
            "é",
            "p'",
        ] {
            assert!(
                openings.could_start(could_be_a_target),
                "{could_be_a_target}"
            );
        }
        for never_a_target in ["print", "Pricing", "2nd", "account", "y"] {
            assert!(!openings.could_start(never_a_target), "{never_a_target}");
        }
    }

    #[test]
    fn a_passage_ending_with_its_sentence_gets_no_ellipsis() {
        let filler = "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu. ";
        let text = format!("Reset your password here. {}", filler.repeat(4));
        let targets = MatchTargets {
            terms: &["password"],
            prefix: None,
        };

        let snippet = best_passage(&text, Analyzer::of(Language::English), &targets);

        assert!(!snippet.html.contains(".…"), "{}", snippet.html);
        assert!(
            snippet.html.contains("<mark>password</mark>"),
            "{}",
            snippet.html
        );
    }

    #[test]
    fn matched_words_are_marked_and_text_is_escaped() {
        let targets = MatchTargets {
            terms: &["password"],
            prefix: Some("rese"),
        };
        let snippet = best_passage(
            "To <b>reset</b> your passwords, open Settings.",
            Analyzer::of(Language::English),
            &targets,
        );
        assert_eq!(
            snippet.html,
            "To &lt;b&gt;<mark>reset</mark>&lt;/b&gt; your <mark>passwords</mark>, open Settings."
        );
    }

    #[test]
    fn the_word_being_typed_marks_content_words_and_not_the_stop_words_it_starts() {
        let targets = MatchTargets {
            terms: &[],
            prefix: Some("th"),
        };
        let snippet = best_passage(
            "Switch the dashboard to the dark theme.",
            Analyzer::of(Language::English),
            &targets,
        );
        assert_eq!(
            snippet.html,
            "Switch the dashboard to the dark <mark>theme</mark>."
        );
    }

    #[test]
    fn the_passage_keeps_a_match_at_the_end_of_the_window() {
        let filler = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu ";
        let text = format!("{filler}password {} reset", filler.repeat(2));
        let targets = MatchTargets {
            terms: &["password", "reset"],
            prefix: None,
        };
        let snippet = best_passage(&text, Analyzer::of(Language::English), &targets);
        assert!(
            snippet.html.contains("<mark>password</mark>"),
            "{}",
            snippet.html
        );
        assert!(
            snippet.html.contains("<mark>reset</mark>"),
            "{}",
            snippet.html
        );
    }

    #[test]
    fn the_passage_with_most_matches_is_chosen() {
        let filler = "lorem ipsum dolor sit amet ".repeat(20);
        let text = format!("{filler} invoices are sent monthly {filler} refund the invoice after a refund request {filler}");
        let targets = MatchTargets {
            terms: &["invoic", "refund"],
            prefix: None,
        };
        let snippet = best_passage(&text, Analyzer::of(Language::English), &targets);
        assert!(
            snippet
                .html
                .contains("<mark>refund</mark> the <mark>invoice</mark>"),
            "{}",
            snippet.html
        );
        assert!(snippet.html.starts_with('…') && snippet.html.ends_with('…'));
    }
}
