//! Finding work: where a worker looks for its next task, and the
//! constants that tune the search.
//!
//! A worker looks, in order:
//!
//! 1. every [`GLOBAL_QUEUE_INTERVAL`]th time, outside work first (step 3),
//!    so that it is served even while tasks keep spawning locally; and
//!    half a period later, one task from another worker's `local` deque,
//!    in turn, so that the spawned work of a descheduled worker does not
//!    wait for the others to run out of work;
//! 2. its own `local` deque (LIFO: the task it spawned last is hottest in
//!    cache);
//! 3. outside work, oldest first (`crate::registry::Queues` says why this
//!    order starts outside tasks in submission order): its own inflow;
//!    then half of the inflow of a worker that lags (it held the same
//!    batch at this worker's last look); then a batch from the injector
//!    into its inflow (after a short pause if its last take there found a
//!    single task: see [`INJECTOR_PACE`]);
//! 4. as a *searcher* (see [`crate::sleep`]), outside work again (any
//!    other worker's inflow, not only a lagging one's), then the
//!    oldest task of another worker's `local` deque, nearest cores first,
//!    for a few rounds, yielding between them (in large pools each round
//!    visits the nearest workers and a rotating window of the others, not
//!    all of them), and for at least [`STREAM_WINDOW`] while it is
//!    catching a stream of tasks from outside;
//! 5. then it parks, by the protocol in [`crate::sleep`].

use std::time::Duration;

use super::WorkerContext;
use crate::metrics::bump;
use crate::sync::{steal_batch_if_any, thread, Instant, Steal};
use crate::task::Task;

/// How often (in tasks) a worker looks at the injector before its own deque.
/// A prime, as in tokio, so the check does not fall into lock-step with a
/// periodic workload; small enough that a local spawn storm cannot delay
/// injected work by more than ~60 tasks per worker.
const GLOBAL_QUEUE_INTERVAL: u32 = 61;

/// When, within each [`GLOBAL_QUEUE_INTERVAL`], a busy worker tries one
/// steal from another worker's deque (see `find_nearby`).
const BALANCE_TICK: u32 = GLOBAL_QUEUE_INTERVAL / 2;

/// In pools larger than twice this, a search round visits this many
/// nearest workers plus this many others in rotation, instead of all.
const NEAREST_VICTIMS: usize = 8;

/// Most tasks taken from the injector, or from another worker's inflow,
/// in one steal (crossbeam moves at most 32 in one batch anyway). Workers
/// steal from each other's `local` deques one task at a time
/// (`steal_from`).
const STEAL_BATCH: usize = 32;

/// How long a worker whose last take from the injector found a single
/// task waits before the next take (see `take_from_injector`): long
/// enough for a batch to build up behind a slow producer, short enough
/// that a task arriving meanwhile barely waits (1, 2 and 4 µs measured:
/// docs/tuning.md, "The tuning the figures support").
/// Under loom zero: the models' pools are never fed by a producer faster
/// than one task at a time, and time does not pass there.
const INJECTOR_PACE: Duration = if cfg!(corepool_loom) {
    Duration::ZERO
} else {
    Duration::from_micros(2)
};

/// Rounds of searching (injector and every other worker) before parking,
/// at least. Each round ends with a `sched_yield`, not a spin, because a
/// pinned worker that spins holds a core an unpinned producer may share;
/// 16 rounds (some 10 µs) catch the next task of a steady stream without
/// a park and a wake-up, and a longer window makes two yielding workers
/// take turns on the producer's core (docs/tuning.md, "The tuning the figures support").
/// Under loom one round: spinning only multiplies the interleavings.
const SEARCH_ROUNDS: u32 = if cfg!(corepool_loom) { 1 } else { 16 };

/// How long a searcher that is catching a stream from outside (its last
/// search found outside work) keeps searching before it parks,
/// however quickly its rounds go by (see `search`).
///
/// Rounds alone let the worker that shares a busy producer's core
/// (where each yield runs the producer first) outlast the one with a core
/// to itself, catch every task, and keep the producer off its core; a
/// window in time lets the worker on the free core take the stream. It
/// applies only while tasks come from outside at least as often as a
/// search lasts, so a sparse stream still parks after [`SEARCH_ROUNDS`];
/// the price is a worker awake through gaps of up to 20 µs in a dense one
/// (docs/tuning.md, "The tuning the figures support").
///
/// Under loom zero, so a search lasts [`SEARCH_ROUNDS`]: time does not
/// pass in a model.
const STREAM_WINDOW: Duration = if cfg!(corepool_loom) {
    Duration::ZERO
} else {
    Duration::from_micros(20)
};

impl WorkerContext {
    /// Steps 1 to 3: the fair check of outside work, the own deque,
    /// outside work.
    pub(super) fn find_nearby(&self, tick: u32) -> Option<Task> {
        match tick % GLOBAL_QUEUE_INTERVAL {
            0 => {
                if let Some(task) = self.take_outside() {
                    return Some(task);
                }
            }
            // Half a period later, one task from another worker's `local`
            // deque: a worker that is descheduled (its core taken by
            // another process) would otherwise keep the tasks it spawned
            // until every other worker runs out of work, which under
            // steady load is never. (Its outside batch is taken over in
            // step 3, once it lags.)
            BALANCE_TICK => {
                if let Some(task) = self.steal_from_next_victim() {
                    return Some(task);
                }
            }
            _ => {}
        }
        self.pop_local()
            .or_else(|| self.pop_inflow())
            .or_else(|| self.steal_from_inflows(true))
            .or_else(|| self.take_from_injector())
    }

    /// Step 3 without the pause, and looking at every other inflow: the
    /// oldest outside task this worker can reach (its inflow, another
    /// worker's inflow, the injector).
    pub(super) fn take_outside(&self) -> Option<Task> {
        self.pop_inflow()
            .or_else(|| self.steal_from_inflows(false))
            .or_else(|| self.steal_from_injector())
    }

    /// Pops the oldest task of this worker's inflow; when there is none,
    /// tells the others (`Shared::inflow_held`).
    pub(super) fn pop_inflow(&self) -> Option<Task> {
        let task = self.inflow.pop();
        if task.is_none() && self.inflow_announced.replace(false) {
            self.shared.inflow_held[self.index].set(0);
        }
        task
    }

    /// After a take into this worker's inflow: if tasks are left there,
    /// tells the others it holds a new batch (`Shared::inflow_held`).
    fn announce_inflow(&self) {
        if !self.inflow.is_empty() {
            let batch = self.inflow_batches.get() + 1;
            self.inflow_batches.set(batch);
            self.inflow_announced.set(true);
            self.shared.inflow_held[self.index].set(batch);
        }
    }

    /// Whether this busy worker should take from `victim`'s inflow: it
    /// holds the same batch as at this worker's last look, so it is stuck
    /// or slower than this one (`Shared::inflow_held`).
    fn victim_lags(&self, victim: usize) -> bool {
        let batch = self.shared.inflow_held[victim].get();
        batch != 0 && self.seen_batches[victim].replace(batch) == batch
    }

    /// Step 3, paced: if the last take found a single task, wait
    /// [`INJECTOR_PACE`] before the next one, so that a batch can build up.
    ///
    /// A producer that is slower than the workers would otherwise hand
    /// them its tasks one at a time: each worker takes the task just
    /// pushed, runs it, and is back before the next one, so every push and
    /// every take fights over the injector's cache lines and the
    /// producer's own pushes slow down (docs/tuning.md, "The tuning the figures support"). A stream that has ended costs the worker
    /// one pause before it searches; a task arriving meanwhile waits at
    /// most that long.
    fn take_from_injector(&self) -> Option<Task> {
        if self.took_single.get() {
            spin_for(INJECTOR_PACE);
        }
        let task = self.steal_from_injector();
        self.took_single
            .set(task.is_some() && self.inflow.is_empty());
        task
    }

    /// Step 4: a few rounds over the injector and the other workers, for
    /// at least [`STREAM_WINDOW`] if the last search caught a task from
    /// outside.
    pub(super) fn search(&self) -> Option<Task> {
        let window_from = self.catching_stream.replace(false).then(Instant::now);
        let mut round = 0;
        loop {
            if let Some(task) = self.take_outside() {
                self.catching_stream.set(true);
                return Some(task);
            }
            if let Some(task) = self.steal_from_some_workers(round as usize) {
                return Some(task);
            }
            if self.shared.admission.is_closed_and_drained() {
                return None;
            }
            thread::yield_now();
            round += 1;
            if round >= SEARCH_ROUNDS
                && window_from.is_none_or(|from| from.elapsed() >= STREAM_WINDOW)
            {
                return None;
            }
        }
    }

    /// Takes a batch from the injector into this worker's inflow, and
    /// returns its oldest task.
    fn steal_from_injector(&self) -> Option<Task> {
        loop {
            match self
                .shared
                .injector
                .steal_batch_with_limit_and_pop(&self.inflow, STEAL_BATCH)
            {
                Steal::Success(task) => {
                    self.announce_inflow();
                    return Some(task);
                }
                Steal::Empty => return None,
                Steal::Retry => crate::sync::spin_hint(),
            }
        }
    }

    /// Takes the older half of the first non-empty inflow of another
    /// worker, nearest first, into this worker's inflow, and returns its
    /// oldest task. Those tasks came from the injector before anything
    /// still there, so they go first. `busy`: only from workers that lag
    /// (`victim_lags`).
    fn steal_from_inflows(&self, busy: bool) -> Option<Task> {
        let shared = &*self.shared;
        let counters = &shared.counters[self.index];
        let task = shared.victims[self.index].iter().find_map(|&victim| loop {
            if busy && !self.victim_lags(victim) {
                break None;
            }
            bump(&counters.steal_attempts, 1);
            match steal_batch_if_any(&shared.stealers[victim].inflow, &self.inflow, STEAL_BATCH) {
                Steal::Success(task) => {
                    bump(&counters.stolen, 1);
                    break Some(task);
                }
                Steal::Empty => break None,
                Steal::Retry => crate::sync::spin_hint(),
            }
        });
        if task.is_some() {
            self.announce_inflow();
        }
        task
    }

    /// One search round's victims: every other worker in a small pool;
    /// in a large one the nearest [`NEAREST_VICTIMS`] and a rotating window
    /// of as many others, so that a round costs O(1), not O(workers).
    fn steal_from_some_workers(&self, round: usize) -> Option<Task> {
        let victims = &self.shared.victims[self.index];
        if victims.len() <= 2 * NEAREST_VICTIMS {
            return self.steal_from_workers();
        }
        let (near, far) = victims.split_at(NEAREST_VICTIMS);
        let start = (self.index + round * NEAREST_VICTIMS) % far.len();
        let window = far.iter().cycle().skip(start).take(NEAREST_VICTIMS);
        near.iter()
            .chain(window)
            .find_map(|&victim| self.steal_from(victim))
    }

    /// The periodic balancing steal: the next victim, nearest first, in turn.
    fn steal_from_next_victim(&self) -> Option<Task> {
        let victims = &self.shared.victims[self.index];
        if victims.is_empty() {
            return None;
        }
        let turn = self.balance_turn.get();
        self.balance_turn.set(turn.wrapping_add(1));
        self.steal_from(victims[turn % victims.len()])
    }

    /// Steals the oldest task of `victim`'s deque, retrying while
    /// contended. One task, not a batch: in fork-join and in trees of
    /// spawned tasks the oldest is the largest piece of work, and taking
    /// half the deque instead left the victim stealing its own pieces back
    /// (docs/tuning.md, "The tuning the figures support").
    pub(crate) fn steal_from(&self, victim: usize) -> Option<Task> {
        let shared = &*self.shared;
        loop {
            bump(&shared.counters[self.index].steal_attempts, 1);
            match shared.stealers[victim].local.steal() {
                Steal::Success(task) => {
                    bump(&shared.counters[self.index].stolen, 1);
                    return Some(task);
                }
                Steal::Empty => return None,
                Steal::Retry => crate::sync::spin_hint(),
            }
        }
    }

    /// Every other worker, nearest first (the re-check before parking, and
    /// waiting workers).
    pub(super) fn steal_from_workers(&self) -> Option<Task> {
        self.shared.victims[self.index]
            .iter()
            .find_map(|&victim| self.steal_from(victim))
    }
}

/// Spins (with the CPU's spin-wait hint, which leaves a hyperthread
/// sibling the core) for about `pause`.
fn spin_for(pause: Duration) {
    let deadline = std::time::Instant::now() + pause;
    loop {
        for _ in 0..16 {
            std::hint::spin_loop();
        }
        if std::time::Instant::now() >= deadline {
            return;
        }
    }
}
