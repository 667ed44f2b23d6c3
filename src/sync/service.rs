//! Runs the sync of one tenant's source: lock, read the cursor, pull every page, plan,
//! apply in one commit, save the cursor, unlock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::configuration::TenantSettings;
use crate::content::{ContentStore, StoreError};
use crate::domain::TenantId;
use crate::helpdesk::address_guard::check_base_url;
use crate::helpdesk::api::{basic_authorization, guarded_http_client, ApiAccount};
use crate::redis_connection::RedisCallError;

use super::catalog::CatalogSource;
use super::freshdesk::{self, FreshdeskSource};
use super::pages::{FetchOptions, PageError, PageFetcher};
use super::plan::{plan_changes, Pulled};
use super::settings::SyncSettings;
use super::state::{SavedCursor, SyncMode, SyncState};
use super::zendesk::{self, ZendeskSource};

/// A kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Zendesk,
    Freshdesk,
    Catalog,
}

impl SourceKind {
    pub const ALL: [SourceKind; 3] = [
        SourceKind::Zendesk,
        SourceKind::Freshdesk,
        SourceKind::Catalog,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Zendesk => "zendesk",
            SourceKind::Freshdesk => "freshdesk",
            SourceKind::Catalog => "catalog",
        }
    }

    pub fn parse(raw: &str) -> Option<SourceKind> {
        SourceKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw)
    }
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct SyncSummary {
    pub tenant: String,
    pub source: SourceKind,
    pub mode: SyncMode,
    /// Documents added or changed.
    pub upserted: usize,
    /// Documents removed (unpublished, drafted, deleted or no longer listed).
    pub deleted: usize,
    /// Documents the source still has as they are in the index.
    pub unchanged: usize,
    /// Items read but not taken (invalid, or in a locale not synced).
    pub skipped: usize,
    pub pages: usize,
    /// The source answered that nothing changed.
    pub not_modified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("tenant {tenant} has no enabled {source_name} source")]
    NotConfigured {
        tenant: String,
        source_name: &'static str,
    },
    #[error("another run is syncing the {0} source of this tenant")]
    InProgress(&'static str),
    #[error("reading the {source_name} source failed")]
    Source {
        source_name: &'static str,
        #[source]
        error: PageError,
    },
    #[error("the sync state in redis could not be read or written")]
    State(#[from] RedisCallError),
    #[error("the index could not be changed")]
    Store(#[from] StoreError),
}

/// A configured source and how it is read.
struct ConfiguredSource {
    account: ApiAccount,
    reader: SourceReader,
}

enum SourceReader {
    Zendesk(ZendeskSource),
    Freshdesk(FreshdeskSource),
    Catalog(CatalogSource),
}

impl SourceReader {
    fn id_prefix(&self) -> &str {
        match self {
            SourceReader::Zendesk(_) => zendesk::ID_PREFIX,
            SourceReader::Freshdesk(_) => freshdesk::ID_PREFIX,
            SourceReader::Catalog(catalog) => &catalog.id_prefix,
        }
    }
}

/// Runs syncs; cheap to clone.
#[derive(Clone)]
pub struct SyncService {
    store: ContentStore,
    state: SyncState,
    sources: Arc<BTreeMap<(TenantId, SourceKind), ConfiguredSource>>,
    fetch: FetchOptions,
    full_sync_interval_seconds: u64,
}

impl SyncService {
    /// Checks every tenant's enabled sources (URLs, credentials) and builds the service.
    pub fn from_settings(
        settings: &SyncSettings,
        tenants: &BTreeMap<String, TenantSettings>,
        store: ContentStore,
        state: SyncState,
    ) -> Result<SyncService, String> {
        let http = guarded_http_client(
            Duration::from_millis(settings.connect_timeout_ms),
            Duration::from_millis(settings.request_timeout_ms),
            settings.allow_private_addresses,
        )
        .map_err(|error| format!("failed to build the sync http client: {error}"))?;
        let allow_private = settings.allow_private_addresses;
        let mut sources = BTreeMap::new();
        for (tenant_name, tenant_settings) in tenants {
            let tenant = TenantId::parse(tenant_name)?;
            let configured = &tenant_settings.sources;
            let checked = |kind: SourceKind, raw: &str| {
                check_base_url(raw, allow_private).map_err(|error| {
                    format!("tenants.{tenant_name}.sources.{}: {error}", kind.as_str())
                })
            };
            if let Some(zendesk) = configured.zendesk.as_ref().filter(|source| source.enabled) {
                use secrecy::ExposeSecret;
                let base = checked(SourceKind::Zendesk, &zendesk.base_url)?;
                let authorization = basic_authorization(
                    &format!("{}/token", zendesk.email),
                    zendesk.api_token.expose_secret(),
                );
                let reader = SourceReader::Zendesk(ZendeskSource {
                    locales: zendesk
                        .locales
                        .iter()
                        .map(|locale| locale.to_lowercase())
                        .collect(),
                });
                let account = ApiAccount::new(http.clone(), base, authorization, allow_private);
                sources.insert(
                    (tenant.clone(), SourceKind::Zendesk),
                    ConfiguredSource { account, reader },
                );
            }
            if let Some(freshdesk) = configured
                .freshdesk
                .as_ref()
                .filter(|source| source.enabled)
            {
                use secrecy::ExposeSecret;
                let base = checked(SourceKind::Freshdesk, &freshdesk.base_url)?;
                let authorization = basic_authorization(freshdesk.api_key.expose_secret(), "X");
                let reader = SourceReader::Freshdesk(FreshdeskSource {
                    portal_url: freshdesk
                        .portal_url
                        .clone()
                        .unwrap_or_else(|| base.as_str().to_owned()),
                    locale: freshdesk.locale.clone(),
                });
                let account = ApiAccount::new(http.clone(), base, authorization, allow_private);
                sources.insert(
                    (tenant.clone(), SourceKind::Freshdesk),
                    ConfiguredSource { account, reader },
                );
            }
            if let Some(catalog) = configured.catalog.as_ref().filter(|source| source.enabled) {
                use secrecy::ExposeSecret;
                let feed_url = checked(SourceKind::Catalog, &catalog.feed_url)?;
                if crate::domain::ContentId::parse(&format!("{}course-1", catalog.id_prefix))
                    .is_err()
                {
                    return Err(format!(
                        "tenants.{tenant_name}.sources.catalog.id_prefix may not contain whitespace or `/`"
                    ));
                }
                // A full run deletes every document under the prefix that the feed does
                // not list: the prefix must not reach documents of other sources or the
                // admin API.
                let overlaps_another_source = [zendesk::ID_PREFIX, freshdesk::ID_PREFIX]
                    .iter()
                    .any(|other| {
                        other.starts_with(catalog.id_prefix.as_str())
                            || catalog.id_prefix.starts_with(other)
                    });
                if catalog.id_prefix.is_empty() || overlaps_another_source {
                    return Err(format!(
                        "tenants.{tenant_name}.sources.catalog.id_prefix must be set and must not overlap the zendesk (`zd-`) or freshdesk (`fd-`) prefixes: a full catalog run removes every document under it that the feed does not list"
                    ));
                }
                if let Some(token) = &catalog.api_token {
                    let header = format!("Bearer {}", token.expose_secret());
                    if reqwest::header::HeaderValue::from_str(&header).is_err() {
                        return Err(format!(
                            "tenants.{tenant_name}.sources.catalog.api_token holds characters an HTTP header cannot carry (a line break?)"
                        ));
                    }
                }
                let account = match &catalog.api_token {
                    Some(token) => ApiAccount::new(
                        http.clone(),
                        feed_url.clone(),
                        secrecy::SecretString::from(format!("Bearer {}", token.expose_secret())),
                        allow_private,
                    ),
                    None => ApiAccount::anonymous(http.clone(), feed_url.clone(), allow_private),
                };
                let reader = SourceReader::Catalog(CatalogSource {
                    feed_url,
                    id_prefix: catalog.id_prefix.clone(),
                });
                sources.insert(
                    (tenant.clone(), SourceKind::Catalog),
                    ConfiguredSource { account, reader },
                );
            }
        }
        Ok(SyncService {
            store,
            state,
            sources: Arc::new(sources),
            fetch: FetchOptions {
                max_attempts: settings.max_attempts.max(1),
                retry: settings.retry_policy(),
                min_request_interval: Duration::from_millis(settings.min_request_interval_ms),
                max_pages: settings.max_pages.max(1),
                max_page_bytes: settings.max_page_bytes.max(1),
            },
            full_sync_interval_seconds: settings.full_sync_interval_seconds,
        })
    }

    /// Every enabled source, by tenant.
    pub fn configured_sources(&self) -> Vec<(TenantId, SourceKind)> {
        self.sources.keys().cloned().collect()
    }

    /// The enabled sources of `tenant`, or only `only` when given (which must be one).
    pub fn sources_of(
        &self,
        tenant: &TenantId,
        only: Option<SourceKind>,
    ) -> Result<Vec<SourceKind>, SyncError> {
        let sources: Vec<SourceKind> = self
            .sources
            .keys()
            .filter(|(source_tenant, kind)| {
                source_tenant == tenant && only.is_none_or(|only| only == *kind)
            })
            .map(|(_, kind)| *kind)
            .collect();
        if sources.is_empty() {
            return Err(SyncError::NotConfigured {
                tenant: tenant.to_string(),
                source_name: only.map_or("content", SourceKind::as_str),
            });
        }
        Ok(sources)
    }

    /// Runs one sync of `source` of `tenant`: full when `force_full` or when one is due.
    #[tracing::instrument(name = "sync", skip_all, fields(tenant = %tenant, source = source.as_str()))]
    pub async fn sync(
        &self,
        tenant: &TenantId,
        source: SourceKind,
        force_full: bool,
    ) -> Result<SyncSummary, SyncError> {
        let configured = self.sources.get(&(tenant.clone(), source)).ok_or_else(|| {
            SyncError::NotConfigured {
                tenant: tenant.to_string(),
                source_name: source.as_str(),
            }
        })?;
        let lock = self
            .state
            .try_lock(tenant, source.as_str())
            .await?
            .ok_or(SyncError::InProgress(source.as_str()))?;
        // Dropped unreleased (a panic), the lock releases itself.
        let outcome = self
            .sync_locked(tenant, source, configured, force_full)
            .await;
        lock.release().await;
        match &outcome {
            Ok(summary) => tracing::info!(
                mode = ?summary.mode,
                upserted = summary.upserted,
                deleted = summary.deleted,
                unchanged = summary.unchanged,
                skipped = summary.skipped,
                pages = summary.pages,
                "sync done"
            ),
            Err(error) => {
                tracing::warn!(error = %crate::error::error_chain(error), "sync failed; index and cursor unchanged")
            }
        }
        outcome
    }

    async fn sync_locked(
        &self,
        tenant: &TenantId,
        source: SourceKind,
        configured: &ConfiguredSource,
        force_full: bool,
    ) -> Result<SyncSummary, SyncError> {
        let saved = self.state.read_cursor(tenant, source.as_str()).await?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mode = match configured.reader {
            // Freshdesk lists everything every time.
            SourceReader::Freshdesk(_) => SyncMode::Full,
            _ => saved.next_mode(now, self.full_sync_interval_seconds, force_full),
        };
        let pages = PageFetcher::new(configured.account.clone(), self.fetch);
        let source_error = |error| SyncError::Source {
            source_name: source.as_str(),
            error,
        };
        let pulled: Pulled = match &configured.reader {
            SourceReader::Zendesk(zendesk) => zendesk.pull(&pages, &saved, mode).await,
            SourceReader::Freshdesk(freshdesk) => freshdesk.pull(&pages).await,
            SourceReader::Catalog(catalog) => catalog.pull(&pages, &saved, mode).await,
        }
        .map_err(source_error)?;

        // With the content log on, what deflect holds is the log's snapshot, not this
        // instance's index (which may lag behind it).
        let held = self
            .store
            .documents_with_id_prefix(tenant, configured.reader.id_prefix())
            .await?;
        let plan = if pulled.not_modified {
            Default::default()
        } else {
            plan_changes(&pulled, &held, mode)
        };
        if !plan.changes.is_empty() {
            self.store.apply_changes(tenant, plan.changes).await?;
        }
        let next_cursor = SavedCursor {
            full_at: if mode == SyncMode::Full {
                Some(now)
            } else {
                saved.full_at
            },
            ..pulled.cursor
        };
        self.state
            .write_cursor(tenant, source.as_str(), &next_cursor)
            .await?;
        Ok(SyncSummary {
            tenant: tenant.to_string(),
            source,
            mode,
            upserted: plan.upserted,
            deleted: plan.deleted,
            unchanged: plan.unchanged,
            skipped: pulled.skipped,
            pages: pulled.pages,
            not_modified: pulled.not_modified,
        })
    }
}
