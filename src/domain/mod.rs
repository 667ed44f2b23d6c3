//! Validated domain types. Requests are parsed into these at the edge, so everything
//! behind a handler works with values that are known to be well formed.
//!
//! Nothing here knows about actix, Redis or tantivy.

mod content;
mod customer;
mod draft;
mod event;
mod tenant;

pub(crate) use content::is_locale_tag;
pub use content::{ContentDocument, ContentId, ContentKind, DocumentInput, FieldProblem};
pub use customer::{CustomerId, MAX_CUSTOMER_ID_CHARS};
pub use draft::{DraftProblem, DraftTicket, SuggestRequestBody};
pub use event::{cap_chars, parse_timestamp, DeflectionEvent, EventInput, EventProblem, EventType};
pub use tenant::{PerTenant, TenantId};
