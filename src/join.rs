//! `join`: run two closures, potentially in parallel, and return both
//! results.
//!
//! Inside a worker, the second closure stays on the caller's stack (a
//! [`StackJob`]); when it is offered to the other workers, only a two-word
//! reference to it is pushed onto the worker's deque, where an idle worker
//! can steal it. The caller runs the first closure, then runs the second
//! itself (popping it back if it was offered), or, if it was stolen, runs
//! other tasks until the thief is done. No heap allocation, no bound:
//! fork-join work from inside the pool never waits for room in the
//! injector, so it cannot deadlock on it.
//!
//! # When the second closure is offered
//!
//! Offering costs a push and, when the owner takes the closure back, a pop
//! with a SeqCst fence: about half of a fine-grained join's cost. And in a
//! recursion of joins almost every offered closure is taken back by its
//! owner: a thief only comes when a worker runs out of work, and then it
//! wants one piece, the largest. So a worker keeps each join's second
//! closure in a *frame* of its own (a stack of them, one per join whose
//! first closure is running) and keeps one piece on offer: at every join
//! point, when it opens a join and when it closes one (its first closure
//! returned), if its own deque is empty it pushes its *oldest* private
//! frame, the largest piece it holds. Lazy task creation (Mohr, Kranz and
//! Halstead) also hands a thief the oldest pending piece, and Spice's
//! heartbeat scheduling promotes the oldest at join points when a timer
//! fires; corepool offers whenever its deque is empty, which needs no
//! clock: once a thief took the piece on offer, the next is there at the
//! victim's next join point.
//! The offer wakes a sleeper if no one is searching, as every push does.
//!
//! A frame that was never offered is private: after the first closure the
//! owner runs the second inline, with no atomic operation at all. Offered
//! frames are always the oldest ones, so the deque holds them in the
//! stack's order and a thief still takes the largest.
//!
//! Why at closes too: a worker going down a chain of joins (each first
//! closure recursing, each second doing the work) opens every join before
//! it runs any second closure, and opens none on its way back up. Offering
//! only at opens, thieves got nothing from such a chain once the pieces
//! offered on the way down were gone, and a chain of joins ran on one
//! worker (docs/benchmarks.md, "fork-join").
//!
//! The price: a thief that empties the deque while its owner is inside a
//! long closure that makes no join waits for that closure to return.
//! rayon offers every second closure at once. The frames live in
//! `WorkerContext` (`worker.rs`: `open_join`, `close_join`).

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::global::global;

use crate::job::{JoinLatch, StackJob};
use crate::wait::Region;
use crate::worker::{self, WorkerContext};

/// Runs `a` and `b`, potentially in parallel, and returns both results.
///
/// On a worker thread (of any corepool pool), `b` may be taken by another
/// worker while the caller runs `a`. A worker keeps one piece of its joins
/// on offer, the oldest `b` it holds, whenever its deque is otherwise
/// empty, and runs the others itself, so that the many small joins at the
/// bottom of a recursion cost no atomic operation. On any other thread,
/// the join runs on the global pool (built with the defaults on first use
/// unless [`Builder::build_global`](crate::Builder::build_global)
/// configured it), as [`Pool::join`](crate::Pool::join) on it: both
/// closures may run in parallel and the caller blocks until both are done
/// (`rayon::join`). To join on a given pool from outside it, use
/// `Pool::join`.
///
/// If either closure panics, the panic is re-raised after both have
/// finished (the first closure's panic wins if both panic).
///
/// `a` must not wait for `b` by blocking (on a channel, a lock): `b` may
/// run after `a`, on the same thread. It always does in a pool of one
/// worker; in larger pools `b` is not offered at all while this worker's
/// deque holds anything (an older `b` on offer, a spawned task), and
/// offering it does not guarantee that a sleeping worker wakes for it (the
/// push skips the fence that [`submit`](crate::submit) pays; the joining
/// worker runs `b` itself if no one took it). rayon's `join` has the same
/// rule.
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
    let off_worker = worker::with_current(|current| match current {
        Some(worker) => Ok(join_on(worker, a, b)),
        None => Err((a, b)),
    });
    match off_worker {
        Ok(results) => results,
        Err((a, b)) => global().join(a, b),
    }
}

/// `join` where `Pool::join` runs it: on the worker (of any pool) running
/// this thread, or, off any worker (the pool is shutting down and runs
/// the join on its caller), `a` then `b` right here, never on the global
/// pool.
pub(crate) fn join_here<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    worker::with_current(|current| match current {
        Some(worker) => join_on(worker, a, b),
        None => {
            // Same contract as on a worker: both run, then a panic (the
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
    let job_b = StackJob::new(JoinLatch::new(), b);
    // SAFETY: `job_b` stays here, unmoved, until it ran here or its latch
    // is set: every path below runs it here or waits for the latch before
    // returning or unwinding (`a`'s panic is caught first).
    let job_ref = unsafe { job_b.as_job_ref() };
    worker.open_join(job_ref);

    let result_a = catch_unwind(AssertUnwindSafe(a));

    let mut result_b = None;
    if !worker.close_join(&job_ref) {
        // Never offered: no other thread can reach `b`.
        result_b = job_b.run_here();
    } else {
        loop {
            if job_b.latch.probe() {
                break; // stolen, and already done
            }
            match worker.pop_local() {
                Some(task) if task.is_job(&job_ref) => {
                    // Not stolen: run `b` here, without the result cell and
                    // the latch round trip. (A stack task's drop does
                    // nothing.)
                    std::mem::forget(task);
                    result_b = job_b.run_here();
                    break;
                }
                // Pushed by `a` above `b` and not yet run, or an older
                // join's offered closure below a stolen `b`: run it, it is
                // ours.
                Some(task) => worker.execute(task),
                None => {
                    // Stolen: help with what descends from `b`, then park
                    // until the thief sets the latch (`crate::wait`).
                    Region::enter(worker).wait(
                        job_b.region(),
                        || job_b.latch.probe(),
                        || {
                            job_b
                                .latch
                                .park_until_set(worker.wait_parker(), || worker.broadcast_pending())
                        },
                    );
                    break;
                }
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
