//! Starts a real deflect for one test and talks to it over HTTP.
//!
//! Every [`TestApp`] has its own temporary index, listens on a free port and knows two
//! fresh tenants, `acme` and `globex`, each with one key per scope, and one operator key
//! ([`OPERATOR_KEY`]). Nothing is shared
//! between tests except the Redis server, which the service only pings.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use deflect::configuration::{
    load_settings, ApiKeySettings, LogFormat, OperatorKeySettings, Settings, TenantSettings,
};
use deflect::startup::Application;
use deflect::telemetry::init_telemetry;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tempfile::TempDir;

/// The one browser origin both test tenants allow.
pub const WIDGET_ORIGIN: &str = "https://help.acme.example";

/// An origin no tenant allows.
pub const FOREIGN_ORIGIN: &str = "https://evil.example";

/// The one operator key of every test instance (`[[operator.api_keys]]`).
pub const OPERATOR_KEY: &str = "test-operator-key-0123456789";

/// Logs go nowhere unless `TEST_LOG` is set (then debug lines go to stderr).
static TELEMETRY: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        init_telemetry(LogFormat::Pretty, "debug");
    }
});

/// The API keys of one tenant, one per scope.
pub struct TenantKeys {
    pub tenant: &'static str,
    pub suggest: String,
    pub agent: String,
    pub admin: String,
    pub ops: String,
}

impl TenantKeys {
    fn new(tenant: &'static str) -> TenantKeys {
        TenantKeys {
            tenant,
            suggest: format!("{tenant}-suggest-test-key"),
            agent: format!("{tenant}-agent-test-key"),
            admin: format!("{tenant}-admin-test-key"),
            ops: format!("{tenant}-ops-test-key"),
        }
    }

    fn settings(&self) -> TenantSettings {
        let key = |scope: &str, key: &str| ApiKeySettings {
            name: format!("{} {scope}", self.tenant),
            key: SecretString::from(key.to_owned()),
            scopes: vec![scope.to_owned()],
        };
        TenantSettings {
            allowed_origins: vec![WIDGET_ORIGIN.to_owned()],
            api_keys: vec![
                key("suggest", &self.suggest),
                key("agent", &self.agent),
                key("admin", &self.admin),
                key("ops", &self.ops),
            ],
            cost_per_ticket: None,
            ..TenantSettings::default()
        }
    }
}

/// A running deflect and a client for it.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub acme: TenantKeys,
    pub globex: TenantKeys,
    /// The settings the application was built with.
    pub settings: Settings,
    /// The running instance (another one after [`TestApp::start_again`]).
    server: Mutex<ServerHandle>,
    _index_directory: TempDir,
    /// Index and spool directories of instances started again.
    restart_directories: Mutex<Vec<TempDir>>,
}

/// Starts deflect with an empty index and Redis at 127.0.0.1:6379.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts deflect with the bundled demo catalog loaded into tenant `acme` (so acme's
/// keys search it, and globex still has nothing).
pub async fn spawn_app_with_demo() -> TestApp {
    spawn_app_with(|settings| {
        settings.demo.load_when_empty = true;
        settings.demo.tenant = "acme".to_owned();
    })
    .await
}

/// Starts deflect with the demo catalog in tenant `acme` and the demo page at `/demo`,
/// which embeds the widget with acme's public key; `configure` may change more.
pub async fn spawn_app_with_demo_page_and(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(|settings| {
        settings.demo.load_when_empty = true;
        settings.demo.tenant = "acme".to_owned();
        settings.demo.page = true;
        configure(settings);
    })
    .await
}

/// Starts deflect with a Redis URL on which nothing listens.
pub async fn spawn_app_with_redis_down() -> TestApp {
    spawn_app_with_redis_down_and(|_| {}).await
}

/// Starts deflect with a Redis URL on which nothing listens, then whatever `configure`
/// changes.
pub async fn spawn_app_with_redis_down_and(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let unused_port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("failed to find a free port");
        listener.local_addr().unwrap().port()
    };
    spawn_app_with(move |settings| {
        settings.redis.url = SecretString::from(format!("redis://127.0.0.1:{unused_port}"));
        configure(settings);
    })
    .await
}

/// Starts another instance on the Redis key prefix of `first`, with its index in
/// `index_path` (an instance restarted on an index left behind).
pub async fn spawn_instance_on(first: &TestApp, index_path: &Path) -> TestApp {
    let prefix = first.settings.events.key_prefix.clone();
    let index_path = index_path.to_owned();
    spawn_app_with(move |settings| {
        settings.events.key_prefix = prefix;
        settings.index.path = index_path;
    })
    .await
}

/// Starts deflect with the test defaults, then whatever `configure` changes.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    LazyLock::force(&TELEMETRY);
    let index_directory = tempfile::tempdir().expect("failed to create a temporary directory");
    let acme = TenantKeys::new("acme");
    let globex = TenantKeys::new("globex");
    let mut settings = test_settings(index_directory.path(), &acme, &globex);
    configure(&mut settings);

    let application = Application::build(settings.clone())
        .await
        .expect("failed to build the application");
    let port = application.port();
    let server = application.server_handle();
    tokio::spawn(application.run_until_stopped());

    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("failed to build the http client"),
        acme,
        globex,
        settings,
        server: Mutex::new(server),
        _index_directory: index_directory,
        restart_directories: Mutex::new(Vec::new()),
    }
}

/// The settings of a test application with its files under `directory`: the bundled
/// config, port 0, one worker, Redis at 127.0.0.1:6379 under a fresh key prefix, and the
/// tenants `acme` and `globex`.
fn test_settings(directory: &Path, acme: &TenantKeys, globex: &TenantKeys) -> Settings {
    let config_directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings =
        load_settings(&config_directory, None).expect("failed to load the bundled settings");
    settings.server.port = 0;
    settings.server.workers = 1;
    settings.index.path = directory.join("index");
    settings.index.writer_memory_mb = 15;
    settings.index.writer_threads = 1;
    settings.redis.url = SecretString::from("redis://127.0.0.1:6379".to_owned());
    settings.events.key_prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    settings.events.spool_path = directory.join("spool").join("events.spool");
    settings.demo.load_when_empty = false;
    settings.demo.page = false;
    settings.operator.api_keys = vec![OperatorKeySettings {
        name: "test operator".to_owned(),
        key: SecretString::from(OPERATOR_KEY.to_owned()),
    }];
    settings.tenants.clear();
    settings
        .tenants
        .insert(acme.tenant.to_owned(), acme.settings());
    settings
        .tenants
        .insert(globex.tenant.to_owned(), globex.settings());
    settings
}

/// Builds (without starting) an application with the test settings changed by
/// `configure`, and returns why it refused to build; fails the test if it built.
pub async fn build_error_with(configure: impl FnOnce(&mut Settings)) -> String {
    let directory = tempfile::tempdir().expect("failed to create a temporary directory");
    let mut settings = test_settings(
        directory.path(),
        &TenantKeys::new("acme"),
        &TenantKeys::new("globex"),
    );
    configure(&mut settings);
    match Application::build(settings).await {
        Ok(_) => panic!("the application built with settings it should refuse"),
        Err(error) => format!("{error:#}"),
    }
}

/// Deletes every key under `prefix` from the shared Redis (for tests that write there
/// without a [`TestApp`]).
pub async fn delete_redis_keys_under(prefix: &str) {
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut connection)
            .await
            .unwrap();
    }
}

/// Removes what the test wrote to the shared Redis (everything under its key prefix), so
/// that test runs do not pile up counters there.
impl Drop for TestApp {
    fn drop(&mut self) {
        remove_redis_keys_under(&self.settings.events.key_prefix);
    }
}

/// Removes every key under `prefix` from the Redis at 127.0.0.1:6379, best effort and
/// without a runtime (for `Drop`).
pub fn remove_redis_keys_under(prefix: &str) {
    let Ok(client) = redis::Client::open("redis://127.0.0.1:6379") else {
        return;
    };
    let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
        return;
    };
    let pattern = format!("{prefix}*");
    let keys: Vec<String> = match redis::cmd("KEYS").arg(&pattern).query(&mut connection) {
        Ok(keys) => keys,
        Err(_) => return,
    };
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query(&mut connection);
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Stops the service (its port then refuses connections), as an outage would.
    pub async fn stop(&self) {
        let server = self.server.lock().unwrap().clone();
        server.stop(false).await;
    }

    /// Starts the stopped service again on the same port with the same settings and
    /// Redis key prefix, in fresh index and spool directories: as a restarted deployment
    /// (or another instance behind the same address). Its index holds what loads at
    /// startup: the content log's snapshot under the prefix, and the demo catalog when
    /// configured.
    pub async fn start_again(&self) {
        let directory = tempfile::tempdir().expect("failed to create a temporary directory");
        let mut settings = self.settings.clone();
        settings.server.port = self.port;
        settings.index.path = directory.path().join("index");
        settings.events.spool_path = directory.path().join("spool").join("events.spool");
        let application = Application::build(settings)
            .await
            .expect("failed to start the application again");
        *self.server.lock().unwrap() = application.server_handle();
        tokio::spawn(application.run_until_stopped());
        self.restart_directories.lock().unwrap().push(directory);
    }

    /// Sends `POST <path_and_query>` with `key` on a socket of its own, waits `wait`,
    /// then resets the connection (as a killed client or a proxy that gave up does):
    /// actix drops the handler of a request whose connection is reset.
    pub async fn post_then_reset_the_connection(
        &self,
        path_and_query: &str,
        key: &str,
        wait: Duration,
    ) {
        use tokio::io::AsyncWriteExt;

        let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("failed to connect to the service");
        let request = format!(
            "POST {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {key}\r\nContent-Length: 0\r\n\r\n",
            self.port
        );
        socket
            .write_all(request.as_bytes())
            .await
            .expect("failed to send the request");
        tokio::time::sleep(wait).await;
        socket
            .set_zero_linger()
            .expect("failed to make the close a reset");
        drop(socket);
    }

    /// The value of one sample of `GET /metrics`, e.g.
    /// `deflect_events_duplicate_total`; 0 when the sample is absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
            .map(|value| value.trim().parse().expect("a numeric metric"))
            .unwrap_or(0.0)
    }

    /// Sends `POST /v1/suggest` with `body` as JSON.
    pub async fn suggest(&self, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/suggest"))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("failed to send the suggest request")
    }

    /// Sends `POST /v1/suggest` and returns the parsed answer; fails the test unless
    /// the status is 200.
    pub async fn suggestions(&self, key: &str, body: &Value) -> Suggestions {
        let response = self.suggest(key, body).await;
        parse_ok(response, &format!("suggest {body}")).await
    }

    /// Sends `GET /v1/suggest` with `query` as the query string.
    pub async fn suggest_by_query(&self, key: &str, query: &[(&str, &str)]) -> reqwest::Response {
        // reqwest's `query` needs a feature this crate does not enable; `Url` can do it.
        let url = reqwest::Url::parse_with_params(&self.url("/v1/suggest"), query)
            .expect("a valid suggest URL");
        self.client
            .get(url)
            .bearer_auth(key)
            .send()
            .await
            .expect("failed to send the suggest request")
    }

    pub async fn put_content(&self, key: &str, id: &str, document: &Value) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/v1/content/{id}")))
            .bearer_auth(key)
            .json(document)
            .send()
            .await
            .expect("failed to send the content request")
    }

    /// Stores `documents` for the tenant of `key` (each must carry its `id`); fails the
    /// test unless every write succeeds.
    pub async fn put_documents(&self, key: &str, documents: &[Value]) {
        for document in documents {
            let id = document["id"]
                .as_str()
                .expect("fixture documents carry an id");
            let response = self.put_content(key, id, document).await;
            let status = response.status();
            assert_eq!(
                status,
                StatusCode::OK,
                "PUT {id} failed: {}",
                response.text().await.unwrap_or_default()
            );
        }
    }

    pub async fn get_content(&self, key: &str, id: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/v1/content/{id}")))
            .bearer_auth(key)
            .send()
            .await
            .expect("failed to send the content request")
    }

    pub async fn delete_content(&self, key: &str, id: &str) -> reqwest::Response {
        self.client
            .delete(self.url(&format!("/v1/content/{id}")))
            .bearer_auth(key)
            .send()
            .await
            .expect("failed to send the content request")
    }

    /// Sends `POST /v1/content/bulk` with `body` in one piece.
    pub async fn post_bulk(
        &self,
        key: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/v1/content/bulk"))
            .bearer_auth(key)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("failed to send the bulk request")
    }

    /// Sends `POST /v1/content/bulk` as an NDJSON stream: `Transfer-Encoding: chunked`,
    /// no `Content-Length`, one HTTP chunk per element of `chunks`.
    ///
    /// reqwest builds streaming bodies only with its `stream` feature, which this crate
    /// does not enable, so the request is written by hand on a plain socket.
    pub async fn post_bulk_as_stream(&self, key: &str, chunks: Vec<Vec<u8>>) -> RawResponse {
        let port = self.port;
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || {
            send_chunked_request(
                port,
                "/v1/content/bulk",
                &key,
                "application/x-ndjson",
                chunks,
            )
        })
        .await
        .expect("the streaming upload task panicked")
        .expect("the streaming upload failed")
    }

    /// Sends `POST /v1/events` with `body` as JSON.
    pub async fn post_events(&self, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/events"))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("failed to send the events request")
    }

    /// Sends `events` as one batch with acme's suggest key and returns the answer; fails
    /// the test unless the status is 200.
    pub async fn record_events(&self, events: &[Value]) -> Value {
        let response = self
            .post_events(&self.acme.suggest, &json!({ "events": events }))
            .await;
        parse_ok(response, "POST /v1/events").await
    }

    /// `GET /v1/stats/<report>?<query>` with acme's ops key; fails unless 200.
    pub async fn stats(&self, report: &str, query: &[(&str, &str)]) -> Value {
        self.stats_of(&self.acme, report, query).await
    }

    /// `GET /v1/stats/<report>?<query>` of the tenant of `keys`; fails unless 200.
    pub async fn stats_of(&self, keys: &TenantKeys, report: &str, query: &[(&str, &str)]) -> Value {
        let response = self
            .get_with_query(&keys.ops, &format!("/v1/stats/{report}"), query)
            .await;
        parse_ok(response, &format!("GET /v1/stats/{report}")).await
    }

    /// acme's summary over the default range (the last 7 days), as `total`.
    pub async fn summary_total(&self) -> Value {
        self.stats("summary", &[]).await["total"].clone()
    }

    /// acme's figures of one lesson over the default range (null when it has none).
    pub async fn lesson_figures(&self, lesson_id: &str) -> Value {
        let lessons = self.stats("lessons", &[("limit", "1000")]).await;
        lessons["lessons"]
            .as_array()
            .expect("lessons is a list")
            .iter()
            .find(|lesson| lesson["lesson_id"] == lesson_id)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub async fn get_with_query(
        &self,
        key: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> reqwest::Response {
        let url = reqwest::Url::parse_with_params(&self.url(path), query).expect("a valid URL");
        self.client
            .get(url)
            .bearer_auth(key)
            .send()
            .await
            .expect("failed to send the request")
    }

    /// `GET /metrics` with acme's ops key; fails unless 200.
    pub async fn metrics_text(&self) -> String {
        let response = self.get_with_query(&self.acme.ops, "/metrics", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.expect("failed to read the metrics")
    }

    /// Polls `probe` until it returns `Some`, for effects that happen off the request
    /// path (events recorded by suggest). Fails the test after 10 seconds.
    pub async fn eventually<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        for _ in 0..500 {
            if let Some(value) = probe().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("gave up waiting for {what}");
    }

    /// Returns the parsed `GET /readyz` answer; fails the test unless it is 200.
    pub async fn readiness(&self) -> Value {
        let response = self
            .client
            .get(self.url("/readyz"))
            .send()
            .await
            .expect("failed to send the readiness request");
        parse_ok(response, "GET /readyz").await
    }

    /// Every key and value Redis holds under this app's key prefix, as plain text (one
    /// line per key), from the Redis the app is configured with: for proving what is
    /// never stored.
    pub async fn everything_stored_in_redis(&self) -> String {
        let client = redis::Client::open(self.settings.redis.url.expose_secret()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let pattern = format!("{}*", self.settings.events.key_prefix);
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(!keys.is_empty(), "nothing stored under {pattern}");
        let mut everything = String::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .unwrap();
            let read = match kind.as_str() {
                "hash" => redis::cmd("HGETALL").arg(&key).clone(),
                "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).clone(),
                "set" => redis::cmd("SMEMBERS").arg(&key).clone(),
                "stream" => redis::cmd("XRANGE").arg(&key).arg("-").arg("+").clone(),
                _ => redis::cmd("GET").arg(&key).clone(),
            };
            let value: redis::Value = read.query_async(&mut connection).await.unwrap();
            everything.push_str(&format!("{key} => {}\n", plain_text(&value)));
        }
        everything
    }
}

/// The strings and numbers of a Redis value, space-separated, as they were stored.
fn plain_text(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(text) => text.clone(),
        redis::Value::Int(number) => number.to_string(),
        redis::Value::Array(values) | redis::Value::Set(values) => {
            values.iter().map(plain_text).collect::<Vec<_>>().join(" ")
        }
        redis::Value::Map(pairs) => pairs
            .iter()
            .map(|(name, value)| format!("{} {}", plain_text(name), plain_text(value)))
            .collect::<Vec<_>>()
            .join(" "),
        other => format!("{other:?}"),
    }
}

/// Asserts a 200 answer and parses its JSON body; the failure message shows what came back.
pub async fn parse_ok<T: DeserializeOwned>(response: reqwest::Response, what: &str) -> T {
    let status = response.status();
    let has_request_id = response.headers().contains_key("x-request-id");
    let text = response.text().await.expect("failed to read the body");
    assert_eq!(status, StatusCode::OK, "{what} answered {status}: {text}");
    assert!(has_request_id, "{what} answered without x-request-id");
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{what} answered unexpected JSON ({error}): {text}"))
}

/// Returns the `Retry-After` header of `response`, if any.
pub fn retry_after(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The body of `POST /v1/suggest`.
#[derive(Debug, Deserialize)]
pub struct Suggestions {
    pub suggestion_id: String,
    pub abstained: bool,
    #[serde(default)]
    pub holdout: bool,
    pub confidence: f32,
    pub results: Vec<Suggestion>,
}

impl Suggestions {
    pub fn ids(&self) -> Vec<&str> {
        self.results
            .iter()
            .map(|result| result.id.as_str())
            .collect()
    }
}

#[derive(Debug, Deserialize)]
pub struct Suggestion {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub url: Option<String>,
    /// The section the URL opens at: `{"anchor", "title"}`.
    #[serde(default)]
    pub section: Option<Value>,
    pub snippet: String,
    pub score: f32,
    pub duration_seconds: Option<u32>,
    pub course: Option<CourseRef>,
    pub matched_terms: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct CourseRef {
    pub id: String,
    pub title: Option<String>,
}

/// The error contract: `{"message", "code", "type"}`, sometimes with `details`.
#[derive(Debug, Deserialize)]
pub struct ApiErrorBody {
    pub message: String,
    pub code: String,
    #[serde(rename = "type")]
    pub error_type: String,
    pub details: Option<Value>,
}

/// Asserts that `response` is an error of the contract with `status` and `code` (and the
/// type the status implies, a message and a request id); returns the parsed body.
pub async fn assert_api_error(
    response: reqwest::Response,
    status: StatusCode,
    code: &str,
) -> ApiErrorBody {
    let actual_status = response.status();
    let has_request_id = response.headers().contains_key("x-request-id");
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("failed to read the body");
    assert_eq!(
        actual_status, status,
        "expected {status} {code}, got {actual_status}: {text}"
    );
    assert!(
        content_type.starts_with("application/json"),
        "error with content type `{content_type}`: {text}"
    );
    assert!(has_request_id, "error without x-request-id: {text}");
    let body: ApiErrorBody = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("error body off the contract ({error}): {text}"));
    assert_eq!(body.code, code, "{text}");
    assert_eq!(body.error_type, error_type_of(status), "{text}");
    assert!(!body.message.is_empty(), "{text}");
    body
}

fn error_type_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "auth",
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => "system",
        StatusCode::INTERNAL_SERVER_ERROR => "internal",
        _ => "invalid_request",
    }
}

/// An event of `event_type` in `session_id` with a fresh event id, plus `extra` fields.
pub fn event(event_type: &str, session_id: &str, extra: Value) -> Value {
    let mut event = json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "type": event_type,
        "session_id": session_id,
    });
    if let (Some(fields), Some(extra_fields)) = (event.as_object_mut(), extra.as_object()) {
        for (name, value) in extra_fields {
            fields.insert(name.clone(), value.clone());
        }
    }
    event
}

/// An event about `lesson_id` at `ts` (milliseconds since the epoch).
pub fn lesson_event(event_type: &str, session_id: &str, lesson_id: &str, ts: i64) -> Value {
    event(
        event_type,
        session_id,
        json!({"lesson_id": lesson_id, "ts": ts}),
    )
}

/// An event without a lesson at `ts` (milliseconds since the epoch).
pub fn session_event(event_type: &str, session_id: &str, ts: i64) -> Value {
    event(event_type, session_id, json!({"ts": ts}))
}

/// Now, in milliseconds since the epoch, minus `seconds_ago`.
pub fn milliseconds_ago(seconds_ago: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as i64;
    now - seconds_ago * 1000
}

/// An English article about `body`.
pub fn article(id: &str, title: &str, body: &str) -> Value {
    json!({
        "id": id,
        "kind": "article",
        "title": title,
        "body": body,
        "url": format!("https://help.acme.example/articles/{id}"),
        "locale": "en",
    })
}

/// An English lesson of `course_id`.
pub fn lesson(id: &str, course_id: &str, title: &str, body: &str) -> Value {
    json!({
        "id": id,
        "kind": "lesson",
        "title": title,
        "body": body,
        "url": format!("https://learn.acme.example/{course_id}/{id}"),
        "course_id": course_id,
        "course_title": format!("The {course_id} course"),
        "duration_seconds": 120,
        "locale": "en",
    })
}

/// Joins documents into an NDJSON body.
pub fn ndjson(documents: &[Value]) -> String {
    let mut body = String::new();
    for document in documents {
        body.push_str(&document.to_string());
        body.push('\n');
    }
    body
}

/// An HTTP answer read off a plain socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header_name, _)| header_name == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "unexpected JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

fn send_chunked_request(
    port: u16,
    path: &str,
    key: &str,
    content_type: &str,
    chunks: Vec<Vec<u8>>,
) -> std::io::Result<RawResponse> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes())?;
    for chunk in chunks.iter().filter(|chunk| !chunk.is_empty()) {
        stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
        stream.write_all(chunk)?;
        stream.write_all(b"\r\n")?;
    }
    stream.write_all(b"0\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_raw_response(&raw)
}

fn parse_raw_response(raw: &[u8]) -> std::io::Result<RawResponse> {
    let invalid = |message: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
    let head_end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of the response head"))?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| invalid("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|status_line| status_line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_owned()))
        .collect();
    let rest = &raw[head_end + 4..];
    let is_chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if is_chunked {
        decode_chunked(rest).ok_or_else(|| invalid("bad chunked body"))?
    } else {
        rest.to_vec()
    };
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

fn decode_chunked(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|window| window == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// Asserts that `expected_id` is the best suggestion.
pub fn assert_best_match(suggestions: &Suggestions, expected_id: &str) {
    assert_eq!(
        suggestions.results.first().map(|result| result.id.as_str()),
        Some(expected_id),
        "{suggestions:?}"
    );
}
