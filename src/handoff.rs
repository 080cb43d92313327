//! A worker hands its core to a producer that waits for a slot of the
//! bound and shares that core with it.
//!
//! A producer that finds the pool full yields its core while it waits
//! (`Admission::acquire`). Where it shares that core with a pinned worker,
//! which is always so when the pool has a worker on every core, the
//! scheduler may then run the worker for a whole time slice (milliseconds)
//! before the producer runs again, while the default queue holds a few
//! hundred microseconds of small tasks: the queue runs dry, the workers
//! park, and the producer wakes them once it runs. So the worker on the
//! producer's core yields once per wait, when the bound has drained to
//! its *low-water mark* (half the capacity): the producer refills that
//! half in microseconds and yields back.
//!
//! # Protocol
//!
//! * A producer starting to wait counts itself in `waiting` and publishes
//!   a new *turn*: the CPU it runs on, then `turn` bumped. After each of
//!   its yields it looks at its CPU again and publishes a new turn if the
//!   scheduler moved it.
//! * A worker that returns the slots it held back (every few task starts,
//!   `Admission::start`) while `waiting > 0`, with the bound at or below
//!   the mark (the caller checks both), takes the turn if
//!   it has not taken it yet, and yields if it runs on the turn's CPU (or
//!   either CPU is unknown). So each worker yields at most once per turn,
//!   and only the one sharing the producer's core.
//!
//! Everything here is a hint, read and written with `Relaxed`: a stale
//! read costs one yield too many or one too few, never a slot, since the
//! bound's accounting (`crate::admission`) reads none of it. The mark
//! sets the batch the producer refills per turn: with the mark at the
//! capacity itself, every task started was a turn, and the two threads
//! traded the core once per task (0.62 efficiency on the imbalance
//! burst); see docs/tuning.md, "The producer's wait on a full queue".
//! Not under loom: the models' producers do not yield.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicUsize, Ordering};

/// A CPU `sched_getcpu` could not name (or a platform without it).
const UNKNOWN_CPU: usize = usize::MAX;

/// The CPU the calling thread runs on, if the platform says.
#[cfg(target_os = "linux")]
fn current_cpu() -> usize {
    // SAFETY: `sched_getcpu` takes no arguments and only reads the calling
    // thread's current CPU; it has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).unwrap_or(UNKNOWN_CPU)
}

/// The CPU the calling thread runs on, if the platform says.
#[cfg(not(target_os = "linux"))]
fn current_cpu() -> usize {
    UNKNOWN_CPU
}

pub(crate) struct Handoff {
    /// Whether hand-offs happen at all (see `Handoff::new`).
    enabled: bool,
    /// Producers in `Admission::acquire`'s wait, yielding or parked.
    waiting: CachePadded<AtomicUsize>,
    /// Bumped for each new turn; stored after `cpu`.
    turn: AtomicUsize,
    /// The CPU of the latest turn's producer.
    cpu: AtomicUsize,
    /// Per worker: the latest turn it took. Written by its worker only.
    taken: Box<[CachePadded<AtomicUsize>]>,
}

impl Handoff {
    /// `enabled` when producers wait by yielding (a queue deep enough not
    /// to run dry meanwhile); never under loom.
    pub(crate) fn new(enabled: bool, workers: usize) -> Self {
        Handoff {
            enabled: enabled && !cfg!(corepool_loom),
            waiting: CachePadded::new(AtomicUsize::new(0)),
            turn: AtomicUsize::new(0),
            cpu: AtomicUsize::new(UNKNOWN_CPU),
            taken: (0..workers)
                .map(|_| CachePadded::new(AtomicUsize::new(usize::MAX)))
                .collect(),
        }
    }

    /// A producer starts waiting for a slot; it stops when the guard drops.
    pub(crate) fn begin_wait(&self) -> Option<WaitTurn<'_>> {
        self.begin_wait_on(current_cpu)
    }

    fn begin_wait_on(&self, cpu: impl FnOnce() -> usize) -> Option<WaitTurn<'_>> {
        if !self.enabled {
            return None;
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let cpu = cpu();
        self.publish(cpu);
        Some(WaitTurn { handoff: self, cpu })
    }

    fn publish(&self, cpu: usize) {
        self.cpu.store(cpu, Ordering::Relaxed);
        self.turn.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a producer waits (the worker's first, cheapest look).
    pub(crate) fn is_waiting(&self) -> bool {
        self.enabled && self.waiting.load(Ordering::Relaxed) > 0
    }

    /// `worker` takes the current turn if it has not yet: `true` when it
    /// should yield, i.e. it runs on the waiting producer's CPU.
    pub(crate) fn take_turn(&self, worker: usize) -> bool {
        self.take_turn_on(worker, current_cpu)
    }

    fn take_turn_on(&self, worker: usize, mine: impl FnOnce() -> usize) -> bool {
        let turn = self.turn.load(Ordering::Relaxed);
        let taken = &self.taken[worker];
        if taken.load(Ordering::Relaxed) == turn {
            return false;
        }
        taken.store(turn, Ordering::Relaxed);
        let cpu = self.cpu.load(Ordering::Relaxed);
        cpu == UNKNOWN_CPU || {
            let mine = mine();
            mine == UNKNOWN_CPU || mine == cpu
        }
    }
}

#[cfg(all(test, not(corepool_loom)))]
impl Handoff {
    /// Whether `worker` took the current turn.
    pub(crate) fn turn_taken(&self, worker: usize) -> bool {
        self.taken[worker].load(Ordering::Relaxed) == self.turn.load(Ordering::Relaxed)
    }
}

/// A producer's wait, published to the workers; ends on drop.
pub(crate) struct WaitTurn<'a> {
    handoff: &'a Handoff,
    cpu: usize,
}

impl WaitTurn<'_> {
    /// After a yield: a new turn if the scheduler moved the producer.
    pub(crate) fn after_yield(&mut self) {
        self.after_yield_on(current_cpu());
    }

    fn after_yield_on(&mut self, cpu: usize) {
        if cpu != self.cpu {
            self.cpu = cpu;
            self.handoff.publish(cpu);
        }
    }
}

impl Drop for WaitTurn<'_> {
    fn drop(&mut self) {
        self.handoff.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(corepool_loom)))]
mod tests {
    use super::*;

    #[test]
    fn only_the_worker_on_the_producers_cpu_yields_once_per_turn() {
        let handoff = Handoff::new(true, 2);
        assert!(!handoff.is_waiting());
        let mut turn = handoff.begin_wait_on(|| 3).expect("enabled");
        assert!(handoff.is_waiting());
        // Worker 0 runs on CPU 3, worker 1 on CPU 5.
        assert!(handoff.take_turn_on(0, || 3));
        assert!(!handoff.take_turn_on(0, || 3), "one yield per turn");
        assert!(!handoff.take_turn_on(1, || 5), "not the producer's core");
        // The producer, moved to CPU 5 by the scheduler, starts a new turn.
        turn.after_yield_on(5);
        assert!(handoff.take_turn_on(1, || 5));
        assert!(!handoff.take_turn_on(0, || 3));
        // Staying on its CPU starts no new turn.
        turn.after_yield_on(5);
        assert!(!handoff.take_turn_on(1, || 5));
        drop(turn);
        assert!(!handoff.is_waiting());
    }

    #[test]
    fn an_unknown_cpu_on_either_side_yields() {
        let handoff = Handoff::new(true, 2);
        let _turn = handoff.begin_wait_on(|| UNKNOWN_CPU).expect("enabled");
        assert!(handoff.take_turn_on(0, || 1));
        let handoff = Handoff::new(true, 2);
        let _turn = handoff.begin_wait_on(|| 1).expect("enabled");
        assert!(handoff.take_turn_on(0, || UNKNOWN_CPU));
    }

    #[test]
    fn disabled_it_publishes_nothing() {
        let handoff = Handoff::new(false, 1);
        assert!(handoff.begin_wait_on(|| 0).is_none());
        assert!(!handoff.is_waiting());
    }
}
