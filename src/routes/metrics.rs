//! `GET /metrics`: process metrics in the Prometheus text format (scope ops).

use actix_web::{web, HttpResponse};

use crate::auth::{Authorized, OpsScopes};
use crate::startup::AppState;

pub(super) fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource("/metrics")
            .route(web::get().to(render_metrics))
            .default_service(web::to(super::method_not_allowed)),
    );
}

async fn render_metrics(
    _authorized: Authorized<OpsScopes>,
    state: web::Data<AppState>,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
