//! The events `/v1/suggest` records about its own answers: `suggestions_shown` with the
//! lessons shown, or `no_suggestions` (with the draft, for the gaps report).
//!
//! The draft is queued as typed and redacted by the event writer (see
//! [`QueuedEvent::into_storable`]): the handler only copies its first 4 KiB.

use crate::domain::{DeflectionEvent, DraftTicket, EventType, TenantId};
use crate::suggest::Suggestions;

use super::redaction::UnredactedDraft;
use super::sink::QueuedEvent;
use super::store::TenantEvent;

/// Bytes of a draft looked at for the gaps report (markup and quotes included; the
/// stored draft is at most 200 characters). They wait in the event queue until the
/// writer redacts them, so a full queue of suggest events holds up to this much per
/// event: about 400 MiB at the default `events.queue_capacity` of 100,000, reached only
/// when the writer is stalled for a long time.
const GAP_TEXT_BUDGET_BYTES: usize = 4 * 1024;

/// What the event of an answer needs of its draft (the draft itself moves into search).
pub struct AnsweredDraft {
    session_id: Option<String>,
    locale: Option<String>,
    /// The beginning of the draft, enough for the gaps report.
    text_head: String,
}

impl AnsweredDraft {
    pub fn of(draft: &DraftTicket) -> AnsweredDraft {
        let mut end = draft.text.len().min(GAP_TEXT_BUDGET_BYTES);
        while !draft.text.is_char_boundary(end) {
            end -= 1;
        }
        AnsweredDraft {
            session_id: draft.session_id.clone(),
            locale: draft.locale.clone(),
            text_head: draft.text[..end].to_owned(),
        }
    }
}

/// Returns the event of `answer`: `suggestions_shown` when it showed lessons (or held
/// the session out), `no_suggestions` when it suggested nothing. Its id is the answer's
/// `suggestion_id`; an answer without a session id is its own session. The draft of a
/// treated session goes with it unredacted, for the writer to redact; a held-out
/// session's is dropped (the gaps report is about what suggestions missed).
pub fn answer_event(tenant: &TenantId, draft: AnsweredDraft, answer: &Suggestions) -> QueuedEvent {
    let shown_something = !answer.results.is_empty() || answer.holdout;
    let event = DeflectionEvent {
        event_id: answer.suggestion_id.clone(),
        event_type: if shown_something {
            EventType::SuggestionsShown
        } else {
            EventType::NoSuggestions
        },
        session_id: draft
            .session_id
            .unwrap_or_else(|| answer.suggestion_id.clone()),
        suggestion_id: Some(answer.suggestion_id.clone()),
        lesson_id: None,
        lesson_ids: answer
            .results
            .iter()
            .map(|result| result.id.clone())
            .collect(),
        timestamp_ms: now_milliseconds(),
        reason: None,
        channel: Some("suggest".to_owned()),
        locale: draft.locale,
        holdout: answer.holdout,
        after_submission: false,
        draft: None,
    };
    let tenant_event = TenantEvent {
        tenant: tenant.clone(),
        event,
    };
    if answer.holdout {
        QueuedEvent::new(tenant_event)
    } else {
        QueuedEvent::with_gap_draft(tenant_event, UnredactedDraft::new(draft.text_head))
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_milliseconds() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SuggestRequestBody;

    fn draft(text: &str, session_id: Option<&str>) -> AnsweredDraft {
        let body = SuggestRequestBody {
            text: Some(text.to_owned()),
            session_id: session_id.map(str::to_owned),
            ..SuggestRequestBody::default()
        };
        AnsweredDraft::of(&DraftTicket::parse(body, 3, 20).unwrap())
    }

    #[test]
    fn an_answer_without_suggestions_records_its_redacted_draft_as_its_own_session() {
        let tenant = TenantId::parse("acme").unwrap();
        let answer = Suggestions::held_out();
        let nothing = Suggestions {
            holdout: false,
            ..answer
        };

        let queued = answer_event(&tenant, draft("Call me at +1 555 123 4567", None), &nothing);
        let unredacted_in_the_queue = queued.event().event.draft.clone();
        let recorded = queued.into_storable();

        assert_eq!(recorded.event.event_type, EventType::NoSuggestions);
        assert_eq!(recorded.event.session_id, nothing.suggestion_id);
        assert_eq!(
            unredacted_in_the_queue, None,
            "redacting is the writer's job"
        );
        assert_eq!(recorded.event.draft.as_deref(), Some("call me at [phone]"));
    }

    #[test]
    fn a_held_out_answer_is_shown_nothing_and_keeps_no_draft() {
        let tenant = TenantId::parse("acme").unwrap();

        let recorded = answer_event(
            &tenant,
            draft("reset password", Some("s1")),
            &Suggestions::held_out(),
        )
        .into_storable();

        assert_eq!(recorded.event.event_type, EventType::SuggestionsShown);
        assert!(recorded.event.holdout);
        assert_eq!(recorded.event.session_id, "s1");
        assert_eq!(recorded.event.draft, None);
    }
}
