//! `/v1/suggest`: lessons and articles for a draft ticket, as the customer types.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use std::sync::atomic::Ordering;

use crate::auth::{Authorized, Caller, SuggestScopes};
use crate::domain::{DraftProblem, DraftTicket, SuggestRequestBody, TenantId};
use crate::error::{ApiError, ErrorCode};
use crate::events::answers::{answer_event, AnsweredDraft};
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
    let mut draft =
        DraftTicket::parse(body, state.default_limit, state.max_limit).map_err(draft_error)?;
    leave_out_completed(&state, &caller.tenant, &mut draft).await;
    let held_out = draft.session_id.as_deref().is_some_and(|session_id| {
        state
            .holdout
            .get(&caller.tenant)
            .is_held_out(&caller.tenant, session_id)
    });
    if held_out {
        let suggestions = Suggestions::held_out();
        state
            .metrics
            .suggestions_held_out
            .fetch_add(1, Ordering::Relaxed);
        let event = answer_event(&caller.tenant, AnsweredDraft::of(&draft), &suggestions);
        state.events.record(event);
        return Ok(HttpResponse::Ok().json(suggestions));
    }
    let answered_draft = AnsweredDraft::of(&draft);
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
    // Recorded without waiting: a suggestion never waits for Redis.
    state
        .events
        .record(answer_event(&caller.tenant, answered_draft, &suggestions));
    Ok(HttpResponse::Ok().json(suggestions))
}

/// Leaves out of `draft`'s results the lessons and courses its customer completed, read
/// under a short deadline (`training.completed_lookup_timeout_ms`). Returns whether they
/// are known: when Redis does not answer in time the draft is searched as it is, since a
/// suggestion never waits long for Redis.
pub(super) async fn leave_out_completed(
    state: &AppState,
    tenant: &TenantId,
    draft: &mut DraftTicket,
) -> bool {
    let Some(customer) = &draft.customer_id else {
        return true;
    };
    match state.training.quick_progress(tenant, customer).await {
        Ok(progress) => {
            draft.excluded_content = progress.completed_ids();
            true
        }
        Err(error) => {
            tracing::debug!(error = %error, "completed lessons unknown; suggesting without leaving them out");
            false
        }
    }
}

pub(super) fn draft_error(problem: DraftProblem) -> ApiError {
    let code = match problem {
        DraftProblem::Empty => ErrorCode::EmptyDraft,
        _ => ErrorCode::InvalidSuggestRequest,
    };
    ApiError::new(code, problem.to_string())
}
