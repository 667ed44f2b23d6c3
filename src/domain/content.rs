//! Courses, lessons and articles as deflect accepts them.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub use crate::text::sections::ContentSection;

/// A document's id as given by its source system: 1-200 bytes, no whitespace, control
/// characters or `/` (so it is one URL path segment; percent-encode the rest).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ContentId(String);

impl ContentId {
    pub fn parse(raw: &str) -> Result<ContentId, String> {
        let valid = !raw.is_empty()
            && raw.len() <= 200
            && !raw.chars().any(|character| {
                character.is_whitespace() || character.is_control() || character == '/'
            });
        if valid {
            Ok(ContentId(raw.to_owned()))
        } else {
            Err("must be 1-200 bytes without whitespace, control characters or `/`".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// What a document is; the widget shows it next to the title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    Course,
    Lesson,
    Article,
    Video,
    Community,
}

impl ContentKind {
    pub const ALL: [ContentKind; 5] = [
        ContentKind::Course,
        ContentKind::Lesson,
        ContentKind::Article,
        ContentKind::Video,
        ContentKind::Community,
    ];

    pub fn parse(raw: &str) -> Option<ContentKind> {
        ContentKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::Course => "course",
            ContentKind::Lesson => "lesson",
            ContentKind::Article => "article",
            ContentKind::Video => "video",
            ContentKind::Community => "community",
        }
    }
}

/// A document as it arrives (admin API, NDJSON line, sync), before validation. Every field
/// is optional here so that validation can report all problems at once.
#[derive(Debug, Default, Deserialize)]
pub struct DocumentInput {
    pub id: Option<serde_json::Value>,
    pub kind: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub body: Option<String>,
    pub url: Option<String>,
    pub course_id: Option<String>,
    pub course_title: Option<String>,
    pub position: Option<u32>,
    pub duration_seconds: Option<u32>,
    pub locale: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub products: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub updated_at: Option<String>,
}

/// One thing wrong with a document, by field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

impl FieldProblem {
    fn new(field: &'static str, message: impl Into<String>) -> FieldProblem {
        FieldProblem {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.field, self.message)
    }
}

/// A valid course, lesson or article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentDocument {
    pub id: String,
    pub kind: ContentKind,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub course_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub course_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
    pub locale: String,
    pub audiences: Vec<String>,
    pub products: Vec<String>,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// The headings of `body` (content sync sets them): a document with sections has a
    /// body that is clean text already, and the sections' offsets are characters of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sections: Option<Vec<ContentSection>>,
}

const MAX_TITLE_CHARS: usize = 500;
const MAX_SUMMARY_CHARS: usize = 5_000;
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
const MAX_URL_BYTES: usize = 2_048;
const MAX_LABELS: usize = 50;
const MAX_LABEL_CHARS: usize = 100;
const MAX_DURATION_SECONDS: u32 = 7 * 24 * 3600;

impl ContentDocument {
    /// Validates an input document. `path_id` is the id from the URL of a `PUT`, which
    /// the body may repeat but not contradict.
    pub fn parse(
        input: DocumentInput,
        path_id: Option<&ContentId>,
    ) -> Result<ContentDocument, Vec<FieldProblem>> {
        let mut problems = Vec::new();

        let id = parse_id(input.id.as_ref(), path_id, &mut problems);
        let kind = match input.kind.as_deref() {
            None => ContentKind::Article,
            Some(raw) => ContentKind::parse(raw).unwrap_or_else(|| {
                problems.push(FieldProblem::new(
                    "kind",
                    format!("unknown kind `{raw}`; expected course, lesson, article, video or community"),
                ));
                ContentKind::Article
            }),
        };
        let title = match input.title.as_deref().map(str::trim) {
            None | Some("") => {
                problems.push(FieldProblem::new("title", "is required"));
                String::new()
            }
            Some(title) if title.chars().count() > MAX_TITLE_CHARS => {
                problems.push(FieldProblem::new(
                    "title",
                    format!("is longer than {MAX_TITLE_CHARS} characters"),
                ));
                String::new()
            }
            Some(title) => title.to_owned(),
        };
        let summary = non_empty(input.summary);
        if summary
            .as_ref()
            .is_some_and(|summary| summary.chars().count() > MAX_SUMMARY_CHARS)
        {
            problems.push(FieldProblem::new(
                "summary",
                format!("is longer than {MAX_SUMMARY_CHARS} characters"),
            ));
        }
        let body = non_empty(input.body);
        if body
            .as_ref()
            .is_some_and(|body| body.len() > MAX_BODY_BYTES)
        {
            problems.push(FieldProblem::new("body", "is larger than 2 MiB"));
        }
        let url = non_empty(input.url);
        if let Some(url) = &url {
            let is_web_url = url.starts_with("https://") || url.starts_with("http://");
            if !is_web_url || url.len() > MAX_URL_BYTES || url.contains(char::is_whitespace) {
                problems.push(FieldProblem::new(
                    "url",
                    "must be an absolute http(s) URL without spaces, at most 2048 bytes",
                ));
            }
        }
        let course_id = non_empty(input.course_id);
        if let Some(course_id) = &course_id {
            if let Err(message) = ContentId::parse(course_id) {
                problems.push(FieldProblem::new("course_id", message));
            }
        }
        if input
            .duration_seconds
            .is_some_and(|seconds| seconds > MAX_DURATION_SECONDS)
        {
            problems.push(FieldProblem::new(
                "duration_seconds",
                "is longer than a week",
            ));
        }
        let locale = match non_empty(input.locale) {
            None => "en".to_owned(),
            Some(locale) if is_locale_tag(&locale) => locale.replace('_', "-").to_lowercase(),
            Some(locale) => {
                problems.push(FieldProblem::new(
                    "locale",
                    format!("`{locale}` is not a locale tag such as en or de-AT"),
                ));
                String::new()
            }
        };
        let audiences = parse_labels("audiences", input.audiences, &mut problems);
        let products = parse_labels("products", input.products, &mut problems);
        let tags = parse_labels("tags", input.tags, &mut problems);
        let updated_at = non_empty(input.updated_at);
        if let Some(updated_at) = &updated_at {
            if OffsetDateTime::parse(updated_at, &Rfc3339).is_err() {
                problems.push(FieldProblem::new(
                    "updated_at",
                    "must be an RFC 3339 timestamp such as 2026-03-14T09:30:00Z",
                ));
            }
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ContentDocument {
            id: id.map(|id| id.0).unwrap_or_default(),
            kind,
            title,
            summary,
            body,
            url,
            course_id,
            course_title: non_empty(input.course_title),
            position: input.position,
            duration_seconds: input.duration_seconds,
            locale,
            audiences,
            products,
            tags,
            updated_at,
            sections: None,
        })
    }

    /// Returns when the document last changed, if its source said so.
    pub fn updated_at_timestamp(&self) -> Option<OffsetDateTime> {
        self.updated_at
            .as_deref()
            .and_then(|raw| OffsetDateTime::parse(raw, &Rfc3339).ok())
    }

    /// Returns the id of the group the document belongs to for diversity: its course
    /// for a lesson, itself otherwise.
    pub fn group(&self) -> &str {
        self.course_id.as_deref().unwrap_or(&self.id)
    }
}

fn parse_id(
    raw: Option<&serde_json::Value>,
    path_id: Option<&ContentId>,
    problems: &mut Vec<FieldProblem>,
) -> Option<ContentId> {
    let body_id = match raw {
        None | Some(serde_json::Value::Null) => None,
        // Source systems such as Zendesk use numeric ids.
        Some(serde_json::Value::Number(number)) => Some(number.to_string()),
        Some(serde_json::Value::String(text)) => Some(text.trim().to_owned()),
        Some(_) => {
            problems.push(FieldProblem::new("id", "must be a string or a number"));
            return None;
        }
    };
    match (body_id, path_id) {
        (None, None) => {
            problems.push(FieldProblem::new("id", "is required"));
            None
        }
        (None, Some(path_id)) => Some(path_id.clone()),
        (Some(body_id), Some(path_id)) if body_id != path_id.as_str() => {
            problems.push(FieldProblem::new(
                "id",
                format!("`{body_id}` differs from the id in the URL `{path_id}`"),
            ));
            None
        }
        (Some(body_id), _) => match ContentId::parse(&body_id) {
            Ok(id) => Some(id),
            Err(message) => {
                problems.push(FieldProblem::new("id", message));
                None
            }
        },
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

fn parse_labels(
    field: &'static str,
    raw: Vec<String>,
    problems: &mut Vec<FieldProblem>,
) -> Vec<String> {
    if raw.len() > MAX_LABELS {
        problems.push(FieldProblem::new(
            field,
            format!("has more than {MAX_LABELS} values"),
        ));
        return Vec::new();
    }
    let mut labels = Vec::with_capacity(raw.len());
    for label in raw {
        let label = label.trim().to_lowercase();
        if label.is_empty() {
            continue;
        }
        if label.chars().count() > MAX_LABEL_CHARS || label.contains(char::is_control) {
            problems.push(FieldProblem::new(
                field,
                format!("values must be at most {MAX_LABEL_CHARS} printable characters"),
            ));
            return Vec::new();
        }
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    labels
}

/// Returns whether `tag` looks like a BCP 47 language tag (`en`, `de-AT`, `zh-Hant-TW`).
pub(crate) fn is_locale_tag(tag: &str) -> bool {
    let mut subtags = tag.split(['-', '_']);
    let primary_is_valid = subtags.next().is_some_and(|primary| {
        (2..=3).contains(&primary.len()) && primary.bytes().all(|byte| byte.is_ascii_alphabetic())
    });
    primary_is_valid
        && tag.len() <= 35
        && subtags.all(|subtag| {
            (1..=8).contains(&subtag.len())
                && subtag.bytes().all(|byte| byte.is_ascii_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> DocumentInput {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_minimal_document_gets_defaults() {
        let document = ContentDocument::parse(
            input(serde_json::json!({"id": 42, "title": " Reset "})),
            None,
        )
        .unwrap();
        assert_eq!(document.id, "42");
        assert_eq!(document.kind, ContentKind::Article);
        assert_eq!(document.title, "Reset");
        assert_eq!(document.locale, "en");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let problems = ContentDocument::parse(
            input(serde_json::json!({"kind": "podcast", "url": "ftp://x", "locale": "english!"})),
            None,
        )
        .unwrap_err();
        let fields: Vec<_> = problems.iter().map(|problem| problem.field).collect();
        assert_eq!(fields, ["id", "kind", "title", "url", "locale"]);
    }

    #[test]
    fn the_body_id_may_not_contradict_the_path() {
        let path_id = ContentId::parse("a").unwrap();
        let problems = ContentDocument::parse(
            input(serde_json::json!({"id": "b", "title": "t"})),
            Some(&path_id),
        )
        .unwrap_err();
        assert_eq!(problems[0].field, "id");
    }

    #[test]
    fn locale_tags_are_recognised() {
        assert!(is_locale_tag("de-AT"));
        assert!(is_locale_tag("pt_BR"));
        assert!(!is_locale_tag("e"));
        assert!(!is_locale_tag("en--US"));
    }
}
