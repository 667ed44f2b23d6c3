//! Redis down: suggestions keep working, events go to the spool and are counted exactly
//! once when Redis is back. These tests run their own `redis-server` (with an
//! append-only file, so killing it loses nothing it acknowledged) on a free port.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use deflect::domain::{DeflectionEvent, TenantId};
use deflect::events::spool::{append_raw_bytes, Spool};
use deflect::events::TenantEvent;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::helpers::{
    assert_api_error, event, lesson_event, milliseconds_ago, retry_after, session_event,
    spawn_app_with, spawn_app_with_redis_down, spawn_app_with_redis_down_and, TestApp,
};

/// A `redis-server` of one test.
struct OwnRedis {
    port: u16,
    directory: TempDir,
    process: Option<Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("no free port");
            listener.local_addr().unwrap().port()
        };
        let mut redis = OwnRedis {
            port,
            directory: tempfile::tempdir().expect("failed to create a directory"),
            process: None,
        };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and data directory.
    fn restart(&mut self) {
        let process = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.directory.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("failed to start redis-server (is it installed? tests/run-all.sh installs it)");
        self.process = Some(process);
        for _ in 0..250 {
            if answers_ping(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts a `redis-server` of the test's own and deflect using it, trying Redis again
/// every 50 ms after a failure (so a restarted Redis is found at once).
async fn spawn_app_with_own_redis() -> (OwnRedis, TestApp) {
    let redis = OwnRedis::start();
    let url = redis.url();
    let app = spawn_app_with(move |settings| {
        settings.redis.url = SecretString::from(url);
        settings.events.retry_interval_ms = 50;
    })
    .await;
    (redis, app)
}

/// A `redis-server` of one test that speaks only TLS, with a self-signed certificate.
struct OwnTlsRedis {
    port: u16,
    _directory: TempDir,
    process: Child,
}

impl OwnTlsRedis {
    fn start() -> OwnTlsRedis {
        let directory = tempfile::tempdir().expect("failed to create a directory");
        let certificate = directory.path().join("redis.crt");
        let key = directory.path().join("redis.key");
        let generated = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&certificate)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("failed to run openssl");
        assert!(generated.success(), "openssl could not make a certificate");
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("no free port");
            listener.local_addr().unwrap().port()
        };
        let process = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(&certificate)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--dir")
            .arg(directory.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("failed to start redis-server");
        let redis = OwnTlsRedis {
            port,
            _directory: directory,
            process,
        };
        for _ in 0..250 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server with TLS on port {port} did not start");
    }

    /// `#insecure`: the certificate is self-signed, so it is not verified.
    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/#insecure", self.port)
    }
}

impl Drop for OwnTlsRedis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// `sessions` sessions that each open a lesson and resolve: one deflection each.
fn deflecting_sessions(prefix: &str, sessions: usize) -> Vec<Value> {
    let mut events = Vec::new();
    for number in 0..sessions {
        let session = format!("{prefix}-{number}");
        events.push(lesson_event(
            "lesson_opened",
            &session,
            "l1",
            milliseconds_ago(60),
        ));
        events.push(session_event("resolved", &session, milliseconds_ago(50)));
    }
    events
}

/// Waits until acme's summary answers with `opened` at least `expected`.
async fn summary_once_counted(app: &TestApp, expected: i64) -> Value {
    app.eventually("the spool to be replayed", || async {
        let response = app
            .get_with_query(&app.acme.ops, "/v1/stats/summary", &[])
            .await;
        if response.status() != StatusCode::OK {
            return None;
        }
        let summary: Value = response.json().await.ok()?;
        let total = summary["total"].clone();
        (total["opened"].as_i64()? >= expected).then_some(total)
    })
    .await
}

#[tokio::test]
async fn every_acknowledged_event_counts_exactly_once_across_a_redis_crash() {
    // Arrange
    let (mut redis, app) = spawn_app_with_own_redis().await;
    let before_crash = deflecting_sessions("before", 20);
    let during_outage = deflecting_sessions("during", 30);
    let stored = app.record_events(&before_crash).await;

    // Act
    redis.kill();
    let spooled = app.record_events(&during_outage).await;
    let retried_during_outage = app.record_events(&before_crash).await;
    let suggest_while_down = app
        .suggest(&app.acme.suggest, &json!({"text": "reset my password"}))
        .await
        .status();
    let readiness_while_down = app.readiness().await;
    redis.restart();
    let total = summary_once_counted(&app, 50).await;
    let retried_after_recovery = app.record_events(&during_outage).await;

    // Assert
    assert_eq!(stored["spooled"], false, "{stored}");
    assert_eq!(stored["accepted"], 40, "{stored}");
    assert_eq!(spooled["spooled"], true, "{spooled}");
    assert_eq!(spooled["accepted"], 60, "{spooled}");
    assert_eq!(
        retried_during_outage["accepted"], 40,
        "{retried_during_outage}"
    );
    assert_eq!(suggest_while_down, StatusCode::OK);
    assert_eq!(
        readiness_while_down["redis"], "down",
        "{readiness_while_down}"
    );
    assert_eq!(total["opened"], 50, "{total}");
    assert_eq!(total["resolved"], 50, "{total}");
    assert_eq!(total["deflections"], 50, "{total}");
    assert_eq!(
        retried_after_recovery["duplicates"], 60,
        "{retried_after_recovery}"
    );
    let metrics = app.metrics_text().await;
    assert!(metrics.contains("deflect_event_spool_bytes 0"), "{metrics}");
}

#[tokio::test]
async fn personal_data_is_redacted_before_it_reaches_the_spool_or_redis() {
    // Arrange: a draft nothing answers (so it is kept for the gaps report) and a reason,
    // both with personal data, sent while Redis is down.
    let (mut redis, app) = spawn_app_with_own_redis().await;
    let draft = "Parrot speaks Latin, mail jane.doe@example.com or call +1 (555) 123-4567, card 4111 1111 1111 1111";
    let personal_data = [
        "jane.doe@example.com",
        "4111 1111",
        "(555) 123-4567",
        "bob@acme.example",
    ];
    redis.kill();

    // Act: suggest queues its answer's event first; the events queue behind it, so once
    // they are acknowledged (spooled), the answer's event is spooled too.
    let answer = app
        .suggestions(
            &app.acme.suggest,
            &json!({"text": draft, "session_id": "pii"}),
        )
        .await;
    let acknowledged = app
        .record_events(&[
            event(
                "not_helpful",
                "pii",
                json!({"lesson_id": "l1", "reason": "write to bob@acme.example instead"}),
            ),
            event("ticket_submitted", "pii", json!({})),
        ])
        .await;
    let spooled = std::fs::read(&app.settings.events.spool_path).unwrap();
    let spooled = String::from_utf8_lossy(&spooled).into_owned();
    redis.restart();
    let gaps = app
        .eventually("the spool to be replayed", || async {
            let response = app
                .get_with_query(&app.acme.ops, "/v1/stats/gaps", &[])
                .await;
            let gaps: Value = response.json().await.ok()?;
            (gaps["unanswered"].as_array()?.len() == 1).then_some(gaps)
        })
        .await;
    let stored = app.everything_stored_in_redis().await;

    // Assert
    assert!(answer.results.is_empty(), "{answer:?}");
    assert_eq!(acknowledged["spooled"], true, "{acknowledged}");
    assert!(
        spooled.contains("parrot speaks latin, mail [email] or call [phone], card [card]")
            && spooled.contains("write to [email] instead"),
        "the spool lacks the redacted texts: {spooled}"
    );
    assert_eq!(
        gaps["unanswered"],
        json!([{"draft": "parrot speaks latin, mail [email] or call [phone], card [card]", "count": 1}]),
        "{gaps}"
    );
    assert!(stored.contains("write to [email] instead"), "{stored}");
    for personal in personal_data {
        assert!(
            !spooled.contains(personal),
            "{personal} is spooled: {spooled}"
        );
        assert!(
            !stored.contains(personal),
            "{personal} is in redis: {stored}"
        );
    }
}

#[tokio::test]
async fn events_are_counted_in_a_redis_reached_over_tls() {
    // Arrange
    let redis = OwnTlsRedis::start();
    let url = redis.url();
    let app = spawn_app_with(move |settings| {
        settings.redis.url = SecretString::from(url);
    })
    .await;

    // Act
    let answer = app.record_events(&deflecting_sessions("tls", 2)).await;
    let total = app.summary_total().await;
    let readiness = app.readiness().await;

    // Assert
    assert_eq!(answer["spooled"], false, "{answer}");
    assert_eq!(total["deflections"], 2, "{total}");
    assert_eq!(readiness["redis"], "up", "{readiness}");
}

#[tokio::test]
async fn a_full_spool_answers_503_with_retry_after_instead_of_dropping() {
    // Arrange
    let app = spawn_app_with_redis_down_and(|settings| {
        settings.events.spool_max_bytes = 2_000;
    })
    .await;
    let fits = app.record_events(&deflecting_sessions("small", 2)).await;

    // Act
    let response = app
        .post_events(
            &app.acme.suggest,
            &json!({ "events": deflecting_sessions("large", 20) }),
        )
        .await;

    // Assert
    assert_eq!(fits["spooled"], true, "{fits}");
    assert_eq!(retry_after(&response).as_deref(), Some("30"));
    assert_api_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "event_spool_full",
    )
    .await;
}

#[tokio::test]
async fn stats_answer_503_while_redis_is_down() {
    // Arrange
    let app = spawn_app_with_redis_down().await;

    // Act
    let response = app
        .get_with_query(&app.acme.ops, "/v1/stats/summary", &[])
        .await;

    // Assert
    assert_api_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "stats_unavailable",
    )
    .await;
}

#[tokio::test]
async fn a_spool_with_a_torn_last_record_starts_and_replays_the_whole_records() {
    // Arrange: a spool left by a crash, its last record cut short.
    let directory = tempfile::tempdir().unwrap();
    let spool_path = directory.path().join("events.spool");
    write_spool(&spool_path, &deflecting_sessions("crashed", 3));
    append_raw_bytes(&spool_path, &[200, 0, 0, 0, 9, 9, 9, 9, b'{']).unwrap();

    // Act
    let path_for_app = spool_path.clone();
    let app = spawn_app_with(move |settings| {
        settings.events.spool_path = path_for_app;
    })
    .await;
    let total = summary_once_counted(&app, 3).await;

    // Assert
    assert_eq!(total["opened"], 3, "{total}");
    assert_eq!(total["deflections"], 3, "{total}");
}

#[tokio::test]
async fn a_server_that_stops_spools_the_events_its_last_suggestions_queued() {
    // Arrange: the writer lingers two seconds after a batch, so the events of the
    // suggestions after the first wait in its queue when the server is told to stop.
    let app = spawn_app_with_redis_down_and(|settings| {
        settings.events.batch_linger_ms = 2_000;
    })
    .await;
    for number in 1..=10 {
        let query = format!("how do I reset my password {number}");
        let response = app
            .suggest_by_query(&app.acme.suggest, &[("q", query.as_str())])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    // Act
    app.stop().await;

    // Assert: the stopped writer lets go of the spool, which holds every event.
    let spool_path = &app.settings.events.spool_path;
    let recovery = app
        .eventually("the event writer to let go of the spool", || async {
            Spool::open(spool_path, 1 << 20)
                .ok()
                .map(|(_, recovery)| recovery)
        })
        .await;
    assert_eq!(recovery.records, 10);
}

fn write_spool(path: &Path, events: &[Value]) {
    let (mut spool, _) = Spool::open(path, 1 << 20).unwrap();
    let now_ms = milliseconds_ago(0);
    let tenant_events: Vec<TenantEvent> = events
        .iter()
        .map(|raw| TenantEvent {
            tenant: TenantId::parse("acme").unwrap(),
            event: DeflectionEvent::parse(raw.clone(), now_ms, 6).unwrap(),
        })
        .collect();
    spool.append(&tenant_events).unwrap();
}
