//! `/v1/suggest`: lessons and articles for a draft ticket, as the customer types.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::auth::{Authorized, Caller, SuggestScopes};
use crate::domain::{DraftProblem, DraftTicket, SuggestRequestBody};
use crate::error::{ApiError, ErrorCode};

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
    Ok(HttpResponse::Ok().json(suggestions))
}

fn draft_error(problem: DraftProblem) -> ApiError {
    let code = match problem {
        DraftProblem::Empty => ErrorCode::EmptyDraft,
        _ => ErrorCode::InvalidSuggestRequest,
    };
    ApiError::new(code, problem.to_string())
}
