//! The Zendesk Support API calls deflect makes: a public comment on a ticket, a look at
//! a ticket's comments (before a retried comment, see the outbox) and solving a ticket.
//!
//! Authentication is an API token of an agent: HTTP Basic with `{email}/token` as the
//! user and the token as the password.

use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::api::{basic_authorization, ApiAccount, CallError};

/// Comments read when looking for one deflect posted (newest first).
const COMMENTS_LOOKED_AT: u32 = 100;

#[derive(Debug, Clone)]
pub struct ZendeskClient {
    account: ApiAccount,
}

impl ZendeskClient {
    pub fn new(
        http: reqwest::Client,
        base: Url,
        email: &str,
        api_token: &SecretString,
        allow_private_addresses: bool,
    ) -> ZendeskClient {
        let authorization =
            basic_authorization(&format!("{email}/token"), api_token.expose_secret());
        ZendeskClient {
            account: ApiAccount::new(http, base, authorization, allow_private_addresses),
        }
    }

    /// Adds a public comment (HTML) to ticket `ticket_id`:
    /// `PUT /api/v2/tickets/{id}.json` with `{"ticket": {"comment": {...}}}`.
    pub async fn add_public_comment(
        &self,
        ticket_id: &str,
        html_body: &str,
    ) -> Result<(), CallError> {
        let comment = json!({"comment": {"html_body": html_body, "public": true}});
        self.update_ticket(ticket_id, comment).await
    }

    /// Returns whether one of the ticket's latest comments contains `marker`:
    /// `GET /api/v2/tickets/{id}/comments.json`, newest first.
    pub async fn has_comment_containing(
        &self,
        ticket_id: &str,
        marker: &str,
    ) -> Result<bool, CallError> {
        let path = format!(
            "/api/v2/tickets/{ticket_id}/comments.json?sort_order=desc&per_page={COMMENTS_LOOKED_AT}"
        );
        let answer = self.account.call_for_json(Method::GET, &path).await?;
        let comments = answer["comments"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(comments.iter().any(|comment| {
            ["html_body", "body", "plain_body"].iter().any(|field| {
                comment[*field]
                    .as_str()
                    .is_some_and(|text| text.contains(marker))
            })
        }))
    }

    /// Sets the ticket's status to solved: `PUT /api/v2/tickets/{id}.json` with
    /// `{"ticket": {"status": "solved"}}` (Zendesk refuses it, 422, for a ticket without
    /// an assignee).
    pub async fn solve(&self, ticket_id: &str) -> Result<(), CallError> {
        self.update_ticket(ticket_id, json!({"status": "solved"}))
            .await
    }

    /// `PUT /api/v2/tickets/{id}.json` with `{"ticket": update}`.
    async fn update_ticket(
        &self,
        ticket_id: &str,
        update: serde_json::Value,
    ) -> Result<(), CallError> {
        let body = json!({ "ticket": update });
        let path = format!("/api/v2/tickets/{ticket_id}.json");
        self.account.call(Method::PUT, &path, Some(&body)).await?;
        Ok(())
    }
}
