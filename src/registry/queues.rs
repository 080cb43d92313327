//! A worker slot's two queues, and the order tasks start in.
//!
//! Every worker slot (spares included) owns two crossbeam deques:
//!
//! * `local`, **LIFO** for its owner and FIFO for thieves: the tasks that
//!   tasks running on this worker spawned, and the second closures of its
//!   joins on offer. The owner runs the newest (hottest in cache, and the
//!   depth-first order of a fork-join tree); a thief takes the oldest, the
//!   largest piece.
//! * `inflow`, **FIFO** for everyone: a batch of tasks submitted from
//!   outside, which the worker took from the injector in one steal. The
//!   owner and thieves alike take the oldest.
//!
//! # Outside work starts in submission order
//!
//! The injector is FIFO, and a worker moves a batch of it (at most
//! `STEAL_BATCH`, 32, and at most about half of what is queued) into its
//! inflow, where the batch keeps its order. A worker with nothing of its
//! own to run (`worker::find`) takes its inflow's oldest task, and when
//! that is empty:
//!
//! * if it is busy (it just ran a task), the older half of the inflow of a
//!   worker that *lags*, one that still holds the batch it held at this
//!   worker's previous look, so it took no new batch while this one went
//!   through one of its own; then a new batch from the injector;
//! * if it is searching (it found nothing nearby), the older half of any
//!   other inflow, nearest workers first, then the injector.
//!
//! Every source is FIFO and holds only tasks older than the next, so one
//! worker alone starts outside tasks exactly in submission order. A
//! worker stuck in a long task does not hold up its batch for long: each
//! other worker runs at most its own batch, 32 tasks, before it takes the
//! stuck one's, oldest first. Workers that keep up are left to their own
//! batches: taking from each other's inflows while both pop them made
//! every pop fight over the same cache line, 15–20 % more time per task
//! on one producer's stream of tiny tasks (`docs/tuning.md`, "The
//! tuning the figures support").
//!
//! With `W` workers the window of reordering is bounded by the batches in
//! flight: a task can be overtaken by the batch each other worker took
//! before it noticed this task's worker lagging, or, in its own batch, by
//! the newer half its owner runs after a thief took the older half. So at
//! most about `W × 32` newer tasks start before any task, typically a
//! few. The exception is what a worker has in hand when the operating
//! system deschedules it: the task it took and has not started, or the
//! batch it is moving (a crossbeam batch steal claims the tasks first and
//! publishes them in the new deque after), which waits until that worker
//! runs again.
//!
//! Work spawned from inside keeps its LIFO locality: a worker runs its own
//! `local` deque before its inflow, so the children of the outside task it
//! is running come first.

use crate::sync::{Stealer, Worker};
use crate::task::Task;

/// A worker slot's two deques (see the module documentation).
pub(crate) struct Queues {
    /// Spawned from inside: LIFO for the owner.
    pub(crate) local: Worker<Task>,
    /// Taken from the injector: FIFO for everyone.
    pub(crate) inflow: Worker<Task>,
}

impl Queues {
    pub(crate) fn new() -> Self {
        Queues {
            local: Worker::new_lifo(),
            inflow: Worker::new_fifo(),
        }
    }

    /// The ends of both deques other workers take from.
    pub(crate) fn stealers(&self) -> Stealers {
        Stealers {
            local: self.local.stealer(),
            inflow: self.inflow.stealer(),
        }
    }
}

/// Another worker's view of a slot's [`Queues`].
pub(crate) struct Stealers {
    pub(crate) local: Stealer<Task>,
    pub(crate) inflow: Stealer<Task>,
}

impl Stealers {
    /// Whether both deques look empty (two loads each; may be stale).
    pub(crate) fn is_empty(&self) -> bool {
        self.local.is_empty() && self.inflow.is_empty()
    }

    /// The tasks in both deques, a snapshot for metrics.
    pub(crate) fn len(&self) -> usize {
        self.local.len() + self.inflow.len()
    }
}
