//! A fixed set of threads, one per core, that run searches for the async handlers.
//!
//! tokio's blocking pool hands each search to whichever of its threads is idle and
//! keeps dozens of them under load, so a search often lands on a thread whose CPU
//! caches and per-thread analysis memo are cold. A few long-lived threads stay warm, and
//! their number is also the bound on concurrent searches: more searches than cores only
//! steal each other's CPU. Waiting searches queue here, in arrival order, without
//! holding a thread. Whether they do is what an HTTP worker follows to choose its
//! scheduling policy (`thread_scheduling.rs`).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::thread_scheduling::on_search_sent;

/// A search, given the count of searches in flight to count itself out of.
type Job = Box<dyn FnOnce(&AtomicUsize) + Send + 'static>;

/// Why a search did not come back.
#[derive(Debug, thiserror::Error)]
pub enum SearchThreadError {
    #[error("the search panicked")]
    Panicked,
    #[error("the search threads have stopped")]
    Stopped,
}

/// Handle to the search threads; they stop when the last handle is dropped.
#[derive(Clone)]
pub struct SearchThreads {
    jobs: Sender<Job>,
    thread_count: usize,
    /// Searches sent and not yet finished.
    in_flight: Arc<AtomicUsize>,
}

impl SearchThreads {
    /// Starts `count` threads (at least one).
    pub fn start(count: usize) -> std::io::Result<SearchThreads> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let thread_count = count.max(1);
        for number in 0..thread_count {
            let queue = queue.clone();
            let in_flight = in_flight.clone();
            std::thread::Builder::new()
                .name(format!("deflect-search-{number}"))
                .spawn(move || run_jobs(&queue, &in_flight))?;
        }
        Ok(SearchThreads {
            jobs,
            thread_count,
            in_flight,
        })
    }

    /// Starts one thread per core.
    pub fn one_per_core() -> std::io::Result<SearchThreads> {
        SearchThreads::start(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Runs `work` on a search thread inside the caller's span (so its log lines keep
    /// the request id) and returns its result.
    pub async fn run<T, F>(&self, work: F) -> Result<T, SearchThreadError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let span = tracing::Span::current();
        let (result_sender, result) = oneshot::channel();
        let job: Job = Box::new(move |in_flight| {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| span.in_scope(work)));
            // Counted out before the caller wakes: the next search it sends must not find
            // this one still running.
            in_flight.fetch_sub(1, Ordering::Relaxed);
            // A panicking search drops `result_sender`: the caller gets an error and
            // the thread lives on.
            if let Ok(value) = outcome {
                let _ = result_sender.send(value);
            }
        });
        let in_flight_before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        on_search_sent(in_flight_before >= self.thread_count);
        if self.jobs.send(job).is_err() {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return Err(SearchThreadError::Stopped);
        }
        result.await.map_err(|_| SearchThreadError::Panicked)
    }
}

fn run_jobs(queue: &Mutex<Receiver<Job>>, in_flight: &AtomicUsize) {
    loop {
        // The lock is held only while waiting for the next job, never while running it.
        let next = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match next {
            Ok(job) => job(in_flight),
            // Every handle is gone.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_a_search_thread_and_returns_its_result() {
        let threads = SearchThreads::start(2).unwrap();

        let name = threads
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();

        assert!(name.is_some_and(|name| name.starts_with("deflect-search-")));
    }

    #[tokio::test]
    async fn a_panicking_search_is_an_error_and_the_thread_lives_on() {
        let threads = SearchThreads::start(1).unwrap();

        let panicked = threads.run(|| -> u32 { panic!("a bug in a search") }).await;
        let next = threads.run(|| 7).await;

        assert!(matches!(panicked, Err(SearchThreadError::Panicked)));
        assert_eq!(next.unwrap(), 7);
    }

    #[tokio::test]
    async fn more_searches_than_threads_all_complete() {
        let threads = SearchThreads::start(2).unwrap();

        let searches = (0..50_u64).map(|number| {
            let threads = threads.clone();
            async move { threads.run(move || number * 2).await.unwrap() }
        });
        let results = futures_util::future::join_all(searches).await;

        assert_eq!(
            results.iter().sum::<u64>(),
            (0..50_u64).map(|number| number * 2).sum::<u64>()
        );
    }
}
