//! The one typed settings tree, layered from files and the environment.
//!
//! Order (later wins): `config/base.toml`, `config/<environment>.toml` (environment from
//! `DEFLECT_ENVIRONMENT`, default `local`), the file given with `--config`, then
//! `DEFLECT_<SECTION>__<KEY>` environment variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::events::feedback::FeedbackSettings;
use crate::search::query::SearchTuning;
use crate::search::writer::WriterOptions;
use crate::sync::{SourceSettings, SyncSettings};
use crate::thread_scheduling::WorkerScheduling;
use crate::training::{LmsSettings, TrainingSettings};
use crate::webhooks::settings::{
    FreshdeskSettings, GenericWebhookSettings, WebhookSettings, ZendeskSettings,
};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub index: IndexSettings,
    pub search: SearchSettings,
    pub redis: RedisSettings,
    /// The content log all instances' indexes follow, `[content_log]`.
    pub content_log: ContentLogSettings,
    pub events: EventSettings,
    /// Ranking feedback from the deflection counters, `[feedback]`.
    pub feedback: FeedbackSettings,
    pub log: LogSettings,
    pub demo: DemoSettings,
    /// Helpdesk webhooks, tracked links and the outbox, `[webhooks]`.
    pub webhooks: WebhookSettings,
    /// Ticket-to-training and the ROI report, `[training]`.
    pub training: TrainingSettings,
    /// Content sync from knowledge bases and LMS catalogs, `[sync]`.
    pub sync: SyncSettings,
    /// Keys of the people who run the instance, not tied to a tenant, `[operator]`.
    #[serde(default)]
    pub operator: OperatorSettings,
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantSettings>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// How the kernel schedules the HTTP workers (`thread_scheduling.rs`).
    pub worker_scheduling: WorkerScheduling,
    pub suggest_body_limit_bytes: usize,
    pub json_body_limit_bytes: usize,
    pub bulk_body_limit_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IndexSettings {
    pub path: PathBuf,
    pub writer_memory_mb: usize,
    /// The writer's memory for offline loads (`deflect index`, `deflect eval`), which
    /// run outside the server and end merged into one segment.
    pub offline_writer_memory_mb: usize,
    pub writer_threads: usize,
    pub max_operations_per_commit: usize,
    pub bulk_batch_size: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SearchSettings {
    pub default_limit: usize,
    pub max_limit: usize,
    pub default_locale: String,
    /// Matching and ranking knobs, `[search.ranking]`.
    pub ranking: SearchTuning,
}

impl SearchSettings {
    pub fn tuning(&self) -> SearchTuning {
        self.ranking.clone()
    }
}

/// Returns a writer memory setting in bytes, raised to the 15 MiB tantivy needs at least.
fn writer_memory_bytes(mebibytes: usize) -> usize {
    mebibytes.max(15) * 1024 * 1024
}

impl IndexSettings {
    /// Writer settings for the service: commits bounded by `max_operations_per_commit`.
    pub fn writer_options(&self) -> WriterOptions {
        WriterOptions {
            memory_budget_bytes: writer_memory_bytes(self.writer_memory_mb),
            threads: self.writer_threads,
            max_operations_per_commit: self.max_operations_per_commit,
            bulk_load: false,
        }
    }

    /// Writer settings for offline loads (`deflect index`, `deflect eval`), where nobody
    /// waits for a commit before the whole load is in, and the load ends compacted.
    ///
    /// They get their own, larger memory: every segment flushed along the way is merged
    /// again at the end, so fewer, larger segments save both the flushes and part of the
    /// final merge (benches/BENCHMARKS.md, "Fifth run").
    pub fn offline_writer_options(&self) -> WriterOptions {
        WriterOptions {
            memory_budget_bytes: writer_memory_bytes(self.offline_writer_memory_mb),
            max_operations_per_commit: usize::MAX,
            bulk_load: true,
            ..self.writer_options()
        }
    }
}

/// The content log in Redis (`[content_log]`, see config/base.toml).
#[derive(Debug, Clone, Deserialize)]
pub struct ContentLogSettings {
    /// Content writes go through the log and every instance follows it; off for a single
    /// instance without Redis.
    pub enabled: bool,
    /// Approximate length cap of the stream of changes.
    pub stream_max_len: u64,
    /// How long one read of the follower waits for new changes.
    pub follow_block_ms: u64,
    /// Change batches one read of the follower takes at most.
    pub follow_batch_entries: usize,
    /// Wait before the follower tries Redis again after a failure.
    pub retry_interval_ms: u64,
    /// Timeout of one Redis call of the content log (appends and snapshot reads).
    pub redis_timeout_ms: u64,
    /// Changes one stream entry (one script call) holds at most; a larger write is
    /// appended as several entries.
    pub max_changes_per_entry: usize,
    /// Bytes of changes (their JSON) one stream entry holds at most; a single larger
    /// document gets an entry of its own.
    pub max_entry_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    /// May carry a password, so it is a secret.
    pub url: SecretString,
    pub connect_timeout_ms: u64,
}

/// Deflection events, counters and the spool (`[events]`, see config/base.toml).
#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    /// Prepended to every Redis key; tests use a unique one each.
    pub key_prefix: String,
    /// Events the in-memory queue holds; beyond it `POST /v1/events` answers 503.
    pub queue_capacity: usize,
    /// Events one `POST /v1/events` may carry.
    pub max_events_per_request: usize,
    /// Largest accepted body of `POST /v1/events`.
    pub body_limit_bytes: usize,
    /// Events the writer takes from its queue at once at most (answered together).
    pub write_batch_events: usize,
    /// How long the writer waits after a batch that did not fill up before it takes the
    /// next; an awaited `POST /v1/events` waits at most this much longer.
    pub batch_linger_ms: u64,
    /// Events per call of the attribution script; the calls of a batch go one after the
    /// other, so a short call keeps Redis from holding a core for long.
    pub events_per_script_call: usize,
    /// Approximate length cap of each tenant's raw event stream.
    pub stream_max_len: u64,
    /// How long an event id is remembered, so a retried event is not counted twice.
    pub idempotency_ttl_seconds: u64,
    /// How long a session's attribution state lives after its last event.
    pub session_ttl_seconds: u64,
    /// The append-only file events go to while Redis is unreachable.
    pub spool_path: PathBuf,
    /// Size of the spool at most; when full, `POST /v1/events` answers 503.
    pub spool_max_bytes: u64,
    /// How long the spooled events of suggest answers may wait for their fsync (0: none
    /// waits); events posted to `/v1/events` are fsynced before the answer.
    pub spool_sync_interval_ms: u64,
    /// Wait between attempts to reach Redis again after a failure.
    pub retry_interval_ms: u64,
    /// Timeout of one Redis call of the writer and of the stats readers.
    pub redis_timeout_ms: u64,
    /// Percentage (0-100) of sessions that get no suggestions, to measure causation, for
    /// tenants that set no `holdout_percent` of their own.
    pub holdout_percent: f64,
    /// Cost of handling one ticket, for `savings`, when a tenant sets none.
    pub default_cost_per_ticket: f64,
}

impl EventSettings {
    /// Events older than this many days are refused: their idempotency markers may be
    /// gone by the time they would be replayed.
    pub fn max_event_age_days(&self) -> u32 {
        let ttl_days = self.idempotency_ttl_seconds / (24 * 3600);
        u32::try_from(ttl_days.saturating_sub(1)).unwrap_or(u32::MAX)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DemoSettings {
    /// Load the bundled demo catalog into this tenant when it has no content.
    pub load_when_empty: bool,
    pub tenant: String,
    /// Serve `GET /demo`, a sample ticket form using the widget with the demo tenant's
    /// public key (whose calls are then also accepted from deflect's own origin).
    pub page: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TenantSettings {
    /// Origins (scheme://host[:port]) browser widgets of this tenant may call from.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub api_keys: Vec<ApiKeySettings>,
    /// What handling one ticket costs this tenant (for `savings` in the stats);
    /// `events.default_cost_per_ticket` when unset.
    #[serde(default)]
    pub cost_per_ticket: Option<f64>,
    /// Zendesk webhooks and "while you wait" comments, `[tenants.<id>.zendesk]`.
    #[serde(default)]
    pub zendesk: Option<ZendeskSettings>,
    /// Freshdesk automation webhooks and replies, `[tenants.<id>.freshdesk]`.
    #[serde(default)]
    pub freshdesk: Option<FreshdeskSettings>,
    /// Standard Webhooks deliveries from any other helpdesk, `[tenants.<id>.generic]`.
    #[serde(default)]
    pub generic: Option<GenericWebhookSettings>,
    /// Percentage (0-100) of this tenant's sessions held out of suggestions;
    /// `events.holdout_percent` when unset.
    #[serde(default)]
    pub holdout_percent: Option<f64>,
    /// Completions and enrollments from the tenant's LMS, `[tenants.<id>.lms]`.
    #[serde(default)]
    pub lms: Option<LmsSettings>,
    /// Where the tenant's content is synced from, `[tenants.<id>.sources.*]`.
    #[serde(default)]
    pub sources: SourceSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiKeySettings {
    /// A name for logs and audits; the key itself is never logged.
    pub name: String,
    pub key: SecretString,
    pub scopes: Vec<String>,
}

/// `[operator]`: what the people who run deflect (not a tenant) may do.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OperatorSettings {
    /// Keys for calls that act on the whole instance, every tenant's content at once
    /// (`POST /v1/admin/reindex`); no tenant's key can make them.
    #[serde(default)]
    pub api_keys: Vec<OperatorKeySettings>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OperatorKeySettings {
    /// A name for logs and audits; the key itself is never logged.
    pub name: String,
    pub key: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("failed to load settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("the settings file {0} does not exist")]
    MissingFile(PathBuf),
}

/// Returns the directory holding `base.toml`: `DEFLECT_CONFIG_DIR`, or `config/` in the
/// working directory.
pub fn config_directory() -> PathBuf {
    std::env::var_os("DEFLECT_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("config"))
}

/// Loads the settings from `directory`, plus `extra_file` when given.
pub fn load_settings(
    directory: &Path,
    extra_file: Option<&Path>,
) -> Result<Settings, SettingsError> {
    let environment = std::env::var("DEFLECT_ENVIRONMENT").unwrap_or_else(|_| "local".to_owned());
    let mut builder = config::Config::builder()
        .add_source(config::File::from(directory.join("base.toml")))
        .add_source(
            config::File::from(directory.join(format!("{environment}.toml"))).required(false),
        );
    if let Some(extra_file) = extra_file {
        if !extra_file.exists() {
            return Err(SettingsError::MissingFile(extra_file.to_owned()));
        }
        builder = builder.add_source(config::File::from(extra_file));
    }
    let settings = builder
        .add_source(
            config::Environment::with_prefix("DEFLECT")
                .prefix_separator("_")
                .separator("__"),
        )
        .build()?
        .try_deserialize()?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository_config() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
    }

    #[test]
    fn the_bundled_files_load() {
        let settings = load_settings(&repository_config(), None).unwrap();
        assert_eq!(settings.search.default_limit, 3);
        assert!(settings.tenants.contains_key("demo"));
        assert_eq!(
            settings.server.worker_scheduling,
            WorkerScheduling::BatchWhileSearchesQueue
        );
    }

    #[test]
    fn the_ranking_defaults_in_code_are_those_of_base_toml() {
        // The service and `deflect eval` read base.toml, unit tests use the defaults in
        // code: both are tuned together and must not drift apart.
        let settings = load_settings(&repository_config(), None).unwrap();
        assert_eq!(settings.search.ranking, SearchTuning::default());
    }

    #[test]
    fn an_extra_file_layers_on_top() {
        let directory = tempfile::tempdir().unwrap();
        let extra = directory.path().join("secrets.toml");
        std::fs::write(&extra, "[server]\nport = 9999\n").unwrap();
        let settings = load_settings(&repository_config(), Some(&extra)).unwrap();
        assert_eq!(settings.server.port, 9999);
        assert!(load_settings(
            &repository_config(),
            Some(&directory.path().join("nope.toml"))
        )
        .is_err());
    }

    #[test]
    fn secrets_are_not_printed_in_debug_output() {
        let settings = load_settings(&repository_config(), None).unwrap();
        let printed = format!("{settings:?}");
        assert!(!printed.contains("demo-suggest-key"), "{printed}");
        assert!(!settings.operator.api_keys.is_empty());
        assert!(!printed.contains("demo-operator-key"), "{printed}");
    }
}
