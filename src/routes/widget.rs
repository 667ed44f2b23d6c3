//! `GET /widget.js`: the embeddable widget, cacheable and revalidated by its ETag.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::widget::{etag_matches, widget_etag, WIDGET_JS, WIDGET_VERSION};

/// Browsers reuse the script for five minutes, then revalidate it (a 304 when unchanged),
/// so an upgraded deflect reaches every page within minutes.
const CACHE_CONTROL: &str = "public, max-age=300";

pub(super) fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource("/widget.js")
            .route(web::get().to(serve_widget))
            .route(web::head().to(serve_widget))
            .default_service(web::to(super::method_not_allowed)),
    );
}

async fn serve_widget(request: HttpRequest) -> HttpResponse {
    let etag = widget_etag();
    let is_cached = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(etag_matches);
    let mut response = if is_cached {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header(("x-deflect-widget-version", WIDGET_VERSION))
        // Pages that isolate themselves (Cross-Origin-Embedder-Policy) may still load it.
        .insert_header((
            header::HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("cross-origin"),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if is_cached {
        return response.finish();
    }
    response
        .content_type("application/javascript; charset=utf-8")
        .body(WIDGET_JS)
}
