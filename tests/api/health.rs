//! `/healthz` and `/readyz`, and the threads that answer them.

use deflect::thread_scheduling::WorkerScheduling;
use reqwest::StatusCode;

use crate::helpers::{
    article, spawn_app, spawn_app_with, spawn_app_with_demo, spawn_app_with_redis_down_and,
};

#[tokio::test]
async fn healthz_answers_200_without_a_key() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn readyz_reports_an_open_index_and_redis_up_when_redis_answers() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let report = app.readiness().await;

    // Assert
    assert_eq!(report["status"], "ready", "{report}");
    assert_eq!(report["index"]["status"], "open", "{report}");
    assert_eq!(report["index"]["documents"], 0, "{report}");
    assert!(
        report["index"]["schema_version"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert_eq!(report["redis"], "up", "{report}");
}

#[tokio::test]
async fn readyz_stays_ready_and_reports_redis_down_when_redis_does_not_answer_and_the_content_log_is_off(
) {
    // Arrange
    let app = spawn_app_with_redis_down_and(|settings| settings.content_log.enabled = false).await;

    // Act
    let report = app.readiness().await;

    // Assert
    assert_eq!(report["status"], "ready", "{report}");
    assert_eq!(report["index"]["status"], "open", "{report}");
    assert_eq!(report["redis"], "down", "{report}");
    assert_eq!(report["content"], "local only", "{report}");
}

#[tokio::test]
async fn a_new_instance_is_not_ready_while_it_cannot_reach_the_content_log() {
    // Arrange: a new, empty index and a Redis port nothing listens on.
    let app = spawn_app_with_redis_down_and(|_| {}).await;

    // Act
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let report: serde_json::Value = response.json().await.unwrap();
    assert_eq!(report["status"], "starting", "{report}");
    assert_eq!(report["content"], "waiting for the content log", "{report}");
    assert_eq!(report["redis"], "down", "{report}");
    assert_eq!(report["index"]["status"], "open", "{report}");
}

#[tokio::test]
async fn a_new_instance_is_ready_once_it_caught_up_with_the_content_log() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let report = app.readiness().await;

    // Assert
    assert_eq!(report["status"], "ready", "{report}");
    assert_eq!(report["content"], "following the content log", "{report}");
}

#[tokio::test]
async fn readyz_counts_the_documents_of_the_index() {
    // Arrange
    let app = spawn_app().await;
    app.put_documents(
        &app.acme.admin,
        &[
            article("a-1", "First", "one"),
            article("a-2", "Second", "two"),
        ],
    )
    .await;
    app.put_documents(&app.globex.admin, &[article("g-1", "Third", "three")])
        .await;

    // Act
    let report = app.readiness().await;

    // Assert
    assert_eq!(report["index"]["documents"], 3, "{report}");
}

#[tokio::test]
async fn readyz_counts_the_demo_catalog_once_it_is_loaded() {
    // Arrange
    let app = spawn_app_with_demo().await;
    let catalog_lines = include_str!("../../src/demo/catalog.ndjson")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .count();

    // Act
    let report = app.readiness().await;

    // Assert
    assert_eq!(
        report["index"]["documents"].as_u64(),
        Some(catalog_lines as u64),
        "{report}"
    );
}

/// The scheduling policy of each thread of this process whose name starts with `prefix`
/// (`/proc/self/task/*/stat`, field 41).
#[cfg(target_os = "linux")]
fn scheduling_policies_of_threads(prefix: &str) -> Vec<libc::c_int> {
    let mut policies = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread has ended
        };
        let (Some(name_start), Some(name_end)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[name_start + 1..name_end].starts_with(prefix) {
            continue;
        }
        // The fields after the name start at field 3; the policy is field 41.
        let policy = stat[name_end + 1..].split_whitespace().nth(38).unwrap();
        policies.push(policy.parse().unwrap());
    }
    policies
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn with_batch_worker_scheduling_the_http_workers_run_as_batch_threads() {
    // Arrange
    let app = spawn_app_with(|settings| {
        settings.server.worker_scheduling = WorkerScheduling::Batch;
    })
    .await;

    // Act: answered by a worker that has started
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let policies = scheduling_policies_of_threads("actix-server wo");
    assert!(policies.contains(&libc::SCHED_BATCH), "{policies:?}");
}
