//! Several instances on one Redis serve the same content: writes through one reach the
//! others through the content log, and a new instance starts from its snapshot.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    article, assert_api_error, ndjson, retry_after, spawn_app, spawn_app_with,
    spawn_app_with_redis_down_and, spawn_instance_on, TestApp,
};

/// How long a change may take to reach another instance.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(2);

/// Starts another instance with its own index on the Redis key prefix of `first`.
async fn spawn_replica_of(first: &TestApp) -> TestApp {
    let prefix = first.settings.events.key_prefix.clone();
    spawn_app_with(move |settings| settings.events.key_prefix = prefix).await
}

/// Puts the article `export-invoices` through `app`.
async fn put_export_invoices(app: &TestApp) -> reqwest::Response {
    app.put_content(
        &app.acme.admin,
        "export-invoices",
        &article(
            "export-invoices",
            "Export invoices as PDF",
            "Open billing and choose export.",
        ),
    )
    .await
}

/// Polls `app` until `acme`'s document `id` is (or, with `present` false, is no longer)
/// found by a suggestion for `draft`; returns how long that took, failing after the limit.
pub(crate) async fn time_until_suggested(
    app: &TestApp,
    draft: &str,
    id: &str,
    present: bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let suggestions = app
            .suggestions(&app.acme.suggest, &json!({ "subject": draft }))
            .await;
        if suggestions.ids().contains(&id) == present {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < PROPAGATION_LIMIT,
            "{id} {} on the other instance within {PROPAGATION_LIMIT:?}",
            if present {
                "was not found"
            } else {
                "was still found"
            }
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_put_through_one_instance_is_suggested_by_another_within_two_seconds() {
    // Arrange
    let first = spawn_app().await;
    let second = spawn_replica_of(&first).await;

    // Act
    let response = put_export_invoices(&first).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let took =
        time_until_suggested(&second, "export invoices as pdf", "export-invoices", true).await;
    assert!(took < PROPAGATION_LIMIT, "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_and_bulk_uploads_reach_the_other_instance() {
    // Arrange
    let first = spawn_app().await;
    let second = spawn_replica_of(&first).await;
    let documents = [
        article(
            "reset-password",
            "Reset your password",
            "Use the forgot password link.",
        ),
        article(
            "invite-teammates",
            "Invite teammates",
            "Send invitations from the team page.",
        ),
    ];
    let response = first
        .post_bulk(
            &first.acme.admin,
            "application/x-ndjson",
            ndjson(&documents),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    time_until_suggested(&second, "invite teammates", "invite-teammates", true).await;
    time_until_suggested(&second, "reset my password", "reset-password", true).await;

    // Act
    let deleted = second
        .delete_content(&second.acme.admin, "reset-password")
        .await;

    // Assert
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    time_until_suggested(&first, "reset my password", "reset-password", false).await;
    let on_first = first.get_content(&first.acme.admin, "reset-password").await;
    assert_eq!(on_first.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_started_later_with_an_empty_index_catches_up_from_the_snapshot() {
    // Arrange: content written, replaced and deleted before the third instance exists.
    let first = spawn_app().await;
    first
        .put_documents(
            &first.acme.admin,
            &[
                article("export-invoices", "Export invoices", "Old text."),
                article(
                    "close-account",
                    "Close your account",
                    "Settings, then close.",
                ),
                article(
                    "export-invoices",
                    "Export invoices as PDF",
                    "Open billing and export.",
                ),
            ],
        )
        .await;
    first
        .delete_content(&first.acme.admin, "close-account")
        .await;

    // Act
    let late = spawn_replica_of(&first).await;

    // Assert
    time_until_suggested(&late, "export invoices pdf", "export-invoices", true).await;
    let replaced = late.get_content(&late.acme.admin, "export-invoices").await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let body: serde_json::Value = replaced.json().await.unwrap();
    assert_eq!(body["title"], "Export invoices as PDF");
    let deleted = late.get_content(&late.acme.admin, "close-account").await;
    assert_eq!(deleted.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn while_redis_is_down_content_writes_are_refused_and_suggestions_keep_working() {
    // Arrange: the demo catalog is served from this instance's own load.
    let app = spawn_app_with_redis_down_and(|settings| {
        settings.demo.load_when_empty = true;
        settings.demo.tenant = "acme".to_owned();
    })
    .await;

    // Act
    let write = app
        .put_content(
            &app.acme.admin,
            "export-invoices",
            &article("export-invoices", "Export invoices", "Open billing."),
        )
        .await;
    let suggestions = app
        .suggest(
            &app.acme.suggest,
            &json!({ "subject": "how do I reset my password" }),
        )
        .await;

    // Assert
    assert_eq!(retry_after(&write).as_deref(), Some("5"));
    let error = assert_api_error(
        write,
        StatusCode::SERVICE_UNAVAILABLE,
        "content_log_unavailable",
    )
    .await;
    assert!(
        error.message.contains("nothing was changed"),
        "a refused connection certainly wrote nothing: {}",
        error.message
    );
    assert_eq!(suggestions.status(), StatusCode::OK);
    let missing = app.get_content(&app.acme.admin, "export-invoices").await;
    assert_eq!(
        missing.status(),
        StatusCode::NOT_FOUND,
        "nothing was applied"
    );
}

/// Writes an index into `index_path` as an instance that stopped long ago would have left
/// it: one document the log never had, committed at a log position near the start.
async fn index_of_an_instance_stopped_long_ago(settings: &deflect::configuration::Settings) {
    let early = deflect::search::LogPosition {
        milliseconds: 1,
        sequence: 0,
    };
    index_left_behind(
        settings,
        br#"{"id": "stale-doc", "title": "Deleted while this instance was down"}"#,
        Some(early),
    )
    .await;
}

/// Writes an index into `settings.index.path` holding `document_line` (one NDJSON line)
/// of acme, committed at `position` (`None`: as an instance without the content log
/// leaves it).
async fn index_left_behind(
    settings: &deflect::configuration::Settings,
    document_line: &[u8],
    position: Option<deflect::search::LogPosition>,
) {
    use deflect::content::ContentStore;
    use deflect::search::serving::retire;
    use deflect::search::{IndexLayout, ServingIndex};

    let opened = deflect::reindex::open_current_generation(
        &IndexLayout::new(&settings.index.path),
        settings.index.writer_options(),
    )
    .unwrap();
    let serving = ServingIndex::new(opened.generation);
    let store = ContentStore::serving(serving.clone(), None);
    let document = deflect::ndjson::parse_line(document_line, 1)
        .unwrap()
        .unwrap();
    tokio::task::spawn_blocking(move || {
        let acme = deflect::domain::TenantId::parse("acme").unwrap();
        store.queue_blocking(&acme, &[document]).unwrap();
        store.commit_blocking_at(position).unwrap();
    })
    .await
    .unwrap();
    let generation = serving.current();
    drop(serving);
    retire(generation).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_position_was_trimmed_from_the_log_rebuilds_from_the_snapshot() {
    // Arrange: one stream entry per document and a short stream, so it gets trimmed.
    let first = spawn_app_with(|settings| settings.content_log.stream_max_len = 10).await;
    let documents: Vec<_> = (0..250)
        .map(|number| {
            article(
                &format!("filler-{number}"),
                &format!("Team setting {number}"),
                "Open the admin console.",
            )
        })
        .collect();
    first.put_documents(&first.acme.admin, &documents).await;
    let directory = tempfile::tempdir().unwrap();
    let mut stale_settings = first.settings.clone();
    stale_settings.index.path = directory.path().join("index");
    index_of_an_instance_stopped_long_ago(&stale_settings).await;

    // Act
    let restarted = spawn_instance_on(&first, &stale_settings.index.path).await;

    // Assert: the snapshot replaced the index; following the stream could not have
    // removed the document the log never had.
    let stale = restarted
        .get_content(&restarted.acme.admin, "stale-doc")
        .await;
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
    let first_document = restarted
        .get_content(&restarted.acme.admin, "filler-0")
        .await;
    assert_eq!(first_document.status(), StatusCode::OK);
    let last_document = restarted
        .get_content(&restarted.acme.admin, "filler-249")
        .await;
    assert_eq!(last_document.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_entry_in_the_log_is_skipped_and_later_changes_still_arrive() {
    // Arrange: an entry no deflect wrote sits in the stream.
    let first = spawn_app().await;
    let second = spawn_replica_of(&first).await;
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let stream = format!("{}{{content}}:changes", first.settings.events.key_prefix);
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("tenant")
        .arg("acme")
        .arg("changes")
        .arg("not json")
        .query_async(&mut connection)
        .await
        .unwrap();

    // Act
    let response = put_export_invoices(&first).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    time_until_suggested(&second, "export invoices as pdf", "export-invoices", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_document_in_the_snapshot_is_skipped_and_a_new_instance_gets_the_rest() {
    // Arrange: beside a document written through deflect, one no deflect could read.
    let first = spawn_app().await;
    assert_eq!(put_export_invoices(&first).await.status(), StatusCode::OK);
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let snapshot = format!("{}{{content}}:docs:acme", first.settings.events.key_prefix);
    let _: u64 = redis::cmd("HSET")
        .arg(&snapshot)
        .arg("from-the-future")
        .arg(r#"{"id": "from-the-future", "kind": "hologram"}"#)
        .query_async(&mut connection)
        .await
        .unwrap();

    // Act: a new instance rebuilds from the snapshot.
    let newcomer = spawn_replica_of(&first).await;

    // Assert
    wait_until_suggested(
        &newcomer,
        "export invoices as pdf",
        "export-invoices",
        Duration::from_secs(10),
    )
    .await;
    let readiness = reqwest::get(newcomer.url("/readyz")).await.unwrap();
    assert_eq!(readiness.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_seed_keeps_its_lock_while_it_runs_and_lets_it_expire_once_it_stops() {
    // Arrange: a seed lock held with a token, with a time to live of 300 ms.
    let app = spawn_app().await;
    let key_space = deflect::events::keys::KeySpace::new(&app.settings.events.key_prefix).unwrap();
    let log = deflect::content_log::ContentLog::new(
        &app.settings.redis.url,
        &key_space,
        &app.settings.content_log,
    );
    let lock = format!("{}{{content}}:seeding", app.settings.events.key_prefix);
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let time_to_live = Duration::from_millis(300);
    let _: () = redis::cmd("SET")
        .arg(&lock)
        .arg("token-1")
        .arg("PX")
        .arg(300)
        .query_async(&mut connection)
        .await
        .unwrap();

    // Act: the seed runs for four times the lock's time to live, then stops.
    let renewal = log.keep_seed_lock_alive("token-1", time_to_live);
    tokio::time::sleep(time_to_live * 4).await;
    let held_while_running: Option<String> = redis::cmd("GET")
        .arg(&lock)
        .query_async(&mut connection)
        .await
        .unwrap();
    drop(renewal);
    tokio::time::sleep(time_to_live * 2).await;
    let held_after: Option<String> = redis::cmd("GET")
        .arg(&lock)
        .query_async(&mut connection)
        .await
        .unwrap();

    // Assert
    assert_eq!(held_while_running.as_deref(), Some("token-1"));
    assert_eq!(held_after, None, "the lock expires once the seed stops");
}

/// Polls `app` until `acme`'s document `id` is suggested for `draft`, for up to `limit`
/// (recoveries take longer than a change's propagation).
async fn wait_until_suggested(app: &TestApp, draft: &str, id: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        let suggestions = app
            .suggestions(&app.acme.suggest, &json!({ "subject": draft }))
            .await;
        if suggestions.ids().contains(&id) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{id} was not suggested within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connection to the tests' Redis.
async fn test_redis() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// Deletes every key of the content log of `app`'s prefix, as a flush or a Redis
/// restarted without persistence would.
async fn delete_the_content_log(app: &TestApp) {
    let mut connection = test_redis().await;
    let pattern = format!("{}{{content}}:*", app.settings.events.key_prefix);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "no content log under {pattern}");
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await
        .unwrap();
}

/// Puts `document` through `app`, retrying while the content log is being recovered
/// (503), for up to 10 s.
async fn put_until_accepted(app: &TestApp, id: &str, document: &serde_json::Value) {
    let started = Instant::now();
    loop {
        let response = app.put_content(&app.acme.admin, id, document).await;
        if response.status() == StatusCode::OK {
            return;
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the write was refused for 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_content_log_is_lost_the_instances_restore_it_and_serve_the_same_content() {
    // Arrange: two instances share a log with two documents; then the log is lost.
    let first = spawn_app().await;
    let second = spawn_replica_of(&first).await;
    first
        .put_documents(
            &first.acme.admin,
            &[
                article(
                    "export-invoices",
                    "Export invoices as PDF",
                    "Open billing and export.",
                ),
                article(
                    "reset-password",
                    "Reset your password",
                    "Use the forgot password link.",
                ),
            ],
        )
        .await;
    time_until_suggested(&second, "reset my password", "reset-password", true).await;
    delete_the_content_log(&first).await;

    // Act: a write through the second instance after the loss, then a new instance.
    put_until_accepted(
        &second,
        "invite-teammates",
        &article(
            "invite-teammates",
            "Invite teammates",
            "Send invitations from the team page.",
        ),
    )
    .await;
    let recovery_limit = Duration::from_secs(15);
    wait_until_suggested(
        &first,
        "invite teammates",
        "invite-teammates",
        recovery_limit,
    )
    .await;
    let third = spawn_replica_of(&first).await;

    // Assert
    wait_until_suggested(
        &third,
        "export invoices as pdf",
        "export-invoices",
        recovery_limit,
    )
    .await;
    wait_until_suggested(
        &third,
        "reset my password",
        "reset-password",
        recovery_limit,
    )
    .await;
    wait_until_suggested(
        &third,
        "invite teammates",
        "invite-teammates",
        recovery_limit,
    )
    .await;
    wait_until_suggested(
        &second,
        "export invoices as pdf",
        "export-invoices",
        recovery_limit,
    )
    .await;
    let lost = first.metric("deflect_content_log_lost_total").await
        + second.metric("deflect_content_log_lost_total").await;
    assert!(lost >= 1.0, "the loss was counted: {lost}");
}

/// Loads `export-invoices` into a new index with the content log off, then serves that
/// index with the log on under `settings`' key prefix; returns the instance and the
/// directory holding its index.
async fn serve_with_the_log_an_index_loaded_without_it(
    settings: &deflect::configuration::Settings,
) -> (TestApp, tempfile::TempDir) {
    let directory = tempfile::tempdir().unwrap();
    let mut settings_before = settings.clone();
    settings_before.index.path = directory.path().join("index");
    index_left_behind(
        &settings_before,
        br#"{"id": "export-invoices", "title": "Export invoices as PDF", "body": "Open billing and export."}"#,
        None,
    )
    .await;
    let index_path = settings_before.index.path.clone();
    let prefix = settings_before.events.key_prefix.clone();
    let with_log = spawn_app_with(move |settings| {
        settings.events.key_prefix = prefix;
        settings.index.path = index_path;
    })
    .await;
    (with_log, directory)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_the_log_on_for_an_index_with_documents_puts_them_in_the_log() {
    // Arrange: an index loaded while the content log was off.
    let settings = spawn_app().await.settings.clone();

    // Act: the same index with the log on, then a new instance on that log.
    let (with_log, _directory) = serve_with_the_log_an_index_loaded_without_it(&settings).await;
    let newcomer = spawn_replica_of(&with_log).await;

    // Assert
    wait_until_suggested(
        &newcomer,
        "export invoices as pdf",
        "export-invoices",
        Duration::from_secs(10),
    )
    .await;
    let on_the_first = with_log
        .get_content(&with_log.acme.admin, "export-invoices")
        .await;
    assert_eq!(on_the_first.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_instance_already_following_the_log_gets_the_documents_another_instance_seeds_it_with(
) {
    // Arrange: an empty instance follows an empty log; an index loaded while the log was
    // off waits to be served with it.
    let early = spawn_app().await;

    // Act: the loaded index starts with the log on, which seeds the log with it.
    let (_seeder, _directory) =
        serve_with_the_log_an_index_loaded_without_it(&early.settings).await;

    // Assert: the seed's documents are only in the snapshot; the early instance, which
    // read past the seed's marker, must rebuild from it rather than serve nothing.
    wait_until_suggested(
        &early,
        "export invoices as pdf",
        "export-invoices",
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_larger_than_an_entry_is_appended_as_bounded_entries_that_all_arrive() {
    // Arrange
    let first = spawn_app_with(|settings| settings.content_log.max_changes_per_entry = 2).await;
    let second = spawn_replica_of(&first).await;
    let documents: Vec<_> = (0..5)
        .map(|number| {
            article(
                &format!("team-{number}"),
                &format!("Team setting number{number}"),
                "Open the admin console.",
            )
        })
        .collect();

    // Act
    let response = first
        .post_bulk(
            &first.acme.admin,
            "application/x-ndjson",
            ndjson(&documents),
        )
        .await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let mut connection = test_redis().await;
    let stream = format!("{}{{content}}:changes", first.settings.events.key_prefix);
    let entries: u64 = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(entries, 3, "5 changes in entries of at most 2");
    for number in [0, 4] {
        let id = format!("team-{number}");
        time_until_suggested(&second, &format!("team setting number{number}"), &id, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_restarted_on_an_index_that_applied_the_log_is_ready_while_redis_is_down() {
    // Arrange: an index that applied a log position, left behind by a stopped instance.
    let first = spawn_app().await;
    let directory = tempfile::tempdir().unwrap();
    let mut stopped_settings = first.settings.clone();
    stopped_settings.index.path = directory.path().join("index");
    index_of_an_instance_stopped_long_ago(&stopped_settings).await;
    let index_path = stopped_settings.index.path.clone();

    // Act
    let restarted =
        spawn_app_with_redis_down_and(move |settings| settings.index.path = index_path).await;
    let report = restarted.readiness().await;

    // Assert
    assert_eq!(report["status"], "ready", "{report}");
    assert_eq!(report["redis"], "down", "{report}");
    assert_eq!(report["index"]["documents"], 1, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_redis_took_but_never_answered_is_not_reported_as_unchanged() {
    // Arrange: a "Redis" that accepts connections and reads commands but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            held.push(connection);
        }
    });
    let app = spawn_app_with(move |settings| {
        settings.redis.url =
            secrecy::SecretString::from(format!("redis://127.0.0.1:{silent_port}"));
        settings.content_log.redis_timeout_ms = 300;
    })
    .await;

    // Act
    let write = put_export_invoices(&app).await;

    // Assert
    let error = assert_api_error(
        write,
        StatusCode::SERVICE_UNAVAILABLE,
        "content_log_unavailable",
    )
    .await;
    assert!(
        error.message.contains("may or may not have been saved"),
        "{}",
        error.message
    );
    assert!(
        !error.message.contains("nothing was changed"),
        "{}",
        error.message
    );
}
