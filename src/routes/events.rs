//! `/v1/events`: what customers did with suggestions, in batches; and
//! `/v1/events/beacon`, the same for `navigator.sendBeacon`, which a widget uses when
//! its page is being left and which cannot send an `Authorization` header.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::auth::{Authorized, KeyRing, SuggestScopes};
use crate::domain::{DeflectionEvent, TenantId};
use crate::error::{ApiError, ErrorCode};
use crate::events::answers::now_milliseconds;
use crate::events::{SinkError, TenantEvent, WriteOutcome};
use crate::startup::AppState;

use super::{json_config, BodyLimits};

pub(super) fn configure(config: &mut web::ServiceConfig, limits: &BodyLimits) {
    config
        .service(
            web::resource("/v1/events")
                .app_data(json_config(limits.events_json_bytes))
                .route(web::post().to(record_events))
                .default_service(web::to(super::method_not_allowed)),
        )
        .service(
            web::resource("/v1/events/beacon")
                .app_data(web::Data::new(BeaconLimit(limits.events_json_bytes)))
                .route(web::post().to(record_beacon))
                .default_service(web::to(super::method_not_allowed)),
        );
}

/// Largest accepted beacon body (that of `POST /v1/events`).
struct BeaconLimit(usize);

/// The body of `POST /v1/events`. Events stay raw JSON here so each is parsed on its
/// own: one malformed event is rejected without sinking the batch.
#[derive(Debug, Deserialize)]
struct EventBatchBody {
    events: Vec<serde_json::Value>,
}

/// What became of one event.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum EventStatus {
    Accepted,
    Duplicate,
    Rejected,
}

#[derive(Debug, Serialize)]
struct EventResult {
    /// Position of the event in the batch.
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
    status: EventStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

#[derive(Debug, Serialize)]
struct BatchAnswer {
    accepted: usize,
    duplicates: usize,
    rejected: usize,
    /// True when Redis was unreachable and the accepted events wait in the spool (they
    /// are counted, once, when Redis is back).
    spooled: bool,
    results: Vec<EventResult>,
}

/// The body of `POST /v1/events/beacon`: a batch plus the widget's public key.
#[derive(Debug, Deserialize)]
struct BeaconBody {
    key: Option<String>,
    events: Vec<serde_json::Value>,
}

#[tracing::instrument(name = "record events", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn record_events(
    authorized: Authorized<SuggestScopes>,
    state: web::Data<AppState>,
    body: web::Json<EventBatchBody>,
) -> Result<HttpResponse, ApiError> {
    record_batch(authorized.caller.tenant, body.into_inner().events, &state).await
}

/// Takes a beacon: a body of `text/plain` (what `sendBeacon` sends without a CORS
/// preflight) or `application/json`, holding the key and the events.
#[tracing::instrument(name = "record beacon", skip_all, fields(tenant))]
async fn record_beacon(
    request: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<Arc<KeyRing>>,
    limit: web::Data<BeaconLimit>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !matches!(essence.as_str(), "" | "text/plain" | "application/json") {
        return Err(ApiError::new(
            ErrorCode::InvalidContentType,
            "expected a beacon body with Content-Type text/plain or application/json",
        ));
    }
    let body = super::read_body(payload, limit.0).await?;
    let beacon: BeaconBody = serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("the beacon body is not a JSON object with `key` and `events`: {error}"),
        )
    })?;
    let caller = keys.authenticate_beacon(beacon.key.as_deref().unwrap_or_default(), &request)?;
    tracing::Span::current().record("tenant", tracing::field::display(&caller.tenant));
    record_batch(caller.tenant, beacon.events, &state).await
}

/// Validates and stores one batch of `tenant`'s events; one bad event is rejected without
/// sinking the others.
async fn record_batch(
    tenant: TenantId,
    raw_events: Vec<serde_json::Value>,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let intake = state.event_intake;
    if raw_events.len() > intake.max_events_per_request {
        return Err(ApiError::new(
            ErrorCode::InvalidEventBatch,
            format!(
                "a batch holds at most {} events; this one has {}",
                intake.max_events_per_request,
                raw_events.len()
            ),
        ));
    }
    let now_ms = now_milliseconds();
    let mut results = Vec::with_capacity(raw_events.len());
    let mut valid = Vec::with_capacity(raw_events.len());
    for (index, raw) in raw_events.into_iter().enumerate() {
        let event_id = raw
            .get("event_id")
            .and_then(|id| id.as_str())
            .map(str::to_owned);
        match DeflectionEvent::parse(raw, now_ms, intake.max_event_age_days) {
            Ok(event) => {
                // Reasons are free text customers type: the event writer redacts them
                // (e-mail addresses, phone numbers) before they are spooled or stored.
                results.push(EventResult {
                    index,
                    event_id: Some(event.event_id.clone()),
                    status: EventStatus::Accepted,
                    code: None,
                    message: None,
                });
                valid.push(TenantEvent {
                    tenant: tenant.clone(),
                    event,
                });
            }
            Err(problem) => results.push(EventResult {
                index,
                event_id,
                status: EventStatus::Rejected,
                code: Some(problem.code()),
                message: Some(problem.to_string()),
            }),
        }
    }
    let rejected = results.len() - valid.len();
    state
        .metrics
        .events
        .rejected
        .fetch_add(rejected as u64, std::sync::atomic::Ordering::Relaxed);

    let outcome = state.events.submit(valid).await.map_err(sink_error)?;
    let spooled = match outcome {
        WriteOutcome::Stored(counted) => {
            let accepted_results = results
                .iter_mut()
                .filter(|result| result.status == EventStatus::Accepted);
            for (result, fresh) in accepted_results.zip(counted) {
                if !fresh {
                    result.status = EventStatus::Duplicate;
                }
            }
            false
        }
        WriteOutcome::Spooled => true,
        WriteOutcome::SpoolFull => {
            return Err(ApiError::new(
                ErrorCode::EventSpoolFull,
                "events cannot be stored right now (redis is unreachable and the spool is full); retry later",
            ))
        }
        WriteOutcome::Failed => {
            return Err(ApiError::internal(
                "events could not be stored",
                &std::io::Error::other("the event writer failed; see its log lines"),
            ))
        }
    };
    let count = |status: EventStatus| {
        results
            .iter()
            .filter(|result| result.status == status)
            .count()
    };
    let answer = BatchAnswer {
        accepted: count(EventStatus::Accepted),
        duplicates: count(EventStatus::Duplicate),
        rejected,
        spooled,
        results,
    };
    tracing::debug!(
        accepted = answer.accepted,
        duplicates = answer.duplicates,
        rejected = answer.rejected,
        spooled,
        "events recorded"
    );
    Ok(HttpResponse::Ok().json(answer))
}

fn sink_error(error: SinkError) -> ApiError {
    match error {
        SinkError::QueueFull => ApiError::new(
            ErrorCode::EventQueueFull,
            "too many events are waiting to be stored; retry shortly",
        ),
        SinkError::Busy => ApiError::new(
            ErrorCode::EventQueueFull,
            "the event writer is too busy to answer; retry the batch (its event ids make that safe)",
        ),
        SinkError::Stopped => ApiError::internal("the event writer is not running", &error),
    }
}
