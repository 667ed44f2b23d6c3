//! `/r/{token}`: the tracked links of "while you wait" comments and of lessons agents
//! assigned, opened by customers.
//!
//! A lesson link records `lesson_opened` (an assigned lesson's link marks the assignment
//! opened instead) and redirects to the lesson's URL as the content index has it (never
//! to an address from the request). "This solved my
//! problem" shows a confirmation page first and records `resolved` (and, when the tenant
//! wants it, solves the ticket) only when the customer confirms with a POST: mail
//! scanners and link previews open links with GET, and must not close tickets.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::domain::ContentId;
use crate::error::{ApiError, ErrorCode};
use crate::events::answers::now_milliseconds;
use crate::events::WriteOutcome;
use crate::helpdesk::comment::Texts;
use crate::outbox::{OutboxAction, OutboxJob};
use crate::startup::AppState;
use crate::tracked_links::{LinkTarget, TrackedLink};
use crate::training::progress::{ItemKind, Step};
use crate::webhooks::ticket_events::link_followed;

pub(super) fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource("/r/{token}")
            .route(web::get().to(follow_link))
            .route(web::post().to(confirm_solved))
            .default_service(web::to(super::method_not_allowed)),
    );
}

/// Pages may not load anything, run scripts or be framed; forms post only here.
const PAGE_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

fn link_not_found() -> ApiError {
    ApiError::new(
        ErrorCode::LinkNotFound,
        "this link is not valid (or its lesson is gone)",
    )
}

fn verified_link(state: &AppState, token: &str) -> Result<TrackedLink, ApiError> {
    state
        .links
        .as_ref()
        .and_then(|signer| signer.verify(token))
        .ok_or_else(link_not_found)
}

#[tracing::instrument(name = "follow link", skip_all, fields(tenant))]
async fn follow_link(
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let link = verified_link(&state, &token)?;
    tracing::Span::current().record("tenant", tracing::field::display(&link.tenant));
    let Some(lesson_id) = link.target.lesson_id() else {
        let texts = link.language.texts();
        return Ok(page(
            link.language.code(),
            texts.confirm_title,
            &format!(
                "<p>{}</p><form method=\"post\"><button type=\"submit\">{}</button></form>",
                texts.confirm_question, texts.confirm_button
            ),
        ));
    };
    let lesson_id = ContentId::parse(lesson_id).map_err(|_| link_not_found())?;
    let document = state
        .store
        .get(&link.tenant, &lesson_id)
        .await
        .map_err(|error| ApiError::internal("failed to read a linked lesson", &error))?;
    let destination = document
        .and_then(|document| document.url)
        .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
        .ok_or_else(link_not_found)?;
    // Recorded without waiting: the customer is on the way to the lesson.
    match &link.target {
        LinkTarget::Assigned { customer_id, .. } => {
            let training = state.training.clone();
            let (tenant, customer_id) = (link.tenant.clone(), customer_id.clone());
            tokio::spawn(async move {
                let now_ms = now_milliseconds();
                let opened = (Step::Opened, ItemKind::Lesson, lesson_id.as_str());
                let recorded = training
                    .record_progress(&tenant, &customer_id, opened, now_ms, now_ms)
                    .await;
                if let Err(error) = recorded {
                    tracing::warn!(error = %error, "failed to mark an assignment opened");
                }
            });
        }
        _ => {
            if let Some(event) = link_followed(&link) {
                state.events.record(event);
            }
        }
    }
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, destination))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish())
}

#[tracing::instrument(name = "confirm solved", skip_all, fields(tenant))]
async fn confirm_solved(
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let link = verified_link(&state, &token)?;
    tracing::Span::current().record("tenant", tracing::field::display(&link.tenant));
    if link.target != LinkTarget::Solved {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            "a lesson link is opened with GET",
        ));
    }
    let unavailable = || {
        ApiError::new(
            ErrorCode::LinkUnavailable,
            "your answer cannot be recorded right now; please try again in a moment",
        )
    };
    let outcome = state
        .events
        .submit(link_followed(&link).into_iter().collect())
        .await
        .map_err(|_| unavailable())?;
    if !matches!(outcome, WriteOutcome::Stored(_) | WriteOutcome::Spooled) {
        return Err(unavailable());
    }
    if state
        .webhooks
        .intake
        .tenants
        .solves_when_resolved(&link.tenant, link.helpdesk)
    {
        let job = OutboxJob {
            tenant: link.tenant.clone(),
            helpdesk: link.helpdesk,
            ticket_id: link.ticket_id.clone(),
            action: OutboxAction::Solve,
        };
        state.webhooks.outbox.enqueue(&job).await.map_err(|error| {
            tracing::warn!(error = %error, "failed to queue solving a ticket");
            unavailable()
        })?;
    }
    let texts: &Texts = link.language.texts();
    Ok(page(
        link.language.code(),
        texts.thanks_title,
        &format!("<p>{}</p>", texts.thanks_text),
    ))
}

/// A minimal page: `title` as its heading, then `content` (trusted HTML).
fn page(language: &str, title: &str, content: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html>\n<html lang=\"{language}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;\
         margin:4rem auto;padding:0 1rem;color:#1f2933}}button{{font:inherit;padding:.6rem 1.2rem;\
         border-radius:.4rem;border:0;background:#2457c5;color:#fff;cursor:pointer}}</style></head>\
         <body><h1>{title}</h1>{content}</body></html>"
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_SECURITY_POLICY))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(html)
}
