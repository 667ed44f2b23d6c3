//! The task that keeps this instance's index in step with the content log: it reads the
//! stream from the position its index has applied and applies every batch in order
//! (its own instance's included), and starts over from the snapshot when it has no
//! position or the stream was trimmed past it.

use std::time::Duration;

use super::{ContentLog, ContentLogError};
use crate::content::{ContentStore, StoreError};
use crate::reindex::{RebuildError, Reindexer, WhenBusy};
use crate::search::log_position::committed_position;
use crate::search::LogPosition;

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Log(#[from] ContentLogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
}

/// Follows the content log for one store.
pub struct ContentFollower {
    store: ContentStore,
    log: ContentLog,
    reindexer: Reindexer,
    /// The position the serving index has applied; `None` until known.
    position: Option<LogPosition>,
    /// Tells waiting writers how far the index has applied the log.
    applied: tokio::sync::watch::Sender<LogPosition>,
}

impl ContentFollower {
    /// Follows `log` for `store`; `applied` is the sender of the store's
    /// [`crate::content::LoggedWrites::applied`].
    pub fn new(
        store: ContentStore,
        log: ContentLog,
        reindexer: Reindexer,
        applied: tokio::sync::watch::Sender<LogPosition>,
    ) -> ContentFollower {
        let position = committed_position(&store.index().index);
        ContentFollower {
            store,
            log,
            reindexer,
            position,
            applied,
        }
    }

    fn reached(&mut self, position: LogPosition) {
        self.position = Some(position);
        self.applied.send_if_modified(|applied| {
            let is_further = position > *applied;
            if is_further {
                *applied = position;
            }
            is_further
        });
    }

    /// Brings the index up to the log once, without waiting for new changes: a
    /// snapshot rebuild when needed, then what the stream holds after the position.
    pub async fn catch_up(&mut self) -> Result<(), FollowError> {
        loop {
            if !self.step(false).await? {
                return Ok(());
            }
        }
    }

    /// Follows the log until the runtime stops, retrying after failures.
    pub fn spawn(mut self) {
        let retry_interval = Duration::from_millis(self.log.settings().retry_interval_ms.max(1));
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                match self.step(true).await {
                    Ok(_) => {
                        if failing {
                            tracing::info!("following the content log again");
                        }
                        failing = false;
                    }
                    Err(error) => {
                        if !failing {
                            tracing::warn!(
                                error = format!("{:#}", anyhow::Error::new(error)),
                                "failed to follow the content log; retrying"
                            );
                        }
                        failing = true;
                        tokio::time::sleep(retry_interval).await;
                    }
                }
            }
        });
    }

    /// Applies one read of the stream; returns whether it found anything new.
    async fn step(&mut self, wait: bool) -> Result<bool, FollowError> {
        let position = self.usable_position().await?;
        self.reached(position);
        let read = self.log.read_after(position, wait).await?;
        for entry in read.entries {
            let reached = entry.position;
            self.store.apply_logged(entry).await?;
            self.reached(reached);
        }
        if let Some(last_position) = read.last_position {
            // Past skipped entries too; the index records it with its next commit.
            self.reached(last_position);
        }
        Ok(read.last_position.is_some())
    }

    /// Returns the position to read after, rebuilding from the snapshot first when the
    /// index has none or the stream no longer reaches it.
    async fn usable_position(&mut self) -> Result<LogPosition, FollowError> {
        match self.position {
            Some(position) if !self.log.has_trimmed_after(position).await? => return Ok(position),
            Some(position) => {
                tracing::warn!(%position, "the content log was trimmed past this index; rebuilding it from the snapshot");
            }
            None if self.log.is_empty().await? => {
                // Nothing was ever logged: an index loaded before the log existed keeps
                // its documents (they reach other instances when written again).
                if self.store.index().num_documents() > 0 {
                    tracing::warn!("the content log is empty; this index's documents are not in it and other instances will not get them until they are written again");
                }
                self.reached(LogPosition::START);
                return Ok(LogPosition::START);
            }
            None => {
                tracing::info!("this index has applied no content log position; rebuilding it from the snapshot");
            }
        }
        let report = self
            .reindexer
            .rebuild_serving(&self.store, WhenBusy::Wait)
            .await?;
        let rebuilt_at = report
            .log_position
            .as_deref()
            .and_then(LogPosition::parse)
            .unwrap_or(LogPosition::START);
        self.reached(rebuilt_at);
        Ok(rebuilt_at)
    }
}
