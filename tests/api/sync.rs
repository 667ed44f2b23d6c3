//! Content sync, black-box: tenant `acme` syncs from a local server speaking the Zendesk
//! Help Center, Freshdesk solutions and catalog feed formats, and the content is then
//! suggested (or no longer suggested) to acme's widget.

use std::time::{Duration, Instant};

use deflect::domain::TenantId;
use deflect::events::keys::KeySpace;
use deflect::sync::state::SyncState;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::fake_sources::{
    zendesk_article, FakeSources, Fault, CATALOG_TOKEN, FRESHDESK_API_KEY, ZENDESK_TOKEN,
};
use crate::helpers::{assert_api_error, build_error_with, delete_redis_keys_under};
use crate::replicas::time_until_suggested;
use crate::sync_helpers::{configure_sources, spawn_app_with_sources_and};

/// A base time for Zendesk's `updated_at` (unix seconds).
const T0: i64 = 1_790_000_000;

/// Five published en-us articles (one in another locale, one draft), on pages of two.
async fn help_center_with_articles() -> FakeSources {
    let sources = FakeSources::start(2).await;
    sources.put_zendesk_section(360001, "Account and billing");
    let topics = [
        (
            101,
            "Reset your password",
            "Choose Forgot password on the sign-in page and follow the emailed link.",
        ),
        (
            102,
            "Download invoices",
            "Every invoice is under Billing; download it as a PDF.",
        ),
        (
            103,
            "Invite teammates",
            "Admins invite teammates from the People page.",
        ),
        (
            104,
            "Change your plan",
            "Upgrade or downgrade your subscription plan under Billing.",
        ),
        (
            105,
            "Export your data",
            "Export projects as CSV from Settings, Export.",
        ),
    ];
    for (offset, (id, title, body)) in topics.into_iter().enumerate() {
        sources.put_zendesk_article(zendesk_article(
            id,
            "en-us",
            title,
            &format!("<p>{body}</p>"),
            T0 + offset as i64,
        ));
    }
    sources.put_zendesk_article(zendesk_article(
        101,
        "de",
        "Passwort zurücksetzen",
        "<p>Passwort vergessen?</p>",
        T0 + 10,
    ));
    let mut draft = zendesk_article(
        106,
        "en-us",
        "Configure single sign-on",
        "<p>Connect your SAML identity provider.</p>",
        T0 + 11,
    );
    draft.record["draft"] = json!(true);
    sources.put_zendesk_article(draft);
    sources
}

/// Publishes articles 107 and 108, changed after everything `help_center_with_articles`
/// has.
fn publish_two_new_articles(sources: &FakeSources) {
    let new_articles = [
        (
            107,
            "Connect the calendar",
            "<p>Link Google calendar to see deadlines.</p>",
        ),
        (
            108,
            "Mobile app",
            "<p>Install the mobile app from the store.</p>",
        ),
    ];
    for (offset, (id, title, body)) in new_articles.into_iter().enumerate() {
        sources.put_zendesk_article(zendesk_article(
            id,
            "en-us",
            title,
            body,
            T0 + 31 + offset as i64,
        ));
    }
}

fn ids_of(suggestions: &crate::helpers::Suggestions) -> Vec<String> {
    suggestions.ids().into_iter().map(str::to_owned).collect()
}

#[tokio::test]
async fn zendesk_articles_on_several_pages_flow_into_suggestions_without_drafts_or_other_locales() {
    // Arrange
    let sources = help_center_with_articles().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;

    // Act
    let summary = app.sync_source("zendesk", false).await;

    // Assert
    assert_eq!(summary["mode"], "full", "{summary}");
    assert_eq!(summary["upserted"], 5, "{summary}");
    assert_eq!(summary["skipped"], 1, "the German translation: {summary}");
    assert!(summary["pages"].as_u64().unwrap() >= 4, "{summary}");
    let export_pages = sources.requests_to("/incremental/articles");
    assert_eq!(
        export_pages.len(),
        4,
        "7 articles in pages of 2: {export_pages:#?}"
    );
    let found = app.suggested_for("how do I export my data as csv").await;
    assert_eq!(
        ids_of(&found).first().map(String::as_str),
        Some("zd-105-en-us"),
        "{found:?}"
    );
    assert_eq!(
        found.results[0].url.as_deref(),
        Some("https://acme.zendesk.com/hc/en-us/articles/105")
    );
    assert!(!app.holds("zd-106-en-us").await, "the draft was indexed");
    assert!(
        !app.holds("zd-101-de").await,
        "a locale not synced was indexed"
    );
    let stored: Value = app
        .get_content(&app.acme.admin, "zd-102-en-us")
        .await
        .json()
        .await
        .unwrap();
    let tags = stored["tags"].as_array().unwrap();
    assert!(
        tags.contains(&json!("billing")) && tags.contains(&json!("account and billing")),
        "{stored}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn articles_synced_through_one_instance_are_suggested_and_removed_by_another() {
    // Arrange: two instances on one Redis key prefix, each with its own index.
    let sources = help_center_with_articles().await;
    let first = spawn_app_with_sources_and(&sources, |_| {}).await;
    let shared_prefix = first.settings.events.key_prefix.clone();
    let second = spawn_app_with_sources_and(&sources, move |settings| {
        settings.events.key_prefix = shared_prefix;
    })
    .await;
    let draft = "how do I export my data as csv";

    // Act: the first instance syncs; then the article turns draft and it syncs again.
    first.sync_source("zendesk", false).await;
    let arrived = time_until_suggested(&second, draft, "zd-105-en-us", true).await;
    let mut drafted = zendesk_article(
        105,
        "en-us",
        "Export your data",
        "<p>Export projects as CSV from Settings, Export.</p>",
        T0 + 40,
    );
    drafted.record["draft"] = json!(true);
    sources.put_zendesk_article(drafted);
    first.sync_source("zendesk", false).await;
    let removed = time_until_suggested(&second, draft, "zd-105-en-us", false).await;

    // Assert
    assert!(arrived < Duration::from_secs(2), "{arrived:?}");
    assert!(removed < Duration::from_secs(2), "{removed:?}");
    assert!(!second.holds("zd-105-en-us").await);
    assert!(second.holds("zd-101-en-us").await);
}

#[tokio::test]
async fn the_second_zendesk_run_starts_at_the_saved_end_time_and_removes_an_article_turned_draft() {
    // Arrange
    let sources = help_center_with_articles().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    app.sync_source("zendesk", false).await;
    let mut drafted = zendesk_article(
        104,
        "en-us",
        "Change your plan",
        "<p>Upgrade or downgrade your subscription plan.</p>",
        T0 + 20,
    );
    drafted.record["draft"] = json!(true);
    sources.put_zendesk_article(drafted);
    sources.clear_requests();

    // Act
    let summary = app.sync_source("zendesk", false).await;

    // Assert
    assert_eq!(summary["mode"], "incremental", "{summary}");
    assert_eq!(summary["deleted"], 1, "{summary}");
    let first_export = &sources.requests_to("/incremental/articles")[0];
    assert!(
        first_export
            .target
            .ends_with(&format!("start_time={}", T0 + 11)),
        "the run did not start at the last end_time: {}",
        first_export.target
    );
    assert!(!app.holds("zd-104-en-us").await);
    assert!(app.holds("zd-103-en-us").await);
}

#[tokio::test]
async fn a_full_zendesk_run_removes_deleted_articles_but_keeps_content_added_through_the_admin_api()
{
    // Arrange
    let sources = help_center_with_articles().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    app.sync_source("zendesk", false).await;
    app.put_documents(
        &app.acme.admin,
        &[crate::helpers::article(
            "own-guide",
            "Our own guide",
            "Written in deflect directly.",
        )],
    )
    .await;
    sources.remove_zendesk_article(103);

    // Act
    let incremental = app.sync_source("zendesk", false).await;
    let still_held_after_incremental = app.holds("zd-103-en-us").await;
    let full = app.sync_source("zendesk", true).await;

    // Assert
    assert_eq!(incremental["deleted"], 0, "{incremental}");
    assert!(
        still_held_after_incremental,
        "an incremental export cannot see deletions"
    );
    assert_eq!(full["mode"], "full", "{full}");
    assert_eq!(full["deleted"], 1, "{full}");
    assert_eq!(full["unchanged"], 4, "{full}");
    assert!(!app.holds("zd-103-en-us").await);
    assert!(
        app.holds("own-guide").await,
        "the sync removed content it did not add"
    );
}

#[tokio::test]
async fn a_rate_limited_page_is_waited_out_as_retry_after_asks_and_the_sync_succeeds() {
    // Arrange
    let sources = help_center_with_articles().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    sources.rate_limit_next("page=2", 1);

    // Act
    let started = Instant::now();
    let summary = app.sync_source("zendesk", false).await;
    let took = started.elapsed();

    // Assert
    assert_eq!(summary["upserted"], 5, "{summary}");
    assert!(
        took >= Duration::from_secs(1),
        "Retry-After was not honoured: {took:?}"
    );
    let second_pages: Vec<u16> = sources
        .requests_to("page=2")
        .iter()
        .map(|request| request.status)
        .collect();
    assert_eq!(second_pages.first(), Some(&429));
    assert_eq!(second_pages.last(), Some(&200));
}

#[tokio::test]
async fn a_malformed_page_fails_the_sync_and_leaves_index_and_cursor_as_they_were() {
    // Arrange: a first run, then new content and a malformed second page.
    let sources = help_center_with_articles().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    app.sync_source("zendesk", false).await;
    sources.put_zendesk_article(zendesk_article(
        103,
        "en-us",
        "Invite colleagues",
        "<p>Send invitations to colleagues by email.</p>",
        T0 + 30,
    ));
    publish_two_new_articles(&sources);
    sources.fail_next("page=2", Fault::MalformedPage);
    sources.clear_requests();

    // Act
    let failed = app.post_sync(&[("source", "zendesk")]).await;
    let retried = app.sync_source("zendesk", false).await;

    // Assert
    let error = assert_api_error(failed, StatusCode::BAD_GATEWAY, "sync_source_failed").await;
    assert!(
        error.message.contains("not in the documented format"),
        "{}",
        error.message
    );
    let starts: Vec<String> = sources
        .requests_to("/incremental/articles?start_time")
        .iter()
        .filter(|request| !request.target.contains("page="))
        .map(|request| request.target.clone())
        .collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert_eq!(starts[0], starts[1], "the failed run moved the cursor");
    assert_eq!(retried["upserted"], 3, "{retried}");
}

#[tokio::test]
async fn after_a_failed_run_the_previous_content_is_still_suggested_and_the_new_is_not() {
    // Arrange
    let sources = help_center_with_articles().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    app.sync_source("zendesk", false).await;
    publish_two_new_articles(&sources);
    sources.put_zendesk_article(zendesk_article(
        109,
        "en-us",
        "Webhooks",
        "<p>Send events to your endpoint.</p>",
        T0 + 33,
    ));
    sources.fail_next("page=2", Fault::ServerError);
    sources.fail_next("page=2", Fault::ServerError);
    sources.fail_next("page=2", Fault::ServerError);

    // Act
    let failed = app.post_sync(&[("source", "zendesk")]).await;

    // Assert
    assert_api_error(failed, StatusCode::BAD_GATEWAY, "sync_source_failed").await;
    assert!(
        !app.holds("zd-107-en-us").await,
        "the first page of a failed run was applied"
    );
    let found = app.suggested_for("download my invoice pdf").await;
    assert_eq!(
        ids_of(&found).first().map(String::as_str),
        Some("zd-102-en-us"),
        "{found:?}"
    );
}

#[tokio::test]
async fn a_suggestion_from_the_second_section_deep_links_to_its_anchor() {
    // Arrange
    let sources = FakeSources::start(10).await;
    let body = "<p>Everything about signing in.</p>\
        <h2 id=\"reset-password\">Reset your password</h2><p>Choose Forgot password and follow the emailed link.</p>\
        <h2>Turn on two-factor authentication</h2><p>Scan the QR code with an authenticator app to protect your account.</p>";
    sources.put_zendesk_article(zendesk_article(201, "en-us", "Signing in", body, T0));
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    app.sync_source("zendesk", false).await;

    // Act
    let second = app.suggested_for("authenticator app qr code").await;
    let first = app.suggested_for("forgot password emailed link").await;

    // Assert
    let url_of = |suggestions: &crate::helpers::Suggestions| {
        suggestions.results[0].url.clone().unwrap_or_default()
    };
    assert_eq!(
        url_of(&second),
        "https://acme.zendesk.com/hc/en-us/articles/201#turn-on-two-factor-authentication",
        "{second:?}"
    );
    assert_eq!(
        second.results[0].section.as_ref().unwrap()["title"],
        "Turn on two-factor authentication"
    );
    assert_eq!(
        url_of(&first),
        "https://acme.zendesk.com/hc/en-us/articles/201#reset-password",
        "{first:?}"
    );
}

/// Two folders of Freshdesk articles: three published in the first (pages of two), a
/// draft and one published in the second.
async fn freshdesk_with_articles() -> FakeSources {
    let sources = FakeSources::start(2).await;
    sources.put_freshdesk_folder(7, 70, "Getting started");
    sources.put_freshdesk_folder(8, 80, "Integrations");
    let article = |id: u64, folder: u64, status: u8, title: &str, html: &str| {
        json!({
            "id": id, "folder_id": folder, "category_id": folder / 10, "status": status,
            "title": title, "description": html, "description_text": title,
            "tags": ["kb"], "updated_at": "2026-03-01T10:00:00Z", "created_at": "2026-03-01T10:00:00Z",
            "type": 1, "agent_id": 5,
        })
    };
    sources.put_freshdesk_article(article(
        1,
        70,
        2,
        "Create a workspace",
        "<p>Name your workspace and invite people.</p>",
    ));
    sources.put_freshdesk_article(article(
        2,
        70,
        2,
        "Import contacts",
        "<p>Upload contacts from a spreadsheet file.</p>",
    ));
    sources.put_freshdesk_article(article(
        3,
        70,
        2,
        "Set your timezone",
        "<p>Pick the timezone in your profile.</p>",
    ));
    sources.put_freshdesk_article(article(
        4,
        80,
        1,
        "Slack integration",
        "<p>Draft: connect Slack channels.</p>",
    ));
    sources.put_freshdesk_article(article(
        5,
        80,
        2,
        "Salesforce integration",
        "<p>Sync deals with Salesforce opportunities.</p>",
    ));
    sources
}

#[tokio::test]
async fn freshdesk_articles_flow_into_suggestions_and_drafted_or_deleted_ones_are_removed() {
    // Arrange
    let sources = freshdesk_with_articles().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    sources.rate_limit_next("/folders/70/articles", 1);

    // Act 1
    let first = app.sync_source("freshdesk", false).await;

    // Assert 1
    assert_eq!(first["upserted"], 4, "{first}");
    assert!(
        sources.requests_to("/folders/70/articles?page=2").len() == 1,
        "{:#?}",
        sources.requests()
    );
    let found = app
        .suggested_for("import contacts from a spreadsheet")
        .await;
    assert_eq!(
        ids_of(&found).first().map(String::as_str),
        Some("fd-2"),
        "{found:?}"
    );
    assert_eq!(
        found.results[0].url.as_deref(),
        Some("https://support.acme.example/support/solutions/articles/2")
    );
    assert!(!app.holds("fd-4").await, "the draft was indexed");

    // Act 2: one article turns draft, one is deleted.
    let mut drafted: Value = json!({
        "id": 5, "folder_id": 80, "status": 1, "title": "Salesforce integration",
        "description": "<p>Rewriting.</p>", "tags": [], "updated_at": "2026-03-02T10:00:00Z",
    });
    drafted["category_id"] = json!(8);
    sources.put_freshdesk_article(drafted);
    sources.remove_freshdesk_article(3);
    let second = app.sync_source("freshdesk", false).await;

    // Assert 2
    assert_eq!(second["deleted"], 2, "{second}");
    assert_eq!(second["unchanged"], 2, "{second}");
    assert_eq!(second["upserted"], 0, "{second}");
    assert!(!app.holds("fd-5").await && !app.holds("fd-3").await);
    assert!(app.holds("fd-1").await);
}

#[tokio::test]
async fn a_malformed_freshdesk_page_fails_the_sync_and_changes_nothing() {
    // Arrange
    let sources = freshdesk_with_articles().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    app.sync_source("freshdesk", false).await;
    sources.remove_freshdesk_article(1);
    sources.fail_next("/folders/80/articles", Fault::MalformedPage);

    // Act
    let failed = app.post_sync(&[("source", "freshdesk")]).await;

    // Assert
    assert_api_error(failed, StatusCode::BAD_GATEWAY, "sync_source_failed").await;
    assert!(app.holds("fd-1").await, "a failed run removed content");
}

/// A course of two lessons and a draft course.
fn catalog_course(id: &str, title: &str, updated_at: &str, lessons: Vec<Value>) -> Value {
    json!({
        "id": id, "title": title, "summary": format!("The {title} course."),
        "description": "<p>A short course.</p>", "url": format!("https://learn.acme.example/courses/{id}"),
        "locale": "en", "audiences": ["end_user"], "products": ["reports"], "tags": ["course"],
        "duration_seconds": 900, "updated_at": updated_at, "status": "published", "deleted": false,
        "lessons": lessons,
    })
}

fn catalog_lesson(id: &str, position: u32, title: &str, html: &str, updated_at: &str) -> Value {
    json!({
        "id": id, "title": title, "body": html, "position": position, "duration_seconds": 120,
        "url": format!("https://learn.acme.example/lessons/{id}"), "updated_at": updated_at,
        "status": "published",
    })
}

async fn catalog_with_courses() -> FakeSources {
    let sources = FakeSources::start(1).await;
    sources.put_catalog_course(catalog_course(
        "reports-101",
        "Reports basics",
        "2026-03-01T10:00:00Z",
        vec![
            catalog_lesson(
                "r1",
                1,
                "Build a pivot table",
                "<p>Drag fields into rows and columns of a pivot table.</p>",
                "2026-03-01T10:00:00Z",
            ),
            catalog_lesson(
                "r2",
                2,
                "Schedule a report",
                "<p>Email a report every Monday morning.</p>",
                "2026-03-01T10:00:00Z",
            ),
        ],
    ));
    sources.put_catalog_course(catalog_course(
        "admin-201",
        "Admin essentials",
        "2026-03-01T11:00:00Z",
        vec![catalog_lesson(
            "a1",
            1,
            "Manage user roles",
            "<p>Grant editor or viewer roles to users.</p>",
            "2026-03-01T11:00:00Z",
        )],
    ));
    let mut draft = catalog_course(
        "draft-301",
        "Unreleased course",
        "2026-03-01T12:00:00Z",
        vec![],
    );
    draft["status"] = json!("draft");
    sources.put_catalog_course(draft);
    sources
}

#[tokio::test]
async fn catalog_courses_and_lessons_flow_into_suggestions_with_their_course() {
    // Arrange
    let sources = catalog_with_courses().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    sources.rate_limit_next("page=2", 1);

    // Act
    let summary = app.sync_source("catalog", false).await;

    // Assert
    assert_eq!(
        summary["upserted"], 5,
        "two courses and three lessons: {summary}"
    );
    assert_eq!(summary["pages"], 3, "{summary}");
    let found = app.suggested_for("pivot table rows and columns").await;
    let best = &found.results[0];
    assert_eq!(best.id, "lms-lesson-r1", "{found:?}");
    assert_eq!(best.kind, "lesson");
    assert_eq!(
        best.course.as_ref().map(|course| course.id.as_str()),
        Some("lms-course-reports-101")
    );
    assert_eq!(best.duration_seconds, Some(120));
    assert!(!app.holds("lms-course-draft-301").await);
}

#[tokio::test]
async fn the_next_catalog_run_asks_with_if_none_match_and_updated_since_and_applies_what_changed() {
    // Arrange
    let sources = catalog_with_courses().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    app.sync_source("catalog", false).await;
    sources.clear_requests();

    // Act 1: nothing changed.
    let unchanged = app.sync_source("catalog", false).await;

    // Assert 1
    assert_eq!(unchanged["not_modified"], true, "{unchanged}");
    let asked = &sources.requests()[0];
    assert_eq!(asked.status, 304);
    assert_eq!(asked.if_none_match.as_deref(), Some("\"v3\""));
    assert!(
        asked
            .target
            .contains("updated_since=2026-03-01T12%3A00%3A00Z"),
        "{}",
        asked.target
    );

    // Act 2: a course is deleted.
    let mut deleted = catalog_course(
        "reports-101",
        "Reports basics",
        "2026-03-05T09:00:00Z",
        vec![],
    );
    deleted["deleted"] = json!(true);
    sources.put_catalog_course(deleted);
    let changed = app.sync_source("catalog", false).await;

    // Assert 2: the course and its lessons are gone, the other course stays.
    assert_eq!(changed["mode"], "incremental", "{changed}");
    assert_eq!(changed["deleted"], 3, "{changed}");
    assert!(!app.holds("lms-lesson-r1").await && !app.holds("lms-course-reports-101").await);
    assert!(app.holds("lms-lesson-a1").await);
    let found = app.suggested_for("pivot table rows and columns").await;
    assert!(
        !ids_of(&found).contains(&"lms-lesson-r1".to_owned()),
        "{found:?}"
    );
}

#[tokio::test]
async fn a_malformed_catalog_page_fails_the_sync_and_the_next_run_starts_from_the_old_cursor() {
    // Arrange
    let sources = catalog_with_courses().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    app.sync_source("catalog", false).await;
    sources.put_catalog_course(catalog_course(
        "admin-201",
        "Admin essentials",
        "2026-03-06T09:00:00Z",
        vec![catalog_lesson(
            "a2",
            2,
            "Audit log",
            "<p>Review who changed what in the audit log.</p>",
            "2026-03-06T09:00:00Z",
        )],
    ));
    sources.fail_next("/catalog", Fault::MalformedPage);
    sources.clear_requests();

    // Act
    let failed = app.post_sync(&[("source", "catalog")]).await;
    let retried = app.sync_source("catalog", false).await;

    // Assert
    assert_api_error(failed, StatusCode::BAD_GATEWAY, "sync_source_failed").await;
    let requests = sources.requests();
    assert_eq!(
        requests[0].target, requests[1].target,
        "the failed run moved the cursor"
    );
    assert_eq!(requests[1].if_none_match.as_deref(), Some("\"v3\""));
    assert!(retried["upserted"].as_u64().unwrap() >= 1, "{retried}");
    assert!(app.holds("lms-lesson-a2").await);
}

#[tokio::test]
async fn a_source_url_on_a_private_address_is_refused_unless_allowed() {
    // Arrange
    let sources = FakeSources::start(2).await;

    // Act
    let error = build_error_with(|settings| {
        configure_sources(settings, &sources);
        settings.sync.allow_private_addresses = false;
    })
    .await;

    // Assert
    assert!(error.contains("tenants.acme.sources.zendesk"), "{error}");
}

#[tokio::test]
async fn a_catalog_prefix_that_reaches_other_content_or_a_token_with_a_line_break_is_refused() {
    // Arrange
    let sources = FakeSources::start(2).await;
    let with_catalog = |change: fn(&mut deflect::sync::settings::CatalogSourceSettings)| {
        let sources = &sources;
        move |settings: &mut deflect::configuration::Settings| {
            configure_sources(settings, sources);
            let acme = settings.tenants.get_mut("acme").unwrap();
            change(acme.sources.catalog.as_mut().unwrap());
        }
    };

    // Act
    let empty_prefix = build_error_with(with_catalog(|catalog| catalog.id_prefix.clear())).await;
    let zendesk_prefix =
        build_error_with(with_catalog(|catalog| catalog.id_prefix = "zd".to_owned())).await;
    let broken_token = build_error_with(with_catalog(|catalog| {
        catalog.api_token = Some(secrecy::SecretString::from("token\nX-Other: 1".to_owned()));
    }))
    .await;

    // Assert
    for error in [&empty_prefix, &zendesk_prefix] {
        assert!(
            error.contains("sources.catalog.id_prefix must be set"),
            "{error}"
        );
    }
    assert!(
        broken_token.contains("sources.catalog.api_token"),
        "{broken_token}"
    );
    assert!(
        !broken_token.contains("X-Other"),
        "the token leaked: {broken_token}"
    );
}

#[tokio::test]
async fn a_second_sync_of_a_source_being_synced_is_refused() {
    // Arrange: another instance holds the lock.
    let sources = help_center_with_articles().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let lock_key = format!(
        "{}{{t:acme}}:sync:zendesk:lock",
        app.settings.events.key_prefix
    );
    let _: () = redis::cmd("SET")
        .arg(&lock_key)
        .arg("other-instance")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut connection)
        .await
        .unwrap();

    // Act
    let refused = app.post_sync(&[("source", "zendesk")]).await;

    // Assert
    assert_api_error(refused, StatusCode::CONFLICT, "sync_in_progress").await;
    assert!(sources.requests().is_empty(), "{:#?}", sources.requests());
}

#[tokio::test]
async fn a_tenant_without_sources_gets_sync_source_not_configured() {
    // Arrange
    let sources = FakeSources::start(2).await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;

    // Act
    let response = app
        .client
        .post(app.url("/v1/sync"))
        .bearer_auth(&app.globex.admin)
        .send()
        .await
        .unwrap();

    // Assert
    assert_api_error(
        response,
        StatusCode::NOT_FOUND,
        "sync_source_not_configured",
    )
    .await;
}

#[tokio::test]
async fn the_periodic_sync_brings_content_in_without_being_asked() {
    // Arrange
    let sources = help_center_with_articles().await;

    // Act
    let app = spawn_app_with_sources_and(&sources, |settings| {
        settings.sync.enabled = true;
        settings.sync.interval_seconds = 1;
    })
    .await;

    // Assert
    let probe = || async { app.holds("zd-105-en-us").await.then_some(()) };
    app.eventually("the periodic zendesk sync", probe).await;
}

/// Runs the real `deflect sync <arguments> --config <settings_file>` with the bundled
/// config directory and returns its output.
async fn run_deflect_sync(
    arguments: &[&str],
    settings_file: &std::path::Path,
) -> std::process::Output {
    let arguments: Vec<String> = arguments
        .iter()
        .map(|argument| argument.to_string())
        .collect();
    let settings_file = settings_file.to_owned();
    // The fake sources answer on this test's runtime, so the command waits elsewhere.
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_deflect"))
            .arg("sync")
            .args(&arguments)
            .arg("--config")
            .arg(&settings_file)
            .env(
                "DEFLECT_CONFIG_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
            )
            .env_remove("RUST_LOG")
            .output()
    })
    .await
    .unwrap()
    .unwrap()
}

/// Every credential the tests' sources use.
const CREDENTIALS: [&str; 3] = [ZENDESK_TOKEN, FRESHDESK_API_KEY, CATALOG_TOKEN];

#[tokio::test]
async fn the_sync_command_prints_a_summary_and_logs_no_credential_even_at_debug() {
    // Arrange: the CLI with acme's sources, one rate-limited page and debug logs.
    let sources = help_center_with_articles().await;
    sources.put_freshdesk_folder(7, 70, "Getting started");
    sources.rate_limit_next("page=2", 0);
    let directory = tempfile::tempdir().unwrap();
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let settings_file = directory.path().join("sync.toml");
    let index_path = directory.path().join("index");
    std::fs::write(
        &settings_file,
        format!(
            r#"
[index]
path = "{index}"
[events]
key_prefix = "{prefix}"
[log]
filter = "debug"
format = "json"
[sync]
allow_private_addresses = true
initial_backoff_ms = 10
[tenants.acme.sources.zendesk]
base_url = "{base}"
email = "{email}"
api_token = "{zendesk_token}"
locales = ["en-us"]
[tenants.acme.sources.freshdesk]
base_url = "{base}"
api_key = "{freshdesk_key}"
[tenants.acme.sources.catalog]
feed_url = "{base}/catalog"
api_token = "{catalog_token}"
"#,
            index = index_path.display(),
            base = sources.base_url,
            email = crate::fake_sources::ZENDESK_EMAIL,
            zendesk_token = ZENDESK_TOKEN,
            freshdesk_key = FRESHDESK_API_KEY,
            catalog_token = CATALOG_TOKEN,
        ),
    )
    .unwrap();

    // Act
    let output = run_deflect_sync(&["--tenant", "acme"], &settings_file).await;

    // Assert
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("acme zendesk: Full sync, 5 upserted, 0 deleted"),
        "{stdout}"
    );
    assert!(stdout.contains("acme catalog"), "{stdout}");
    assert!(
        stderr.contains("will retry") || stdout.contains("will retry"),
        "the retry was not logged: {stderr}"
    );
    for credential in CREDENTIALS {
        assert!(
            !stdout.contains(credential) && !stderr.contains(credential),
            "{credential} was logged"
        );
    }
    let zendesk_authorization = sources.requests_to("/incremental/articles")[0]
        .authorization
        .clone();
    assert!(zendesk_authorization.is_some());
    delete_redis_keys_under(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_client_disconnects_midway_still_completes_and_releases_its_lock() {
    // Arrange: the second page of the export answers slowly.
    let sources = help_center_with_articles().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    sources.delay_next("page=2", Duration::from_millis(1_500));

    // Act: the client goes away while the run waits for the page.
    app.post_then_reset_the_connection(
        "/v1/sync?source=zendesk",
        &app.acme.admin,
        Duration::from_millis(300),
    )
    .await;

    // Assert: the run went on to its end, and the next one is not refused by its lock.
    let probe = || async { app.holds("zd-105-en-us").await.then_some(()) };
    app.eventually("the run the client left", probe).await;
    let next = app.sync_source("zendesk", false).await;
    assert_eq!(next["mode"], "incremental", "{next}");
}

#[tokio::test]
async fn a_sync_lock_dropped_without_being_released_releases_itself() {
    // Arrange: a run holds the lock.
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let state = SyncState::new(
        &secrecy::SecretString::from("redis://127.0.0.1:6379".to_owned()),
        KeySpace::new(&prefix).unwrap(),
        Duration::from_secs(2),
        Duration::from_secs(600),
    );
    let acme = TenantId::parse("acme").unwrap();
    let held = state.try_lock(&acme, "zendesk").await.unwrap();
    assert!(held.is_some());
    let while_held = state.try_lock(&acme, "zendesk").await.unwrap();

    // Act: the run is cancelled or panics, dropping its lock unreleased.
    drop(held);

    // Assert: the lock is free again long before its 10-minute lease ends.
    let started = Instant::now();
    let retaken = loop {
        if let Some(lock) = state.try_lock(&acme, "zendesk").await.unwrap() {
            break lock;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the dropped lock was not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(while_held.is_none());
    retaken.release().await;
    delete_redis_keys_under(&prefix).await;
}

/// The key of acme's snapshot hash in the content log of `app`.
fn snapshot_key_of_acme(app: &crate::helpers::TestApp) -> String {
    format!("{}{{content}}:docs:acme", app.settings.events.key_prefix)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_removes_an_article_the_log_holds_even_when_this_instance_never_applied_it() {
    // Arrange: the content log holds an article of the source that this instance's index
    // does not have (as on an instance whose follower is behind), and the source no
    // longer lists it.
    let sources = help_center_with_articles().await;
    let app = spawn_app_with_sources_and(&sources, |_| {}).await;
    app.sync_source("zendesk", false).await;
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let snapshot = snapshot_key_of_acme(&app);
    let logged: String = redis::cmd("HGET")
        .arg(&snapshot)
        .arg("zd-105-en-us")
        .query_async(&mut connection)
        .await
        .unwrap();
    let mut not_applied_here: Value = serde_json::from_str(&logged).unwrap();
    not_applied_here["id"] = json!("zd-999-en-us");
    let _: () = redis::cmd("HSET")
        .arg(&snapshot)
        .arg("zd-999-en-us")
        .arg(not_applied_here.to_string())
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!app.holds("zd-999-en-us").await);

    // Act
    let summary = app.sync_source("zendesk", true).await;

    // Assert: deleted from the log too, so no instance (a new one least of all) serves it.
    assert_eq!(summary["deleted"], 1, "{summary}");
    assert_eq!(summary["unchanged"], 5, "{summary}");
    let still_logged: bool = redis::cmd("HEXISTS")
        .arg(&snapshot)
        .arg("zd-999-en-us")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!still_logged, "the log still holds the deleted article");
    let shared_prefix = app.settings.events.key_prefix.clone();
    let started_later = spawn_app_with_sources_and(&sources, move |settings| {
        settings.events.key_prefix = shared_prefix;
    })
    .await;
    assert!(started_later.holds("zd-105-en-us").await);
    assert!(!started_later.holds("zd-999-en-us").await);
}

/// Runs `deflect sync` for acme's Zendesk source with the content log off, into the
/// index at `index_path`, under the Redis key prefix `prefix` (for its cursor).
async fn sync_offline_without_the_content_log(
    sources: &FakeSources,
    prefix: &str,
    index_path: &std::path::Path,
) {
    let directory = tempfile::tempdir().unwrap();
    let settings_file = directory.path().join("sync.toml");
    std::fs::write(
        &settings_file,
        format!(
            r#"
[index]
path = "{index}"
[events]
key_prefix = "{prefix}"
spool_path = "{spool}"
[content_log]
enabled = false
[demo]
load_when_empty = false
[sync]
allow_private_addresses = true
[tenants.acme.sources.zendesk]
base_url = "{base}"
email = "{email}"
api_token = "{token}"
locales = ["en-us"]
"#,
            index = index_path.display(),
            spool = directory.path().join("events.spool").display(),
            base = sources.base_url,
            email = crate::fake_sources::ZENDESK_EMAIL,
            token = ZENDESK_TOKEN,
        ),
    )
    .unwrap();
    let output =
        run_deflect_sync(&["--tenant", "acme", "--source", "zendesk"], &settings_file).await;
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn articles_synced_before_the_content_log_was_on_reach_other_instances_and_the_next_full_sync_changes_nothing(
) {
    // Arrange: articles synced into an index while the log was off; then that index is
    // served with the log on (which seeds the log with its documents), beside a second
    // instance with an empty index.
    let sources = help_center_with_articles().await;
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let directory = tempfile::tempdir().unwrap();
    let index_path = directory.path().join("index");
    sync_offline_without_the_content_log(&sources, &prefix, &index_path).await;
    let (first_prefix, second_prefix) = (prefix.clone(), prefix.clone());
    let loaded_before = spawn_app_with_sources_and(&sources, move |settings| {
        settings.events.key_prefix = first_prefix;
        settings.index.path = index_path;
    })
    .await;
    let other = spawn_app_with_sources_and(&sources, move |settings| {
        settings.events.key_prefix = second_prefix;
    })
    .await;
    assert!(loaded_before.holds("zd-105-en-us").await);

    // Act
    let summary = loaded_before.sync_source("zendesk", true).await;

    // Assert: the log already holds them, so the run changes nothing, and the other
    // instance has them.
    assert_eq!(summary["upserted"], 0, "{summary}");
    assert_eq!(summary["unchanged"], 5, "{summary}");
    let arrived = time_until_suggested(
        &other,
        "how do I export my data as csv",
        "zd-105-en-us",
        true,
    )
    .await;
    assert!(arrived < Duration::from_secs(2), "{arrived:?}");
}

/// Starts deflect on `sources` with `sync.max_page_bytes` at 16 KiB, runs acme's Zendesk
/// sync, asserts that it failed with `502 sync_source_failed`, and returns the app and
/// the error's message.
async fn zendesk_sync_with_a_16_kib_page_limit(
    sources: &FakeSources,
) -> (crate::helpers::TestApp, String) {
    let app = spawn_app_with_sources_and(sources, |settings| {
        settings.sync.max_page_bytes = 16 * 1024;
    })
    .await;
    let response = app.post_sync(&[("source", "zendesk")]).await;
    let error = assert_api_error(response, StatusCode::BAD_GATEWAY, "sync_source_failed").await;
    (app, error.message)
}

#[tokio::test]
async fn a_source_page_larger_than_the_page_limit_fails_the_sync_naming_the_limit() {
    // Arrange: a valid page of about 60 KB, with a 16 KiB limit.
    let sources = FakeSources::start(2).await;
    let long_body = format!("<p>{}</p>", "Export every project as CSV. ".repeat(2_000));
    sources.put_zendesk_article(zendesk_article(
        101,
        "en-us",
        "Export your data",
        &long_body,
        T0,
    ));
    sources.put_zendesk_article(zendesk_article(
        102,
        "en-us",
        "Download invoices",
        "<p>Every invoice is under Billing.</p>",
        T0 + 1,
    ));

    // Act
    let (app, message) = zendesk_sync_with_a_16_kib_page_limit(&sources).await;

    // Assert
    assert!(
        message.contains("16384 bytes (sync.max_page_bytes)"),
        "{message}"
    );
    assert!(!app.holds("zd-102-en-us").await);
}

#[tokio::test]
async fn a_streamed_source_page_without_a_length_is_cut_off_at_the_page_limit() {
    // Arrange: the first export page streams 256 KiB without a Content-Length.
    let sources = help_center_with_articles().await;
    sources.fail_next(
        "/incremental/articles",
        Fault::StreamedPageOfBytes(256 * 1024),
    );

    // Act
    let (app, message) = zendesk_sync_with_a_16_kib_page_limit(&sources).await;

    // Assert
    assert!(message.contains("sync.max_page_bytes"), "{message}");
    assert!(!app.holds("zd-101-en-us").await);
}
