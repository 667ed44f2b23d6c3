//! Ticket-to-training over HTTP: an agent asks for lessons for a ticket and assigns them
//! (posted into the ticket of a local Zendesk), the customer follows the tracked link,
//! the LMS reports the completion, and the assignment's status follows; suggestions
//! leave out what a customer completed; LMS webhooks are verified and processed once;
//! bad requests get the error contract.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::fake_helpdesk::{FakeHelpdesk, Flavour};
use crate::helpdesk_helpers::{link_tokens, PUBLIC_URL};
use crate::helpers::{assert_api_error, parse_ok, spawn_app_with, TestApp};
use crate::training_helpers::{
    configure_training, generic_lms_delivery, noon_days_ago, rfc3339, thinkific_delivery,
    thinkific_event, thinkific_user, training_catalog, THINKIFIC_KEY,
};

const ANA: &str = "ana@acme.example";

async fn spawn_training_app(zendesk: Option<&FakeHelpdesk>) -> TestApp {
    let app = spawn_app_with(|settings| configure_training(settings, zendesk)).await;
    app.put_documents(&app.acme.admin, &training_catalog())
        .await;
    app
}

/// A generic LMS event: `customer` did `event_type` on `field` = `id`.
fn lms_event(event_type: &str, customer: &str, field: &str, id: &str, at_ms: i64) -> Value {
    json!({"type": event_type, "customer_id": customer, field: id, "occurred_at": rfc3339(at_ms)})
}

fn result_ids(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| result["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Returns acme's answer for a ticket about passwords and two-factor authentication.
async fn recommendations(app: &TestApp, customer: Option<&str>) -> Value {
    let mut body = json!({"subject": "Reset password and two-factor authentication",
        "description": "reset your password, turn on two-factor authentication"});
    if let Some(customer) = customer {
        body["customer_id"] = json!(customer);
    }
    let response = app.ticket_call("35436", "recommendations", &body).await;
    parse_ok(response, "recommendations").await
}

#[tokio::test]
async fn an_agent_goes_from_ticket_to_assignment_to_completion_and_sees_each_status() {
    // Arrange: ana completed the two-factor lesson before
    let zendesk = FakeHelpdesk::start(Flavour::Zendesk).await;
    let app = spawn_training_app(Some(&zendesk)).await;
    let completed_before = lms_event(
        "lesson.completed",
        ANA,
        "lesson_id",
        "lesson-two-factor",
        noon_days_ago(3),
    );
    app.lms_ok(&generic_lms_delivery(&completed_before, "msg_before"))
        .await;

    // Act 1: recommendations for the ticket, for anyone and for ana
    let for_anyone = recommendations(&app, None).await;
    let for_ana = recommendations(&app, Some(ANA)).await;

    // Assert 1: lessons and courses with their matched words; ana's completed lesson left out
    let anyone_ids = result_ids(&for_anyone);
    assert!(
        anyone_ids.contains(&"lesson-reset".to_owned()),
        "{for_anyone}"
    );
    assert!(
        anyone_ids.contains(&"lesson-two-factor".to_owned()),
        "{for_anyone}"
    );
    assert!(
        !anyone_ids.contains(&"article-password-rules".to_owned()),
        "{for_anyone}"
    );
    let ana_ids = result_ids(&for_ana);
    assert!(ana_ids.contains(&"lesson-reset".to_owned()), "{for_ana}");
    assert!(
        !ana_ids.contains(&"lesson-two-factor".to_owned()),
        "{for_ana}"
    );
    assert_eq!(for_ana["completed_left_out"], true, "{for_ana}");
    assert_eq!(for_ana["ticket_id"], "35436", "{for_ana}");
    let reset = &for_ana["results"][ana_ids.iter().position(|id| id == "lesson-reset").unwrap()];
    assert!(
        reset["matched_terms"]
            .as_array()
            .unwrap()
            .contains(&json!("password")),
        "{reset}"
    );

    // Act 2: the agent assigns the reset lesson with a note, posted into the ticket, twice
    let assignment = json!({"customer_id": ANA, "lesson_ids": ["lesson-reset"], "agent_id": "agent-7",
                            "note": "This shows the reset in two minutes", "notify": true});
    let first = app.assign_ok("35436", &assignment).await;
    let again = app.assign_ok("35436", &assignment).await;

    // Assert 2: one assignment, one comment with the note and a tracked link
    assert_eq!(first["assignments"][0]["created"], true, "{first}");
    assert_eq!(first["assignments"][0]["status"], "assigned", "{first}");
    assert_eq!(
        first["assignments"][0]["course_id"], "course-accounts",
        "{first}"
    );
    assert_eq!(first["notification"], "queued", "{first}");
    assert_eq!(first["helpdesk"], "zendesk", "{first}");
    assert_eq!(again["assignments"][0]["created"], false, "{again}");
    assert_eq!(
        again["assignments"][0]["assigned_at"], first["assignments"][0]["assigned_at"],
        "{again}"
    );
    assert_eq!(again["notification"], "already_queued", "{again}");
    let comment = zendesk.wait_for_comment("35436").await;
    assert!(
        comment.contains("This shows the reset in two minutes"),
        "{comment}"
    );
    assert!(comment.contains("Reset your password"), "{comment}");
    assert!(!comment.contains("This solved my problem"), "{comment}");
    let tokens = link_tokens(&comment);
    assert_eq!(tokens.len(), 1, "{comment}");
    assert!(comment.contains(PUBLIC_URL), "{comment}");

    // Act 3: ana follows the link
    let opened = app
        .client
        .get(app.url(&format!("/r/{}", tokens[0])))
        .send()
        .await
        .unwrap();

    // Assert 3: redirected to the lesson, the assignment opened
    assert_eq!(opened.status(), StatusCode::FOUND);
    assert_eq!(
        opened.headers()["location"],
        "https://learn.acme.example/course-accounts/lesson-reset"
    );
    let after_click = app
        .eventually("the assignment opened", || async {
            let customer = app.assignments_of(ANA).await;
            (customer["assignments"][0]["status"] == "opened").then_some(customer)
        })
        .await;
    assert!(
        after_click["assignments"][0]["opened_at"].is_string(),
        "{after_click}"
    );

    // Act 4: Thinkific reports the lesson completed
    let completion = thinkific_event(
        "lesson",
        "completed",
        "20261123101500123",
        json!({"lesson": {"id": "lesson-reset", "name": "Reset your password"},
               "course": {"id": "course-accounts"}, "user": thinkific_user(ANA)}),
    );
    let answer = app
        .lms_ok(&thinkific_delivery(&completion, THINKIFIC_KEY))
        .await;

    // Assert 4: completed, and ana trained since her first completion
    assert_eq!(answer["status"], "processed", "{answer}");
    assert_eq!(answer["content_id"], "lesson-reset", "{answer}");
    let customer = app.assignments_of(ANA).await;
    assert_eq!(
        customer["assignments"][0]["status"], "completed",
        "{customer}"
    );
    assert!(
        customer["assignments"][0]["completed_at"].is_string(),
        "{customer}"
    );
    assert_eq!(
        customer["trained_at"],
        rfc3339(noon_days_ago(3)),
        "{customer}"
    );
    assert_eq!(
        customer["completed"].as_array().unwrap().len(),
        2,
        "{customer}"
    );

    // Act 5: the agent takes the assignment back, twice
    let deleted = app.delete_assignment(ANA, "lesson-reset").await;
    let deleted_again = app.delete_assignment(ANA, "lesson-reset").await;

    // Assert 5: gone, and the second delete is a 404
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_api_error(deleted_again, StatusCode::NOT_FOUND, "assignment_not_found").await;
    let customer = app.assignments_of(ANA).await;
    assert_eq!(customer["assignments"], json!([]), "{customer}");
}

#[tokio::test]
async fn suggestions_for_a_customer_leave_out_the_lessons_and_courses_they_completed() {
    // Arrange: bo completed the accounts course (so its lesson too)
    let app = spawn_training_app(None).await;
    let draft = json!({"subject": "Reset your password", "description": "reset password",
                       "limit": 10});
    let course_done = lms_event(
        "course.completed",
        "bo@acme.example",
        "course_id",
        "course-accounts",
        noon_days_ago(1),
    );
    app.lms_ok(&generic_lms_delivery(&course_done, "msg_course"))
        .await;

    // Act
    let anyone = app.suggestions(&app.acme.suggest, &draft).await;
    let mut for_bo = draft.clone();
    for_bo["customer_id"] = json!("bo@acme.example");
    let bo = app.suggestions(&app.acme.suggest, &for_bo).await;

    // Assert
    assert!(anyone.ids().contains(&"lesson-reset"), "{anyone:?}");
    assert!(anyone.ids().contains(&"course-accounts"), "{anyone:?}");
    for left_out in ["lesson-reset", "course-accounts"] {
        assert!(!bo.ids().contains(&left_out), "{left_out}: {bo:?}");
    }
    assert!(bo.ids().contains(&"article-password-rules"), "{bo:?}");
}

#[tokio::test]
async fn lms_webhooks_are_verified_and_each_delivery_is_processed_once() {
    // Arrange
    let app = spawn_training_app(None).await;
    let completion = thinkific_event(
        "enrollment",
        "completed",
        "20261123101500999",
        json!({"course_id": "course-billing", "course": {"id": "course-billing"},
               "completed_at": rfc3339(noon_days_ago(2)), "user": thinkific_user("cy@acme.example")}),
    );
    let genuine = thinkific_delivery(&completion, THINKIFIC_KEY);
    let forged = thinkific_delivery(&completion, "not-acmes-thinkific-key-0000000");
    let unknown_tenant = crate::helpdesk_helpers::Delivery {
        path: "/v1/webhooks/lms?tenant=globex".to_owned(),
        ..genuine.clone()
    };
    let enrolled = lms_event(
        "enrollment.created",
        "cy@acme.example",
        "course_id",
        "course-billing",
        noon_days_ago(3),
    );
    let order = thinkific_event("order", "created", "20261123101501000", json!({"id": 1}));
    let without_customer = json!({"type": "lesson.completed", "lesson_id": "lesson-invoices"});

    // Act
    let first = app.lms_ok(&genuine).await;
    let redelivered = app.lms_ok(&genuine).await;
    let forged_answer = app.deliver(&forged).await;
    let unknown_answer = app.deliver(&unknown_tenant).await;
    let enrolled_answer = app
        .lms_ok(&generic_lms_delivery(&enrolled, "msg_enrolled"))
        .await;
    let replayed_under_new_id = app
        .lms_ok(&generic_lms_delivery(&enrolled, "msg_enrolled_2"))
        .await;
    let ignored = app.lms_ok(&thinkific_delivery(&order, THINKIFIC_KEY)).await;
    let malformed = app
        .deliver(&generic_lms_delivery(&without_customer, "msg_malformed"))
        .await;

    // Assert
    assert_eq!(first["status"], "processed", "{first}");
    assert_eq!(first["step"], "completed", "{first}");
    assert_eq!(first["customer_id"], "cy@acme.example", "{first}");
    assert_eq!(redelivered["status"], "duplicate", "{redelivered}");
    assert_api_error(
        forged_answer,
        StatusCode::UNAUTHORIZED,
        "webhook_unauthorized",
    )
    .await;
    assert_api_error(
        unknown_answer,
        StatusCode::UNAUTHORIZED,
        "webhook_unauthorized",
    )
    .await;
    assert_eq!(enrolled_answer["first_time"], true, "{enrolled_answer}");
    assert_eq!(
        replayed_under_new_id["status"], "processed",
        "{replayed_under_new_id}"
    );
    assert_eq!(
        replayed_under_new_id["first_time"], false,
        "{replayed_under_new_id}"
    );
    assert_eq!(ignored["status"], "ignored", "{ignored}");
    assert_api_error(
        malformed,
        StatusCode::BAD_REQUEST,
        "invalid_webhook_payload",
    )
    .await;
    let customer = app.assignments_of("cy@acme.example").await;
    assert_eq!(
        customer["trained_at"],
        rfc3339(noon_days_ago(2)),
        "{customer}"
    );
    assert_eq!(customer["completed"][0]["kind"], "course", "{customer}");
}

#[tokio::test]
async fn assignment_and_active_customer_requests_get_the_error_contract() {
    // Arrange: no helpdesk account to post with
    let app = spawn_training_app(None).await;
    let valid = json!({"customer_id": ANA, "lesson_ids": ["lesson-reset"], "agent_id": "agent-7"});
    let mut unknown_lesson = valid.clone();
    unknown_lesson["lesson_ids"] = json!(["lesson-reset", "no-such-lesson"]);
    let mut notified = valid.clone();
    notified["notify"] = json!(true);
    let future_period = json!({"from": "2999-01-01", "to": "2999-01-31", "customer_ids": [ANA]});

    // Act
    let missing_customer = app
        .ticket_call(
            "1",
            "assignments",
            &json!({"lesson_ids": ["lesson-reset"], "agent_id": "a"}),
        )
        .await;
    let unknown = app.ticket_call("1", "assignments", &unknown_lesson).await;
    let without_helpdesk = app.ticket_call("1", "assignments", &notified).await;
    let bad_ticket_id = app.ticket_call("a%20b", "assignments", &valid).await;
    let with_suggest_key = app
        .client
        .post(app.url("/v1/tickets/1/assignments"))
        .bearer_auth(&app.acme.suggest)
        .json(&valid)
        .send()
        .await
        .unwrap();
    let future = app.post_active(&app.acme.ops, &future_period).await;
    let with_agent_key = app.post_active(&app.acme.agent, &future_period).await;
    let roi_with_bad_window = app
        .get_with_query(&app.acme.ops, "/v1/stats/roi", &[("window_days", "0")])
        .await;

    // Assert
    let body = assert_api_error(
        missing_customer,
        StatusCode::BAD_REQUEST,
        "invalid_assignment",
    )
    .await;
    assert!(body.message.contains("customer_id"), "{}", body.message);
    let body = assert_api_error(unknown, StatusCode::BAD_REQUEST, "invalid_assignment").await;
    assert_eq!(
        body.details.unwrap()["unknown_lesson_ids"],
        json!(["no-such-lesson"])
    );
    assert_api_error(
        without_helpdesk,
        StatusCode::CONFLICT,
        "helpdesk_not_configured",
    )
    .await;
    assert_api_error(
        bad_ticket_id,
        StatusCode::BAD_REQUEST,
        "invalid_path_parameter",
    )
    .await;
    assert_api_error(
        with_suggest_key,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    )
    .await;
    assert_api_error(future, StatusCode::BAD_REQUEST, "invalid_active_customers").await;
    assert_api_error(with_agent_key, StatusCode::FORBIDDEN, "insufficient_scope").await;
    assert_api_error(
        roi_with_bad_window,
        StatusCode::BAD_REQUEST,
        "invalid_query_parameter",
    )
    .await;
    let customer = app.assignments_of(ANA).await;
    assert_eq!(
        customer["assignments"],
        json!([]),
        "nothing assigned: {customer}"
    );
}
