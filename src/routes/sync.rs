//! `POST /v1/sync`: runs the content sync of the caller's tenant now (scope admin) and
//! answers with what each source's run did. `?source=zendesk|freshdesk|catalog` runs
//! one source, `?full=true` lists everything (removing what the source deleted). The
//! runs go on when the client disconnects (they are a task of their own), so a run is
//! never cut off between its commit and its cursor, nor left holding its lock.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::auth::{AdminScopes, Authorized};
use crate::error::{ApiError, ErrorCode};
use crate::startup::AppState;
use crate::sync::{SourceKind, SyncError, SyncSummary};
use crate::telemetry::spawn_in_span;

pub(super) fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource("/v1/sync")
            .route(web::post().to(run_sync))
            .default_service(web::to(super::method_not_allowed)),
    );
}

#[derive(Debug, Deserialize)]
struct SyncQuery {
    source: Option<String>,
    #[serde(default)]
    full: bool,
}

#[derive(Serialize)]
struct SyncAnswer {
    summaries: Vec<SyncSummary>,
}

#[tracing::instrument(name = "run sync", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn run_sync(
    authorized: Authorized<AdminScopes>,
    state: web::Data<AppState>,
    query: web::Query<SyncQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = authorized.caller.tenant;
    let only = match query.source.as_deref() {
        None => None,
        Some(raw) => Some(SourceKind::parse(raw).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidQueryParameter,
                format!("source: `{raw}` is not one of zendesk, freshdesk, catalog"),
            )
        })?),
    };
    let sources = state.sync.sources_of(&tenant, only).map_err(sync_error)?;
    // A task of its own: a client that disconnects drops this handler, not the run.
    let service = state.sync.clone();
    let full = query.full;
    let summaries = spawn_in_span(async move {
        let mut summaries = Vec::with_capacity(sources.len());
        for source in sources {
            summaries.push(service.sync(&tenant, source, full).await?);
        }
        Ok::<_, SyncError>(summaries)
    })
    .await
    .map_err(|error| ApiError::internal("the sync task failed", &error))?
    .map_err(sync_error)?;
    Ok(HttpResponse::Ok().json(SyncAnswer { summaries }))
}

fn sync_error(error: SyncError) -> ApiError {
    let message = crate::error::error_chain(&error);
    match error {
        SyncError::NotConfigured { .. } => {
            ApiError::new(ErrorCode::SyncSourceNotConfigured, message)
        }
        SyncError::InProgress(_) => ApiError::new(ErrorCode::SyncInProgress, message),
        SyncError::Source { .. } => ApiError::new(
            ErrorCode::SyncSourceFailed,
            format!("{message}; the index and the cursor are unchanged"),
        ),
        SyncError::State(_) => ApiError::new(
            ErrorCode::SyncUnavailable,
            "the sync state cannot be reached (redis); retry shortly",
        ),
        SyncError::Store(store_error) => super::content::store_error(store_error),
    }
}
