//! `/v1/admin`: operations on the whole instance, for admin keys.

use actix_web::{web, HttpResponse};

use crate::auth::{AdminScopes, Authorized};
use crate::error::{ApiError, ErrorCode};
use crate::reindex::{RebuildError, WhenBusy};
use crate::startup::AppState;

pub(super) fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource("/v1/admin/reindex")
            .route(web::post().to(reindex))
            .default_service(web::to(super::method_not_allowed)),
    );
}

/// Rebuilds the index into a new generation and switches to it; answers when done,
/// with what the rebuild did. Suggestions keep being answered during the rebuild.
#[tracing::instrument(name = "reindex", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn reindex(
    authorized: Authorized<AdminScopes>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let _ = authorized;
    match state
        .reindexer
        .rebuild_serving(&state.store, WhenBusy::Refuse)
        .await
    {
        Ok(report) => Ok(HttpResponse::Ok().json(report)),
        Err(RebuildError::InProgress) => Err(ApiError::new(
            ErrorCode::ReindexInProgress,
            "a rebuild of the index is already running; wait for it to finish",
        )),
        Err(RebuildError::Log(error)) => {
            tracing::warn!(%error, "reindex refused: the content log is unavailable");
            Err(ApiError::new(
                ErrorCode::ContentLogUnavailable,
                "the index is rebuilt from the content log in redis, which does not answer; retry shortly",
            ))
        }
        Err(error) => Err(ApiError::internal("index rebuild failed", &error)),
    }
}
