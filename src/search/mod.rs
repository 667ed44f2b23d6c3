//! The content index: its schema, the single writer, and the search path from a parsed
//! draft to ranked, highlighted hits.
//!
//! tantivy is used the way its examples recommend: one `IndexWriter` owned by one task,
//! one `IndexReader` per process, one `Searcher` per request.

mod accumulator;
mod common_words;
pub mod confidence;
pub mod document;
mod document_matches;
pub mod generations;
pub mod index;
pub mod log_position;
pub mod query;
pub mod schema;
pub mod searcher;
mod segment_filter;
pub mod serving;
pub mod snippet;
mod statistics;
mod term_list;
mod term_lookups;
mod terms;
mod words;
pub mod writer;

pub use generations::{Generation, IndexLayout};
pub use index::{ContentIndex, IndexError};
pub use log_position::LogPosition;
pub use query::{ContentFilters, ContentQuery};
pub use searcher::{ContentSearcher, SearchHit};
pub use serving::{ServedGeneration, ServingIndex};
pub(crate) use terms::document_key as terms_key;
pub use writer::{IndexWriterHandle, WriteError};
