//! Helpdesk webhooks: deliveries verified by each provider's scheme before anything in
//! them is parsed (`signature`), the tickets they carry (`payload`), each tenant's
//! secrets and API accounts (`tenants`), the markers that make a redelivery a duplicate
//! (`deliveries`), the events tickets record (`ticket_events`), the service that
//! answers a new ticket with lessons and queues "while you wait" (`intake`), and the one
//! that records an LMS's completions and enrollments (`lms_intake`).

pub mod deliveries;
pub mod intake;
pub mod lms_intake;
pub mod payload;
pub mod settings;
pub mod signature;
pub mod tenants;
pub mod ticket_events;

use crate::helpdesk::Helpdesk;

/// Who sends a webhook: the route it arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Zendesk,
    Freshdesk,
    /// Any helpdesk that signs with Standard Webhooks.
    Generic,
    /// A learning management system: completions and enrollments, in deflect's generic
    /// shape (Standard Webhooks) or Thinkific's.
    Lms,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Zendesk => "zendesk",
            Provider::Freshdesk => "freshdesk",
            Provider::Generic => "generic",
            Provider::Lms => "lms",
        }
    }

    /// The helpdesk deflect can write back to, if this provider is one.
    pub fn helpdesk(self) -> Option<Helpdesk> {
        match self {
            Provider::Zendesk => Some(Helpdesk::Zendesk),
            Provider::Freshdesk => Some(Helpdesk::Freshdesk),
            Provider::Generic | Provider::Lms => None,
        }
    }
}

/// Counters of the webhook receivers, read by `GET /metrics`.
#[derive(Debug, Default)]
pub struct WebhookMetrics {
    /// Deliveries that passed verification.
    pub verified: std::sync::atomic::AtomicU64,
    /// Deliveries refused with 401 (bad, stale or missing signature, unknown tenant).
    pub unauthorized: std::sync::atomic::AtomicU64,
    /// Verified deliveries whose body was not a ticket webhook (400).
    pub malformed: std::sync::atomic::AtomicU64,
    /// Redeliveries of deliveries already processed.
    pub duplicates: std::sync::atomic::AtomicU64,
}
