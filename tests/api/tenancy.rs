//! API keys, scopes, browser origins and the wall between tenants.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    article, assert_api_error, ndjson, parse_ok, spawn_app, spawn_app_with_demo, FOREIGN_ORIGIN,
    WIDGET_ORIGIN,
};

fn password_article() -> serde_json::Value {
    article(
        "article-acme-password",
        "Reset your password",
        "Open the sign-in page and choose Forgot password to reset your password.",
    )
}

#[tokio::test]
async fn a_request_without_a_key_is_401_missing_api_key() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .client
        .post(app.url("/v1/suggest"))
        .json(&json!({"text": "password"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_api_error(response, StatusCode::UNAUTHORIZED, "missing_api_key").await;
}

#[tokio::test]
async fn an_authorization_header_that_is_not_bearer_is_401_missing_api_key() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .client
        .get(app.url("/v1/content/anything"))
        .basic_auth("acme", Some(&app.acme.admin))
        .send()
        .await
        .unwrap();

    // Assert
    assert_api_error(response, StatusCode::UNAUTHORIZED, "missing_api_key").await;
}

#[tokio::test]
async fn an_unknown_key_is_401_invalid_api_key() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .suggest("not-a-configured-key", &json!({"text": "password"}))
        .await;

    // Assert
    assert_api_error(response, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
}

#[tokio::test]
async fn a_suggest_key_cannot_write_content() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .put_content(&app.acme.suggest, "article-x", &password_article())
        .await;

    // Assert
    assert_api_error(response, StatusCode::FORBIDDEN, "insufficient_scope").await;
}

#[tokio::test]
async fn a_key_without_the_scope_is_refused_before_its_body_is_read() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .client
        .put(app.url("/v1/content/article-x"))
        .bearer_auth(&app.acme.suggest)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("the request reaches the server");

    // Assert
    assert_api_error(response, StatusCode::FORBIDDEN, "insufficient_scope").await;
}

#[tokio::test]
async fn keys_without_the_admin_scope_cannot_read_delete_or_bulk_load_content() {
    // Arrange
    let app = spawn_app().await;
    app.put_documents(&app.acme.admin, &[password_article()])
        .await;

    for key in [&app.acme.suggest, &app.acme.agent, &app.acme.ops] {
        // Act
        let read = app.get_content(key, "article-acme-password").await;
        let delete = app.delete_content(key, "article-acme-password").await;
        let bulk = app
            .post_bulk(key, "application/x-ndjson", String::new())
            .await;

        // Assert
        assert_api_error(read, StatusCode::FORBIDDEN, "insufficient_scope").await;
        assert_api_error(delete, StatusCode::FORBIDDEN, "insufficient_scope").await;
        assert_api_error(bulk, StatusCode::FORBIDDEN, "insufficient_scope").await;
    }
    assert_eq!(
        app.get_content(&app.acme.admin, "article-acme-password")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn admin_and_ops_keys_cannot_ask_for_suggestions() {
    // Arrange
    let app = spawn_app().await;

    for key in [&app.acme.admin, &app.acme.ops] {
        // Act
        let response = app.suggest(key, &json!({"text": "password"})).await;

        // Assert
        assert_api_error(response, StatusCode::FORBIDDEN, "insufficient_scope").await;
    }
}

#[tokio::test]
async fn content_of_one_tenant_is_never_suggested_to_another() {
    // Arrange
    let app = spawn_app().await;
    app.put_documents(&app.acme.admin, &[password_article()])
        .await;

    // Act
    let for_acme = app
        .suggestions(&app.acme.agent, &json!({"text": "reset my password"}))
        .await;
    let for_globex = app
        .suggestions(&app.globex.agent, &json!({"text": "reset my password"}))
        .await;

    // Assert
    assert_eq!(for_acme.ids(), ["article-acme-password"], "{for_acme:?}");
    assert!(for_globex.abstained, "{for_globex:?}");
    assert!(for_globex.results.is_empty(), "{for_globex:?}");
}

#[tokio::test]
async fn another_tenant_can_neither_read_nor_delete_a_document() {
    // Arrange
    let app = spawn_app().await;
    app.put_documents(&app.acme.admin, &[password_article()])
        .await;

    // Act
    let read = app
        .get_content(&app.globex.admin, "article-acme-password")
        .await;
    let delete = app
        .delete_content(&app.globex.admin, "article-acme-password")
        .await;

    // Assert
    assert_api_error(read, StatusCode::NOT_FOUND, "content_not_found").await;
    assert_api_error(delete, StatusCode::NOT_FOUND, "content_not_found").await;
    assert_eq!(
        app.get_content(&app.acme.admin, "article-acme-password")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn two_tenants_may_use_the_same_id_without_overwriting_each_other() {
    // Arrange
    let app = spawn_app().await;
    app.put_documents(
        &app.acme.admin,
        &[article("shared-id", "Acme zeppelin", "zeppelin")],
    )
    .await;

    // Act
    app.put_documents(
        &app.globex.admin,
        &[article("shared-id", "Globex zeppelin", "zeppelin")],
    )
    .await;

    // Assert
    let for_acme = app
        .suggestions(&app.acme.agent, &json!({"text": "zeppelin", "limit": 10}))
        .await;
    let for_globex = app
        .suggestions(&app.globex.agent, &json!({"text": "zeppelin", "limit": 10}))
        .await;
    assert_eq!(for_acme.results.len(), 1, "{for_acme:?}");
    assert_eq!(for_acme.results[0].title, "Acme zeppelin");
    assert_eq!(for_globex.results.len(), 1, "{for_globex:?}");
    assert_eq!(for_globex.results[0].title, "Globex zeppelin");
}

#[tokio::test]
/// Document counts and frequencies are per tenant, so abstention and the best match
/// never depend on other tenants. (Average field lengths are index-wide, so the order of
/// weaker matches may shift slightly.)
async fn another_tenants_content_does_not_change_a_tenants_abstention_or_best_match() {
    // Arrange
    let app = spawn_app_with_demo().await;
    let drafts = [
        "what is the weather in paris tomorrow",
        "my car makes a grinding noise when i brake",
        "translate good morning into japanese",
        "how do i reset my password",
    ];
    let mut answers_before = Vec::new();
    for draft in drafts {
        let suggestions = app
            .suggestions(&app.acme.suggest, &json!({"text": draft}))
            .await;
        answers_before.push((
            suggestions.abstained,
            suggestions.confidence,
            suggestions.ids().first().map(|id| id.to_string()),
        ));
    }
    let unrelated: Vec<serde_json::Value> = (0..3_000)
        .map(|number| {
            article(
                &format!("globex-note-{number}"),
                &format!("Globex note {number}"),
                "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
            )
        })
        .collect();

    // Act
    let report: serde_json::Value = parse_ok(
        app.post_bulk(
            &app.globex.admin,
            "application/x-ndjson",
            ndjson(&unrelated),
        )
        .await,
        "globex bulk",
    )
    .await;

    // Assert
    assert_eq!(report["applied"], 3_000, "{report}");
    let mut changed = Vec::new();
    for (draft, before) in drafts.iter().zip(&answers_before) {
        let suggestions = app
            .suggestions(&app.acme.suggest, &json!({"text": draft}))
            .await;
        let after = (
            suggestions.abstained,
            suggestions.confidence,
            suggestions.ids().first().map(|id| id.to_string()),
        );
        if &after != before {
            changed.push(format!("{draft:?}: before {before:?}, after {after:?}"));
        }
    }
    assert!(
        changed.is_empty(),
        "acme's answers changed after globex added content:\n{}",
        changed.join("\n")
    );
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_204_with_cors_headers() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/suggest"))
        .header("origin", WIDGET_ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], WIDGET_ORIGIN);
    let allowed_methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(allowed_methods.contains("POST"), "{allowed_methods}");
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed_headers.contains("authorization") && allowed_headers.contains("content-type"),
        "{allowed_headers}"
    );
    assert!(headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn a_preflight_from_an_unknown_origin_is_403_origin_not_allowed() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/suggest"))
        .header("origin", FOREIGN_ORIGIN)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();

    // Assert
    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));
    assert_api_error(response, StatusCode::FORBIDDEN, "origin_not_allowed").await;
}

#[tokio::test]
async fn a_suggest_key_used_from_a_foreign_origin_is_403_origin_not_allowed() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .client
        .post(app.url("/v1/suggest"))
        .bearer_auth(&app.acme.suggest)
        .header("origin", FOREIGN_ORIGIN)
        .json(&json!({"text": "password"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_api_error(response, StatusCode::FORBIDDEN, "origin_not_allowed").await;
}

#[tokio::test]
async fn a_suggest_key_used_from_the_allowed_origin_gets_suggestions_and_cors_headers() {
    // Arrange
    let app = spawn_app().await;
    app.put_documents(&app.acme.admin, &[password_article()])
        .await;

    // Act
    let response = app
        .client
        .post(app.url("/v1/suggest"))
        .bearer_auth(&app.acme.suggest)
        // A trailing slash is the same origin.
        .header("origin", format!("{WIDGET_ORIGIN}/"))
        .json(&json!({"text": "reset my password"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        WIDGET_ORIGIN
    );
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    let suggestions: crate::helpers::Suggestions = response.json().await.unwrap();
    assert_eq!(suggestions.ids(), ["article-acme-password"]);
}

#[tokio::test]
async fn a_suggest_key_without_an_origin_works_from_a_server() {
    // Arrange
    let app = spawn_app().await;
    app.put_documents(&app.acme.admin, &[password_article()])
        .await;

    // Act
    let suggestions = app
        .suggestions(&app.acme.suggest, &json!({"text": "reset my password"}))
        .await;

    // Assert
    assert_eq!(suggestions.ids(), ["article-acme-password"]);
}

#[tokio::test]
async fn an_agent_key_is_not_bound_to_browser_origins() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .client
        .post(app.url("/v1/suggest"))
        .bearer_auth(&app.acme.agent)
        .header("origin", FOREIGN_ORIGIN)
        .json(&json!({"text": "password"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));
}
