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
//!   (A producer that takes over a held-back slot, below, checked `CLOSED`
//!   just before; the slot stays counted in the word, so its task is
//!   drained too.)
//! * **Release** (a worker, when it starts admitted tasks): one
//!   `fetch_sub` for the slots of up to a few started tasks, which the
//!   worker *holds back* in a counter of its own until then (see
//!   [`Admission::start`]). It returns them at once when a producer waits,
//!   and before it looks for work beyond its own deque or waits on
//!   anything. A producer that finds the word full takes over a held-back
//!   slot if there is one (a CAS on that worker's counter): the word
//!   counts held-back slots, and admitted tasks are the word minus them,
//!   so the bound stays exact. If producers are registered as waiting, the
//!   worker wakes one of them per freed slot (no thundering herd). If the
//!   word falls to `CLOSED | 0`, the last admitted task has started and the
//!   caller wakes every idle worker so they can exit.
//! * **Close**: `fetch_or(CLOSED)`, then every waiting producer is woken and
//!   finds the pool closed.
//!
//! A producer that finds the pool full first waits a few rounds (a slot
//! usually frees that fast: it yields its core if the queue is deep,
//! spins if it is small; see `acquire`), and only then queues.
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
/// Rounds a producer that finds the pool full waits before it parks: a
/// `sched_yield` each when the queue is deep (see `acquire`), otherwise a
/// round of crossbeam's `Backoff::spin` (2^round spin hints, up to 64).
const PRODUCER_WAIT_ROUNDS: u32 = 11;

/// Capacity per worker from which a full-pool producer yields its core
/// instead of spinning (see `acquire`).
pub(crate) const YIELD_CAPACITY_PER_WORKER: usize = 64;

/// Most slots a worker holds back before returning them with one
/// `fetch_sub` (see `Admission::release_batch`).
const MAX_RELEASE_BATCH: usize = 8;

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
    /// How many freed slots a worker may hold back (see `release_batch`).
    release_batch: usize,
    /// Per worker: slots of tasks it started and has not returned yet.
    /// Written by its worker, and by a producer that finds the word full
    /// and takes one of them over (`reclaim_held`).
    held: Box<[CachePadded<AtomicUsize>]>,
}

impl Admission {
    pub(crate) fn new(capacity: usize, workers: usize, fill_trigger: Option<FillTrigger>) -> Self {
        debug_assert!(capacity > 0 && capacity <= MAX_CAPACITY);
        let alerting = fill_trigger.is_some();
        Admission {
            state: CachePadded::new(AtomicUsize::new(0)),
            capacity,
            waiting: CachePadded::new(AtomicUsize::new(0)),
            waiters: Mutex::new(VecDeque::new()),
            fill_trigger,
            yield_while_full: capacity >= workers.saturating_mul(YIELD_CAPACITY_PER_WORKER),
            // A fill alert watches the word land on its marks, which needs
            // every slot returned as its task starts: no holding back then.
            release_batch: if alerting {
                1
            } else if crate::sync::IS_LOOM {
                // Small enough for the models' capacities, so that they
                // explore held slots and their reclaiming too.
                capacity.min(2)
            } else {
                (capacity / workers.saturating_mul(8).max(1)).clamp(1, MAX_RELEASE_BATCH)
            },
            held: (0..workers)
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
        }
    }

    /// Counts the start of an admitted task by `worker`. Its slot is held
    /// back, and returned together with the next ones in one `fetch_sub`,
    /// once `release_batch` are held, or at once when a producer waits.
    /// One `fetch_sub` per task on the word every producer CASes kept that
    /// line bouncing between the producer and the workers. Sized so that
    /// all workers together hold back less than an eighth of the capacity;
    /// 1 (every slot returned at once) under 16 per worker, and when a
    /// fill alert is configured.
    pub(crate) fn start(&self, worker: usize) -> Released {
        if self.release_batch == 1 {
            return self.release(1);
        }
        // The held-back counters only count: every access is a
        // read-modify-write of one location, whose total order is all the
        // bound needs, and nothing is published through them (the word's
        // SeqCst RMWs pair with `waiting`). Relaxed suffices.
        let held = self.held[worker].fetch_add(1, Ordering::Relaxed) + 1;
        if held >= self.release_batch || self.waiting.load(Ordering::Relaxed) > 0 {
            self.return_held(worker)
        } else {
            Released::Open
        }
    }

    /// Returns every slot `worker` holds back. A worker calls it before it
    /// looks for work beyond its own deque and before it waits on anything,
    /// so slots are held back only while their worker is running tasks.
    pub(crate) fn return_held(&self, worker: usize) -> Released {
        if self.held[worker].load(Ordering::Relaxed) == 0 {
            return Released::Open;
        }
        match self.held[worker].swap(0, Ordering::Relaxed) {
            0 => Released::Open,
            held => self.release(held),
        }
    }

    /// A producer that found the word full takes over one slot some worker
    /// holds back: that slot's task has started, so the bound has room.
    /// The word is unchanged (one task started, one admitted) and the
    /// worker returns one slot less. Without this, held-back slots would
    /// make the bound stricter while their worker runs a long task.
    fn reclaim_held(&self) -> bool {
        // SEEDED BUG (verification only): held-back slots are never taken
        // over, so the bound is stricter than `capacity` while they are held.
        #[cfg(corepool_seed_bug = "no_reclaim")]
        return false;
        #[cfg_attr(corepool_seed_bug = "no_reclaim", allow(unreachable_code))]
        for held in self.held.iter() {
            let mut current = held.load(Ordering::Relaxed);
            while current > 0 {
                match held.compare_exchange_weak(
                    current,
                    current - 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        if let Some(trigger) = &self.fill_trigger {
                            trigger.poke();
                        }
                        return true;
                    }
                    Err(actual) => current = actual,
                }
            }
        }
        false
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Admitted tasks not yet started (a statistic: slots held back are
    /// read one by one, not in one instant).
    pub(crate) fn admitted(&self) -> usize {
        let held: usize = self.held.iter().map(|h| h.load(Ordering::Relaxed)).sum();
        (self.state.load(Ordering::Relaxed) & !CLOSED).saturating_sub(held)
    }

    /// The admission word's count: admitted tasks not yet started, plus
    /// the slots held back (their tasks have started). `Pool::wait_idle`
    /// reads it before the workers' `admitted_started`: a task that left
    /// this count was counted there first (`WorkerContext::execute`).
    pub(crate) fn admitted_and_held(&self) -> usize {
        self.state.load(Ordering::SeqCst) & !CLOSED
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
                return if self.reclaim_held() {
                    Ok(())
                } else {
                    Err(Refused::Full)
                };
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
        // its next task: wait briefly before paying for a park and a
        // wake-up, as crossbeam-channel's bounded send does. With a queue
        // deep enough not to run dry meanwhile, wait by yielding, which
        // hands the core to the worker sharing it: spinning there only
        // took back one slot at a time, as the other workers freed them,
        // on a core whose own worker then stood idle (the producer's share
        // of an imbalance burst's CPU samples 6.7-7.2 % with crossbeam's
        // spin-then-yield `snooze`, 5.1-5.6 % with yields only; a first
        // round's yields after spinning made 500k submissions take 0.73x
        // the time). With a queue of 20 the workers drained it during a
        // yield, went to sleep, and the run took 2.8x the time, so small
        // queues only spin. See docs/benchmarks.md ("The producer's wait on
        // a full queue"). Not under loom, where waiting would only multiply
        // the interleavings.
        if !crate::sync::IS_LOOM {
            let backoff = Backoff::new();
            for _ in 0..PRODUCER_WAIT_ROUNDS {
                if self.yield_while_full {
                    crate::sync::thread::yield_now();
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
        self.wake(1);
    }

    /// Wakes up to `slots` waiting producers, one per freed slot.
    fn wake(&self, slots: usize) {
        let mut waiters = lock(&self.waiters);
        for _ in 0..slots {
            let Some(waiter) = waiters.pop_front() else {
                break;
            };
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

    /// Frees the slots of `started` admitted tasks that have started (or
    /// are about to).
    pub(crate) fn release(&self, started: usize) -> Released {
        debug_assert!(started > 0);
        let previous = self.state.fetch_sub(started, Ordering::SeqCst);
        let before = previous & !CLOSED;
        debug_assert!(before >= started, "release without an admitted task");
        if let Some(trigger) = &self.fill_trigger {
            if before > trigger.low && before - started <= trigger.low {
                trigger.poke();
            }
        }
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.wake(started);
        }
        if previous == CLOSED | started {
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
