//! A local helpdesk for the outbox to write to, speaking the documented API formats:
//!
//! - Zendesk: `PUT /api/v2/tickets/{id}.json` with `{"ticket": {"comment": {"html_body",
//!   "public"}}}` or `{"ticket": {"status": "solved"}}`, and `GET
//!   /api/v2/tickets/{id}/comments.json`; HTTP Basic `{email}/token:{token}`;
//! - Freshdesk: `POST /api/v2/tickets/{id}/reply` with `{"body"}`, `PUT
//!   /api/v2/tickets/{id}` with `{"status": 4}`, and `GET
//!   /api/v2/tickets/{id}/conversations`; HTTP Basic `{api key}:X`.
//!
//! Like the real ones it answers 401 to wrong credentials and 400 to bodies of another
//! shape; a test can make its next write calls answer 429 with `Retry-After`, 500, or
//! store the comment and still answer 500 (the answer lost on the way back).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::local_server::LocalServer;

/// Which helpdesk the server plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Zendesk,
    Freshdesk,
}

pub const ZENDESK_EMAIL: &str = "deflect-bot@acme.example";
pub const ZENDESK_TOKEN: &str = "zendesk-api-token-of-acme";
pub const FRESHDESK_API_KEY: &str = "freshdesk-api-key-of-acme";

/// What the next write call answers.
#[derive(Debug, Clone, Copy)]
pub enum Scripted {
    TooManyRequests {
        retry_after_seconds: u64,
    },
    ServerError,
    /// Stores the comment, then answers 500.
    StoreThenServerError,
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
    pub at: Instant,
    /// The status the server answered.
    pub status: u16,
}

#[derive(Default)]
struct Ledger {
    requests: Vec<ReceivedRequest>,
    /// Comments or replies stored, by ticket id.
    comments: HashMap<String, Vec<String>>,
    /// The status each ticket was set to.
    statuses: HashMap<String, Value>,
    scripted: VecDeque<Scripted>,
}

struct Shared {
    flavour: Flavour,
    ledger: Mutex<Ledger>,
}

/// A running fake helpdesk.
pub struct FakeHelpdesk {
    pub base_url: String,
    shared: Arc<Shared>,
    _server: LocalServer,
}

impl FakeHelpdesk {
    pub async fn start(flavour: Flavour) -> FakeHelpdesk {
        let shared = Arc::new(Shared {
            flavour,
            ledger: Mutex::new(Ledger::default()),
        });
        let server = LocalServer::start(shared.clone(), answer);
        FakeHelpdesk {
            base_url: server.base_url.clone(),
            shared,
            _server: server,
        }
    }

    /// Makes the next write calls answer as `answers` say, in order.
    pub fn script(&self, answers: &[Scripted]) {
        self.shared
            .ledger
            .lock()
            .unwrap()
            .scripted
            .extend(answers.iter().copied());
    }

    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.ledger.lock().unwrap().requests.clone()
    }

    /// The write calls (PUT and POST) received.
    pub fn writes(&self) -> Vec<ReceivedRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.method != "GET")
            .collect()
    }

    /// The comments (Zendesk) or replies (Freshdesk) stored on `ticket_id`.
    pub fn comments(&self, ticket_id: &str) -> Vec<String> {
        self.shared
            .ledger
            .lock()
            .unwrap()
            .comments
            .get(ticket_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The status `ticket_id` was last set to.
    pub fn status(&self, ticket_id: &str) -> Option<Value> {
        self.shared
            .ledger
            .lock()
            .unwrap()
            .statuses
            .get(ticket_id)
            .cloned()
    }

    /// Waits until `ticket_id` has a comment and returns the first one.
    pub async fn wait_for_comment(&self, ticket_id: &str) -> String {
        self.wait_for("a comment", 10, |server| {
            !server.comments(ticket_id).is_empty()
        })
        .await;
        self.comments(ticket_id).remove(0)
    }

    /// Waits up to `seconds` until `done` holds of the server; fails the test otherwise.
    pub async fn wait_for(&self, what: &str, seconds: u64, done: impl Fn(&FakeHelpdesk) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < deadline {
            if done(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "gave up waiting for {what}; requests: {:#?}",
            self.requests()
        );
    }
}

/// The `Authorization` value the helpdesk expects.
fn expected_authorization(flavour: Flavour) -> String {
    let credentials = match flavour {
        Flavour::Zendesk => format!("{ZENDESK_EMAIL}/token:{ZENDESK_TOKEN}"),
        Flavour::Freshdesk => format!("{FRESHDESK_API_KEY}:X"),
    };
    format!("Basic {}", STANDARD.encode(credentials))
}

/// A route of the fake API.
enum Call {
    Comment { ticket: String, body: String },
    SetStatus { ticket: String, status: Value },
    ListComments { ticket: String },
}

/// Matches a request to the documented API; `Err` is the status of a misfit.
fn route(flavour: Flavour, method: &str, path: &str, body: &Value) -> Result<Call, StatusCode> {
    let rest = path
        .strip_prefix("/api/v2/tickets/")
        .ok_or(StatusCode::NOT_FOUND)?;
    let is_ticket_id = |id: &str| !id.is_empty() && id.bytes().all(|byte| byte.is_ascii_digit());
    match (flavour, method) {
        (Flavour::Zendesk, "PUT") => {
            let ticket = rest.strip_suffix(".json").filter(|id| is_ticket_id(id));
            let ticket = ticket.ok_or(StatusCode::NOT_FOUND)?.to_owned();
            let update = body["ticket"].as_object().ok_or(StatusCode::BAD_REQUEST)?;
            if let Some(comment) = update.get("comment") {
                let html = comment["html_body"].as_str().or(comment["body"].as_str());
                let html = html.ok_or(StatusCode::BAD_REQUEST)?;
                if comment["public"] != json!(true) {
                    return Err(StatusCode::BAD_REQUEST);
                }
                return Ok(Call::Comment {
                    ticket,
                    body: html.to_owned(),
                });
            }
            match update.get("status").and_then(Value::as_str) {
                Some("solved") => Ok(Call::SetStatus {
                    ticket,
                    status: json!("solved"),
                }),
                _ => Err(StatusCode::BAD_REQUEST),
            }
        }
        (Flavour::Zendesk, "GET") => {
            let ticket = rest
                .strip_suffix("/comments.json")
                .filter(|id| is_ticket_id(id));
            Ok(Call::ListComments {
                ticket: ticket.ok_or(StatusCode::NOT_FOUND)?.to_owned(),
            })
        }
        (Flavour::Freshdesk, "POST") => {
            let ticket = rest.strip_suffix("/reply").filter(|id| is_ticket_id(id));
            let ticket = ticket.ok_or(StatusCode::NOT_FOUND)?.to_owned();
            let html = body["body"].as_str().ok_or(StatusCode::BAD_REQUEST)?;
            Ok(Call::Comment {
                ticket,
                body: html.to_owned(),
            })
        }
        (Flavour::Freshdesk, "PUT") => {
            if !is_ticket_id(rest) {
                return Err(StatusCode::NOT_FOUND);
            }
            match body["status"].as_i64() {
                Some(2..=5) => Ok(Call::SetStatus {
                    ticket: rest.to_owned(),
                    status: body["status"].clone(),
                }),
                _ => Err(StatusCode::BAD_REQUEST),
            }
        }
        (Flavour::Freshdesk, "GET") => {
            let ticket = rest
                .strip_suffix("/conversations")
                .filter(|id| is_ticket_id(id));
            Ok(Call::ListComments {
                ticket: ticket.ok_or(StatusCode::NOT_FOUND)?.to_owned(),
            })
        }
        _ => Err(StatusCode::METHOD_NOT_ALLOWED),
    }
}

async fn answer(request: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let method = request.method().as_str().to_owned();
    let path = request.path().to_owned();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let is_json = request
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut ledger = shared.ledger.lock().unwrap();
    let response = respond(
        &mut ledger,
        shared.flavour,
        &method,
        &path,
        &authorization,
        is_json,
        &parsed,
    );
    ledger.requests.push(ReceivedRequest {
        method,
        path,
        authorization,
        body: parsed,
        at: Instant::now(),
        status: response.status().as_u16(),
    });
    response
}

fn respond(
    ledger: &mut Ledger,
    flavour: Flavour,
    method: &str,
    path: &str,
    authorization: &Option<String>,
    is_json: bool,
    body: &Value,
) -> HttpResponse {
    if authorization.as_deref() != Some(expected_authorization(flavour).as_str()) {
        return HttpResponse::Unauthorized().json(json!({"error": "Couldn't authenticate you"}));
    }
    let is_write = method != "GET";
    if is_write && !is_json {
        return HttpResponse::UnsupportedMediaType().finish();
    }
    let call = match route(flavour, method, path, body) {
        Ok(call) => call,
        Err(status) => return HttpResponse::build(status).json(json!({"error": "misfit"})),
    };
    let scripted = if is_write {
        ledger.scripted.pop_front()
    } else {
        None
    };
    match scripted {
        Some(Scripted::TooManyRequests {
            retry_after_seconds,
        }) => {
            return HttpResponse::TooManyRequests()
                .insert_header(("Retry-After", retry_after_seconds.to_string()))
                .finish();
        }
        Some(Scripted::ServerError) => return HttpResponse::InternalServerError().finish(),
        Some(Scripted::StoreThenServerError) | None => {}
    }
    let answer = match call {
        Call::Comment { ticket, body } => {
            ledger
                .comments
                .entry(ticket.clone())
                .or_default()
                .push(body.clone());
            match flavour {
                Flavour::Zendesk => HttpResponse::Ok()
                    .json(json!({"ticket": {"id": ticket.parse::<u64>().unwrap()}})),
                Flavour::Freshdesk => HttpResponse::Created()
                    .json(json!({"body": body, "ticket_id": ticket.parse::<u64>().unwrap()})),
            }
        }
        Call::SetStatus { ticket, status } => {
            ledger.statuses.insert(ticket.clone(), status.clone());
            HttpResponse::Ok().json(json!({"ticket": {"id": ticket, "status": status}}))
        }
        Call::ListComments { ticket } => {
            let stored = ledger.comments.get(&ticket).cloned().unwrap_or_default();
            match flavour {
                Flavour::Zendesk => HttpResponse::Ok().json(json!({
                    "comments": stored.iter().rev().map(|html| json!({"html_body": html, "public": true})).collect::<Vec<_>>(),
                    "next_page": null,
                    "count": stored.len(),
                })),
                Flavour::Freshdesk => HttpResponse::Ok().json(
                    stored.iter().map(|html| json!({"body": html, "incoming": false})).collect::<Vec<_>>(),
                ),
            }
        }
    };
    if matches!(scripted, Some(Scripted::StoreThenServerError)) {
        return HttpResponse::InternalServerError().finish();
    }
    answer
}
