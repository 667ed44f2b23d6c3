//! `POST /v1/events`: intake, idempotency and attribution, read back through the stats
//! endpoints against the real Redis (each test under its own key prefix).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    assert_api_error, event, lesson_event, milliseconds_ago, retry_after, session_event, spawn_app,
    spawn_app_with,
};

fn statuses(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .expect("results is a list")
        .iter()
        .map(|result| result["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn every_event_type_is_accepted_and_counted_once() {
    // Arrange
    let app = spawn_app().await;
    let events = [
        event(
            "suggestions_shown",
            "s1",
            json!({"lesson_ids": ["l1", "l2"]}),
        ),
        lesson_event("lesson_opened", "s1", "l1", milliseconds_ago(50)),
        lesson_event("helpful", "s1", "l1", milliseconds_ago(40)),
        lesson_event("not_helpful", "s1", "l2", milliseconds_ago(30)),
        session_event("resolved", "s1", milliseconds_ago(20)),
        session_event("ticket_abandoned", "s2", milliseconds_ago(20)),
        session_event("ticket_submitted", "s3", milliseconds_ago(10)),
    ];

    // Act
    let answer = app.record_events(&events).await;
    let total = app.summary_total().await;

    // Assert
    assert_eq!(answer["accepted"], 7, "{answer}");
    assert_eq!(answer["spooled"], false, "{answer}");
    assert_eq!(statuses(&answer), vec!["accepted"; 7], "{answer}");
    for (field, expected) in [
        ("sessions", 1),
        ("shown", 1),
        ("opened", 1),
        ("helpful", 1),
        ("not_helpful", 1),
        ("resolved", 1),
        ("abandoned", 1),
        ("submitted", 1),
        ("deflections", 1),
    ] {
        assert_eq!(total[field], expected, "{field}: {total}");
    }
}

#[tokio::test]
async fn a_retried_batch_is_answered_as_duplicates_and_counted_once() {
    // Arrange
    let app = spawn_app().await;
    let events = [
        lesson_event("lesson_opened", "s1", "l1", milliseconds_ago(20)),
        session_event("resolved", "s1", milliseconds_ago(10)),
    ];
    let first = app.record_events(&events).await;

    // Act
    let retry = app.record_events(&events).await;
    let total = app.summary_total().await;

    // Assert
    assert_eq!(statuses(&first), vec!["accepted", "accepted"], "{first}");
    assert_eq!(statuses(&retry), vec!["duplicate", "duplicate"], "{retry}");
    assert_eq!(retry["duplicates"], 2, "{retry}");
    assert_eq!(total["opened"], 1, "{total}");
    assert_eq!(total["resolved"], 1, "{total}");
    assert_eq!(total["deflections"], 1, "{total}");
}

#[tokio::test]
async fn a_full_batch_spread_over_many_script_calls_attributes_and_dedupes_across_them() {
    // Arrange: 166 sessions whose shown, opened and resolved events lie 166 places apart,
    // so each session's events reach Redis in different script calls (25 events each,
    // set here so the test keeps spanning calls whatever the default becomes).
    let app = spawn_app_with(|settings| settings.events.events_per_script_call = 25).await;
    let sessions: Vec<String> = (0..166).map(|number| format!("s{number}")).collect();
    let mut events = Vec::new();
    for session in &sessions {
        events.push(event(
            "suggestions_shown",
            session,
            json!({"lesson_ids": ["l1", "l2"], "ts": milliseconds_ago(60)}),
        ));
    }
    for session in &sessions {
        events.push(lesson_event(
            "lesson_opened",
            session,
            "l2",
            milliseconds_ago(50),
        ));
    }
    for session in &sessions {
        events.push(session_event("resolved", session, milliseconds_ago(40)));
    }

    // Act
    let first = app.record_events(&events).await;
    let retry = app.record_events(&events).await;
    let total = app.summary_total().await;

    // Assert
    assert_eq!(first["accepted"], 498, "{first}");
    assert_eq!(retry["duplicates"], 498, "{retry}");
    for (field, expected) in [
        ("sessions", 166),
        ("shown", 166),
        ("opened", 166),
        ("resolved", 166),
        ("deflections", 166),
    ] {
        assert_eq!(total[field], expected, "{field}: {total}");
    }
    assert_eq!(app.lesson_figures("l2").await["deflections"], 166);
}

#[tokio::test]
async fn the_same_event_id_twice_in_one_batch_counts_once() {
    // Arrange
    let app = spawn_app().await;
    let resolved = session_event("resolved", "s1", milliseconds_ago(10));

    // Act
    let answer = app.record_events(&[resolved.clone(), resolved]).await;

    // Assert
    assert_eq!(statuses(&answer), vec!["accepted", "duplicate"], "{answer}");
    assert_eq!(app.summary_total().await["resolved"], 1);
}

#[tokio::test]
async fn one_bad_event_is_rejected_with_a_reason_and_the_rest_of_the_batch_kept() {
    // Arrange
    let app = spawn_app().await;
    let events = [
        session_event("resolved", "s1", milliseconds_ago(10)),
        event("helpful", "s1", json!({})),
        event("teleported", "s1", json!({})),
        json!("not an object"),
        event("resolved", "s 2", json!({})),
        event("resolved", "s3", json!({"ts": "yesterday-ish"})),
        event(
            "resolved",
            "s4",
            json!({"ts": milliseconds_ago(30 * 24 * 3600)}),
        ),
    ];

    // Act
    let answer = app.record_events(&events).await;

    // Assert
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(answer["rejected"], 6, "{answer}");
    let codes: Vec<&str> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["code"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        codes,
        vec![
            "-",
            "invalid_lesson_id",
            "unknown_event_type",
            "malformed_event",
            "invalid_session_id",
            "invalid_timestamp",
            "timestamp_out_of_range"
        ],
        "{answer}"
    );
    assert_eq!(app.summary_total().await["resolved"], 1);
}

#[tokio::test]
async fn a_long_reason_is_capped_instead_of_refused() {
    // Arrange
    let app = spawn_app().await;
    let long_reason = "too long ".repeat(1_000);

    // Act
    let answer = app
        .record_events(&[event(
            "not_helpful",
            "s1",
            json!({"lesson_id": "l1", "reason": long_reason}),
        )])
        .await;

    // Assert
    assert_eq!(statuses(&answer), vec!["accepted"], "{answer}");
    assert_eq!(app.lesson_figures("l1").await["not_helpful"], 1);
}

#[tokio::test]
async fn a_batch_over_512_kib_is_refused_with_413() {
    // Arrange
    let app = spawn_app().await;
    let padding = "x".repeat(1_500);
    let events: Vec<Value> = (0..400)
        .map(|_| event("resolved", "s1", json!({"reason": padding})))
        .collect();

    // Act
    let response = app
        .post_events(&app.acme.suggest, &json!({ "events": events }))
        .await;

    // Assert
    assert_api_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(app.summary_total().await["resolved"], 0);
}

#[tokio::test]
async fn a_batch_of_more_than_500_events_is_refused_whole() {
    // Arrange
    let app = spawn_app().await;
    let events: Vec<Value> = (0..501)
        .map(|_| event("resolved", "s1", json!({})))
        .collect();

    // Act
    let response = app
        .post_events(&app.acme.suggest, &json!({ "events": events }))
        .await;

    // Assert
    assert_api_error(response, StatusCode::BAD_REQUEST, "invalid_event_batch").await;
}

#[tokio::test]
async fn a_body_without_an_events_list_is_malformed() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .post_events(&app.acme.suggest, &json!({"event": []}))
        .await;

    // Assert
    assert_api_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
}

#[tokio::test]
async fn agents_may_send_events_and_ops_keys_may_not() {
    // Arrange
    let app = spawn_app().await;
    let body = json!({"events": [event("resolved", "s1", json!({}))]});

    // Act
    let as_agent = app.post_events(&app.acme.agent, &body).await;
    let as_ops = app.post_events(&app.acme.ops, &body).await;

    // Assert
    assert_eq!(as_agent.status(), StatusCode::OK);
    assert_api_error(as_ops, StatusCode::FORBIDDEN, "insufficient_scope").await;
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_events() {
    // Arrange
    let app = spawn_app().await;
    let body = json!({"events": [session_event("ticket_submitted", "s1", milliseconds_ago(5))]});
    let response = app.post_events(&app.globex.suggest, &body).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Act
    let acme_total = app.summary_total().await;

    // Assert
    assert_eq!(acme_total["submitted"], 0, "{acme_total}");
}

// Attribution.

#[tokio::test]
async fn engaging_then_resolving_credits_the_last_lesson_engaged() {
    // Arrange
    let app = spawn_app().await;
    let events = [
        event(
            "suggestions_shown",
            "s1",
            json!({"lesson_ids": ["l1", "l2"], "ts": milliseconds_ago(60)}),
        ),
        lesson_event("lesson_opened", "s1", "l1", milliseconds_ago(50)),
        lesson_event("lesson_opened", "s1", "l2", milliseconds_ago(40)),
        lesson_event("helpful", "s1", "l2", milliseconds_ago(35)),
        session_event("resolved", "s1", milliseconds_ago(30)),
    ];

    // Act
    app.record_events(&events).await;

    // Assert
    let total = app.summary_total().await;
    assert_eq!(total["deflections"], 1, "{total}");
    assert_eq!(total["deflection_rate"], 1.0, "{total}");
    assert_eq!(app.lesson_figures("l2").await["deflections"], 1);
    assert_eq!(app.lesson_figures("l1").await["deflections"], 0);
}

#[tokio::test]
async fn abandoning_after_marking_a_lesson_helpful_is_a_deflection() {
    // Arrange
    let app = spawn_app().await;
    let events = [
        lesson_event("helpful", "s1", "l1", milliseconds_ago(50)),
        session_event("ticket_abandoned", "s1", milliseconds_ago(40)),
    ];

    // Act
    app.record_events(&events).await;

    // Assert
    assert_eq!(app.summary_total().await["deflections"], 1);
    assert_eq!(app.lesson_figures("l1").await["deflections"], 1);
}

#[tokio::test]
async fn resolving_without_engaging_with_a_lesson_is_no_deflection() {
    // Arrange
    let app = spawn_app().await;
    let events = [
        event(
            "suggestions_shown",
            "s1",
            json!({"lesson_ids": ["l1"], "ts": milliseconds_ago(60)}),
        ),
        lesson_event("not_helpful", "s1", "l1", milliseconds_ago(50)),
        session_event("resolved", "s1", milliseconds_ago(40)),
    ];

    // Act
    app.record_events(&events).await;

    // Assert
    let total = app.summary_total().await;
    assert_eq!(total["resolved"], 1, "{total}");
    assert_eq!(total["deflections"], 0, "{total}");
}

#[tokio::test]
async fn a_session_deflects_at_most_once() {
    // Arrange
    let app = spawn_app().await;
    let events = [
        lesson_event("lesson_opened", "s1", "l1", milliseconds_ago(50)),
        session_event("resolved", "s1", milliseconds_ago(40)),
        session_event("ticket_abandoned", "s1", milliseconds_ago(30)),
        session_event("resolved", "s1", milliseconds_ago(20)),
    ];

    // Act
    app.record_events(&events).await;

    // Assert
    let total = app.summary_total().await;
    assert_eq!(total["resolved"], 2, "{total}");
    assert_eq!(total["deflections"], 1, "{total}");
}

#[tokio::test]
async fn a_ticket_submitted_after_a_deflection_takes_it_back_and_says_so() {
    // Arrange
    let app = spawn_app().await;
    app.record_events(&[
        event(
            "suggestions_shown",
            "s1",
            json!({"lesson_ids": ["l1"], "ts": milliseconds_ago(60)}),
        ),
        lesson_event("lesson_opened", "s1", "l1", milliseconds_ago(50)),
        session_event("resolved", "s1", milliseconds_ago(40)),
    ])
    .await;
    let before = app.summary_total().await;

    // Act
    app.record_events(&[session_event(
        "ticket_submitted",
        "s1",
        milliseconds_ago(10),
    )])
    .await;

    // Assert
    let after = app.summary_total().await;
    assert_eq!(before["deflections"], 1, "{before}");
    assert_eq!(after["deflections"], 0, "{after}");
    assert_eq!(after["deflections_reverted"], 1, "{after}");
    assert_eq!(after["submitted"], 1, "{after}");
    let lesson = app.lesson_figures("l1").await;
    assert_eq!(lesson["deflections"], 0, "{lesson}");
    assert_eq!(lesson["deflections_reverted"], 1, "{lesson}");
    assert_eq!(lesson["submitted_after_viewing"], 1, "{lesson}");
}

#[tokio::test]
async fn a_session_that_submitted_cannot_deflect_later() {
    // Arrange
    let app = spawn_app().await;
    let events = [
        lesson_event("lesson_opened", "s1", "l1", milliseconds_ago(50)),
        session_event("ticket_submitted", "s1", milliseconds_ago(40)),
        session_event("resolved", "s1", milliseconds_ago(30)),
    ];

    // Act
    app.record_events(&events).await;

    // Assert
    let total = app.summary_total().await;
    assert_eq!(total["deflections"], 0, "{total}");
    assert_eq!(total["deflections_reverted"], 0, "{total}");
}

#[tokio::test]
async fn an_engagement_that_arrives_after_the_resolve_it_preceded_still_deflects() {
    // Arrange: the widget's batches arrive out of order.
    let app = spawn_app().await;
    app.record_events(&[session_event("resolved", "s1", milliseconds_ago(30))])
        .await;
    let before = app.summary_total().await;

    // Act
    app.record_events(&[lesson_event(
        "lesson_opened",
        "s1",
        "l1",
        milliseconds_ago(50),
    )])
    .await;

    // Assert
    assert_eq!(before["deflections"], 0, "{before}");
    assert_eq!(app.summary_total().await["deflections"], 1);
    assert_eq!(app.lesson_figures("l1").await["deflections"], 1);
}

#[tokio::test]
async fn a_late_engagement_that_was_the_last_before_the_resolve_takes_the_credit() {
    // Arrange
    let app = spawn_app().await;
    app.record_events(&[
        lesson_event("lesson_opened", "s1", "l1", milliseconds_ago(50)),
        session_event("resolved", "s1", milliseconds_ago(30)),
    ])
    .await;

    // Act
    app.record_events(&[lesson_event(
        "lesson_opened",
        "s1",
        "l2",
        milliseconds_ago(40),
    )])
    .await;

    // Assert
    assert_eq!(app.summary_total().await["deflections"], 1);
    assert_eq!(app.lesson_figures("l1").await["deflections"], 0);
    assert_eq!(app.lesson_figures("l2").await["deflections"], 1);
}

#[tokio::test]
async fn an_engagement_after_the_resolve_is_no_deflection() {
    // Arrange
    let app = spawn_app().await;
    app.record_events(&[session_event("resolved", "s1", milliseconds_ago(50))])
        .await;

    // Act
    app.record_events(&[lesson_event(
        "lesson_opened",
        "s1",
        "l1",
        milliseconds_ago(10),
    )])
    .await;

    // Assert
    assert_eq!(app.summary_total().await["deflections"], 0);
}

#[tokio::test]
async fn events_of_an_unknown_session_count_but_add_no_session() {
    // Arrange
    let app = spawn_app().await;

    // Act
    app.record_events(&[
        lesson_event("lesson_opened", "never-shown", "l1", milliseconds_ago(20)),
        session_event("ticket_submitted", "never-shown", milliseconds_ago(10)),
    ])
    .await;

    // Assert
    let total = app.summary_total().await;
    assert_eq!(total["opened"], 1, "{total}");
    assert_eq!(total["submitted"], 1, "{total}");
    assert_eq!(total["sessions"], 0, "{total}");
    assert_eq!(total["deflection_rate"], 0.0, "{total}");
}

#[tokio::test]
async fn a_batch_larger_than_the_free_queue_is_refused_with_503_and_retry_after() {
    // Arrange
    let app = spawn_app_with(|settings| settings.events.queue_capacity = 1).await;
    let body = json!({"events": [
        event("resolved", "s1", json!({})),
        event("resolved", "s2", json!({})),
    ]});

    // Act
    let response = app.post_events(&app.acme.suggest, &body).await;

    // Assert
    assert_eq!(retry_after(&response).as_deref(), Some("1"));
    assert_api_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "event_queue_full",
    )
    .await;
}

#[tokio::test]
async fn events_must_be_sent_as_json() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .client
        .post(app.url("/v1/events"))
        .bearer_auth(&app.acme.suggest)
        .header("content-type", "text/plain")
        .body(r#"{"events": []}"#)
        .send()
        .await
        .unwrap();

    // Assert
    assert_api_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "invalid_content_type",
    )
    .await;
}
