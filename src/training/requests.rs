//! The bodies of the training routes, parsed at the edge into values known to be well
//! formed: an agent's assignment and an upload of active customers.

use serde::Deserialize;
use time::Date;

use crate::domain::{parse_timestamp, ContentId, CustomerId};
use crate::events::keys::parse_date;
use crate::helpdesk::comment::Language;
use crate::helpdesk::Helpdesk;

const MAX_AGENT_ID_CHARS: usize = 128;
const MAX_NOTE_CHARS: usize = 1_000;
/// How far ahead of the server's clock an `assigned_at` may be.
const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;
/// The longest active period.
const MAX_PERIOD_DAYS: i64 = 366;

/// `POST /v1/tickets/{ticket_id}/assignments`, as sent.
#[derive(Debug, Default, Deserialize)]
pub struct AssignmentBody {
    pub customer_id: Option<String>,
    pub lesson_ids: Option<Vec<String>>,
    pub agent_id: Option<String>,
    pub note: Option<String>,
    #[serde(default)]
    pub notify: bool,
    /// `zendesk` or `freshdesk`: where to post; the tenant's only helpdesk when absent.
    pub helpdesk: Option<String>,
    /// The language of the posted comment (German for `de`, English otherwise).
    pub locale: Option<String>,
    /// When the assignment was made, for assignments imported from elsewhere (RFC 3339
    /// or milliseconds); now when absent.
    pub assigned_at: Option<serde_json::Value>,
}

/// A valid assignment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAssignment {
    pub customer: CustomerId,
    /// Distinct, in the order given.
    pub lesson_ids: Vec<ContentId>,
    pub agent_id: String,
    pub note: Option<String>,
    pub notify: bool,
    pub helpdesk: Option<Helpdesk>,
    pub language: Language,
    pub assigned_at_ms: i64,
}

impl NewAssignment {
    /// Validates `body` at `now_ms`: an `assigned_at` may not be ahead of now (beyond a
    /// little clock skew) nor before `oldest_ms` (it would not be kept). Returns every
    /// problem found.
    pub fn parse(
        body: AssignmentBody,
        max_lessons: usize,
        now_ms: i64,
        oldest_ms: i64,
    ) -> Result<NewAssignment, Vec<String>> {
        let mut problems = Vec::new();
        let customer = match body.customer_id.as_deref().map(CustomerId::parse) {
            Some(Ok(customer)) => Some(customer),
            Some(Err(problem)) => {
                problems.push(format!("customer_id: {problem}"));
                None
            }
            None => {
                problems.push("customer_id: is required".to_owned());
                None
            }
        };
        let raw_lessons = body.lesson_ids.unwrap_or_default();
        if raw_lessons.is_empty() || raw_lessons.len() > max_lessons {
            problems.push(format!("lesson_ids: give 1-{max_lessons} content ids"));
        }
        let mut lesson_ids: Vec<ContentId> = Vec::new();
        for raw in &raw_lessons {
            match ContentId::parse(raw.trim()) {
                Ok(id) if !lesson_ids.contains(&id) => lesson_ids.push(id),
                Ok(_) => {}
                Err(problem) => problems.push(format!("lesson_ids: `{raw}` {problem}")),
            }
        }
        let agent_id = body
            .agent_id
            .map(|agent| agent.trim().to_owned())
            .filter(|agent| {
                !agent.is_empty()
                    && agent.chars().count() <= MAX_AGENT_ID_CHARS
                    && !agent.contains(char::is_control)
            });
        if agent_id.is_none() {
            problems.push(format!(
                "agent_id: is required, 1-{MAX_AGENT_ID_CHARS} printable characters"
            ));
        }
        let note = body
            .note
            .map(|note| note.trim().to_owned())
            .filter(|note| !note.is_empty());
        if note
            .as_ref()
            .is_some_and(|note| note.chars().count() > MAX_NOTE_CHARS)
        {
            problems.push(format!("note: at most {MAX_NOTE_CHARS} characters"));
        }
        let helpdesk = match body.helpdesk.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => {
                let parsed = Helpdesk::parse(raw);
                if parsed.is_none() {
                    problems.push("helpdesk: `zendesk` or `freshdesk`".to_owned());
                }
                parsed
            }
        };
        let assigned_at_ms = match &body.assigned_at {
            None | Some(serde_json::Value::Null) => Some(now_ms),
            Some(raw) => match parse_timestamp(raw) {
                Some(at) if at > now_ms + MAX_FUTURE_SKEW_MS => {
                    problems.push("assigned_at: may not be in the future".to_owned());
                    None
                }
                Some(at) if at < oldest_ms => {
                    problems.push(
                        "assigned_at: is older than training.retention_days; it would not be kept"
                            .to_owned(),
                    );
                    None
                }
                Some(at) => Some(at.min(now_ms)),
                None => {
                    problems
                        .push("assigned_at: RFC 3339 or milliseconds since the epoch".to_owned());
                    None
                }
            },
        };
        match (customer, agent_id, assigned_at_ms) {
            (Some(customer), Some(agent_id), Some(assigned_at_ms)) if problems.is_empty() => {
                Ok(NewAssignment {
                    customer,
                    lesson_ids,
                    agent_id,
                    note,
                    notify: body.notify,
                    helpdesk,
                    language: Language::of_locale(body.locale.as_deref()),
                    assigned_at_ms,
                })
            }
            _ => Err(problems),
        }
    }
}

/// `POST /v1/customers/active`, as sent.
#[derive(Debug, Default, Deserialize)]
pub struct ActiveBody {
    pub from: Option<String>,
    pub to: Option<String>,
    pub customer_ids: Option<Vec<String>>,
}

/// A valid upload of active customers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveUploadRequest {
    pub from: Date,
    pub to: Date,
    /// Distinct.
    pub customers: Vec<CustomerId>,
    /// How many ids were sent (with repeats).
    pub received: usize,
}

impl ActiveUploadRequest {
    /// Validates `body` on `today`: a period of at most 366 days that has started, and
    /// ended no earlier than `oldest` (it would not be kept).
    pub fn parse(
        body: ActiveBody,
        max_customers: usize,
        today: Date,
        oldest: Date,
    ) -> Result<ActiveUploadRequest, Vec<String>> {
        let mut problems = Vec::new();
        let date = |name: &str, raw: &Option<String>, problems: &mut Vec<String>| {
            let parsed = raw.as_deref().and_then(|text| parse_date(text.trim()));
            if parsed.is_none() {
                problems.push(format!("{name}: a date such as 2026-03-14 (UTC)"));
            }
            parsed
        };
        let from = date("from", &body.from, &mut problems);
        let to = date("to", &body.to, &mut problems);
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                problems.push("from: must not be after to".to_owned());
            } else if (to - from).whole_days() >= MAX_PERIOD_DAYS {
                problems.push(format!("a period covers at most {MAX_PERIOD_DAYS} days"));
            }
            if from > today {
                problems.push("from: the period has not started yet".to_owned());
            }
            if to < oldest {
                problems.push(
                    "to: the period ended longer ago than training.retention_days".to_owned(),
                );
            }
        }
        let raw_customers = body.customer_ids.unwrap_or_default();
        if raw_customers.is_empty() || raw_customers.len() > max_customers {
            problems.push(format!("customer_ids: give 1-{max_customers} ids per call"));
        }
        let mut customers: Vec<CustomerId> = Vec::with_capacity(raw_customers.len());
        let mut invalid = 0;
        for raw in &raw_customers {
            match CustomerId::parse(raw) {
                Ok(customer) => customers.push(customer),
                Err(_) => invalid += 1,
            }
        }
        if invalid > 0 {
            problems.push(format!(
                "customer_ids: {invalid} of the ids are not customer ids (1-200 characters without whitespace or `/`)"
            ));
        }
        customers.sort();
        customers.dedup();
        match (from, to) {
            (Some(from), Some(to)) if problems.is_empty() => Ok(ActiveUploadRequest {
                from,
                to,
                customers,
                received: raw_customers.len(),
            }),
            _ => Err(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::Month;

    const NOW_MS: i64 = 1_773_482_400_000;

    fn assignment(value: serde_json::Value) -> Result<NewAssignment, Vec<String>> {
        NewAssignment::parse(serde_json::from_value(value).unwrap(), 3, NOW_MS, 0)
    }

    #[test]
    fn an_assignment_keeps_distinct_lessons_in_order_and_defaults_to_now() {
        let parsed = assignment(json!({"customer_id": "ana@example.com",
            "lesson_ids": ["b", "a", "b"], "agent_id": "agent-7", "note": "  ", "locale": "de"}))
        .unwrap();

        let ids: Vec<&str> = parsed.lesson_ids.iter().map(ContentId::as_str).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(parsed.assigned_at_ms, NOW_MS);
        assert_eq!(parsed.note, None);
        assert_eq!(parsed.language, Language::De);
        assert!(!parsed.notify);
    }

    #[test]
    fn an_assignment_lists_every_problem() {
        let problems = assignment(
            json!({"lesson_ids": ["a", "b", "c", "d"], "helpdesk": "jira",
            "assigned_at": NOW_MS + 3_600_000}),
        )
        .unwrap_err();

        for field in [
            "customer_id",
            "lesson_ids",
            "agent_id",
            "helpdesk",
            "assigned_at",
        ] {
            assert!(
                problems.iter().any(|problem| problem.starts_with(field)),
                "{field}: {problems:?}"
            );
        }
    }

    #[test]
    fn an_active_period_has_started_is_bounded_and_its_ids_are_deduplicated() {
        let today = Date::from_calendar_date(2026, Month::March, 14).unwrap();
        let oldest = Date::from_calendar_date(2025, Month::March, 1).unwrap();
        let parse = |value: serde_json::Value| {
            ActiveUploadRequest::parse(serde_json::from_value(value).unwrap(), 5, today, oldest)
        };

        let upload = parse(json!({"from": "2026-03-01", "to": "2026-03-31",
            "customer_ids": ["b", "a", "b"]}))
        .unwrap();
        let future =
            parse(json!({"from": "2026-04-01", "to": "2026-04-30", "customer_ids": ["a"]}));
        let bad_ids =
            parse(json!({"from": "2026-03-01", "to": "2026-03-02", "customer_ids": ["a b"]}));

        assert_eq!(upload.customers.len(), 2);
        assert_eq!(upload.received, 3);
        assert!(future.is_err());
        assert!(bad_ids.unwrap_err()[0].contains("1 of the ids are not"));
    }
}
