//! The widget in a real browser: Debian's headless Chromium (through chromedriver)
//! against the real service and the real Redis, as a customer uses it.
//!
//! 1. Typing a draft letter by letter: suggestions appear after the pause, and the draft
//!    costs a few requests, not one per letter.
//! 2. Opening a suggestion, answering "Yes, this solved it" and leaving the page: one
//!    explicit deflection, credited to that lesson, once.
//! 3. A second session that types, opens nothing and submits: submitted, no deflection.
//! 4. On a helpdesk page of another origin (CORS, German): a customer who opens a lesson
//!    and leaves is deflected through a cross-origin beacon; a vote sent while deflect is
//!    down is retried with its event id and counts once; with the service stopped, the
//!    form still submits normally, and the next page sends the lost submission.
//! 5. The draft rules: three letters (two CJK characters), a repeated draft is not sent
//!    again, Escape closes the suggestions, an abstention shows nothing.
//! 6. A keystroke while a request is in flight aborts it (a proxy holds it back), and
//!    only the newer answer is ever rendered.
//! 7. Two tabs with unsent events while deflect is down share the outbox: the events of a
//!    tab closed meanwhile are delivered by the other, each counted once.
//! 8. A page that names the customer (`data-customer`) is not shown what they completed.
//!
//! Screenshots go to `target/browser-tests/`.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, spawn_app_with_demo_page_and, Suggestions, TestApp};
use crate::stalling_proxy::{HeldRequest, StallingProxy, HOLD};
use crate::training_helpers::{
    configure_training, generic_lms_delivery, noon_days_ago, rfc3339, training_catalog,
};
use crate::webdriver::{
    artifact_path, Browser, Element, ARROW_DOWN, ARROW_UP, BACKSPACE, ENTER, ESCAPE, TAB,
};

/// A draft whose best match in the demo catalog is a lesson (with a duration).
const DRAFT: &str = "The VAT number on my invoice is wrong";

/// Pause between two keystrokes: a brisk typist, well under the widget's 400 ms debounce.
const KEYSTROKE_PAUSE: Duration = Duration::from_millis(60);

/// The widget's debounce, less a little for the timer's and the clock's granularity.
const DEBOUNCE_MS: f64 = 390.0;

/// Another draft with suggestions, other than those of [`DRAFT`].
const OTHER_DRAFT: &str = "How do I export timesheets to Excel";

/// A draft of words no document of the demo catalog has: deflect abstains.
const NOTHING_FITS: &str = "blorptang fizzwick";

/// A pause well over the debounce, after which a widget that should send a request has.
const PAUSE: Duration = Duration::from_millis(1000);

/// Records, in the page, when the customer typed, when the widget asked for suggestions
/// (and how each request ended) and which events it sent, with how each send ended
/// (wrapping `fetch`, as the browser's network log would show them), which answers the
/// widget rendered (the `data-suggestion-id` of its list, each time it is set), and any
/// script error.
const RECORDER: &str = r#"
    window.deflectTest = {inputs: [], suggests: [], events: [], errors: [], renders: []};
    new MutationObserver(function (mutations) {
        mutations.forEach(function (mutation) {
            window.deflectTest.renders.push(mutation.target.getAttribute('data-suggestion-id'));
        });
    }).observe(document.documentElement,
        {subtree: true, attributes: true, attributeFilter: ['data-suggestion-id']});
    document.addEventListener('input', function () {
        window.deflectTest.inputs.push(performance.now());
    }, true);
    window.addEventListener('error', function (event) {
        window.deflectTest.errors.push(String(event.message));
    });
    window.addEventListener('unhandledrejection', function (event) {
        window.deflectTest.errors.push(String(event.reason));
    });
    var originalFetch = window.fetch;
    window.fetch = function (url, options) {
        var body = JSON.parse(options.body);
        if (String(url).indexOf('/v1/suggest') >= 0) {
            var request = {at: performance.now(), body: body};
            window.deflectTest.suggests.push(request);
            return originalFetch.apply(this, arguments).then(function (response) {
                response.clone().json().then(function (answer) {
                    request.suggestionId = answer.suggestion_id;
                }, function () {});
                return response;
            }, function (error) {
                request.error = error.name;
                throw error;
            });
        }
        var send = {
            ids: body.events.map(function (event) { return event.event_id; }),
            types: body.events.map(function (event) { return event.type; })
        };
        window.deflectTest.events.push(send);
        return originalFetch.apply(this, arguments).then(function (response) {
            send.status = response.status;
            return response;
        }, function (error) {
            send.failed = true;
            throw error;
        });
    };
"#;

/// What the widget shows, read from the page (null when it shows nothing).
const SHOWN_SUGGESTIONS: &str = r#"
    var panel = document.querySelector('.deflect-panel');
    if (!panel || panel.hidden) return null;
    return Array.prototype.map.call(document.querySelectorAll('.deflect-item'), function (item) {
        var link = item.querySelector('.deflect-link');
        return {
            id: item.getAttribute('data-lesson-id'),
            title: link.firstChild.textContent,
            href: link.href, target: link.target, rel: link.rel,
            meta: item.querySelector('.deflect-meta').textContent,
            marks: item.querySelectorAll('.deflect-snippet mark').length,
            question: item.querySelector('.deflect-feedback').getAttribute('aria-label')
        };
    });
"#;

#[tokio::test]
async fn a_customer_on_the_demo_page_is_deflected_once_and_a_second_session_submits() {
    // Arrange
    let app = spawn_app_with_demo_page_and(|_| {}).await;
    let browser = Browser::launch().await;
    let (_, description) = open_form(&browser, &app.url("/demo")).await;

    // Act 1: type the draft letter by letter.
    for letter in DRAFT.chars() {
        browser.type_into(&description, &letter.to_string()).await;
        tokio::time::sleep(KEYSTROKE_PAUSE).await;
    }
    let shown = wait_for_suggestions(&browser, DRAFT).await;
    browser
        .screenshot(&artifact_path("demo-suggestions.png"))
        .await;

    // Assert 1: a request only after a pause, a few for the whole draft, and what the
    // widget shows is what the API answers for that draft.
    let recorded = browser.execute("return window.deflectTest;", vec![]).await;
    let inputs: Vec<f64> = serde_json::from_value(recorded["inputs"].clone()).unwrap();
    let suggests = recorded["suggests"].as_array().unwrap().clone();
    assert_eq!(inputs.len(), DRAFT.chars().count());
    assert!(!suggests.is_empty(), "no suggest request was made");
    for request in &suggests {
        let at = request["at"].as_f64().unwrap();
        let last_input_before = inputs
            .iter()
            .copied()
            .filter(|input| *input < at)
            .fold(0.0, f64::max);
        assert!(
            at - last_input_before >= DEBOUNCE_MS,
            "a suggest request went out {:.0} ms after a keystroke",
            at - last_input_before
        );
    }
    let pauses = inputs
        .windows(2)
        .filter(|pair| pair[1] - pair[0] >= DEBOUNCE_MS)
        .count();
    eprintln!(
        "{} keystrokes, {} suggest requests, {pauses} pauses of 400 ms or more while typing",
        inputs.len(),
        suggests.len()
    );
    assert!(
        suggests.len() <= pauses + 1 && suggests.len() <= 10,
        "{} keystrokes cost {} suggest requests ({pauses} pauses while typing)",
        inputs.len(),
        suggests.len()
    );
    let last_request = &suggests.last().unwrap()["body"];
    assert_eq!(last_request["description"], DRAFT);
    assert_eq!(last_request["locale"], "en");
    let session_id = last_request["session_id"].as_str().unwrap().to_owned();
    assert!(suggests
        .iter()
        .all(|request| request["body"]["session_id"] == session_id));
    let answered = app
        .metric("deflect_http_requests_total{route=\"/v1/suggest\",method=\"POST\",status=\"200\"}")
        .await as usize;
    assert!(
        (1..=suggests.len()).contains(&answered),
        "{answered} answers"
    );
    assert!(shown.len() <= 3);
    for item in &shown {
        assert_eq!(item["target"], "_blank");
        assert_eq!(item["rel"], "noopener noreferrer");
        assert!(
            item["href"].as_str().unwrap().starts_with("https://"),
            "{item}"
        );
        assert_eq!(item["question"], "Did this solve your problem?");
    }
    let lesson = shown[0].clone();
    assert_eq!(lesson["meta"], "Lesson · 3 min", "{shown:?}");
    assert!(
        lesson["marks"].as_u64().unwrap() > 0,
        "no highlighted word: {lesson}"
    );
    let announced = browser
        .execute("return document.querySelector('.deflect [role=status][aria-live=polite]').textContent;", vec![])
        .await;
    assert_eq!(
        announced,
        format!("Suggestions that may answer your question: {}", shown.len())
    );

    // Act 2: reach the suggestions with the keyboard, open the first, answer "Yes".
    let lesson_id = lesson["id"].as_str().unwrap().to_owned();
    let page_window = browser.current_window().await;
    browser.type_into(&description, TAB).await;
    assert_eq!(focused_lesson(&browser).await, lesson_id);
    assert_eq!(
        focus_outline(&browser).await,
        "solid",
        "the focused suggestion shows no focus ring"
    );
    browser.press(ARROW_DOWN).await;
    assert_eq!(
        focused_lesson(&browser).await,
        shown[1]["id"].as_str().unwrap()
    );
    browser.press(ARROW_UP).await;
    assert_eq!(focused_lesson(&browser).await, lesson_id);
    browser.press(ENTER).await;
    let lesson_window = browser
        .wait_until("the lesson to open in a new tab", 10, || async {
            let handles = browser.window_handles().await;
            handles.into_iter().find(|handle| *handle != page_window)
        })
        .await;
    browser.switch_to_window(&lesson_window).await;
    let lesson_url = lesson["href"].as_str().unwrap();
    browser
        .wait_until("the new tab to load the lesson", 10, || async {
            (browser.current_url().await == lesson_url).then_some(())
        })
        .await;
    browser.close_window().await;
    browser.switch_to_window(&page_window).await;
    let yes = browser
        .find(&format!("[data-lesson-id=\"{lesson_id}\"] .deflect-yes"))
        .await;
    browser.click(&yes).await;
    let confirmation = browser.find(".deflect-resolved").await;
    assert_eq!(
        browser.text(&confirmation).await,
        "Great, glad that solved it! You do not need to send this request.\nI still want to submit my request"
    );
    assert_eq!(
        browser
            .execute("return document.activeElement.className;", vec![])
            .await,
        "deflect-resolved",
        "the confirmation takes the focus, so screen readers read it"
    );
    browser
        .screenshot(&artifact_path("demo-resolved.png"))
        .await;
    // Leave the page: the widget reports the abandoned ticket with a beacon.
    browser.open(&app.url("/healthz")).await;

    // Assert 2: one explicit deflection, credited to that lesson.
    let total = wait_for_total(&browser, &app, "the beacon's ticket_abandoned", |total| {
        total["abandoned"] == 1
    })
    .await;
    let shown_answers = total["shown"].as_u64().unwrap() as usize;
    assert!((1..=answered).contains(&shown_answers), "{total}");
    for (figure, expected) in [
        ("sessions", 1),
        ("opened", 1),
        ("helpful", 1),
        ("resolved", 1),
        ("abandoned", 1),
        ("submitted", 0),
        ("deflections", 1),
    ] {
        assert_eq!(total[figure], expected, "{figure} in {total}");
    }
    let figures = app.lesson_figures(&lesson_id).await;
    assert_eq!(figures["deflections"], 1, "{figures}");
    assert_eq!(figures["opened"], 1, "{figures}");
    assert_eq!(figures["helpful"], 1, "{figures}");

    // Act 3: a second session types, opens nothing and submits the form.
    let (subject, description) = open_form(&browser, &app.url("/demo")).await;
    browser.type_into(&subject, "Timesheets").await;
    browser.type_into(&description, OTHER_DRAFT).await;
    wait_for_suggestions(&browser, OTHER_DRAFT).await;
    // The beacon's events, left in the outbox, were sent again by this page: duplicates.
    wait_for_empty_outbox(&browser).await;
    browser
        .click(&browser.find("button[type=submit]").await)
        .await;
    browser
        .wait_until("the submitted page", 20, || async {
            let headings = browser.find_all("#submitted").await;
            (!headings.is_empty()).then_some(())
        })
        .await;
    // The widget wrote its session into the form's hidden field (`data-session-field`):
    // the ticket names the session its events were recorded under.
    let ticket_session = browser.text(&browser.find("#ticket-session").await).await;

    // Assert 3: submitted, and still the one deflection of the first session.
    let total = wait_for_total(&browser, &app, "the submitted ticket", |total| {
        total["submitted"] == 1
    })
    .await;
    assert_eq!(total["sessions"], 2, "{total}");
    assert_eq!(total["deflections"], 1, "{total}");
    assert_eq!(total["deflections_reverted"], 0, "{total}");
    assert_eq!(total["abandoned"], 1, "{total}");
    assert_eq!(total["opened"], 1, "{total}");
    assert_eq!(app.lesson_figures(&lesson_id).await["deflections"], 1);
    assert!(app.metric("deflect_events_duplicate_total").await >= 1.0);
    assert_eq!(ticket_session.len(), 32, "{ticket_session:?}");
    let stored = app.everything_stored_in_redis().await;
    assert!(
        stored.contains(&ticket_session),
        "the ticket's session {ticket_session} is not the one its events were stored under"
    );

    // Assert 1, last (the call counts as a session of its own): the widget showed what
    // the API answers for the draft.
    let served = api_answer(&app, DRAFT).await;
    assert_eq!(lesson_ids(&shown), served.ids());
    for (item, result) in shown.iter().zip(&served.results) {
        assert_eq!(item["title"], result.title.as_str());
        assert_eq!(item["href"], result.url.as_deref().unwrap());
    }
}

#[tokio::test]
async fn a_helpdesk_page_of_another_origin_reports_a_deflection_and_submits_while_deflect_is_down()
{
    // Arrange: a helpdesk on its own origin, which acme allows, with a German form.
    let helpdesk = Helpdesk::bind();
    let app = spawn_app_with_demo_page_and(|settings| {
        let acme = settings.tenants.get_mut("acme").unwrap();
        acme.allowed_origins.push(helpdesk.origin.clone());
    })
    .await;
    let helpdesk_origin = helpdesk.origin.clone();
    let tickets = helpdesk.serve(&app);
    let browser = Browser::launch().await;
    let form_url = format!("{helpdesk_origin}/");

    // Act 1: type, open a lesson, leave.
    let (_, description) = open_form(&browser, &form_url).await;
    browser
        .type_into(&description, "Ich habe mein Passwort vergessen")
        .await;
    let shown = wait_for_suggestions(&browser, "Ich habe mein Passwort vergessen").await;
    browser
        .screenshot(&artifact_path("helpdesk-german.png"))
        .await;
    let lesson_id = shown[0]["id"].as_str().unwrap().to_owned();
    let mounted = browser
        .execute(
            "return !!document.querySelector('#suggestions > .deflect');",
            vec![],
        )
        .await;
    assert_eq!(mounted, true, "the widget is not in its data-mount element");
    assert_eq!(shown[0]["question"], "Hat das Ihr Problem gelöst?");
    assert_eq!(shown[0]["meta"], "Artikel");
    let page_window = browser.current_window().await;
    browser
        .click(&browser.find(".deflect-item .deflect-link").await)
        .await;
    browser
        .wait_until("the article to open in a new tab", 10, || async {
            (browser.window_handles().await.len() == 2).then_some(())
        })
        .await;
    browser.switch_to_window(&page_window).await;
    browser.open(&format!("{helpdesk_origin}/elsewhere")).await;

    // Assert 1: the cross-origin beacon reported the abandoned ticket; deflected.
    let total = wait_for_total(&browser, &app, "the beacon's ticket_abandoned", |total| {
        total["abandoned"] == 1
    })
    .await;
    assert_eq!(total["opened"], 1, "{total}");
    assert_eq!(total["deflections"], 1, "{total}");
    assert_eq!(app.lesson_figures(&lesson_id).await["deflections"], 1);

    // Act 2: a new draft. deflect stops while the customer reads the suggestions and
    // answers "No"; the widget keeps the event and sends it again once deflect is back.
    let (subject, description) = open_form(&browser, &form_url).await;
    browser.type_into(&subject, "Rechnung").await;
    browser
        .type_into(
            &description,
            "Die Umsatzsteuer auf meiner Rechnung ist falsch",
        )
        .await;
    let shown =
        wait_for_suggestions(&browser, "Die Umsatzsteuer auf meiner Rechnung ist falsch").await;
    let voted_lesson = shown[0]["id"].as_str().unwrap().to_owned();
    app.stop().await;
    browser
        .click(&browser.find(".deflect-item .deflect-no").await)
        .await;
    wait_for_failed_vote(&browser).await;
    app.start_again().await;

    // Assert 2: the vote counted once, from a retry with the same event id.
    let total = wait_for_total(&browser, &app, "the retried vote", |total| {
        total["not_helpful"] == 1
    })
    .await;
    assert_eq!(total["sessions"], 2, "{total}");
    assert_eq!(app.lesson_figures(&voted_lesson).await["not_helpful"], 1);
    let sends = event_sends(&browser).await;
    let vote_sends: Vec<&Value> = sends
        .iter()
        .filter(|send| send["types"] == json!(["not_helpful"]))
        .collect();
    assert!(vote_sends.len() >= 2, "{sends:?}");
    assert!(
        vote_sends
            .iter()
            .all(|send| send["ids"] == vote_sends[0]["ids"]),
        "{sends:?}"
    );
    assert_eq!(vote_sends.last().unwrap()["status"], 200, "{sends:?}");

    // Act 3: deflect stops again; the customer types on and submits the form.
    app.stop().await;
    let requests_before_the_outage = suggest_requests(&browser).await;
    browser.type_into(&description, ", bitte korrigieren").await;
    browser
        .wait_until("the failed request to hide the suggestions", 20, || async {
            let requests = suggest_requests(&browser).await;
            let shown = browser.execute(SHOWN_SUGGESTIONS, vec![]).await;
            (requests > requests_before_the_outage && shown.is_null()).then_some(())
        })
        .await;
    let errors = browser
        .execute("return window.deflectTest.errors;", vec![])
        .await;
    browser
        .click(&browser.find("button[type=submit]").await)
        .await;

    // Assert 3: the helpdesk got the ticket as typed; the widget raised no error.
    let received = browser
        .wait_until("the helpdesk to receive the ticket", 20, || async {
            tickets.lock().unwrap().first().cloned()
        })
        .await;
    assert!(received.contains("subject=Rechnung"), "{received}");
    assert!(
        received.contains("Die+Umsatzsteuer+auf+meiner+Rechnung+ist+falsch%2C+bitte+korrigieren"),
        "{received}"
    );
    assert_eq!(
        browser.text(&browser.find("h1").await).await,
        "Ticket erhalten"
    );
    assert_eq!(errors, json!([]));

    // Act 4: deflect is back; the next page with the widget sends what the last one could
    // not (the submission's beacon went nowhere).
    app.start_again().await;
    browser.open(&form_url).await;

    // Assert 4: the submission counted, and nothing counted twice.
    let total = wait_for_total(&browser, &app, "the stored ticket_submitted", |total| {
        total["submitted"] == 1
    })
    .await;
    for (figure, expected) in [
        ("sessions", 2),
        ("opened", 1),
        ("not_helpful", 1),
        ("abandoned", 1),
        ("deflections", 1),
    ] {
        assert_eq!(total[figure], expected, "{figure} in {total}");
    }
    wait_for_empty_outbox(&browser).await;
}

#[tokio::test]
async fn the_widget_waits_for_three_letters_or_two_cjk_skips_a_repeated_draft_and_closes_on_escape()
{
    // Arrange
    let app = spawn_app_with_demo_page_and(|_| {}).await;
    let browser = Browser::launch().await;
    let (_, description) = open_form(&browser, &app.url("/demo")).await;

    // Act 1: two letters, a pause longer than the debounce, a third letter.
    browser.type_into(&description, "ab").await;
    tokio::time::sleep(PAUSE).await;
    browser.type_into(&description, "c").await;
    let first = wait_for_request(&browser, 1).await;
    // A letter typed and deleted at once, a pause, then another letter.
    browser
        .type_into(&description, &format!("x{BACKSPACE}"))
        .await;
    tokio::time::sleep(PAUSE).await;
    browser.type_into(&description, "d").await;
    let second = wait_for_request(&browser, 2).await;

    // Assert 1: "ab" and the repeated "abc" cost no request.
    assert_eq!(first["description"], "abc");
    assert_eq!(second["description"], "abcd");

    // Act 2: a new page; one CJK character, a pause, a second one.
    let (_, description) = open_form(&browser, &app.url("/demo")).await;
    browser.type_into(&description, "密").await;
    tokio::time::sleep(PAUSE).await;
    browser.type_into(&description, "码").await;
    let cjk = wait_for_request(&browser, 1).await;

    // Assert 2: two CJK characters are enough, one is not.
    assert_eq!(cjk["description"], "密码");

    // Act 3: suggestions, Tab into them, Escape.
    let (_, description) = open_form(&browser, &app.url("/demo")).await;
    browser.type_into(&description, "reset my password").await;
    wait_for_suggestions(&browser, "reset my password").await;
    browser.type_into(&description, TAB).await;
    browser.press(ESCAPE).await;

    // Assert 3: closed, and the focus is back in the field.
    assert!(browser.execute(SHOWN_SUGGESTIONS, vec![]).await.is_null());
    let focused = browser
        .execute("return document.activeElement.id;", vec![])
        .await;
    assert_eq!(focused, "description");

    // Act 4: a draft deflect has nothing for.
    let (_, description) = open_form(&browser, &app.url("/demo")).await;
    browser.type_into(&description, NOTHING_FITS).await;
    browser
        .wait_until("the answer to arrive", 20, || async {
            let answered = browser
                .execute(
                    "return !!(window.deflectTest.suggests[0] || {}).suggestionId;",
                    vec![],
                )
                .await;
            (answered == true).then_some(())
        })
        .await;

    // Assert 4: deflect abstained, and the widget shows nothing, not even an empty box.
    let box_height = browser
        .execute(
            "return document.querySelector('.deflect').getBoundingClientRect().height;",
            vec![],
        )
        .await;
    assert_eq!(box_height, 0);
    assert!(browser.execute(SHOWN_SUGGESTIONS, vec![]).await.is_null());
    let answer = app
        .suggestions(
            &app.acme.suggest,
            &json!({"description": NOTHING_FITS, "locale": "en"}),
        )
        .await;
    assert!(answer.abstained, "{answer:?}");
}

#[tokio::test]
async fn a_keystroke_aborts_the_request_in_flight_and_only_the_newer_answer_is_rendered() {
    // Arrange: the demo page through a proxy that holds back the first suggest request.
    let app = spawn_app_with_demo_page_and(|_| {}).await;
    let proxy = StallingProxy::start(app.port).await;
    let browser = Browser::launch().await;
    let (_, description) = open_form(&browser, &format!("{}/demo", proxy.origin)).await;

    // Act: a draft whose request the proxy holds, then, while it is held, another draft.
    browser.type_into(&description, OTHER_DRAFT).await;
    browser
        .wait_until("the proxy to hold the first request", 20, || async {
            matches!(proxy.held_request(), Some(HeldRequest::Holding { .. })).then_some(())
        })
        .await;
    let retyped = format!("{}{DRAFT}", BACKSPACE.repeat(OTHER_DRAFT.chars().count()));
    browser.type_into(&description, &retyped).await;
    let shown = wait_for_suggestions(&browser, DRAFT).await;
    let held = browser
        .wait_until("the held request to end", 20, || async {
            proxy
                .held_request()
                .filter(|held| !matches!(held, HeldRequest::Holding { .. }))
        })
        .await;
    if !matches!(held, HeldRequest::AbortedByBrowser { .. }) {
        // Give a late answer the time to arrive, so that the assertions see it.
        tokio::time::sleep(HOLD).await;
    }
    let recorded = browser.execute("return window.deflectTest;", vec![]).await;

    // Assert: the browser dropped the stale request's connection ...
    assert_eq!(
        held,
        HeldRequest::AbortedByBrowser {
            description: OTHER_DRAFT.to_owned()
        }
    );
    let suggests = recorded["suggests"].as_array().unwrap();
    assert_eq!(
        suggests[0]["body"]["description"], OTHER_DRAFT,
        "{recorded}"
    );
    assert_eq!(suggests[0]["error"], "AbortError", "{recorded}");
    // ... and the widget rendered each answer it got, once, in order, and nothing else:
    // the newer draft's last.
    let answered: Vec<&Value> = suggests
        .iter()
        .filter_map(|request| request.get("suggestionId"))
        .collect();
    let renders: Vec<&Value> = recorded["renders"].as_array().unwrap().iter().collect();
    assert_eq!(renders, answered, "{recorded}");
    let last = suggests.last().unwrap();
    assert_eq!(last["body"]["description"], DRAFT, "{recorded}");
    assert_eq!(renders.last(), Some(&&last["suggestionId"]), "{recorded}");
    let newer = api_answer(&app, DRAFT).await;
    let stale = api_answer(&app, OTHER_DRAFT).await;
    assert_eq!(lesson_ids(&shown), newer.ids());
    assert_ne!(
        newer.ids(),
        stale.ids(),
        "the drafts must differ in their answers"
    );
}

#[tokio::test]
async fn two_tabs_share_the_outbox_and_a_closed_tabs_unsent_vote_is_delivered_once() {
    // Arrange: the demo page in two tabs of one browser (one localStorage), each showing
    // suggestions for its own draft.
    let app = spawn_app_with_demo_page_and(|_| {}).await;
    let browser = Browser::launch().await;
    let first_tab = browser.current_window().await;
    let first_lesson = top_suggestion_for(&browser, &app.url("/demo"), DRAFT).await;
    let second_tab = browser.new_tab().await;
    browser.switch_to_window(&second_tab).await;
    let second_lesson = top_suggestion_for(&browser, &app.url("/demo"), OTHER_DRAFT).await;

    // Act: deflect stops; the customer answers "No" in each tab (both sends fail), then
    // closes the first tab, whose vote now lives only in the shared outbox. Then deflect
    // is back.
    app.stop().await;
    for tab in [&first_tab, &second_tab] {
        browser.switch_to_window(tab).await;
        browser
            .click(&browser.find(".deflect-item .deflect-no").await)
            .await;
        wait_for_failed_vote(&browser).await;
    }
    browser.switch_to_window(&first_tab).await;
    browser.close_window().await;
    browser.switch_to_window(&second_tab).await;
    app.start_again().await;

    // Assert: the remaining tab's retry delivers both votes, each counted once, and
    // nothing is left to send.
    let total = wait_for_total(&browser, &app, "both votes", |total| {
        total["not_helpful"].as_i64() >= Some(2)
    })
    .await;
    wait_for_empty_outbox(&browser).await;
    tokio::time::sleep(PAUSE).await;
    let total_later = app.summary_total().await;
    assert_eq!(total["not_helpful"], 2, "{total}");
    assert_eq!(total_later["not_helpful"], 2, "{total_later}");
    assert_ne!(first_lesson, second_lesson);
    for lesson in [&first_lesson, &second_lesson] {
        assert_eq!(
            app.lesson_figures(lesson).await["not_helpful"],
            1,
            "{lesson}"
        );
    }
}

/// Opens the form at `url` in the current tab, types `draft` as its description and
/// returns the lesson id of the first suggestion shown for it.
async fn top_suggestion_for(browser: &Browser, url: &str, draft: &str) -> String {
    let (_, description) = open_form(browser, url).await;
    browser.type_into(&description, draft).await;
    let shown = wait_for_suggestions(browser, draft).await;
    lesson_ids(&shown)[0].to_owned()
}

/// What the API answers for `description` as the widget asks (English, 3 results); the
/// call counts as a session of its own.
async fn api_answer(app: &TestApp, description: &str) -> Suggestions {
    app.suggestions(
        &app.acme.suggest,
        &json!({"description": description, "locale": "en", "limit": 3}),
    )
    .await
}

/// The lesson ids of suggestions read with [`SHOWN_SUGGESTIONS`].
fn lesson_ids(shown: &[Value]) -> Vec<&str> {
    shown
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect()
}

/// Waits until the widget on this page has tried to send a "No" vote (with whatever else
/// the outbox held) and failed.
async fn wait_for_failed_vote(browser: &Browser) {
    browser
        .wait_until("the vote's send to fail", 20, || async {
            let sends = event_sends(browser).await;
            sends
                .iter()
                .any(|send| {
                    let types = send["types"].as_array().cloned().unwrap_or_default();
                    types.contains(&json!("not_helpful")) && send["failed"] == true
                })
                .then_some(())
        })
        .await;
}

/// Whether the widget shows its answer to the description `arguments[0]` (not an answer
/// to an earlier part of the draft, which a later one would replace).
const ANSWER_TO_DRAFT_SHOWN: &str = r#"
    var requests = window.deflectTest.suggests;
    var latest = requests[requests.length - 1];
    var list = document.querySelector('.deflect-list');
    return !!(latest && latest.body.description === arguments[0] && latest.suggestionId
        && list && list.getAttribute('data-suggestion-id') === latest.suggestionId);
"#;

/// Waits until the widget shows its answer to the draft whose description is
/// `description` and returns the suggestions (the page must run [`RECORDER`]).
async fn wait_for_suggestions(browser: &Browser, description: &str) -> Vec<Value> {
    browser
        .wait_until("suggestions for the draft to appear", 20, || async {
            let shown_for_draft = browser
                .execute(ANSWER_TO_DRAFT_SHOWN, vec![json!(description)])
                .await;
            if shown_for_draft != true {
                return None;
            }
            let shown = browser.execute(SHOWN_SUGGESTIONS, vec![]).await;
            shown.as_array().filter(|items| !items.is_empty()).cloned()
        })
        .await
}

/// Waits until the widget has made `count` suggest requests; returns the last one's body.
async fn wait_for_request(browser: &Browser, count: usize) -> Value {
    let requests = browser
        .wait_until(&format!("suggest request {count}"), 20, || async {
            let requests = browser
                .execute("return window.deflectTest.suggests;", vec![])
                .await;
            let requests = requests.as_array().cloned().unwrap_or_default();
            (requests.len() >= count).then_some(requests)
        })
        .await;
    assert_eq!(requests.len(), count, "{requests:?}");
    requests[count - 1]["body"].clone()
}

/// The widget's sends of events on this page: event ids and types, and how each ended.
async fn event_sends(browser: &Browser) -> Vec<Value> {
    let sends = browser
        .execute("return window.deflectTest.events;", vec![])
        .await;
    sends.as_array().cloned().unwrap_or_default()
}

/// Opens the ticket form at `url`, starts [`RECORDER`] in it, and returns its subject and
/// description fields once the page has rendered them.
async fn open_form(browser: &Browser, url: &str) -> (Element, Element) {
    browser.open(url).await;
    browser.execute(RECORDER, vec![]).await;
    let subject = wait_for_element(browser, "#subject").await;
    let description = wait_for_element(browser, "#description").await;
    (subject, description)
}

#[tokio::test]
async fn a_widget_that_names_the_customer_leaves_out_what_they_completed() {
    // Arrange: bo completed the accounts course (its lesson too); a helpdesk page, signed
    // in as bo, names bo to the widget with `data-customer`.
    let helpdesk = Helpdesk::bind();
    let helpdesk_origin = helpdesk.origin.clone();
    let app = spawn_app_with(|settings| {
        configure_training(settings, None);
        let acme = settings.tenants.get_mut("acme").unwrap();
        acme.allowed_origins.push(helpdesk_origin.clone());
    })
    .await;
    app.put_documents(&app.acme.admin, &training_catalog())
        .await;
    let course_done = json!({"type": "course.completed", "customer_id": "bo@acme.example",
        "course_id": "course-accounts", "occurred_at": rfc3339(noon_days_ago(1))});
    app.lms_ok(&generic_lms_delivery(&course_done, "msg_course"))
        .await;
    let _tickets = helpdesk.serve_page(&app, "en", r#"data-customer="bo@acme.example""#);
    let browser = Browser::launch().await;
    let draft = "Reset your password";
    let for_anyone = app
        .suggestions(
            &app.acme.suggest,
            &json!({"description": draft, "locale": "en", "limit": 3}),
        )
        .await;

    // Act
    let (_, description) = open_form(&browser, &format!("{helpdesk_origin}/")).await;
    browser.type_into(&description, draft).await;
    let shown = wait_for_suggestions(&browser, draft).await;

    // Assert: what anyone is shown first, bo is not.
    assert!(for_anyone.ids().contains(&"lesson-reset"), "{for_anyone:?}");
    let shown_ids: Vec<&str> = shown
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    for left_out in ["lesson-reset", "course-accounts"] {
        assert!(!shown_ids.contains(&left_out), "{left_out}: {shown_ids:?}");
    }
}

/// Waits until deflect has confirmed every event in the widget's outbox (the page's
/// `localStorage` holds nothing else).
async fn wait_for_empty_outbox(browser: &Browser) {
    browser
        .wait_until("the outbox to be confirmed", 20, || async {
            let stored = browser
                .execute("return window.localStorage.length;", vec![])
                .await;
            (stored == 0).then_some(())
        })
        .await;
}

/// Waits until the page has rendered an element matching `selector`.
async fn wait_for_element(browser: &Browser, selector: &str) -> Element {
    browser
        .wait_until(&format!("`{selector}` to be rendered"), 20, || async {
            browser.find_all(selector).await.into_iter().next()
        })
        .await
}

/// How many suggest requests the widget has made on this page.
async fn suggest_requests(browser: &Browser) -> u64 {
    let count = browser
        .execute("return window.deflectTest.suggests.length;", vec![])
        .await;
    count.as_u64().unwrap_or_default()
}

/// The lesson id of the suggestion whose link has the focus.
async fn focused_lesson(browser: &Browser) -> String {
    let id = browser
        .execute(
            "var item = document.activeElement.closest('.deflect-item'); \
             return item ? item.getAttribute('data-lesson-id') : document.activeElement.tagName;",
            vec![],
        )
        .await;
    id.as_str().unwrap_or_default().to_owned()
}

/// The outline style of the focused element (`none` when focus is invisible).
async fn focus_outline(browser: &Browser) -> String {
    let style = browser
        .execute(
            "return getComputedStyle(document.activeElement).outlineStyle;",
            vec![],
        )
        .await;
    style.as_str().unwrap_or_default().to_owned()
}

/// Polls acme's summary until `ready` holds for its total (events arrive in the page's
/// own time, beacons after the page is gone, retries after the widget's backoff, which
/// doubles from 1 s: a retry can come 16 s after deflect is back).
async fn wait_for_total(
    browser: &Browser,
    app: &TestApp,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    browser
        .wait_until(what, 40, || async {
            let total = app.summary_total().await;
            ready(&total).then_some(total)
        })
        .await
}

/// A stand-in helpdesk on its own origin: a German ticket form embedding the widget from
/// deflect, and the endpoint the form posts to, which keeps what it receives.
struct Helpdesk {
    listener: TcpListener,
    origin: String,
}

impl Helpdesk {
    fn bind() -> Helpdesk {
        let listener = TcpListener::bind("127.0.0.1:0").expect("failed to bind the helpdesk");
        let port = listener.local_addr().unwrap().port();
        Helpdesk {
            listener,
            origin: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Serves the German form (embedding the widget of `app` with acme's public key);
    /// returns the tickets received, as their raw form bodies.
    fn serve(self, app: &TestApp) -> Arc<Mutex<Vec<String>>> {
        self.serve_page(app, "de", "")
    }

    /// Serves the form in `lang`, with `attributes` added to the widget's script tag.
    fn serve_page(self, app: &TestApp, lang: &str, attributes: &str) -> Arc<Mutex<Vec<String>>> {
        // The widget loads in the head, before the form exists: the page renders its form
        // later, as a framework would, with a rich-text description (contenteditable)
        // copied into a hidden field on submit, as helpdesk editors do.
        let page = format!(
            r##"<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>Anfrage</title>
<script src="{deflect}/widget.js" data-key="{key}" data-subject="#subject"
  data-description="#description" data-mount="#suggestions" {attributes}></script>
</head>
<body>
<div id="app"></div>
<script>
  setTimeout(function () {{
    document.getElementById('app').innerHTML =
      '<form id="ticket-form" action="/tickets" method="post">' +
      '<label for="subject">Betreff</label><input id="subject" name="subject">' +
      '<p id="description-label">Beschreibung</p>' +
      '<div id="description" contenteditable="true" role="textbox" aria-multiline="true"' +
      ' aria-labelledby="description-label"></div>' +
      '<input type="hidden" name="description"><div id="suggestions"></div>' +
      '<button type="submit">Absenden</button></form>';
    document.getElementById('ticket-form').addEventListener('submit', function (event) {{
      event.target.elements.description.value = document.getElementById('description').innerText;
    }});
  }}, 300);
</script>
</body></html>"##,
            deflect = app.address,
            key = app.acme.suggest,
        );
        let tickets = Arc::new(Mutex::new(Vec::new()));
        let received = tickets.clone();
        let server = HttpServer::new(move || {
            let page = page.clone();
            let received = received.clone();
            App::new()
                .route(
                    "/",
                    web::get().to(move || {
                        let page = page.clone();
                        async move {
                            HttpResponse::Ok()
                                .content_type("text/html; charset=utf-8")
                                .body(page)
                        }
                    }),
                )
                .route(
                    "/elsewhere",
                    web::get().to(|| async {
                        HttpResponse::Ok()
                            .content_type("text/html")
                            .body("<h1>Elsewhere</h1>")
                    }),
                )
                .route(
                    "/tickets",
                    web::post().to(move |body: web::Bytes| {
                        received
                            .lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&body).into_owned());
                        async {
                            HttpResponse::Ok()
                                .content_type("text/html; charset=utf-8")
                                .body("<h1>Ticket erhalten</h1>")
                        }
                    }),
                )
        })
        .workers(1)
        .listen(self.listener)
        .expect("failed to serve the helpdesk")
        .run();
        tokio::spawn(server);
        tickets
    }
}
