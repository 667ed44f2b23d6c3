//! The event sink: a bounded in-memory queue in front of one writer thread that stores
//! batches in Redis, or in the spool while Redis cannot take them, and replays the spool
//! in order when Redis is back.
//!
//! The writer is an OS thread, not a task: it does blocking Redis and file I/O (fsync),
//! which must never run on the async executor. Handlers hand it events without blocking
//! ([`EventSink::submit`] awaits a reply, [`EventSink::record`] does not even wait).
//!
//! The writer also redacts the events' free text (reasons, gap drafts) before they go
//! anywhere ([`QueuedEvent::into_storable`]): regular expressions over up to 4 KiB of a
//! draft, or 500 reasons of a batch, are CPU work a request handler should not do.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::error_chain;

use super::redaction::{redact_personal_data, UnredactedDraft};
use super::spool::{Spool, SpoolError};
use super::spool_full_warning::{SpoolFullWarning, SPOOL_FULL_WARNING_INTERVAL};
use super::store::{RedisEventStore, StoreError, TenantEvent};
use super::EventMetrics;

/// An event on its way to the writer, personal data still in it: its `reason` as the
/// customer typed it and, for the events of suggest answers, the draft for the gaps
/// report. Only [`QueuedEvent::into_storable`], on the writer's thread, turns it into
/// what is spooled and stored.
#[derive(Debug)]
pub struct QueuedEvent {
    event: TenantEvent,
    gap_draft: Option<UnredactedDraft>,
}

/// An event clients or deflect itself made, with no draft to redact.
impl From<TenantEvent> for QueuedEvent {
    fn from(event: TenantEvent) -> QueuedEvent {
        QueuedEvent::new(event)
    }
}

impl QueuedEvent {
    /// An event whose draft field stays empty (events clients send).
    pub fn new(event: TenantEvent) -> QueuedEvent {
        QueuedEvent {
            event,
            gap_draft: None,
        }
    }

    /// An event whose `draft` the writer fills with `gap_draft`, redacted.
    pub fn with_gap_draft(event: TenantEvent, gap_draft: UnredactedDraft) -> QueuedEvent {
        QueuedEvent {
            event,
            gap_draft: Some(gap_draft),
        }
    }

    /// The event as queued, before redaction.
    pub fn event(&self) -> &TenantEvent {
        &self.event
    }

    /// Returns the event as it may be spooled and stored: e-mail addresses, phone and
    /// card numbers taken out of its reason, and its gap draft normalized and redacted.
    pub fn into_storable(self) -> TenantEvent {
        let mut storable = self.event;
        storable.event.reason = storable.event.reason.as_deref().map(redact_personal_data);
        if let Some(gap_draft) = self.gap_draft {
            storable.event.draft = gap_draft.redact();
        }
        storable
    }
}

/// How one submitted batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written to Redis: per event, counted (`true`) or a duplicate (`false`).
    Stored(Vec<bool>),
    /// Redis could not take them; they are fsynced in the spool and will be replayed
    /// (and deduplicated then).
    Spooled,
    /// Redis is away and the spool is full: nothing was kept.
    SpoolFull,
    /// Redis refused the batch or the spool failed (the log has the cause).
    Failed,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SinkError {
    #[error("the event queue is full")]
    QueueFull,
    #[error("the event writer is not running")]
    Stopped,
    /// The writer did not answer in time; the events may still be stored.
    #[error("the event writer did not answer in time")]
    Busy,
}

/// How long a request waits for the writer at most.
pub const MAX_ANSWER_WAIT: Duration = Duration::from_secs(30);

/// Settings of the writer thread.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Events the in-memory queue holds at most.
    pub queue_capacity: usize,
    /// Events taken from the queue and written (and answered) together at most.
    pub max_batch_events: usize,
    /// How long to wait before trying Redis again after it failed.
    pub retry_interval: Duration,
    /// How long spooled events nobody waits for (those of suggest answers) may stay
    /// written but not fsynced; events a caller waits for are fsynced before the answer.
    pub unawaited_sync_interval: Duration,
    /// How long the writer waits after a batch that did not fill up before it takes the
    /// next one, so that under load events gather into batches instead of waking the
    /// writer (and stealing a core from searches) once per suggestion.
    pub batch_linger: Duration,
}

struct WriteRequest {
    events: Vec<QueuedEvent>,
    reply: Option<oneshot::Sender<WriteOutcome>>,
}

/// What the writer thread is sent.
enum WriterMessage {
    Write(WriteRequest),
    /// Ends the writer once it has written what was sent before (see
    /// [`EventWriterThread::stop`]).
    Stop,
}

/// The handle handlers use; cheap to clone.
#[derive(Clone)]
pub struct EventSink {
    sender: SyncSender<WriterMessage>,
    capacity: usize,
    metrics: Arc<EventMetrics>,
}

impl EventSink {
    /// Starts the writer thread with `store` and `spool` (which may hold records of an
    /// earlier run: they are replayed first).
    pub fn start(
        store: RedisEventStore,
        spool: Spool,
        options: SinkOptions,
        metrics: Arc<EventMetrics>,
    ) -> std::io::Result<(EventSink, EventWriterThread)> {
        // The channel counts requests; the event bound is kept by `metrics.queue_depth`.
        let (sender, receiver) = mpsc::sync_channel(options.queue_capacity.max(1));
        metrics
            .spool_bytes
            .store(spool.file_bytes(), Ordering::Relaxed);
        let writer = Writer {
            store,
            spool,
            options: options.clone(),
            metrics: metrics.clone(),
            next_replay_attempt: Instant::now(),
            refusals_of_pending: 0,
            redis_was_down: false,
            unsynced_events: 0,
            sync_due: None,
            spool_full_warning: SpoolFullWarning::new(SPOOL_FULL_WARNING_INTERVAL),
        };
        let thread = std::thread::Builder::new()
            .name("event-writer".to_owned())
            .spawn(move || writer.run(receiver))?;
        Ok((
            EventSink {
                sender: sender.clone(),
                capacity: options.queue_capacity,
                metrics,
            },
            EventWriterThread { sender, thread },
        ))
    }

    /// Queues `events` and waits for the writer's answer, at most [`MAX_ANSWER_WAIT`]:
    /// Redis calls and spool writes have their own timeouts, this bounds the rest.
    pub async fn submit(&self, events: Vec<TenantEvent>) -> Result<WriteOutcome, SinkError> {
        if events.is_empty() {
            return Ok(WriteOutcome::Stored(Vec::new()));
        }
        let (reply, answer) = oneshot::channel();
        let queued = events.into_iter().map(QueuedEvent::new).collect();
        self.enqueue(queued, Some(reply))?;
        match tokio::time::timeout(MAX_ANSWER_WAIT, answer).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(SinkError::Stopped),
            Err(_) => Err(SinkError::Busy),
        }
    }

    /// Queues `event` without waiting. When the queue is full the event is dropped and
    /// counted (`deflect_events_dropped_total`): a suggestion never waits for Redis.
    pub fn record(&self, event: impl Into<QueuedEvent>) {
        if let Err(error) = self.enqueue(vec![event.into()], None) {
            let dropped = self.metrics.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Logged at 1, 2, 4, 8 ... so a long outage does not flood the log.
            if dropped.is_power_of_two() {
                tracing::warn!(error = %error, dropped_total = dropped, "dropped a suggest event");
            }
        }
    }

    fn enqueue(
        &self,
        events: Vec<QueuedEvent>,
        reply: Option<oneshot::Sender<WriteOutcome>>,
    ) -> Result<(), SinkError> {
        let count = events.len();
        let queued = self.metrics.queue_depth.fetch_add(count, Ordering::Relaxed);
        if queued + count > self.capacity {
            self.metrics.queue_depth.fetch_sub(count, Ordering::Relaxed);
            return Err(SinkError::QueueFull);
        }
        match self
            .sender
            .try_send(WriterMessage::Write(WriteRequest { events, reply }))
        {
            Ok(()) => Ok(()),
            Err(error) => {
                self.metrics.queue_depth.fetch_sub(count, Ordering::Relaxed);
                match error {
                    TrySendError::Full(_) => Err(SinkError::QueueFull),
                    TrySendError::Disconnected(_) => Err(SinkError::Stopped),
                }
            }
        }
    }
}

/// The writer thread, kept by whoever shuts the process down.
///
/// The writer also ends when every [`EventSink`] is gone, but at shutdown background tasks
/// still hold sinks until the runtime ends, and a process that exits before its writer
/// took the queue loses the events in it: those of the last suggestions, which nobody
/// waits for, and, while the writer lingers (`events.batch_linger_ms`), those of the last
/// milliseconds.
pub struct EventWriterThread {
    sender: SyncSender<WriterMessage>,
    thread: std::thread::JoinHandle<()>,
}

impl EventWriterThread {
    /// Asks the writer to write what was queued before this call (to Redis, or to the
    /// spool, fsynced), then end, and waits for it at most `timeout`. Returns whether it
    /// ended in time. Blocking: call it from a blocking thread.
    pub fn stop(self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        // Blocks while the queue is full, which the writer is emptying; fails only when
        // the writer has ended already.
        let _ = self.sender.send(WriterMessage::Stop);
        while !self.thread.is_finished() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.thread.join().is_ok()
    }
}

struct Writer {
    store: RedisEventStore,
    spool: Spool,
    options: SinkOptions,
    metrics: Arc<EventMetrics>,
    next_replay_attempt: Instant,
    /// Times Redis refused the spool's next records; after a few they are skipped so a
    /// poisoned record cannot stop the replay forever.
    refusals_of_pending: u32,
    redis_was_down: bool,
    /// Events nobody waits for, written to the spool since its last fsync; they are
    /// counted as spooled once the fsync succeeds, as dropped when it fails.
    unsynced_events: u64,
    /// When the spool must be fsynced at the latest, while it holds unsynced events.
    sync_due: Option<Instant>,
    spool_full_warning: SpoolFullWarning,
}

const MAX_REFUSALS_OF_PENDING: u32 = 3;
const IDLE_WAKEUP: Duration = Duration::from_secs(1);

impl Writer {
    fn run(mut self, receiver: Receiver<WriterMessage>) {
        loop {
            let mut wait = if self.spool.pending_bytes() > 0 {
                self.next_replay_attempt
                    .saturating_duration_since(Instant::now())
                    .min(IDLE_WAKEUP)
            } else {
                IDLE_WAKEUP
            };
            if let Some(sync_due) = self.sync_due {
                wait = wait.min(sync_due.saturating_duration_since(Instant::now()));
            }
            let mut batch = Vec::new();
            let mut events_in_batch = 0;
            let mut stopping = false;
            match receiver.recv_timeout(wait) {
                Ok(WriterMessage::Write(request)) => {
                    events_in_batch = request.events.len();
                    batch.push(request);
                    while events_in_batch < self.options.max_batch_events {
                        match receiver.try_recv() {
                            Ok(WriterMessage::Write(request)) => {
                                events_in_batch += request.events.len();
                                batch.push(request);
                            }
                            Ok(WriterMessage::Stop) => {
                                stopping = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                }
                Ok(WriterMessage::Stop) | Err(RecvTimeoutError::Disconnected) => stopping = true,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self.spool.pending_bytes() > 0 && Instant::now() >= self.next_replay_attempt {
                self.replay_some();
            }
            // Only a batch that was taken can be followed by more, and not by a stopping
            // writer; a full one leaves a backlog to take at once.
            let lingers =
                !stopping && !batch.is_empty() && events_in_batch < self.options.max_batch_events;
            if !batch.is_empty() {
                self.write(batch);
            }
            if stopping || self.sync_due.is_some_and(|due| Instant::now() >= due) {
                self.sync_spool();
            }
            if lingers {
                std::thread::sleep(self.options.batch_linger);
            }
            if stopping {
                tracing::info!(
                    pending_spool_bytes = self.spool.pending_bytes(),
                    "event writer stopped"
                );
                return;
            }
        }
    }

    fn write(&mut self, batch: Vec<WriteRequest>) {
        let mut events = Vec::new();
        let mut replies = Vec::with_capacity(batch.len());
        for request in batch {
            self.metrics
                .queue_depth
                .fetch_sub(request.events.len(), Ordering::Relaxed);
            let range = events.len()..events.len() + request.events.len();
            // Redacted here, before the events can reach the spool or Redis.
            events.extend(request.events.into_iter().map(QueuedEvent::into_storable));
            replies.push((range, request.reply));
        }
        if self.spool.pending_bytes() > 0 {
            // Older events wait in the spool: these go behind them to keep the order.
            self.spool_and_reply(&events, replies);
            return;
        }
        match self.store.write(&events) {
            Ok(counted) => {
                self.note_redis_up();
                let fresh = counted.iter().filter(|fresh| **fresh).count() as u64;
                self.metrics.counted.fetch_add(fresh, Ordering::Relaxed);
                self.metrics
                    .duplicates
                    .fetch_add(counted.len() as u64 - fresh, Ordering::Relaxed);
                for (range, reply) in replies {
                    if let Some(reply) = reply {
                        let _ = reply.send(WriteOutcome::Stored(counted[range].to_vec()));
                    }
                }
            }
            Err(error) if error.is_unreachable() => {
                self.note_redis_down(&error);
                self.spool_and_reply(&events, replies);
            }
            Err(error) => {
                self.metrics.redis_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %error_chain(&error), events = events.len(), "redis refused a batch of events");
                for (_, reply) in replies {
                    if let Some(reply) = reply {
                        let _ = reply.send(WriteOutcome::Failed);
                    }
                }
            }
        }
    }

    /// Spools each request's events on its own (a small request may still fit when a
    /// large one does not), then fsyncs once and answers when a caller waits.
    ///
    /// Events nobody waits for (one per suggest answer) are fsynced within
    /// `unawaited_sync_interval` instead: under load while Redis is down, an fsync per
    /// batch cost 14% of the server's throughput. Written, they already survive a crash
    /// of the process (the page cache has them), as they would not have in the queue;
    /// only a crash of the machine within the interval can lose them.
    fn spool_and_reply(
        &mut self,
        events: &[TenantEvent],
        replies: Vec<(
            std::ops::Range<usize>,
            Option<oneshot::Sender<WriteOutcome>>,
        )>,
    ) {
        let mut outcomes = Vec::with_capacity(replies.len());
        for (range, reply) in &replies {
            let outcome = match self.spool.write(&events[range.clone()]) {
                Ok(()) => WriteOutcome::Spooled,
                Err(SpoolError::Full { max_bytes }) => {
                    let due = self
                        .spool_full_warning
                        .not_kept(range.len() as u64, Instant::now());
                    if let Some(events_since_last_warning) = due {
                        tracing::warn!(
                            max_bytes,
                            events_since_last_warning,
                            "event spool is full; events are not kept until redis is back"
                        );
                    }
                    WriteOutcome::SpoolFull
                }
                Err(error) => {
                    tracing::error!(error = %error_chain(&error), path = %self.spool.path().display(), "failed to write the event spool");
                    WriteOutcome::Failed
                }
            };
            match (&outcome, reply) {
                (WriteOutcome::Spooled, None) => self.unsynced_events += range.len() as u64,
                (_, None) => {
                    self.metrics
                        .dropped
                        .fetch_add(range.len() as u64, Ordering::Relaxed);
                }
                (_, Some(_)) => {}
            }
            outcomes.push(outcome);
        }
        let awaited = replies.iter().any(|(_, reply)| reply.is_some());
        let synced = if awaited || self.options.unawaited_sync_interval.is_zero() {
            self.sync_spool()
        } else {
            self.sync_due
                .get_or_insert_with(|| Instant::now() + self.options.unawaited_sync_interval);
            true
        };
        for ((range, reply), outcome) in replies.into_iter().zip(outcomes) {
            let Some(reply) = reply else { continue };
            let outcome = match outcome {
                WriteOutcome::Spooled if !synced => WriteOutcome::Failed,
                WriteOutcome::Spooled => {
                    self.metrics
                        .spooled
                        .fetch_add(range.len() as u64, Ordering::Relaxed);
                    WriteOutcome::Spooled
                }
                other => other,
            };
            let _ = reply.send(outcome);
        }
        self.metrics
            .spool_bytes
            .store(self.spool.file_bytes(), Ordering::Relaxed);
    }

    /// Fsyncs the spool and settles the unsynced events nobody waits for: spooled when
    /// the fsync succeeds, dropped when it fails (the spool then cuts them off). Returns
    /// whether it succeeded.
    fn sync_spool(&mut self) -> bool {
        self.sync_due = None;
        let unsynced_events = std::mem::take(&mut self.unsynced_events);
        if self.spool.has_unsynced() {
            self.metrics.spool_syncs.fetch_add(1, Ordering::Relaxed);
        }
        match self.spool.sync() {
            Ok(()) => {
                self.metrics
                    .spooled
                    .fetch_add(unsynced_events, Ordering::Relaxed);
                true
            }
            Err(error) => {
                tracing::error!(error = %error_chain(&error), path = %self.spool.path().display(), unsynced_events, "failed to write the event spool");
                self.metrics
                    .dropped
                    .fetch_add(unsynced_events, Ordering::Relaxed);
                self.metrics
                    .spool_bytes
                    .store(self.spool.file_bytes(), Ordering::Relaxed);
                false
            }
        }
    }

    /// Replays spooled records in order until the spool is empty, Redis fails, or a
    /// time slice is used up (so new requests are not kept waiting long).
    fn replay_some(&mut self) {
        let started = Instant::now();
        while self.spool.pending_bytes() > 0 && started.elapsed() < Duration::from_millis(200) {
            let (events, next_offset) = match self.spool.read_pending(self.options.max_batch_events)
            {
                Ok(read) => read,
                Err(error) => {
                    tracing::error!(error = %error_chain(&error), "failed to read the event spool");
                    self.next_replay_attempt = Instant::now() + self.options.retry_interval;
                    return;
                }
            };
            let stored = self.store.write(&events);
            match stored {
                Ok(counted) => {
                    self.note_redis_up();
                    self.refusals_of_pending = 0;
                    let fresh = counted.iter().filter(|fresh| **fresh).count() as u64;
                    self.metrics.counted.fetch_add(fresh, Ordering::Relaxed);
                    self.metrics
                        .duplicates
                        .fetch_add(counted.len() as u64 - fresh, Ordering::Relaxed);
                    self.metrics
                        .replayed
                        .fetch_add(counted.len() as u64, Ordering::Relaxed);
                }
                Err(error) if error.is_unreachable() => {
                    self.note_redis_down(&error);
                    return;
                }
                Err(error) => {
                    self.metrics.redis_errors.fetch_add(1, Ordering::Relaxed);
                    self.refusals_of_pending += 1;
                    if self.refusals_of_pending < MAX_REFUSALS_OF_PENDING {
                        tracing::error!(error = %error_chain(&error), "redis refused spooled events; will retry");
                        self.next_replay_attempt = Instant::now() + self.options.retry_interval;
                        return;
                    }
                    tracing::error!(error = %error_chain(&error), events = events.len(), "redis keeps refusing spooled events; skipping them");
                    self.metrics
                        .dropped
                        .fetch_add(events.len() as u64, Ordering::Relaxed);
                    self.refusals_of_pending = 0;
                }
            }
            if let Err(error) = self.spool.mark_replayed(next_offset) {
                tracing::error!(error = %error_chain(&error), "failed to truncate the event spool");
            }
            self.metrics
                .spool_bytes
                .store(self.spool.file_bytes(), Ordering::Relaxed);
        }
        if self.spool.pending_bytes() == 0 {
            tracing::info!("event spool replayed into redis");
        }
    }

    fn note_redis_down(&mut self, error: &StoreError) {
        self.metrics.redis_errors.fetch_add(1, Ordering::Relaxed);
        self.next_replay_attempt = Instant::now() + self.options.retry_interval;
        if !self.redis_was_down {
            tracing::warn!(error = %error_chain(error), "redis is unreachable; spooling events");
            self.redis_was_down = true;
        }
    }

    fn note_redis_up(&mut self) {
        if self.redis_was_down {
            tracing::info!("redis is reachable again");
            self.redis_was_down = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeflectionEvent, TenantId};
    use crate::events::keys::KeySpace;
    use crate::events::store::{numbered_event, StoreOptions};
    use secrecy::SecretString;
    use std::path::Path;

    fn event_with_reason(reason: &str) -> TenantEvent {
        let raw = serde_json::json!({"event_id": "e1", "type": "not_helpful",
            "session_id": "s1", "lesson_id": "l1", "reason": reason});
        TenantEvent {
            tenant: TenantId::parse("acme").unwrap(),
            event: DeflectionEvent::parse(raw, 1_790_000_000_000, 6).unwrap(),
        }
    }

    #[test]
    fn the_writer_redacts_reasons_and_gap_drafts_that_handlers_queued_raw() {
        let queued = QueuedEvent::with_gap_draft(
            event_with_reason("write to jane@example.com"),
            UnredactedDraft::new("<p>Card 4111 1111 1111 1111 declined</p>".to_owned()),
        );
        assert_eq!(queued.event().event.draft, None);

        let storable = queued.into_storable();

        assert_eq!(storable.event.reason.as_deref(), Some("write to [email]"));
        assert_eq!(
            storable.event.draft.as_deref(),
            Some("card [card] declined")
        );
    }

    /// A writer whose Redis is a closed port, so every event goes to the spool in
    /// `directory` (the first failure puts the next attempt an hour away).
    fn writer_with_redis_down(
        directory: &Path,
        unawaited_sync_interval: Duration,
        batch_linger: Duration,
    ) -> (EventSink, EventWriterThread, Arc<EventMetrics>) {
        let store = RedisEventStore::new(
            &SecretString::from("redis://127.0.0.1:9/"),
            KeySpace::new("sink-test:").unwrap(),
            StoreOptions {
                stream_max_len: 1000,
                idempotency_ttl_seconds: 3600,
                session_ttl_seconds: 3600,
                events_per_script_call: 25,
                connect_timeout: Duration::from_millis(500),
                command_timeout: Duration::from_millis(500),
            },
        )
        .unwrap();
        let (spool, _) = Spool::open(&directory.join("events.spool"), 1 << 20).unwrap();
        let metrics = Arc::new(EventMetrics::default());
        let options = SinkOptions {
            queue_capacity: 100,
            max_batch_events: 100,
            retry_interval: Duration::from_secs(3600),
            unawaited_sync_interval,
            batch_linger,
        };
        let (sink, thread) = EventSink::start(store, spool, options, metrics.clone()).unwrap();
        (sink, thread, metrics)
    }

    /// Waits (at most 10 s) until `done` holds.
    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Records `event` and waits until the writer has taken it, so that the next event
    /// is a batch of its own.
    fn record_alone(sink: &EventSink, metrics: &EventMetrics, event: TenantEvent) {
        sink.record(event);
        wait_until("the writer to take the event", || {
            metrics.queue_depth.load(Ordering::Relaxed) == 0
        });
    }

    #[tokio::test]
    async fn suggest_events_wait_for_the_fsync_of_the_next_awaited_batch() {
        let directory = tempfile::tempdir().unwrap();
        let (sink, _thread, metrics) =
            writer_with_redis_down(directory.path(), Duration::from_secs(3600), Duration::ZERO);

        for number in 1..=3 {
            record_alone(&sink, &metrics, numbered_event(number));
        }
        let outcome = sink.submit(vec![numbered_event(4)]).await.unwrap();

        assert_eq!(outcome, WriteOutcome::Spooled);
        assert_eq!(metrics.spool_syncs.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.spooled.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn suggest_events_alone_are_fsynced_within_the_interval() {
        let directory = tempfile::tempdir().unwrap();
        let (sink, _thread, metrics) =
            writer_with_redis_down(directory.path(), Duration::from_millis(20), Duration::ZERO);

        for number in 1..=3 {
            record_alone(&sink, &metrics, numbered_event(number));
        }

        wait_until("the events to be fsynced", || {
            metrics.spooled.load(Ordering::Relaxed) == 3
        });
        assert!(metrics.spool_syncs.load(Ordering::Relaxed) >= 1);
    }

    #[test]
    fn events_recorded_while_the_writer_lingers_are_written_in_one_batch() {
        let directory = tempfile::tempdir().unwrap();
        // Every batch is fsynced, so fsyncs count batches.
        let (sink, _thread, metrics) =
            writer_with_redis_down(directory.path(), Duration::ZERO, Duration::from_secs(1));
        record_alone(&sink, &metrics, numbered_event(1));

        // Spaced out: a writer that did not linger would take each in a batch of its own.
        for number in 2..=11 {
            std::thread::sleep(Duration::from_millis(5));
            sink.record(numbered_event(number));
        }

        wait_until("the events to be spooled", || {
            metrics.spooled.load(Ordering::Relaxed) == 11
        });
        assert_eq!(metrics.spool_syncs.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_stopping_writer_fsyncs_the_suggest_events_it_wrote() {
        let directory = tempfile::tempdir().unwrap();
        let (sink, thread, metrics) =
            writer_with_redis_down(directory.path(), Duration::from_secs(3600), Duration::ZERO);
        for number in 1..=2 {
            record_alone(&sink, &metrics, numbered_event(number));
        }

        drop(sink);
        let ended = thread.stop(Duration::from_secs(10));

        assert!(ended);
        assert_eq!(metrics.spool_syncs.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.spooled.load(Ordering::Relaxed), 2);
        let (_, recovery) = Spool::open(&directory.path().join("events.spool"), 1 << 20).unwrap();
        assert_eq!(recovery.records, 2);
    }

    #[test]
    fn a_writer_stopped_while_sinks_live_on_writes_what_was_queued_before_it_ends() {
        // The writer lingers a second after each batch: events recorded meanwhile wait in
        // the queue, as those of the last suggestions do when a server shuts down.
        let directory = tempfile::tempdir().unwrap();
        let (sink, thread, metrics) = writer_with_redis_down(
            directory.path(),
            Duration::from_secs(3600),
            Duration::from_secs(1),
        );
        record_alone(&sink, &metrics, numbered_event(1));
        for number in 2..=5 {
            sink.record(numbered_event(number));
        }

        let ended = thread.stop(Duration::from_secs(10));

        assert!(ended, "the writer ended although a sink is still alive");
        assert_eq!(metrics.spooled.load(Ordering::Relaxed), 5);
        let (_, recovery) = Spool::open(&directory.path().join("events.spool"), 1 << 20).unwrap();
        assert_eq!(recovery.records, 5);
        drop(sink);
    }
}
