//! Liveness and readiness for load balancers and orchestrators.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::content::ContentReadiness;
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
    /// `ready`, or `starting` while a new instance has not caught up with the content log.
    pub status: String,
    pub index: IndexReport,
    /// Reported, never required by itself: suggestions work without Redis.
    pub redis: String,
    /// `following the content log`, `waiting for the content log` (not ready: this index
    /// has never applied the log), or `local only` (the content log is off).
    pub content: String,
}

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct IndexReport {
    pub status: String,
    pub documents: u64,
    pub schema_version: u32,
}

/// Ready when the index is open and serves the content it should: with the content log
/// on, an index that has never applied the log (a new pod, an empty volume) is not ready
/// until its follower caught up once, or a load balancer would send suggestions to an
/// empty index while Redis is away. An index that applied the log before serves it while
/// Redis is away. Redis is reported as a field without failing readiness by itself.
async fn report_readiness(state: web::Data<AppState>) -> HttpResponse {
    let redis_is_reachable = state.redis_probe.is_reachable().await;
    let index = state.store.index();
    let readiness = state.store.readiness();
    let is_ready = readiness != ContentReadiness::WaitingForTheLog;
    let report = ReadinessReport {
        status: if is_ready { "ready" } else { "starting" }.to_owned(),
        index: IndexReport {
            status: "open".to_owned(),
            documents: index.num_documents(),
            schema_version: index.schema_version(),
        },
        redis: if redis_is_reachable { "up" } else { "down" }.to_owned(),
        content: match readiness {
            ContentReadiness::LocalOnly => "local only",
            ContentReadiness::FollowingTheLog => "following the content log",
            ContentReadiness::WaitingForTheLog => "waiting for the content log",
        }
        .to_owned(),
    };
    if is_ready {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}
