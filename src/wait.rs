//! How a task waits inside a worker: the wait protocol.
//!
//! A task on a worker waits in two ways. A *fork-join wait* waits for work
//! it forked itself: the second closure of a `join` that a thief took, or
//! the tasks of a `scope`. A *blocking wait* waits for anything else: a
//! `JoinHandle` of some task, or a job on another pool (`install`,
//! `Pool::join` and `Pool::scope` called on a worker of another pool).
//!
//! # What a waiter runs
//!
//! A waiting worker runs a task nested on its own stack, below the frame
//! that waits. If that task waited, directly or not, for the waiter's own
//! continuation, neither could ever return; and every task run that way
//! deepens the stack. So a waiter runs only work that descends from what
//! it waits for, the rule of oneTBB's isolation and of leapfrogging
//! (Wagner and Calder), and nothing for a blocking wait:
//!
//! 1. **Its own region's tasks.** A fork-join wait opens a *region* (for a
//!    scope, before its body runs). Inside it the worker pops from its own
//!    deque only tasks pushed inside the region, which descend from the
//!    waiting frame: `WorkerContext::region_new` counts them, and since
//!    thieves take from the other end, the newest task is one of them
//!    whenever the count is not zero. Join frames opened before the region
//!    are not offered inside it, so the deque receives nothing older.
//! 2. **Leapfrogging.** A worker that starts a stolen piece (a `join`'s
//!    second closure, a scope's task) while its own deque is empty
//!    *publishes* it: the piece's region (the job's or the scope's address)
//!    and an odd generation, in its `Pieces`. Until the piece ends, every
//!    task on that worker's deque descends from the piece. A waiter steals
//!    from a worker that publishes its region, and keeps the task only if
//!    the generation did not change across the steal; otherwise it puts the
//!    task in the injector, for anyone.
//! 3. **Nothing else**: not the injector, not other deques. A blocking wait
//!    runs nothing at all (rule 1 and 2 have no region to go by): it blocks,
//!    and the pool *compensates* (below).
//!
//! The one exception is a worker's own broadcast shares (`crate::broadcast`):
//! a fork-join waiter runs those posted to its inbox, each in a region of
//! its own, since a broadcast made by a piece it waits for could not
//! finish otherwise (`docs/design.md`, "Broadcast"). A blocking wait runs
//! none.
//!
//! Nesting is bounded by the depth of the fork-join tree: each nested task
//! descends from the piece its waiter waits for.
//!
//! # Parking
//!
//! When rules 1 and 2 find nothing, the waiter spins and yields for a few
//! rounds (a stolen piece is often short), then parks: a `join` on its
//! `JoinLatch` (`UNSET → SLEEPING`, and the setter, seeing `SLEEPING`,
//! unparks the owner's wait parker), a scope on its own parker, which the
//! task that brings its count to zero unparks. A parked waiter uses no CPU.
//! It does not count as idle either: the thief runs what it waits for.
//!
//! # Blocking waits and compensation
//!
//! A worker that blocks returns its held slots of the bound and marks
//! itself blocked; for each blocked worker, up to `Builder::max_spare_threads`,
//! one *spare* worker runs the pool's queues meanwhile, so the pool keeps
//! the parallelism it was built with and no queued task waits behind a
//! blocked worker. A spare retires when the count of blocked workers falls
//! below its rank. Before blocking on a `JoinHandle` of a task of its own
//! pool that has not started, a worker runs that task itself instead.

use crossbeam_utils::Backoff;

use crate::worker::{SavedRegion, WorkerContext};

/// How many times a waiter with nothing to run snoozes (crossbeam's
/// `Backoff`: 7 spins, then 4 yields) before it parks: long enough to catch
/// a task that is about to finish without a park and a wake-up. Under loom
/// none, so the models reach the park at once instead of multiplying the
/// interleavings with scheduling points that decide nothing.
const SNOOZES_BEFORE_PARK: u32 = if cfg!(corepool_loom) { 0 } else { 11 };

/// A wait region on a worker, open until dropped.
pub(crate) struct Region<'a> {
    worker: &'a WorkerContext,
    saved: Option<SavedRegion>,
}

impl<'a> Region<'a> {
    /// Opens a region: from now on the worker's pushes count as its own.
    pub(crate) fn enter(worker: &'a WorkerContext) -> Self {
        Region {
            worker,
            saved: Some(worker.enter_region()),
        }
    }

    /// Runs tasks of this region and pieces of `region` stolen from
    /// workers running them until `done()`; when there are none for a few
    /// rounds, calls `park`, which must return only once `done()` holds or
    /// a broadcast share waits in this worker's inbox
    /// (`WorkerContext::broadcast_pending`). Broadcast shares run here too
    /// (`crate::broadcast`).
    pub(crate) fn wait(&self, region: usize, done: impl Fn() -> bool, mut park: impl FnMut()) {
        let worker = self.worker;
        worker.return_held_slots();
        let backoff = Backoff::new();
        let mut snoozes = 0;
        loop {
            if done() {
                return;
            }
            if worker.run_broadcasts_in_wait() {
                continue;
            }
            if let Some(task) = worker.pop_region_task().or_else(|| worker.leapfrog(region)) {
                worker.execute(task);
                backoff.reset();
                snoozes = 0;
                continue;
            }
            if snoozes == SNOOZES_BEFORE_PARK {
                // Returns once done, or when a broadcast share waits to
                // run here (run at the top of the loop).
                park();
                continue;
            }
            backoff.snooze();
            snoozes += 1;
        }
    }
}

impl Drop for Region<'_> {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            self.worker.exit_region(saved);
        }
    }
}
