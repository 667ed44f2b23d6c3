//! Text handling shared by indexing and querying: cleaning customer drafts and article
//! bodies, and turning text into the terms the index stores.
//!
//! Indexing and querying must agree on every step, so both go through this module.

pub mod analysis;
pub mod html;
pub mod language;
pub mod normalizer;
pub mod sections;
mod word_memo;
