//! How the kernel may schedule deflect's HTTP workers (`server.batch_scheduled_workers`):
//! as batch threads, so that waking one does not take a core from a running search.
//!
//! Under load on a small machine, every answered search woke the HTTP worker waiting for
//! it, and the kernel gave that worker the core of a search thread at once: about one
//! preemption per request (40,000 in 8 s at 4,000 requests a second on 2 cores). A
//! batch thread's wakeup preempts no one: the worker gets a core when a search thread
//! waits or at the scheduler's next tick, and then answers every response and reads
//! every request that is ready. On the benchmark machine that served 8% more typing
//! requests a second at 6% less CPU each (medians of twenty interleaved pairs;
//! benches/BENCHMARKS.md, "Fifteenth run"). On an idle core a worker still runs at once,
//! so one typist waits no longer. But a worker woken while both cores are busy may wait
//! for the scheduler's tick: with events flowing at 2,000/s, suggest's p99 at 1,000 req/s
//! rose by a median 24.9% against 11.4% without (three runs each; the events benchmark
//! allows 20%). So `server.batch_scheduled_workers` is off by default.

/// Makes the calling thread a batch thread (Linux's `SCHED_BATCH`; elsewhere nothing
/// changes). Any thread may do this for itself without privileges; the error is the
/// kernel's refusal (a seccomp policy, say), which leaves the thread as it was.
pub fn run_as_batch_thread() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let parameters = libc::sched_param { sched_priority: 0 };
        // SAFETY: `parameters` is a valid sched_param for the call's duration; pid 0 is
        // the calling thread, and SCHED_BATCH takes priority 0.
        let status = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &parameters) };
        if status != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn own_policy() -> libc::c_int {
        // SAFETY: no arguments but the calling thread's pid 0.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn a_thread_made_a_batch_thread_is_one_and_other_threads_are_not() {
        let own_policy_before = own_policy();
        let policy_of_batch_thread = std::thread::spawn(|| {
            run_as_batch_thread().unwrap();
            own_policy()
        })
        .join()
        .unwrap();

        assert_eq!(policy_of_batch_thread, libc::SCHED_BATCH);
        assert_eq!(own_policy(), own_policy_before);
    }
}
