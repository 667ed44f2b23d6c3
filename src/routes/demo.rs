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
                .route(web::post().to(show_submitted_page))
                .default_service(web::to(super::method_not_allowed)),
        );
}

#[derive(Debug, Deserialize)]
struct DemoQuery {
    lang: Option<String>,
}

async fn show_form_page(pages: web::Data<DemoPages>, query: web::Query<DemoQuery>) -> HttpResponse {
    let language = DemoLanguage::from_tag(query.lang.as_deref());
    html(pages.form_page(language))
}

/// The demo's stand-in for a helpdesk receiving the ticket: the form body is not read,
/// nothing is stored.
async fn show_submitted_page(
    pages: web::Data<DemoPages>,
    query: web::Query<DemoQuery>,
) -> HttpResponse {
    let language = DemoLanguage::from_tag(query.lang.as_deref());
    html(pages.submitted_page(language))
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(body)
}
