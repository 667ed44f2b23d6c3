//! Builds the application: opens the index, starts the writer, wires services and routes,
//! and binds the listener (port 0 in tests).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::auth::KeyRing;
use crate::configuration::Settings;
use crate::content::ContentStore;
use crate::demo::load_demo_catalog_if_empty;
use crate::domain::TenantId;
use crate::error::{path_error_handler, query_error_handler, route_not_found};
use crate::middleware::{cors, expose_request_id};
use crate::redis_probe::RedisProbe;
use crate::routes::{self, BodyLimits};
use crate::search::{ContentIndex, ContentSearcher, IndexWriterHandle};
use crate::suggest::SuggestService;

/// Shared state of every request handler.
pub struct AppState {
    pub suggest: SuggestService,
    pub store: ContentStore,
    pub keys: Arc<KeyRing>,
    pub redis_probe: RedisProbe,
    pub default_limit: usize,
    pub max_limit: usize,
    pub bulk_batch_size: usize,
}

/// A built, bound, not yet running service.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        use anyhow::Context;

        let keys =
            Arc::new(KeyRing::from_settings(&settings.tenants).context("invalid tenant settings")?);
        let index = ContentIndex::open_or_create(&settings.index.path)?;
        let (writer, _writer_thread) =
            IndexWriterHandle::start(&index, settings.index.writer_options()).context(
                "failed to start the index writer (is another deflect using this index?)",
            )?;
        let store = ContentStore::new(index.clone(), writer);

        if settings.demo.load_when_empty {
            let demo_tenant = TenantId::parse(&settings.demo.tenant)
                .map_err(anyhow::Error::msg)
                .context("invalid demo tenant")?;
            load_demo_catalog_if_empty(&store, &demo_tenant)
                .await
                .context("failed to load the demo catalog")?;
        }

        let searcher = ContentSearcher::new(index, settings.search.tuning());
        let state = web::Data::new(AppState {
            suggest: SuggestService::new(searcher, settings.search.default_locale.clone()),
            store,
            keys: keys.clone(),
            redis_probe: RedisProbe::new(
                &settings.redis.url,
                Duration::from_millis(settings.redis.connect_timeout_ms),
            ),
            default_limit: settings.search.default_limit,
            max_limit: settings.search.max_limit,
            bulk_batch_size: settings.index.bulk_batch_size.max(1),
        });
        let limits = BodyLimits {
            suggest_json_bytes: settings.server.suggest_body_limit_bytes,
            json_bytes: settings.server.json_body_limit_bytes,
            bulk_bytes: settings.server.bulk_body_limit_bytes,
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
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(cors))
                .wrap(from_fn(expose_request_id))
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .app_data(keys_data.clone())
                .app_data(web::QueryConfig::default().error_handler(query_error_handler))
                .app_data(web::PathConfig::default().error_handler(path_error_handler))
                .configure(|config| routes::configure(config, &limits))
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
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
