//! The Freshdesk API calls deflect makes: a reply on a ticket, a look at a ticket's
//! conversations (before a retried reply, see the outbox) and resolving a ticket.
//!
//! Authentication is an agent's API key: HTTP Basic with the key as the user and `X` as
//! the password.

use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::api::{basic_authorization, ApiAccount, CallError};

/// Freshdesk's status code of a resolved ticket.
const STATUS_RESOLVED: u8 = 4;
/// Conversations read when looking for a reply deflect posted (Freshdesk's page maximum).
const CONVERSATIONS_LOOKED_AT: u32 = 100;

#[derive(Debug, Clone)]
pub struct FreshdeskClient {
    account: ApiAccount,
}

impl FreshdeskClient {
    pub fn new(
        http: reqwest::Client,
        base: Url,
        api_key: &SecretString,
        allow_private_addresses: bool,
    ) -> FreshdeskClient {
        let authorization = basic_authorization(api_key.expose_secret(), "X");
        FreshdeskClient {
            account: ApiAccount::new(http, base, authorization, allow_private_addresses),
        }
    }

    /// Replies to ticket `ticket_id` (HTML, sent to the requester):
    /// `POST /api/v2/tickets/{id}/reply` with `{"body": ...}`.
    pub async fn reply(&self, ticket_id: &str, html_body: &str) -> Result<(), CallError> {
        let body = json!({ "body": html_body });
        self.account
            .call(
                Method::POST,
                &format!("/api/v2/tickets/{ticket_id}/reply"),
                Some(&body),
            )
            .await?;
        Ok(())
    }

    /// Returns whether one of the ticket's conversations contains `marker`:
    /// `GET /api/v2/tickets/{id}/conversations`.
    pub async fn has_conversation_containing(
        &self,
        ticket_id: &str,
        marker: &str,
    ) -> Result<bool, CallError> {
        let path =
            format!("/api/v2/tickets/{ticket_id}/conversations?per_page={CONVERSATIONS_LOOKED_AT}");
        let answer = self.account.call_for_json(Method::GET, &path).await?;
        let conversations = answer.as_array().map(Vec::as_slice).unwrap_or_default();
        Ok(conversations.iter().any(|conversation| {
            ["body", "body_text"].iter().any(|field| {
                conversation[*field]
                    .as_str()
                    .is_some_and(|text| text.contains(marker))
            })
        }))
    }

    /// Sets the ticket's status to resolved: `PUT /api/v2/tickets/{id}` with
    /// `{"status": 4}`.
    pub async fn resolve(&self, ticket_id: &str) -> Result<(), CallError> {
        let body = json!({ "status": STATUS_RESOLVED });
        self.account
            .call(
                Method::PUT,
                &format!("/api/v2/tickets/{ticket_id}"),
                Some(&body),
            )
            .await?;
        Ok(())
    }
}
