//! Personal data is taken out of drafts before anything is stored for the gaps report.
//!
//! Gaps are read by content teams, not support agents: they need the question, never the
//! customer's e-mail address, phone number or card number. Redaction runs on the
//! normalized draft, before it leaves the process.
//!
//! It runs on the event writer's thread, not in request handlers (see
//! [`crate::events::sink::QueuedEvent`]): a handler only moves the raw text into the queue,
//! and the writer redacts it before anything reaches the spool file or Redis.

use std::sync::LazyLock;

use regex::Regex;

use crate::text::normalizer::normalize_draft;

/// The longest draft kept for the gaps report, in characters.
pub const MAX_GAP_DRAFT_CHARS: usize = 200;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+").expect("a valid pattern")
});

/// Digit runs with optional separators: card numbers (13-19 digits), IBAN-like and
/// account numbers, phone numbers with or without a leading `+` and grouping.
static DIGIT_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?\(?\d[\d\s().\-/]{4,}\d").expect("a valid pattern"));

/// Replaces e-mail addresses, phone numbers, card-like numbers and long digit runs.
///
/// A run with 13-19 digits is `[card]`; one with 7-12 digits (phone numbers, account
/// numbers) is `[phone]` when it looks dialled (`+`, parentheses or separators) and
/// `[number]` otherwise; runs of 6 or more digits are never kept; shorter numbers
/// (versions, error codes like 404, years) stay.
pub fn redact_personal_data(text: &str) -> String {
    let without_emails = EMAIL.replace_all(text, "[email]");
    DIGIT_RUN
        .replace_all(&without_emails, |captures: &regex::Captures<'_>| {
            let run = &captures[0];
            let digits = run.chars().filter(char::is_ascii_digit).count();
            let looks_dialled = run.starts_with('+') || run.contains(['(', ' ', '-', '.', '/']);
            match digits {
                13..=19 => "[card]".to_owned(),
                7..=12 if looks_dialled => "[phone]".to_owned(),
                6.. => "[number]".to_owned(),
                _ => run.to_owned(),
            }
        })
        .into_owned()
}

/// The beginning of a draft as the customer typed it, on its way to the event writer,
/// which redacts it with [`UnredactedDraft::redact`]. It cannot be serialized, and its
/// `Debug` shows only its length, so it never lands in the spool or a log by mistake.
pub struct UnredactedDraft(String);

impl UnredactedDraft {
    pub fn new(text: String) -> UnredactedDraft {
        UnredactedDraft(text)
    }

    /// Returns the draft as stored for gaps ([`gap_draft`]).
    pub fn redact(&self) -> Option<String> {
        gap_draft(&self.0)
    }
}

impl std::fmt::Debug for UnredactedDraft {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "UnredactedDraft({} bytes)", self.0.len())
    }
}

/// Turns a raw draft into the form stored for gaps: markup, quotes and signatures
/// removed (the search normalizer), lowercased, personal data redacted, capped.
pub fn gap_draft(raw: &str) -> Option<String> {
    let normalized = normalize_draft(raw, MAX_GAP_DRAFT_CHARS * 2);
    let redacted = redact_personal_data(&normalized.text.to_lowercase());
    let capped: String = redacted.chars().take(MAX_GAP_DRAFT_CHARS).collect();
    let trimmed = capped.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emails_phones_and_cards_are_replaced() {
        let redacted = redact_personal_data(
            "mail jane.doe+x@example.co.uk or call +44 20 7946 0958, card 4111 1111 1111 1111",
        );
        assert_eq!(redacted, "mail [email] or call [phone], card [card]");
    }

    #[test]
    fn long_digit_runs_go_and_short_numbers_stay() {
        let redacted = redact_personal_data("order 12345678 failed with error 404 in 2026");
        assert_eq!(redacted, "order [number] failed with error 404 in 2026");
    }

    #[test]
    fn gap_drafts_are_normalized_lowercased_and_redacted() {
        let draft = gap_draft("<p>Cannot  LOGIN</p> as bob@acme.example").unwrap();
        assert_eq!(draft, "cannot login as [email]");
    }

    #[test]
    fn an_unredacted_draft_never_prints_its_text() {
        let draft = UnredactedDraft::new("mail bob@acme.example".to_owned());
        assert_eq!(format!("{draft:?}"), "UnredactedDraft(21 bytes)");
        assert_eq!(draft.redact().as_deref(), Some("mail [email]"));
    }

    proptest! {
        #![proptest_config(crate::proptest_settings::regressions_kept_in_tests())]

        #[test]
        fn no_run_of_six_digits_survives(prefix in "[a-z ]{0,20}", digits in "[0-9]{6,25}", suffix in "[a-z ]{0,20}") {
            let redacted = redact_personal_data(&format!("{prefix}{digits}{suffix}"));
            let longest_run = redacted
                .split(|character: char| !character.is_ascii_digit())
                .map(str::len)
                .max()
                .unwrap_or(0);
            prop_assert!(longest_run < 6, "{redacted}");
        }
    }
}
