//! HTTP routes, one file per resource. Handlers authenticate, parse the request into a
//! domain type, call one service and map its errors to the API contract.

mod admin;
mod content;
mod customers;
mod demo;
mod events;
mod health;
mod metrics;
mod stats;
mod suggest;
mod sync;
mod tickets;
mod tracked_links;
mod webhooks;
mod widget;

use actix_web::{web, ResponseError};

use crate::demo::DemoPages;
use crate::error::{json_error_handler, ApiError, ErrorCode};

pub use health::ReadinessReport;

/// Largest accepted request bodies, per kind of route.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub events_json_bytes: usize,
    pub suggest_json_bytes: usize,
    pub json_bytes: usize,
    pub bulk_bytes: usize,
    pub webhook_bytes: usize,
}

/// Registers every route of the API, and the demo pages when `demo_pages` is given.
pub fn configure(
    config: &mut web::ServiceConfig,
    limits: &BodyLimits,
    demo_pages: Option<&DemoPages>,
) {
    health::configure(config);
    widget::configure(config);
    if let Some(pages) = demo_pages {
        demo::configure(config, pages);
    }
    suggest::configure(config, limits);
    content::configure(config, limits);
    admin::configure(config);
    events::configure(config, limits);
    stats::configure(config);
    metrics::configure(config);
    webhooks::configure(config, limits);
    tracked_links::configure(config);
    tickets::configure(config, limits);
    customers::configure(config, limits);
    sync::configure(config);
}

/// JSON extractor settings with a body limit and the API's error contract.
pub(crate) fn json_config(limit_bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit_bytes)
        .error_handler(json_error_handler)
}

/// The error for a request body that broke off or could not be decoded while read.
pub(crate) fn unreadable_body(error: actix_web::error::PayloadError) -> ApiError {
    ApiError::new(
        ErrorCode::MalformedJson,
        format!("the body could not be read: {error}"),
    )
}

/// Reads a whole body of at most `limit` bytes (413 beyond).
pub(crate) async fn read_body(
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt;

    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(unreadable_body)?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body is larger than the limit of {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Answers a known path called with the wrong method.
pub(crate) async fn method_not_allowed(request: actix_web::HttpRequest) -> actix_web::HttpResponse {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} is not allowed on {}", request.method(), request.path()),
    )
    .error_response()
}
