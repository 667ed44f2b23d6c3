//! Tenant `acme` with content sources on a local [`FakeSources`]: Zendesk (en-us),
//! Freshdesk and the catalog feed, fast retries, the periodic sync off (tests run syncs
//! with `POST /v1/sync`), and the calls the tests make.

use deflect::configuration::Settings;
use deflect::sync::settings::{
    CatalogSourceSettings, FreshdeskSourceSettings, ZendeskSourceSettings,
};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::fake_sources::{
    FakeSources, CATALOG_TOKEN, FRESHDESK_API_KEY, ZENDESK_EMAIL, ZENDESK_TOKEN,
};
use crate::helpers::{parse_ok, spawn_app_with, Suggestions, TestApp};

/// Points tenant `acme`'s three sources at `sources`, allows its loopback address and
/// retries quickly.
pub fn configure_sources(settings: &mut Settings, sources: &FakeSources) {
    let secret = |value: &str| SecretString::from(value.to_owned());
    let sync = &mut settings.sync;
    sync.enabled = false;
    sync.allow_private_addresses = true;
    sync.initial_backoff_ms = 20;
    sync.max_backoff_ms = 100;
    sync.max_attempts = 3;
    sync.min_request_interval_ms = 0;
    sync.request_timeout_ms = 5_000;
    let acme = settings
        .tenants
        .get_mut("acme")
        .expect("the test tenant acme");
    acme.sources.zendesk = Some(ZendeskSourceSettings {
        enabled: true,
        base_url: sources.base_url.clone(),
        email: ZENDESK_EMAIL.to_owned(),
        api_token: secret(ZENDESK_TOKEN),
        locales: vec!["en-us".to_owned()],
    });
    acme.sources.freshdesk = Some(FreshdeskSourceSettings {
        enabled: true,
        base_url: sources.base_url.clone(),
        api_key: secret(FRESHDESK_API_KEY),
        portal_url: Some("https://support.acme.example".to_owned()),
        locale: "en".to_owned(),
    });
    acme.sources.catalog = Some(CatalogSourceSettings {
        enabled: true,
        feed_url: format!("{}/catalog", sources.base_url),
        api_token: Some(secret(CATALOG_TOKEN)),
        id_prefix: "lms-".to_owned(),
    });
}

/// Starts deflect with acme's sources on `sources`, then whatever `configure` changes.
pub async fn spawn_app_with_sources_and(
    sources: &FakeSources,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_with(|settings| {
        configure_sources(settings, sources);
        configure(settings);
    })
    .await
}

impl TestApp {
    /// `POST /v1/sync?<query>` with acme's admin key.
    pub async fn post_sync(&self, query: &[(&str, &str)]) -> reqwest::Response {
        let url =
            reqwest::Url::parse_with_params(&self.url("/v1/sync"), query).expect("a valid URL");
        self.client
            .post(url)
            .bearer_auth(&self.acme.admin)
            .send()
            .await
            .expect("failed to send the sync request")
    }

    /// Syncs one `source` of acme and returns its summary; fails unless 200.
    pub async fn sync_source(&self, source: &str, full: bool) -> Value {
        let full = if full { "true" } else { "false" };
        let response = self.post_sync(&[("source", source), ("full", full)]).await;
        let answer: Value = parse_ok(response, &format!("POST /v1/sync?source={source}")).await;
        answer["summaries"][0].clone()
    }

    /// What acme's widget is suggested for `draft`.
    pub async fn suggested_for(&self, draft: &str) -> Suggestions {
        self.suggestions(&self.acme.suggest, &json!({"subject": draft, "limit": 5}))
            .await
    }

    /// Whether acme holds document `id`.
    pub async fn holds(&self, id: &str) -> bool {
        let status = self.get_content(&self.acme.admin, id).await.status();
        assert!(
            matches!(status, StatusCode::OK | StatusCode::NOT_FOUND),
            "{status}"
        );
        status == StatusCode::OK
    }
}
