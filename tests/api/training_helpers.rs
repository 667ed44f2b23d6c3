//! Ticket-to-training as agents, an LMS and a helpdesk drive it: tenant `acme` with LMS
//! secrets and a cost per ticket, its lessons and courses, LMS deliveries signed as
//! deflect's generic shape (Standard Webhooks) and as Thinkific signs them (written
//! here from Thinkific's documentation: the hex HMAC-SHA256 of the raw body under the
//! signing key, in `X-Thinkific-Hmac-Sha256`), tickets with a customer and a creation
//! time, and the agent's calls.

use deflect::configuration::Settings;
use deflect::training::LmsSettings;
use secrecy::SecretString;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, Time};

use crate::fake_helpdesk::FakeHelpdesk;
use crate::helpdesk_helpers::{
    configure_helpdesks, generic_delivery, hmac_sha256, unix_now, Delivery, GENERIC_SECRET,
};
use crate::helpers::{lesson, parse_ok, TestApp};

/// acme's LMS secret for the generic shape: `whsec_` and the base64 of 32 bytes.
pub const LMS_SECRET: &str = "whsec_bG1zLXNpZ25pbmcta2V5LW9mLWFjbWUtMzJieXRlcw==";
/// acme's Thinkific signing key (its site's API key).
pub const THINKIFIC_KEY: &str = "3f1c9a7e5b2d4f60a8c1e3b5d7f90214";
/// What handling one ticket costs acme.
pub const COST_PER_TICKET: f64 = 25.0;

/// acme with the helpdesks of [`configure_helpdesks`] (Zendesk writing back to
/// `zendesk` when given), an LMS sending both shapes, and a cost per ticket.
pub fn configure_training(settings: &mut Settings, zendesk: Option<&FakeHelpdesk>) {
    configure_helpdesks(settings, zendesk, None);
    let acme = settings
        .tenants
        .get_mut("acme")
        .expect("the test tenant acme");
    acme.cost_per_ticket = Some(COST_PER_TICKET);
    acme.lms = Some(LmsSettings {
        webhook_secrets: vec![SecretString::from(LMS_SECRET.to_owned())],
        thinkific_secrets: vec![SecretString::from(THINKIFIC_KEY.to_owned())],
        ..LmsSettings::default()
    });
}

/// acme's training catalog: three lessons of three courses (two of them in the catalog
/// too) and one article.
pub fn training_catalog() -> Vec<Value> {
    let course = |id: &str, title: &str, body: &str| {
        json!({"id": id, "kind": "course", "title": title, "body": body, "locale": "en",
               "url": format!("https://learn.acme.example/{id}")})
    };
    vec![
        course(
            "course-accounts",
            "Your account",
            "Passwords and password resets for your account.",
        ),
        course(
            "course-billing",
            "Billing basics",
            "Invoices, payment methods and VAT.",
        ),
        lesson(
            "lesson-reset",
            "course-accounts",
            "Reset your password",
            "Forgot your password? Choose Reset password on the sign-in page and follow the link we email you.",
        ),
        lesson(
            "lesson-two-factor",
            "course-security",
            "Turn on two-factor authentication",
            "Protect your account and password with a second sign-in step from an authenticator app.",
        ),
        lesson(
            "lesson-invoices",
            "course-billing",
            "Download your invoices",
            "Every invoice is under Billing, Invoices; download it as a PDF.",
        ),
        json!({"id": "article-password-rules", "kind": "article", "title": "Password rules",
               "body": "A password needs twelve characters; reset it any time.", "locale": "en",
               "url": "https://help.acme.example/password-rules"}),
    ]
}

/// Noon (UTC) of the day `days_ago` days before today, in milliseconds.
pub fn noon_days_ago(days_ago: i64) -> i64 {
    let day = OffsetDateTime::now_utc().date() - Duration::days(days_ago);
    let noon = day
        .with_time(Time::from_hms(12, 0, 0).unwrap())
        .assume_utc();
    (noon.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The UTC date `days_ago` days before today, `YYYY-MM-DD`.
pub fn date_days_ago(days_ago: i64) -> String {
    let day = OffsetDateTime::now_utc().date() - Duration::days(days_ago);
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// Milliseconds since the epoch as RFC 3339.
pub fn rfc3339(milliseconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(milliseconds) * 1_000_000)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

/// A Thinkific webhook of `resource.action` with `payload`, its id `event_id`.
pub fn thinkific_event(resource: &str, action: &str, event_id: &str, payload: Value) -> Value {
    json!({"id": event_id, "resource": resource, "action": action, "tenant_id": "73394",
           "created_at": rfc3339(crate::helpers::milliseconds_ago(0)), "payload": payload})
}

/// The `user` of a Thinkific payload, known by e-mail.
pub fn thinkific_user(email: &str) -> Value {
    json!({"id": 123456, "email": email, "first_name": "Robin", "last_name": "Smith"})
}

/// An LMS delivery in the generic shape, signed with Standard Webhooks.
pub fn generic_lms_delivery(body: &Value, message_id: &str) -> Delivery {
    Delivery {
        path: "/v1/webhooks/lms?tenant=acme".to_owned(),
        ..generic_delivery("acme", LMS_SECRET, body, unix_now(0), message_id)
    }
}

/// A Thinkific delivery signed with `key`.
pub fn thinkific_delivery(body: &Value, key: &str) -> Delivery {
    let body = body.to_string().into_bytes();
    let signature: String = hmac_sha256(key.as_bytes(), &[&body])
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Delivery {
        path: "/v1/webhooks/lms?tenant=acme".to_owned(),
        headers: vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            (
                "X-Thinkific-Topic".to_owned(),
                "lesson.completed".to_owned(),
            ),
            ("X-Thinkific-Hmac-Sha256".to_owned(), signature),
        ],
        body,
    }
}

impl TestApp {
    /// Sends a new ticket of `customer` created at `created_at_ms` through acme's
    /// Standard Webhooks helpdesk, under a fresh delivery id; returns the answer.
    pub async fn ticket_created(
        &self,
        ticket_id: &str,
        customer: &str,
        created_at_ms: i64,
    ) -> Value {
        let body = json!({"event": "ticket.created",
            "ticket": {"id": ticket_id, "subject": "Question", "description": "How do I reset my password?",
                       "customer_id": customer, "created_at": rfc3339(created_at_ms)}});
        let message_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let delivery = generic_delivery("acme", GENERIC_SECRET, &body, unix_now(0), &message_id);
        self.deliver_ok(&delivery).await
    }

    /// `POST /v1/tickets/{ticket_id}/<what>` with acme's agent key.
    pub async fn ticket_call(
        &self,
        ticket_id: &str,
        what: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/tickets/{ticket_id}/{what}")))
            .bearer_auth(&self.acme.agent)
            .json(body)
            .send()
            .await
            .expect("failed to send the ticket call")
    }

    /// Assigns with acme's agent key; fails the test unless 200.
    pub async fn assign_ok(&self, ticket_id: &str, body: &Value) -> Value {
        let response = self.ticket_call(ticket_id, "assignments", body).await;
        parse_ok(response, &format!("assign from ticket {ticket_id}")).await
    }

    /// `GET /v1/customers/{customer}/assignments` with acme's agent key; fails unless 200.
    pub async fn assignments_of(&self, customer: &str) -> Value {
        let response = self
            .get_with_query(
                &self.acme.agent,
                &format!("/v1/customers/{customer}/assignments"),
                &[],
            )
            .await;
        parse_ok(response, "GET the customer's assignments").await
    }

    /// `DELETE /v1/customers/{customer}/assignments/{lesson_id}` with acme's agent key.
    pub async fn delete_assignment(&self, customer: &str, lesson_id: &str) -> reqwest::Response {
        self.client
            .delete(self.url(&format!("/v1/customers/{customer}/assignments/{lesson_id}")))
            .bearer_auth(&self.acme.agent)
            .send()
            .await
            .expect("failed to send the delete")
    }

    /// `POST /v1/customers/active` with `key`.
    pub async fn post_active(&self, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/customers/active"))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("failed to send the active customers")
    }

    /// Sends an LMS delivery and returns its answer; fails the test unless 200.
    pub async fn lms_ok(&self, delivery: &Delivery) -> Value {
        parse_ok(self.deliver(delivery).await, "POST /v1/webhooks/lms").await
    }
}
