//! `/v1/suggest`: lessons and articles for a draft ticket, as the customer types.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use std::sync::atomic::Ordering;

use crate::auth::{Authorized, Caller, SuggestScopes};
use crate::domain::{DeflectionEvent, DraftProblem, DraftTicket, EventType, SuggestRequestBody};
use crate::error::{ApiError, ErrorCode};
use crate::events::redaction::gap_draft;
use crate::events::TenantEvent;
use crate::suggest::Suggestions;

use super::{json_config, BodyLimits};
use crate::startup::AppState;

pub(super) fn configure(config: &mut web::ServiceConfig, limits: &BodyLimits) {
    config.service(
        web::resource("/v1/suggest")
            .app_data(json_config(limits.suggest_json_bytes))
            .route(web::post().to(suggest_for_draft))
            .route(web::get().to(suggest_for_query_string))
            .default_service(web::to(super::method_not_allowed)),
    );
}

/// Query parameters of `GET /v1/suggest`, for simple clients.
#[derive(Debug, Deserialize)]
struct SuggestParams {
    q: Option<String>,
    session_id: Option<String>,
    locale: Option<String>,
    audience: Option<String>,
    product: Option<String>,
    /// Comma-separated.
    kinds: Option<String>,
    limit: Option<u32>,
}

#[tracing::instrument(name = "suggest", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn suggest_for_draft(
    authorized: Authorized<SuggestScopes>,
    state: web::Data<AppState>,
    body: web::Json<SuggestRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let caller = authorized.caller;
    answer(caller, state, body.into_inner()).await
}

#[tracing::instrument(name = "suggest", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn suggest_for_query_string(
    authorized: Authorized<SuggestScopes>,
    state: web::Data<AppState>,
    params: web::Query<SuggestParams>,
) -> Result<HttpResponse, ApiError> {
    let caller = authorized.caller;
    let params = params.into_inner();
    let body = SuggestRequestBody {
        text: params.q,
        session_id: params.session_id,
        locale: params.locale,
        audience: params.audience,
        product: params.product,
        kinds: params.kinds.map(|kinds| {
            kinds
                .split(',')
                .map(str::trim)
                .filter(|kind| !kind.is_empty())
                .map(str::to_owned)
                .collect()
        }),
        limit: params.limit,
        ..Default::default()
    };
    answer(caller, state, body).await
}

async fn answer(
    caller: Caller,
    state: web::Data<AppState>,
    body: SuggestRequestBody,
) -> Result<HttpResponse, ApiError> {
    let draft =
        DraftTicket::parse(body, state.default_limit, state.max_limit).map_err(draft_error)?;
    let held_out = draft
        .session_id
        .as_deref()
        .is_some_and(|session_id| state.holdout.is_held_out(&caller.tenant, session_id));
    if held_out {
        let suggestions = Suggestions::held_out();
        state
            .metrics
            .suggestions_held_out
            .fetch_add(1, Ordering::Relaxed);
        record_answer(&state, &caller, &draft, &suggestions);
        return Ok(HttpResponse::Ok().json(suggestions));
    }
    let draft_for_events = DraftForEvents::of(&draft);
    let suggestions = state
        .suggest
        .suggest(caller.tenant.clone(), draft)
        .await
        .map_err(|error| ApiError::internal("suggest failed", &error))?;
    tracing::debug!(
        abstained = suggestions.abstained,
        results = suggestions.results.len(),
        "suggestions computed"
    );
    state
        .metrics
        .suggestions_answered
        .fetch_add(1, Ordering::Relaxed);
    if suggestions.results.is_empty() {
        state
            .metrics
            .suggestions_abstained
            .fetch_add(1, Ordering::Relaxed);
    }
    record_answer_of(&state, &caller, draft_for_events, &suggestions);
    Ok(HttpResponse::Ok().json(suggestions))
}

/// What the event of an answer needs of its draft (the draft itself moves into search).
struct DraftForEvents {
    session_id: Option<String>,
    locale: Option<String>,
    /// The beginning of the draft, enough for the gaps report.
    text_head: String,
}

/// Bytes of a draft looked at for the gaps report.
const GAP_TEXT_BUDGET_BYTES: usize = 4 * 1024;

impl DraftForEvents {
    fn of(draft: &DraftTicket) -> DraftForEvents {
        let mut end = draft.text.len().min(GAP_TEXT_BUDGET_BYTES);
        while !draft.text.is_char_boundary(end) {
            end -= 1;
        }
        DraftForEvents {
            session_id: draft.session_id.clone(),
            locale: draft.locale.clone(),
            text_head: draft.text[..end].to_owned(),
        }
    }
}

fn record_answer(state: &AppState, caller: &Caller, draft: &DraftTicket, answer: &Suggestions) {
    record_answer_of(state, caller, DraftForEvents::of(draft), answer);
}

/// Records the answer as an event (`suggestions_shown`, or `no_suggestions` when it
/// suggested nothing) without waiting: a suggestion never waits for Redis. An answer
/// without a session id is its own session.
fn record_answer_of(
    state: &AppState,
    caller: &Caller,
    draft: DraftForEvents,
    answer: &Suggestions,
) {
    let shown_something = !answer.results.is_empty() || answer.holdout;
    let event = DeflectionEvent {
        event_id: answer.suggestion_id.clone(),
        event_type: if shown_something {
            EventType::SuggestionsShown
        } else {
            EventType::NoSuggestions
        },
        session_id: draft
            .session_id
            .unwrap_or_else(|| answer.suggestion_id.clone()),
        suggestion_id: Some(answer.suggestion_id.clone()),
        lesson_id: None,
        lesson_ids: answer
            .results
            .iter()
            .map(|result| result.id.clone())
            .collect(),
        timestamp_ms: now_milliseconds(),
        reason: None,
        channel: Some("suggest".to_owned()),
        locale: draft.locale,
        holdout: answer.holdout,
        draft: if answer.holdout {
            None
        } else {
            gap_draft(&draft.text_head)
        },
    };
    state.events.record(TenantEvent {
        tenant: caller.tenant.clone(),
        event,
    });
}

fn now_milliseconds() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

fn draft_error(problem: DraftProblem) -> ApiError {
    let code = match problem {
        DraftProblem::Empty => ErrorCode::EmptyDraft,
        _ => ErrorCode::InvalidSuggestRequest,
    };
    ApiError::new(code, problem.to_string())
}
