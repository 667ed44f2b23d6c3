//! The serving index generation, swappable while requests run: a rebuild switches every
//! reader and the writer to a new generation at once, and a request that already took
//! the current generation keeps it (and its searcher) until it is done.

use std::sync::{Arc, RwLock};

use super::index::ContentIndex;
use super::writer::IndexWriterHandle;

/// One open generation: its index, reader and (for a writable one) writer.
pub struct ServedGeneration {
    /// The generation's number in the index directory (0 for a legacy or temporary index).
    pub number: u64,
    pub index: ContentIndex,
    /// `None` for a read-only index (evaluation, benchmarks).
    pub writer: Option<IndexWriterHandle>,
}

/// A cheap, cloneable handle on the serving generation.
#[derive(Clone)]
pub struct ServingIndex {
    current: Arc<RwLock<Arc<ServedGeneration>>>,
}

impl ServingIndex {
    pub fn new(generation: ServedGeneration) -> ServingIndex {
        ServingIndex {
            current: Arc::new(RwLock::new(Arc::new(generation))),
        }
    }

    /// Returns the serving generation; callers take it once per request.
    pub fn current(&self) -> Arc<ServedGeneration> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Serves `generation` from now on and returns the one it replaces (whose writer
    /// stops once the last request using it is done).
    pub fn replace(&self, generation: ServedGeneration) -> Arc<ServedGeneration> {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::replace(&mut *current, Arc::new(generation))
    }
}
