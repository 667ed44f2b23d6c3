//! The ROI report over a scripted scenario, all through the HTTP API: ten active
//! customers and one unlisted, tickets from the helpdesk's webhook on known days,
//! assignments made from tickets, completions and an enrollment from the LMS (both
//! shapes), widget sessions with a holdout, and explicit deflections. Every expected
//! figure is worked out by hand below, not by deflect's code.

use serde_json::{json, Value};

use crate::helpers::{
    lesson_event, milliseconds_ago, parse_ok, session_event, spawn_app_with, TestApp,
};
use crate::training_helpers::{
    configure_training, date_days_ago, generic_lms_delivery, noon_days_ago, rfc3339,
    thinkific_delivery, thinkific_event, thinkific_user, training_catalog, COST_PER_TICKET,
    THINKIFIC_KEY,
};

/// The scenario's customers: `c1` … `c12`.
fn customer(number: u32) -> String {
    format!("c{number}@acme.example")
}

/// Widget sessions shown suggestions, split by the holdout as deflect answered them.
struct Sessions {
    treated: Vec<String>,
    held_out: Vec<String>,
}

/// Opens widget sessions until at least four got suggestions and two were held out.
async fn open_sessions(app: &TestApp) -> Sessions {
    let mut sessions = Sessions {
        treated: Vec::new(),
        held_out: Vec::new(),
    };
    let mut number = 0;
    while sessions.treated.len() < 4 || sessions.held_out.len() < 2 {
        let session = format!("roi-session-{number}");
        number += 1;
        let answer = app
            .suggestions(
                &app.acme.suggest,
                &json!({"subject": "Reset your password", "description": "reset password",
                        "session_id": session}),
            )
            .await;
        if answer.holdout {
            sessions.held_out.push(session);
        } else {
            assert!(!answer.results.is_empty(), "{answer:?}");
            sessions.treated.push(session);
        }
    }
    sessions
}

/// The webhook tickets: (ticket id, customer number, days ago).
const TICKETS: [(&str, u32, i64); 18] = [
    ("5000", 1, 24),
    ("5001", 1, 21),
    ("5002", 1, 10),
    ("5003", 2, 22),
    ("5005", 3, 23),
    ("5006", 3, 18),
    ("5007", 3, 16),
    ("5010", 5, 4),
    ("5011", 5, 2),
    ("5020", 7, 30),
    ("5021", 7, 12),
    ("5022", 7, 6),
    ("5030", 8, 25),
    ("5031", 8, 11),
    ("5040", 9, 9),
    ("5041", 9, 1),
    ("5050", 11, 9),
    ("5051", 11, 8),
];

/// The assignments: (ticket id, customer number, lesson, days ago).
const ASSIGNMENTS: [(&str, u32, &str, i64); 4] = [
    ("5001", 1, "lesson-reset", 20),
    ("5003", 2, "lesson-two-factor", 20),
    ("5005", 3, "lesson-invoices", 20),
    ("5010", 5, "lesson-reset", 3),
];

/// Runs the LMS side: generic completions of a lesson (c1) and a course (c2), Thinkific
/// completions (c4: a lesson, c6: a course), an enrollment (c3) and a customer trained
/// who is not active (c12); one delivery comes twice.
async fn lms_reports_progress(app: &TestApp) {
    let generic = |event_type: &str, number: u32, field: &str, id: &str, days_ago: i64| {
        json!({"type": event_type, "customer_id": customer(number), field: id,
               "occurred_at": rfc3339(noon_days_ago(days_ago))})
    };
    for (message_id, body) in [
        (
            "msg_c1",
            generic("lesson.completed", 1, "lesson_id", "lesson-reset", 15),
        ),
        // c2's assignment is a lesson of course-security: the course's completion completes it
        (
            "msg_c2",
            generic("course.completed", 2, "course_id", "course-security", 14),
        ),
        (
            "msg_c12",
            generic("lesson.completed", 12, "lesson_id", "lesson-reset", 5),
        ),
    ] {
        let answer = app.lms_ok(&generic_lms_delivery(&body, message_id)).await;
        assert_eq!(answer["status"], "processed", "{answer}");
    }
    let lesson_done = thinkific_event(
        "lesson",
        "completed",
        "20261101120000001",
        json!({"lesson": {"id": "lesson-invoices"}, "course": {"id": "course-billing"},
               "user": thinkific_user(&customer(4))}),
    );
    let mut lesson_done_dated = lesson_done.clone();
    lesson_done_dated["created_at"] = json!(rfc3339(noon_days_ago(30)));
    let course_done = thinkific_event(
        "enrollment",
        "completed",
        "20261101120000002",
        json!({"course_id": "course-billing", "course": {"id": "course-billing"},
               "completed_at": rfc3339(noon_days_ago(35)), "user": thinkific_user(&customer(6))}),
    );
    let enrolled = thinkific_event(
        "enrollment",
        "created",
        "20261101120000003",
        json!({"course_id": "course-billing", "course": {"id": "course-billing"},
               "started_at": rfc3339(noon_days_ago(19)), "user": thinkific_user(&customer(3))}),
    );
    for body in [
        &lesson_done_dated,
        &course_done,
        &enrolled,
        &lesson_done_dated,
    ] {
        app.lms_ok(&thinkific_delivery(body, THINKIFIC_KEY)).await;
    }
}

/// Sends the widget events: the first two treated sessions open a lesson and leave
/// (explicit deflections), the third submits, the fourth and later do nothing; every
/// held-out session submits.
async fn widget_sessions_end(app: &TestApp, sessions: &Sessions) {
    let mut events = Vec::new();
    for session in &sessions.treated[..2] {
        events.push(lesson_event(
            "lesson_opened",
            session,
            "lesson-reset",
            milliseconds_ago(60),
        ));
        events.push(session_event(
            "ticket_abandoned",
            session,
            milliseconds_ago(30),
        ));
    }
    events.push(session_event(
        "ticket_submitted",
        &sessions.treated[2],
        milliseconds_ago(30),
    ));
    for session in &sessions.held_out {
        events.push(session_event(
            "ticket_submitted",
            session,
            milliseconds_ago(30),
        ));
    }
    app.record_events(&events).await;
}

fn assert_close(actual: &Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {actual}"));
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: {actual}, expected {expected}"
    );
}

#[tokio::test]
async fn a_scripted_scenario_gives_exactly_the_expected_roi_figures() {
    // Arrange: acme with the training catalog, half of the widget sessions held out
    let app = spawn_app_with(|settings| {
        configure_training(settings, None);
        settings.events.holdout_percent = 50.0;
    })
    .await;
    app.put_documents(&app.acme.admin, &training_catalog())
        .await;
    let active_first = json!({"from": date_days_ago(40), "to": date_days_ago(0),
        "customer_ids": (1..=5).map(customer).collect::<Vec<_>>()});
    let active_second = json!({"from": date_days_ago(40), "to": date_days_ago(0),
        "customer_ids": (4..=10).map(customer).collect::<Vec<_>>()});
    // c11 was active in a period that ended the day before the report's range
    let active_before = json!({"from": date_days_ago(70), "to": date_days_ago(41),
        "customer_ids": [customer(11)]});

    // Act 1: the active customers, in two overlapping uploads, and an earlier period
    parse_ok::<Value>(
        app.post_active(&app.acme.admin, &active_first).await,
        "active 1",
    )
    .await;
    parse_ok::<Value>(
        app.post_active(&app.acme.ops, &active_before).await,
        "active before the range",
    )
    .await;
    let second: Value = parse_ok(
        app.post_active(&app.acme.ops, &active_second).await,
        "active 2",
    )
    .await;

    // Assert 1: c4 and c5 count once
    assert_eq!(second["added"], 5, "{second}");
    assert_eq!(second["active_customers"], 10, "{second}");

    // Act 2: the tickets, one of them delivered again under a new delivery id
    for (ticket_id, number, days_ago) in TICKETS {
        let answer = app
            .ticket_created(ticket_id, &customer(number), noon_days_ago(days_ago))
            .await;
        assert_eq!(answer["ticket_counted"], true, "{ticket_id}: {answer}");
    }
    let replay = app
        .ticket_created("5022", &customer(7), noon_days_ago(6))
        .await;

    // Assert 2: the replay is not counted again
    assert_eq!(replay["ticket_counted"], false, "{replay}");

    // Act 3: agents assign training from tickets; the LMS reports progress
    for (ticket_id, number, lesson_id, days_ago) in ASSIGNMENTS {
        let body = json!({"customer_id": customer(number), "lesson_ids": [lesson_id],
                          "agent_id": "agent-7", "assigned_at": rfc3339(noon_days_ago(days_ago))});
        app.assign_ok(ticket_id, &body).await;
    }
    lms_reports_progress(&app).await;

    // Assert 3: each assignment's status follows the LMS
    for (number, status) in [
        (1, "completed"),
        (2, "completed"),
        (3, "opened"),
        (5, "assigned"),
    ] {
        let assignments = app.assignments_of(&customer(number)).await;
        assert_eq!(
            assignments["assignments"][0]["status"], status,
            "c{number}: {assignments}"
        );
    }

    // Act 4: widget sessions, with explicit deflections and the holdout
    let sessions = open_sessions(&app).await;
    let (treated, held_out) = (
        sessions.treated.len() as i64,
        sessions.held_out.len() as i64,
    );
    app.eventually("the sessions counted", || async {
        let summary = app.stats("summary", &[]).await;
        let counted = summary["total"]["sessions"] == treated
            && summary["holdout"]["holdout_sessions"] == held_out;
        counted.then_some(())
    })
    .await;
    widget_sessions_end(&app, &sessions).await;
    app.eventually("the deflections and submissions counted", || async {
        let summary = app.stats("summary", &[]).await;
        let counted = summary["total"]["deflections"] == 2
            && summary["holdout"]["holdout_submitted"] == held_out
            && summary["holdout"]["treated_submitted"] == 1;
        counted.then_some(())
    })
    .await;

    // Act 5: the report over the last 41 days, with 7-day windows
    let from = date_days_ago(40);
    let to = date_days_ago(0);
    let roi = app
        .stats("roi", &[("from", &from), ("to", &to), ("window_days", "7")])
        .await;

    // Assert 5, worked out by hand:
    // active: c1 … c10. Trained (a completion by the end of the range): c1 (day 15),
    // c2 (day 14), c4 (day 30), c6 (day 35); c12 is trained but not active.
    // Tickets in the range: c1 3, c2 1, c4 0, c6 0 → trained 4 / 4 = 1.0;
    // c3 3, c5 2, c7 3 (the replay not counted), c8 2, c9 2, c10 0 → untrained 12 / 6 = 2.0.
    // c11's 2 tickets are of a customer not listed active in the range (only before it).
    assert_eq!(roi["from"], from.as_str(), "{roi}");
    assert_eq!(roi["to"], to.as_str(), "{roi}");
    assert_eq!(roi["active_customers"], 10, "{roi}");
    let rates = &roi["contact_rate"];
    assert_eq!(
        rates["trained"],
        json!({"customers": 4, "tickets": 4, "rate": 1.0}),
        "{roi}"
    );
    assert_eq!(
        rates["untrained"],
        json!({"customers": 6, "tickets": 12, "rate": 2.0}),
        "{roi}"
    );
    assert_close(&rates["difference"], 2.0 - 1.0, "difference");
    assert_eq!(roi["tickets_of_unlisted_customers"], 2, "{roi}");
    // implicit = (2.0 − 1.0) × 4 trained customers; explicit = the 2 deflected sessions
    let implicit = (2.0 - 1.0) * 4.0;
    assert_close(
        &roi["implicit_deflections"],
        implicit,
        "implicit deflections",
    );
    assert_eq!(roi["explicit_deflections"], 2, "{roi}");
    assert_close(&roi["cost_per_ticket"], COST_PER_TICKET, "cost per ticket");
    assert_close(
        &roi["savings"]["implicit"],
        implicit * COST_PER_TICKET,
        "implicit savings",
    );
    assert_close(
        &roi["savings"]["explicit"],
        2.0 * COST_PER_TICKET,
        "explicit savings",
    );
    assert_close(
        &roi["savings"]["total"],
        (implicit + 2.0) * COST_PER_TICKET,
        "total savings",
    );

    // Effectiveness, 7 days. Completed: c1 (assigned day 20, completed day 15) has 2
    // tickets in days 27-20 before (24, 21) and 1 in days 15-8 after (10); c2 (assigned
    // day 20, course completed day 14) 1 before (22), 0 after. Not completed: c3 (assigned
    // day 20) 1 before (23), 2 after in days 20-13 (18, 16). c5 (assigned day 3) is pending.
    let effectiveness = &roi["effectiveness"];
    assert_eq!(effectiveness["window_days"], 7, "{roi}");
    assert_eq!(
        effectiveness["completed"],
        json!({"customers": 2, "tickets_before": 3, "tickets_after": 1,
               "before_per_customer": 1.5, "after_per_customer": 0.5, "change_per_customer": -1.0}),
        "{roi}"
    );
    assert_eq!(
        effectiveness["not_completed"],
        json!({"customers": 1, "tickets_before": 1, "tickets_after": 2,
               "before_per_customer": 1.0, "after_per_customer": 2.0, "change_per_customer": 1.0}),
        "{roi}"
    );
    assert_close(
        &effectiveness["difference_per_customer"],
        -1.0 - 1.0,
        "difference per customer",
    );
    assert_eq!(effectiveness["pending_customers"], 1, "{roi}");

    // The holdout: every held-out session submitted (rate 1), one treated session of
    // `treated` did; the difference times the treated sessions is the causal figure
    // (rates rounded to 4 decimals as the summary gives them, money to cents).
    let holdout = &roi["holdout"];
    let round = |value: f64, decimals: i32| {
        let scale = 10f64.powi(decimals);
        (value * scale).round() / scale
    };
    let treated_rate = round(1.0 / treated as f64, 4);
    let causal = round(1.0 - treated_rate, 4) * treated as f64;
    assert_eq!(holdout["holdout_sessions"], held_out, "{roi}");
    assert_eq!(holdout["treated_sessions"], treated, "{roi}");
    assert_close(&holdout["holdout_submission_rate"], 1.0, "holdout rate");
    assert_close(
        &holdout["treated_submission_rate"],
        treated_rate,
        "treated rate",
    );
    assert_close(
        &holdout["causal_deflections"],
        round(causal, 2),
        "causal deflections",
    );
    assert_eq!(holdout["explicit_deflections"], 2, "{roi}");
    assert_close(
        &holdout["causal_savings"],
        round(causal * COST_PER_TICKET, 2),
        "causal savings",
    );

    // Cohorts of 4, 6, 2 and 1 customers are far below the 30 of training.min_cohort_customers
    assert_eq!(roi["reliable"], false, "{roi}");
    let notes = roi["notes"].to_string();
    assert!(notes.contains("fewer than 30 customers"), "{notes}");
    assert!(
        notes.contains("effectiveness cohorts (completed 2, not completed 1)"),
        "{notes}"
    );
    assert!(
        notes.contains("have not passed yet are left out of the effectiveness figures: 1"),
        "{notes}"
    );
}
