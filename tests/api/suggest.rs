//! `/v1/suggest`: relevance on the demo catalog, as-you-type matching, filters and the
//! shape of the answer.

use std::collections::{HashMap, HashSet};

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::helpers::{
    article, assert_api_error, assert_best_match, lesson, parse_ok, spawn_app, spawn_app_with_demo,
    Suggestions,
};

/// One line of `tests/fixtures/demo_queries.jsonl`.
#[derive(Debug, Deserialize)]
struct DemoQuery {
    text: String,
    locale: String,
    /// Acceptable answers; empty when the service should abstain.
    expected: Vec<String>,
}

fn demo_queries() -> Vec<DemoQuery> {
    include_str!("../fixtures/demo_queries.jsonl")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("a valid demo query line"))
        .collect()
}

#[tokio::test]
async fn every_in_scope_demo_query_finds_an_expected_document_in_the_top_3() {
    // Arrange
    let app = spawn_app_with_demo().await;
    let in_scope: Vec<DemoQuery> = demo_queries()
        .into_iter()
        .filter(|query| !query.expected.is_empty())
        .collect();
    assert!(in_scope.len() >= 30, "the fixture has shrunk");

    // Act
    let mut misses = Vec::new();
    for query in &in_scope {
        let suggestions = app
            .suggestions(
                &app.acme.suggest,
                &json!({"text": query.text, "locale": query.locale, "limit": 3}),
            )
            .await;
        let found = suggestions
            .results
            .iter()
            .any(|result| query.expected.contains(&result.id));
        if !found {
            misses.push(format!(
                "{:?} expected one of {:?}, got {:?} (abstained: {}, confidence: {})",
                query.text,
                query.expected,
                suggestions.ids(),
                suggestions.abstained,
                suggestions.confidence
            ));
        }
    }

    // Assert
    assert!(
        misses.is_empty(),
        "{} of {} in-scope queries missed:\n{}",
        misses.len(),
        in_scope.len(),
        misses.join("\n")
    );
}

#[tokio::test]
#[ignore = "known relevance gap (issue 2): with the default confidence rule tuned on ../shared/relevance, 2 of the 6 off-topic demo drafts still get suggestions; run with --ignored to see them"]
async fn every_out_of_scope_demo_query_abstains() {
    // Arrange
    let app = spawn_app_with_demo().await;
    let out_of_scope: Vec<DemoQuery> = demo_queries()
        .into_iter()
        .filter(|query| query.expected.is_empty())
        .collect();
    assert!(
        !out_of_scope.is_empty(),
        "the fixture has no out-of-scope query"
    );

    // Act
    let mut answered = Vec::new();
    for query in &out_of_scope {
        let suggestions = app
            .suggestions(
                &app.acme.suggest,
                &json!({"text": query.text, "locale": query.locale}),
            )
            .await;
        if !suggestions.abstained || !suggestions.results.is_empty() {
            answered.push(format!(
                "{:?} got {:?} (confidence: {})",
                query.text,
                suggestions.ids(),
                suggestions.confidence
            ));
        }
    }

    // Assert
    assert!(
        answered.is_empty(),
        "out-of-scope queries that did not abstain:\n{}",
        answered.join("\n")
    );
}

#[tokio::test]
async fn a_half_typed_draft_finds_the_password_article_and_marks_the_matched_words() {
    // Arrange
    let app = spawn_app_with_demo().await;

    // Act
    let suggestions = app
        .suggestions(
            &app.acme.suggest,
            &json!({"text": "how do i reset my passw"}),
        )
        .await;

    // Assert
    assert!(!suggestions.abstained, "{suggestions:?}");
    let password_article = suggestions
        .results
        .iter()
        .find(|result| result.id == "article-reset-password")
        .unwrap_or_else(|| panic!("no password article in {:?}", suggestions.ids()));
    let snippet = password_article.snippet.to_lowercase();
    assert!(
        snippet.contains("<mark>reset</mark>"),
        "the snippet does not mark `reset`: {snippet}"
    );
    assert!(
        snippet.contains("<mark>passw"),
        "the snippet does not mark the word being typed: {snippet}"
    );
    assert!(
        password_article
            .matched_terms
            .iter()
            .any(|term| term == "reset"),
        "{password_article:?}"
    );
}

#[tokio::test]
async fn a_word_being_typed_matches_content_words_and_not_the_stop_words_they_start() {
    // Arrange: "th" starts the title word "theme" in one article and only the stop word
    // "the" in the other.
    let app = spawn_app().await;
    app.put_documents(
        &app.acme.admin,
        &[
            article(
                "article-dark-theme",
                "Dark theme for the dashboard",
                "Switch the dashboard to a dark theme in your settings.",
            ),
            article(
                "article-export-invoices",
                "Export the dashboard invoices",
                "Download every invoice of the dashboard as one file.",
            ),
        ],
    )
    .await;

    // Act
    let suggestions = app
        .suggestions(
            &app.acme.agent,
            &json!({"text": "dashboard invoices or a dark th", "limit": 10}),
        )
        .await;

    // Assert: both articles are found; only the theme article has a word starting with
    // "th" that is not a stop word, so only it is matched through the prefix.
    let mut found = suggestions.ids();
    found.sort_unstable();
    assert_eq!(
        found,
        ["article-dark-theme", "article-export-invoices"],
        "{suggestions:?}"
    );
    let matched_by_prefix: Vec<&str> = suggestions
        .results
        .iter()
        .filter(|result| result.matched_terms.iter().any(|term| term == "th*"))
        .map(|result| result.id.as_str())
        .collect();
    assert_eq!(matched_by_prefix, ["article-dark-theme"], "{suggestions:?}");
    let theme_snippet = &suggestions
        .results
        .iter()
        .find(|result| result.id == "article-dark-theme")
        .unwrap()
        .snippet;
    assert!(
        theme_snippet.contains("<mark>theme</mark>") && !theme_snippet.contains("<mark>the</mark>"),
        "the snippet marks the stop word: {theme_snippet}"
    );
}

#[tokio::test]
async fn a_long_rambling_draft_still_finds_the_password_article() {
    // Arrange: more content words than are scored (12), the telling ones among many
    // that say little.
    let app = spawn_app_with_demo().await;
    let draft = "hello team, hope your week is going well. yesterday afternoon our office \
        manager asked me to check the monthly numbers before friday, so this morning i \
        opened my laptop, started the browser, typed my email address and noticed that i \
        could not remember my password anymore. i clicked the reset link several times \
        but nothing arrived in my inbox, not even in spam. thanks a lot, maria";

    // Act
    let suggestions = app
        .suggestions(&app.acme.suggest, &json!({ "text": draft }))
        .await;

    // Assert
    assert_best_match(&suggestions, "article-reset-password");
}

#[tokio::test]
async fn a_misspelled_word_still_finds_the_password_article() {
    // Arrange
    let app = spawn_app_with_demo().await;

    // Act
    let suggestions = app
        .suggestions(
            &app.acme.suggest,
            &json!({"text": "i need to reset my pasword please"}),
        )
        .await;

    // Assert
    assert_best_match(&suggestions, "article-reset-password");
}

#[tokio::test]
async fn a_misspelled_word_typed_last_still_finds_the_password_article() {
    // Arrange
    let app = spawn_app_with_demo().await;

    // Act
    let suggestions = app
        .suggestions(&app.acme.suggest, &json!({"text": "pasword"}))
        .await;

    // Assert
    assert_best_match(&suggestions, "article-reset-password");
}

#[tokio::test]
async fn a_draft_whose_only_known_words_are_stop_words_abstains() {
    // Arrange
    let app = spawn_app_with_demo().await;

    // Act
    let suggestions = app
        .suggestions(&app.acme.suggest, &json!({"text": "my zzqx?"}))
        .await;

    // Assert
    assert!(suggestions.abstained, "{suggestions:?}");
    assert!(suggestions.results.is_empty(), "{suggestions:?}");
}

#[tokio::test]
async fn the_german_locale_returns_only_german_documents() {
    // Arrange
    let app = spawn_app_with_demo().await;

    // Act
    let suggestions = app
        .suggestions(
            &app.acme.suggest,
            &json!({"text": "rechnung export passwort konto", "locale": "de", "limit": 20}),
        )
        .await;

    // Assert
    assert!(!suggestions.results.is_empty(), "{suggestions:?}");
    for result in &suggestions.results {
        let stored: Value = parse_ok(
            app.get_content(&app.acme.admin, &result.id).await,
            "GET suggested document",
        )
        .await;
        assert!(
            stored["locale"].as_str().unwrap().starts_with("de"),
            "{} is not German: {stored}",
            result.id
        );
    }
}

#[tokio::test]
async fn an_english_draft_restricted_to_german_documents_gets_no_english_ones() {
    // Arrange
    let app = spawn_app_with_demo().await;

    // Act
    let suggestions = app
        .suggestions(
            &app.acme.suggest,
            &json!({"text": "reset my password", "locale": "de-AT", "limit": 20}),
        )
        .await;

    // Assert
    assert!(
        suggestions
            .results
            .iter()
            .all(|result| result.id.ends_with("-de")),
        "{:?}",
        suggestions.ids()
    );
}

#[tokio::test]
async fn a_kinds_filter_returns_only_those_kinds() {
    // Arrange
    let app = spawn_app_with_demo().await;

    // Act
    let suggestions = app
        .suggestions(
            &app.acme.suggest,
            &json!({"text": "invoice for a client in another currency", "kinds": ["lesson"], "limit": 10}),
        )
        .await;

    // Assert
    assert!(!suggestions.results.is_empty(), "{suggestions:?}");
    assert!(
        suggestions
            .results
            .iter()
            .all(|result| result.kind == "lesson"),
        "{suggestions:?}"
    );
}

#[tokio::test]
async fn an_audience_filter_keeps_documents_for_that_audience_and_for_everyone() {
    // Arrange
    let app = spawn_app().await;
    let mut for_developers = article("for-developers", "Widget webhooks", "widget webhooks");
    for_developers["audiences"] = json!(["developer"]);
    let mut for_admins = article("for-admins", "Widget seats", "widget seats");
    for_admins["audiences"] = json!(["admin"]);
    let for_everyone = article("for-everyone", "Widget overview", "widget overview");
    app.put_documents(&app.acme.admin, &[for_developers, for_admins, for_everyone])
        .await;

    // Act
    let suggestions = app
        .suggestions(
            &app.acme.agent,
            &json!({"text": "widget", "audience": "Developer", "limit": 10}),
        )
        .await;

    // Assert
    let ids: HashSet<&str> = suggestions.ids().into_iter().collect();
    assert_eq!(
        ids,
        HashSet::from(["for-developers", "for-everyone"]),
        "{suggestions:?}"
    );
}

#[tokio::test]
async fn a_product_filter_keeps_only_documents_of_that_product() {
    // Arrange
    let app = spawn_app().await;
    let mut mobile = article("mobile-sync", "Sprocket sync on mobile", "sprocket sync");
    mobile["products"] = json!(["mobile", "time_tracking"]);
    let mut web = article("web-sync", "Sprocket sync on the web", "sprocket sync");
    web["products"] = json!(["web"]);
    let unlabelled = article("any-sync", "Sprocket sync anywhere", "sprocket sync");
    app.put_documents(&app.acme.admin, &[mobile, web, unlabelled])
        .await;

    // Act
    let suggestions = app
        .suggestions(
            &app.acme.agent,
            &json!({"text": "sprocket sync", "product": "mobile", "limit": 10}),
        )
        .await;

    // Assert
    assert_eq!(suggestions.ids(), ["mobile-sync"], "{suggestions:?}");
}

#[tokio::test]
async fn at_most_two_lessons_of_one_course_are_suggested() {
    // Arrange
    let app = spawn_app().await;
    let mut documents: Vec<Value> = (1..=5)
        .map(|number| {
            lesson(
                &format!("lesson-turbine-{number}"),
                "course-turbines",
                &format!("Turbine maintenance part {number}"),
                "Turbine maintenance step by step.",
            )
        })
        .collect();
    documents.push(article(
        "article-turbine",
        "Turbine maintenance checklist",
        "Turbine maintenance at a glance.",
    ));
    app.put_documents(&app.acme.admin, &documents).await;

    // Act
    let suggestions = app
        .suggestions(
            &app.acme.agent,
            &json!({"text": "turbine maintenance", "limit": 10}),
        )
        .await;

    // Assert
    let from_course = suggestions
        .results
        .iter()
        .filter(|result| {
            result.course.as_ref().map(|course| course.id.as_str()) == Some("course-turbines")
        })
        .count();
    assert_eq!(from_course, 2, "{suggestions:?}");
    assert!(
        suggestions.ids().contains(&"article-turbine"),
        "{suggestions:?}"
    );
}

#[tokio::test]
async fn no_course_contributes_more_than_two_results_on_the_demo_catalog() {
    // Arrange
    let app = spawn_app_with_demo().await;

    // Act
    let suggestions = app
        .suggestions(
            &app.acme.agent,
            &json!({"text": "invoice invoices billing plan payment", "limit": 20}),
        )
        .await;

    // Assert
    assert!(suggestions.results.len() > 5, "{suggestions:?}");
    let mut per_course: HashMap<&str, usize> = HashMap::new();
    for result in &suggestions.results {
        if let Some(course) = &result.course {
            *per_course.entry(course.id.as_str()).or_default() += 1;
        }
    }
    assert!(
        per_course.values().all(|count| *count <= 2),
        "{per_course:?}"
    );
}

#[tokio::test]
async fn the_limit_is_honoured_and_defaults_to_three() {
    // Arrange
    let app = spawn_app().await;
    let documents: Vec<Value> = (1..=8)
        .map(|number| {
            article(
                &format!("article-gasket-{number}"),
                &format!("Gasket tip {number}"),
                "Replace the gasket.",
            )
        })
        .collect();
    app.put_documents(&app.acme.admin, &documents).await;

    // Act
    let limited_to_one = app
        .suggestions(&app.acme.agent, &json!({"text": "gasket", "limit": 1}))
        .await;
    let limited_to_five = app
        .suggestions(&app.acme.agent, &json!({"text": "gasket", "limit": 5}))
        .await;
    let without_limit = app
        .suggestions(&app.acme.agent, &json!({"text": "gasket"}))
        .await;
    let at_the_maximum = app
        .suggestions(&app.acme.agent, &json!({"text": "gasket", "limit": 20}))
        .await;

    // Assert
    assert_eq!(limited_to_one.results.len(), 1);
    assert_eq!(limited_to_five.results.len(), 5);
    assert_eq!(without_limit.results.len(), 3);
    assert_eq!(at_the_maximum.results.len(), 8);
}

#[tokio::test]
async fn a_limit_above_the_maximum_or_zero_is_400_invalid_suggest_request() {
    // Arrange
    let app = spawn_app().await;

    for limit in [21, 0] {
        // Act
        let response = app
            .suggest(&app.acme.agent, &json!({"text": "gasket", "limit": limit}))
            .await;

        // Assert
        assert_api_error(response, StatusCode::BAD_REQUEST, "invalid_suggest_request").await;
    }
}

#[tokio::test]
async fn get_suggest_with_a_query_string_answers_like_post() {
    // Arrange
    let app = spawn_app_with_demo().await;

    // Act
    let response = app
        .suggest_by_query(
            &app.acme.suggest,
            &[
                ("q", "reset my password"),
                ("locale", "en"),
                ("kinds", "article, lesson"),
                ("limit", "2"),
            ],
        )
        .await;

    // Assert
    let suggestions: Suggestions = parse_ok(response, "GET /v1/suggest").await;
    assert!(suggestions.results.len() <= 2, "{suggestions:?}");
    assert_best_match(&suggestions, "article-reset-password");
    assert!(suggestions
        .results
        .iter()
        .all(|result| result.kind == "article" || result.kind == "lesson"));
}

#[tokio::test]
async fn get_suggest_rejects_a_limit_that_is_not_a_number() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .suggest_by_query(&app.acme.suggest, &[("q", "password"), ("limit", "many")])
        .await;

    // Assert
    assert_api_error(response, StatusCode::BAD_REQUEST, "invalid_query_parameter").await;
}

#[tokio::test]
async fn get_suggest_without_q_is_400_empty_draft() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.suggest_by_query(&app.acme.suggest, &[("q", "")]).await;

    // Assert
    assert_api_error(response, StatusCode::BAD_REQUEST, "empty_draft").await;
}

#[tokio::test]
async fn lessons_carry_their_duration_and_course() {
    // Arrange
    let app = spawn_app_with_demo().await;

    // Act
    let suggestions = app
        .suggestions(
            &app.acme.suggest,
            &json!({"text": "how do api rate limits work", "kinds": ["lesson"], "limit": 5}),
        )
        .await;

    // Assert
    assert!(!suggestions.results.is_empty(), "{suggestions:?}");
    for result in &suggestions.results {
        assert!(result.duration_seconds.unwrap_or(0) > 0, "{result:?}");
        let course = result.course.as_ref().expect("a lesson names its course");
        assert!(course.id.starts_with("course-"), "{result:?}");
        assert!(
            course
                .title
                .as_deref()
                .is_some_and(|title| !title.is_empty()),
            "{result:?}"
        );
        assert!(result.url.is_some(), "{result:?}");
        assert!(result.score > 0.0, "{result:?}");
    }
}

#[tokio::test]
async fn every_answer_has_its_own_suggestion_id() {
    // Arrange
    let app = spawn_app_with_demo().await;
    let draft = json!({"text": "reset my password", "session_id": "session-1"});

    // Act
    let first = app.suggestions(&app.acme.suggest, &draft).await;
    let second = app.suggestions(&app.acme.suggest, &draft).await;

    // Assert
    assert!(!first.suggestion_id.is_empty());
    assert_ne!(first.suggestion_id, second.suggestion_id);
    assert_eq!(first.ids(), second.ids());
}

#[tokio::test]
async fn subject_and_description_are_searched_together() {
    // Arrange
    let app = spawn_app_with_demo().await;

    // Act
    let suggestions = app
        .suggestions(
            &app.acme.suggest,
            &json!({"subject": "Password", "description": "the reset link never arrives."}),
        )
        .await;

    // Assert
    assert_best_match(&suggestions, "article-reset-password");
}

#[tokio::test]
async fn an_abstention_has_no_results_and_a_low_confidence() {
    // Arrange
    let app = spawn_app_with_demo().await;

    // Act
    let suggestions = app
        .suggestions(
            &app.acme.suggest,
            &json!({"text": "what is the weather in paris tomorrow"}),
        )
        .await;

    // Assert
    assert!(suggestions.abstained, "{suggestions:?}");
    assert!(suggestions.results.is_empty(), "{suggestions:?}");
    assert!(
        suggestions.confidence < app.settings.search.ranking.min_confidence,
        "{suggestions:?}"
    );
}
