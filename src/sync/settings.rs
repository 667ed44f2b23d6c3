//! The settings of content sync: `[sync]` (timing, retries, limits) and each tenant's
//! sources, `[tenants.<id>.sources.zendesk|freshdesk|catalog]` (see config/base.toml).

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::helpdesk::retry::RetryPolicy;

/// `[sync]`: what every source's sync shares.
#[derive(Debug, Clone, Deserialize)]
pub struct SyncSettings {
    /// Runs the periodic in-service sync of every enabled source.
    pub enabled: bool,
    /// Time between two periodic runs of one source (jittered by a tenth either way).
    pub interval_seconds: u64,
    /// A run is a full listing (which also finds deleted items) when the last one is at
    /// least this old; the runs between are incremental.
    pub full_sync_interval_seconds: u64,
    pub connect_timeout_ms: u64,
    /// One page request, from connecting to the last byte.
    pub request_timeout_ms: u64,
    /// Attempts of one page, the first included, before the run fails.
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// A `Retry-After` longer than this is cut to it.
    pub max_retry_after_seconds: u64,
    /// Least time between two requests of one run (stays under the APIs' rate limits).
    pub min_request_interval_ms: u64,
    /// Pages one run reads from one source at most; beyond, the run fails.
    pub max_pages: usize,
    /// The largest page body read; a larger page fails the run.
    pub max_page_bytes: usize,
    /// How long a run keeps other instances from syncing the same source.
    pub lock_seconds: u64,
    /// Lets source URLs use plain http and loopback or private addresses.
    pub allow_private_addresses: bool,
}

impl SyncSettings {
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            initial_backoff: Duration::from_millis(self.initial_backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms),
            max_retry_after: Duration::from_secs(self.max_retry_after_seconds),
        }
    }
}

/// `[tenants.<id>.sources]`: where a tenant's content comes from.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SourceSettings {
    #[serde(default)]
    pub zendesk: Option<ZendeskSourceSettings>,
    #[serde(default)]
    pub freshdesk: Option<FreshdeskSourceSettings>,
    #[serde(default)]
    pub catalog: Option<CatalogSourceSettings>,
}

/// `[tenants.<id>.sources.zendesk]`: a Zendesk Help Center.
#[derive(Debug, Clone, Deserialize)]
pub struct ZendeskSourceSettings {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// `https://<subdomain>.zendesk.com`.
    pub base_url: String,
    /// The agent or admin the API token belongs to.
    pub email: String,
    pub api_token: SecretString,
    /// Locales kept (`en-us`, `de`); every locale when empty.
    #[serde(default)]
    pub locales: Vec<String>,
}

/// `[tenants.<id>.sources.freshdesk]`: Freshdesk solution articles.
#[derive(Debug, Clone, Deserialize)]
pub struct FreshdeskSourceSettings {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// `https://<domain>.freshdesk.com`.
    pub base_url: String,
    pub api_key: SecretString,
    /// Where customers read the articles (`https://support.acme.com`); `base_url` when
    /// unset.
    #[serde(default)]
    pub portal_url: Option<String>,
    /// The locale of the articles.
    #[serde(default = "default_locale")]
    pub locale: String,
}

/// `[tenants.<id>.sources.catalog]`: an LMS catalog feed of courses and lessons.
#[derive(Debug, Clone, Deserialize)]
pub struct CatalogSourceSettings {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// The feed's first page, `https://lms.example.com/deflect/catalog`.
    pub feed_url: String,
    /// Sent as `Authorization: Bearer <token>` when set.
    #[serde(default)]
    pub api_token: Option<SecretString>,
    /// Put before the feed's ids: courses become `<prefix>course-<id>`, lessons
    /// `<prefix>lesson-<id>`.
    #[serde(default = "default_catalog_prefix")]
    pub id_prefix: String,
}

fn enabled_by_default() -> bool {
    true
}

fn default_locale() -> String {
    "en".to_owned()
}

fn default_catalog_prefix() -> String {
    "catalog-".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debug_output_of_source_settings_hides_every_credential() {
        // Arrange
        let settings: SourceSettings = toml::from_str(
            r#"
            [zendesk]
            base_url = "https://acme.zendesk.com"
            email = "bot@acme.example"
            api_token = "zendesk-token-secret-1"
            [freshdesk]
            base_url = "https://acme.freshdesk.com"
            api_key = "freshdesk-key-secret-2"
            [catalog]
            feed_url = "https://lms.acme.example/catalog"
            api_token = "catalog-token-secret-3"
            "#,
        )
        .unwrap();

        // Act
        let printed = format!("{settings:?}");

        // Assert
        for secret in [
            "zendesk-token-secret-1",
            "freshdesk-key-secret-2",
            "catalog-token-secret-3",
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("acme.zendesk.com"));
    }
}
