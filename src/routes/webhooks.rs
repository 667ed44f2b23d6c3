//! `/v1/webhooks/{zendesk,freshdesk,generic}`: helpdesk webhooks, and
//! `/v1/webhooks/lms`: LMS completions and enrollments; all `?tenant=<id>`.
//!
//! The order is fixed: read the body (413 over the limit), verify it by the provider's
//! scheme with the tenant's secrets (401, the same for every reason, so a sender learns
//! nothing about tenants or secrets), parse it (400: the sender must not retry garbage),
//! then process it once per delivery.

use std::sync::atomic::Ordering;

use actix_web::http::header::HeaderMap;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::domain::TenantId;
use crate::error::{error_chain, ApiError, ErrorCode};
use crate::startup::AppState;
use crate::training::lms::LmsEvent;
use crate::webhooks::intake::{DeliveryStatus, IntakeError};
use crate::webhooks::payload::HelpdeskTicket;
use crate::webhooks::signature::{HeaderSource, VerifiedDelivery};
use crate::webhooks::tenants::lms_shape;
use crate::webhooks::Provider;

use super::BodyLimits;

/// Largest accepted webhook body.
struct WebhookBodyLimit(usize);

pub(super) fn configure(config: &mut web::ServiceConfig, limits: &BodyLimits) {
    for (path, provider) in [
        ("/v1/webhooks/zendesk", Provider::Zendesk),
        ("/v1/webhooks/freshdesk", Provider::Freshdesk),
        ("/v1/webhooks/generic", Provider::Generic),
        ("/v1/webhooks/lms", Provider::Lms),
    ] {
        let handler = match provider {
            Provider::Lms => web::post().to(receive_lms),
            _ => web::post().to(receive),
        };
        config.service(
            web::resource(path)
                .app_data(web::Data::new(provider))
                .app_data(web::Data::new(WebhookBodyLimit(limits.webhook_bytes)))
                .route(handler)
                .default_service(web::to(super::method_not_allowed)),
        );
    }
}

impl HeaderSource for HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)?.to_str().ok()
    }
}

#[derive(Debug, Deserialize)]
struct WebhookQuery {
    tenant: Option<String>,
}

/// A delivery read and verified: its body, tenant and what verification learned.
struct Verified {
    body: Vec<u8>,
    tenant: TenantId,
    delivery: VerifiedDelivery,
}

/// Reads the body of a delivery of `provider` and verifies it with the secrets of the
/// tenant the query names; every failure of verification is the same 401.
async fn read_and_verify(
    provider: Provider,
    request: &HttpRequest,
    state: &AppState,
    limit: usize,
    payload: web::Payload,
) -> Result<Verified, ApiError> {
    let metrics = &state.metrics.webhooks;
    let body = super::read_body(payload, limit).await?;
    // A query string that does not parse names no tenant: refused like an unknown one.
    let tenant_name = web::Query::<WebhookQuery>::from_query(request.query_string())
        .ok()
        .and_then(|query| query.into_inner().tenant);
    let webhooks = &state.webhooks;
    let verified = webhooks.intake.tenants.verify(
        provider,
        tenant_name.as_deref(),
        request.headers(),
        &body,
        OffsetDateTime::now_utc(),
        webhooks.timestamp_tolerance_seconds,
    );
    let (tenant, delivery) = verified.map_err(|rejection| {
        metrics.unauthorized.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(?rejection, "webhook delivery refused");
        ApiError::new(
            ErrorCode::WebhookUnauthorized,
            "the webhook delivery could not be authenticated",
        )
    })?;
    tracing::Span::current().record("tenant", tracing::field::display(&tenant));
    metrics.verified.fetch_add(1, Ordering::Relaxed);
    Ok(Verified {
        body,
        tenant,
        delivery,
    })
}

/// The 400 of a verified body that is not what the route reads.
fn malformed(state: &AppState, problem: impl std::fmt::Display) -> ApiError {
    state
        .metrics
        .webhooks
        .malformed
        .fetch_add(1, Ordering::Relaxed);
    ApiError::new(ErrorCode::InvalidWebhookPayload, problem.to_string())
}

/// Counts a duplicate delivery.
fn count_status(state: &AppState, status: DeliveryStatus) {
    if status == DeliveryStatus::Duplicate {
        state
            .metrics
            .webhooks
            .duplicates
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Receives a delivery of the route's helpdesk.
#[tracing::instrument(name = "webhook", skip_all, fields(provider = provider.as_str(), tenant))]
async fn receive(
    provider: web::Data<Provider>,
    request: HttpRequest,
    state: web::Data<AppState>,
    limit: web::Data<WebhookBodyLimit>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let provider = **provider;
    let verified = read_and_verify(provider, &request, &state, limit.0, payload).await?;
    let ticket =
        HelpdeskTicket::parse(&verified.body).map_err(|problem| malformed(&state, problem))?;
    let answer = state
        .webhooks
        .intake
        .process(&verified.tenant, provider, verified.delivery, ticket)
        .await
        .map_err(intake_error)?;
    count_status(&state, answer.status);
    Ok(HttpResponse::Ok().json(answer))
}

/// Receives an LMS delivery: deflect's generic shape signed with Standard Webhooks, or
/// Thinkific's (told by its signature header).
#[tracing::instrument(name = "lms webhook", skip_all, fields(tenant))]
async fn receive_lms(
    request: HttpRequest,
    state: web::Data<AppState>,
    limit: web::Data<WebhookBodyLimit>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let verified = read_and_verify(Provider::Lms, &request, &state, limit.0, payload).await?;
    let shape = lms_shape(request.headers());
    let event =
        LmsEvent::parse(shape, &verified.body).map_err(|problem| malformed(&state, problem))?;
    let answer = state
        .webhooks
        .lms
        .process(&verified.tenant, &verified.body, verified.delivery, event)
        .await
        .map_err(|error| unavailable(&IntakeError::from(error)))?;
    count_status(&state, answer.status);
    Ok(HttpResponse::Ok().json(answer))
}

/// The 503 of a delivery that cannot be recorded now: the sender retries it.
fn unavailable(error: &IntakeError) -> ApiError {
    tracing::warn!(error = %error_chain(error), "webhook delivery not processed");
    ApiError::new(
        ErrorCode::WebhookUnavailable,
        "the delivery cannot be recorded right now; retry it later",
    )
}

fn intake_error(error: IntakeError) -> ApiError {
    match error {
        IntakeError::Unavailable(_) => unavailable(&error),
        IntakeError::Suggest(_) => ApiError::internal("webhook suggestions failed", &error),
    }
}
