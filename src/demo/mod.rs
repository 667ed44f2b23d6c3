//! The bundled demo catalog: a fictional SaaS product's courses, micro-lessons and help
//! articles in English and German, so a newcomer's first `deflect serve` answers real
//! questions, and the demo helpdesk page that embeds the widget (`page`).

mod page;

pub use page::{DemoLanguage, DemoPages};

use crate::content::{ContentStore, StoreError};
use crate::domain::{ContentDocument, TenantId};
use crate::ndjson::parse_line;

/// The catalog, one document per line.
pub const DEMO_CATALOG: &str = include_str!("catalog.ndjson");

/// Returns the catalog's documents.
pub fn demo_documents() -> Vec<ContentDocument> {
    DEMO_CATALOG
        .lines()
        .enumerate()
        .filter_map(|(index, line)| {
            parse_line(line.as_bytes(), index + 1)
                .expect("the demo catalog is valid (checked by a unit test)")
        })
        .collect()
}

/// Loads the catalog into `tenant` when that tenant has no content yet; returns how
/// many documents were loaded.
pub async fn load_demo_catalog_if_empty(
    store: &ContentStore,
    tenant: &TenantId,
) -> Result<usize, StoreError> {
    if store.count(tenant)? > 0 {
        return Ok(0);
    }
    let documents = demo_documents();
    let loaded = documents.len();
    store.upsert(tenant, documents).await?;
    tracing::info!(tenant = %tenant, documents = loaded, "loaded the demo catalog");
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_parses_and_is_big_enough() {
        let documents = demo_documents();
        let count = |kind: &str| {
            documents
                .iter()
                .filter(|document| document.kind.as_str() == kind)
                .count()
        };
        assert!(count("course") >= 8);
        assert!(count("lesson") >= 24);
        assert!(count("article") >= 30);
        assert!(documents.iter().any(|document| document.locale == "de"));
    }
}
