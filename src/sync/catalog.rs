//! Reads a generic LMS catalog feed: courses with their lessons, in the JSON shape
//! README documents ("Content sync", "The catalog feed").
//!
//! `GET <feed_url>` answers `{"courses": [...], "next": <url or null>}`. An incremental
//! run adds `updated_since=<RFC 3339 time>` (the latest `updated_at` of the last run)
//! and `If-None-Match` with the last first page's `ETag`; 304 means nothing changed. A
//! full run reads everything and removes what is no longer listed. A course or lesson
//! whose `status` is not `published`, or that is `deleted`, is removed (a course with
//! all its lessons); a course lists all its lessons, so a lesson it no longer lists is
//! removed too. Ids are `<id_prefix>course-<id>` and `<id_prefix>lesson-<id>`.

use reqwest::header::{HeaderMap, HeaderValue, IF_NONE_MATCH};
use reqwest::Url;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::domain::DocumentInput;

use super::document::synced_document;
use super::pages::{Page, PageError, PageFetcher};
use super::plan::Pulled;
use super::state::{SavedCursor, SyncMode};

/// One tenant's catalog feed.
pub struct CatalogSource {
    pub feed_url: Url,
    pub id_prefix: String,
}

#[derive(Debug, Deserialize)]
struct FeedPage {
    courses: Vec<Course>,
    #[serde(default)]
    next: Option<String>,
}

/// What courses and lessons share.
#[derive(Debug, Deserialize)]
struct Item {
    id: serde_json::Value,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    duration_seconds: Option<u32>,
    #[serde(default)]
    locale: Option<String>,
    #[serde(default)]
    audiences: Option<Vec<String>>,
    #[serde(default)]
    products: Option<Vec<String>>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default = "published")]
    status: String,
    #[serde(default)]
    deleted: bool,
}

#[derive(Debug, Deserialize)]
struct Course {
    #[serde(flatten)]
    item: Item,
    /// HTML.
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    lessons: Vec<Lesson>,
}

#[derive(Debug, Deserialize)]
struct Lesson {
    #[serde(flatten)]
    item: Item,
    /// HTML.
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    position: Option<u32>,
}

fn published() -> String {
    "published".to_owned()
}

impl Item {
    fn is_live(&self) -> bool {
        !self.deleted && self.status == "published"
    }

    /// The feed's id as text (numbers allowed); `None` for anything else.
    fn id_text(&self) -> Option<String> {
        match &self.id {
            serde_json::Value::String(text) if !text.trim().is_empty() => {
                Some(text.trim().to_owned())
            }
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    }
}

impl CatalogSource {
    /// Reads the courses changed since the cursor (all of them in a full run).
    pub async fn pull(
        &self,
        pages: &PageFetcher,
        saved: &SavedCursor,
        mode: SyncMode,
    ) -> Result<Pulled, PageError> {
        let mut first_page = self.feed_url.clone();
        let mut headers = HeaderMap::new();
        if mode == SyncMode::Incremental {
            if let Some(updated_since) = &saved.cursor {
                first_page
                    .query_pairs_mut()
                    .append_pair("updated_since", updated_since);
            }
            if let Some(etag) = saved
                .etag
                .as_deref()
                .and_then(|etag| HeaderValue::from_str(etag).ok())
            {
                headers.insert(IF_NONE_MATCH, etag);
            }
        }
        let mut pulled = Pulled {
            cursor: saved.clone(),
            ..Pulled::default()
        };
        let mut latest_update = saved.cursor.as_deref().and_then(parse_time);
        let mut next = Some(first_page.to_string());
        let mut is_first_page = true;
        while let Some(reference) = next.take() {
            let page_headers = if is_first_page {
                headers.clone()
            } else {
                HeaderMap::new()
            };
            let (body, etag) = match pages.get::<FeedPage>(&reference, page_headers).await? {
                Page::Read { body, etag, .. } => (body, etag),
                Page::NotModified => {
                    pulled.not_modified = true;
                    break;
                }
            };
            if is_first_page {
                pulled.cursor.etag = etag;
                is_first_page = false;
            }
            for course in body.courses {
                self.take_course(course, &mut pulled, &mut latest_update);
            }
            next = body.next.filter(|next_page| *next_page != reference);
        }
        pulled.pages = pages.pages_read();
        if let Some(latest) = latest_update {
            pulled.cursor.cursor = latest.format(&Rfc3339).ok();
        }
        Ok(pulled)
    }

    fn take_course(
        &self,
        course: Course,
        pulled: &mut Pulled,
        latest_update: &mut Option<OffsetDateTime>,
    ) {
        note_update(latest_update, course.item.updated_at.as_deref());
        let Some(course_key) = course.item.id_text() else {
            pulled.skipped += 1 + course.lessons.len();
            return;
        };
        let course_id = format!("{}course-{course_key}", self.id_prefix);
        if !course.item.is_live() {
            pulled.removed_course_ids.push(course_id.clone());
            pulled.removed_ids.push(course_id);
            return;
        }
        let course_title = course.item.title.clone();
        let course_input = input_of(&course.item, course_id.clone(), "course", None);
        let course_document = synced_document(course_input, course.description.as_deref());
        let course_accepted = pulled.take("catalog", &course_id, course_document);
        if course_accepted {
            pulled.complete_course_ids.push(course_id.clone());
        }
        for lesson in course.lessons {
            note_update(latest_update, lesson.item.updated_at.as_deref());
            let Some(lesson_key) = lesson.item.id_text() else {
                pulled.skipped += 1;
                continue;
            };
            let lesson_id = format!("{}lesson-{lesson_key}", self.id_prefix);
            if !course_accepted || !lesson.item.is_live() {
                pulled.removed_ids.push(lesson_id);
                continue;
            }
            let mut input = input_of(
                &lesson.item,
                lesson_id.clone(),
                "lesson",
                Some(&course.item),
            );
            input.course_id = Some(course_id.clone());
            input.course_title = course_title.clone();
            input.position = lesson.position;
            let lesson_document = synced_document(input, lesson.body.as_deref());
            pulled.take("catalog", &lesson_id, lesson_document);
        }
    }
}

/// The document input of a course or lesson; a lesson takes locale, audiences and
/// products from its course when it has none of its own.
fn input_of(item: &Item, id: String, kind: &str, course: Option<&Item>) -> DocumentInput {
    let inherited = |own: &Option<Vec<String>>, of_course: fn(&Item) -> &Option<Vec<String>>| {
        own.clone()
            .or_else(|| course.and_then(|course| of_course(course).clone()))
            .unwrap_or_default()
    };
    DocumentInput {
        id: Some(serde_json::Value::String(id)),
        kind: Some(kind.to_owned()),
        title: item.title.clone(),
        summary: item.summary.clone(),
        url: item.url.clone(),
        duration_seconds: item.duration_seconds,
        locale: item
            .locale
            .clone()
            .or_else(|| course.and_then(|course| course.locale.clone())),
        audiences: inherited(&item.audiences, |course| &course.audiences),
        products: inherited(&item.products, |course| &course.products),
        tags: item.tags.clone(),
        updated_at: item.updated_at.clone(),
        ..DocumentInput::default()
    }
}

fn parse_time(raw: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(raw, &Rfc3339).ok()
}

fn note_update(latest: &mut Option<OffsetDateTime>, updated_at: Option<&str>) {
    let Some(updated_at) = updated_at.and_then(parse_time) else {
        return;
    };
    if latest.is_none_or(|latest| updated_at > latest) {
        *latest = Some(updated_at);
    }
}
