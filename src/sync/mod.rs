//! Content sync: keeps a tenant's index in step with its knowledge bases and LMS by
//! itself, pulling from a Zendesk Help Center (`zendesk`), Freshdesk solutions
//! (`freshdesk`) and a generic catalog feed of courses and lessons (`catalog`).
//!
//! A run reads every page first (`pages`, with retries and pacing), decides the changes
//! against what deflect holds from that source (`plan`), applies them in one index
//! commit and only then moves the source's cursor (`state`, in Redis, with a lock so
//! one instance syncs a source at a time). A run that fails anywhere changes nothing.
//! `service` runs one source; `scheduler` runs them periodically inside the service;
//! `deflect sync` and `POST /v1/sync` run them on demand.

pub mod catalog;
pub mod document;
pub mod freshdesk;
pub mod pages;
pub mod plan;
pub mod scheduler;
pub mod service;
pub mod settings;
pub mod state;
pub mod zendesk;

pub use service::{SourceKind, SyncError, SyncService, SyncSummary};
pub use settings::{SourceSettings, SyncSettings};
