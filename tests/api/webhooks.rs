//! The webhook receivers: deliveries signed as Zendesk, Freshdesk and Standard Webhooks
//! sign them are answered with suggestions and processed once; every delivery that is
//! not genuine gets the same 401, whatever is wrong with it.

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpdesk_helpers::{
    freshdesk_delivery, freshdesk_ticket_created, generic_delivery, spawn_app_with_helpdesks,
    unix_now, zendesk_delivery, zendesk_ticket_created, Delivery, FRESHDESK_SECRET, GENERIC_SECRET,
    ZENDESK_OLD_SECRET, ZENDESK_SECRET,
};
use crate::helpers::{assert_api_error, TestApp};

/// A delivery of acme's Zendesk, signed now.
fn acme_zendesk(body: &Value, invocation_id: &str) -> Delivery {
    zendesk_delivery("acme", ZENDESK_SECRET, body, unix_now(0), invocation_id)
}

fn password_ticket(ticket_id: &str) -> Value {
    zendesk_ticket_created(ticket_id, "Reset password", "I forgot my password", &[])
}

fn generic_ticket(ticket_id: &str, session_id: &str) -> Value {
    json!({"type": "ticket.created", "timestamp": "2026-05-20T14:00:00Z",
           "data": {"id": ticket_id, "subject": "Invoices", "description": "where can I download my invoice",
                    "session_id": session_id}})
}

/// Asserts the one 401 of the webhooks and returns its body.
async fn assert_refused(app: &TestApp, delivery: &Delivery, what: &str) -> String {
    let response = app.deliver(delivery).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "{what} was not refused"
    );
    let body = assert_api_error(response, StatusCode::UNAUTHORIZED, "webhook_unauthorized").await;
    format!("{} {} {}", body.code, body.error_type, body.message)
}

#[tokio::test]
async fn a_zendesk_delivery_is_answered_with_suggestions_and_tells_the_widget_session() {
    // Arrange
    let app = spawn_app_with_helpdesks(None, None).await;
    app.suggestions(
        &app.acme.suggest,
        &json!({"description": "forgot my password", "session_id": "widget-1"}),
    )
    .await;
    let body = zendesk_ticket_created(
        "9",
        "Reset password",
        "I forgot my password",
        &["deflect_session_widget-1"],
    );

    // Act
    let answer = app.deliver_ok(&acme_zendesk(&body, "inv-9")).await;

    // Assert
    assert_eq!(answer["status"], "processed", "{answer}");
    assert_eq!(answer["event"], "ticket.created", "{answer}");
    assert_eq!(answer["session_linked"], true, "{answer}");
    assert_eq!(answer["while_you_wait"], "off", "{answer}");
    assert_eq!(
        answer["suggestions"]["results"][0]["id"], "reset-password",
        "{answer}"
    );
    let total = app.summary_total().await;
    assert_eq!(total["submitted"], 1, "{total}");
    assert_eq!(total["sessions"], 1, "{total}");
}

#[tokio::test]
async fn a_submission_the_widget_and_the_webhook_both_report_counts_once() {
    // Arrange: the widget's session saw suggestions and sent its own ticket_submitted
    let app = spawn_app_with_helpdesks(None, None).await;
    app.suggestions(
        &app.acme.suggest,
        &json!({"description": "forgot my password", "session_id": "widget-3"}),
    )
    .await;
    app.record_events(&[crate::helpers::event(
        "ticket_submitted",
        "widget-3",
        json!({}),
    )])
    .await;
    let body = zendesk_ticket_created(
        "14",
        "Password",
        "forgot my password",
        &["deflect_session_widget-3"],
    );

    // Act
    let response = app.deliver(&acme_zendesk(&body, "inv-14")).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let total = app.summary_total().await;
    assert_eq!(total["submitted"], 1, "{total}");
    assert_eq!(
        app.stats("summary", &[]).await["holdout"]["treated_submitted"],
        1
    );
}

#[tokio::test]
async fn a_delivery_signed_with_the_previous_secret_is_accepted_during_a_rotation() {
    // Arrange
    let app = spawn_app_with_helpdesks(None, None).await;
    let delivery = zendesk_delivery(
        "acme",
        ZENDESK_OLD_SECRET,
        &password_ticket("10"),
        unix_now(-60),
        "inv-10",
    );

    // Act
    let response = app.deliver(&delivery).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_standard_webhooks_delivery_is_answered_and_its_session_told() {
    // Arrange
    let app = spawn_app_with_helpdesks(None, None).await;
    let delivery = generic_delivery(
        "acme",
        GENERIC_SECRET,
        &generic_ticket("T-1", "widget-2"),
        unix_now(0),
        "msg_2Lk8",
    );

    // Act
    let answer = app.deliver_ok(&delivery).await;

    // Assert
    assert_eq!(answer["status"], "processed", "{answer}");
    assert_eq!(answer["ticket_id"], "T-1", "{answer}");
    assert_eq!(
        answer["suggestions"]["results"][0]["id"], "export-invoices",
        "{answer}"
    );
    assert_eq!(app.summary_total().await["submitted"], 1);
}

#[tokio::test]
async fn every_delivery_that_is_not_genuine_gets_the_same_401() {
    // Arrange
    let app = spawn_app_with_helpdesks(None, None).await;
    let body = password_ticket("11");
    let zendesk = acme_zendesk(&body, "inv-11");
    let mut tampered_body = zendesk.clone();
    tampered_body.body[20] ^= 0x01;
    let generic = generic_delivery(
        "acme",
        GENERIC_SECRET,
        &generic_ticket("G", "s"),
        unix_now(0),
        "m1",
    );
    let freshdesk = freshdesk_delivery(
        "acme",
        FRESHDESK_SECRET,
        &freshdesk_ticket_created("5", "a", "b", "s"),
    );
    let cases: Vec<(&str, Delivery)> = vec![
        ("a tampered body", tampered_body),
        (
            "a wrong secret",
            zendesk_delivery("acme", "not-the-secret-of-acme!!", &body, unix_now(0), "i"),
        ),
        (
            "a stale signature",
            zendesk_delivery("acme", ZENDESK_SECRET, &body, unix_now(-301), "i"),
        ),
        (
            // A minute beyond the tolerance: the earlier cases' requests take time, and a
            // signature one second ahead could be within it when it is checked.
            "a future signature",
            zendesk_delivery("acme", ZENDESK_SECRET, &body, unix_now(360), "i"),
        ),
        (
            "no signature",
            zendesk
                .clone()
                .without_header("X-Zendesk-Webhook-Signature"),
        ),
        (
            "no timestamp",
            zendesk
                .clone()
                .without_header("X-Zendesk-Webhook-Signature-Timestamp"),
        ),
        (
            "no invocation id",
            zendesk
                .clone()
                .without_header("X-Zendesk-Webhook-Invocation-Id"),
        ),
        (
            "a garbled signature",
            zendesk
                .clone()
                .with_header("X-Zendesk-Webhook-Signature", "%%%"),
        ),
        (
            "an unknown tenant",
            zendesk_delivery("initech", ZENDESK_SECRET, &body, unix_now(0), "i"),
        ),
        (
            "a tenant without zendesk",
            zendesk_delivery("globex", ZENDESK_SECRET, &body, unix_now(0), "i"),
        ),
        (
            "no tenant",
            Delivery {
                path: "/v1/webhooks/zendesk".to_owned(),
                ..zendesk.clone()
            },
        ),
        (
            "another tenant's secret",
            zendesk_delivery("acme", FRESHDESK_SECRET, &body, unix_now(0), "i"),
        ),
        (
            "a standard id changed",
            generic.clone().with_header("webhook-id", "m2"),
        ),
        (
            "a stale standard timestamp",
            generic_delivery(
                "acme",
                GENERIC_SECRET,
                &generic_ticket("G", "s"),
                unix_now(-400),
                "m1",
            ),
        ),
        (
            "no standard signature",
            generic.clone().without_header("webhook-signature"),
        ),
        (
            "a wrong freshdesk secret",
            freshdesk.clone().with_header(
                "X-Deflect-Webhook-Secret",
                "acme-freshdesk-shared-webhook-secreT",
            ),
        ),
        (
            "no freshdesk secret",
            freshdesk.clone().without_header("X-Deflect-Webhook-Secret"),
        ),
        (
            "a zendesk delivery at the freshdesk route",
            Delivery {
                path: "/v1/webhooks/freshdesk?tenant=acme".to_owned(),
                ..zendesk.clone()
            },
        ),
    ];

    // Act
    let mut answers = Vec::new();
    for (what, delivery) in &cases {
        answers.push(assert_refused(&app, delivery, what).await);
    }

    // Assert: one answer for all, nothing processed
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "{answers:#?}"
    );
    assert_eq!(
        app.metric("deflect_webhooks_unauthorized_total").await,
        cases.len() as f64
    );
    assert_eq!(app.metric("deflect_webhooks_verified_total").await, 0.0);
}

#[tokio::test]
async fn freshdesk_may_send_its_secret_as_basic_auth() {
    // Arrange
    let app = spawn_app_with_helpdesks(None, None).await;
    let basic = |user: &str, password: &str| {
        use base64::Engine;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}")
    };
    let body = freshdesk_ticket_created("31", "Invoices", "download my invoice", "s-31");
    let plain = freshdesk_delivery("acme", FRESHDESK_SECRET, &body)
        .without_header("X-Deflect-Webhook-Secret");

    // Act
    let as_password = plain
        .clone()
        .with_header("Authorization", &basic("freshdesk", FRESHDESK_SECRET));
    let as_api_key = plain
        .clone()
        .with_header("Authorization", &basic(FRESHDESK_SECRET, "X"));
    let wrong = plain
        .clone()
        .with_header("Authorization", &basic("freshdesk", "guess"));

    // Assert
    assert_eq!(app.deliver(&as_password).await.status(), StatusCode::OK);
    let second = app.deliver_ok(&as_api_key).await;
    assert_eq!(second["status"], "duplicate", "{second}");
    assert_refused(&app, &wrong, "a wrong password").await;
}

#[tokio::test]
async fn an_oversized_delivery_gets_413_and_a_genuine_but_malformed_one_400() {
    // Arrange
    let app = spawn_app_with_helpdesks(None, None).await;
    let huge = json!({"type": "zen:event-type:ticket.created",
                      "detail": {"id": "1", "description": "x".repeat(300 * 1024)}});
    let not_a_ticket = json!({"type": "zen:event-type:ticket.created", "detail": {"id": "../1"}});
    let not_json = Delivery {
        body: b"{not json".to_vec(),
        ..zendesk_delivery("acme", ZENDESK_SECRET, &json!({}), unix_now(0), "i")
    };
    let resigned_not_json = {
        // Signed over the broken body, as a misconfigured sender would.
        let timestamp = not_json
            .headers
            .iter()
            .find(|(name, _)| name.ends_with("Timestamp"))
            .unwrap()
            .1
            .clone();
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(ZENDESK_SECRET.as_bytes())
                .unwrap();
        hmac::Mac::update(&mut mac, timestamp.as_bytes());
        hmac::Mac::update(&mut mac, &not_json.body);
        let signature = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            hmac::Mac::finalize(mac).into_bytes(),
        );
        not_json
            .clone()
            .with_header("X-Zendesk-Webhook-Signature", &signature)
    };

    // Act
    let oversized = app.deliver(&acme_zendesk(&huge, "i1")).await;
    let malformed = app.deliver(&acme_zendesk(&not_a_ticket, "i2")).await;
    let broken = app.deliver(&resigned_not_json).await;

    // Assert
    assert_api_error(
        oversized,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    assert_api_error(
        malformed,
        StatusCode::BAD_REQUEST,
        "invalid_webhook_payload",
    )
    .await;
    assert_api_error(broken, StatusCode::BAD_REQUEST, "invalid_webhook_payload").await;
}

#[tokio::test]
async fn events_other_than_ticket_created_are_acknowledged_and_left_alone() {
    // Arrange
    let app = spawn_app_with_helpdesks(None, None).await;
    let mut body = password_ticket("12");
    body["type"] = json!("zen:event-type:ticket.status_changed");

    // Act
    let answer = app.deliver_ok(&acme_zendesk(&body, "inv-12")).await;

    // Assert
    assert_eq!(answer["status"], "ignored", "{answer}");
    assert_eq!(answer["event"], "ticket.status_changed", "{answer}");
    assert!(answer.get("suggestions").is_none(), "{answer}");
}

/// Sends `delivery` `times` times, 8 at once, and returns how often each status came back.
async fn replay(app: &TestApp, delivery: &Delivery, times: usize) -> (usize, usize) {
    let statuses: Vec<String> = futures_util::stream::iter(0..times)
        .map(|_| async {
            let answer = app.deliver_ok(delivery).await;
            answer["status"].as_str().unwrap_or_default().to_owned()
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let processed = statuses
        .iter()
        .filter(|status| *status == "processed")
        .count();
    let duplicates = statuses
        .iter()
        .filter(|status| *status == "duplicate")
        .count();
    (processed, duplicates)
}

#[tokio::test]
async fn the_same_delivery_replayed_1000_times_is_processed_once_for_each_provider() {
    // Arrange
    let app = spawn_app_with_helpdesks(None, None).await;
    let zendesk_body = zendesk_ticket_created(
        "13",
        "Password",
        "forgot my password",
        &["deflect_session_z-13"],
    );
    let deliveries = [
        acme_zendesk(&zendesk_body, "inv-13"),
        freshdesk_delivery(
            "acme",
            FRESHDESK_SECRET,
            &freshdesk_ticket_created("13", "Invoices", "my invoice", "f-13"),
        ),
        generic_delivery(
            "acme",
            GENERIC_SECRET,
            &generic_ticket("13", "g-13"),
            unix_now(0),
            "msg-13",
        ),
    ];

    // Act
    let mut outcomes = Vec::new();
    for delivery in &deliveries {
        outcomes.push(replay(&app, delivery, 1000).await);
    }

    // Assert: one processing each, so one submission per session
    assert_eq!(outcomes, vec![(1, 999); 3]);
    assert_eq!(app.summary_total().await["submitted"], 3);
    assert_eq!(app.metric("deflect_webhooks_duplicate_total").await, 2997.0);
}

#[tokio::test]
async fn hundreds_of_forged_deliveries_over_http_are_all_refused() {
    // Arrange: forgeries of each kind, made from genuine deliveries
    let app = spawn_app_with_helpdesks(None, None).await;
    let mut rng = fastrand::Rng::with_seed(7);
    let mut forgeries = Vec::new();
    for round in 0..100 {
        let ticket = password_ticket(&round.to_string());
        let id = format!("inv-{round}");
        let genuine = [
            acme_zendesk(&ticket, &id),
            generic_delivery(
                "acme",
                GENERIC_SECRET,
                &generic_ticket("G", "s"),
                unix_now(0),
                &id,
            ),
        ];
        for delivery in genuine {
            let mut tampered = delivery.clone();
            let position = rng.usize(..tampered.body.len());
            tampered.body[position] ^= rng.u8(1..);
            forgeries.push(tampered);
            let off = rng.i64(301..100_000) * if rng.bool() { 1 } else { -1 };
            forgeries.push(match delivery.path.contains("zendesk") {
                true => zendesk_delivery("acme", ZENDESK_SECRET, &ticket, unix_now(off), &id),
                false => generic_delivery(
                    "acme",
                    GENERIC_SECRET,
                    &generic_ticket("G", "s"),
                    unix_now(off),
                    &id,
                ),
            });
            let required: [&str; 3] = match delivery.path.contains("zendesk") {
                true => [
                    "X-Zendesk-Webhook-Invocation-Id",
                    "X-Zendesk-Webhook-Signature",
                    "X-Zendesk-Webhook-Signature-Timestamp",
                ],
                false => ["webhook-id", "webhook-timestamp", "webhook-signature"],
            };
            forgeries.push(delivery.clone().without_header(required[rng.usize(..3)]));
        }
        let wrong: String = (0..24).map(|_| rng.alphanumeric()).collect();
        forgeries.push(freshdesk_delivery(
            "acme",
            &wrong,
            &freshdesk_ticket_created("1", "a", "b", "s"),
        ));
    }

    // Act
    let mut statuses = Vec::new();
    for forgery in &forgeries {
        statuses.push(app.deliver(forgery).await.status());
    }

    // Assert
    assert_eq!(forgeries.len(), 700);
    let refused = statuses
        .iter()
        .filter(|status| **status == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(refused, forgeries.len(), "{statuses:?}");
    assert_eq!(app.metric("deflect_webhooks_verified_total").await, 0.0);
}

#[tokio::test]
async fn a_delivery_that_cannot_be_recorded_is_answered_503_so_the_helpdesk_retries_it() {
    // Arrange: Redis is down
    let app = crate::helpers::spawn_app_with_redis_down_and(|settings| {
        crate::helpdesk_helpers::configure_helpdesks(settings, None, None);
    })
    .await;

    // Act
    let response = app
        .deliver(&acme_zendesk(&password_ticket("15"), "inv-15"))
        .await;

    // Assert
    assert_eq!(
        crate::helpers::retry_after(&response).as_deref(),
        Some("10")
    );
    assert_api_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "webhook_unavailable",
    )
    .await;
}
