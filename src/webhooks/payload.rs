//! The ticket inside a verified webhook body, in the shapes helpdesks send:
//!
//! - Zendesk event webhooks: `{"type": "zen:event-type:ticket.created", "detail": {"id",
//!   "subject", "description", "tags", "updated_at", ...}}`;
//! - the body an admin writes for a Zendesk trigger, a Freshdesk automation rule or any
//!   other sender: `{"event": "ticket.created", "ticket": {"id", "subject",
//!   "description", "session_id", "locale", "tags", "updated_at"}}`, or the Standard
//!   Webhooks convention `{"type": "ticket.created", "data": {...}}`.
//!
//! Placeholders render as text, so ids may come as strings or numbers and tags as a list
//! or one space- or comma-separated string.

use serde_json::{Map, Value};

use crate::domain::{is_locale_tag, parse_timestamp, CustomerId};

/// The tag that carries a widget session id through a helpdesk that passes tags but not
/// custom fields (Zendesk event webhooks): `deflect_session_<session id>`.
pub const SESSION_TAG_PREFIX: &str = "deflect_session_";
const ZENDESK_EVENT_PREFIX: &str = "zen:event-type:";
const MAX_TEXT_BYTES: usize = 64 * 1024;
const MAX_TICKET_ID_CHARS: usize = 64;
const MAX_SESSION_ID_CHARS: usize = 128;
const MAX_EVENT_CHARS: usize = 100;

/// What happened to the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketEvent {
    Created,
    /// Any other event; acknowledged and left alone.
    Other(String),
}

impl TicketEvent {
    fn parse(raw: &str) -> TicketEvent {
        let name = raw.trim();
        let name = name.strip_prefix(ZENDESK_EVENT_PREFIX).unwrap_or(name);
        match name {
            "ticket.created" | "ticket_created" => TicketEvent::Created,
            other => TicketEvent::Other(other.chars().take(MAX_EVENT_CHARS).collect()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            TicketEvent::Created => "ticket.created",
            TicketEvent::Other(name) => name,
        }
    }
}

/// A ticket as a webhook describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpdeskTicket {
    pub event: TicketEvent,
    /// The helpdesk's ticket id: 1-64 characters of `A-Z a-z 0-9 _ - .`.
    pub id: String,
    pub subject: String,
    /// Text or HTML (the draft normalizer strips HTML).
    pub description: String,
    /// The widget session the ticket was written in, when the ticket carries it.
    pub session_id: Option<String>,
    pub locale: Option<String>,
    /// When the ticket last changed, as the helpdesk wrote it (part of Freshdesk's
    /// delivery key).
    pub updated_at: Option<String>,
    /// The customer who filed it (`customer_id`, else `requester_id`, else
    /// `requester_email`), whose tickets are counted for the ROI report.
    pub customer_id: Option<CustomerId>,
    /// When it was created (`created_at`, RFC 3339 or milliseconds), if the body says.
    pub created_at_ms: Option<i64>,
}

/// Why a body is not a ticket webhook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadProblem {
    #[error("the body is not a JSON object: {0}")]
    NotJson(String),
    #[error("the body names no event: send `type` or `event`")]
    MissingEvent,
    #[error("the body holds no ticket: send `detail`, `ticket` or `data`")]
    MissingTicket,
    #[error("the ticket id must be 1-64 characters of letters, digits, `_`, `-` and `.`")]
    InvalidTicketId,
}

impl HelpdeskTicket {
    /// Parses a verified body.
    pub fn parse(body: &[u8]) -> Result<HelpdeskTicket, PayloadProblem> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| PayloadProblem::NotJson(error.to_string()))?;
        let Value::Object(root) = value else {
            return Err(PayloadProblem::NotJson("not an object".to_owned()));
        };
        let event_name = ["type", "event"]
            .iter()
            .find_map(|field| text(root.get(*field)))
            .ok_or(PayloadProblem::MissingEvent)?;
        let ticket = ["detail", "ticket", "data"]
            .iter()
            .find_map(|field| root.get(*field).and_then(Value::as_object))
            .ok_or(PayloadProblem::MissingTicket)?;
        let id = text(ticket.get("id"))
            .filter(|id| is_ticket_id(id))
            .ok_or(PayloadProblem::InvalidTicketId)?;
        let tags = tags(ticket.get("tags"));
        let session_id = text(ticket.get("session_id"))
            .filter(|session| is_session_id(session))
            .or_else(|| session_from_tags(&tags));
        let locale = text(ticket.get("locale"))
            .filter(|locale| is_locale_tag(locale))
            .map(|locale| locale.replace('_', "-").to_lowercase());
        Ok(HelpdeskTicket {
            event: TicketEvent::parse(&event_name),
            id,
            subject: capped_text(ticket, "subject"),
            description: capped_text(ticket, "description"),
            session_id,
            locale,
            updated_at: text(ticket.get("updated_at"))
                .map(|updated| updated.chars().take(MAX_EVENT_CHARS).collect()),
            customer_id: ["customer_id", "requester_id", "requester_email"]
                .iter()
                .find_map(|field| text(ticket.get(*field)))
                .and_then(|raw| CustomerId::parse(&raw).ok()),
            created_at_ms: ticket.get("created_at").and_then(parse_timestamp),
        })
    }

    /// Returns whether the id is all digits, as Zendesk's and Freshdesk's are (only such
    /// ids are put into their API paths).
    pub fn has_numeric_id(&self) -> bool {
        self.id.bytes().all(|byte| byte.is_ascii_digit())
    }
}

/// A string, or a number written as text; `None` for anything else or blank text.
/// (Webhook senders render ids with placeholders, as text or as numbers.)
pub fn text(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::String(text) => text.trim().to_owned(),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

fn capped_text(ticket: &Map<String, Value>, field: &str) -> String {
    let Some(mut value) = text(ticket.get(field)) else {
        return String::new();
    };
    if value.len() > MAX_TEXT_BYTES {
        let mut end = MAX_TEXT_BYTES;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
    value
}

fn tags(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(|item| text(Some(item))).collect(),
        Some(Value::String(joined)) => joined
            .split(|character: char| character.is_whitespace() || character == ',')
            .filter(|tag| !tag.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn session_from_tags(tags: &[String]) -> Option<String> {
    tags.iter()
        .filter_map(|tag| tag.strip_prefix(SESSION_TAG_PREFIX))
        .find(|session| is_session_id(session))
        .map(str::to_owned)
}

/// The rule of ticket ids: 1-64 characters of `A-Z a-z 0-9 _ - .`.
pub fn is_ticket_id(id: &str) -> bool {
    id.len() <= MAX_TICKET_ID_CHARS
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.'))
}

/// The rule of event session ids: 1-128 printable characters without whitespace.
fn is_session_id(session: &str) -> bool {
    !session.is_empty()
        && session.chars().count() <= MAX_SESSION_ID_CHARS
        && !session
            .chars()
            .any(|character| character.is_whitespace() || character.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<HelpdeskTicket, PayloadProblem> {
        HelpdeskTicket::parse(value.to_string().as_bytes())
    }

    #[test]
    fn a_zendesk_ticket_created_event_carries_its_detail_and_the_session_tag() {
        let ticket = parse(json!({
            "type": "zen:event-type:ticket.created",
            "account_id": 88888888,
            "id": "01HNXXXX-CTEXAMPLE",
            "time": "2026-04-17T17:18:10Z",
            "zendesk_event_version": "2022-11-06",
            "subject": "zen:ticket:35436",
            "detail": {
                "id": "35436", "subject": "Reset my password", "description": "I forgot it",
                "requester_id": "20978392", "brand_id": "123", "status": "NEW",
                "tags": ["vip", "deflect_session_0f1e2d3c4b5a69788796a5b4c3d2e1f0"],
                "updated_at": "2026-04-17T17:18:10Z", "via": {"channel": "web"}
            },
            "event": {}
        }))
        .unwrap();

        assert_eq!(ticket.event, TicketEvent::Created);
        assert_eq!(ticket.id, "35436");
        assert_eq!(ticket.subject, "Reset my password");
        assert_eq!(
            ticket.customer_id.as_ref().map(CustomerId::as_str),
            Some("20978392")
        );
        assert_eq!(
            ticket.session_id.as_deref(),
            Some("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
        );
        assert!(ticket.has_numeric_id());
    }

    #[test]
    fn a_custom_body_renders_placeholders_as_text() {
        let ticket = parse(json!({
            "event": "ticket.created",
            "ticket": {"id": 42, "subject": "Invoice", "description": "<p>VAT is <b>wrong</b></p>",
                       "session_id": "s-123", "locale": "de_AT", "tags": "billing, urgent",
                       "customer_id": "ana@example.com", "requester_id": 7,
                       "created_at": "2026-03-14T10:00:00Z"}
        }))
        .unwrap();

        assert_eq!(
            ticket.customer_id.as_ref().map(CustomerId::as_str),
            Some("ana@example.com")
        );
        assert_eq!(ticket.created_at_ms, Some(1_773_482_400_000));
        assert_eq!(ticket.id, "42");
        assert_eq!(ticket.session_id.as_deref(), Some("s-123"));
        assert_eq!(ticket.locale.as_deref(), Some("de-at"));
    }

    #[test]
    fn an_empty_placeholder_is_no_session_and_other_events_are_kept_by_name() {
        let ticket = parse(json!({
            "type": "zen:event-type:ticket.status_changed",
            "data": {"id": "7", "session_id": "", "locale": "not a locale!"}
        }))
        .unwrap();

        assert_eq!(
            ticket.event,
            TicketEvent::Other("ticket.status_changed".to_owned())
        );
        assert_eq!(ticket.session_id, None);
        assert_eq!(ticket.locale, None);
    }

    #[test]
    fn bodies_without_event_ticket_or_a_clean_id_are_malformed() {
        assert!(matches!(
            HelpdeskTicket::parse(b"not json"),
            Err(PayloadProblem::NotJson(_))
        ));
        assert_eq!(
            parse(json!({"ticket": {"id": 1}})),
            Err(PayloadProblem::MissingEvent)
        );
        assert_eq!(
            parse(json!({"event": "ticket.created"})),
            Err(PayloadProblem::MissingTicket)
        );
        assert_eq!(
            parse(json!({"event": "ticket.created", "ticket": {"id": "../admin"}})),
            Err(PayloadProblem::InvalidTicketId)
        );
    }
}
