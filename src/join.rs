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
//! rayon offers every second closure at once. The frames are a field of
//! `WorkerContext`; `open_join` and `close_join` are below.
//!
//! `JoinContext::join` (`crate::join_context`) frames only some of its
//! joins, through `join_framed` below, and runs the rest as plain calls.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::job::{JobBody, JoinLatch, StackJob};
use crate::task::{JobRef, Task};
use crate::wait::Region;
use crate::worker::{self, WorkerContext};

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

pub(crate) fn join_on<A, B, RA, RB>(worker: &WorkerContext, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    join_framed(worker, a, b, |b| b())
}

/// A join with a frame: `b` waits in a join frame (offered to thieves as
/// described above) while `a` runs here. If `b` is still here once `a`
/// returns, `run_b` runs it (`JoinContext::join` hands it its context);
/// a thief runs it with `JobBody::run`.
pub(crate) fn join_framed<A, B, RA, RB>(
    worker: &WorkerContext,
    a: A,
    b: B,
    run_b: impl FnOnce(B) -> RB,
) -> (RA, RB)
where
    A: FnOnce() -> RA,
    B: JobBody<RB>,
    RB: Send,
{
    let job_b = StackJob::new(JoinLatch::new(), b);
    // SAFETY: `job_b` stays here, unmoved, until it ran here or its latch
    // is set: every path below runs it here or waits for the latch before
    // returning or unwinding (`a`'s panic is caught first).
    let job_ref = unsafe { job_b.as_job_ref() };
    worker.open_join(job_ref);

    let result_a = catch_unwind(AssertUnwindSafe(a));

    // Whether `b` is still here, for this thread to run: never offered,
    // or offered and popped back before anyone took it.
    let here = if !worker.close_join(&job_ref) {
        // Never offered: no other thread can reach `b`.
        true
    } else {
        loop {
            if job_b.latch.probe() {
                break false; // stolen, and already done
            }
            match worker.pop_local() {
                Some(task) if task.is_job(&job_ref) => {
                    // Not stolen: run `b` here, without the result cell and
                    // the latch round trip. (A stack task's drop does
                    // nothing.)
                    std::mem::forget(task);
                    break true;
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
                    break false;
                }
            }
        }
    };

    let taken_back = if here { job_b.take_here() } else { None };
    let result_b = match taken_back {
        Some(b) => catch_unwind(AssertUnwindSafe(|| run_b(b))),
        None => job_b.into_result_catching(),
    };
    match (result_a, result_b) {
        (Err(panic), _) | (Ok(_), Err(panic)) => resume_unwind(panic),
        (Ok(a), Ok(b)) => (a, b),
    }
}

impl WorkerContext {
    /// Opens a join frame for `job`, the second closure of a `join` about
    /// to run its first; if this worker's deque is empty, offers the
    /// oldest private frame (`crate::join`, "When the second closure is
    /// offered").
    #[inline]
    pub(crate) fn open_join(&self, job: JobRef) {
        // SAFETY: only this thread reaches `join_frames`, and this
        // reference ends with the push, which runs no other code (see the
        // field).
        unsafe { (*self.join_frames.get()).push(job) };
        if self.local.is_empty() {
            self.offer_oldest_frame();
        }
    }

    /// Pushes the oldest frame no other worker can see yet onto this
    /// worker's deque, and wakes a sleeper if no one is searching (see
    /// `Sleep::notify_join_work` for why this push may skip the fence that
    /// `push` pays).
    pub(crate) fn offer_oldest_frame(&self) {
        let offered = self.offered_frames.get();
        // SAFETY: as in `open_join`: one call on the `Vec`, on its thread.
        let oldest = unsafe { (&*self.join_frames.get()).get(offered).copied() };
        if let Some(job) = oldest {
            self.offered_frames.set(offered + 1);
            self.local.push(Task::stack(job, false));
            self.region_new.set(self.region_new.get() + 1);
            self.shared.sleep.notify_join_work();
        }
    }

    /// The join frames of the innermost region that no other worker can
    /// see yet.
    #[inline]
    pub(crate) fn private_frames(&self) -> usize {
        // SAFETY: as in `open_join`: one call on the `Vec`, on its thread.
        let frames = unsafe { (*self.join_frames.get()).len() };
        frames - self.offered_frames.get()
    }

    /// Closes the newest join frame, `job`'s, once its first closure has
    /// returned. Returns whether it was offered: if not, no other thread
    /// can reach `job`, and the caller runs it inline (after offering the
    /// oldest private frame left, if the deque is empty).
    #[inline]
    pub(crate) fn close_join(&self, job: &JobRef) -> bool {
        let remaining = {
            // SAFETY: as in `open_join`: this reference ends with this
            // block, which calls only `Vec` methods.
            let frames = unsafe { &mut *self.join_frames.get() };
            let newest = frames.pop();
            debug_assert!(newest.is_some_and(|newest| newest.same_job(job)));
            frames.len()
        };
        // Offered frames are the oldest ones, so the newest was offered
        // exactly when every frame was.
        let offered_frames = self.offered_frames.get();
        if offered_frames > remaining {
            self.offered_frames.set(remaining);
            return true;
        }
        // Keep one on offer while `job` runs inline, too: on its way back
        // up a chain of joins a worker opens none.
        if offered_frames < remaining && self.local.is_empty() {
            self.offer_oldest_frame();
        }
        false
    }
}
