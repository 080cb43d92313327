//! FIFO spawns (`spawn_fifo`, `ScopeFifo::spawn_fifo`), as rayon's: each
//! worker keeps a FIFO queue of the tasks it spawned this way, and pushes a
//! *trampoline* onto its LIFO deque for each; whoever pops or steals a
//! trampoline starts the oldest entry it may start. How that fits the wait
//! protocol is in `docs/fork-join.md`, "FIFO spawns".

use crate::registry::{FifoEntry, Shared};
use crate::sync::{lock, Arc};
use crate::task::Task;
use crate::worker::{with_current, WorkerContext};

impl WorkerContext {
    /// Pushes a task spawned with `spawn_fifo`: the task joins this
    /// worker's FIFO queue, and a trampoline that runs the oldest entry of
    /// that queue joins its deque (rayon's design): the deque stays LIFO,
    /// but whoever pops or steals a trampoline starts the tasks of the FIFO
    /// queue in the order they were spawned.
    pub(crate) fn push_fifo(&self, task: Task) {
        let seq = self.fifo_seq.get();
        self.fifo_seq.set(seq + 1);
        lock(&self.shared.fifos[self.index]).push_back(FifoEntry { seq, task });
        let shared = self.shared.clone();
        let owner = self.index;
        self.push(Task::new(
            move || run_fifo(&shared, owner, seq),
            false,
            false,
        ));
    }
}

/// The trampoline of a `spawn_fifo` task of worker `owner`, numbered
/// `seq`: runs the oldest entry of `owner`'s FIFO queue that the thread
/// running it may run.
///
/// Outside any wait, that is the oldest entry. Inside a wait region, the
/// wait protocol allows only work that descends from what is waited for
/// (`crate::wait`): the owner itself takes the oldest entry pushed inside
/// its innermost region (it popped this trampoline as a task of that
/// region, so there is one unless another trampoline took it); any other
/// worker (a leapfrogger) takes only this trampoline's own entry. If
/// nothing may run here while entries are left, a fresh trampoline goes
/// to the injector, so that no entry is left without one.
fn run_fifo(shared: &Arc<Shared>, owner: usize, seq: u64) {
    let rule = with_current(|current| match current {
        Some(worker) if Arc::ptr_eq(&worker.shared, shared) && worker.wait_depth.get() > 0 => {
            if worker.index == owner {
                FifoRule::From(worker.fifo_floor.get())
            } else {
                FifoRule::Only(seq)
            }
        }
        _ => FifoRule::Oldest,
    });
    let (task, left) = {
        let mut fifo = lock(&shared.fifos[owner]);
        let position = match rule {
            FifoRule::Oldest => (!fifo.is_empty()).then_some(0),
            FifoRule::From(floor) => fifo.iter().position(|entry| entry.seq >= floor),
            FifoRule::Only(seq) => fifo.iter().position(|entry| entry.seq == seq),
        };
        let task = position
            .and_then(|at| fifo.remove(at))
            .map(|entry| entry.task);
        (task, !fifo.is_empty())
    };
    match task {
        Some(task) => task.run(),
        None if left => {
            let again = shared.clone();
            shared.injector.push(Task::new(
                move || run_fifo(&again, owner, u64::MAX),
                false,
                false,
            ));
            shared.sleep.notify_work(|| true);
        }
        None => {}
    }
}

/// Which entry of a FIFO queue a trampoline may take (see `run_fifo`).
enum FifoRule {
    Oldest,
    From(u64),
    Only(u64),
}
