//! Deflection events: the sink that queues them, the Redis store that counts them once,
//! the spool that keeps them while Redis is away, and the readers of the counters.
//!
//! Every Redis key name is built in [`keys`]; the attribution rules live in one Lua
//! script (`attribution.lua`) so that dedupe and counting are atomic.

pub mod answers;
pub mod feedback;
pub mod holdout;
pub mod keys;
pub mod redaction;
pub mod sink;
pub mod spool;
mod spool_full_warning;
pub mod stats;
pub mod store;

use std::sync::atomic::{AtomicU64, AtomicUsize};

pub use sink::{EventSink, EventWriterThread, QueuedEvent, SinkError, SinkOptions, WriteOutcome};
pub use store::{RedisEventStore, StoreOptions, TenantEvent};

/// Counters of the event pipeline, read by `GET /metrics`.
#[derive(Debug, Default)]
pub struct EventMetrics {
    /// Events waiting in the in-memory queue.
    pub queue_depth: AtomicUsize,
    /// Bytes in the spool file.
    pub spool_bytes: AtomicU64,
    /// Failed Redis calls of the writer (unreachable or refused).
    pub redis_errors: AtomicU64,
    /// Events counted in Redis (first time seen).
    pub counted: AtomicU64,
    /// Events Redis had already counted (retries, replays).
    pub duplicates: AtomicU64,
    /// Events written to the spool and fsynced.
    pub spooled: AtomicU64,
    /// Fsyncs of the spool: one per batch a caller waits for, and at most one per
    /// `events.spool_sync_interval_ms` for the events of suggest answers.
    pub spool_syncs: AtomicU64,
    /// Spooled events written to Redis on replay.
    pub replayed: AtomicU64,
    /// Events rejected at the edge (invalid).
    pub rejected: AtomicU64,
    /// Events lost: suggest events when the queue or spool was full, spooled events Redis
    /// kept refusing.
    pub dropped: AtomicU64,
}
