//! Helpdesk webhooks as the helpdesks send them: tenant `acme` with Zendesk, Freshdesk
//! and Standard Webhooks secrets, deliveries signed exactly as each provider signs them
//! (written here from the providers' documentation, not with deflect's code), and the
//! tracked links read back out of posted comments.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use deflect::configuration::Settings;
use deflect::webhooks::settings::{FreshdeskSettings, GenericWebhookSettings, ZendeskSettings};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::Sha256;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::fake_helpdesk::{FakeHelpdesk, FRESHDESK_API_KEY, ZENDESK_EMAIL, ZENDESK_TOKEN};
use crate::helpers::{article, parse_ok, spawn_app_with, TestApp};

pub const ZENDESK_SECRET: &str = "acme-zendesk-webhook-signing-secret";
/// The secret before a rotation; still accepted.
pub const ZENDESK_OLD_SECRET: &str = "acme-previous-zendesk-signing-secret";
pub const FRESHDESK_SECRET: &str = "acme-freshdesk-shared-webhook-secret";
/// `whsec_` and the base64 of a 24-byte key.
pub const GENERIC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The address tracked links start with (the tests call the app's own address instead).
pub const PUBLIC_URL: &str = "https://deflect.example";

/// The help content of the tests' tenant `acme`: three articles with URLs.
pub fn help_articles() -> Vec<Value> {
    vec![
        article(
            "reset-password",
            "Reset your password",
            "Forgot your password? Open the sign-in page, choose Reset password and follow the link we email you.",
        ),
        article(
            "two-factor",
            "Turn on two-factor authentication",
            "Protect your account with a second sign-in step from an authenticator app.",
        ),
        article(
            "export-invoices",
            "Download your invoices",
            "Every invoice is under Billing, Invoices; download it as a PDF.",
        ),
    ]
}

/// Sets up tenant `acme` with all three webhook providers; Zendesk and Freshdesk write
/// back to `zendesk` and `freshdesk` (when given) with "while you wait" and solving on.
/// The outbox retries quickly, allows the fake helpdesks' loopback addresses and makes
/// at most 4 attempts.
pub fn configure_helpdesks(
    settings: &mut Settings,
    zendesk: Option<&FakeHelpdesk>,
    freshdesk: Option<&FakeHelpdesk>,
) {
    let secret = |value: &str| SecretString::from(value.to_owned());
    settings.webhooks.public_url = Some(PUBLIC_URL.to_owned());
    settings.webhooks.link_secret = Some(secret("a-test-link-secret-of-at-least-32-chars"));
    let outbox = &mut settings.webhooks.outbox;
    outbox.allow_private_addresses = true;
    outbox.initial_backoff_ms = 50;
    outbox.max_backoff_ms = 200;
    outbox.poll_interval_ms = 50;
    outbox.max_attempts = 4;
    let acme = settings
        .tenants
        .get_mut("acme")
        .expect("the test tenant acme");
    acme.zendesk = Some(ZendeskSettings {
        webhook_secrets: vec![secret(ZENDESK_SECRET), secret(ZENDESK_OLD_SECRET)],
        base_url: zendesk.map(|server| server.base_url.clone()),
        api_email: zendesk.map(|_| ZENDESK_EMAIL.to_owned()),
        api_token: zendesk.map(|_| secret(ZENDESK_TOKEN)),
        while_you_wait: zendesk.is_some(),
        solve_when_resolved: zendesk.is_some(),
    });
    acme.freshdesk = Some(FreshdeskSettings {
        webhook_secrets: vec![secret(FRESHDESK_SECRET)],
        secret_header: "x-deflect-webhook-secret".to_owned(),
        base_url: freshdesk.map(|server| server.base_url.clone()),
        api_key: freshdesk.map(|_| secret(FRESHDESK_API_KEY)),
        while_you_wait: freshdesk.is_some(),
        solve_when_resolved: freshdesk.is_some(),
    });
    acme.generic = Some(GenericWebhookSettings {
        webhook_secrets: vec![secret(GENERIC_SECRET)],
    });
}

/// Starts deflect with `acme`'s helpdesks (see [`configure_helpdesks`]) and its help
/// articles.
pub async fn spawn_app_with_helpdesks(
    zendesk: Option<&FakeHelpdesk>,
    freshdesk: Option<&FakeHelpdesk>,
) -> TestApp {
    let app = spawn_app_with(|settings| configure_helpdesks(settings, zendesk, freshdesk)).await;
    app.put_documents(&app.acme.admin, &help_articles()).await;
    app
}

/// A webhook delivery: the path with its query, headers and the raw body.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Delivery {
    /// Replaces (or adds) a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Delivery {
        self.headers
            .retain(|(candidate, _)| !candidate.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Delivery {
        self.headers
            .retain(|(candidate, _)| !candidate.eq_ignore_ascii_case(name));
        self
    }
}

pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Now, in Unix seconds, moved by `offset_seconds`.
pub fn unix_now(offset_seconds: i64) -> i64 {
    OffsetDateTime::now_utc().unix_timestamp() + offset_seconds
}

/// A Zendesk delivery signed at `signed_at` (Unix seconds): `X-Zendesk-Webhook-Signature`
/// = base64(HMAC-SHA256(secret, timestamp + body)) with the ISO 8601 timestamp of
/// `X-Zendesk-Webhook-Signature-Timestamp`.
pub fn zendesk_delivery(
    tenant: &str,
    secret: &str,
    body: &Value,
    signed_at: i64,
    invocation_id: &str,
) -> Delivery {
    let body = body.to_string().into_bytes();
    let timestamp = OffsetDateTime::from_unix_timestamp(signed_at)
        .unwrap()
        .format(&Rfc3339)
        .unwrap();
    let signature = STANDARD.encode(hmac_sha256(
        secret.as_bytes(),
        &[timestamp.as_bytes(), &body],
    ));
    Delivery {
        path: format!("/v1/webhooks/zendesk?tenant={tenant}"),
        headers: vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("User-Agent".to_owned(), "Zendesk Webhook".to_owned()),
            (
                "X-Zendesk-Webhook-Id".to_owned(),
                "01GK8E6BKWMJZD2T8Y5AXJQMG5".to_owned(),
            ),
            (
                "X-Zendesk-Webhook-Invocation-Id".to_owned(),
                invocation_id.to_owned(),
            ),
            ("X-Zendesk-Webhook-Signature".to_owned(), signature),
            (
                "X-Zendesk-Webhook-Signature-Timestamp".to_owned(),
                timestamp,
            ),
        ],
        body,
    }
}

/// A Freshdesk automation webhook carrying the shared secret in the custom header the
/// rule sets.
pub fn freshdesk_delivery(tenant: &str, secret: &str, body: &Value) -> Delivery {
    Delivery {
        path: format!("/v1/webhooks/freshdesk?tenant={tenant}"),
        headers: vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("X-Deflect-Webhook-Secret".to_owned(), secret.to_owned()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// A Standard Webhooks delivery: `webhook-signature: v1,<base64 HMAC-SHA256 of
/// "id.timestamp.body" under the key of the whsec_ secret>`.
pub fn generic_delivery(
    tenant: &str,
    secret: &str,
    body: &Value,
    signed_at: i64,
    message_id: &str,
) -> Delivery {
    let body = body.to_string().into_bytes();
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let timestamp = signed_at.to_string();
    let signature = hmac_sha256(
        &key,
        &[
            message_id.as_bytes(),
            b".",
            timestamp.as_bytes(),
            b".",
            &body,
        ],
    );
    Delivery {
        path: format!("/v1/webhooks/generic?tenant={tenant}"),
        headers: vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("webhook-id".to_owned(), message_id.to_owned()),
            ("webhook-timestamp".to_owned(), timestamp),
            (
                "webhook-signature".to_owned(),
                format!("v1,{}", STANDARD.encode(signature)),
            ),
        ],
        body,
    }
}

/// Zendesk's `zen:event-type:ticket.created` event of a ticket.
pub fn zendesk_ticket_created(
    ticket_id: &str,
    subject: &str,
    description: &str,
    tags: &[&str],
) -> Value {
    json!({
        "type": "zen:event-type:ticket.created",
        "account_id": 22129848,
        "id": format!("cbe4028c-7239-495d-b020-{ticket_id:0>12}"),
        "time": "2026-05-20T14:00:00Z",
        "zendesk_event_version": "2022-11-06",
        "subject": format!("zen:ticket:{ticket_id}"),
        "detail": {
            "actor_id": "8447388090494",
            "assignee_id": null,
            "brand_id": "8447346621310",
            "created_at": "2026-05-20T14:00:00Z",
            "custom_status": "8447388086526",
            "description": description,
            "external_id": null,
            "form_id": "8646151517822",
            "group_id": "8447346622718",
            "id": ticket_id,
            "is_public": true,
            "organization_id": "8447346622590",
            "priority": "LOW",
            "requester_id": "8447388090494",
            "status": "NEW",
            "subject": subject,
            "submitter_id": "8447388090494",
            "tags": tags,
            "type": "TASK",
            "updated_at": "2026-05-20T14:00:00Z",
            "via": {"channel": "web_form"}
        },
        "event": {"meta": {"sequence": {"id": "1", "position": 1, "total": 1}}}
    })
}

/// The body a Freshdesk automation rule sends with the placeholders of README filled in.
pub fn freshdesk_ticket_created(
    ticket_id: &str,
    subject: &str,
    description: &str,
    session_id: &str,
) -> Value {
    json!({
        "event": "ticket.created",
        "ticket": {
            "id": ticket_id,
            "subject": subject,
            "description": format!("<div>{description}</div>"),
            "session_id": session_id,
            "tags": "",
            "updated_at": "2026-05-20T14:00:00Z"
        }
    })
}

impl TestApp {
    /// Sends a webhook delivery as it is.
    pub async fn deliver(&self, delivery: &Delivery) -> reqwest::Response {
        let mut request = self.client.post(self.url(&delivery.path));
        for (name, value) in &delivery.headers {
            request = request.header(name, value);
        }
        request
            .body(delivery.body.clone())
            .send()
            .await
            .expect("failed to send the webhook")
    }
}

impl TestApp {
    /// Sends a webhook delivery and returns its answer; fails the test unless it is 200.
    pub async fn deliver_ok(&self, delivery: &Delivery) -> Value {
        parse_ok(
            self.deliver(delivery).await,
            &format!("POST {}", delivery.path),
        )
        .await
    }
}

/// The tokens of the tracked links in a posted comment, in order (the "solved" link last).
pub fn link_tokens(comment: &str) -> Vec<String> {
    let prefix = format!("{PUBLIC_URL}/r/");
    comment
        .split(&prefix)
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or_default().to_owned())
        .collect()
}
