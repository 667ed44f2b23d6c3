//! Liveness and readiness for load balancers and orchestrators.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::startup::AppState;

pub(super) fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/healthz")
                .route(web::get().to(report_alive))
                .default_service(web::to(super::method_not_allowed)),
        )
        .service(
            web::resource("/readyz")
                .route(web::get().to(report_readiness))
                .default_service(web::to(super::method_not_allowed)),
        );
}

async fn report_alive() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "alive"}))
}

/// What `/readyz` reports.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ReadinessReport {
    pub status: String,
    pub index: IndexReport,
    /// Reported, never required: suggestions work without Redis.
    pub redis: String,
}

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct IndexReport {
    pub status: String,
    pub documents: u64,
    pub schema_version: u32,
}

/// Ready when the index is open; Redis is reported as a field without failing readiness.
async fn report_readiness(state: web::Data<AppState>) -> HttpResponse {
    let redis_is_reachable = state.redis_probe.is_reachable().await;
    let index = state.store.index();
    HttpResponse::Ok().json(ReadinessReport {
        status: "ready".to_owned(),
        index: IndexReport {
            status: "open".to_owned(),
            documents: index.num_documents(),
            schema_version: index.schema_version(),
        },
        redis: if redis_is_reachable { "up" } else { "down" }.to_owned(),
    })
}
