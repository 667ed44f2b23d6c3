//! Hostile and broken requests: customers paste anything into a ticket form, and clients
//! send anything to an API. Each gets a normal answer or an error of the contract, and
//! the service keeps answering.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    assert_api_error, assert_best_match, spawn_app, spawn_app_with, spawn_app_with_demo, TestApp,
};

/// Asserts that the service still finds the password article for a plain draft.
async fn assert_still_answers_normally(app: &TestApp) {
    let suggestions = app
        .suggestions(&app.acme.suggest, &json!({"text": "reset my password"}))
        .await;
    assert_best_match(&suggestions, "article-reset-password");
}

#[tokio::test]
async fn an_empty_or_whitespace_only_draft_is_400_empty_draft() {
    // Arrange
    let app = spawn_app().await;
    let drafts = [
        json!({"text": ""}),
        json!({"text": "   \n\t  "}),
        json!({"subject": " ", "description": "\r\n", "text": "\u{3000}"}),
        json!({}),
    ];

    for draft in drafts {
        // Act
        let response = app.suggest(&app.acme.suggest, &draft).await;

        // Assert
        assert_api_error(response, StatusCode::BAD_REQUEST, "empty_draft").await;
    }
}

#[tokio::test]
async fn hostile_drafts_get_a_normal_answer_and_the_service_keeps_answering() {
    // Arrange
    let app = spawn_app_with_demo().await;
    let nested_parentheses = format!("{}password{}", "(".repeat(10_000), ")".repeat(10_000));
    let drafts: Vec<(&str, String)> = vec![
        (
            "1 MB of text",
            "my password reset link expired. ".repeat(32 * 1024),
        ),
        ("emoji", "🔥🔥 my password 🙈 doesn't work 👩‍💻🇩🇪".to_owned()),
        ("NUL bytes", "pass\u{0}word\u{0}\u{0} reset\u{0}".to_owned()),
        (
            "right-to-left marks",
            "\u{200f}reset\u{200f} my \u{202e}password\u{202c} \u{200e}".to_owned(),
        ),
        ("10,000 nested parentheses", nested_parentheses),
        ("field syntax", "title: password".to_owned()),
        ("field syntax alone", "title:".to_owned()),
        ("unbalanced quotes", "\"reset my \"password".to_owned()),
        ("operators", "- *".to_owned()),
        (
            "operators around a word",
            "- * password -reset +".to_owned(),
        ),
        ("query syntax", "a:(^".to_owned()),
        ("a 100 KB single token", "x".repeat(100 * 1024)),
        ("a 100 KB single word of letters", "password".repeat(12_800)),
        (
            "HTML",
            "<script>alert('password')</script><b>reset</b>".to_owned(),
        ),
        (
            "control characters",
            "\u{1b}[31mreset\u{7} password\u{8}".to_owned(),
        ),
        (
            "lone combining marks",
            "\u{301}\u{301}password\u{301}".to_owned(),
        ),
        ("CJK", "我的密码忘了 パスワード".to_owned()),
    ];

    for (label, text) in &drafts {
        // Act
        let response = app
            .suggest(&app.acme.suggest, &json!({"text": text, "limit": 5}))
            .await;

        // Assert
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::OK,
            "{label}: {}",
            &body[..body.len().min(500)]
        );
        let suggestions: crate::helpers::Suggestions = serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("{label}: unexpected answer ({error}): {body}"));
        assert!(!suggestions.suggestion_id.is_empty(), "{label}");
        assert!(suggestions.results.len() <= 5, "{label}: {suggestions:?}");
        assert_eq!(
            suggestions.abstained,
            suggestions.results.is_empty(),
            "{label}: {suggestions:?}"
        );
        assert!(
            (0.0..=1.0).contains(&suggestions.confidence),
            "{label}: {suggestions:?}"
        );
    }
    assert_still_answers_normally(&app).await;
}

#[tokio::test]
async fn invalid_json_is_400_malformed_json() {
    // Arrange
    let app = spawn_app().await;
    let bodies = [
        r#"{"text": "password""#,
        r#"{"text": "password",}"#,
        "not json at all",
        r#"{"text": 42}"#,
        r#"["password"]"#,
        "",
    ];

    for body in bodies {
        // Act
        let response = app
            .client
            .post(app.url("/v1/suggest"))
            .bearer_auth(&app.acme.suggest)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();

        // Assert
        assert_api_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
}

#[tokio::test]
async fn a_suggest_body_that_is_not_json_is_415_invalid_content_type() {
    // Arrange
    let app = spawn_app().await;

    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = app
            .client
            .post(app.url("/v1/suggest"))
            .bearer_auth(&app.acme.suggest)
            .body(r#"{"text": "password"}"#);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }

        // Act
        let response = request.send().await.unwrap();

        // Assert
        assert_api_error(
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_content_type",
        )
        .await;
    }
}

#[tokio::test]
async fn an_unknown_kind_is_400_invalid_suggest_request() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .suggest(
            &app.acme.suggest,
            &json!({"text": "password", "kinds": ["lesson", "podcast"]}),
        )
        .await;

    // Assert
    let error =
        assert_api_error(response, StatusCode::BAD_REQUEST, "invalid_suggest_request").await;
    assert!(error.message.contains("podcast"), "{}", error.message);
}

#[tokio::test]
async fn an_invalid_locale_is_400_invalid_suggest_request() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .suggest(
            &app.acme.suggest,
            &json!({"text": "password", "locale": "not a locale"}),
        )
        .await;

    // Assert
    assert_api_error(response, StatusCode::BAD_REQUEST, "invalid_suggest_request").await;
}

#[tokio::test]
async fn a_suggest_body_over_the_configured_limit_is_413_payload_too_large() {
    // Arrange
    let app = spawn_app().await;
    let limit = app.settings.server.suggest_body_limit_bytes;
    let padding = "a ".repeat(limit / 2 + 16);
    let body = json!({"text": padding}).to_string();
    assert!(body.len() > limit);

    // Act
    let response = app
        .client
        .post(app.url("/v1/suggest"))
        .bearer_auth(&app.acme.suggest)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();

    // Assert
    assert_api_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn a_smaller_configured_suggest_limit_is_enforced() {
    // Arrange
    let app = spawn_app_with(|settings| settings.server.suggest_body_limit_bytes = 1_024).await;
    let body = json!({"text": "password ".repeat(200)});

    // Act
    let response = app.suggest(&app.acme.suggest, &body).await;

    // Assert
    assert_api_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn an_unknown_route_is_404_route_not_found() {
    // Arrange
    let app = spawn_app().await;

    for path in ["/v1/nope", "/", "/v1/content", "/v2/suggest"] {
        // Act
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth(&app.acme.admin)
            .send()
            .await
            .unwrap();

        // Assert
        assert_api_error(response, StatusCode::NOT_FOUND, "route_not_found").await;
    }
}

#[tokio::test]
async fn a_known_route_with_the_wrong_method_is_405_method_not_allowed() {
    // Arrange
    let app = spawn_app().await;
    let calls = [
        (reqwest::Method::DELETE, "/v1/suggest"),
        (reqwest::Method::PUT, "/v1/suggest"),
        (reqwest::Method::PATCH, "/v1/content/article-a"),
        (reqwest::Method::POST, "/v1/content/article-a"),
        (reqwest::Method::GET, "/v1/content/bulk"),
    ];

    for (method, path) in calls {
        // Act
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&app.acme.admin)
            .send()
            .await
            .unwrap();

        // Assert
        let error = assert_api_error(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
        assert!(error.message.contains(method.as_str()), "{}", error.message);
    }
}

#[tokio::test]
async fn a_health_route_with_the_wrong_method_is_405_method_not_allowed() {
    // Arrange
    let app = spawn_app().await;

    for path in ["/healthz", "/readyz"] {
        // Act
        let response = app.client.post(app.url(path)).send().await.unwrap();

        // Assert
        assert_api_error(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
    }
}
