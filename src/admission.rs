//! The bound: how many externally submitted tasks may be accepted and not
//! yet started, the slots reserved by permits, and the queue of producers
//! (blocked threads and pending futures) waiting for a slot.
//!
//! # Protocol
//!
//! One atomic word, `state`, packs a `CLOSED` bit with the count of
//! *taken* slots: those of tasks accepted from outside the pool and not
//! yet started, wherever they sit (the injector, or a worker's deque after
//! a batch steal), and those of permits not yet used or dropped.
//!
//! * **Acquire** (a producer): one compare-and-swap from `n` to `n + 1`,
//!   refused when `CLOSED` is set or `n == capacity`. Check and increment
//!   are one atomic step, so no interleaving of producers can exceed the
//!   bound, and an acquire is ordered before or after a close, never
//!   beside it: every acquired slot belongs to a task shutdown must drain.
//!   (A producer that takes over a held-back slot, below, checked `CLOSED`
//!   just before; the slot stays counted in the word, so its task is
//!   drained too.)
//! * **Release** (a worker, when it starts admitted tasks; a permit dropped
//!   unused; a cancelled waiter's grant): the slots of up to a few started
//!   tasks, which the worker *holds back* in a counter of its own until
//!   then (see [`Admission::start`]). It returns them at once when a
//!   producer waits, and before it looks for work beyond its own deque or
//!   waits on anything. A producer that finds the word full takes over a
//!   held-back slot if there is one (a CAS on that worker's counter): the
//!   word counts held-back slots, and admitted tasks are the word minus
//!   them, so the bound stays exact. While producers wait, a released slot
//!   is *granted* to the head waiter instead of being subtracted (below).
//!   Otherwise one `fetch_sub` frees them. If the word falls to
//!   `CLOSED | 0`, the last admitted task has started and the caller wakes
//!   every idle worker so they can exit.
//! * **Close**: `fetch_or(CLOSED)`, then every waiting producer is woken
//!   (without a grant) and finds the pool closed.
//!
//! A producer that finds the pool full first waits a few rounds (a slot
//! usually frees that fast: it yields its core if the queue is deep,
//! spins if it is small; see `acquire`), unless others already queue, and
//! then queues. While it waits, the worker sharing its core yields to it
//! once the word has drained to half the capacity ([`crate::handoff`]).
//!
//! # The waiters: one FIFO, slots granted in order
//!
//! Blocked threads and pending futures wait in one queue
//! ([`crate::waiters`]), each entry woken by its own signal (a parker, or
//! the `Waker` of its last poll). Every change to it happens under its
//! lock. A *grant* pops the head entry, marks it granted and wakes it; the
//! slot it gets stays counted in the word, now owned by that waiter, which
//! returns `Ok` without touching the word again. A release that finds
//! waiters (`len > 0`) grants its slots to them first, as long as the pool
//! is not closed, and subtracts only what is left. So a slot freed while
//! producers queue never passes through the word, and a producer that
//! arrives later cannot take it ahead of them: queued producers are served
//! in the order they queued, whatever their kind. (A producer that never
//! queued may still take a slot that reached the word while nobody was
//! queued: that barging keeps `try_submit` one CAS.)
//!
//! # Why a waiting producer never misses its slot
//!
//! A producer that finds the pool full queues itself (under the lock,
//! bumping `len`, a SeqCst read-modify-write), then tries to acquire once
//! more. A release does its `fetch_sub` (SeqCst) on the word and then reads
//! `len` (SeqCst). Both pairs are ordered in the single SeqCst order:
//! either the producer's second try sees the freed slot, or the release
//! sees `len > 0` and, under the lock, acquires on the head waiter's
//! behalf and grants it (refused only if another producer took the slot
//! first: its task will release it again later). If the producer's own
//! try and such a grant both succeed, it holds two slots and releases one
//! (`leave`), which grants it to the next waiter or frees it: never a
//! leak. A grant sets the flag before it wakes, and the parker keeps a
//! token, so a grant that lands before the thread parks is not lost. A
//! future stores its new waker, then looks at the flag again, so a grant
//! that woke the previous waker is not lost either.
//!
//! A waiter that stops waiting without its grant (a timeout, a close, a
//! dropped future) leaves the queue under the lock; if it is no longer
//! there, it was granted a slot or woken by the close, and the flag says
//! which. A granted thread that timed out keeps the slot and succeeds; a
//! dropped future that was granted releases the slot, which grants it to
//! the next waiter (a cancelled waiter passes its wake-up on) or frees it.
//! Its closure is dropped unrun, and nothing else is held.
//!
//! # Permits
//!
//! A permit is an acquired slot with no task yet. It stays counted in the
//! word, so it counts against the bound, graceful shutdown (which waits
//! for the word to reach `CLOSED | 0`) waits for it, and using it after
//! the close is sound: its acquire was ordered before the close. `permits`
//! counts the outstanding ones, and `admitted` leaves them out (they are
//! not queued work). Dropped unused, a permit releases its slot as above.
//!
//! `shutdown_now` does not wait for permits: it sets `permits_aborted`,
//! then the workers stop and `Shared::drain_unstarted` takes tasks until
//! `admitted` reads 0. A permit being used first decrements `permits`,
//! then reads the flag (both SeqCst); the drain's reads of the word and
//! then `permits` come after the flag's store. If the permit's decrement
//! comes first in the SeqCst order, the drain sees its slot as an admitted
//! task and waits for it: the permit either reads the flag set and
//! releases the slot itself, or pushes its task, which the drain then
//! takes. Otherwise the permit's read of the flag comes after the store and
//! sees it, so it drops the task and releases the slot without pushing.
//! Either way no task is pushed after the drain ended. `admitted` reads
//! the word before `permits`, and a permit leaving decrements `permits`
//! before it releases, so a concurrent read can be too high (the drain
//! looks once more), never too low.

use std::task::{Context, Poll};

use crossbeam_utils::{Backoff, CachePadded};

use crate::handoff::Handoff;
use crate::sync::{fence, Arc, AtomicBool, AtomicUsize, Instant, Ordering};
use crate::waiters::{Waiter, Waiters};

/// High bit of `state`: the pool accepts no more external tasks.
const CLOSED: usize = 1 << (usize::BITS - 1);
/// Rounds a producer that finds the pool full waits before it parks: a
/// `sched_yield` each when the queue is deep (see `acquire`), otherwise a
/// round of crossbeam's `Backoff::spin` (2^round spin hints, up to 64).
const PRODUCER_WAIT_ROUNDS: u32 = 11;

/// Whether a producer that finds the pool full waits those rounds at all:
/// not under loom, where waiting would only multiply the interleavings.
const WAIT_BEFORE_QUEUEING: bool = !cfg!(corepool_loom);

/// Capacity per worker from which a full-pool producer yields its core
/// instead of spinning (see `acquire`).
pub(crate) const YIELD_CAPACITY_PER_WORKER: usize = 64;

/// Most slots a worker holds back before returning them with one
/// `fetch_sub` (see `Admission::release_batch`). Under loom two, so that
/// the models' small capacities explore held slots and their reclaiming.
const MAX_RELEASE_BATCH: usize = if cfg!(corepool_loom) { 2 } else { 8 };

/// Capacity per worker for each slot a worker may hold back: all workers
/// together hold back less than an eighth of the capacity. Under loom
/// none is needed, so a model holds back up to `MAX_RELEASE_BATCH`.
const CAPACITY_PER_HELD_SLOT: usize = if cfg!(corepool_loom) { 0 } else { 8 };

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
    /// Producers (threads and futures) waiting for a slot, in order.
    waiters: Waiters,
    /// Permits granted and not yet used or dropped: their slots are
    /// counted in the word, not in `admitted`.
    permits: CachePadded<AtomicUsize>,
    /// Set by `shutdown_now`: a permit used from then on drops its task.
    permits_aborted: AtomicBool,
    /// Whether the queue is deep enough for a full-pool producer to yield.
    yield_while_full: bool,
    /// How many freed slots a worker may hold back (see `release_batch`).
    release_batch: usize,
    /// Per worker: slots of tasks it started and has not returned yet.
    /// Written by its worker, and by a producer that finds the word full
    /// and takes one of them over (`reclaim_held`).
    held: Box<[CachePadded<AtomicUsize>]>,
    /// The worker sharing a waiting producer's core hands it over
    /// (`crate::handoff`, `hand_over_core`).
    handoff: Handoff,
}

impl Admission {
    pub(crate) fn new(capacity: usize, workers: usize) -> Self {
        debug_assert!(capacity > 0 && capacity <= MAX_CAPACITY);
        let yield_while_full = capacity >= workers.saturating_mul(YIELD_CAPACITY_PER_WORKER);
        Admission {
            state: CachePadded::new(AtomicUsize::new(0)),
            capacity,
            waiters: Waiters::new(),
            permits: CachePadded::new(AtomicUsize::new(0)),
            permits_aborted: AtomicBool::new(false),
            yield_while_full,
            release_batch: (capacity / workers.saturating_mul(CAPACITY_PER_HELD_SLOT).max(1))
                .clamp(1, MAX_RELEASE_BATCH),
            held: (0..workers)
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
            handoff: Handoff::new(yield_while_full, workers),
        }
    }

    /// Called by `worker` when it returns the slots it held back: yields its
    /// core to a producer waiting on it, once per turn, when the bound has
    /// drained to the low-water mark (see `crate::handoff`). `true` when it
    /// yielded. Not at every start: the waiting count's line, which the
    /// producers write at each wait, would then be read for every task.
    fn hand_over_core(&self, worker: usize) -> bool {
        // The low-water mark is half the capacity: the producer then
        // refills half the queue per turn. At three quarters the turns came
        // twice as often and the imbalance burst took 1.013-1.023x
        // threadpool's makespan, at half 1.000-1.017x (paired runs,
        // docs/tuning.md, "The producer's wait on a full queue"). The word
        // is read only while a producer waits.
        let yield_core = self.handoff.is_waiting()
            && self.state.load(Ordering::Relaxed) & !CLOSED <= self.capacity / 2
            && self.handoff.take_turn(worker);
        if yield_core {
            crate::sync::thread::yield_now();
        }
        yield_core
    }

    /// Counts the start of an admitted task by `worker`. Its slot is held
    /// back, and returned together with the next ones in one `fetch_sub`,
    /// once `release_batch` are held, or at once when a producer waits.
    /// One `fetch_sub` per task on the word every producer CASes kept that
    /// line bouncing between the producer and the workers. Sized so that
    /// all workers together hold back less than an eighth of the capacity;
    /// 1 (every slot returned at once) under 16 per worker.
    pub(crate) fn start(&self, worker: usize) -> Released {
        if self.release_batch == 1 {
            return self.release(1);
        }
        // The held-back counters only count: every access is a
        // read-modify-write of one location, whose total order is all the
        // bound needs, and nothing is published through them (the word's
        // SeqCst RMWs pair with the waiters' count). Relaxed suffices.
        let held = self.held[worker].fetch_add(1, Ordering::Relaxed) + 1;
        if held >= self.release_batch || self.waiters.len_hint() > 0 {
            let released = self.return_held(worker);
            self.hand_over_core(worker);
            released
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
        for held in self.held.iter() {
            let mut current = held.load(Ordering::Relaxed);
            while current > 0 {
                match held.compare_exchange_weak(
                    current,
                    current - 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
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
    /// read one by one, not in one instant). Slots held by unused permits
    /// are not counted: read after the word, so that a permit leaving
    /// while this reads can only make it too high, never too low (which
    /// `Shared::drain_unstarted` relies on).
    pub(crate) fn admitted(&self) -> usize {
        let word = self.state.load(Ordering::SeqCst) & !CLOSED;
        let held: usize = self.held.iter().map(|h| h.load(Ordering::Relaxed)).sum();
        let permits = self.permits.load(Ordering::SeqCst);
        word.saturating_sub(held).saturating_sub(permits)
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

    /// Takes a slot even when the pool is full, refused only once it is
    /// closed: a permit reserved from inside the pool, which must never
    /// wait (the workers it would wait for include the caller). The word
    /// may then exceed `capacity` by the permits so reserved, as a
    /// worker's own deque is not bounded either.
    pub(crate) fn acquire_unbounded(&self) -> Result<(), Refused> {
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            if current & CLOSED != 0 {
                return Err(Refused::Closed);
            }
            if current + 1 >= CLOSED {
                return Err(Refused::Full);
            }
            match self.state.compare_exchange_weak(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes a slot without waiting.
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
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
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
        // queues only spin. See docs/tuning.md ("The producer's wait on a
        // full queue"). Not under loom (no rounds there). Not when others
        // already queue either: freed slots go to them, not to the word.
        let mut turn = self.handoff.begin_wait();
        if WAIT_BEFORE_QUEUEING && self.waiters.len_hint() == 0 {
            let backoff = Backoff::new();
            for _ in 0..PRODUCER_WAIT_ROUNDS {
                if self.yield_while_full {
                    crate::sync::thread::yield_now();
                    if let Some(turn) = &mut turn {
                        turn.after_yield();
                    }
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
        let me = Waiter::thread();
        if let Some(done) = self.register(&me) {
            return done;
        }
        loop {
            let woken = match deadline {
                None => {
                    me.park();
                    true
                }
                Some(deadline) => me.park_until(deadline),
            };
            if me.is_granted() {
                return Ok(());
            }
            if self.is_closed() {
                return self.leave(&me, Err(Refused::Closed));
            }
            if !woken {
                // Timed out. One last try: the slot may have freed just now.
                let last_try = match self.try_acquire() {
                    Err(Refused::Full) => Err(Refused::TimedOut),
                    done => done,
                };
                return self.leave(&me, last_try);
            }
            // Woken for nothing (a stale parker token): still queued, in
            // the same place.
        }
    }

    /// Queues `me`, then tries once more (see the module docs for why).
    /// `Some` when that settled it: `me` has left the queue.
    fn register(&self, me: &Arc<Waiter>) -> Option<Result<(), Refused>> {
        self.waiters.push(me);
        // Pairs with the release's `fetch_sub` then `len` load: one of the
        // two sides sees the other (see the module docs).
        fence(Ordering::SeqCst);
        match self.try_acquire() {
            Err(Refused::Full) => None,
            done => Some(self.leave(me, done)),
        }
    }

    /// `me` stops waiting with `outcome`. If a slot was granted to it
    /// meanwhile, that slot is not lost: it is the outcome when `me` has
    /// none, and handed on to the next waiter when `me` took one itself.
    fn leave(&self, me: &Arc<Waiter>, outcome: Result<(), Refused>) -> Result<(), Refused> {
        if self.waiters.remove(me) || !me.is_granted() {
            return outcome;
        }
        if outcome.is_ok() {
            // Two slots: ours stays counted, the other goes on. Not the
            // last one after a close (ours is still counted).
            let released = self.release(1);
            debug_assert_eq!(released, Released::Open);
        }
        Ok(())
    }

    /// One poll of an asynchronous acquire: `waiter` is `None` before the
    /// first poll and while not queued. `Pending` leaves `waiter` queued,
    /// to be woken through `cx`'s waker; a ready result leaves it `None`.
    pub(crate) fn poll_acquire(
        &self,
        waiter: &mut Option<Arc<Waiter>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Refused>> {
        let Some(me) = waiter.take() else {
            match self.try_acquire() {
                Err(Refused::Full) => {}
                done => return Poll::Ready(done),
            }
            let me = Waiter::task(cx.waker());
            return match self.register(&me) {
                Some(done) => Poll::Ready(done),
                None => {
                    *waiter = Some(me);
                    Poll::Pending
                }
            };
        };
        if !me.is_granted() && !self.is_closed() {
            me.set_waker(cx.waker());
            // A grant or close between the look above and the new waker
            // woke the old one: look again.
            if !me.is_granted() && !self.is_closed() {
                *waiter = Some(me);
                return Poll::Pending;
            }
        }
        if me.is_granted() {
            return Poll::Ready(Ok(()));
        }
        Poll::Ready(self.leave(&me, Err(Refused::Closed)))
    }

    /// An asynchronous acquire is dropped while queued: it gives up its
    /// place, and a slot already granted to it goes to the next waiter
    /// (or back to the word). The caller wakes idle workers on
    /// `LastAfterClose`.
    pub(crate) fn cancel(&self, waiter: Arc<Waiter>) -> Released {
        if !self.waiters.remove(&waiter) && waiter.is_granted() {
            self.release(1)
        } else {
            Released::Open
        }
    }

    /// Frees the slots of `started` admitted tasks that have started (or
    /// are about to), or of permits dropped unused. While producers queue,
    /// each slot goes straight to the next of them (it stays counted in the
    /// word, now theirs), so that newcomers cannot take it first.
    pub(crate) fn release(&self, started: usize) -> Released {
        debug_assert!(started > 0);
        let mut freed = started;
        // A hint suffices here: a producer this look misses is seen by the
        // SeqCst look after the `fetch_sub`.
        if self.waiters.len_hint() > 0 {
            freed -= self
                .waiters
                .grant(started, || self.state.load(Ordering::SeqCst) & CLOSED == 0);
            if freed == 0 {
                return Released::Open;
            }
        }
        let previous = self.state.fetch_sub(freed, Ordering::SeqCst);
        let before = previous & !CLOSED;
        debug_assert!(before >= freed, "release without an admitted task");
        if self.waiters.len() > 0 {
            // A producer queued after our first look: take the freed slots
            // back for the head waiters, as many as are still free.
            self.waiters.grant(freed, || self.try_acquire().is_ok());
        }
        if previous == CLOSED | freed {
            Released::LastAfterClose
        } else {
            Released::Open
        }
    }

    /// Refuses every later acquire and wakes every waiting producer.
    /// Returns `true` when nothing admitted is left to start.
    pub(crate) fn close(&self) -> bool {
        let previous = self.state.fetch_or(CLOSED, Ordering::SeqCst);
        self.waiters.wake_all();
        previous & !CLOSED == 0
    }

    /// A permit was granted: its slot, taken by an acquire, is now held by
    /// the permit (counted in the word, not in `admitted`).
    pub(crate) fn add_permit(&self) {
        self.permits.fetch_add(1, Ordering::SeqCst);
    }

    /// A permit is used: its slot becomes an ordinary admitted slot, whose
    /// task the caller pushes, unless `shutdown_now` began (`true`): then
    /// the caller drops the task and releases the slot.
    pub(crate) fn use_permit(&self) -> bool {
        // Decrement, then look: pairs with `abort_permits` then the drain's
        // `admitted` (see the module docs).
        self.permits.fetch_sub(1, Ordering::SeqCst);
        self.permits_aborted.load(Ordering::SeqCst)
    }

    /// A permit is dropped unused: its slot is freed.
    pub(crate) fn drop_permit(&self) -> Released {
        self.permits.fetch_sub(1, Ordering::SeqCst);
        self.release(1)
    }

    /// `shutdown_now` began: a permit used from now on drops its task.
    pub(crate) fn abort_permits(&self) {
        self.permits_aborted.store(true, Ordering::SeqCst);
    }
}

#[cfg(all(test, not(corepool_loom)))]
mod tests;

/// Component models of `Admission` alone, without a pool or workers: a
/// producer is a loom thread calling `try_acquire` or `acquire`, a worker
/// starting a task is a `release(1)`. A lost wake-up is a producer parked
/// for good, which loom reports as a deadlock. Run by `loom-tests/run.sh`
/// before the whole-pool models (see docs/verification.md).
#[cfg(all(test, corepool_loom))]
#[path = "loom_models/admission.rs"]
mod loom_tests;
