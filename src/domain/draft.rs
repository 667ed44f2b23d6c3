//! A draft ticket as the widget, the helpdesk or an agent sends it for suggestions.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::content::{is_locale_tag, ContentKind};
use super::customer::CustomerId;

/// The JSON body of `POST /v1/suggest`, before validation.
#[derive(Debug, Default, Deserialize)]
pub struct SuggestRequestBody {
    pub subject: Option<String>,
    pub description: Option<String>,
    pub text: Option<String>,
    pub session_id: Option<String>,
    pub locale: Option<String>,
    pub audience: Option<String>,
    pub product: Option<String>,
    pub kinds: Option<Vec<String>>,
    pub limit: Option<u32>,
    /// The customer typing, when the page knows them: lessons and courses they have
    /// completed are left out.
    pub customer_id: Option<String>,
}

/// What is wrong with a suggest request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DraftProblem {
    #[error("the draft has no text: send a subject, a description or text")]
    Empty,
    #[error("unknown kind `{0}`; expected course, lesson, article, video or community")]
    UnknownKind(String),
    #[error("limit must be between 1 and {max}")]
    LimitOutOfRange { max: usize },
    #[error("`{0}` is not a locale tag such as en or de-AT")]
    InvalidLocale(String),
    #[error("{field} must be at most {max} printable characters")]
    InvalidLabel { field: &'static str, max: usize },
    #[error("customer_id: {0}")]
    InvalidCustomerId(String),
}

/// A validated request for suggestions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftTicket {
    /// Subject and description joined, as typed (normalization happens in search).
    pub text: String,
    pub session_id: Option<String>,
    pub locale: Option<String>,
    pub audience: Option<String>,
    pub product: Option<String>,
    pub kinds: Vec<ContentKind>,
    pub limit: usize,
    pub customer_id: Option<CustomerId>,
    /// Ids of content never to suggest: a document is left out when its id or its course
    /// is here (the lessons and courses the customer completed). Filled in by the caller
    /// that knows them; empty after parsing.
    pub excluded_content: BTreeSet<String>,
}

const MAX_SESSION_ID_CHARS: usize = 128;
const MAX_FILTER_CHARS: usize = 100;

impl DraftTicket {
    /// Validates a request. `default_limit` and `max_limit` come from the settings.
    pub fn parse(
        body: SuggestRequestBody,
        default_limit: usize,
        max_limit: usize,
    ) -> Result<DraftTicket, DraftProblem> {
        let parts: Vec<&str> = [&body.subject, &body.description, &body.text]
            .into_iter()
            .filter_map(|part| part.as_deref())
            .filter(|part| !part.trim().is_empty())
            .collect();
        if parts.is_empty() {
            return Err(DraftProblem::Empty);
        }
        let text = parts.join("\n");

        let limit = match body.limit {
            None => default_limit,
            Some(limit) if limit >= 1 && (limit as usize) <= max_limit => limit as usize,
            Some(_) => return Err(DraftProblem::LimitOutOfRange { max: max_limit }),
        };
        let mut kinds = Vec::new();
        for raw_kind in body.kinds.unwrap_or_default() {
            let kind = ContentKind::parse(raw_kind.trim())
                .ok_or_else(|| DraftProblem::UnknownKind(raw_kind.clone()))?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        let locale = match trimmed(body.locale) {
            None => None,
            Some(locale) if is_locale_tag(&locale) => Some(locale.replace('_', "-").to_lowercase()),
            Some(locale) => return Err(DraftProblem::InvalidLocale(locale)),
        };
        Ok(DraftTicket {
            text,
            session_id: printable_label("session_id", body.session_id, MAX_SESSION_ID_CHARS)?,
            locale,
            audience: printable_label("audience", body.audience, MAX_FILTER_CHARS)?
                .map(|audience| audience.to_lowercase()),
            product: printable_label("product", body.product, MAX_FILTER_CHARS)?
                .map(|product| product.to_lowercase()),
            kinds,
            limit,
            customer_id: trimmed(body.customer_id)
                .map(|raw| CustomerId::parse(&raw))
                .transpose()
                .map_err(DraftProblem::InvalidCustomerId)?,
            excluded_content: BTreeSet::new(),
        })
    }
}

fn trimmed(value: Option<String>) -> Option<String> {
    value
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

fn printable_label(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, DraftProblem> {
    match trimmed(value) {
        Some(label) if label.chars().count() > max || label.contains(char::is_control) => {
            Err(DraftProblem::InvalidLabel { field, max })
        }
        label => Ok(label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> SuggestRequestBody {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn whitespace_only_drafts_are_empty() {
        let problem = DraftTicket::parse(
            body(serde_json::json!({"subject": "  ", "text": "\n\t"})),
            3,
            20,
        )
        .unwrap_err();
        assert_eq!(problem, DraftProblem::Empty);
    }

    #[test]
    fn subject_and_description_are_joined_in_order() {
        let draft = DraftTicket::parse(
            body(serde_json::json!({"subject": "Login", "description": "fails with 2FA"})),
            3,
            20,
        )
        .unwrap();
        assert_eq!(draft.text, "Login\nfails with 2FA");
        assert_eq!(draft.limit, 3);
    }

    #[test]
    fn limits_and_kinds_are_checked() {
        let too_many =
            DraftTicket::parse(body(serde_json::json!({"text": "x", "limit": 21})), 3, 20);
        assert_eq!(
            too_many.unwrap_err(),
            DraftProblem::LimitOutOfRange { max: 20 }
        );
        let unknown = DraftTicket::parse(
            body(serde_json::json!({"text": "x", "kinds": ["podcast"]})),
            3,
            20,
        );
        assert_eq!(
            unknown.unwrap_err(),
            DraftProblem::UnknownKind("podcast".into())
        );
    }
}
