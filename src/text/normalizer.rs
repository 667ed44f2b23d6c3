//! Cleans a draft ticket before it becomes a query.
//!
//! Drafts arrive half typed, pasted from email clients, with quoted replies, signatures,
//! markup and sometimes whole log files. Only what the customer wrote about the problem
//! should reach the query builder, and a pasted megabyte must cost no more than a long
//! draft: the input is cut to a fixed budget before any other work is done.

use std::borrow::Cow;

use super::html::strip_html;

/// How much raw input is looked at, at most. Everything past it is ignored unread.
const RAW_INPUT_BUDGET_BYTES: usize = 64 * 1024;

/// A draft reduced to the words worth searching for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedDraft {
    /// Plain text: no markup, quotes, signature or control characters, single spaces.
    pub text: String,
    /// True when the customer is still typing the last word (the draft does not end in
    /// whitespace or punctuation), so the last token should also match as a prefix.
    pub last_token_is_prefix: bool,
    /// True when the draft was longer than the budget and was cut.
    pub truncated: bool,
}

/// Normalizes `raw` and keeps at most `max_chars` characters of the result.
pub fn normalize_draft(raw: &str, max_chars: usize) -> NormalizedDraft {
    let (bounded, cut_raw) = truncate_to_bytes(raw, RAW_INPUT_BUDGET_BYTES);
    let last_token_is_prefix_in_raw = !cut_raw
        && bounded
            .chars()
            .last()
            .is_some_and(|last| last.is_alphanumeric());

    let without_markup = strip_html(bounded);
    let without_quotes = drop_quoted_reply(&without_markup);
    let without_signature = drop_signature(&without_quotes);
    let collapsed = collapse_whitespace(&without_signature);

    let (text, cut_clean) = truncate_to_chars(&collapsed, max_chars);
    let truncated = cut_raw || cut_clean;
    NormalizedDraft {
        last_token_is_prefix: last_token_is_prefix_in_raw && !truncated && !text.is_empty(),
        text,
        truncated,
    }
}

/// Normalizes content text (article bodies) for indexing: markup removed, whitespace
/// collapsed, no quote or signature heuristics. Text that is normal already (a plain-text
/// body, every time it is a hit) is returned as it is, uncopied.
pub fn normalize_content_text(raw: &str) -> Cow<'_, str> {
    if is_plain_and_collapsed(raw) {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(collapse_whitespace(&strip_html(raw)))
}

fn truncate_to_bytes(text: &str, max_bytes: usize) -> (&str, bool) {
    let kept = head(text, max_bytes);
    (kept, kept.len() < text.len())
}

/// Returns the longest start of `text` of at most `max_bytes` bytes that ends on a
/// character boundary.
pub fn head(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn truncate_to_chars(text: &str, max_chars: usize) -> (String, bool) {
    match text.char_indices().nth(max_chars) {
        None => (text.to_owned(), false),
        Some((cut_at, _)) => {
            let head = &text[..cut_at];
            // Prefer not to leave half a word behind.
            let head = match head.rfind(' ') {
                Some(space) if space > cut_at / 2 => &head[..space],
                _ => head,
            };
            (head.trim_end().to_owned(), true)
        }
    }
}

/// Drops everything from the first line that starts a quoted earlier message.
fn drop_quoted_reply(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim();
        if starts_quoted_history(trimmed) {
            break;
        }
        if trimmed.starts_with('>') {
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

fn starts_quoted_history(line: &str) -> bool {
    let lower = line.to_lowercase();
    (lower.starts_with("on ") && lower.ends_with("wrote:"))
        || (lower.starts_with("am ") && lower.ends_with("schrieb:"))
        || (lower.starts_with("le ") && lower.ends_with("a écrit :"))
        || lower.starts_with("-----original message-----")
        || lower.starts_with("----- original message -----")
        || lower.starts_with("-----ursprüngliche nachricht-----")
}

/// Drops a trailing signature: the `-- ` delimiter and what follows, mobile footers, and a
/// closing salutation followed only by a few short lines (name, title, phone).
fn drop_signature(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "--" || trimmed == "-- " || line.starts_with("-- ") && trimmed.len() <= 3 {
            end = index;
            break;
        }
        let lower = trimmed.trim_start().to_lowercase();
        if lower.starts_with("sent from my ") || lower.starts_with("von meinem ") {
            end = index;
            break;
        }
    }
    let tail_start = end.saturating_sub(6);
    for index in tail_start..end {
        let line = lines[index].trim();
        if is_closing_salutation(line) {
            let rest_is_short = lines[index + 1..end]
                .iter()
                .all(|rest| rest.trim().chars().count() <= 40);
            if rest_is_short && index > 0 {
                end = index;
                break;
            }
        }
    }
    lines[..end].join("\n")
}

fn is_closing_salutation(line: &str) -> bool {
    let lower = line.trim_end_matches([',', '!', '.']).to_lowercase();
    matches!(
        lower.as_str(),
        "thanks"
            | "thank you"
            | "thanks in advance"
            | "best"
            | "best regards"
            | "kind regards"
            | "regards"
            | "cheers"
            | "sincerely"
            | "mit freundlichen grüßen"
            | "viele grüße"
            | "beste grüße"
            | "cordialement"
            | "saludos"
    )
}

/// Collapses runs of whitespace to one space and removes control characters, bidi
/// controls and zero-width characters, which carry no words.
fn collapse_whitespace(text: &str) -> String {
    let mut collapsed = String::with_capacity(text.len());
    let mut pending_space = false;
    let mut rest = text;
    while !rest.is_empty() {
        // Runs of visible ASCII are copied whole: this runs over every hit's body, where
        // nearly every character is one.
        let run_length = rest
            .bytes()
            .position(|byte| !byte.is_ascii_graphic())
            .unwrap_or(rest.len());
        if run_length > 0 {
            if pending_space {
                collapsed.push(' ');
                pending_space = false;
            }
            collapsed.push_str(&rest[..run_length]);
            rest = &rest[run_length..];
            continue;
        }
        let Some(character) = rest.chars().next() else {
            break;
        };
        rest = &rest[character.len_utf8()..];
        if character.is_whitespace() || character.is_control() {
            pending_space = !collapsed.is_empty();
            continue;
        }
        if is_invisible_format_character(character) {
            continue;
        }
        if pending_space {
            collapsed.push(' ');
            pending_space = false;
        }
        collapsed.push(character);
    }
    collapsed
}

/// Returns whether neither [`strip_html`] nor [`collapse_whitespace`] would change
/// `text`, in one pass, looking at ASCII only: visible characters other than `<` and `&`
/// (markup and entities), and single spaces between them. Anything else (another
/// whitespace, a control or a non-ASCII character) answers false, and the text takes the
/// full path.
///
/// Every hit's body is checked, so the test runs a chunk of bytes at a time with no
/// early exit inside a chunk, which the compiler turns into vector instructions (a byte
/// at a time with branches, it was 3% of the server's CPU at 100,000 documents).
fn is_plain_and_collapsed(text: &str) -> bool {
    const CHUNK: usize = 64;
    let bytes = text.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return true;
    };
    if *first == b' ' || *last == b' ' {
        return false;
    }
    let is_allowed = |byte: u8| {
        let is_visible = (byte > b' ') & (byte < 0x7f) & (byte != b'<') & (byte != b'&');
        is_visible | (byte == b' ')
    };
    for chunk in bytes.chunks(CHUNK) {
        let all_allowed = chunk
            .iter()
            .fold(true, |allowed, byte| allowed & is_allowed(*byte));
        if !all_allowed {
            return false;
        }
    }
    // No two spaces in a row: each byte against the next one.
    for (chunk, next_chunk) in bytes.chunks(CHUNK).zip(bytes[1..].chunks(CHUNK)) {
        let has_double_space = chunk
            .iter()
            .zip(next_chunk)
            .fold(false, |found, (byte, next)| {
                found | ((*byte == b' ') & (*next == b' '))
            });
        if has_double_space {
            return false;
        }
    }
    true
}

/// The character-by-character definition the fast path must agree with.
#[cfg(test)]
fn collapse_whitespace_slowly(text: &str) -> String {
    let mut collapsed = String::with_capacity(text.len());
    let mut pending_space = false;
    for character in text.chars() {
        if character.is_whitespace() || character.is_control() {
            pending_space = !collapsed.is_empty();
            continue;
        }
        if is_invisible_format_character(character) {
            continue;
        }
        if pending_space {
            collapsed.push(' ');
            pending_space = false;
        }
        collapsed.push(character);
    }
    collapsed
}

fn is_invisible_format_character(character: char) -> bool {
    matches!(
        character,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quoted_replies_and_signatures_are_removed() {
        let draft = "I can't log in since yesterday.\n\nThanks,\nAnna Smith\nACME Inc\n\nOn Mon, 3 Feb 2025, Support wrote:\n> Hello Anna";
        assert_eq!(
            normalize_draft(draft, 2000).text,
            "I can't log in since yesterday."
        );
    }

    #[test]
    fn the_signature_delimiter_ends_the_draft() {
        let draft = "Invoice shows the wrong VAT\n-- \nBob\n+1 555 0100";
        assert_eq!(
            normalize_draft(draft, 2000).text,
            "Invoice shows the wrong VAT"
        );
    }

    #[test]
    fn a_draft_still_being_typed_ends_in_a_prefix() {
        assert!(normalize_draft("reset my passw", 2000).last_token_is_prefix);
        assert!(!normalize_draft("reset my password ", 2000).last_token_is_prefix);
        assert!(!normalize_draft("reset my password?", 2000).last_token_is_prefix);
    }

    #[test]
    fn long_input_is_cut_to_the_budget() {
        let log = "ERROR connection refused at line 42\n".repeat(50_000);
        let normalized = normalize_draft(&log, 500);
        assert!(normalized.truncated);
        assert!(normalized.text.chars().count() <= 500);
        assert!(!normalized.last_token_is_prefix);
    }

    #[test]
    fn invisible_and_control_characters_are_dropped() {
        let normalized = normalize_draft("pay\u{200F}ment\0 failed\u{202E}  now", 2000);
        assert_eq!(normalized.text, "payment failed now");
    }

    proptest! {
        #![proptest_config(crate::proptest_settings::regressions_kept_in_tests())]

        #[test]
        fn normalizing_never_panics_and_respects_the_cap(raw in ".{0,3000}", cap in 1usize..400) {
            let normalized = normalize_draft(&raw, cap);
            prop_assert!(normalized.text.chars().count() <= cap);
            prop_assert!(!normalized.text.starts_with(' '));
            prop_assert!(!normalized.text.ends_with(' '));
            prop_assert!(!normalized.text.contains("  "));
        }

        #[test]
        fn whitespace_is_collapsed_as_character_by_character(raw in "[ a-z.\t\n\u{0}-\u{1f}\u{7f}\u{a0}\u{200b}\u{202e}\u{3000}é漢]{0,200}") {
            prop_assert_eq!(collapse_whitespace(&raw), collapse_whitespace_slowly(&raw));
        }

        #[test]
        fn text_is_taken_as_collapsed_exactly_when_collapsing_leaves_it_as_it_is(
            raw in " ?([a-z.]{1,4} ){0,6}[a-z.]{0,3}( |\t|\n|\u{0}|\u{7f}|\u{a0}|é)?"
        ) {
            // Non-ASCII text always takes the full path, even when it is normal.
            let is_normal_ascii = raw.is_ascii() && collapse_whitespace_slowly(&raw) == raw;
            prop_assert_eq!(is_plain_and_collapsed(&raw), is_normal_ascii);
        }

        #[test]
        fn long_text_is_taken_as_collapsed_exactly_when_collapsing_leaves_it_as_it_is(
            words in proptest::collection::vec("[a-z.,]{1,9}", 1..120),
            separators in proptest::collection::vec(
                prop_oneof![300 => Just(" "), 1 => Just("  "), 1 => Just("\t"), 1 => Just(" \u{a0}")],
                120,
            ),
        ) {
            let mut raw = String::new();
            for (word, separator) in words.iter().zip(&separators) {
                raw.push_str(word);
                raw.push_str(separator);
            }
            let raw = raw.trim_end_matches(' ');
            // Non-ASCII text always takes the full path, even when it is normal.
            let is_normal_ascii = raw.is_ascii() && collapse_whitespace_slowly(raw) == raw;
            prop_assert_eq!(is_plain_and_collapsed(raw), is_normal_ascii);
        }
    }

    #[test]
    fn plain_content_text_is_not_copied_and_other_text_is_normalized() {
        let plain = "Open Settings, then Billing.";
        assert!(matches!(normalize_content_text(plain), Cow::Borrowed(text) if text == plain));
        for (raw, normal) in [
            ("Open  Settings", "Open Settings"),
            (" Open Settings", "Open Settings"),
            ("Open Settings\n", "Open Settings"),
            ("Open &amp; close", "Open & close"),
            ("<p>Open</p> Settings", "Open Settings"),
            (
                "Öffnen Sie\u{a0}die Einstellungen",
                "Öffnen Sie die Einstellungen",
            ),
        ] {
            assert_eq!(normalize_content_text(raw), normal);
        }
    }
}
