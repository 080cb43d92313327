//! `join`: run two closures, potentially in parallel, and return both
//! results.
//!
//! Inside a worker, the second closure stays on the caller's stack (a
//! [`StackJob`]); only a two-word reference to it is pushed onto the
//! worker's deque, where an idle worker can steal it. The caller runs the
//! first closure, then pops the second back and runs it itself, or, if it
//! was stolen, runs other tasks until the thief is done. No heap
//! allocation, no bound: fork-join work from inside the pool never waits
//! for room in the injector, so it cannot deadlock on it.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::job::{SpinLatch, StackJob};
use crate::task::Task;
use crate::worker::{self, WorkerContext};

/// Runs `a` and `b`, potentially in parallel, and returns both results.
///
/// On a worker thread (of any corepool pool), `b` is offered to the other
/// workers while the caller runs `a`. On any other thread, `a` then `b`
/// run on the caller: use [`Pool::join`](crate::Pool::join) to run a join
/// on a pool from outside it.
///
/// If either closure panics, the panic is re-raised after both have
/// finished (the first closure's panic wins if both panic).
///
/// `a` must not wait for `b` by blocking (on a channel, a lock): `b` may
/// run after `a`, on the same thread. It always does in a pool of one
/// worker, and in larger pools pushing `b` does not guarantee that a
/// sleeping worker wakes for it (the push skips the fence that
/// [`submit`](crate::submit) pays; the joining worker runs `b` itself if no
/// one took it). rayon's `join` has the same rule.
///
/// ```
/// fn fib(n: u64) -> u64 {
///     if n < 15 {
///         return if n < 2 { n } else { fib(n - 1) + fib(n - 2) };
///     }
///     let (a, b) = corepool::join(|| fib(n - 1), || fib(n - 2));
///     a + b
/// }
/// let pool = corepool::Pool::builder().workers(2).build()?;
/// assert_eq!(pool.install(|| fib(25)), 75_025);
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    worker::with_current(|current| match current {
        Some(worker) => join_on(worker, a, b),
        None => {
            // Same contract as inside a pool: both run, then a panic (the
            // first closure's first) is re-raised.
            let result_a = catch_unwind(AssertUnwindSafe(a));
            let result_b = catch_unwind(AssertUnwindSafe(b));
            match (result_a, result_b) {
                (Err(panic), _) | (Ok(_), Err(panic)) => resume_unwind(panic),
                (Ok(a), Ok(b)) => (a, b),
            }
        }
    })
}

fn join_on<A, B, RA, RB>(worker: &WorkerContext, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let job_b = StackJob::new(SpinLatch::new(), b);
    // SAFETY: `job_b` stays in this frame, unmoved, until its latch is
    // set: every path below either runs it here or waits for the latch
    // before returning or unwinding (`a`'s panic is caught first).
    let job_ref = unsafe { job_b.as_job_ref() };
    worker.push_join(Task::stack(job_ref, false));

    let result_a = catch_unwind(AssertUnwindSafe(a));

    let mut result_b = None;
    loop {
        if job_b.latch.probe() {
            break; // stolen, and already done
        }
        match worker.pop_local() {
            Some(task) if task.is_job(&job_ref) => {
                // Not stolen: run `b` here, without the result cell and the
                // latch round trip. (A stack task's drop does nothing.)
                std::mem::forget(task);
                result_b = job_b.run_here();
                break;
            }
            // Pushed by `a` above `b` and not yet run: run it, it is ours.
            Some(task) => worker.execute(task),
            None => {
                // Stolen: help with other work until the thief is done.
                worker::help_until(Some(worker), || job_b.latch.probe(), None);
                break;
            }
        }
    }

    let result_b = match result_b {
        Some(result) => result,
        None => job_b.into_result_catching(),
    };
    match (result_a, result_b) {
        (Err(panic), _) | (Ok(_), Err(panic)) => resume_unwind(panic),
        (Ok(a), Ok(b)) => (a, b),
    }
}
