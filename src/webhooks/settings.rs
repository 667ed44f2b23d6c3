//! The settings of helpdesk webhooks: `[webhooks]` (limits, tracked links, the outbox)
//! and each tenant's `zendesk`, `freshdesk` and `generic` sections (see config/base.toml).

use secrecy::SecretString;
use serde::Deserialize;

/// `[webhooks]`: what every receiver, the tracked links and the outbox share.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    /// Largest accepted webhook body; larger ones get 413.
    pub body_limit_bytes: usize,
    /// How far a signature timestamp may be from the server's clock, either way.
    pub timestamp_tolerance_seconds: i64,
    /// How long a delivery id is remembered, so a redelivery is processed once.
    pub delivery_ttl_seconds: u64,
    /// deflect's public address, the start of the tracked links posted into tickets
    /// (`https://deflect.example.com`). Required when a tenant turns on while-you-wait.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The key that signs tracked links (at least 32 characters). Required when a tenant
    /// turns on while-you-wait; every instance behind one address needs the same.
    #[serde(default)]
    pub link_secret: Option<SecretString>,
    /// Outbound helpdesk API calls, `[webhooks.outbox]`.
    pub outbox: OutboxSettings,
}

/// `[webhooks.outbox]`: how calls to the helpdesks' APIs are made and retried.
#[derive(Debug, Clone, Deserialize)]
pub struct OutboxSettings {
    pub connect_timeout_ms: u64,
    /// The whole call, from connecting to the last byte of the answer.
    pub request_timeout_ms: u64,
    /// Attempts of one call, the first included, before it is given up.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles each time, with jitter.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// A `Retry-After` longer than this is cut to it.
    pub max_retry_after_seconds: u64,
    /// How often the worker looks for calls that are due.
    pub poll_interval_ms: u64,
    /// How long a claimed call is kept from other workers; a worker that dies
    /// mid-call leaves it to be retried after this.
    pub lease_seconds: u64,
    /// Calls one instance makes at the same time.
    pub concurrency: usize,
    /// How long a call, done or not, is remembered (so a redelivered ticket never posts
    /// twice).
    pub job_ttl_seconds: u64,
    /// Lets helpdesk base URLs use plain http and resolve to loopback or private
    /// addresses (tests, on-premise helpdesks). Off, such calls are refused.
    pub allow_private_addresses: bool,
}

/// `[tenants.<id>.zendesk]`.
#[derive(Debug, Clone, Deserialize)]
pub struct ZendeskSettings {
    /// The webhook's signing secret; two during a rotation (the new one and the old).
    pub webhook_secrets: Vec<SecretString>,
    /// `https://<subdomain>.zendesk.com`, for comments and solving tickets.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The agent the API token belongs to.
    #[serde(default)]
    pub api_email: Option<String>,
    #[serde(default)]
    pub api_token: Option<SecretString>,
    /// Post up to 3 lessons as a public comment on new tickets.
    #[serde(default)]
    pub while_you_wait: bool,
    /// Solve the ticket when the customer follows "This solved my problem".
    #[serde(default)]
    pub solve_when_resolved: bool,
}

/// `[tenants.<id>.freshdesk]`.
#[derive(Debug, Clone, Deserialize)]
pub struct FreshdeskSettings {
    /// Shared secrets the automation rule sends (in `secret_header`, or as the Basic
    /// auth password); two during a rotation.
    pub webhook_secrets: Vec<SecretString>,
    #[serde(default = "default_freshdesk_secret_header")]
    pub secret_header: String,
    /// `https://<domain>.freshdesk.com`, for replies and resolving tickets.
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// Reply with up to 3 lessons to new tickets.
    #[serde(default)]
    pub while_you_wait: bool,
    /// Resolve the ticket when the customer follows "This solved my problem".
    #[serde(default)]
    pub solve_when_resolved: bool,
}

/// `[tenants.<id>.generic]`: Standard Webhooks.
#[derive(Debug, Clone, Deserialize)]
pub struct GenericWebhookSettings {
    /// `whsec_<base64>` secrets; two during a rotation.
    pub webhook_secrets: Vec<SecretString>,
}

fn default_freshdesk_secret_header() -> String {
    "x-deflect-webhook-secret".to_owned()
}
