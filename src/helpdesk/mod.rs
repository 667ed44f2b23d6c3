//! The helpdesks deflect writes back to, one small reqwest client each (`zendesk`,
//! `freshdesk`), the HTTP plumbing they share (`api`), the guard that keeps them off
//! private addresses (`address_guard`), the backoff of failed calls (`retry`) and the
//! lessons comment they post (`comment`). Content sync (`crate::sync`) reads knowledge
//! bases through the same plumbing.
//!
//! Calls are never made on a request's path: the outbox (`crate::outbox`) makes them,
//! retries them and makes sure a retried comment is not posted twice.

pub mod address_guard;
pub mod api;
pub mod comment;
pub mod freshdesk;
pub mod retry;
pub mod zendesk;

use serde::{Deserialize, Serialize};

pub use api::CallError;
use freshdesk::FreshdeskClient;
use zendesk::ZendeskClient;

/// A helpdesk deflect can write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Helpdesk {
    Zendesk,
    Freshdesk,
}

impl Helpdesk {
    pub fn as_str(self) -> &'static str {
        match self {
            Helpdesk::Zendesk => "zendesk",
            Helpdesk::Freshdesk => "freshdesk",
        }
    }

    pub fn parse(raw: &str) -> Option<Helpdesk> {
        match raw {
            "zendesk" => Some(Helpdesk::Zendesk),
            "freshdesk" => Some(Helpdesk::Freshdesk),
            _ => None,
        }
    }
}

/// One tenant's account at one helpdesk, behind the three operations the outbox needs.
#[derive(Debug, Clone)]
pub enum HelpdeskClient {
    Zendesk(ZendeskClient),
    Freshdesk(FreshdeskClient),
}

impl HelpdeskClient {
    /// Posts `html_body` to the customer on the ticket: a public comment in Zendesk, a
    /// reply in Freshdesk.
    pub async fn post_public_reply(
        &self,
        ticket_id: &str,
        html_body: &str,
    ) -> Result<(), CallError> {
        match self {
            HelpdeskClient::Zendesk(client) => {
                client.add_public_comment(ticket_id, html_body).await
            }
            HelpdeskClient::Freshdesk(client) => client.reply(ticket_id, html_body).await,
        }
    }

    /// Returns whether the ticket already holds a comment or reply containing `marker`.
    pub async fn has_reply_containing(
        &self,
        ticket_id: &str,
        marker: &str,
    ) -> Result<bool, CallError> {
        match self {
            HelpdeskClient::Zendesk(client) => {
                client.has_comment_containing(ticket_id, marker).await
            }
            HelpdeskClient::Freshdesk(client) => {
                client.has_conversation_containing(ticket_id, marker).await
            }
        }
    }

    /// Marks the ticket solved (Zendesk) or resolved (Freshdesk).
    pub async fn close_as_solved(&self, ticket_id: &str) -> Result<(), CallError> {
        match self {
            HelpdeskClient::Zendesk(client) => client.solve(ticket_id).await,
            HelpdeskClient::Freshdesk(client) => client.resolve(ticket_id).await,
        }
    }
}
