//! Closing the loop: the deflection counters reorder suggestions.

use serde_json::json;

use crate::helpers::{event, spawn_app_with};

#[tokio::test]
async fn a_lesson_that_keeps_deflecting_overtakes_the_one_ranked_above_it() {
    // Arrange: feedback refreshed every second, with a boost large enough to show.
    let app = spawn_app_with(|settings| {
        settings.demo.load_when_empty = true;
        settings.demo.tenant = "acme".to_owned();
        settings.feedback.enabled = true;
        settings.feedback.refresh_seconds = 1;
        settings.feedback.min_shown = 1;
        settings.feedback.max_boost = 10.0;
    })
    .await;
    let draft = json!({"text": "how do i reset my password"});
    let before = app.suggestions(&app.acme.suggest, &draft).await;
    let runner_up = before.ids()[1].to_owned();
    let mut events = Vec::new();
    for session in ["f1", "f2", "f3"] {
        events.push(event(
            "suggestions_shown",
            session,
            json!({"lesson_ids": [runner_up]}),
        ));
        events.push(event(
            "lesson_opened",
            session,
            json!({"lesson_id": runner_up}),
        ));
        events.push(event("resolved", session, json!({})));
    }
    app.record_events(&events).await;

    // Act
    let after = app
        .eventually("the feedback to reorder the suggestions", || async {
            let answer = app.suggestions(&app.acme.suggest, &draft).await;
            (answer.ids().first() == Some(&runner_up.as_str())).then_some(answer)
        })
        .await;

    // Assert: reordered, nothing added or removed.
    let mut ids_before = before.ids();
    let mut ids_after = after.ids();
    ids_before.sort_unstable();
    ids_after.sort_unstable();
    assert_eq!(ids_before, ids_after);
}
