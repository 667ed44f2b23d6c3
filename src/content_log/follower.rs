//! The task that keeps this instance's index in step with the content log: it reads the
//! stream from the position its index has applied and applies every entry in order
//! (its own instance's included). Before each read it makes sure the position still
//! belongs to the log ([`super::life`]): it starts over from the snapshot when it has no
//! position or the stream was trimmed past it, and when the log was lost it seeds the log
//! from its index ([`super::seed`]) or, when another instance did, rebuilds from it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::life::{LogLife, PositionVerdict};
use super::seed::SeedOutcome;
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
    /// Set once the index serves the log's content: it had applied a position when this
    /// process started (a restart), or this follower has caught up with the log once.
    serves_log_content: Arc<AtomicBool>,
    /// The full check of the log's life is due before the next read (at the start,
    /// after an error, after a full read).
    full_check_due: bool,
    /// A loss of the log was reported and is being recovered (it is logged and counted
    /// once, however many tries the recovery takes).
    recovering_from_loss: bool,
}

impl ContentFollower {
    /// Follows `log` for `store`; `applied` is the sender of the store's
    /// [`crate::content::LoggedWrites::applied`], `serves_log_content` its flag.
    pub fn new(
        store: ContentStore,
        log: ContentLog,
        reindexer: Reindexer,
        applied: tokio::sync::watch::Sender<LogPosition>,
        serves_log_content: Arc<AtomicBool>,
    ) -> ContentFollower {
        let position = committed_position(&store.index().index);
        if position.is_some() {
            serves_log_content.store(true, Ordering::Relaxed);
        }
        ContentFollower {
            store,
            log,
            reindexer,
            position,
            applied,
            serves_log_content,
            full_check_due: true,
            recovering_from_loss: false,
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
    /// snapshot rebuild or a seed when needed, then what the stream holds after the
    /// position.
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
                    Err(FollowError::Log(ContentLogError::SeedInProgress)) => {
                        tracing::info!("waiting for another instance to seed the content log");
                        tokio::time::sleep(retry_interval).await;
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
        let stepped = self.read_and_apply(wait).await;
        if stepped.is_err() {
            self.full_check_due = true;
        }
        stepped
    }

    async fn read_and_apply(&mut self, wait: bool) -> Result<bool, FollowError> {
        let position = self.usable_position().await?;
        self.reached(position);
        let read = self.log.read_after(position, wait).await?;
        if read.entries_read > 0
            && self.log.life().await?.judge(Some(position)) != PositionVerdict::Usable
        {
            // What the read returned does not continue what the index has: the stream
            // was trimmed past the position (a burst the cheap check cannot see), the
            // log was lost and written again while the read waited, or another
            // instance seeded it (its documents are only in the snapshot). Applying it
            // would hide that; the full check decides what to do instead.
            self.full_check_due = true;
            return Ok(true);
        }
        // Neighbouring entries share a commit (see `apply_entries_to_generation`).
        self.store.apply_logged(read.entries).await?;
        if let Some(last_position) = read.last_position {
            // Past skipped entries too; the index records it with its next commit.
            self.reached(last_position);
        }
        let read_a_full_batch = read.entries_read >= self.log.entries_per_read();
        if read_a_full_batch {
            // Behind: trimming could reach this position before the next read.
            self.full_check_due = true;
        } else {
            self.serves_log_content.store(true, Ordering::Relaxed);
        }
        Ok(read.last_position.is_some())
    }

    /// Returns the position to read after: the index's own when the log still vouches
    /// for it, else whatever the log's life calls for (a rebuild from the snapshot, a
    /// seed of a lost log).
    async fn usable_position(&mut self) -> Result<LogPosition, FollowError> {
        if let (Some(position), false) = (self.position, self.full_check_due) {
            if self.log.life_marks().await?.vouch_for(position) {
                return Ok(position);
            }
        }
        let life = self.log.life().await?;
        let verdict = life.judge(self.position);
        if verdict != PositionVerdict::Usable && life.seeding {
            return Err(ContentLogError::SeedInProgress.into());
        }
        let position = match verdict {
            PositionVerdict::Usable => self.position.unwrap_or(LogPosition::START),
            PositionVerdict::Empty => self.start_on_an_empty_log(&life).await?,
            PositionVerdict::NoPosition => {
                tracing::info!("this index has applied no content log position; rebuilding it from the snapshot");
                self.rebuild().await?
            }
            PositionVerdict::Trimmed => {
                tracing::warn!(position = ?self.position, "the content log was trimmed past this index; rebuilding it from the snapshot");
                self.rebuild().await?
            }
            PositionVerdict::Lost(reason) => {
                if !self.recovering_from_loss {
                    tracing::error!(
                        position = ?self.position,
                        reason = reason.describe(),
                        is_seeded = life.is_seeded(),
                        "the content log was lost; recovering it from the instances' indexes"
                    );
                    self.log.metrics().lost.fetch_add(1, Ordering::Relaxed);
                    self.recovering_from_loss = true;
                }
                self.recover_lost_log(&life).await?
            }
        };
        self.full_check_due = false;
        self.recovering_from_loss = false;
        Ok(position)
    }

    /// An empty log: this index's documents go into it, so that other instances get
    /// them (the log was just turned on, or lost before this index had a position).
    async fn start_on_an_empty_log(&mut self, life: &LogLife) -> Result<LogPosition, FollowError> {
        if self.store.index().num_documents() == 0 {
            return Ok(LogPosition::START);
        }
        tracing::info!("the content log is empty; seeding it with this index's documents");
        self.seed(life).await
    }

    /// A lost log: seeded from this index unless another instance did that already, after
    /// this index's position (then this one rebuilds from the seeded snapshot), or this
    /// index has nothing to give. A seed older than the position belongs to an earlier
    /// loss: the log came back from an older copy, and this index holds newer content.
    async fn recover_lost_log(&mut self, life: &LogLife) -> Result<LogPosition, FollowError> {
        if life.was_seeded_after(self.position) || self.store.index().num_documents() == 0 {
            tracing::info!("rebuilding this index from the content log's snapshot after the loss");
            return self.rebuild().await;
        }
        self.seed(life).await
    }

    /// Seeds the log from this index, applies the changes logged since the loss to the
    /// index too, and returns the seed marker's position.
    async fn seed(&mut self, life: &LogLife) -> Result<LogPosition, FollowError> {
        let position = self.position;
        let documents = self.store.documents_by_tenant().await?;
        let document_count: usize = documents.values().map(Vec::len).sum();
        let seeded = self
            .log
            .seed(
                documents,
                position.unwrap_or(LogPosition::START),
                |life_now| {
                    !life_now.was_seeded_after(position)
                        && matches!(
                            life_now.judge(position),
                            PositionVerdict::Empty | PositionVerdict::Lost(_)
                        )
                },
            )
            .await?;
        let SeedOutcome::Seeded {
            marker,
            changes_since,
        } = seeded
        else {
            tracing::debug!(born = ?life.born, "the content log needs no seed from this instance now");
            return Err(ContentLogError::SeedInProgress.into());
        };
        let changes_applied = changes_since.len();
        self.store.apply_logged(changes_since).await?;
        self.store.mark_applied(marker).await?;
        tracing::warn!(
            documents = document_count,
            entries_since_the_loss = changes_applied,
            %marker,
            "seeded the content log with this index's documents; the other instances rebuild from it"
        );
        Ok(marker)
    }

    /// Rebuilds the index from the snapshot; returns the position it reached.
    async fn rebuild(&mut self) -> Result<LogPosition, FollowError> {
        let report = self
            .reindexer
            .rebuild_serving(&self.store, WhenBusy::Wait)
            .await?;
        Ok(report
            .log_position
            .as_deref()
            .and_then(LogPosition::parse)
            .unwrap_or(LogPosition::START))
    }
}
