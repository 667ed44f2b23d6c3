//! Reads Freshdesk solution articles: the categories
//! (`GET /api/v2/solutions/categories`), their folders
//! (`GET /api/v2/solutions/categories/<id>/folders`) and each folder's articles
//! (`GET /api/v2/solutions/folders/<id>/articles?page=<n>&per_page=100`), following
//! the `Link: <…>; rel="next"` header; HTTP Basic with the API key as the user.
//!
//! Freshdesk has no incremental export of solutions, so every run lists everything and
//! is a full run: articles whose `status` is 1 (draft) are removed, and so is whatever
//! is no longer listed. Unchanged articles are not written again. Document ids are
//! `fd-<article id>`; the category and folder names become tags.

use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::domain::DocumentInput;

use super::document::synced_document;
use super::pages::{Page, PageError, PageFetcher};
use super::plan::Pulled;
use super::state::SavedCursor;

/// The id prefix of documents from Freshdesk.
pub const ID_PREFIX: &str = "fd-";

/// Articles asked for per page (Freshdesk's maximum).
const ARTICLES_PER_PAGE: usize = 100;

/// `status` of a published article.
const PUBLISHED: u8 = 2;

/// One tenant's Freshdesk knowledge base.
pub struct FreshdeskSource {
    /// Where customers read the articles: `<portal>/support/solutions/articles/<id>`.
    pub portal_url: String,
    pub locale: String,
}

#[derive(Debug, Deserialize)]
struct Named {
    id: u64,
    name: String,
}

#[derive(Debug, Deserialize)]
struct Article {
    id: u64,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    status: u8,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    updated_at: Option<String>,
}

impl FreshdeskSource {
    /// Lists every article of every folder of every category.
    pub async fn pull(&self, pages: &PageFetcher) -> Result<Pulled, PageError> {
        let mut pulled = Pulled::default();
        let categories: Vec<Named> =
            all_pages(pages, "/api/v2/solutions/categories".to_owned()).await?;
        for category in categories {
            let folders_path = format!("/api/v2/solutions/categories/{}/folders", category.id);
            let folders: Vec<Named> = all_pages(pages, folders_path).await?;
            for folder in folders {
                let articles_path = format!(
                    "/api/v2/solutions/folders/{}/articles?page=1&per_page={ARTICLES_PER_PAGE}",
                    folder.id
                );
                let articles: Vec<Article> = all_pages(pages, articles_path).await?;
                for article in articles {
                    self.take(article, &[&category.name, &folder.name], &mut pulled);
                }
            }
        }
        pulled.pages = pages.pages_read();
        pulled.cursor = SavedCursor::default();
        Ok(pulled)
    }

    fn take(&self, article: Article, group_names: &[&str], pulled: &mut Pulled) {
        let id = format!("{ID_PREFIX}{}", article.id);
        if article.status != PUBLISHED {
            pulled.removed_ids.push(id);
            return;
        }
        let mut tags = article.tags.unwrap_or_default();
        tags.extend(group_names.iter().map(|name| (*name).to_owned()));
        let input = DocumentInput {
            id: Some(serde_json::Value::String(id.clone())),
            kind: Some("article".to_owned()),
            title: article.title,
            url: Some(format!(
                "{}/support/solutions/articles/{}",
                self.portal_url.trim_end_matches('/'),
                article.id
            )),
            locale: Some(self.locale.clone()),
            tags,
            updated_at: article.updated_at,
            ..DocumentInput::default()
        };
        let document = synced_document(input, article.description.as_deref());
        pulled.take("freshdesk", &id, document);
    }
}

/// Reads a list and the pages its `Link` headers point to.
async fn all_pages<T: DeserializeOwned>(
    pages: &PageFetcher,
    first: String,
) -> Result<Vec<T>, PageError> {
    let mut items = Vec::new();
    let mut next = Some(first);
    while let Some(reference) = next.take() {
        let Page::Read {
            body, link_next, ..
        } = pages.get::<Vec<T>>(&reference, HeaderMap::new()).await?
        else {
            break;
        };
        items.extend(body);
        next = link_next.filter(|link| *link != reference);
    }
    Ok(items)
}
