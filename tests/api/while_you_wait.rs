//! "While you wait": a ticket from the helpdesk's webhook gets lessons posted back into
//! it through the helpdesk's API (a local server speaking Zendesk's and Freshdesk's
//! formats), the customer follows a tracked link and says the problem is solved, and the
//! stats count a deflection after submission. Also: the outbox's retries, its refusal of
//! private addresses, and tracked links that cannot be forged or used as redirects.

use std::time::Duration;

use deflect::configuration::Settings;
use deflect::webhooks::settings::ZendeskSettings;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::fake_helpdesk::{FakeHelpdesk, Flavour, Scripted};
use crate::helpdesk_helpers::{
    configure_helpdesks, freshdesk_delivery, freshdesk_ticket_created, help_articles, link_tokens,
    spawn_app_with_helpdesks, unix_now, zendesk_delivery, zendesk_ticket_created, FRESHDESK_SECRET,
    ZENDESK_SECRET,
};
use crate::helpers::{assert_api_error, spawn_app_with, TestApp};

const WIDGET_SESSION: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// The customer types in the widget first: their session is shown suggestions.
async fn widget_session_is_shown_suggestions(app: &TestApp, session: &str) {
    app.suggestions(
        &app.acme.suggest,
        &json!({"subject": "password", "description": "I forgot my password", "session_id": session}),
    )
    .await;
}

/// Follows a tracked link the way a customer's browser does (on the app's own address).
async fn open_link(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/r/{token}")))
        .send()
        .await
        .expect("failed to open the link")
}

async fn confirm_solved(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/r/{token}")))
        .send()
        .await
        .expect("failed to confirm")
}

/// Waits until the summary's total satisfies `done`, and returns it.
async fn wait_for_total(app: &TestApp, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    app.eventually(what, || async {
        let total = app.summary_total().await;
        done(&total).then_some(total)
    })
    .await
}

/// The whole loop for one helpdesk: webhook, suggestions, posted comment, tracked click,
/// resolution, solved ticket, stats.
async fn ticket_flows_to_a_resolution(flavour: Flavour) {
    // Arrange
    let helpdesk = FakeHelpdesk::start(flavour).await;
    let app = match flavour {
        Flavour::Zendesk => spawn_app_with_helpdesks(Some(&helpdesk), None).await,
        Flavour::Freshdesk => spawn_app_with_helpdesks(None, Some(&helpdesk)).await,
    };
    widget_session_is_shown_suggestions(&app, WIDGET_SESSION).await;
    let (ticket_id, delivery) = match flavour {
        Flavour::Zendesk => {
            let tag = format!("deflect_session_{WIDGET_SESSION}");
            let body = zendesk_ticket_created(
                "35436",
                "Can't sign in",
                "I forgot my password and cannot reset it",
                &["web", &tag],
            );
            (
                "35436",
                zendesk_delivery("acme", ZENDESK_SECRET, &body, unix_now(0), "inv-1"),
            )
        }
        Flavour::Freshdesk => {
            let body = freshdesk_ticket_created(
                "812",
                "Can't sign in",
                "I forgot my password and cannot reset it",
                WIDGET_SESSION,
            );
            ("812", freshdesk_delivery("acme", FRESHDESK_SECRET, &body))
        }
    };

    // Act 1: the helpdesk's webhook
    let answer = app.deliver_ok(&delivery).await;

    // Assert 1: answered with suggestions, the widget session told, the comment queued
    assert_eq!(answer["status"], "processed", "{answer}");
    assert_eq!(answer["ticket_id"], ticket_id, "{answer}");
    assert_eq!(answer["session_linked"], true, "{answer}");
    assert_eq!(answer["while_you_wait"], "queued", "{answer}");
    assert_eq!(
        answer["suggestions"]["results"][0]["id"], "reset-password",
        "{answer}"
    );

    // Act 2: the outbox posts the comment
    helpdesk.wait_for_comment(ticket_id).await;
    let comments = helpdesk.comments(ticket_id);
    let tokens = link_tokens(&comments[0]);

    // Assert 2: one comment, each lesson and "solved" a tracked link
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0].contains("Reset your password"),
        "{}",
        comments[0]
    );
    assert!(
        comments[0].contains("This solved my problem"),
        "{}",
        comments[0]
    );
    assert!(tokens.len() >= 2, "{tokens:?}");

    // Act 3: the customer opens the first lesson, then says it solved the problem
    let opened = open_link(&app, &tokens[0]).await;
    let solved_token = tokens.last().unwrap();
    let confirmation_page = open_link(&app, solved_token).await;
    let confirmation_html = confirmation_page.text().await.unwrap();
    let confirmed = confirm_solved(&app, solved_token).await;

    // Assert 3: redirected to the lesson's own URL; solved only when confirmed
    assert_eq!(opened.status(), StatusCode::FOUND);
    assert_eq!(
        opened.headers()["location"],
        "https://help.acme.example/articles/reset-password"
    );
    assert!(
        confirmation_html.contains("<form method=\"post\">"),
        "{confirmation_html}"
    );
    assert_eq!(confirmed.status(), StatusCode::OK);

    // Assert 4: the ticket is solved in the helpdesk, the stats count it apart
    helpdesk
        .wait_for("the ticket solved", 10, |server| {
            server.status(ticket_id).is_some()
        })
        .await;
    let expected_status = match flavour {
        Flavour::Zendesk => json!("solved"),
        Flavour::Freshdesk => json!(4),
    };
    assert_eq!(helpdesk.status(ticket_id), Some(expected_status));
    let total = wait_for_total(&app, "the post-submission figures", |total| {
        total["post_submission_deflections"] == 1 && total["post_submission_tickets"] == 1
    })
    .await;
    assert_eq!(total["post_submission_opened"], 1, "{total}");
    assert_eq!(total["submitted"], 1, "{total}");
    assert_eq!(total["deflections"], 0, "{total}");
    let lesson = app.lesson_figures("reset-password").await;
    assert_eq!(lesson["post_submission_deflections"], 1, "{lesson}");
    let writes = helpdesk.writes();
    assert_eq!(writes.len(), 2, "one comment, one status: {writes:#?}");
    let comment_html = match flavour {
        Flavour::Zendesk => &writes[0].body["ticket"]["comment"]["html_body"],
        Flavour::Freshdesk => &writes[0].body["body"],
    };
    assert_eq!(comment_html.as_str(), Some(comments[0].as_str()));
    assert!(writes.iter().all(|write| write
        .authorization
        .as_deref()
        .is_some_and(|value| value.starts_with("Basic "))));
}

#[tokio::test]
async fn a_zendesk_ticket_flows_from_webhook_to_comment_to_click_to_resolution_in_the_stats() {
    ticket_flows_to_a_resolution(Flavour::Zendesk).await;
}

#[tokio::test]
async fn a_freshdesk_ticket_flows_from_webhook_to_reply_to_click_to_resolution_in_the_stats() {
    ticket_flows_to_a_resolution(Flavour::Freshdesk).await;
}

/// Sends a Zendesk ticket about a password to `app` and returns the webhook's answer.
async fn send_password_ticket(app: &TestApp, ticket_id: &str) -> Value {
    let body = zendesk_ticket_created(ticket_id, "Password", "I forgot my password", &[]);
    let delivery = zendesk_delivery(
        "acme",
        ZENDESK_SECRET,
        &body,
        unix_now(0),
        &format!("inv-{ticket_id}"),
    );
    app.deliver_ok(&delivery).await
}

/// A Zendesk ticket with the "while you wait" comment posted; returns the helpdesk, the
/// app and the comment's link tokens ("solved" last).
async fn zendesk_ticket_with_a_comment(ticket_id: &str) -> (FakeHelpdesk, TestApp, Vec<String>) {
    let helpdesk = FakeHelpdesk::start(Flavour::Zendesk).await;
    let app = spawn_app_with_helpdesks(Some(&helpdesk), None).await;
    send_password_ticket(&app, ticket_id).await;
    let tokens = link_tokens(&helpdesk.wait_for_comment(ticket_id).await);
    (helpdesk, app, tokens)
}

#[tokio::test]
async fn a_comment_answered_429_is_posted_once_after_the_retry_after_wait() {
    // Arrange
    let helpdesk = FakeHelpdesk::start(Flavour::Zendesk).await;
    helpdesk.script(&[Scripted::TooManyRequests {
        retry_after_seconds: 1,
    }]);
    let app = spawn_app_with_helpdesks(Some(&helpdesk), None).await;

    // Act
    send_password_ticket(&app, "501").await;
    helpdesk.wait_for_comment("501").await;

    // Assert
    let writes = helpdesk.writes();
    assert_eq!(writes.len(), 2, "{writes:#?}");
    assert_eq!(writes[0].status, 429);
    let waited = writes[1].at.duration_since(writes[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
    assert_eq!(helpdesk.comments("501").len(), 1);
    assert_eq!(app.metric("deflect_outbox_retried_total").await, 1.0);
    assert_eq!(app.metric("deflect_outbox_done_total").await, 1.0);
}

#[tokio::test]
async fn a_comment_whose_answer_was_lost_is_not_posted_twice() {
    // Arrange: the helpdesk stores the comment, then answers 500
    let helpdesk = FakeHelpdesk::start(Flavour::Freshdesk).await;
    helpdesk.script(&[Scripted::StoreThenServerError]);
    let app = spawn_app_with_helpdesks(None, Some(&helpdesk)).await;
    let body = freshdesk_ticket_created("77", "Password", "I forgot my password", "s-77");

    // Act
    app.deliver_ok(&freshdesk_delivery("acme", FRESHDESK_SECRET, &body))
        .await;
    app.eventually("the retry to look and stop", || async {
        (app.metric("deflect_outbox_done_total").await == 1.0).then_some(())
    })
    .await;

    // Assert: the retry looked at the conversations, found the reply and posted nothing
    assert_eq!(helpdesk.comments("77").len(), 1);
    assert_eq!(helpdesk.writes().len(), 1, "{:#?}", helpdesk.requests());
    let looked = helpdesk.requests().iter().any(|request| {
        request.method == "GET" && request.path == "/api/v2/tickets/77/conversations"
    });
    assert!(looked, "{:#?}", helpdesk.requests());
    assert_eq!(app.metric("deflect_outbox_found_posted_total").await, 1.0);
}

#[tokio::test]
async fn a_call_that_exhausts_its_retries_is_counted_as_failed() {
    // Arrange: 4 attempts allowed, all answered 500
    let helpdesk = FakeHelpdesk::start(Flavour::Zendesk).await;
    helpdesk.script(&[Scripted::ServerError; 4]);
    let app = spawn_app_with_helpdesks(Some(&helpdesk), None).await;

    // Act
    send_password_ticket(&app, "600").await;
    app.eventually("the call to be given up", || async {
        (app.metric("deflect_outbox_failed_total").await == 1.0).then_some(())
    })
    .await;

    // Assert
    assert_eq!(helpdesk.writes().len(), 4, "{:#?}", helpdesk.requests());
    assert!(helpdesk.comments("600").is_empty());
    assert_eq!(app.metric("deflect_outbox_retried_total").await, 3.0);
}

/// acme's Zendesk settings (set by `configure_helpdesks`).
fn acme_zendesk(settings: &mut Settings) -> &mut ZendeskSettings {
    let acme = settings
        .tenants
        .get_mut("acme")
        .expect("the test tenant acme");
    acme.zendesk
        .as_mut()
        .expect("configured by configure_helpdesks")
}

#[tokio::test]
async fn a_helpdesk_name_that_resolves_to_a_private_address_is_refused_without_the_allowance() {
    // Arrange: the fake helpdesk listens on loopback and is named `localhost`
    let helpdesk = FakeHelpdesk::start(Flavour::Zendesk).await;
    let port = helpdesk.base_url.rsplit(':').next().unwrap().to_owned();
    let app = spawn_app_with(|settings| {
        configure_helpdesks(settings, Some(&helpdesk), None);
        settings.webhooks.outbox.allow_private_addresses = false;
        let zendesk = acme_zendesk(settings);
        zendesk.base_url = Some(format!("https://localhost:{port}"));
    })
    .await;
    app.put_documents(&app.acme.admin, &help_articles()).await;

    // Act
    send_password_ticket(&app, "700").await;
    app.eventually("the call to be refused", || async {
        (app.metric("deflect_outbox_failed_total").await == 1.0).then_some(())
    })
    .await;

    // Assert: refused at once, never retried, nothing reached the helpdesk
    assert!(helpdesk.requests().is_empty(), "{:#?}", helpdesk.requests());
    assert_eq!(app.metric("deflect_outbox_retried_total").await, 0.0);
}

#[tokio::test]
async fn a_helpdesk_url_on_a_private_address_or_without_https_is_refused_at_startup() {
    for base_url in [
        "https://127.0.0.1:9",
        "https://[::1]",
        "http://acme.zendesk.com",
    ] {
        let error = crate::helpers::build_error_with(|settings| {
            let helpdesk_url = base_url.to_owned();
            configure_helpdesks(settings, None, None);
            settings.webhooks.outbox.allow_private_addresses = false;
            let zendesk = acme_zendesk(settings);
            zendesk.base_url = Some(helpdesk_url);
            zendesk.api_email = Some("bot@acme.example".to_owned());
            zendesk.api_token = Some(secrecy::SecretString::from("token".to_owned()));
            zendesk.while_you_wait = true;
        })
        .await;
        assert!(
            error.contains("tenants.acme.zendesk"),
            "{base_url}: {error}"
        );
    }
}

#[tokio::test]
async fn a_forged_or_altered_tracked_link_leads_nowhere() {
    // Arrange: a real link from a posted comment
    let (_helpdesk, app, mut tokens) = zendesk_ticket_with_a_comment("800").await;
    let token = tokens.remove(0);
    let (payload, mac) = token.split_once('.').unwrap();
    let other_lesson = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        r#"["acme","zendesk","800","export-invoices","en"]"#,
    );

    // Act
    let forged = [
        format!("{other_lesson}.{mac}"),
        format!("{payload}.{}", "A".repeat(mac.len())),
        format!("{payload}x.{mac}"),
        payload.to_owned(),
        "https%3A%2F%2Fevil.example".to_owned(),
    ];

    // Assert
    for token in forged {
        let response = open_link(&app, &token).await;
        assert_api_error(response, StatusCode::NOT_FOUND, "link_not_found").await;
    }
    let opened = open_link(&app, &format!("{token}?url=https://evil.example")).await;
    assert_eq!(
        opened.headers()["location"],
        "https://help.acme.example/articles/reset-password"
    );
}

#[tokio::test]
async fn a_lesson_link_whose_lesson_is_gone_redirects_nowhere() {
    // Arrange
    let (_helpdesk, app, mut tokens) = zendesk_ticket_with_a_comment("801").await;
    let token = tokens.remove(0);

    // Act
    app.delete_content(&app.acme.admin, "reset-password").await;
    let response = open_link(&app, &token).await;

    // Assert
    assert_api_error(response, StatusCode::NOT_FOUND, "link_not_found").await;
}

#[tokio::test]
async fn opening_the_solved_link_without_confirming_changes_nothing() {
    // Arrange
    let (helpdesk, app, mut tokens) = zendesk_ticket_with_a_comment("802").await;
    let solved = tokens.pop().unwrap();

    // Act: a mail scanner opens the link, twice
    for _ in 0..2 {
        let page = open_link(&app, &solved).await;
        assert_eq!(page.status(), StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Assert
    let total = app.summary_total().await;
    assert_eq!(total["post_submission_deflections"], 0, "{total}");
    assert_eq!(helpdesk.status("802"), None);
}
