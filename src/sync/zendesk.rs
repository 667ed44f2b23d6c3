//! Reads a Zendesk Help Center: the incremental article export
//! (`GET /api/v2/help_center/incremental/articles?start_time=<unix seconds>`, up to
//! 1000 articles a page, `next_page` and `end_time`) and the sections
//! (`GET /api/v2/help_center/sections`, `next_page`), with an agent's API token (HTTP
//! Basic `{email}/token:{token}`).
//!
//! Every translation is an article of its own locale: its document id is
//! `zd-<article id>-<locale>`. Drafts are removed (or never added); the export does not
//! list archived or deleted articles, so full runs (from `start_time=0`) remove what it
//! no longer lists. Labels and the section's name become tags.

use std::collections::HashMap;

use reqwest::header::HeaderMap;
use serde::Deserialize;

use crate::domain::DocumentInput;

use super::document::synced_document;
use super::pages::{Page, PageError, PageFetcher};
use super::plan::Pulled;
use super::state::{SavedCursor, SyncMode};

/// The id prefix of documents from Zendesk.
pub const ID_PREFIX: &str = "zd-";

/// One tenant's Help Center.
pub struct ZendeskSource {
    /// Locales synced, lowercase; all when empty.
    pub locales: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ExportPage {
    articles: Vec<Article>,
    next_page: Option<String>,
    end_time: Option<i64>,
    #[serde(default)]
    end_of_stream: bool,
}

#[derive(Debug, Deserialize)]
struct Article {
    id: u64,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    locale: String,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    section_id: Option<u64>,
    #[serde(default)]
    label_names: Vec<String>,
    #[serde(default)]
    updated_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SectionsPage {
    sections: Vec<Section>,
    next_page: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Section {
    id: u64,
    name: String,
}

impl ZendeskSource {
    /// Reads the articles changed since the cursor (all of them in a full run).
    pub async fn pull(
        &self,
        pages: &PageFetcher,
        saved: &SavedCursor,
        mode: SyncMode,
    ) -> Result<Pulled, PageError> {
        let start_time = match mode {
            SyncMode::Full => 0,
            SyncMode::Incremental => saved
                .cursor
                .as_deref()
                .and_then(|cursor| cursor.parse().ok())
                .unwrap_or(0),
        };
        let mut pulled = Pulled::default();
        let mut articles = Vec::new();
        let mut end_time = start_time;
        let mut next = Some(format!(
            "/api/v2/help_center/incremental/articles?start_time={start_time}"
        ));
        while let Some(reference) = next.take() {
            let Page::Read { body, .. } = pages
                .get::<ExportPage>(&reference, HeaderMap::new())
                .await?
            else {
                break;
            };
            end_time = body.end_time.unwrap_or(end_time).max(end_time);
            let has_more = !body.end_of_stream && !body.articles.is_empty();
            articles.extend(body.articles);
            next = body
                .next_page
                .filter(|next_page| has_more && *next_page != reference);
        }
        let section_names = if articles.iter().any(|article| !article.draft) {
            self.section_names(pages).await?
        } else {
            HashMap::new()
        };
        for article in articles {
            self.take(article, &section_names, &mut pulled);
        }
        pulled.pages = pages.pages_read();
        pulled.cursor = SavedCursor {
            cursor: Some(end_time.to_string()),
            ..SavedCursor::default()
        };
        Ok(pulled)
    }

    async fn section_names(&self, pages: &PageFetcher) -> Result<HashMap<u64, String>, PageError> {
        let mut names = HashMap::new();
        let mut next = Some("/api/v2/help_center/sections?per_page=100".to_owned());
        while let Some(reference) = next.take() {
            let Page::Read { body, .. } = pages
                .get::<SectionsPage>(&reference, HeaderMap::new())
                .await?
            else {
                break;
            };
            for section in body.sections {
                names.insert(section.id, section.name);
            }
            next = body.next_page.filter(|next_page| *next_page != reference);
        }
        Ok(names)
    }

    fn take(&self, article: Article, section_names: &HashMap<u64, String>, pulled: &mut Pulled) {
        let locale = article.locale.to_lowercase();
        if !self.locales.is_empty() && !self.locales.contains(&locale) {
            pulled.skipped += 1;
            return;
        }
        let id = format!("{ID_PREFIX}{}-{locale}", article.id);
        if article.draft {
            pulled.removed_ids.push(id);
            return;
        }
        let mut tags = article.label_names;
        if let Some(section) = article.section_id.and_then(|id| section_names.get(&id)) {
            tags.push(section.clone());
        }
        let input = DocumentInput {
            id: Some(serde_json::Value::String(id.clone())),
            kind: Some("article".to_owned()),
            title: article.title,
            url: article.html_url,
            locale: Some(locale),
            tags,
            updated_at: article.updated_at,
            ..DocumentInput::default()
        };
        pulled.take(
            "zendesk",
            &id,
            synced_document(input, article.body.as_deref()),
        );
    }
}
