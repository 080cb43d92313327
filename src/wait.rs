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
//! finish otherwise (`docs/fork-join.md`, "Broadcast"). A blocking wait runs
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

use crate::registry::{Inbox, Shared, MAX_PUBLISHED_PIECES};
use crate::sync::{lock, Ordering, Parker};
use crate::task::{JobRef, Task};
use crate::worker::{spawn_worker, WorkerContext};

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

/// A worker marked blocked (see `WorkerContext::block`); unmarks on drop.
pub(crate) struct Blocked<'a> {
    pub(crate) shared: &'a Shared,
    /// The inbox this wait marked away, to mark back on drop.
    pub(crate) away: Option<&'a Inbox>,
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        if let Some(inbox) = self.away {
            inbox.set_away(false);
        }
        // The spare of the highest rank retires after its current task.
        self.shared.blocked.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What `enter_region` saved of the enclosing region.
pub(crate) struct SavedRegion {
    pub(crate) frames: Vec<JobRef>,
    pub(crate) offered: usize,
    pub(crate) new: usize,
    pub(crate) fifo_floor: u64,
}

impl WorkerContext {
    /// Marks this worker blocked until the guard drops: it gives back its
    /// held slots of the bound, and a spare worker runs the pool's queues
    /// meanwhile, if one of the pool's spare slots is free (`crate::wait`,
    /// "Blocking waits").
    pub(crate) fn block(&self) -> Blocked<'_> {
        let mut blocked = self.block_running_shares();
        // Away, the worker runs no broadcast share until it returns, so a
        // broadcast from a task it waits for would never finish: shares
        // posted meanwhile run on their broadcaster (`crate::broadcast`),
        // and the ones already queued run here, before the wait.
        if let Some(inbox) = self.shared.inboxes.get(self.index) {
            if !inbox.set_away(true) {
                blocked.away = Some(inbox);
                self.run_broadcasts_in_wait();
            }
        }
        blocked
    }

    /// Like `block`, for a wait that runs this worker's broadcast shares
    /// itself while it waits (a broadcaster waiting for the others).
    pub(crate) fn block_running_shares(&self) -> Blocked<'_> {
        let shared = &*self.shared;
        self.return_held_slots();
        let rank = shared.blocked.fetch_add(1, Ordering::SeqCst);
        let index = shared.core_slots + rank;
        if index < shared.stealers.len() {
            self.start_spare(index);
        }
        Blocked { shared, away: None }
    }

    /// Starts the spare in slot `index`, or wakes it if it waits retired.
    pub(crate) fn start_spare(&self, index: usize) {
        let shared = &*self.shared;
        let rank = index - shared.core_slots;
        let mut spares = lock(&shared.spares);
        if let Some(queues) = spares.queues[rank].take() {
            let mut builder = std::thread::Builder::new();
            if let Some(name) = spares.thread_name.spare(rank, index) {
                builder = builder.name(name);
            }
            if let Some(size) = spares.stack_size {
                builder = builder.stack_size(size);
            }
            // Counted as started before `wait_for_exit` can look again.
            let _exited = lock(&shared.exited);
            match spawn_worker(builder, index, self.shared.clone(), queues) {
                Ok(thread) => spares.threads.push(thread),
                // No thread to be had: the pool runs one worker short
                // until this one returns, as with no spare slot left.
                Err(queues) => spares.queues[rank] = Some(queues),
            }
            return;
        }
        drop(spares);
        shared.wait_parkers[index].unpark();
    }

    /// Where this worker parks while it waits inside a task.
    pub(crate) fn wait_parker(&self) -> &Parker {
        &self.shared.wait_parkers[self.index]
    }

    /// Opens a wait region (see `crate::wait`): until `exit_region`, no
    /// join frame opened before it is offered, and `pop_region_task`
    /// returns only tasks pushed inside it.
    pub(crate) fn enter_region(&self) -> SavedRegion {
        // SAFETY: as in `open_join`: one call on the `Vec`, on its thread.
        let frames = unsafe { std::mem::take(&mut *self.join_frames.get()) };
        self.wait_depth.set(self.wait_depth.get() + 1);
        SavedRegion {
            frames,
            offered: self.offered_frames.replace(0),
            new: self.region_new.replace(0),
            fifo_floor: self.fifo_floor.replace(self.fifo_seq.get()),
        }
    }

    /// Closes the region `enter_region` opened. Every join opened inside
    /// has closed, so its frame stack is empty; the tasks pushed inside and
    /// still queued count as new for the enclosing region too.
    pub(crate) fn exit_region(&self, saved: SavedRegion) {
        // SAFETY: as in `open_join`.
        let inner = unsafe { std::mem::replace(&mut *self.join_frames.get(), saved.frames) };
        debug_assert!(inner.is_empty());
        self.offered_frames.set(saved.offered);
        self.region_new
            .set(saved.new.saturating_add(self.region_new.get()));
        self.fifo_floor.set(saved.fifo_floor);
        self.wait_depth.set(self.wait_depth.get() - 1);
    }

    /// The newest task of this worker's deque if it was pushed inside the
    /// innermost region. `region_new` bounds those tasks from above, and
    /// thieves take from the other end: so while it is not zero the
    /// newest task, if any, is one of them (if thieves took some of them,
    /// they took every older task first).
    pub(crate) fn pop_region_task(&self) -> Option<Task> {
        if self.region_new.get() == 0 {
            return None;
        }
        self.pop_local()
    }

    /// Publishes that this worker starts a piece of `region`, if its deque
    /// is empty: from now until `exit_piece`, every task on its deque
    /// descends from that piece. Returns the entry to clear.
    pub(crate) fn enter_piece(&self, region: usize) -> Option<usize> {
        let depth = self.piece_depth.get();
        if depth >= MAX_PUBLISHED_PIECES || !self.local.is_empty() {
            return None;
        }
        let piece = &self.shared.pieces[self.index].entries[depth];
        piece.region.store(region, Ordering::Relaxed);
        // Odd: running. Release: a leapfrogger that reads this generation
        // reads the region stored above.
        piece.generation.fetch_add(1, Ordering::Release);
        self.piece_depth.set(depth + 1);
        Some(depth)
    }

    /// Ends a piece `enter_piece` published.
    pub(crate) fn exit_piece(&self, depth: Option<usize>) {
        if let Some(depth) = depth {
            let piece = &self.shared.pieces[self.index].entries[depth];
            // Even: ended. Release: whatever this worker pushes from now on
            // is ordered after it, so a leapfrogger that steals such a task
            // sees the generation change (see `leapfrog`).
            piece.generation.fetch_add(1, Ordering::Release);
            self.piece_depth.set(depth);
        }
    }

    /// Leapfrogging: steals the oldest task of a worker that is running a
    /// piece of `region`, if that piece is still running after the steal,
    /// so the task descends from it. A task stolen just after the piece
    /// ended may be anyone's: it goes to the injector, not to the waiter.
    pub(crate) fn leapfrog(&self, region: usize) -> Option<Task> {
        let shared = &*self.shared;
        for (victim, pieces) in shared.pieces.iter().enumerate() {
            if victim == self.index {
                continue;
            }
            for piece in &pieces.entries {
                let generation = piece.generation.load(Ordering::Acquire);
                if generation % 2 == 0 {
                    // Entries are a stack: none above an ended one runs.
                    break;
                }
                if piece.region.load(Ordering::Relaxed) != region {
                    continue;
                }
                let Some(task) = self.steal_from(victim) else {
                    break;
                };
                // The steal synchronizes with the push of `task`: if the
                // piece had ended before that push, this load sees it.
                if piece.generation.load(Ordering::Acquire) == generation {
                    return Some(task);
                }
                shared.injector.push(task);
                shared.sleep.notify_work(|| true);
                return None;
            }
        }
        None
    }
}
