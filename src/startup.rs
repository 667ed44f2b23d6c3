//! Builds the application: opens the index, starts the writer, wires services and routes,
//! and binds the listener (port 0 in tests).

use std::net::TcpListener;
use std::ops::RangeInclusive;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tokio::sync::Notify;
use tracing_actix_web::TracingLogger;

use crate::auth::KeyRing;
use crate::configuration::{Settings, TenantSettings};
use crate::content::{apply_to_generation, ContentChange, ContentStore, LoggedWrites, StoreError};
use crate::content_log::follower::ContentFollower;
use crate::content_log::ContentLog;
use crate::demo::{demo_documents, load_demo_catalog_if_empty, DemoPages};
use crate::domain::{PerTenant, TenantId};
use crate::error::{path_error_handler, query_error_handler, route_not_found};
use crate::events::feedback::RankingFeedback;
use crate::events::holdout::Holdout;
use crate::events::keys::KeySpace;
use crate::events::spool::Spool;
use crate::events::stats::StatsReader;
use crate::events::{
    EventMetrics, EventSink, EventWriterThread, RedisEventStore, SinkOptions, StoreOptions,
};
use crate::metrics::{record_request_metrics, Metrics};
use crate::middleware::{cors, expose_request_id};
use crate::outbox::{OutboxQueue, OutboxStore, OutboxWorker, WorkerSettings};
use crate::redis_probe::RedisProbe;
use crate::reindex::{open_current_generation, RebuildSources, Reindexer};
use crate::routes::{self, BodyLimits};
use crate::search::{ContentSearcher, IndexLayout, LogPosition, ServingIndex};
use crate::search_threads::SearchThreads;
use crate::suggest::SuggestService;
use crate::sync::scheduler::spawn_periodic_sync;
use crate::sync::state::SyncState;
use crate::sync::SyncService;
use crate::tracked_links::LinkSigner;
use crate::training::{TrainingSettings, TrainingStore};
use crate::webhooks::deliveries::DeliveryLog;
use crate::webhooks::intake::WebhookIntake;
use crate::webhooks::lms_intake::LmsIntake;
use crate::webhooks::tenants::HelpdeskTenants;

/// Shared state of every request handler.
pub struct AppState {
    pub suggest: SuggestService,
    pub store: ContentStore,
    /// Rebuilds the index into a new generation (`POST /v1/admin/reindex`, operators).
    pub reindexer: Reindexer,
    pub keys: Arc<KeyRing>,
    pub redis_probe: RedisProbe,
    pub default_limit: usize,
    pub max_limit: usize,
    pub bulk_batch_size: usize,
    pub events: EventSink,
    pub stats: StatsReader,
    pub metrics: Arc<Metrics>,
    pub event_intake: EventIntake,
    /// Which sessions of each tenant are held out of suggestions.
    pub holdout: PerTenant<Holdout>,
    /// Helpdesk webhooks and the outbox they queue into.
    pub webhooks: WebhookState,
    /// Makes and checks tracked links (`/r/...`); none when not configured.
    pub links: Option<Arc<LinkSigner>>,
    /// Cost per ticket by tenant, for `savings`.
    pub cost_per_ticket: PerTenant<f64>,
    /// Assignments, LMS progress, tickets per customer and active customers.
    pub training: TrainingStore,
    pub training_settings: TrainingSettings,
    /// Content sync of the tenants' knowledge bases and catalogs.
    pub sync: SyncService,
}

/// What the webhook and tracked-link routes share.
pub struct WebhookState {
    pub intake: WebhookIntake,
    /// LMS completions and enrollments.
    pub lms: LmsIntake,
    pub outbox: OutboxQueue,
    pub timestamp_tolerance_seconds: i64,
}

/// Limits of `POST /v1/events`.
#[derive(Debug, Clone, Copy)]
pub struct EventIntake {
    pub max_events_per_request: usize,
    pub max_event_age_days: u32,
}

/// A built, bound, not yet running service.
pub struct Application {
    port: u16,
    server: Server,
    event_writer: EventWriterThread,
}

/// How long a stopping server waits at most for the event writer to write what the last
/// requests queued: longer than a Redis call's timeout and a spool fsync.
const EVENT_WRITER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        use anyhow::Context;

        let mut key_ring =
            KeyRing::from_settings(&settings.tenants).context("invalid tenant settings")?;
        key_ring
            .add_operator_keys(&settings.operator.api_keys)
            .context("invalid operator settings")?;
        let demo_pages = demo_pages(&settings)?;
        if demo_pages.is_some() {
            let demo_tenant = TenantId::parse(&settings.demo.tenant)
                .map_err(anyhow::Error::msg)
                .context("invalid demo tenant")?;
            key_ring.allow_own_origin_for(demo_tenant);
        }
        let keys = Arc::new(key_ring);
        let (store, reindexer) = start_content(&settings).await?;

        let event_metrics = Arc::new(EventMetrics::default());
        let content_log_metrics = store
            .log()
            .map(|log| log.metrics().clone())
            .unwrap_or_default();
        let metrics = Arc::new(Metrics::new(event_metrics.clone(), content_log_metrics));
        let cost_per_ticket = TenantNumber {
            default_name: "events.default_cost_per_ticket",
            tenant_key: "cost_per_ticket",
            valid: 0.0..=f64::MAX,
            requirement: "a number of at least 0",
        }
        .read(
            &settings,
            settings.events.default_cost_per_ticket,
            |tenant| tenant.cost_per_ticket,
        )?;
        let holdout = TenantNumber {
            default_name: "events.holdout_percent",
            tenant_key: "holdout_percent",
            valid: 0.0..=100.0,
            requirement: "a percentage from 0 to 100",
        }
        .read(&settings, settings.events.holdout_percent, |tenant| {
            tenant.holdout_percent
        })?
        .map(Holdout::new);

        let (events, event_writer, stats, key_space) = start_events(&settings, event_metrics)?;
        let searcher =
            ContentSearcher::serving(store.serving_index().clone(), settings.search.tuning());
        let search_threads =
            SearchThreads::one_per_core().context("failed to start the search threads")?;
        let mut suggest = SuggestService::new(
            searcher,
            settings.search.default_locale.clone(),
            search_threads,
        );
        if settings.feedback.enabled {
            let feedback = RankingFeedback::default();
            let tenants = keys.tenants();
            feedback.spawn_refresher(stats.clone(), tenants, settings.feedback.clone());
            suggest = suggest.with_feedback(feedback);
        }
        let training = TrainingStore::new(
            &settings.redis.url,
            key_space.clone(),
            Duration::from_millis(settings.events.redis_timeout_ms),
            Duration::from_millis(settings.training.completed_lookup_timeout_ms.max(1)),
            settings.training.retention_seconds(),
        );
        let (webhooks, links) = start_webhooks(
            &settings,
            &key_space,
            WebhookServices {
                suggest: &suggest,
                events: &events,
                metrics: &metrics,
                training: &training,
            },
        )?;
        let sync = start_sync(&settings, &key_space, store.clone())?;
        let state = web::Data::new(AppState {
            suggest,
            store,
            reindexer,
            keys: keys.clone(),
            redis_probe: RedisProbe::new(
                &settings.redis.url,
                Duration::from_millis(settings.redis.connect_timeout_ms),
            ),
            default_limit: settings.search.default_limit,
            max_limit: settings.search.max_limit,
            bulk_batch_size: settings.index.bulk_batch_size.max(1),
            events,
            stats,
            metrics: metrics.clone(),
            event_intake: EventIntake {
                max_events_per_request: settings.events.max_events_per_request,
                max_event_age_days: settings.events.max_event_age_days(),
            },
            holdout,
            webhooks,
            links,
            cost_per_ticket,
            training,
            training_settings: settings.training.clone(),
            sync,
        });
        let limits = BodyLimits {
            events_json_bytes: settings.events.body_limit_bytes,
            suggest_json_bytes: settings.server.suggest_body_limit_bytes,
            json_bytes: settings.server.json_body_limit_bytes,
            bulk_bytes: settings.server.bulk_body_limit_bytes,
            webhook_bytes: settings.webhooks.body_limit_bytes,
        };

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| {
                format!(
                    "failed to bind {}:{}",
                    settings.server.host, settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let keys_data = web::Data::new(keys);
        let metrics_data = web::Data::new(metrics);
        let worker_scheduling = settings.server.worker_scheduling;
        let mut server = HttpServer::new(move || {
            // Runs on each worker thread as it starts.
            if let Err(error) = worker_scheduling.apply_to_this_worker() {
                tracing::warn!(%error, "http worker left to the default scheduling policy");
            }
            App::new()
                .wrap(from_fn(record_request_metrics))
                .wrap(from_fn(cors))
                .wrap(from_fn(expose_request_id))
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .app_data(keys_data.clone())
                .app_data(metrics_data.clone())
                .app_data(web::QueryConfig::default().error_handler(query_error_handler))
                .app_data(web::PathConfig::default().error_handler(path_error_handler))
                .configure(|config| routes::configure(config, &limits, demo_pages.as_ref()))
                .default_service(web::to(route_not_found))
        })
        .listen(listener)?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        tracing::info!(port, "deflect listening");
        Ok(Application {
            port,
            server: server.run(),
            event_writer,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns a handle that stops the server (tests stop a service this way).
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (SIGTERM, SIGINT or its handle), then waits
    /// for the event writer to write what the last requests queued.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        let event_writer = self.event_writer;
        let ended =
            tokio::task::spawn_blocking(move || event_writer.stop(EVENT_WRITER_STOP_TIMEOUT))
                .await
                .unwrap_or(false);
        if !ended {
            tracing::warn!(
                timeout_seconds = EVENT_WRITER_STOP_TIMEOUT.as_secs(),
                "the event writer did not finish in time; events still queued are not written"
            );
        }
        served
    }
}

/// Opens the serving index generation, connects the content log and brings the index
/// up to it (a failure to reach Redis is logged, and the follower keeps trying), loads
/// the demo catalog when configured and starts following the log.
pub async fn start_content(settings: &Settings) -> anyhow::Result<(ContentStore, Reindexer)> {
    use anyhow::Context;

    let layout = IndexLayout::new(&settings.index.path);
    let writer_options = settings.index.writer_options();
    let opened = open_current_generation(&layout, writer_options)
        .context("failed to open the index (is another deflect using it?)")?;
    let log = if settings.content_log.enabled {
        let key_space = KeySpace::new(&settings.events.key_prefix).map_err(anyhow::Error::msg)?;
        Some(ContentLog::new(
            &settings.redis.url,
            &key_space,
            &settings.content_log,
        ))
    } else {
        None
    };
    let demo_tenant = if settings.demo.load_when_empty {
        Some(
            TenantId::parse(&settings.demo.tenant)
                .map_err(anyhow::Error::msg)
                .context("invalid demo tenant")?,
        )
    } else {
        None
    };
    let (applied_sender, applied) = tokio::sync::watch::channel(LogPosition::START);
    let serves_log_content = Arc::new(AtomicBool::new(false));
    let logged = log.clone().map(|log| LoggedWrites {
        log,
        applied,
        serves_log_content: serves_log_content.clone(),
    });
    let store = ContentStore::serving(ServingIndex::new(opened.generation), logged);
    let reindexer = Reindexer::new(
        layout,
        writer_options,
        RebuildSources {
            log: log.clone(),
            demo_tenant: demo_tenant.clone(),
        },
    );
    if let Some(log) = log {
        let mut follower = ContentFollower::new(
            store.clone(),
            log,
            reindexer.clone(),
            applied_sender,
            serves_log_content,
        );
        if let Err(error) = follower.catch_up().await {
            tracing::warn!(
                error = format!("{:#}", anyhow::Error::new(error)),
                "failed to bring the index up to the content log at startup; serving it as it is and following the log in the background"
            );
        }
        // Running before the demo load: logged writes return once the follower applied them.
        follower.spawn();
    }
    if let Some(demo_tenant) = &demo_tenant {
        match load_demo_catalog_if_empty(&store, demo_tenant).await {
            Ok(_) => {}
            Err(StoreError::Log(error)) => {
                // The demo catalog is the same on every instance: serving it unlogged
                // diverges from nothing, and a later rebuild adds it again.
                tracing::warn!(%error, "the content log is unavailable; loading the demo catalog into this instance only");
                let changes = demo_documents()
                    .into_iter()
                    .map(ContentChange::Upsert)
                    .collect();
                apply_to_generation(&store.serving_index().current(), demo_tenant, changes, None)
                    .await
                    .context("failed to load the demo catalog")?;
            }
            Err(error) => {
                return Err(anyhow::Error::new(error).context("failed to load the demo catalog"))
            }
        }
    } else if opened.is_new && store.log().is_none() {
        tracing::info!("the index is new and the content log is off; it starts empty");
    }
    Ok((store, reindexer))
}

/// Returns the demo pages when `demo.page` is on, with the demo tenant's public key;
/// refuses to start when that tenant has no key with the suggest scope alone (the page
/// shows its key to every visitor, so it must never be one that can do more).
fn demo_pages(settings: &Settings) -> anyhow::Result<Option<DemoPages>> {
    use secrecy::ExposeSecret;

    if !settings.demo.page {
        return Ok(None);
    }
    let tenant_name = &settings.demo.tenant;
    let public_key = settings
        .tenants
        .get(tenant_name)
        .and_then(|tenant| {
            tenant
                .api_keys
                .iter()
                .find(|key| key.scopes.iter().all(|scope| scope == "suggest"))
                .filter(|key| !key.scopes.is_empty())
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "demo.page needs a key with only the suggest scope in tenants.{tenant_name}.api_keys"
            )
        })?;
    Ok(Some(DemoPages::new(
        public_key.key.expose_secret().to_owned(),
    )))
}

/// A number setting with a default that each tenant may override.
struct TenantNumber<'names> {
    /// Where the default is set, e.g. `events.holdout_percent`.
    default_name: &'names str,
    /// The key under `tenants.<id>`, e.g. `holdout_percent`.
    tenant_key: &'names str,
    valid: RangeInclusive<f64>,
    /// What `valid` means, for the error message: "a number from 0 to 100".
    requirement: &'names str,
}

impl TenantNumber<'_> {
    /// Returns the default and the tenants' own values (read by `own`), refusing any
    /// outside `valid` (and NaN).
    fn read(
        &self,
        settings: &Settings,
        default: f64,
        own: impl Fn(&TenantSettings) -> Option<f64>,
    ) -> anyhow::Result<PerTenant<f64>> {
        let check = |name: &str, value: f64| -> anyhow::Result<f64> {
            if !self.valid.contains(&value) {
                anyhow::bail!("{name} must be {}", self.requirement);
            }
            Ok(value)
        };
        let mut values = PerTenant::new(check(self.default_name, default)?);
        for (tenant_name, tenant_settings) in &settings.tenants {
            let Some(value) = own(tenant_settings) else {
                continue;
            };
            let name = format!("tenants.{tenant_name}.{}", self.tenant_key);
            let tenant = TenantId::parse(tenant_name).map_err(anyhow::Error::msg)?;
            values.set(tenant, check(&name, value)?);
        }
        Ok(values)
    }
}

/// The services the webhook receivers call.
struct WebhookServices<'services> {
    suggest: &'services SuggestService,
    events: &'services EventSink,
    metrics: &'services Metrics,
    training: &'services TrainingStore,
}

/// Checks every tenant's helpdesk and LMS setup, makes the tracked-link signer, and
/// starts the outbox worker when any tenant gave deflect a helpdesk account (for "while
/// you wait" and for agents' assignments).
fn start_webhooks(
    settings: &Settings,
    key_space: &KeySpace,
    services: WebhookServices<'_>,
) -> anyhow::Result<(WebhookState, Option<Arc<LinkSigner>>)> {
    use anyhow::Context;

    let WebhookServices {
        suggest,
        events,
        metrics,
        training,
    } = services;

    let webhook_settings = &settings.webhooks;
    let outbox_settings = &webhook_settings.outbox;
    let http = crate::helpdesk::api::http_client(outbox_settings)
        .context("failed to build the helpdesk http client")?;
    let tenants = Arc::new(
        HelpdeskTenants::from_settings(&settings.tenants, outbox_settings, &http)
            .map_err(anyhow::Error::msg)
            .context("invalid helpdesk settings")?,
    );
    let links = match (&webhook_settings.link_secret, &webhook_settings.public_url) {
        (Some(secret), Some(public_url)) => Some(Arc::new(
            LinkSigner::new(secret, public_url)
                .map_err(anyhow::Error::msg)
                .context("invalid tracked link settings")?,
        )),
        _ if tenants.any_while_you_wait() => anyhow::bail!(
            "while_you_wait needs webhooks.public_url and webhooks.link_secret (the comments' tracked links)"
        ),
        _ => None,
    };
    let redis_timeout = Duration::from_millis(settings.events.redis_timeout_ms);
    let store = OutboxStore::new(
        &settings.redis.url,
        key_space,
        redis_timeout,
        outbox_settings.job_ttl_seconds,
    );
    let wake = Arc::new(Notify::new());
    if tenants.any_write_back() {
        let worker = OutboxWorker {
            store: store.clone(),
            tenants: tenants.clone(),
            links: links.clone(),
            events: events.clone(),
            metrics: metrics.outbox.clone(),
            settings: WorkerSettings::from_settings(outbox_settings),
            wake: wake.clone(),
            poll_failures: Default::default(),
        };
        worker.spawn();
    }
    let outbox = OutboxQueue::new(store, wake, metrics.outbox.clone());
    let deliveries = DeliveryLog::new(
        &settings.redis.url,
        key_space.clone(),
        redis_timeout,
        webhook_settings.delivery_ttl_seconds,
    );
    let lms = LmsIntake {
        tenants: tenants.clone(),
        deliveries: deliveries.clone(),
        training: training.clone(),
    };
    let intake = WebhookIntake {
        tenants,
        deliveries,
        suggest: suggest.clone(),
        events: events.clone(),
        outbox: outbox.clone(),
        training: training.clone(),
    };
    let state = WebhookState {
        intake,
        lms,
        outbox,
        timestamp_tolerance_seconds: webhook_settings.timestamp_tolerance_seconds,
    };
    Ok((state, links))
}

/// Checks every tenant's content sources and, when `sync.enabled`, starts their periodic
/// sync.
fn start_sync(
    settings: &Settings,
    key_space: &KeySpace,
    store: ContentStore,
) -> anyhow::Result<SyncService> {
    let sync = sync_service(settings, key_space, store)?;
    if settings.sync.enabled {
        spawn_periodic_sync(
            sync.clone(),
            Duration::from_secs(settings.sync.interval_seconds.max(1)),
        );
    }
    Ok(sync)
}

/// Builds the sync service of `settings` over `store` (the service and `deflect sync`
/// share it).
pub fn sync_service(
    settings: &Settings,
    key_space: &KeySpace,
    store: ContentStore,
) -> anyhow::Result<SyncService> {
    use anyhow::Context;

    let state = SyncState::new(
        &settings.redis.url,
        key_space.clone(),
        Duration::from_millis(settings.events.redis_timeout_ms),
        Duration::from_secs(settings.sync.lock_seconds.max(1)),
    );
    SyncService::from_settings(&settings.sync, &settings.tenants, store, state)
        .map_err(anyhow::Error::msg)
        .context("invalid content sync settings")
}

/// Opens the spool, starts the event writer thread and the stats reader.
fn start_events(
    settings: &Settings,
    event_metrics: Arc<EventMetrics>,
) -> anyhow::Result<(EventSink, EventWriterThread, StatsReader, KeySpace)> {
    use anyhow::Context;

    // rediss:// URLs use rustls; its crypto provider is chosen here once for the process
    // (a second call, as in tests that build several applications, changes nothing).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let events = &settings.events;
    let key_space = KeySpace::new(&events.key_prefix).map_err(anyhow::Error::msg)?;
    let redis_timeout = Duration::from_millis(events.redis_timeout_ms);
    let store = RedisEventStore::new(
        &settings.redis.url,
        key_space.clone(),
        StoreOptions {
            stream_max_len: events.stream_max_len,
            idempotency_ttl_seconds: events.idempotency_ttl_seconds,
            session_ttl_seconds: events.session_ttl_seconds,
            events_per_script_call: events.events_per_script_call,
            connect_timeout: Duration::from_millis(settings.redis.connect_timeout_ms),
            command_timeout: redis_timeout,
        },
    )
    .context("invalid redis settings")?;
    let (spool, recovery) =
        Spool::open(&events.spool_path, events.spool_max_bytes).with_context(|| {
            format!(
                "failed to open the event spool {}",
                events.spool_path.display()
            )
        })?;
    if recovery.records > 0 {
        tracing::info!(
            records = recovery.records,
            "the event spool holds events of an earlier run; replaying them"
        );
    }
    let (sink, writer_thread) = EventSink::start(
        store,
        spool,
        SinkOptions {
            queue_capacity: events.queue_capacity,
            max_batch_events: events.write_batch_events.max(1),
            retry_interval: Duration::from_millis(events.retry_interval_ms),
            unawaited_sync_interval: Duration::from_millis(events.spool_sync_interval_ms),
            batch_linger: Duration::from_millis(events.batch_linger_ms),
        },
        event_metrics,
    )
    .context("failed to start the event writer")?;
    let stats = StatsReader::new(&settings.redis.url, key_space.clone(), redis_timeout);
    Ok((sink, writer_thread, stats, key_space))
}
