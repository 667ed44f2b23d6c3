//! `/v1/content/{id}` and `/v1/content/bulk`: the admin API that feeds the index.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{article, assert_api_error, lesson, ndjson, parse_ok, spawn_app};

#[tokio::test]
async fn a_document_put_can_be_read_back() {
    // Arrange
    let app = spawn_app().await;
    let document = json!({
        "kind": "lesson",
        "title": "  Calibrate the flux capacitor ",
        "summary": "Bring the capacitor to 1.21 gigawatts.",
        "body": "<p>Open the <b>panel</b> and turn the dial.</p>",
        "url": "https://learn.acme.example/flux/01",
        "course_id": "course-flux",
        "course_title": "Flux basics",
        "position": 1,
        "duration_seconds": 95,
        "locale": "en_US",
        "audiences": ["Admin", "admin", " end_user "],
        "products": ["Flux"],
        "tags": ["calibration"],
        "updated_at": "2026-03-14T09:30:00Z",
    });

    // Act
    let put_response = app
        .put_content(&app.acme.admin, "lesson-flux-01", &document)
        .await;
    let put_status = put_response.status();
    let get_response = app.get_content(&app.acme.admin, "lesson-flux-01").await;

    // Assert
    assert_eq!(put_status, StatusCode::OK);
    let stored: Value = parse_ok(get_response, "GET lesson-flux-01").await;
    assert_eq!(stored["id"], "lesson-flux-01");
    assert_eq!(stored["kind"], "lesson");
    assert_eq!(stored["title"], "Calibrate the flux capacitor");
    assert_eq!(stored["course_id"], "course-flux");
    assert_eq!(stored["course_title"], "Flux basics");
    assert_eq!(stored["position"], 1);
    assert_eq!(stored["duration_seconds"], 95);
    assert_eq!(stored["locale"], "en-us");
    assert_eq!(stored["audiences"], json!(["admin", "end_user"]));
    assert_eq!(stored["products"], json!(["flux"]));
    assert_eq!(stored["tags"], json!(["calibration"]));
    assert_eq!(stored["updated_at"], "2026-03-14T09:30:00Z");
}

#[tokio::test]
async fn a_put_answers_with_the_document_as_stored() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .put_content(
            &app.acme.admin,
            "42",
            &json!({"id": 42, "title": " Reset a password "}),
        )
        .await;

    // Assert
    let stored: Value = parse_ok(response, "PUT 42").await;
    assert_eq!(stored["id"], "42");
    assert_eq!(stored["kind"], "article");
    assert_eq!(stored["title"], "Reset a password");
    assert_eq!(stored["locale"], "en");
}

#[tokio::test]
async fn a_second_put_replaces_the_document_without_a_duplicate_suggestion() {
    // Arrange
    let app = spawn_app().await;
    app.put_documents(
        &app.acme.admin,
        &[article(
            "article-frobnicator",
            "Set up the frobnicator",
            "The frobnicator needs a warm-up.",
        )],
    )
    .await;

    // Act
    app.put_documents(
        &app.acme.admin,
        &[article(
            "article-frobnicator",
            "Tear down the frobnicator",
            "The frobnicator needs a cool-down.",
        )],
    )
    .await;

    // Assert
    let suggestions = app
        .suggestions(
            &app.acme.agent,
            &json!({"text": "frobnicator", "limit": 10}),
        )
        .await;
    assert_eq!(
        suggestions.ids(),
        ["article-frobnicator"],
        "{suggestions:?}"
    );
    assert_eq!(suggestions.results[0].title, "Tear down the frobnicator");
    let stored: Value = parse_ok(
        app.get_content(&app.acme.admin, "article-frobnicator")
            .await,
        "GET article-frobnicator",
    )
    .await;
    assert_eq!(stored["title"], "Tear down the frobnicator");
    assert_eq!(app.readiness().await["index"]["documents"], 1);
}

#[tokio::test]
async fn a_deleted_document_is_gone_from_reads_and_suggestions() {
    // Arrange
    let app = spawn_app().await;
    app.put_documents(
        &app.acme.admin,
        &[
            article("article-gizmo", "Gizmo overheating", "The gizmo gets hot."),
            article("article-gizmo-2", "Gizmo noise", "The gizmo hums."),
        ],
    )
    .await;

    // Act
    let delete_response = app.delete_content(&app.acme.admin, "article-gizmo").await;

    // Assert
    assert_eq!(delete_response.status(), StatusCode::NO_CONTENT);
    assert!(delete_response.headers().contains_key("x-request-id"));
    assert_api_error(
        app.get_content(&app.acme.admin, "article-gizmo").await,
        StatusCode::NOT_FOUND,
        "content_not_found",
    )
    .await;
    let suggestions = app
        .suggestions(&app.acme.agent, &json!({"text": "gizmo", "limit": 10}))
        .await;
    assert_eq!(suggestions.ids(), ["article-gizmo-2"], "{suggestions:?}");
}

#[tokio::test]
async fn deleting_a_missing_document_is_404_content_not_found() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.delete_content(&app.acme.admin, "never-stored").await;

    // Assert
    assert_api_error(response, StatusCode::NOT_FOUND, "content_not_found").await;
}

#[tokio::test]
async fn a_put_with_invalid_fields_is_400_invalid_document_listing_every_problem() {
    // Arrange
    let app = spawn_app().await;
    let document = json!({
        "kind": "podcast",
        "title": "   ",
        "url": "ftp://files.acme.example/x",
        "locale": "english!",
        "duration_seconds": 700000,
        "updated_at": "yesterday",
    });

    // Act
    let response = app.put_content(&app.acme.admin, "bad-doc", &document).await;

    // Assert
    let error = assert_api_error(response, StatusCode::BAD_REQUEST, "invalid_document").await;
    let problems = error.details.expect("details")["problems"].clone();
    let mut fields: Vec<&str> = problems
        .as_array()
        .expect("problems is a list")
        .iter()
        .map(|problem| problem["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "duration_seconds",
            "kind",
            "locale",
            "title",
            "updated_at",
            "url"
        ],
        "{problems}"
    );
    assert!(problems
        .as_array()
        .unwrap()
        .iter()
        .all(|problem| !problem["message"].as_str().unwrap().is_empty()));
    assert_api_error(
        app.get_content(&app.acme.admin, "bad-doc").await,
        StatusCode::NOT_FOUND,
        "content_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_body_id_that_contradicts_the_path_id_is_400() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .put_content(
            &app.acme.admin,
            "article-a",
            &json!({"id": "article-b", "title": "Mismatch"}),
        )
        .await;

    // Assert
    let error = assert_api_error(response, StatusCode::BAD_REQUEST, "invalid_document").await;
    assert_eq!(error.details.unwrap()["problems"][0]["field"], "id");
    for id in ["article-a", "article-b"] {
        assert_api_error(
            app.get_content(&app.acme.admin, id).await,
            StatusCode::NOT_FOUND,
            "content_not_found",
        )
        .await;
    }
}

#[tokio::test]
async fn a_path_id_with_a_space_is_400_invalid_path_parameter() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .put_content(&app.acme.admin, "two%20words", &json!({"title": "Spaces"}))
        .await;

    // Assert
    assert_api_error(response, StatusCode::BAD_REQUEST, "invalid_path_parameter").await;
}

#[tokio::test]
async fn a_put_with_invalid_json_is_400_malformed_json() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .client
        .put(app.url("/v1/content/article-a"))
        .bearer_auth(&app.acme.admin)
        .header("content-type", "application/json")
        .body(r#"{"title": "unterminated"#)
        .send()
        .await
        .unwrap();

    // Assert
    assert_api_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
}

#[tokio::test]
async fn a_bulk_upload_applies_valid_lines_and_reports_bad_ones_by_line_number() {
    // Arrange
    let app = spawn_app().await;
    let body = [
        article("bulk-1", "Quasar alignment", "Align the quasar.").to_string(),
        json!({"title": "No id here", "body": "quasar"}).to_string(),
        article("bulk-3", "Quasar cleaning", "Clean the quasar.").to_string(),
        String::new(),
        json!({"id": "bulk-5", "body": "no title, quasar"}).to_string(),
        "{not json".to_owned(),
        // Windows line ending, and the last line has no newline at all.
        format!(
            "{}\r",
            article("bulk-7", "Quasar storage", "Store the quasar.")
        ),
        article("bulk-8", "Quasar disposal", "Dispose of the quasar.").to_string(),
    ]
    .join("\n");

    // Act
    let response = app
        .post_bulk(&app.acme.admin, "application/x-ndjson", body)
        .await;

    // Assert
    let report: Value = parse_ok(response, "bulk").await;
    assert_eq!(report["applied"], 4, "{report}");
    assert_eq!(report["failed"], 3, "{report}");
    let errors = report["errors"].as_array().unwrap();
    let lines: Vec<u64> = errors
        .iter()
        .map(|error| error["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 5, 6], "{report}");
    assert_eq!(errors[0]["problems"][0]["field"], "id", "{report}");
    assert_eq!(errors[1]["id"], "bulk-5", "{report}");
    assert_eq!(errors[1]["problems"][0]["field"], "title", "{report}");
    assert!(
        errors[2]["message"].as_str().unwrap().contains("JSON"),
        "{report}"
    );
    let suggestions = app
        .suggestions(&app.acme.agent, &json!({"text": "quasar", "limit": 10}))
        .await;
    let mut ids = suggestions.ids();
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["bulk-1", "bulk-3", "bulk-7", "bulk-8"],
        "{suggestions:?}"
    );
}

#[tokio::test]
async fn a_bulk_upload_keeps_the_last_version_of_a_repeated_id() {
    // Arrange
    let app = spawn_app().await;
    let body = ndjson(&[
        article("bulk-twice", "Nebula first draft", "nebula"),
        article("bulk-twice", "Nebula final", "nebula"),
    ]);

    // Act
    let response = app
        .post_bulk(&app.acme.admin, "application/x-ndjson", body)
        .await;

    // Assert
    let report: Value = parse_ok(response, "bulk").await;
    assert_eq!(report["failed"], 0, "{report}");
    let suggestions = app
        .suggestions(&app.acme.agent, &json!({"text": "nebula", "limit": 10}))
        .await;
    assert_eq!(suggestions.ids(), ["bulk-twice"], "{suggestions:?}");
    assert_eq!(suggestions.results[0].title, "Nebula final");
}

#[tokio::test]
async fn a_bulk_upload_with_a_json_content_type_is_415() {
    // Arrange
    let app = spawn_app().await;
    let body = ndjson(&[article("bulk-1", "Quasar", "quasar")]);

    // Act
    let response = app
        .post_bulk(&app.acme.admin, "application/json", body)
        .await;

    // Assert
    assert_api_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "invalid_content_type",
    )
    .await;
    assert_api_error(
        app.get_content(&app.acme.admin, "bulk-1").await,
        StatusCode::NOT_FOUND,
        "content_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_bulk_upload_declared_larger_than_the_limit_is_413() {
    // Arrange
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.server.bulk_body_limit_bytes = 1024;
    })
    .await;
    let documents: Vec<Value> = (0..40)
        .map(|number| article(&format!("bulk-{number}"), "Quasar", "quasar"))
        .collect();

    // Act
    let response = app
        .post_bulk(&app.acme.admin, "application/x-ndjson", ndjson(&documents))
        .await;

    // Assert
    assert_api_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn five_thousand_documents_streamed_in_chunks_are_all_applied_and_searchable() {
    // Arrange
    let app = spawn_app().await;
    let document_count = 5_000;
    let mut body = Vec::new();
    for number in 0..document_count {
        let document = lesson(
            &format!("generated-{number}"),
            &format!("course-{}", number / 10),
            &format!("Generated lesson {number} about marker{number}"),
            &format!("This lesson explains topic marker{number} in a few sentences."),
        );
        body.extend_from_slice(document.to_string().as_bytes());
        body.push(b'\n');
    }
    // An odd chunk size, so that most lines straddle two chunks.
    let chunks: Vec<Vec<u8>> = body.chunks(7_919).map(<[u8]>::to_vec).collect();
    assert!(chunks.len() > 50);

    // Act
    let response = app.post_bulk_as_stream(&app.acme.admin, chunks).await;

    // Assert
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(response.header("x-request-id").is_some());
    let report: Value = response.json();
    assert_eq!(report["applied"], document_count, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(app.readiness().await["index"]["documents"], document_count);
    for number in [0, 2_999, 4_999] {
        let suggestions = app
            .suggestions(
                &app.acme.agent,
                &json!({"text": format!("marker{number} "), "limit": 1}),
            )
            .await;
        assert_eq!(
            suggestions.ids(),
            [format!("generated-{number}")],
            "{suggestions:?}"
        );
    }
}
