//! Deflection events: what a customer did with the suggestions of one draft ticket.
//!
//! Widgets and agents send them in batches (`POST /v1/events`); the suggest route makes
//! `suggestions_shown` (and `no_suggestions`) itself. Each event is parsed on its own so
//! that one bad event is rejected with a reason while the rest of its batch is kept.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::content::is_locale_tag;

/// What happened. The first seven are the public event types; `no_suggestions` is made
/// only by the suggest route (an answer that abstained), for the gaps report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    SuggestionsShown,
    LessonOpened,
    Helpful,
    NotHelpful,
    Resolved,
    TicketAbandoned,
    TicketSubmitted,
    NoSuggestions,
}

impl EventType {
    /// The types a client may send.
    pub const PUBLIC: [EventType; 7] = [
        EventType::SuggestionsShown,
        EventType::LessonOpened,
        EventType::Helpful,
        EventType::NotHelpful,
        EventType::Resolved,
        EventType::TicketAbandoned,
        EventType::TicketSubmitted,
    ];

    /// Parses a type a client may send; `no_suggestions` is not one of them.
    pub fn parse_public(raw: &str) -> Option<EventType> {
        EventType::PUBLIC
            .into_iter()
            .find(|event_type| event_type.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SuggestionsShown => "suggestions_shown",
            EventType::LessonOpened => "lesson_opened",
            EventType::Helpful => "helpful",
            EventType::NotHelpful => "not_helpful",
            EventType::Resolved => "resolved",
            EventType::TicketAbandoned => "ticket_abandoned",
            EventType::TicketSubmitted => "ticket_submitted",
            EventType::NoSuggestions => "no_suggestions",
        }
    }

    /// Returns whether the event is about one lesson and so must name it.
    pub fn requires_lesson(self) -> bool {
        matches!(
            self,
            EventType::LessonOpened | EventType::Helpful | EventType::NotHelpful
        )
    }
}

/// One event as it arrives, before validation. Every field is optional here so that the
/// rejection can say what is missing.
#[derive(Debug, Default, Deserialize)]
pub struct EventInput {
    pub event_id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub session_id: Option<String>,
    pub suggestion_id: Option<String>,
    pub lesson_id: Option<String>,
    /// The lessons shown, for `suggestions_shown`.
    pub lesson_ids: Option<Vec<String>>,
    /// RFC 3339 text or milliseconds since the Unix epoch; the time of arrival if absent.
    pub ts: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub channel: Option<String>,
    pub locale: Option<String>,
}

/// Why an event was rejected. The code is stable (README lists them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventProblem {
    #[error("the event is not a JSON object of the expected shape: {0}")]
    MalformedEvent(String),
    #[error("event_id is required: 1-128 printable characters without whitespace")]
    InvalidEventId,
    #[error("type must be one of suggestions_shown, lesson_opened, helpful, not_helpful, resolved, ticket_abandoned, ticket_submitted")]
    UnknownType,
    #[error("session_id is required: 1-128 printable characters without whitespace")]
    InvalidSessionId,
    #[error("lesson_id is required for this type: 1-200 printable characters without whitespace")]
    InvalidLessonId,
    #[error("suggestion_id must be 1-128 printable characters without whitespace")]
    InvalidSuggestionId,
    #[error("lesson_ids must hold at most {MAX_SHOWN_LESSONS} lesson ids")]
    InvalidLessonIds,
    #[error("ts must be RFC 3339 text or milliseconds since the Unix epoch")]
    InvalidTimestamp,
    #[error("ts is more than {max_age_days} days old or more than 5 minutes in the future")]
    TimestampOutOfRange { max_age_days: u32 },
    #[error("{field} must be at most {max} printable characters")]
    InvalidLabel { field: &'static str, max: usize },
}

impl EventProblem {
    /// A stable snake_case code for the per-event answer.
    pub fn code(&self) -> &'static str {
        match self {
            EventProblem::MalformedEvent(_) => "malformed_event",
            EventProblem::InvalidEventId => "invalid_event_id",
            EventProblem::UnknownType => "unknown_event_type",
            EventProblem::InvalidSessionId => "invalid_session_id",
            EventProblem::InvalidLessonId => "invalid_lesson_id",
            EventProblem::InvalidSuggestionId => "invalid_suggestion_id",
            EventProblem::InvalidLessonIds => "invalid_lesson_ids",
            EventProblem::InvalidTimestamp => "invalid_timestamp",
            EventProblem::TimestampOutOfRange { .. } => "timestamp_out_of_range",
            EventProblem::InvalidLabel { .. } => "invalid_label",
        }
    }
}

/// A valid event. It is also the record the spool keeps, so its serialized form must
/// stay readable by the next version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeflectionEvent {
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lesson_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lesson_ids: Vec<String>,
    /// Milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Set by the suggest route for sessions held out of suggestions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holdout: bool,
    /// The normalized draft of a suggest answer with personal data redacted, for the
    /// gaps report: filled in by the event writer (`events::sink::QueuedEvent`), never
    /// taken from a client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<String>,
    /// Set by deflect for events about lessons posted into a ticket already submitted
    /// ("while you wait"), whose session is the ticket: counted apart as post-submission
    /// figures. Never taken from a client.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_submission: bool,
}

const MAX_ID_CHARS: usize = 128;
const MAX_LESSON_ID_CHARS: usize = 200;
/// The longest accepted reason; longer ones are cut, not rejected.
pub const MAX_REASON_CHARS: usize = 500;
const MAX_LABEL_CHARS: usize = 64;
/// Most lessons one `suggestions_shown` may name (the suggest limit is at most 20).
pub const MAX_SHOWN_LESSONS: usize = 50;
/// Events may be this far ahead of the server's clock (clients' clocks drift).
const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

impl DeflectionEvent {
    /// Validates one event of a batch. `now_ms` is the time of arrival (the event's time
    /// when it has none); events older than `max_age_days` are refused because their
    /// idempotency markers may have expired, so a replay could count them twice.
    pub fn parse(
        raw: serde_json::Value,
        now_ms: i64,
        max_age_days: u32,
    ) -> Result<DeflectionEvent, EventProblem> {
        let input: EventInput = serde_json::from_value(raw)
            .map_err(|error| EventProblem::MalformedEvent(error.to_string()))?;
        let event_id =
            parse_id(input.event_id, MAX_ID_CHARS).ok_or(EventProblem::InvalidEventId)?;
        let event_type = input
            .event_type
            .as_deref()
            .map(str::trim)
            .and_then(EventType::parse_public)
            .ok_or(EventProblem::UnknownType)?;
        let session_id =
            parse_id(input.session_id, MAX_ID_CHARS).ok_or(EventProblem::InvalidSessionId)?;
        let suggestion_id = match input.suggestion_id {
            None => None,
            Some(raw) => {
                Some(parse_id(Some(raw), MAX_ID_CHARS).ok_or(EventProblem::InvalidSuggestionId)?)
            }
        };
        let lesson_id = match input.lesson_id {
            None => None,
            Some(raw) => Some(
                parse_id(Some(raw), MAX_LESSON_ID_CHARS).ok_or(EventProblem::InvalidLessonId)?,
            ),
        };
        if event_type.requires_lesson() && lesson_id.is_none() {
            return Err(EventProblem::InvalidLessonId);
        }
        let mut lesson_ids = Vec::new();
        for raw_lesson in input.lesson_ids.unwrap_or_default() {
            let lesson = parse_id(Some(raw_lesson), MAX_LESSON_ID_CHARS)
                .ok_or(EventProblem::InvalidLessonIds)?;
            if !lesson_ids.contains(&lesson) {
                lesson_ids.push(lesson);
            }
        }
        if lesson_ids.len() > MAX_SHOWN_LESSONS {
            return Err(EventProblem::InvalidLessonIds);
        }
        let timestamp_ms = match input.ts {
            None | Some(serde_json::Value::Null) => now_ms,
            Some(raw) => parse_timestamp(&raw).ok_or(EventProblem::InvalidTimestamp)?,
        };
        let oldest_ms = now_ms - i64::from(max_age_days) * 24 * 3600 * 1000;
        if timestamp_ms < oldest_ms || timestamp_ms > now_ms + MAX_FUTURE_SKEW_MS {
            return Err(EventProblem::TimestampOutOfRange { max_age_days });
        }
        let reason = input
            .reason
            .map(|reason| cap_chars(reason.trim(), MAX_REASON_CHARS))
            .filter(|reason| !reason.is_empty());
        let channel = parse_label("channel", input.channel)?;
        let locale = match parse_label("locale", input.locale)? {
            Some(locale) if is_locale_tag(&locale) => Some(locale.replace('_', "-").to_lowercase()),
            Some(_) => {
                return Err(EventProblem::InvalidLabel {
                    field: "locale",
                    max: MAX_LABEL_CHARS,
                })
            }
            None => None,
        };
        Ok(DeflectionEvent {
            event_id,
            event_type,
            session_id,
            suggestion_id,
            lesson_id,
            lesson_ids,
            timestamp_ms,
            reason,
            channel,
            locale,
            holdout: false,
            draft: None,
            after_submission: false,
        })
    }
}

/// Returns `raw` trimmed when it is 1-`max_chars` characters with no whitespace or
/// control characters: ids become part of Redis keys and log lines.
fn parse_id(raw: Option<String>, max_chars: usize) -> Option<String> {
    let raw = raw?;
    let trimmed = raw.trim();
    let valid = !trimmed.is_empty()
        && trimmed.chars().count() <= max_chars
        && !trimmed
            .chars()
            .any(|character| character.is_whitespace() || character.is_control());
    valid.then(|| trimmed.to_owned())
}

fn parse_label(field: &'static str, raw: Option<String>) -> Result<Option<String>, EventProblem> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > MAX_LABEL_CHARS || trimmed.contains(char::is_control) {
        return Err(EventProblem::InvalidLabel {
            field,
            max: MAX_LABEL_CHARS,
        });
    }
    Ok(Some(trimmed.to_owned()))
}

/// Reads a timestamp written as RFC 3339 text or as milliseconds since the epoch.
pub fn parse_timestamp(raw: &serde_json::Value) -> Option<i64> {
    match raw {
        serde_json::Value::Number(number) => number.as_i64(),
        serde_json::Value::String(text) => {
            let parsed = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
            i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
        }
        _ => None,
    }
}

/// Cuts `text` to at most `max_chars` characters, without control characters.
pub fn cap_chars(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|character| !character.is_control())
        .take(max_chars)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW_MS: i64 = 1_790_000_000_000;

    fn parse(raw: serde_json::Value) -> Result<DeflectionEvent, EventProblem> {
        DeflectionEvent::parse(raw, NOW_MS, 6)
    }

    #[test]
    fn a_minimal_event_takes_the_time_of_arrival() {
        let event =
            parse(json!({"event_id": "e1", "type": "resolved", "session_id": "s1"})).unwrap();
        assert_eq!(event.event_type, EventType::Resolved);
        assert_eq!(event.timestamp_ms, NOW_MS);
    }

    #[test]
    fn timestamps_parse_from_rfc3339_and_from_milliseconds() {
        let from_text = parse(
            json!({"event_id": "e1", "type": "resolved", "session_id": "s1",
            "ts": "2026-09-21T12:00:00.250Z"}),
        )
        .unwrap();
        let from_number = parse(
            json!({"event_id": "e1", "type": "resolved", "session_id": "s1",
            "ts": from_text.timestamp_ms}),
        )
        .unwrap();
        assert_eq!(from_text.timestamp_ms % 1000, 250);
        assert_eq!(from_text.timestamp_ms, from_number.timestamp_ms);
    }

    #[test]
    fn events_about_a_lesson_must_name_it() {
        let problem =
            parse(json!({"event_id": "e1", "type": "helpful", "session_id": "s1"})).unwrap_err();
        assert_eq!(problem.code(), "invalid_lesson_id");
    }

    #[test]
    fn the_internal_type_cannot_be_sent_by_clients() {
        let problem =
            parse(json!({"event_id": "e1", "type": "no_suggestions", "session_id": "s1"}))
                .unwrap_err();
        assert_eq!(problem, EventProblem::UnknownType);
    }

    #[test]
    fn events_older_than_the_idempotency_window_are_refused() {
        let eight_days_ago = NOW_MS - 8 * 24 * 3600 * 1000;
        let problem = parse(
            json!({"event_id": "e1", "type": "resolved", "session_id": "s1",
            "ts": eight_days_ago}),
        )
        .unwrap_err();
        assert_eq!(problem.code(), "timestamp_out_of_range");
    }

    #[test]
    fn long_reasons_are_capped_and_ids_with_spaces_refused() {
        let event = parse(
            json!({"event_id": "e1", "type": "not_helpful", "session_id": "s1",
            "lesson_id": "l1", "reason": "x".repeat(10_000)}),
        )
        .unwrap();
        assert_eq!(event.reason.unwrap().chars().count(), MAX_REASON_CHARS);
        let problem =
            parse(json!({"event_id": "e 1", "type": "resolved", "session_id": "s1"})).unwrap_err();
        assert_eq!(problem, EventProblem::InvalidEventId);
    }

    #[test]
    fn the_spool_form_round_trips() {
        let event = parse(
            json!({"event_id": "e1", "type": "suggestions_shown", "session_id": "s1",
            "lesson_ids": ["a", "b", "a"], "channel": "widget"}),
        )
        .unwrap();
        assert_eq!(event.lesson_ids, vec!["a", "b"]);
        let text = serde_json::to_string(&event).unwrap();
        let back: DeflectionEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, event);
    }
}
