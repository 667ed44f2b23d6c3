//! Validated domain types. Requests are parsed into these at the edge, so everything
//! behind a handler works with values that are known to be well formed.
//!
//! Nothing here knows about actix, Redis or tantivy.

mod content;
mod draft;
mod tenant;

pub use content::{ContentDocument, ContentId, ContentKind, DocumentInput, FieldProblem};
pub use draft::{DraftProblem, DraftTicket, SuggestRequestBody};
pub use tenant::TenantId;
