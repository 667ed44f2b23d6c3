//! `GET /demo`: a sample helpdesk "Submit a request" page using the widget against the
//! demo catalog, and `POST /demo/submitted`, where its form lands. Registered only when
//! `demo.page` is on.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::demo::{DemoLanguage, DemoPages};

pub(super) fn configure(config: &mut web::ServiceConfig, pages: &DemoPages) {
    config
        .app_data(web::Data::new(pages.clone()))
        .service(
            web::resource("/demo")
                .route(web::get().to(show_form_page))
                .default_service(web::to(super::method_not_allowed)),
        )
        .service(
            web::resource("/demo/submitted")
                // A description pasted with a log in it is still a ticket.
                .app_data(web::FormConfig::default().limit(DEMO_FORM_LIMIT_BYTES))
                .route(web::post().to(show_submitted_page))
                .default_service(web::to(super::method_not_allowed)),
        );
}

/// Largest demo form accepted.
const DEMO_FORM_LIMIT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Deserialize)]
struct DemoQuery {
    lang: Option<String>,
}

/// The part of the demo form the submitted page shows: the widget session the widget
/// wrote into the hidden field (`data-session-field`).
#[derive(Debug, Deserialize)]
struct DemoSubmission {
    deflect_session: Option<String>,
}

async fn show_form_page(pages: web::Data<DemoPages>, query: web::Query<DemoQuery>) -> HttpResponse {
    let language = DemoLanguage::from_tag(query.lang.as_deref());
    html(pages.form_page(language))
}

/// The demo's stand-in for a helpdesk receiving the ticket: it shows the widget session
/// the ticket names and stores nothing.
async fn show_submitted_page(
    pages: web::Data<DemoPages>,
    query: web::Query<DemoQuery>,
    submission: web::Form<DemoSubmission>,
) -> HttpResponse {
    let language = DemoLanguage::from_tag(query.lang.as_deref());
    let session_id = submission.deflect_session.as_deref().unwrap_or_default();
    html(pages.submitted_page(language, session_id))
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(body)
}
