//! How the kernel schedules deflect's HTTP workers (`server.worker_scheduling`): as
//! ordinary threads, as batch threads, or as batch threads only while searches queue
//! (the default).
//!
//! Under load on a small machine, every answered search woke the HTTP worker waiting for
//! it, and the kernel gave that worker the core of a search thread at once: about one
//! preemption per request (40,000 in 8 s at 4,000 requests a second on 2 cores). A
//! batch thread's wakeup (Linux's `SCHED_BATCH`) preempts no one: the worker gets a core
//! when a search thread waits or at the scheduler's next tick, and then answers every
//! response and reads every request that is ready. On the benchmark machine that served
//! 8% more typing requests a second at 6% less CPU each (benches/BENCHMARKS.md,
//! "Fifteenth run").
//!
//! Away from saturation the same policy costs latency: a worker woken while both cores
//! are busy may wait for the tick, and with events flowing suggest's p99 at 1,000 req/s
//! rose by a median 24.9% against 11.4% as ordinary threads (the events benchmark allows
//! 20%). So by default a worker is a batch thread only while searches queue: while most
//! of the searches it sends find every search thread busy. At saturation nearly all do,
//! at 1,000 req/s few do (on 2 cores, workers sampled every 50 ms were batch threads in
//! all samples at saturation and in 1 of about 270 at 1,000 req/s). Each search sent
//! moves a running share of such searches ([`SHARE_STEP`]); the worker becomes a batch
//! thread when that share reaches [`ENTER_BATCH_AT_SHARE`] and an ordinary one again
//! when it falls to [`LEAVE_BATCH_AT_SHARE`], so a short burst does not switch it and
//! neither does a moment's lull at saturation (a batch worker runs exactly when a search thread has run
//! out of work, so some of its searches find one idle even then). On the benchmark
//! machine that kept the batch workers' gain at saturation (+7.9%, sixteen interleaved
//! pairs), and in the events benchmark suggest's p99 rose by a median 15.6% (ordinary
//! workers 24.8%, batch workers 36.8% in the same hour; "Sixteenth run").

use std::cell::Cell;

use serde::Deserialize;

/// How far each search sent moves the running share of searches that found every search
/// thread busy: 1/16, so the share follows about the last sixteen searches.
pub const SHARE_STEP: f32 = 1.0 / 16.0;

/// The share of searches finding every search thread busy that makes a worker a batch
/// thread.
pub const ENTER_BATCH_AT_SHARE: f32 = 0.75;

/// The share at which a batch worker becomes an ordinary thread again.
pub const LEAVE_BATCH_AT_SHARE: f32 = 0.25;

/// How the HTTP workers are scheduled (`server.worker_scheduling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerScheduling {
    /// The kernel's default policy, always.
    Normal,
    /// Batch threads, always.
    Batch,
    /// Batch threads while searches queue, ordinary threads otherwise.
    BatchWhileSearchesQueue,
}

impl WorkerScheduling {
    /// Sets up the calling thread, an HTTP worker as it starts. The error is the kernel's
    /// refusal to make it a batch thread (a seccomp policy, say), which leaves it as it was.
    pub fn apply_to_this_worker(self) -> std::io::Result<()> {
        match self {
            WorkerScheduling::Normal => Ok(()),
            WorkerScheduling::Batch => set_own_policy(Policy::Batch),
            WorkerScheduling::BatchWhileSearchesQueue => {
                QUEUE_FOLLOWER.set(Some(QueueFollower::default()));
                Ok(())
            }
        }
    }
}

thread_local! {
    /// Present on HTTP workers scheduled by the search queue, absent on every other thread.
    static QUEUE_FOLLOWER: Cell<Option<QueueFollower>> = const { Cell::new(None) };
}

/// Tells the calling thread that it sent a search, which found every search thread busy
/// or not; an HTTP worker scheduled by the search queue switches policy if that calls for
/// it, and any other thread does nothing.
pub fn on_search_sent(found_every_search_thread_busy: bool) {
    let Some(mut follower) = QUEUE_FOLLOWER.get() else {
        return;
    };
    let switch = follower.observe(found_every_search_thread_busy);
    QUEUE_FOLLOWER.set(Some(follower));
    let Some(policy) = switch else {
        return;
    };
    if let Err(error) = set_own_policy(policy) {
        // Once refused, always refused: stop asking.
        tracing::warn!(%error, "http worker left to its scheduling policy");
        QUEUE_FOLLOWER.set(None);
    }
}

/// The two policies a worker switches between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Ordinary,
    Batch,
}

/// Decides, from the searches a worker sends, when it should switch policy.
#[derive(Debug, Clone, Copy, Default)]
struct QueueFollower {
    is_batch: bool,
    /// Running share of the searches sent that found every search thread busy.
    busy_share: f32,
}

impl QueueFollower {
    /// Returns the policy to switch to, if the search just sent calls for a change.
    fn observe(&mut self, found_every_search_thread_busy: bool) -> Option<Policy> {
        let observed = if found_every_search_thread_busy {
            1.0
        } else {
            0.0
        };
        self.busy_share += (observed - self.busy_share) * SHARE_STEP;
        if !self.is_batch && self.busy_share >= ENTER_BATCH_AT_SHARE {
            self.is_batch = true;
            return Some(Policy::Batch);
        }
        if self.is_batch && self.busy_share <= LEAVE_BATCH_AT_SHARE {
            self.is_batch = false;
            return Some(Policy::Ordinary);
        }
        None
    }
}

/// Sets the calling thread's policy (Linux only; elsewhere nothing changes). Any thread
/// may switch itself between these two without privileges.
fn set_own_policy(policy: Policy) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let policy = match policy {
            Policy::Ordinary => libc::SCHED_OTHER,
            Policy::Batch => libc::SCHED_BATCH,
        };
        let parameters = libc::sched_param { sched_priority: 0 };
        // SAFETY: `parameters` is a valid sched_param for the call's duration; pid 0 is
        // the calling thread, and both policies take priority 0.
        let status = unsafe { libc::sched_setscheduler(0, policy, &parameters) };
        if status != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = policy;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends searches that find every search thread busy (`busy`) or not until the
    /// follower calls for a switch; returns the switch and how many searches it took.
    fn send_until_switch(follower: &mut QueueFollower, busy: bool) -> (Policy, usize) {
        for sent in 1..=1_000 {
            if let Some(policy) = follower.observe(busy) {
                return (policy, sent);
            }
        }
        panic!("no switch after 1,000 searches");
    }

    #[test]
    fn a_worker_becomes_a_batch_thread_after_a_run_of_searches_that_found_the_threads_busy() {
        let mut follower = QueueFollower::default();

        let (policy, sent) = send_until_switch(&mut follower, true);

        assert_eq!(policy, Policy::Batch);
        assert!((16..=32).contains(&sent), "{sent}");
    }

    #[test]
    fn a_worker_stays_ordinary_at_one_busy_search_in_three() {
        let mut follower = QueueFollower::default();

        for sent in 0..10_000 {
            assert_eq!(follower.observe(sent % 3 == 0), None, "search {sent}");
        }
    }

    #[test]
    fn a_batch_worker_stays_one_through_a_lull_and_leaves_when_the_load_has_passed() {
        let mut follower = QueueFollower::default();
        send_until_switch(&mut follower, true);

        // Every other search finding a search thread idle is a lull, not the end.
        for sent in 0..10_000 {
            assert_eq!(follower.observe(sent % 2 == 0), None, "search {sent}");
        }
        let (policy, sent) = send_until_switch(&mut follower, false);

        assert_eq!(policy, Policy::Ordinary);
        assert!(sent <= 32, "{sent}");
    }

    #[cfg(target_os = "linux")]
    fn own_policy() -> libc::c_int {
        // SAFETY: no arguments but the calling thread's pid 0.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_batch_worker_is_a_batch_thread_and_other_threads_are_not() {
        let own_policy_before = own_policy();
        let policy_of_batch_worker = std::thread::spawn(|| {
            WorkerScheduling::Batch.apply_to_this_worker().unwrap();
            own_policy()
        })
        .join()
        .unwrap();

        assert_eq!(policy_of_batch_worker, libc::SCHED_BATCH);
        assert_eq!(own_policy(), own_policy_before);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_worker_following_the_queue_switches_its_own_policy_both_ways() {
        let policies = std::thread::spawn(|| {
            WorkerScheduling::BatchWhileSearchesQueue
                .apply_to_this_worker()
                .unwrap();
            let at_start = own_policy();
            for _ in 0..100 {
                on_search_sent(true);
            }
            let while_searches_queue = own_policy();
            for _ in 0..100 {
                on_search_sent(false);
            }
            (at_start, while_searches_queue, own_policy())
        })
        .join()
        .unwrap();

        assert_eq!(
            policies,
            (libc::SCHED_OTHER, libc::SCHED_BATCH, libc::SCHED_OTHER)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_that_is_not_a_worker_ignores_the_queue() {
        let policy = std::thread::spawn(|| {
            for _ in 0..100 {
                on_search_sent(true);
            }
            own_policy()
        })
        .join()
        .unwrap();

        assert_eq!(policy, libc::SCHED_OTHER);
    }
}
