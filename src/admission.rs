//! The bound: how many externally submitted tasks may be accepted and not
//! yet started, and the queue of producers blocked waiting for a slot.
//!
//! # Protocol
//!
//! One atomic word, `state`, packs a `CLOSED` bit with the count of
//! *admitted* tasks: accepted from outside the pool and not yet started,
//! wherever they sit (the injector, or a worker's deque after a batch steal).
//!
//! * **Acquire** (a producer): one compare-and-swap from `n` to `n + 1`,
//!   refused when `CLOSED` is set or `n == capacity`. Check and increment
//!   are one atomic step, so no interleaving of producers can exceed the
//!   bound, and an acquire is ordered before or after a close, never
//!   beside it: every acquired slot belongs to a task shutdown must drain.
//! * **Release** (a worker, just before running an admitted task): one
//!   `fetch_sub`. If a producer is registered as waiting, the worker hands
//!   the freed slot's wake-up to exactly one of them (no thundering herd).
//!   If the word falls to `CLOSED | 0`, the last admitted task has started
//!   and the caller wakes every idle worker so they can exit.
//! * **Close**: `fetch_or(CLOSED)`, then every waiting producer is woken and
//!   finds the pool closed.
//!
//! A producer that finds the pool full first spins and yields for a few
//! microseconds (a slot usually frees that fast), and only then queues.
//!
//! # Why a blocked producer never misses its slot
//!
//! A producer that finds the pool full registers (under the `waiters` lock,
//! bumping `waiting`, a SeqCst read-modify-write), then tries to acquire once
//! more before parking. A worker releases (SeqCst read-modify-write on
//! `state`) and then reads `waiting` (SeqCst). Both pairs are ordered in the
//! single SeqCst order: either the producer's second try sees the freed slot,
//! or the worker sees `waiting > 0` and wakes someone. The parker keeps a
//! token, so a wake that lands before the producer parks is not lost.
//!
//! A woken producer may lose the slot to a producer that did not queue
//! (barging keeps the fast path lock-free); it then queues again and the
//! next release wakes it. A producer that was woken but gives up (its
//! deadline passed) passes the wake-up on to the next waiter, so a freed
//! slot never sits unclaimed behind a sleeping producer.

use std::collections::VecDeque;

use crossbeam_utils::{Backoff, CachePadded};

use crate::monitor::FillTrigger;
use crate::sync::{fence, lock, Arc, AtomicUsize, Instant, Mutex, Ordering, Parker};

/// High bit of `state`: the pool accepts no more external tasks.
const CLOSED: usize = 1 << (usize::BITS - 1);
/// Rounds of `Backoff` a producer that finds the pool full goes through
/// before it parks: crossbeam's backoff spins 2^round times per round up to
/// round 6, and yields from there (with `snooze`) until round 10.
const PRODUCER_SPIN_ROUNDS: u32 = 11;

/// Capacity per worker from which a full-pool producer also yields while it
/// spins (see `acquire`).
pub(crate) const YIELD_CAPACITY_PER_WORKER: usize = 64;

/// The largest capacity the packed word can count.
pub(crate) const MAX_CAPACITY: usize = CLOSED - 1;

/// Why an acquire was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `capacity` tasks are admitted and not yet started.
    Full,
    /// The pool is shutting down.
    Closed,
    /// A deadline passed while waiting for a slot.
    TimedOut,
}

/// What a release observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    /// Business as usual.
    Open,
    /// The pool is closed and this was the last admitted task to start:
    /// idle workers must be woken so they can exit.
    LastAfterClose,
}

pub(crate) struct Admission {
    /// `CLOSED` bit | admitted count.
    state: CachePadded<AtomicUsize>,
    capacity: usize,
    /// Number of producers in `waiters`; read on every release, written
    /// only on the slow path.
    waiting: CachePadded<AtomicUsize>,
    waiters: Mutex<VecDeque<Arc<Parker>>>,
    /// Queue-fill alert marks, if an alert is configured (`monitor.rs`).
    pub(crate) fill_trigger: Option<FillTrigger>,
    /// Whether the queue is deep enough for a full-pool producer to yield.
    yield_while_full: bool,
}

impl Admission {
    pub(crate) fn new(capacity: usize, workers: usize, fill_trigger: Option<FillTrigger>) -> Self {
        debug_assert!(capacity > 0 && capacity <= MAX_CAPACITY);
        Admission {
            state: CachePadded::new(AtomicUsize::new(0)),
            capacity,
            waiting: CachePadded::new(AtomicUsize::new(0)),
            waiters: Mutex::new(VecDeque::new()),
            fill_trigger,
            yield_while_full: capacity >= workers.saturating_mul(YIELD_CAPACITY_PER_WORKER),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Admitted tasks not yet started.
    pub(crate) fn admitted(&self) -> usize {
        self.state.load(Ordering::Relaxed) & !CLOSED
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Closed, and every admitted task has started: a worker with nothing
    /// left in its own deque may exit.
    pub(crate) fn is_closed_and_drained(&self) -> bool {
        self.state.load(Ordering::SeqCst) == CLOSED
    }

    /// Takes a slot without waiting.
    #[cfg(not(corepool_seed_bug = "split_acquire"))]
    pub(crate) fn try_acquire(&self) -> Result<(), Refused> {
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            if current & CLOSED != 0 {
                return Err(Refused::Closed);
            }
            if current >= self.capacity {
                return Err(Refused::Full);
            }
            match self.state.compare_exchange_weak(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if let Some(trigger) = &self.fill_trigger {
                        if current + 1 == trigger.high {
                            trigger.poke();
                        }
                    }
                    return Ok(());
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// SEEDED BUG (verification only): check, then increment, as two steps.
    #[cfg(corepool_seed_bug = "split_acquire")]
    pub(crate) fn try_acquire(&self) -> Result<(), Refused> {
        let current = self.state.load(Ordering::SeqCst);
        if current & CLOSED != 0 {
            return Err(Refused::Closed);
        }
        if current >= self.capacity {
            return Err(Refused::Full);
        }
        self.state.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Takes a slot, blocking while the pool is full, until `deadline` if
    /// one is given.
    pub(crate) fn acquire(&self, deadline: Option<Instant>) -> Result<(), Refused> {
        match self.try_acquire() {
            Err(Refused::Full) => {}
            done => return done,
        }
        // A slot usually frees within microseconds, when a worker starts
        // its next task: spin briefly before paying for a park and a
        // wake-up, as crossbeam-channel's bounded send does. With a queue
        // deep enough not to run dry meanwhile, also yield, which hands the
        // core to the worker sharing it: at the default capacity that made
        // one producer's 500k submissions take 0.73x the time; with a queue
        // of 20 the workers drained it during the yield, went to sleep, and
        // the run took 2.8x the time, so small queues only spin (neutral).
        // See docs/benchmarks.md ("Changes after the tables"). Not under loom, where
        // spinning would only multiply the interleavings.
        if !crate::sync::IS_LOOM {
            let backoff = Backoff::new();
            for _ in 0..PRODUCER_SPIN_ROUNDS {
                if self.yield_while_full {
                    backoff.snooze();
                } else {
                    backoff.spin();
                }
                match self.try_acquire() {
                    Err(Refused::Full) => {}
                    done => return done,
                }
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    break;
                }
            }
        }
        let me = Arc::new(Parker::new());
        loop {
            {
                let mut waiters = lock(&self.waiters);
                waiters.push_back(me.clone());
                self.waiting.fetch_add(1, Ordering::SeqCst);
            }
            // Pairs with the release's `fetch_sub` then `waiting` load: one
            // of the two sides sees the other (see the module docs).
            fence(Ordering::SeqCst);
            match self.try_acquire() {
                Err(Refused::Full) => {}
                done => {
                    if !self.dequeue(&me) {
                        // We were woken for a slot as well; whatever we got,
                        // pass the wake-up on rather than swallow it.
                        self.wake_one();
                    }
                    return done;
                }
            }
            let woken = match deadline {
                None => {
                    me.park();
                    true
                }
                Some(deadline) => me.park_until(deadline),
            };
            if !woken {
                // Timed out. One last try: the slot may have freed just now.
                let last_try = self.try_acquire();
                if !self.dequeue(&me) {
                    // Woken concurrently with the timeout: the token is ours
                    // but we are leaving, so the next waiter gets it.
                    me.clear();
                    self.wake_one();
                }
                return match last_try {
                    Err(Refused::Full) => Err(Refused::TimedOut),
                    done => done,
                };
            }
            match self.try_acquire() {
                Err(Refused::Full) => {} // lost the slot to a barging producer: queue again
                done => return done,
            }
        }
    }

    /// Removes `me` from the waiters. Returns `false` when it was already
    /// removed, that is, when a waker chose it.
    fn dequeue(&self, me: &Arc<Parker>) -> bool {
        let mut waiters = lock(&self.waiters);
        match waiters.iter().position(|w| Arc::ptr_eq(w, me)) {
            Some(index) => {
                waiters.remove(index);
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    fn wake_one(&self) {
        let mut waiters = lock(&self.waiters);
        if let Some(waiter) = waiters.pop_front() {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            // Unpark under the lock: a waiter that finds itself dequeued
            // (in `dequeue`) then knows its token is already set.
            waiter.unpark();
        }
    }

    fn wake_all(&self) {
        let mut waiters = lock(&self.waiters);
        for waiter in waiters.drain(..) {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            waiter.unpark();
        }
    }

    /// Frees the slot of an admitted task that is about to start.
    pub(crate) fn release(&self) -> Released {
        let previous = self.state.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(previous & !CLOSED > 0, "release without an admitted task");
        if let Some(trigger) = &self.fill_trigger {
            if (previous & !CLOSED) - 1 == trigger.low {
                trigger.poke();
            }
        }
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.wake_one();
        }
        if previous == CLOSED | 1 {
            Released::LastAfterClose
        } else {
            Released::Open
        }
    }

    /// Refuses every later acquire and wakes every blocked producer.
    /// Returns `true` when nothing admitted is left to start.
    pub(crate) fn close(&self) -> bool {
        let previous = self.state.fetch_or(CLOSED, Ordering::SeqCst);
        self.wake_all();
        previous & !CLOSED == 0
    }
}
