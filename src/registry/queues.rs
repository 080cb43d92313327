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
//! own to run (`worker::find`) takes, in this order: its inflow's oldest
//! task; half of another worker's inflow, nearest workers first; and only
//! then a new batch from the injector. Every source is FIFO and each holds
//! only tasks older than the next, so one worker alone starts outside
//! tasks exactly in submission order, even when another worker holding a
//! batch is stuck in a long task.
//!
//! With `W` workers the window of reordering is bounded by the batches in
//! flight: a task can start after later ones only if they sit in a batch
//! another worker took at about the same time as its own (each worker
//! takes a new batch only after finding every inflow empty), or in its own
//! batch, when a thief took the older half of it and the owner runs the
//! newer half meanwhile. So at most `W × STEAL_BATCH` later tasks start
//! before it, and typically a few, since a batch is at most half of the
//! queue. The exception is what a worker has in hand when the operating
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
