//! `/v1/admin`: operations on the whole instance, for operator keys
//! (`[[operator.api_keys]]`). A rebuild covers every tenant's content, so no tenant's
//! key, not even an admin one, may start it; and it rebuilds the index of the instance
//! that answers the request only (each instance has its own).

use actix_web::{web, HttpResponse};

use crate::auth::Operator;
use crate::error::{ApiError, ErrorCode};
use crate::reindex::{RebuildError, WhenBusy};
use crate::startup::AppState;
use crate::telemetry::spawn_in_span;

pub(super) fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource("/v1/admin/reindex")
            .route(web::post().to(reindex))
            .default_service(web::to(super::method_not_allowed)),
    );
}

/// Rebuilds this instance's index into a new generation and switches to it; answers
/// when done, with what the rebuild did. Suggestions keep being answered during the
/// rebuild, and a client that disconnects does not stop it (it is a task of its own).
#[tracing::instrument(name = "reindex", skip_all, fields(operator = %operator.key_name))]
async fn reindex(operator: Operator, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rebuild_state = state.clone();
    let rebuilt = spawn_in_span(async move {
        rebuild_state
            .reindexer
            .rebuild_serving(&rebuild_state.store, WhenBusy::Refuse)
            .await
    })
    .await
    .map_err(|error| ApiError::internal("the index rebuild task failed", &error))?;
    match rebuilt {
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
