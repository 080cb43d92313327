//! The worker thread: where a task is found, and where it runs.
//!
//! # Finding work
//!
//! A worker looks, in order:
//!
//! 1. every [`GLOBAL_QUEUE_INTERVAL`]th time, the injector first, so that
//!    injected work is served even while tasks keep spawning locally; and
//!    half a period later, one task from another worker's deque, in turn,
//!    so that a batch held by a descheduled worker does not wait for the
//!    others to run out of work;
//! 2. its own deque (LIFO: the task it spawned last is hottest in cache);
//! 3. the injector, taking a batch into its own deque (after a short pause
//!    if its last take there found a single task: see
//!    [`INJECTOR_PACE`]);
//! 4. as a *searcher* (see [`crate::sleep`]), the oldest task of another
//!    worker's deque, nearest cores first, for a few rounds, yielding between them
//!    (in large pools each round visits the nearest workers and a rotating
//!    window of the others, not all of them), and for at least
//!    [`STREAM_WINDOW`] while it is catching a stream of tasks from outside;
//! 5. then it parks, by the protocol in [`crate::sleep`].
//!
//! # Running
//!
//! An admitted task gives its slot back *before* it runs ("accepted and not
//! yet started" is what the bound counts), which may wake a blocked
//! producer. The closure runs under `catch_unwind`: a panic is counted and
//! passed to the pool's panic handler, and the worker carries on, on the
//! same core.
//!
//! # Exit
//!
//! After shutdown began, a worker exits when its own deque is empty, a
//! search found nothing, and every admitted task has started. Its own deque
//! can only be filled by itself, so nothing is left behind.

use std::cell::{Cell, UnsafeCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use crate::admission::Released;
use crate::budget::{DelayBudget, Probe};
use crate::metrics::bump;
use crate::registry::{call_guarded, drop_payload, nanos_between, Shared};
use crate::sleep::{Parked, Recheck};
use crate::sync::{lock, thread, thread_local, wait, Arc, Instant, Ordering, Steal, Worker};
use crate::task::{JobRef, Task};

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

/// Most tasks taken from the injector in one steal (crossbeam moves at
/// most 32 in one batch anyway). Workers steal from each other one task
/// at a time (`steal_from`).
const STEAL_BATCH: usize = 32;

/// How long a worker whose last take from the injector found a single
/// task waits before the next take (see `take_from_injector`): long
/// enough for a batch to build up behind a slow producer, short enough
/// that a task arriving meanwhile barely waits (1, 2 and 4 µs measured:
/// docs/benchmarks.md, "The tuning the figures support").
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
/// take turns on the producer's core (docs/benchmarks.md, "The tuning the figures support").
/// Under loom one round: spinning only multiplies the interleavings.
const SEARCH_ROUNDS: u32 = if cfg!(corepool_loom) { 1 } else { 16 };

/// How long a searcher that is catching a stream from outside (its last
/// search found a task in the injector) keeps searching before it parks,
/// however quickly its rounds go by (see `search`).
///
/// Rounds alone let the worker that shares a busy producer's core
/// (where each yield runs the producer first) outlast the one with a core
/// to itself, catch every task, and keep the producer off its core; a
/// window in time lets the worker on the free core take the stream. It
/// applies only while tasks come from outside at least as often as a
/// search lasts, so a sparse stream still parks after [`SEARCH_ROUNDS`];
/// the price is a worker awake through gaps of up to 20 µs in a dense one
/// (docs/benchmarks.md, "The tuning the figures support").
///
/// Under loom zero, so a search lasts [`SEARCH_ROUNDS`]: time does not
/// pass in a model.
const STREAM_WINDOW: Duration = if cfg!(corepool_loom) {
    Duration::ZERO
} else {
    Duration::from_micros(20)
};

/// The state of the worker running on this thread.
pub(crate) struct WorkerContext {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) local: Worker<Task>,
    /// Whose turn it is in the periodic balancing steal.
    pub(crate) balance_turn: Cell<usize>,
    /// Whether this worker's last take from the injector found a single
    /// task (see `take_from_injector`).
    pub(crate) took_single: Cell<bool>,
    /// Whether this worker's last search found a task in the injector:
    /// tasks from outside arrive about as fast as a search lasts (see
    /// [`STREAM_WINDOW`]).
    pub(crate) catching_stream: Cell<bool>,
    /// The second closures of the `join`s whose first closure is running
    /// on this worker, oldest first. The oldest `offered_frames` of them
    /// have been pushed onto `local`; the rest no other worker can see
    /// (`crate::join`, "When the second closure is offered").
    ///
    /// An `UnsafeCell`, not a `RefCell`: the borrow flag's checks cost
    /// fine-grained joins ~10 % of their time (docs/benchmarks.md,
    /// "fork-join"). Sound because a `WorkerContext`
    /// never leaves its thread (it is `!Sync`, behind an `Rc`), and each
    /// access below is one call on the `Vec` that runs no other code, so
    /// no two references to it ever overlap.
    pub(crate) join_frames: UnsafeCell<Vec<JobRef>>,
    pub(crate) offered_frames: Cell<usize>,
    /// An upper bound on the tasks of this worker's deque pushed since its
    /// innermost wait began (see `crate::wait`, "What a waiter runs").
    pub(crate) region_new: Cell<usize>,
    /// How many entries of this worker's `Pieces` are published.
    pub(crate) piece_depth: Cell<usize>,
    /// How many wait regions are open on this worker's stack (`yield_now`
    /// and the FIFO trampolines run less inside one).
    pub(crate) wait_depth: Cell<usize>,
    /// The number of the next `spawn_fifo` entry of this worker.
    pub(crate) fifo_seq: Cell<u64>,
    /// The number of the first `spawn_fifo` entry pushed inside the
    /// innermost wait region.
    pub(crate) fifo_floor: Cell<u64>,
    /// This worker's samples for the delay budget (`crate::budget`).
    pub(crate) budget_probe: Probe,
}

// The context of the worker running on this thread; null on any other
// thread. `WorkerContext::run` sets it from the `Rc` it holds and clears
// it before that `Rc` drops (`ClearCurrent`). A plain pointer needs no
// destructor: reading it is one load, and it still reads (null) while the
// thread's locals are being destroyed. (loom's `thread_local!` does not
// take the `const { .. }` form.)
#[cfg(not(corepool_loom))]
thread_local! {
    static CURRENT: Cell<*const WorkerContext> = const { Cell::new(std::ptr::null()) };
}
#[cfg(corepool_loom)]
thread_local! {
    static CURRENT: Cell<*const WorkerContext> = Cell::new(std::ptr::null());
}

/// Calls `f` with the worker running on this thread, of whichever pool,
/// without cloning its context.
///
/// Like every access to corepool's thread-local, it degrades to "not
/// inside a worker" once the thread's locals are being destroyed (a `Pool`
/// kept in a user's `thread_local!` is dropped then), instead of panicking
/// there, which would abort the process.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&WorkerContext>) -> R) -> R {
    let current = CURRENT.try_with(Cell::get).unwrap_or(std::ptr::null());
    // SAFETY: a non-null pointer is the context of the `Rc` that
    // `WorkerContext::run` holds until after it clears the pointer, and all
    // a worker runs runs inside `run`; `f` cannot keep the reference.
    let current = unsafe { current.as_ref() };
    f(current)
}

/// The worker running on this thread, of whichever pool.
pub(crate) fn current_any() -> Option<Rc<WorkerContext>> {
    let current = CURRENT.try_with(Cell::get).unwrap_or(std::ptr::null());
    if current.is_null() {
        return None;
    }
    // SAFETY: a non-null pointer is `Rc::as_ptr` of the `Rc` that
    // `WorkerContext::run` holds until after it clears the pointer, so it
    // points into a live `Rc` allocation; taking one more count and making
    // an `Rc` of it is a clone of that `Rc`.
    unsafe {
        Rc::increment_strong_count(current);
        Some(Rc::from_raw(current))
    }
}

/// The worker running on this thread, if it belongs to the pool that owns
/// `shared`.
///
/// The pool is recognized by identity, not by "some worker": a worker of
/// another pool submitting here goes through the bound like anyone else.
pub(crate) fn current(shared: &Shared) -> Option<Rc<WorkerContext>> {
    if is_inside(shared) {
        current_any()
    } else {
        None
    }
}

/// Whether this thread is a worker of the pool that owns `shared`.
pub(crate) fn is_inside(shared: &Shared) -> bool {
    with_current(|current| current.is_some_and(|ctx| std::ptr::eq(&*ctx.shared, shared)))
}

/// Clears `CURRENT` when `WorkerContext::run` ends, however it ends,
/// before the context it points into is dropped.
struct ClearCurrent;

impl Drop for ClearCurrent {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|current| current.set(std::ptr::null()));
    }
}

/// Counts a panic that a task caught itself (a `spawn` task delivers its
/// panic to its `JoinHandle`, not to the panic handler).
pub(crate) fn note_panic() {
    with_current(|current| {
        if let Some(ctx) = current {
            bump(&ctx.shared.counters[ctx.index].panicked, 1);
        }
    });
}

/// Runs `body` as a piece of `region` on this thread's worker, if it is
/// one: published for leapfrogging when the worker's deque is empty (see
/// `crate::wait`).
#[inline]
pub(crate) fn in_piece<R>(region: usize, body: impl FnOnce() -> R) -> R {
    with_current(|current| match current {
        Some(worker) => {
            let depth = worker.enter_piece(region);
            let result = body();
            worker.exit_piece(depth);
            result
        }
        None => body(),
    })
}

impl WorkerContext {
    pub(crate) fn new(index: usize, shared: Arc<Shared>, local: Worker<Task>) -> Self {
        WorkerContext {
            index,
            shared,
            local,
            balance_turn: Cell::new(0),
            took_single: Cell::new(false),
            catching_stream: Cell::new(false),
            join_frames: UnsafeCell::new(Vec::new()),
            offered_frames: Cell::new(0),
            region_new: Cell::new(0),
            piece_depth: Cell::new(0),
            wait_depth: Cell::new(0),
            fifo_seq: Cell::new(0),
            fifo_floor: Cell::new(0),
            budget_probe: Probe::default(),
        }
    }

    /// `corepool::yield_now` on this worker: runs one task, if there is
    /// one it may run here (see `docs/design.md`, "Yielding"). Returns
    /// whether it ran one.
    pub(crate) fn yield_one(&self) -> bool {
        if self.wait_depth.get() > 0 {
            // Inside a wait: only the innermost region's own tasks.
            return match self.pop_region_task() {
                Some(task) => {
                    self.execute(task);
                    true
                }
                None => false,
            };
        }
        if self.run_broadcasts() {
            return true;
        }
        let task = self
            .pop_local()
            .or_else(|| self.steal_from_injector())
            .or_else(|| self.steal_from_workers());
        match task {
            Some(task) => {
                self.execute(task);
                true
            }
            None => false,
        }
    }

    /// Pushes a task spawned by a task running on this worker onto the
    /// worker's own deque, where the others can steal it.
    pub(crate) fn push(&self, task: Task) {
        let backlog = !self.local.is_empty();
        // Before the push: a thief that runs the task and counts it
        // finished must find it counted here (`Shared::is_idle`).
        bump(&self.shared.counters[self.index].pushed, 1);
        self.local.push(task);
        self.region_new.set(self.region_new.get() + 1);
        self.shared.sleep.notify_work(|| backlog);
    }

    /// The worker's main loop; returns when the pool has shut down and
    /// this worker has nothing left to run.
    pub(crate) fn run(self) {
        let ctx = Rc::new(self);
        let _ = CURRENT.try_with(|current| current.set(Rc::as_ptr(&ctx)));
        // Declared after `ctx`, so dropped before it, even in an unwind.
        let _clear = ClearCurrent;
        if let Some(hook) = &ctx.shared.hooks.on_start {
            // A panicking hook must not take the worker down.
            call_guarded(|| hook(ctx.index));
        }
        ctx.main_loop();
        // Shares posted before the inbox closes run here; later ones run on
        // their broadcaster's thread (`crate::broadcast`).
        if let Some(inbox) = ctx.shared.inboxes.get(ctx.index) {
            for share in inbox.close() {
                share.run(ctx.index, &ctx.shared);
            }
        }
        // This thread is no worker any more: a submission from the stop
        // hook must go through the bound and be refused (the pool is
        // closed), not land on a deque nobody will look at again.
        let _ = CURRENT.try_with(|current| current.set(std::ptr::null()));
        if let Some(hook) = &ctx.shared.hooks.on_stop {
            call_guarded(|| hook(ctx.index));
        }
        let shared = &ctx.shared;
        *lock(&shared.exited) += 1;
        shared.exited_cvar.notify_all();
        shared.notify_idle_waiters();
    }

    /// Pops the newest task of this worker's own deque.
    #[inline]
    pub(crate) fn pop_local(&self) -> Option<Task> {
        let task = self.local.pop();
        if task.is_some() {
            self.region_new.set(self.region_new.get().saturating_sub(1));
        }
        task
    }

    /// This worker's slot in its pool: below `workers` for a worker, the
    /// slot after them for a spare (`corepool::current_thread_index`).
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// The active workers of this worker's pool
    /// (`corepool::current_num_threads`).
    pub(crate) fn active_workers(&self) -> usize {
        self.shared.active_workers()
    }

    /// This worker's pool.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The identity of this worker's pool: the address of its shared state.
    pub(crate) fn pool_id(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }

    fn main_loop(&self) {
        let shared = &*self.shared;
        let counters = &shared.counters[self.index];
        let work_visible = || self.work_visible();
        let mut tick: u32 = 0;
        let mut searching = false;
        let mut awake_since = Instant::now();
        loop {
            if self.broadcast_pending() {
                // A share may be long: not counted as a searcher meanwhile,
                // so that pushes still wake a sleeper (`crate::sleep`).
                if searching {
                    searching = false;
                    shared.sleep.stop_searching(work_visible);
                }
                self.run_broadcasts();
            }
            if self.should_leave() {
                self.return_held_slots();
                self.end_budget_interval();
                if searching {
                    searching = false;
                    shared.sleep.stop_searching(work_visible);
                }
                if shared.is_aborting() {
                    // shutdown_now: leave every unstarted task where it is;
                    // the caller collects them once all workers have exited.
                    return;
                }
                // Returns when reactivated, or when the pool closes: then
                // this worker drains and exits like the others.
                self.retire();
                continue;
            }
            tick = tick.wrapping_add(1);
            if let Some(task) = self.find_nearby(tick) {
                if searching {
                    searching = false;
                    shared.sleep.stop_searching(work_visible);
                }
                self.execute(task);
                continue;
            }
            // Nothing close by: before looking further or sleeping, give
            // the bound back the slots of the tasks already started.
            self.return_held_slots();
            self.end_budget_interval();
            if !searching {
                searching = shared.sleep.try_start_searching();
            }
            if searching {
                if let Some(task) = self.search() {
                    searching = false;
                    shared.sleep.stop_searching(work_visible);
                    self.execute(task);
                    continue;
                }
            }
            bump(&counters.parks, 1);
            let recheck = || {
                if self.should_leave() {
                    Recheck::Exit
                } else if self.broadcast_pending() {
                    // Run at the top of the loop.
                    Recheck::Work(None)
                } else if let Some(task) = self
                    .steal_from_injector()
                    .or_else(|| self.steal_from_workers())
                {
                    Recheck::Work(Some(task))
                } else if shared.admission.is_closed_and_drained() {
                    Recheck::Exit
                } else {
                    // About to sleep for real: it may have run the last
                    // task, so `Pool::wait_idle` looks again.
                    shared.notify_idle_waiters();
                    // Account the time awake.
                    let now = Instant::now();
                    bump(&counters.busy_ns, nanos_between(awake_since, now));
                    awake_since = now;
                    Recheck::Nothing
                }
            };
            match shared
                .sleep
                .park(self.index, searching, recheck, work_visible)
            {
                Parked::Found {
                    item,
                    searching: now,
                } => {
                    if now {
                        shared.sleep.stop_searching(work_visible);
                    }
                    searching = false;
                    if let Some(task) = item {
                        self.execute(task);
                    }
                }
                Parked::Woken => {
                    awake_since = Instant::now();
                    searching = true;
                }
                Parked::Exit => {
                    // Counted as neither searching nor sleeping now.
                    searching = false;
                    if shared.admission.is_closed_and_drained() && !self.should_leave() {
                        return;
                    }
                    // Abort or retire: handled at the top of the loop.
                }
            }
        }
    }

    /// Whether any queue of the pool holds a task (its own deque included).
    /// Only for the hand-on of `crate::sleep`'s rule 4: O(workers) loads,
    /// paid by the last searcher while someone sleeps.
    fn work_visible(&self) -> bool {
        !self.shared.injector.is_empty() || self.shared.stealers.iter().any(|s| !s.is_empty())
    }

    /// Whether this worker must stop taking tasks: `shutdown_now`, or it
    /// was retired by `set_workers`.
    ///
    /// Retirement does not apply once the pool is closed: from then on every
    /// worker drains, so that tasks a retiring worker moved to the injector
    /// just before the close are still run before the last worker exits.
    fn should_leave(&self) -> bool {
        let shared = &*self.shared;
        shared.is_aborting()
            || (!shared.is_active_slot(self.index) && !shared.admission.is_closed())
    }

    /// Retires this worker: its queued tasks go to the injector, where the
    /// active workers take them, and it waits until it is reactivated or
    /// the pool closes.
    fn retire(&self) {
        let shared = &*self.shared;
        let mut moved = false;
        while let Some(task) = self.local.pop() {
            shared.injector.push(task);
            moved = true;
        }
        if moved {
            shared.sleep.notify_work(|| true);
        }
        // It may have run the last task: `Pool::wait_idle` looks again.
        shared.notify_idle_waiters();
        let retired = || {
            shared.admission.is_closed()
                || shared.is_aborting()
                || shared.is_active_slot(self.index)
                || self.broadcast_pending()
        };
        if self.index >= shared.core_slots {
            // A spare waits on its own parker, so that each blocked worker
            // wakes one spare (`start_spare`), not every retired thread.
            // The checks read what the waker wrote before its unpark, and
            // the parker keeps the token.
            while !retired() {
                self.wait_parker().park();
            }
            return;
        }
        let mut guard = lock(&shared.resize);
        loop {
            if shared.admission.is_closed()
                || shared.is_aborting()
                || shared.is_active_slot(self.index)
                || self.broadcast_pending()
            {
                return;
            }
            guard = wait(&shared.resize_cvar, guard);
        }
    }

    /// Steps 1 to 3: the fair injector check, the own deque, the injector.
    fn find_nearby(&self, tick: u32) -> Option<Task> {
        match tick % GLOBAL_QUEUE_INTERVAL {
            0 => {
                if let Some(task) = self.steal_from_injector() {
                    return Some(task);
                }
            }
            // Half a period later, one other worker's deque: a worker that
            // is descheduled (its core taken by another process) would
            // otherwise keep its batch until every other worker runs out
            // of work, which under steady load is never.
            BALANCE_TICK => {
                if let Some(task) = self.steal_from_next_victim() {
                    return Some(task);
                }
            }
            _ => {}
        }
        self.pop_local().or_else(|| self.take_from_injector())
    }

    /// Step 3, paced: if the last take found a single task, wait
    /// [`INJECTOR_PACE`] before the next one, so that a batch can build up.
    ///
    /// A producer that is slower than the workers would otherwise hand
    /// them its tasks one at a time: each worker takes the task just
    /// pushed, runs it, and is back before the next one, so every push and
    /// every take fights over the injector's cache lines and the
    /// producer's own pushes slow down (docs/benchmarks.md, "The tuning the figures support"). A stream that has ended costs the worker
    /// one pause before it searches; a task arriving meanwhile waits at
    /// most that long.
    fn take_from_injector(&self) -> Option<Task> {
        if self.took_single.get() {
            spin_for(INJECTOR_PACE);
        }
        let task = self.steal_from_injector();
        self.took_single
            .set(task.is_some() && self.local.is_empty());
        task
    }

    /// Step 4: a few rounds over the injector and the other workers, for
    /// at least [`STREAM_WINDOW`] if the last search caught a task from
    /// outside.
    fn search(&self) -> Option<Task> {
        let window_from = self.catching_stream.replace(false).then(Instant::now);
        let mut round = 0;
        loop {
            if let Some(task) = self.steal_from_injector() {
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

    fn steal_from_injector(&self) -> Option<Task> {
        loop {
            match self
                .shared
                .injector
                .steal_batch_with_limit_and_pop(&self.local, STEAL_BATCH)
            {
                Steal::Success(task) => return Some(task),
                Steal::Empty => return None,
                Steal::Retry => crate::sync::spin_hint(),
            }
        }
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
    /// (docs/benchmarks.md, "The tuning the figures support").
    pub(crate) fn steal_from(&self, victim: usize) -> Option<Task> {
        let shared = &*self.shared;
        loop {
            bump(&shared.counters[self.index].steal_attempts, 1);
            match shared.stealers[victim].steal() {
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
    fn steal_from_workers(&self) -> Option<Task> {
        self.shared.victims[self.index]
            .iter()
            .find_map(|&victim| self.steal_from(victim))
    }

    /// Returns the slots of the bound this worker holds back (see
    /// `Admission::start`).
    pub(crate) fn return_held_slots(&self) {
        let shared = &*self.shared;
        if shared.admission.return_held(self.index) == Released::LastAfterClose {
            shared.sleep.wake_all();
        }
    }

    /// Drops the delay budget's open interval, if any: what follows is
    /// looking for work or idling, no task's cost (`crate::budget`).
    fn end_budget_interval(&self) {
        if self.shared.delay_budget.is_some() {
            DelayBudget::on_idle(&self.budget_probe);
        }
    }

    /// Runs one task: frees its slot of the bound first (or holds it back,
    /// to return it with the next few: `Admission::start`), then runs it,
    /// catching a panic.
    pub(crate) fn execute(&self, task: Task) {
        let shared = &*self.shared;
        let counters = &shared.counters[self.index];
        // A join's second closure, stolen, is part of its joiner's task:
        // neither accepted nor finished for `Pool::wait_idle`.
        let counted = task.is_admitted() || !task.is_stack_job();
        if task.is_admitted() {
            // Counted as started before it leaves the admission word, so
            // `Shared::is_idle` never misses it in between.
            bump(&counters.admitted_started, 1);
            if shared.admission.start(self.index) == Released::LastAfterClose {
                // Idle workers may be parked waiting for this last admitted
                // task; now they may exit.
                shared.sleep.wake_all();
            }
            if let Some(budget) = &shared.delay_budget {
                budget.on_admitted_start(&self.budget_probe);
            }
            if let Some(epoch) = shared.latency_epoch {
                if let Some(enqueued) = task.enqueued_ns() {
                    let now = nanos_between(epoch, Instant::now());
                    counters.latency.record(now.saturating_sub(enqueued));
                }
            }
        }
        // A depth, not a flag: a task waiting in `join` runs others inside.
        bump(&counters.running, 1);
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| task.run())) {
            bump(&counters.panicked, 1);
            match &shared.hooks.panic_handler {
                // A panicking handler must not take the worker down either.
                Some(handler) => call_guarded(|| handler(payload)),
                // A payload whose `Drop` panics must not either.
                None => drop_payload(payload),
            }
        }
        bump(&counters.running, u64::MAX); // wrapping: minus one
        bump(&counters.executed, 1);
        if counted {
            // `Release`: `Shared::is_idle` that reads this count reads
            // the task's own counts and its children's too.
            let finished = &counters.finished;
            finished.store(
                finished.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Release,
            );
        }
    }
}

/// Starts a thread that runs slot `index` as a worker; hands the deque
/// back if no thread could be started.
#[cfg(not(corepool_loom))]
pub(crate) fn spawn_worker(
    builder: std::thread::Builder,
    index: usize,
    shared: Arc<Shared>,
    deque: Worker<Task>,
) -> Result<std::thread::JoinHandle<()>, Worker<Task>> {
    let (tx, rx) = std::sync::mpsc::channel::<(Arc<Shared>, Worker<Task>)>();
    match builder.spawn(move || {
        if let Ok((shared, deque)) = rx.recv() {
            WorkerContext::new(index, shared, deque).run();
        }
    }) {
        Ok(thread) => {
            // The thread receives before anything else; if it is gone the
            // send fails and the thread has already ended.
            let _ = tx.send((shared, deque));
            Ok(thread)
        }
        Err(_) => Err(deque),
    }
}

/// Under loom no spare starts: loom's threads are the models' own.
#[cfg(corepool_loom)]
pub(crate) fn spawn_worker(
    _builder: std::thread::Builder,
    _index: usize,
    _shared: Arc<Shared>,
    deque: Worker<Task>,
) -> Result<std::thread::JoinHandle<()>, Worker<Task>> {
    Err(deque)
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
