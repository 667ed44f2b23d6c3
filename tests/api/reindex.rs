//! `POST /v1/admin/reindex` (operators only) and startup on an unreadable index:
//! rebuilds into a new generation while suggestions keep being answered, and a rebuild
//! that the content log's trimming outran starts over instead of missing changes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use deflect::configuration::load_settings;
use deflect::content::ContentChange;
use deflect::content_log::ContentLog;
use deflect::domain::TenantId;
use deflect::events::keys::KeySpace;
use deflect::reindex::{catch_up_generation, CatchUp};
use deflect::search::writer::WriterOptions;
use deflect::search::{ContentIndex, IndexWriterHandle, LogPosition, ServedGeneration};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::{
    article, assert_api_error, delete_redis_keys_under, ndjson, spawn_app_with,
    spawn_app_with_demo, spawn_instance_on, TestApp, OPERATOR_KEY,
};

/// Documents loaded before a rebuild, so that it takes a moment.
const FILLER_DOCUMENTS: usize = 1_500;

async fn post_reindex(app: &TestApp, key: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/admin/reindex"))
        .bearer_auth(key)
        .send()
        .await
        .expect("failed to send the reindex request")
}

/// Returns the numbered generation directories of the index of `app`.
fn generation_directories(index_path: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(index_path.join("generations")) else {
        return Vec::new();
    };
    entries.map(|entry| entry.unwrap().path()).collect()
}

/// Suggests `draft` over and over until `stop` is set; returns how many answers there
/// were and the statuses of those that were not 200 with `expected_id` among the results.
async fn suggest_until(
    app: &TestApp,
    draft: &str,
    expected_id: &str,
    stop: Arc<AtomicBool>,
) -> (usize, Vec<String>) {
    let mut answers = 0;
    let mut failures = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let response = app
            .suggest(&app.acme.suggest, &json!({ "subject": draft }))
            .await;
        answers += 1;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let found = body["results"]
            .as_array()
            .is_some_and(|results| results.iter().any(|result| result["id"] == expected_id));
        if status != StatusCode::OK || !found {
            failures.push(format!("{status}: {body}"));
        }
    }
    (answers, failures)
}

/// Uploads [`FILLER_DOCUMENTS`] articles for acme through `app`.
async fn upload_filler_documents(app: &TestApp) {
    let filler: Vec<Value> = (0..FILLER_DOCUMENTS)
        .map(|number| {
            article(
                &format!("filler-{number}"),
                &format!("Configure team setting {number}"),
                "Open the admin console, choose teams and change the setting.",
            )
        })
        .collect();
    let uploaded = app
        .post_bulk(&app.acme.admin, "application/x-ndjson", ndjson(&filler))
        .await;
    assert_eq!(uploaded.status(), StatusCode::OK);
}

async fn suggestions_keep_being_answered_during_a_reindex(app: TestApp) {
    // Arrange
    app.put_documents(
        &app.acme.admin,
        &[article(
            "export-invoices",
            "Export invoices as PDF",
            "Open billing and choose export.",
        )],
    )
    .await;
    upload_filler_documents(&app).await;
    let before = generation_directories(&app.settings.index.path);
    let stop = Arc::new(AtomicBool::new(false));

    // Act: suggestions run all through the rebuild, and a while after it.
    let (suggesting, reindexed) = tokio::join!(
        suggest_until(
            &app,
            "export invoices as pdf",
            "export-invoices",
            stop.clone()
        ),
        async {
            let response = post_reindex(&app, OPERATOR_KEY).await;
            let status = response.status();
            let report: Value = response.json().await.unwrap();
            let written_after = app
                .put_content(
                    &app.acme.admin,
                    "close-account",
                    &article(
                        "close-account",
                        "Close your account",
                        "Settings, then close.",
                    ),
                )
                .await
                .status();
            stop.store(true, Ordering::SeqCst);
            (status, report, written_after)
        }
    );

    // Assert
    let (answers, failures) = suggesting;
    let (status, report, written_after) = reindexed;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(
        answers >= 3,
        "only {answers} suggestions were asked during the rebuild"
    );
    assert!(
        failures.is_empty(),
        "{} of {answers} failed: {failures:?}",
        failures.len()
    );
    assert_eq!(written_after, StatusCode::OK);
    let after = generation_directories(&app.settings.index.path);
    assert_eq!(after.len(), 1, "the old generation is removed: {after:?}");
    assert_ne!(before, after);
    assert_eq!(
        report["generation"].as_u64(),
        after[0].file_name().unwrap().to_str().unwrap().parse().ok()
    );
    assert!(report["documents"].as_u64().unwrap() > 0, "{report}");
    let found = app.get_content(&app.acme.admin, "close-account").await;
    assert_eq!(found.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggestions_keep_being_answered_while_the_index_is_rebuilt_from_the_content_log() {
    suggestions_keep_being_answered_during_a_reindex(spawn_app_with_demo().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_content_log_a_reindex_rebuilds_from_the_stored_documents() {
    let app = spawn_app_with(|settings| {
        settings.content_log.enabled = false;
        settings.demo.load_when_empty = true;
        settings.demo.tenant = "acme".to_owned();
    })
    .await;
    suggestions_keep_being_answered_during_a_reindex(app).await;
}

#[tokio::test]
async fn a_reindex_takes_an_operator_key_and_refuses_every_tenant_key() {
    // Arrange
    let app = spawn_app_with(|_| {}).await;

    // Act
    let with_admin_key = post_reindex(&app, &app.acme.admin).await;
    let with_public_key = post_reindex(&app, &app.acme.suggest).await;
    let with_unknown_key = post_reindex(&app, "not-a-key-of-anybody").await;
    let with_operator_key = post_reindex(&app, OPERATOR_KEY).await;

    // Assert
    let refused =
        assert_api_error(with_admin_key, StatusCode::FORBIDDEN, "insufficient_scope").await;
    assert!(
        refused.message.contains("operator key"),
        "{}",
        refused.message
    );
    assert_api_error(with_public_key, StatusCode::FORBIDDEN, "insufficient_scope").await;
    assert_api_error(
        with_unknown_key,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    assert_eq!(with_operator_key.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reindex_whose_client_disconnects_midway_still_switches_and_removes_the_old_generation() {
    // Arrange: enough documents that the rebuild takes a moment.
    let app = spawn_app_with(|_| {}).await;
    upload_filler_documents(&app).await;
    let before = generation_directories(&app.settings.index.path);

    // Act: the client goes away while the rebuild runs.
    app.post_then_reset_the_connection(
        "/v1/admin/reindex",
        OPERATOR_KEY,
        std::time::Duration::from_millis(50),
    )
    .await;

    // Assert: the rebuild went on to the switch, and left one generation.
    let probe = || async {
        let now = generation_directories(&app.settings.index.path);
        (now.len() == 1 && now != before).then_some(())
    };
    app.eventually("the rebuild the client left", probe).await;
    let next = post_reindex(&app, OPERATOR_KEY).await;
    assert_eq!(next.status(), StatusCode::OK);
}

/// A content log on the shared Redis under a fresh key prefix whose stream keeps about
/// `stream_max_len` entries, and that prefix.
fn content_log_keeping(stream_max_len: u64) -> (ContentLog, String) {
    let config_directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = load_settings(&config_directory, None).unwrap();
    settings.content_log.stream_max_len = stream_max_len;
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let url = SecretString::from("redis://127.0.0.1:6379".to_owned());
    let log = ContentLog::new(
        &url,
        &KeySpace::new(&prefix).unwrap(),
        &settings.content_log,
    );
    (log, prefix)
}

/// An empty generation with its writer running, in `directory`.
fn empty_generation(directory: &Path) -> ServedGeneration {
    let index = ContentIndex::open_or_create(directory).unwrap();
    let options = WriterOptions {
        memory_budget_bytes: 15 * 1024 * 1024,
        threads: 1,
        max_operations_per_commit: 10_000,
        bulk_load: false,
    };
    let (writer, writer_thread) = IndexWriterHandle::start(&index, options).unwrap();
    ServedGeneration {
        number: 1,
        index,
        writer: Some(writer),
        writer_thread: Some(writer_thread),
    }
}

/// Appends one batch upserting an article `id` of acme to `log`.
async fn append_article(log: &ContentLog, id: &str) -> LogPosition {
    let line = format!(r#"{{"id": "{id}", "title": "Team setting {id}"}}"#);
    let document = deflect::ndjson::parse_line(line.as_bytes(), 1)
        .unwrap()
        .unwrap();
    let acme = TenantId::parse("acme").unwrap();
    log.append(&acme, vec![ContentChange::Upsert(document)])
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_a_new_generation_from_a_position_the_log_was_trimmed_past_reports_it_instead_of_skipping_changes(
) {
    // Arrange: a rebuild noted a position, then so many changes arrived that the stream
    // was trimmed past it (as during a long snapshot read).
    let (log, prefix) = content_log_keeping(10);
    append_article(&log, "before").await;
    let noted = log.head().await.unwrap();
    for number in 0..250 {
        append_article(&log, &format!("during-{number}")).await;
    }
    let directory = tempfile::tempdir().unwrap();
    let generation = empty_generation(directory.path());

    // Act
    let outrun = catch_up_generation(&log, &generation, noted).await.unwrap();
    let recent = log.head().await.unwrap();
    let after_recent = append_article(&log, "after").await;
    let caught_up = catch_up_generation(&log, &generation, recent)
        .await
        .unwrap();

    // Assert: the trimmed changes were not skipped silently, and a position the stream
    // still reaches is caught up as usual.
    assert_eq!(outrun, CatchUp::TrimmedPast(noted));
    assert_eq!(caught_up, CatchUp::Reached(after_recent));
    assert_eq!(generation.index.num_documents(), 1);
    delete_redis_keys_under(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_index_at_startup_is_moved_aside_and_rebuilt_from_the_content_log() {
    // Arrange: an instance wrote a document, then its index got garbage in meta.json.
    let first = spawn_app_with(|_| {}).await;
    first
        .put_documents(
            &first.acme.admin,
            &[article(
                "export-invoices",
                "Export invoices as PDF",
                "Open billing and export.",
            )],
        )
        .await;
    first.stop().await;
    let index_path = first.settings.index.path.clone();
    let generations = generation_directories(&index_path);
    assert_eq!(generations.len(), 1, "{generations:?}");
    std::fs::write(generations[0].join("meta.json"), "this is not json").unwrap();

    // Act
    let restarted = spawn_instance_on(&first, &index_path).await;

    // Assert
    let found = restarted
        .get_content(&restarted.acme.admin, "export-invoices")
        .await;
    assert_eq!(found.status(), StatusCode::OK);
    let set_aside: Vec<_> = generation_directories(&index_path)
        .into_iter()
        .filter(|path| path.to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(
        set_aside.len(),
        1,
        "the unreadable generation is kept aside"
    );
}
