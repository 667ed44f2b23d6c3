//! The serving index generation, swappable while requests run: a rebuild switches every
//! reader and the writer to a new generation at once, and a request that already took
//! the current generation keeps it (and its searcher) until it is done.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::index::ContentIndex;
use super::writer::IndexWriterHandle;

/// One open generation: its index, reader and (for a writable one) writer.
pub struct ServedGeneration {
    /// The generation's number in the index directory (0 for a legacy or temporary index).
    pub number: u64,
    pub index: ContentIndex,
    /// `None` for a read-only index (evaluation, benchmarks).
    pub writer: Option<IndexWriterHandle>,
    /// The writer's thread, when this generation owns it (joined by [`retire`]).
    pub writer_thread: Option<std::thread::JoinHandle<()>>,
}

/// How long a retired generation waits for the requests still using it, at most.
const RETIRE_WAIT: Duration = Duration::from_secs(30);

/// Waits (on a blocking thread) until no request uses `generation` any more, then stops
/// its writer and waits for its thread (and the merges it runs) to end, so its directory
/// can be removed with nothing writing into it.
pub async fn retire(generation: Arc<ServedGeneration>) {
    let waited = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut generation = generation;
        loop {
            match Arc::try_unwrap(generation) {
                Ok(owned) => {
                    let ServedGeneration {
                        writer,
                        writer_thread,
                        ..
                    } = owned;
                    drop(writer);
                    if let Some(thread) = writer_thread {
                        let _ = thread.join();
                    }
                    return;
                }
                Err(shared) if started.elapsed() < RETIRE_WAIT => {
                    generation = shared;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(shared) => {
                    tracing::warn!(
                        generation = shared.number,
                        "a retired index generation is still in use; removing it anyway"
                    );
                    return;
                }
            }
        }
    })
    .await;
    if let Err(error) = waited {
        tracing::warn!(%error, "retiring an index generation failed");
    }
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
