//! `/v1/stats/*`, `/metrics`, the events `/v1/suggest` records itself, and the holdout.

use deflect::domain::TenantId;
use deflect::events::holdout::Holdout;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    article, assert_api_error, build_error_with, event, lesson_event, session_event, spawn_app,
    spawn_app_with, spawn_app_with_demo,
};

/// Noon (UTC) of yesterday, in milliseconds: inside the accepted window, and far from
/// midnight so a scenario never straddles two days.
fn yesterday_noon_ms() -> i64 {
    let now_ms = crate::helpers::milliseconds_ago(0);
    let day_ms = 24 * 3600 * 1000;
    now_ms - now_ms % day_ms - day_ms / 2
}

fn date_of(timestamp_ms: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(timestamp_ms / 1000)
        .unwrap()
        .date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Five sessions: two deflect (one per lesson), two submit a ticket, one just looks.
fn scripted_scenario(noon: i64) -> Vec<Value> {
    let at = |minute: i64| noon + minute * 60_000;
    let shown = |session: &str, lessons: &[&str], ts: i64| {
        event(
            "suggestions_shown",
            session,
            json!({"lesson_ids": lessons, "ts": ts}),
        )
    };
    vec![
        shown("a", &["l1", "l2"], at(0)),
        lesson_event("lesson_opened", "a", "l1", at(1)),
        session_event("resolved", "a", at(2)),
        shown("b", &["l1"], at(0)),
        lesson_event("lesson_opened", "b", "l1", at(1)),
        session_event("ticket_submitted", "b", at(2)),
        shown("c", &["l2"], at(0)),
        lesson_event("helpful", "c", "l2", at(1)),
        session_event("ticket_abandoned", "c", at(2)),
        shown("d", &["l1"], at(0)),
        shown("e", &["l2"], at(0)),
        lesson_event("not_helpful", "e", "l2", at(1)),
        session_event("ticket_submitted", "e", at(2)),
    ]
}

#[tokio::test]
async fn the_summary_of_a_scripted_scenario_has_the_expected_numbers() {
    // Arrange
    let app = spawn_app_with(|settings| {
        if let Some(acme) = settings.tenants.get_mut("acme") {
            acme.cost_per_ticket = Some(25.0);
        }
    })
    .await;
    let noon = yesterday_noon_ms();
    app.record_events(&scripted_scenario(noon)).await;
    let day = date_of(noon);

    // Act
    let summary = app
        .stats("summary", &[("from", day.as_str()), ("to", day.as_str())])
        .await;

    // Assert
    let expected = json!({
        "sessions": 5, "shown": 5, "opened": 2, "helpful": 1, "not_helpful": 1,
        "resolved": 1, "abandoned": 1, "submitted": 2, "deflections": 2,
        "deflections_reverted": 0, "unanswered": 0,
        "deflection_rate": 0.4, "ctr": 0.4, "savings": 50.0,
        "post_submission_tickets": 0, "post_submission_opened": 0,
        "post_submission_deflections": 0,
    });
    assert_eq!(summary["total"], expected, "{summary}");
    assert_eq!(summary["cost_per_ticket"], 25.0, "{summary}");
    let days = summary["days"].as_array().expect("days is a list");
    assert_eq!(days.len(), 1, "{summary}");
    assert_eq!(days[0]["date"], day.as_str(), "{summary}");
    assert_eq!(days[0]["deflections"], 2, "{summary}");
}

#[tokio::test]
async fn the_lessons_report_credits_deflections_and_tickets_submitted_after_viewing() {
    // Arrange
    let app = spawn_app().await;
    app.record_events(&scripted_scenario(yesterday_noon_ms()))
        .await;

    // Act
    let report = app.stats("lessons", &[]).await;

    // Assert
    let expected = json!({"lessons": [
        {"lesson_id": "l1", "shown": 3, "opened": 2, "helpful": 0, "not_helpful": 0,
         "helpful_ratio": null, "deflections": 1, "deflections_reverted": 0,
         "submitted_after_viewing": 1, "post_submission_deflections": 0, "shown_first": 3,
         "shown_second": 0, "deflections_shown_first": 1, "deflections_shown_second": 0},
        {"lesson_id": "l2", "shown": 3, "opened": 0, "helpful": 1, "not_helpful": 1,
         "helpful_ratio": 0.5, "deflections": 1, "deflections_reverted": 0,
         "submitted_after_viewing": 0, "post_submission_deflections": 0, "shown_first": 2,
         "shown_second": 1, "deflections_shown_first": 1, "deflections_shown_second": 0},
    ]});
    assert_eq!(report, expected, "{report}");
}

#[tokio::test]
async fn deflections_are_counted_by_the_position_the_lesson_was_shown_at() {
    // Arrange: three sessions shown l1 first and l2 second.
    let app = spawn_app().await;
    let noon = yesterday_noon_ms();
    let at = |minute: i64| noon + minute * 60_000;
    let mut events = Vec::new();
    for session in ["s1", "s2", "s3"] {
        events.push(event(
            "suggestions_shown",
            session,
            json!({"lesson_ids": ["l1", "l2"], "ts": at(0)}),
        ));
    }

    // Act: s1 is deflected by l2; s2 by l1, then submits a ticket after all; s3 by l1,
    // until a late event shows l2 was opened last before the resolve (the credit moves).
    events.extend([
        lesson_event("lesson_opened", "s1", "l2", at(1)),
        session_event("resolved", "s1", at(2)),
        lesson_event("lesson_opened", "s2", "l1", at(1)),
        session_event("resolved", "s2", at(2)),
        session_event("ticket_submitted", "s2", at(3)),
        lesson_event("lesson_opened", "s3", "l1", at(1)),
        session_event("resolved", "s3", at(3)),
    ]);
    app.record_events(&events).await;
    app.record_events(&[lesson_event("lesson_opened", "s3", "l2", at(2))])
        .await;

    // Assert
    let l1 = app.lesson_figures("l1").await;
    let l2 = app.lesson_figures("l2").await;
    for (figures, expected) in [
        (&l1, json!([3, 3, 0, 0, 0, 0])),
        (&l2, json!([3, 0, 3, 2, 0, 2])),
    ] {
        let actual = json!([
            figures["shown"],
            figures["shown_first"],
            figures["shown_second"],
            figures["deflections"],
            figures["deflections_shown_first"],
            figures["deflections_shown_second"],
        ]);
        assert_eq!(actual, expected, "{figures}");
    }
}

#[tokio::test]
async fn the_lessons_report_honours_its_limit() {
    // Arrange
    let app = spawn_app().await;
    app.record_events(&scripted_scenario(yesterday_noon_ms()))
        .await;

    // Act
    let report = app.stats("lessons", &[("limit", "1")]).await;

    // Assert
    assert_eq!(
        report["lessons"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
}

#[tokio::test]
async fn stats_refuse_bad_ranges_and_keys_without_the_ops_scope() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let reversed = app
        .get_with_query(
            &app.acme.ops,
            "/v1/stats/summary",
            &[("from", "2026-03-02"), ("to", "2026-03-01")],
        )
        .await;
    let not_a_date = app
        .get_with_query(&app.acme.ops, "/v1/stats/lessons", &[("from", "last week")])
        .await;
    let too_long = app
        .get_with_query(
            &app.acme.ops,
            "/v1/stats/gaps",
            &[("from", "2020-01-01"), ("to", "2026-01-01")],
        )
        .await;
    let widget_key = app
        .get_with_query(&app.acme.suggest, "/v1/stats/summary", &[])
        .await;

    // Assert
    assert_api_error(reversed, StatusCode::BAD_REQUEST, "invalid_query_parameter").await;
    assert_api_error(
        not_a_date,
        StatusCode::BAD_REQUEST,
        "invalid_query_parameter",
    )
    .await;
    assert_api_error(too_long, StatusCode::BAD_REQUEST, "invalid_query_parameter").await;
    assert_api_error(widget_key, StatusCode::FORBIDDEN, "insufficient_scope").await;
}

#[tokio::test]
async fn suggest_records_the_lessons_it_showed_for_attribution() {
    // Arrange
    let app = spawn_app_with_demo().await;
    let answer = app
        .suggestions(
            &app.acme.suggest,
            &json!({"text": "how do I reset my password", "session_id": "s1"}),
        )
        .await;
    let shown = answer.ids();

    // Act: the events the widget sends after the customer read the article. They queue
    // behind the event suggest recorded, so they are counted after it.
    app.record_events(&[
        event(
            "lesson_opened",
            "s1",
            json!({"lesson_id": "article-reset-password", "suggestion_id": answer.suggestion_id}),
        ),
        event("resolved", "s1", json!({})),
    ])
    .await;

    // Assert
    assert_eq!(shown.first(), Some(&"article-reset-password"), "{answer:?}");
    let total = app.summary_total().await;
    assert_eq!(total["sessions"], 1, "{total}");
    assert_eq!(total["shown"], 1, "{total}");
    assert_eq!(total["deflection_rate"], 1.0, "{total}");
    let lesson = app.lesson_figures("article-reset-password").await;
    assert_eq!(lesson["shown"], 1, "{lesson}");
    assert_eq!(lesson["deflections"], 1, "{lesson}");
    for other in &shown[1..] {
        let figures = app.lesson_figures(other).await;
        assert_eq!(figures["shown"], 1, "{other}: {figures}");
        assert_eq!(figures["deflections"], 0, "{other}: {figures}");
    }
}

#[tokio::test]
async fn gaps_list_unanswered_and_submitted_drafts_with_personal_data_redacted() {
    // Arrange
    let app = spawn_app_with_demo().await;
    let unanswered_draft = "My parrot speaks Latin, mail jane.doe@example.com or call +1 (555) 123-4567, card 4111 1111 1111 1111";
    for session in ["u1", "u2"] {
        let answer = app
            .suggestions(
                &app.acme.suggest,
                &json!({"text": unanswered_draft, "session_id": session}),
            )
            .await;
        assert!(answer.results.is_empty(), "{answer:?}");
    }
    let shown = app
        .suggestions(
            &app.acme.suggest,
            &json!({"text": "reset password fails for bob@acme.example", "session_id": "g1"}),
        )
        .await;
    assert!(!shown.results.is_empty(), "{shown:?}");
    app.record_events(&[
        event(
            "not_helpful",
            "g1",
            json!({"lesson_id": shown.ids()[0], "reason": "write to jane.doe@example.com instead"}),
        ),
        event("ticket_submitted", "g1", json!({})),
    ])
    .await;

    // Act
    let gaps = app.stats("gaps", &[]).await;

    // Assert
    assert_eq!(
        gaps["unanswered"],
        json!([{"draft": "my parrot speaks latin, mail [email] or call [phone], card [card]", "count": 2}]),
        "{gaps}"
    );
    assert_eq!(
        gaps["submitted_anyway"],
        json!([{"draft": "reset password fails for [email]", "count": 1}]),
        "{gaps}"
    );
    let stored = app.everything_stored_in_redis().await;
    for personal in [
        "jane.doe@example.com",
        "4111 1111",
        "(555) 123-4567",
        "bob@acme.example",
    ] {
        assert!(!stored.contains(personal), "{personal} is stored: {stored}");
    }
}

#[tokio::test]
async fn a_session_counts_among_unanswered_drafts_once_with_its_latest_draft() {
    // Arrange
    let app = spawn_app().await;

    // Act: typing, every keystroke batch asks again.
    for draft in ["printer", "printer jams", "printer jams on page two"] {
        app.suggestions(
            &app.acme.suggest,
            &json!({"text": draft, "session_id": "typing"}),
        )
        .await;
    }
    app.record_events(&[event("ticket_submitted", "typing", json!({}))])
        .await;

    // Assert
    let gaps = app.stats("gaps", &[]).await;
    assert_eq!(
        gaps["unanswered"],
        json!([{"draft": "printer jams on page two", "count": 1}]),
        "{gaps}"
    );
}

#[tokio::test]
async fn held_out_sessions_get_no_suggestions_and_their_submission_rate_is_compared() {
    // Arrange
    let holdout = Holdout::new(50.0);
    let acme = TenantId::parse("acme").unwrap();
    let session_ids: Vec<String> = (0..100).map(|number| format!("session-{number}")).collect();
    let held_out = session_ids
        .iter()
        .find(|id| holdout.is_held_out(&acme, id))
        .unwrap();
    let treated = session_ids
        .iter()
        .find(|id| !holdout.is_held_out(&acme, id))
        .unwrap();
    let app = spawn_app_with(|settings| {
        settings.events.holdout_percent = 50.0;
        settings.demo.load_when_empty = true;
        settings.demo.tenant = "acme".to_owned();
    })
    .await;
    let draft = |session: &str| json!({"text": "reset my password", "session_id": session});

    // Act
    let held_out_answer = app.suggestions(&app.acme.suggest, &draft(held_out)).await;
    let treated_answer = app.suggestions(&app.acme.suggest, &draft(treated)).await;
    app.record_events(&[
        event("ticket_submitted", held_out, json!({})),
        event(
            "lesson_opened",
            treated,
            json!({"lesson_id": "article-reset-password"}),
        ),
        event("resolved", treated, json!({})),
    ])
    .await;
    let summary = app.stats("summary", &[]).await;

    // Assert
    assert!(
        held_out_answer.holdout && held_out_answer.results.is_empty(),
        "{held_out_answer:?}"
    );
    assert!(
        !treated_answer.holdout && !treated_answer.results.is_empty(),
        "{treated_answer:?}"
    );
    assert_eq!(
        summary["holdout"],
        json!({
            "holdout_sessions": 1, "holdout_submitted": 1, "holdout_submission_rate": 1.0,
            "treated_sessions": 1, "treated_submitted": 0, "treated_submission_rate": 0.0,
            "difference": 1.0,
        }),
        "{summary}"
    );
    assert_eq!(summary["total"]["sessions"], 1, "{summary}");
}

#[tokio::test]
async fn each_tenant_holds_out_its_own_share_of_sessions() {
    // Arrange: acme holds out 25% of its sessions; globex sets nothing and gets the
    // default, 75%. Both have the same article.
    let app = spawn_app_with(|settings| {
        settings.events.holdout_percent = 75.0;
        settings.tenants.get_mut("acme").unwrap().holdout_percent = Some(25.0);
    })
    .await;
    let document = article(
        "article-reset-password",
        "Reset your password",
        "Open Settings, then Security, and choose Reset password to get a reset link by e-mail.",
    );
    let session_ids: Vec<String> = (0..40).map(|number| format!("session-{number}")).collect();
    let submits = |number: usize| number.is_multiple_of(2);
    let mut summaries = Vec::new();

    // Act: each tenant's 40 sessions ask once; every other session submits a ticket.
    for (keys, percent) in [(&app.acme, 25.0), (&app.globex, 75.0)] {
        app.put_documents(&keys.admin, std::slice::from_ref(&document))
            .await;
        let tenant = TenantId::parse(keys.tenant).unwrap();
        let holdout = Holdout::new(percent);
        let mut submissions = Vec::new();
        for (number, session) in session_ids.iter().enumerate() {
            let answer = app
                .suggestions(
                    &keys.suggest,
                    &json!({"text": "reset my password", "session_id": session}),
                )
                .await;
            let expected_held_out = holdout.is_held_out(&tenant, session);
            assert_eq!(
                answer.holdout, expected_held_out,
                "{}: {answer:?}",
                keys.tenant
            );
            assert_eq!(answer.results.is_empty(), expected_held_out, "{answer:?}");
            if submits(number) {
                submissions.push(event("ticket_submitted", session, json!({})));
            }
        }
        let response = app
            .post_events(&keys.suggest, &json!({ "events": submissions }))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let held_out: Vec<usize> = (0..session_ids.len())
            .filter(|number| holdout.is_held_out(&tenant, &session_ids[*number]))
            .collect();
        summaries.push((
            keys.tenant,
            held_out,
            app.stats_of(keys, "summary", &[]).await,
        ));
    }

    // Assert: each tenant's figures follow its own share.
    let (_, acme_held_out, _) = &summaries[0];
    let (_, globex_held_out, _) = &summaries[1];
    assert!(
        acme_held_out.len() < 16 && globex_held_out.len() > 24,
        "acme {} and globex {} of 40 sessions held out",
        acme_held_out.len(),
        globex_held_out.len()
    );
    for (tenant, held_out, summary) in &summaries {
        let held_out_submitted = held_out.iter().filter(|number| submits(**number)).count();
        let treated = session_ids.len() - held_out.len();
        let treated_submitted = session_ids.len() / 2 - held_out_submitted;
        let comparison = &summary["holdout"];
        assert_eq!(
            comparison["holdout_sessions"],
            held_out.len(),
            "{tenant}: {summary}"
        );
        assert_eq!(
            comparison["holdout_submitted"], held_out_submitted,
            "{tenant}: {summary}"
        );
        assert_eq!(
            comparison["treated_sessions"], treated,
            "{tenant}: {summary}"
        );
        assert_eq!(
            comparison["treated_submitted"], treated_submitted,
            "{tenant}: {summary}"
        );
        assert_eq!(summary["total"]["sessions"], treated, "{tenant}: {summary}");
    }
}

#[tokio::test]
async fn a_holdout_percentage_over_100_is_refused_at_startup() {
    // Act
    let error = build_error_with(|settings| {
        settings.tenants.get_mut("globex").unwrap().holdout_percent = Some(150.0);
    })
    .await;

    // Assert
    assert!(error.contains("tenants.globex.holdout_percent"), "{error}");
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_show_the_event_pipeline() {
    // Arrange
    let app = spawn_app().await;
    app.suggest(&app.acme.suggest, &json!({"text": "anything at all"}))
        .await;
    app.record_events(&[event("resolved", "s1", json!({}))])
        .await;

    // Act
    let text = app.metrics_text().await;
    let without_key = app.client.get(app.url("/metrics")).send().await.unwrap();

    // Assert
    for expected in [
        "deflect_http_requests_total{route=\"/v1/suggest\",method=\"POST\",status=\"200\"} 1",
        "deflect_http_requests_total{route=\"/v1/events\",method=\"POST\",status=\"200\"} 1",
        "deflect_http_request_duration_seconds_count{route=\"/v1/suggest\"} 1",
        "deflect_suggestions_abstained_total 1",
        "deflect_event_queue_depth 0",
        "deflect_event_spool_bytes 0",
        "# TYPE deflect_redis_errors_total counter",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    assert_api_error(without_key, StatusCode::UNAUTHORIZED, "missing_api_key").await;
}

#[tokio::test]
async fn a_negative_cost_per_ticket_is_refused_at_startup() {
    // Act
    let error = build_error_with(|settings| {
        if let Some(acme) = settings.tenants.get_mut("acme") {
            acme.cost_per_ticket = Some(-5.0);
        }
    })
    .await;

    // Assert
    assert!(error.contains("tenants.acme.cost_per_ticket"), "{error}");
}
