//! `/v1/webhooks/{zendesk,freshdesk,generic}`: helpdesk webhooks, `?tenant=<id>`.
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

use crate::error::{error_chain, ApiError, ErrorCode};
use crate::startup::AppState;
use crate::webhooks::intake::{DeliveryStatus, IntakeError};
use crate::webhooks::payload::HelpdeskTicket;
use crate::webhooks::signature::HeaderSource;
use crate::webhooks::Provider;

use super::BodyLimits;

/// Largest accepted webhook body.
struct WebhookBodyLimit(usize);

pub(super) fn configure(config: &mut web::ServiceConfig, limits: &BodyLimits) {
    for (path, provider) in [
        ("/v1/webhooks/zendesk", Provider::Zendesk),
        ("/v1/webhooks/freshdesk", Provider::Freshdesk),
        ("/v1/webhooks/generic", Provider::Generic),
    ] {
        config.service(
            web::resource(path)
                .app_data(web::Data::new(provider))
                .app_data(web::Data::new(WebhookBodyLimit(limits.webhook_bytes)))
                .route(web::post().to(receive))
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

/// Receives a delivery of the route's provider.
#[tracing::instrument(name = "webhook", skip_all, fields(provider = provider.as_str(), tenant))]
async fn receive(
    provider: web::Data<Provider>,
    request: HttpRequest,
    state: web::Data<AppState>,
    limit: web::Data<WebhookBodyLimit>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let provider = **provider;
    let metrics = &state.metrics.webhooks;
    let body = super::read_body(payload, limit.0).await?;
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
    let ticket = HelpdeskTicket::parse(&body).map_err(|problem| {
        metrics.malformed.fetch_add(1, Ordering::Relaxed);
        ApiError::new(ErrorCode::InvalidWebhookPayload, problem.to_string())
    })?;
    let answer = webhooks
        .intake
        .process(&tenant, provider, delivery, ticket)
        .await
        .map_err(intake_error)?;
    if answer.status == DeliveryStatus::Duplicate {
        metrics.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    Ok(HttpResponse::Ok().json(answer))
}

fn intake_error(error: IntakeError) -> ApiError {
    match error {
        IntakeError::Unavailable(_) => {
            tracing::warn!(error = %error_chain(&error), "webhook delivery not processed");
            ApiError::new(
                ErrorCode::WebhookUnavailable,
                "the delivery cannot be recorded right now; retry it later",
            )
        }
        IntakeError::Suggest(_) => ApiError::internal("webhook suggestions failed", &error),
    }
}
