//! The completion and enrollment events inside a verified LMS webhook body, in deflect's
//! generic shape or in Thinkific's.
//!
//! Generic (signed with Standard Webhooks):
//!
//! ```json
//! {"type": "lesson.completed", "customer_id": "ana@example.com",
//!  "lesson_id": "reset-password", "course_id": "accounts", "occurred_at": "2026-03-14T09:30:00Z"}
//! ```
//!
//! with `type` one of `lesson.completed` (needs `lesson_id`), `course.completed` and
//! `enrollment.created` (need `course_id`). Thinkific (signed with
//! `X-Thinkific-Hmac-Sha256`): `{"id", "resource", "action", "created_at", "payload"}`
//! with `lesson.completed` (`payload.lesson`), `enrollment.completed`,
//! `enrollment.created` and `enrollment.trial` (`payload.course`), the customer being
//! `payload.user`'s `external_id`, else its `email`, else its `id`. Other events are
//! acknowledged and ignored.

use serde_json::{Map, Value};

use crate::domain::{parse_timestamp, CustomerId};
use crate::webhooks::payload::text;

use super::progress::{ItemKind, Step};

/// LMS ids longer than this are refused (they become part of content ids).
const MAX_LMS_ID_CHARS: usize = 150;
const MAX_EVENT_CHARS: usize = 100;

/// The body shapes deflect reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LmsShape {
    Generic,
    Thinkific,
}

/// An LMS webhook as deflect understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmsEvent {
    /// The event's name as sent (`lesson.completed`).
    pub name: String,
    /// The sender's id of the event, when the body carries one (Thinkific's `id`).
    pub event_id: Option<String>,
    /// What to record; none for events deflect does not act on.
    pub progress: Option<LmsProgress>,
}

/// A customer's step on a lesson or course, in the LMS's ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmsProgress {
    pub customer: CustomerId,
    pub step: Step,
    pub kind: ItemKind,
    /// The LMS's id of the lesson or course (the tenant's prefix makes it a content id).
    pub lms_id: String,
    /// When it happened, as the LMS says.
    pub at_ms: Option<i64>,
}

/// Why a body is not an LMS webhook deflect reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LmsProblem {
    #[error("the body is not a JSON object: {0}")]
    NotJson(String),
    #[error("the body names no event: send `type` (or Thinkific's `resource` and `action`)")]
    MissingEvent,
    #[error("{0}")]
    InvalidCustomer(String),
    #[error("`{0}` is required for this event: 1-150 characters")]
    MissingId(&'static str),
}

impl LmsEvent {
    /// Parses a verified body of `shape`.
    pub fn parse(shape: LmsShape, body: &[u8]) -> Result<LmsEvent, LmsProblem> {
        let value: Value =
            serde_json::from_slice(body).map_err(|error| LmsProblem::NotJson(error.to_string()))?;
        let Value::Object(root) = value else {
            return Err(LmsProblem::NotJson("not an object".to_owned()));
        };
        match shape {
            LmsShape::Generic => parse_generic(&root),
            LmsShape::Thinkific => parse_thinkific(&root),
        }
    }
}

fn parse_generic(root: &Map<String, Value>) -> Result<LmsEvent, LmsProblem> {
    let name = event_name(text(root.get("type")))?;
    let action = match name.as_str() {
        "lesson.completed" => Some((Step::Completed, ItemKind::Lesson, "lesson_id")),
        "course.completed" => Some((Step::Completed, ItemKind::Course, "course_id")),
        "enrollment.created" => Some((Step::Opened, ItemKind::Course, "course_id")),
        _ => None,
    };
    let progress = match action {
        None => None,
        Some((step, kind, id_field)) => Some(LmsProgress {
            customer: customer(text(root.get("customer_id")))?,
            step,
            kind,
            lms_id: checked_lms_id(text(root.get(id_field)), id_field)?,
            at_ms: root.get("occurred_at").and_then(parse_timestamp),
        }),
    };
    Ok(LmsEvent {
        name,
        event_id: text(root.get("id")),
        progress,
    })
}

fn parse_thinkific(root: &Map<String, Value>) -> Result<LmsEvent, LmsProblem> {
    let resource = text(root.get("resource")).unwrap_or_default();
    let action = text(root.get("action")).unwrap_or_default();
    let name = event_name(
        (!resource.is_empty() && !action.is_empty()).then(|| format!("{resource}.{action}")),
    )?;
    let payload = root.get("payload").and_then(Value::as_object);
    let sent_at = root.get("created_at").and_then(parse_timestamp);
    let at = |fields: &[&str]| {
        fields
            .iter()
            .find_map(|field| payload?.get(*field).and_then(parse_timestamp))
            .or(sent_at)
    };
    let (step, kind, lms_id, at_ms) = match name.as_str() {
        "lesson.completed" => (
            Step::Completed,
            ItemKind::Lesson,
            nested_id(payload, "lesson"),
            at(&["completed_at"]),
        ),
        "enrollment.completed" => (
            Step::Completed,
            ItemKind::Course,
            nested_id(payload, "course"),
            at(&["completed_at"]),
        ),
        "enrollment.created" | "enrollment.trial" => (
            Step::Opened,
            ItemKind::Course,
            nested_id(payload, "course"),
            at(&["started_at", "activated_at", "created_at"]),
        ),
        _ => {
            return Ok(LmsEvent {
                name,
                event_id: text(root.get("id")),
                progress: None,
            })
        }
    };
    let user = payload.and_then(|payload| payload.get("user"));
    let customer_text = ["external_id", "email", "id"]
        .iter()
        .find_map(|field| text(user?.get(*field)));
    let id_field = match kind {
        ItemKind::Lesson => "payload.lesson.id",
        ItemKind::Course => "payload.course.id",
    };
    Ok(LmsEvent {
        name,
        event_id: text(root.get("id")),
        progress: Some(LmsProgress {
            customer: customer(customer_text)?,
            step,
            kind,
            lms_id: checked_lms_id(lms_id, id_field)?,
            at_ms,
        }),
    })
}

/// Thinkific names a lesson or course as `{"id": …}` inside the payload, and some
/// payloads also as `<name>_id`.
fn nested_id(payload: Option<&Map<String, Value>>, name: &str) -> Option<String> {
    let payload = payload?;
    payload
        .get(name)
        .and_then(|object| text(object.get("id")))
        .or_else(|| text(payload.get(&format!("{name}_id"))))
}

fn event_name(name: Option<String>) -> Result<String, LmsProblem> {
    name.map(|name| name.chars().take(MAX_EVENT_CHARS).collect())
        .ok_or(LmsProblem::MissingEvent)
}

fn customer(raw: Option<String>) -> Result<CustomerId, LmsProblem> {
    let raw = raw.ok_or_else(|| {
        LmsProblem::InvalidCustomer("the event names no customer (`customer_id`)".to_owned())
    })?;
    CustomerId::parse(&raw).map_err(LmsProblem::InvalidCustomer)
}

fn checked_lms_id(raw: Option<String>, field: &'static str) -> Result<String, LmsProblem> {
    raw.filter(|id| {
        id.chars().count() <= MAX_LMS_ID_CHARS
            && !id.chars().any(|character| {
                character.is_whitespace() || character.is_control() || character == '/'
            })
    })
    .ok_or(LmsProblem::MissingId(field))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(shape: LmsShape, value: Value) -> Result<LmsEvent, LmsProblem> {
        LmsEvent::parse(shape, value.to_string().as_bytes())
    }

    #[test]
    fn a_generic_lesson_completion_names_customer_lesson_and_time() {
        let event = parse(
            LmsShape::Generic,
            json!({"type": "lesson.completed", "customer_id": "ana@example.com",
                   "lesson_id": "reset-password", "course_id": "accounts",
                   "occurred_at": "2026-03-14T10:00:00Z"}),
        )
        .unwrap();

        let progress = event.progress.unwrap();
        assert_eq!(progress.customer.as_str(), "ana@example.com");
        assert_eq!(
            (progress.step, progress.kind),
            (Step::Completed, ItemKind::Lesson)
        );
        assert_eq!(progress.lms_id, "reset-password");
        assert_eq!(progress.at_ms, Some(1_773_482_400_000));
    }

    #[test]
    fn a_thinkific_lesson_completion_reads_the_payloads_lesson_and_user() {
        let event = parse(
            LmsShape::Thinkific,
            json!({"id": "20260314100000123", "resource": "lesson", "action": "completed",
                   "tenant_id": "3", "created_at": "2026-03-14T10:00:00.000Z",
                   "payload": {"chapter": {"id": 9, "name": "Basics"},
                               "course": {"id": 12, "name": "Accounts"},
                               "lesson": {"id": 345, "name": "Reset your password"},
                               "user": {"id": 77, "email": "ana@example.com", "first_name": "Ana"}}}),
        )
        .unwrap();

        assert_eq!(event.name, "lesson.completed");
        assert_eq!(event.event_id.as_deref(), Some("20260314100000123"));
        let progress = event.progress.unwrap();
        assert_eq!(progress.lms_id, "345");
        assert_eq!(progress.customer.as_str(), "ana@example.com");
        assert_eq!(progress.at_ms, Some(1_773_482_400_000));
    }

    #[test]
    fn thinkific_enrollments_complete_or_open_their_course() {
        let completed = parse(
            LmsShape::Thinkific,
            json!({"id": "1", "resource": "enrollment", "action": "completed",
                   "created_at": "2026-03-14T10:00:00Z",
                   "payload": {"completed_at": "2026-03-13T10:00:00Z", "course_id": 25,
                               "course": {"id": 25, "name": "Billing"},
                               "user": {"id": 95, "email": "bo@example.com", "external_id": "crm-95"}}}),
        )
        .unwrap()
        .progress
        .unwrap();
        let created = parse(
            LmsShape::Thinkific,
            json!({"id": "2", "resource": "enrollment", "action": "created",
                   "payload": {"course_id": 25, "user": {"id": 95}}}),
        )
        .unwrap()
        .progress
        .unwrap();

        assert_eq!(
            (completed.step, completed.kind),
            (Step::Completed, ItemKind::Course)
        );
        assert_eq!(completed.customer.as_str(), "crm-95");
        assert_eq!(completed.at_ms, Some(1_773_396_000_000));
        assert_eq!(
            (created.step, created.lms_id.as_str()),
            (Step::Opened, "25")
        );
        assert_eq!(created.customer.as_str(), "95");
    }

    #[test]
    fn other_events_are_ignored_and_incomplete_ones_refused() {
        let order = parse(
            LmsShape::Thinkific,
            json!({"id": "3", "resource": "order", "action": "created", "payload": {}}),
        )
        .unwrap();
        assert_eq!(order.progress, None);
        assert_eq!(
            parse(
                LmsShape::Generic,
                json!({"type": "course.completed", "customer_id": "a"})
            ),
            Err(LmsProblem::MissingId("course_id"))
        );
        assert!(matches!(
            parse(
                LmsShape::Generic,
                json!({"type": "lesson.completed", "lesson_id": "x"})
            ),
            Err(LmsProblem::InvalidCustomer(_))
        ));
        assert_eq!(
            parse(LmsShape::Generic, json!({"customer_id": "a"})),
            Err(LmsProblem::MissingEvent)
        );
    }
}
