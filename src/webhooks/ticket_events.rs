//! The deflection events of helpdesk tickets, with ids made from what they are about,
//! so a redelivered webhook, a retried comment or a second click records nothing twice:
//!
//! - `ticket_submitted` for the widget session a new ticket names;
//! - for the lessons posted into a ticket ("while you wait"), events of the ticket's own
//!   session (`ticket:<helpdesk>:<id>`) marked `after_submission`: `suggestions_shown`
//!   when the comment is posted, `lesson_opened` per lesson clicked, `resolved` for
//!   "This solved my problem".

use sha2::{Digest, Sha256};

use crate::domain::{DeflectionEvent, EventType, TenantId};
use crate::events::answers::now_milliseconds;
use crate::events::TenantEvent;
use crate::helpdesk::Helpdesk;
use crate::tracked_links::{ticket_session, LinkTarget, TrackedLink};

use super::Provider;

/// `ticket_submitted` of widget session `session_id`, reported by `provider`'s webhook
/// for ticket `ticket_id`.
pub fn ticket_submitted(
    tenant: &TenantId,
    provider: Provider,
    ticket_id: &str,
    session_id: &str,
) -> TenantEvent {
    let mut event = base_event(
        EventType::TicketSubmitted,
        &[provider.as_str(), ticket_id, "submitted"],
        session_id.to_owned(),
        provider.as_str(),
    );
    // The widget's session, counted as the widget's own events are.
    event.after_submission = false;
    TenantEvent {
        tenant: tenant.clone(),
        event,
    }
}

/// The lessons `lesson_ids` were posted into the ticket.
pub fn lessons_posted(
    tenant: &TenantId,
    helpdesk: Helpdesk,
    ticket_id: &str,
    lesson_ids: Vec<String>,
) -> TenantEvent {
    let mut event = base_event(
        EventType::SuggestionsShown,
        &[helpdesk.as_str(), ticket_id, "posted"],
        ticket_session(helpdesk, ticket_id),
        helpdesk.as_str(),
    );
    event.lesson_ids = lesson_ids;
    TenantEvent {
        tenant: tenant.clone(),
        event,
    }
}

/// A lesson link of the ticket was followed (`lesson_opened`, once per lesson) or "This
/// solved my problem" confirmed (`resolved`, once per ticket). None for an assigned
/// lesson's link: its opening is the assignment's progress, not a deflection event.
pub fn link_followed(link: &TrackedLink) -> Option<TenantEvent> {
    let helpdesk = link.helpdesk.as_str();
    let mut event = match &link.target {
        LinkTarget::Lesson(lesson_id) => {
            let mut event = base_event(
                EventType::LessonOpened,
                &[helpdesk, &link.ticket_id, "opened", lesson_id],
                link.ticket_session(),
                helpdesk,
            );
            event.lesson_id = Some(lesson_id.clone());
            event
        }
        LinkTarget::Solved => base_event(
            EventType::Resolved,
            &[helpdesk, &link.ticket_id, "resolved"],
            link.ticket_session(),
            helpdesk,
        ),
        LinkTarget::Assigned { .. } => return None,
    };
    event.locale = Some(link.language.code().to_owned());
    Some(TenantEvent {
        tenant: link.tenant.clone(),
        event,
    })
}

/// A post-submission event (`after_submission`) of `event_type` whose id is a digest of
/// `identity`.
fn base_event(
    event_type: EventType,
    identity: &[&str],
    session_id: String,
    channel: &str,
) -> DeflectionEvent {
    DeflectionEvent {
        event_id: event_id(identity),
        event_type,
        session_id,
        suggestion_id: None,
        lesson_id: None,
        lesson_ids: Vec::new(),
        timestamp_ms: now_milliseconds(),
        reason: None,
        channel: Some(channel.to_owned()),
        locale: None,
        holdout: false,
        draft: None,
        after_submission: true,
    }
}

/// `helpdesk-` and 40 hex digits of the SHA-256 of the parts (ids stay short and free of
/// whatever characters lesson ids hold).
fn event_id(identity: &[&str]) -> String {
    let mut digest = Sha256::new();
    for part in identity {
        digest.update(part.as_bytes());
        digest.update([0x1f]);
    }
    let hex: String = digest
        .finalize()
        .iter()
        .take(20)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("helpdesk-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpdesk::comment::Language;

    #[test]
    fn the_same_click_makes_the_same_event_id_and_other_lessons_other_ids() {
        let link = |lesson: &str| TrackedLink {
            tenant: TenantId::parse("acme").unwrap(),
            helpdesk: Helpdesk::Zendesk,
            ticket_id: "7".to_owned(),
            target: LinkTarget::Lesson(lesson.to_owned()),
            language: Language::En,
        };

        let first = link_followed(&link("a")).unwrap().event;
        let again = link_followed(&link("a")).unwrap().event;
        let other = link_followed(&link("b")).unwrap().event;

        assert_eq!(first.event_id, again.event_id);
        assert_ne!(first.event_id, other.event_id);
        assert!(first.after_submission);
        assert_eq!(first.session_id, "ticket:zendesk:7");
    }

    #[test]
    fn a_submission_belongs_to_the_widget_session_and_counts_as_one() {
        let tenant = TenantId::parse("acme").unwrap();
        let event = ticket_submitted(&tenant, Provider::Freshdesk, "12", "s-1").event;
        assert_eq!(event.session_id, "s-1");
        assert!(!event.after_submission);
        assert_eq!(event.event_type, EventType::TicketSubmitted);
    }
}
