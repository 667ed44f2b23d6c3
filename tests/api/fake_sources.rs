//! A local server playing the three content sources deflect syncs from, in their
//! documented formats (written here from the providers' documentation, not with
//! deflect's code):
//!
//! - Zendesk Help Center: `GET /api/v2/help_center/incremental/articles?start_time=`
//!   (`{"articles", "next_page", "end_time", "count", "end_of_stream"}`, articles changed
//!   at or after `start_time`, oldest first) and `GET /api/v2/help_center/sections`
//!   (`{"sections", "next_page"}`); HTTP Basic `{email}/token:{token}`;
//! - Freshdesk: `GET /api/v2/solutions/categories`, `.../categories/{id}/folders` and
//!   `/api/v2/solutions/folders/{id}/articles?page=&per_page=` (JSON arrays, the next
//!   page in a `Link: <…>; rel="next"` header, `status` 1 draft / 2 published); HTTP
//!   Basic `{api key}:X`;
//! - the catalog feed README documents: `GET /catalog?updated_since=` answering
//!   `{"courses", "next"}` with an `ETag`, 304 to a matching `If-None-Match`; `Bearer`.
//!
//! Pages hold `page_size` items. A test can make the next request whose path and query
//! contain some text answer 429 with `Retry-After`, 500, or a malformed page.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::local_server::LocalServer;

pub const ZENDESK_EMAIL: &str = "kb-reader@acme.example";
pub const ZENDESK_TOKEN: &str = "zendesk-help-center-token-of-acme";
pub const FRESHDESK_API_KEY: &str = "freshdesk-solutions-key-of-acme";
pub const CATALOG_TOKEN: &str = "catalog-feed-token-of-acme";

/// What a faulty answer looks like.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    TooManyRequests {
        retry_after_seconds: u64,
    },
    ServerError,
    /// 200 with a body that is not the documented shape.
    MalformedPage,
    /// 200 with a body of this many bytes, sent in pieces without a `Content-Length`.
    StreamedPageOfBytes(usize),
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct SourceRequest {
    /// Path and query.
    pub target: String,
    pub authorization: Option<String>,
    pub if_none_match: Option<String>,
    pub status: u16,
}

/// A Zendesk article: its export record and when it last changed (unix seconds).
#[derive(Debug, Clone)]
pub struct ZendeskArticle {
    pub record: Value,
    pub updated_unix: i64,
}

#[derive(Default)]
struct Content {
    zendesk_articles: Vec<ZendeskArticle>,
    zendesk_sections: Vec<Value>,
    freshdesk_categories: Vec<Value>,
    /// Folders with their `category_id`.
    freshdesk_folders: Vec<Value>,
    /// Articles with their `folder_id`.
    freshdesk_articles: Vec<Value>,
    catalog_courses: Vec<Value>,
    /// Bumped by every catalog change; the feed's ETag is `"v<version>"`.
    catalog_version: u64,
    requests: Vec<SourceRequest>,
    faults: VecDeque<(String, Fault)>,
    /// Requests (by a part of their path and query) answered only after a wait.
    delays: VecDeque<(String, std::time::Duration)>,
}

struct Shared {
    page_size: usize,
    content: Mutex<Content>,
}

/// A running fake of the three sources.
pub struct FakeSources {
    pub base_url: String,
    shared: Arc<Shared>,
    _server: LocalServer,
}

impl FakeSources {
    pub async fn start(page_size: usize) -> FakeSources {
        let shared = Arc::new(Shared {
            page_size,
            content: Mutex::new(Content::default()),
        });
        let server = LocalServer::start(shared.clone(), answer);
        FakeSources {
            base_url: server.base_url.clone(),
            shared,
            _server: server,
        }
    }

    fn with_content<T>(&self, change: impl FnOnce(&mut Content) -> T) -> T {
        change(&mut self.shared.content.lock().unwrap())
    }

    /// Adds or replaces (by `id` and `locale`) a Zendesk article.
    pub fn put_zendesk_article(&self, article: ZendeskArticle) {
        self.with_content(|content| {
            let same = |other: &ZendeskArticle| {
                other.record["id"] == article.record["id"]
                    && other.record["locale"] == article.record["locale"]
            };
            content.zendesk_articles.retain(|other| !same(other));
            content.zendesk_articles.push(article);
        });
    }

    /// Removes a Zendesk article in every locale (deleted or archived: the export no
    /// longer lists it).
    pub fn remove_zendesk_article(&self, id: u64) {
        self.with_content(|content| {
            content
                .zendesk_articles
                .retain(|article| article.record["id"] != json!(id))
        });
    }

    pub fn put_zendesk_section(&self, id: u64, name: &str) {
        self.with_content(|content| {
            content
                .zendesk_sections
                .push(json!({"id": id, "name": name, "locale": "en-us"}))
        });
    }

    /// Adds a Freshdesk category with one folder.
    pub fn put_freshdesk_folder(&self, category_id: u64, folder_id: u64, name: &str) {
        self.with_content(|content| {
            if !content
                .freshdesk_categories
                .iter()
                .any(|category| category["id"] == json!(category_id))
            {
                content
                    .freshdesk_categories
                    .push(json!({"id": category_id, "name": format!("Category {category_id}")}));
            }
            content.freshdesk_folders.push(json!({
                "id": folder_id, "name": name, "category_id": category_id, "visibility": 1,
            }));
        });
    }

    /// Adds or replaces (by `id`) a Freshdesk article; it must carry its `folder_id`.
    pub fn put_freshdesk_article(&self, article: Value) {
        self.with_content(|content| {
            content
                .freshdesk_articles
                .retain(|other| other["id"] != article["id"]);
            content.freshdesk_articles.push(article);
        });
    }

    pub fn remove_freshdesk_article(&self, id: u64) {
        self.with_content(|content| {
            content
                .freshdesk_articles
                .retain(|article| article["id"] != json!(id))
        });
    }

    /// Adds or replaces (by `id`) a catalog course (with its lessons).
    pub fn put_catalog_course(&self, course: Value) {
        self.with_content(|content| {
            content
                .catalog_courses
                .retain(|other| other["id"] != course["id"]);
            content.catalog_courses.push(course);
            content.catalog_version += 1;
        });
    }

    /// Makes the next request whose path and query contain `target_part` answer with
    /// `fault`.
    pub fn fail_next(&self, target_part: &str, fault: Fault) {
        self.with_content(|content| content.faults.push_back((target_part.to_owned(), fault)));
    }

    /// Makes the next request whose path and query contain `target_part` answer 429
    /// with `Retry-After: <seconds>`.
    pub fn rate_limit_next(&self, target_part: &str, seconds: u64) {
        let fault = Fault::TooManyRequests {
            retry_after_seconds: seconds,
        };
        self.fail_next(target_part, fault);
    }

    /// Makes the next request whose path and query contain `target_part` wait `delay`
    /// before it is answered (a slow source).
    pub fn delay_next(&self, target_part: &str, delay: std::time::Duration) {
        self.with_content(|content| content.delays.push_back((target_part.to_owned(), delay)));
    }

    pub fn requests(&self) -> Vec<SourceRequest> {
        self.with_content(|content| content.requests.clone())
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.with_content(|content| content.requests.clear());
    }

    /// The requests whose path and query contain `target_part`.
    pub fn requests_to(&self, target_part: &str) -> Vec<SourceRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.target.contains(target_part))
            .collect()
    }
}

/// A Zendesk article record as the incremental export returns it.
pub fn zendesk_article(
    id: u64,
    locale: &str,
    title: &str,
    body_html: &str,
    updated_unix: i64,
) -> ZendeskArticle {
    let updated_at = time::OffsetDateTime::from_unix_timestamp(updated_unix)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    ZendeskArticle {
        record: json!({
            "id": id,
            "url": format!("https://acme.zendesk.com/api/v2/help_center/{locale}/articles/{id}.json"),
            "html_url": format!("https://acme.zendesk.com/hc/{locale}/articles/{id}"),
            "title": title,
            "body": body_html,
            "locale": locale,
            "source_locale": "en-us",
            "draft": false,
            "section_id": 360001,
            "label_names": ["billing"],
            "updated_at": updated_at,
            "edited_at": updated_at,
            "outdated": false,
            "position": 0,
            "promoted": false,
        }),
        updated_unix,
    }
}

fn basic(credentials: &str) -> String {
    format!("Basic {}", STANDARD.encode(credentials))
}

fn query_value(query: &str, name: &str) -> Option<String> {
    url_pairs(query)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|url| {
            url.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

async fn answer(
    request: HttpRequest,
    _body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let path = request.path().to_owned();
    let query = request.query_string().to_owned();
    let target = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    let authorization = header("authorization");
    let if_none_match = header("if-none-match");
    let base_url = format!("http://{}", request.connection_info().host());
    let delay = {
        let mut content = shared.content.lock().unwrap();
        let position = content
            .delays
            .iter()
            .position(|(target_part, _)| target.contains(target_part.as_str()));
        position.and_then(|position| content.delays.remove(position))
    };
    if let Some((_, delay)) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut content = shared.content.lock().unwrap();
    let response = respond(
        &mut content,
        shared.page_size,
        &base_url,
        &path,
        &query,
        &target,
        authorization.as_deref(),
        if_none_match.as_deref(),
    );
    content.requests.push(SourceRequest {
        target,
        authorization,
        if_none_match,
        status: response.status().as_u16(),
    });
    response
}

#[allow(clippy::too_many_arguments)]
fn respond(
    content: &mut Content,
    page_size: usize,
    base_url: &str,
    path: &str,
    query: &str,
    target: &str,
    authorization: Option<&str>,
    if_none_match: Option<&str>,
) -> HttpResponse {
    let expected_authorization = if path.starts_with("/api/v2/help_center/") {
        basic(&format!("{ZENDESK_EMAIL}/token:{ZENDESK_TOKEN}"))
    } else if path.starts_with("/api/v2/solutions/") {
        basic(&format!("{FRESHDESK_API_KEY}:X"))
    } else if path == "/catalog" {
        format!("Bearer {CATALOG_TOKEN}")
    } else {
        return HttpResponse::NotFound().json(json!({"error": "no such route"}));
    };
    if authorization != Some(expected_authorization.as_str()) {
        return HttpResponse::Unauthorized().json(json!({"error": "Couldn't authenticate you"}));
    }
    if let Some(position) = content
        .faults
        .iter()
        .position(|(target_part, _)| target.contains(target_part.as_str()))
    {
        let (_, fault) = content.faults.remove(position).unwrap();
        match fault {
            Fault::TooManyRequests {
                retry_after_seconds,
            } => {
                return HttpResponse::TooManyRequests()
                    .insert_header(("Retry-After", retry_after_seconds.to_string()))
                    .json(json!({"error": "rate limited"}))
            }
            Fault::ServerError => return HttpResponse::InternalServerError().finish(),
            Fault::MalformedPage => {
                return HttpResponse::Ok()
                    .content_type("application/json")
                    .body(r#"{"articles": "this is not a list", "courses": 7}"#)
            }
            Fault::StreamedPageOfBytes(size) => {
                const PIECE_BYTES: usize = 4096;
                let pieces = (0..size.div_ceil(PIECE_BYTES)).map(move |number| {
                    let piece_size = PIECE_BYTES.min(size - number * PIECE_BYTES);
                    Ok::<_, actix_web::Error>(web::Bytes::from(vec![b' '; piece_size]))
                });
                return HttpResponse::Ok()
                    .content_type("application/json")
                    .streaming(futures_util::stream::iter(pieces));
            }
        }
    }
    let page: usize = query_value(query, "page")
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(1)
        .max(1);
    if path == "/api/v2/help_center/incremental/articles" {
        let Some(start_time) =
            query_value(query, "start_time").and_then(|raw| raw.parse::<i64>().ok())
        else {
            return HttpResponse::BadRequest().json(json!({"error": "start_time is required"}));
        };
        let mut changed: Vec<&ZendeskArticle> = content
            .zendesk_articles
            .iter()
            .filter(|article| article.updated_unix >= start_time)
            .collect();
        changed.sort_by_key(|article| article.updated_unix);
        let (records, has_more) = page_of(&changed, page, page_size);
        let end_time = records
            .iter()
            .map(|article| article.updated_unix)
            .max()
            .unwrap_or(start_time);
        let next_page = has_more.then(|| {
            format!("{base_url}/api/v2/help_center/incremental/articles?start_time={start_time}&page={}", page + 1)
        });
        return HttpResponse::Ok().json(json!({
            "articles": records.iter().map(|article| article.record.clone()).collect::<Vec<_>>(),
            "next_page": next_page,
            "end_time": end_time,
            "count": records.len(),
            "end_of_stream": !has_more,
        }));
    }
    if path == "/api/v2/help_center/sections" {
        let sections: Vec<&Value> = content.zendesk_sections.iter().collect();
        let (records, has_more) = page_of(&sections, page, page_size);
        let next_page = has_more.then(|| {
            format!(
                "{base_url}/api/v2/help_center/sections?per_page=100&page={}",
                page + 1
            )
        });
        return HttpResponse::Ok().json(json!({
            "sections": records, "next_page": next_page, "count": sections.len(),
        }));
    }
    if path == "/api/v2/solutions/categories" {
        return HttpResponse::Ok().json(&content.freshdesk_categories);
    }
    if let Some(category) = path
        .strip_prefix("/api/v2/solutions/categories/")
        .and_then(|rest| rest.strip_suffix("/folders"))
    {
        let folders: Vec<&Value> = content
            .freshdesk_folders
            .iter()
            .filter(|folder| {
                folder["category_id"]
                    .as_u64()
                    .map(|id| id.to_string())
                    .as_deref()
                    == Some(category)
            })
            .collect();
        return HttpResponse::Ok().json(folders);
    }
    if let Some(folder) = path
        .strip_prefix("/api/v2/solutions/folders/")
        .and_then(|rest| rest.strip_suffix("/articles"))
    {
        let per_page: usize = query_value(query, "per_page")
            .and_then(|raw| raw.parse().ok())
            .unwrap_or(30)
            .min(page_size);
        let articles: Vec<&Value> = content
            .freshdesk_articles
            .iter()
            .filter(|article| {
                article["folder_id"]
                    .as_u64()
                    .map(|id| id.to_string())
                    .as_deref()
                    == Some(folder)
            })
            .collect();
        let (records, has_more) = page_of(&articles, page, per_page);
        let mut response = HttpResponse::Ok();
        if has_more {
            let next = format!(
                "{base_url}/api/v2/solutions/folders/{folder}/articles?page={}&per_page={per_page}",
                page + 1
            );
            response.insert_header(("Link", format!("<{next}>; rel=\"next\"")));
        }
        return response.json(records);
    }
    // The catalog feed.
    let etag = format!("\"v{}\"", content.catalog_version);
    let is_first_page = query_value(query, "page").is_none();
    if is_first_page && if_none_match == Some(etag.as_str()) {
        return HttpResponse::NotModified()
            .insert_header(("ETag", etag))
            .finish();
    }
    let updated_since = query_value(query, "updated_since");
    let courses: Vec<&Value> = content
        .catalog_courses
        .iter()
        .filter(|course| match &updated_since {
            None => true,
            Some(since) => latest_update_of(course).as_str() >= since.as_str(),
        })
        .collect();
    let (records, has_more) = page_of(&courses, page, page_size);
    let next = has_more.then(|| {
        let mut pairs: Vec<(String, String)> = url_pairs(query)
            .into_iter()
            .filter(|(key, _)| key != "page")
            .collect();
        pairs.push(("page".to_owned(), (page + 1).to_string()));
        let mut url = reqwest::Url::parse(&format!("{base_url}/catalog")).unwrap();
        url.query_pairs_mut().extend_pairs(pairs);
        url.to_string()
    });
    HttpResponse::Ok()
        .insert_header(("ETag", etag))
        .json(json!({"courses": records, "next": next}))
}

/// The latest `updated_at` of a course and its lessons (RFC 3339 UTC times compare as
/// text).
fn latest_update_of(course: &Value) -> String {
    let lessons = course["lessons"].as_array().cloned().unwrap_or_default();
    std::iter::once(course)
        .chain(lessons.iter())
        .filter_map(|item| item["updated_at"].as_str())
        .max()
        .unwrap_or_default()
        .to_owned()
}

/// Page `page` (1-based) of `items`, and whether more follow.
fn page_of<T>(items: &[T], page: usize, page_size: usize) -> (&[T], bool) {
    let start = ((page - 1) * page_size).min(items.len());
    let end = (start + page_size).min(items.len());
    (&items[start..end], end < items.len())
}
