//! The widget's HTTP side: the script, the demo page, deflect's own origin for the demo
//! tenant, and the beacon route that `navigator.sendBeacon` uses.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    assert_api_error, build_error_with, parse_ok, spawn_app, spawn_app_with,
    spawn_app_with_demo_page_and, TestApp, FOREIGN_ORIGIN, WIDGET_ORIGIN,
};

fn resolved_event(event_id: &str) -> Value {
    json!({"event_id": event_id, "type": "resolved", "session_id": "beacon-session"})
}

/// Sends a beacon as a browser does: `text/plain`, the key in the body, `origin` when given.
async fn send_beacon(
    app: &TestApp,
    origin: Option<&str>,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/v1/events/beacon"))
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body);
    if let Some(origin) = origin {
        request = request.header(reqwest::header::ORIGIN, origin);
    }
    request.send().await.expect("failed to send the beacon")
}

fn beacon_body(key: &str, events: &[Value]) -> String {
    json!({ "key": key, "events": events }).to_string()
}

#[tokio::test]
async fn the_widget_is_served_as_javascript_with_its_version_and_an_etag() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.client.get(app.url("/widget.js")).send().await.unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(
        headers["content-type"],
        "application/javascript; charset=utf-8"
    );
    assert_eq!(headers["cache-control"], "public, max-age=300");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let version = headers["x-deflect-widget-version"].to_str().unwrap();
    let etag = headers["etag"].to_str().unwrap();
    assert!(
        etag.starts_with(&format!("\"{version}-")),
        "{etag} {version}"
    );
    let script = response.text().await.unwrap();
    assert!(script.len() < 20_000, "{} bytes", script.len());
    assert!(script.contains(&format!("var VERSION = '{version}';")));
    assert!(script.contains("window.Deflect = { version: VERSION, init: init };"));
}

#[tokio::test]
async fn the_widget_revalidated_with_its_etag_is_304_without_a_body() {
    // Arrange
    let app = spawn_app().await;
    let first = app.client.get(app.url("/widget.js")).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();

    // Act
    let cached = app
        .client
        .get(app.url("/widget.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    let stale = app
        .client
        .get(app.url("/widget.js"))
        .header("if-none-match", "\"0.0.1-0000000000000000\"")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(cached.headers()["etag"], etag.as_str());
    assert!(cached.bytes().await.unwrap().is_empty());
    assert_eq!(stale.status(), StatusCode::OK);
    assert!(!stale.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_widget_cannot_be_posted_to() {
    let app = spawn_app().await;
    let response = app.client.post(app.url("/widget.js")).send().await.unwrap();
    assert_api_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn the_demo_page_embeds_the_widget_with_the_demo_tenants_public_key() {
    // Arrange
    let app = spawn_app_with_demo_page_and(|_| {}).await;

    // Act
    let english = app.client.get(app.url("/demo")).send().await.unwrap();
    let german = app
        .client
        .get(app.url("/demo?lang=de"))
        .send()
        .await
        .unwrap();
    let submitted = app
        .client
        .post(app.url("/demo/submitted?lang=en"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("subject=Invoice&description=wrong+VAT")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(english.status(), StatusCode::OK);
    assert_eq!(
        english.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = english.text().await.unwrap();
    let tag = format!(
        "<script src=\"/widget.js\" data-key=\"{}\" data-subject=\"#subject\" \
         data-description=\"#description\" data-form=\"#ticket-form\" \
         data-session-field=\"#deflect-session\"></script>",
        app.acme.suggest
    );
    assert!(page.contains(&tag), "{page}");
    assert!(page.contains("<html lang=\"en\">"));
    assert!(page.contains("<form id=\"ticket-form\" action=\"/demo/submitted?lang=en\""));
    let german_page = german.text().await.unwrap();
    assert!(german_page.contains("<html lang=\"de\">"));
    assert!(german_page.contains("Anfrage einreichen"));
    assert_eq!(submitted.status(), StatusCode::OK);
    assert!(submitted.text().await.unwrap().contains("Request received"));
}

#[tokio::test]
async fn without_the_demo_page_setting_there_is_no_demo_page() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/demo")).send().await.unwrap();
    assert_api_error(response, StatusCode::NOT_FOUND, "route_not_found").await;
}

#[tokio::test]
async fn the_demo_page_needs_a_public_key_of_the_demo_tenant() {
    let unknown_tenant = build_error_with(|settings| {
        settings.demo.page = true;
        settings.demo.tenant = "nobody".to_owned();
    })
    .await;
    assert!(
        unknown_tenant.contains(
            "demo.page needs a key with only the suggest scope in tenants.nobody.api_keys"
        ),
        "{unknown_tenant}"
    );
}

#[tokio::test]
async fn the_demo_page_never_shows_a_key_that_can_do_more_than_suggest() {
    let error = build_error_with(|settings| {
        settings.demo.page = true;
        settings.demo.tenant = "acme".to_owned();
        let acme = settings.tenants.get_mut("acme").unwrap();
        acme.api_keys.retain(|key| key.scopes != ["suggest"]);
        acme.api_keys[0].scopes.push("suggest".to_owned());
    })
    .await;
    assert!(
        error
            .contains("demo.page needs a key with only the suggest scope in tenants.acme.api_keys"),
        "{error}"
    );
}

#[tokio::test]
async fn the_demo_tenants_public_key_works_from_deflects_own_origin_and_no_other_tenants() {
    // Arrange: acme is the demo tenant; deflect's own origin is in no allowed list.
    let app = spawn_app_with_demo_page_and(|_| {}).await;
    let own_origin = app.address.clone();
    let suggest = |key: String, origin: String| {
        let request = app
            .client
            .post(app.url("/v1/suggest"))
            .bearer_auth(key)
            .header("origin", origin)
            .json(&json!({"text": "invoice VAT"}));
        async move { request.send().await.unwrap() }
    };

    // Act
    let demo_tenant = suggest(app.acme.suggest.clone(), own_origin.clone()).await;
    let localhost = suggest(
        app.acme.suggest.clone(),
        format!("http://localhost:{}", app.port),
    )
    .await;
    let other_tenant = suggest(app.globex.suggest.clone(), own_origin.clone()).await;
    let other_port = suggest(
        app.acme.suggest.clone(),
        format!("http://127.0.0.1:{}", app.port.wrapping_add(1)),
    )
    .await;

    // Assert
    assert_eq!(demo_tenant.status(), StatusCode::OK);
    // Same origin needs no CORS headers, and none are sent for an origin nobody listed.
    assert!(!demo_tenant
        .headers()
        .contains_key("access-control-allow-origin"));
    // The request went to 127.0.0.1: a page on localhost is another origin.
    assert_api_error(localhost, StatusCode::FORBIDDEN, "origin_not_allowed").await;
    assert_api_error(other_tenant, StatusCode::FORBIDDEN, "origin_not_allowed").await;
    assert_api_error(other_port, StatusCode::FORBIDDEN, "origin_not_allowed").await;
}

#[tokio::test]
async fn without_the_demo_page_deflects_own_origin_is_not_allowed() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/suggest"))
        .bearer_auth(&app.acme.suggest)
        .header("origin", app.address.clone())
        .json(&json!({"text": "invoice VAT"}))
        .send()
        .await
        .unwrap();
    assert_api_error(response, StatusCode::FORBIDDEN, "origin_not_allowed").await;
}

#[tokio::test]
async fn a_beacon_with_the_public_key_from_an_allowed_origin_is_counted_once() {
    // Arrange
    let app = spawn_app().await;
    let body = beacon_body(&app.acme.suggest, &[resolved_event("beacon-1")]);

    // Act
    let first = send_beacon(
        &app,
        Some(WIDGET_ORIGIN),
        "text/plain;charset=UTF-8",
        body.clone(),
    )
    .await;
    let cors_origin = first.headers().get("access-control-allow-origin").cloned();
    let first: Value = parse_ok(first, "the first beacon").await;
    let retried: Value = parse_ok(
        send_beacon(&app, Some(WIDGET_ORIGIN), "application/json", body).await,
        "the retried beacon",
    )
    .await;

    // Assert
    assert_eq!(first["accepted"], 1, "{first}");
    assert_eq!(retried["accepted"], 0, "{retried}");
    assert_eq!(retried["duplicates"], 1, "{retried}");
    assert_eq!(cors_origin.unwrap(), WIDGET_ORIGIN);
    assert_eq!(app.summary_total().await["resolved"], 1);
}

#[tokio::test]
async fn a_beacon_without_an_origin_from_a_foreign_origin_or_with_a_private_key_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let events = [resolved_event("refused-1")];
    let cases = [
        (
            None,
            beacon_body(&app.acme.suggest, &events),
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
        ),
        (
            Some(FOREIGN_ORIGIN),
            beacon_body(&app.acme.suggest, &events),
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
        ),
        (
            Some(WIDGET_ORIGIN),
            beacon_body(&app.acme.agent, &events),
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        ),
        (
            Some(WIDGET_ORIGIN),
            beacon_body(&app.acme.ops, &events),
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        ),
        (
            Some(WIDGET_ORIGIN),
            beacon_body("not-a-real-key-at-all", &events),
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            Some(WIDGET_ORIGIN),
            json!({ "events": events }).to_string(),
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
        ),
        (
            Some(WIDGET_ORIGIN),
            beacon_body("   ", &events),
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
        ),
    ];

    for (origin, body, status, code) in cases {
        // Act
        let response = send_beacon(&app, origin, "text/plain", body).await;

        // Assert
        assert_api_error(response, status, code).await;
    }
    assert_eq!(app.summary_total().await["resolved"], 0);
}

#[tokio::test]
async fn a_beacon_with_a_bad_body_gets_the_error_contract() {
    // Arrange
    let app = spawn_app_with(|settings| settings.events.body_limit_bytes = 2048).await;
    let too_many: Vec<Value> = (0..40)
        .map(|index| resolved_event(&format!("large-{index}")))
        .collect();

    // Act + Assert
    let not_json = send_beacon(&app, Some(WIDGET_ORIGIN), "text/plain", "key=abc").await;
    assert_api_error(not_json, StatusCode::BAD_REQUEST, "malformed_json").await;
    let no_events = send_beacon(
        &app,
        Some(WIDGET_ORIGIN),
        "text/plain",
        json!({"key": app.acme.suggest}).to_string(),
    )
    .await;
    assert_api_error(no_events, StatusCode::BAD_REQUEST, "malformed_json").await;
    let wrong_type = send_beacon(
        &app,
        Some(WIDGET_ORIGIN),
        "image/png",
        beacon_body(&app.acme.suggest, &[]),
    )
    .await;
    assert_api_error(
        wrong_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "invalid_content_type",
    )
    .await;
    let too_large = send_beacon(
        &app,
        Some(WIDGET_ORIGIN),
        "text/plain",
        beacon_body(&app.acme.suggest, &too_many),
    )
    .await;
    assert_api_error(
        too_large,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let bad_event = send_beacon(
        &app,
        Some(WIDGET_ORIGIN),
        "text/plain",
        beacon_body(
            &app.acme.suggest,
            &[json!({"event_id": "x1", "type": "nonsense", "session_id": "s"})],
        ),
    )
    .await;
    let answer: Value = parse_ok(bad_event, "a beacon with a bad event").await;
    assert_eq!(answer["rejected"], 1);
    assert_eq!(answer["results"][0]["code"], "unknown_event_type");
    let get = app
        .client
        .get(app.url("/v1/events/beacon"))
        .send()
        .await
        .unwrap();
    assert_api_error(get, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

#[tokio::test]
async fn browsers_may_read_the_date_of_answers_from_allowed_origins() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/suggest"))
        .bearer_auth(&app.acme.suggest)
        .header("origin", WIDGET_ORIGIN)
        .json(&json!({"text": "anything"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.split(", ").any(|name| name == "date"), "{exposed}");
}
