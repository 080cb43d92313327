//! The worker thread: where a task is found, and where it runs.
//!
//! Finding work (where a worker looks, in order, and the constants that
//! tune it) is `find`'s.
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
//! After shutdown began, a worker exits when its own deques are empty, a
//! search found nothing, and every admitted task has started. Its own
//! deques can only be filled by itself, so nothing is left behind.

mod find;

use std::cell::{Cell, UnsafeCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use crate::admission::Released;
use crate::budget::{DelayBudget, Probe};
use crate::metrics::bump;
use crate::registry::{call_guarded, drop_payload, nanos_between, Queues, Shared};
use crate::sleep::{Parked, Recheck};
use crate::sync::{lock, thread_local, wait, Arc, Instant, Ordering, Worker};
use crate::task::{JobRef, Task};

/// The state of the worker running on this thread.
pub(crate) struct WorkerContext {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    /// Tasks spawned on this worker: LIFO for it (`crate::registry::Queues`).
    pub(crate) local: Worker<Task>,
    /// Outside tasks this worker took from the injector, or from another
    /// worker's inflow: FIFO.
    pub(crate) inflow: Worker<Task>,
    /// Whether this worker's entry in `Shared::inflow_held` is non-zero,
    /// so that an empty pop clears it only once.
    pub(crate) inflow_announced: Cell<bool>,
    /// How many batches this worker has announced: the next one's number.
    pub(crate) inflow_batches: Cell<u64>,
    /// For each slot, the batch number its inflow held at this worker's
    /// last busy look (`Shared::inflow_held`).
    pub(crate) seen_batches: Box<[Cell<u64>]>,
    /// Whose turn it is in the periodic balancing steal.
    pub(crate) balance_turn: Cell<usize>,
    /// Whether this worker's last take from the injector found a single
    /// task (see `take_from_injector`).
    pub(crate) took_single: Cell<bool>,
    /// Whether this worker's last search found a task in the injector:
    /// tasks from outside arrive about as fast as a search lasts (see
    /// `find::STREAM_WINDOW`).
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
    // A non-null pointer is `Rc::as_ptr` of the `Rc` that `run` holds
    // until after it clears the pointer.
    // SAFETY: so it points into a live `Rc`: one more count, then an `Rc`
    // of it, is a clone of that `Rc`.
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
    pub(crate) fn new(index: usize, shared: Arc<Shared>, queues: Queues) -> Self {
        let slots = shared.stealers.len();
        WorkerContext {
            index,
            shared,
            local: queues.local,
            inflow: queues.inflow,
            inflow_announced: Cell::new(false),
            inflow_batches: Cell::new(0),
            seen_batches: (0..slots).map(|_| Cell::new(0)).collect(),
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
    /// one it may run here (see `docs/fork-join.md`, "Yielding"). Returns
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
            .or_else(|| self.take_outside())
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
                } else if let Some(task) = self.take_outside().or_else(|| self.steal_from_workers())
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
        while let Some(task) = self.pop_inflow().or_else(|| self.local.pop()) {
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
            // A budget implies an epoch (`Builder::build`), so it is fed
            // here: one clock read for its sample and the histogram.
            if let Some(epoch) = shared.latency_epoch {
                let now = Instant::now();
                let waited = task
                    .enqueued_ns()
                    .map(|enqueued| nanos_between(epoch, now).saturating_sub(enqueued));
                if let (true, Some(waited)) = (shared.track_latency, waited) {
                    counters.latency.record(waited);
                }
                if let Some(budget) = &shared.delay_budget {
                    budget.on_admitted_start(&self.budget_probe, now, waited);
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
    queues: Queues,
) -> Result<std::thread::JoinHandle<()>, Queues> {
    let (tx, rx) = std::sync::mpsc::channel::<(Arc<Shared>, Queues)>();
    match builder.spawn(move || {
        if let Ok((shared, queues)) = rx.recv() {
            WorkerContext::new(index, shared, queues).run();
        }
    }) {
        Ok(thread) => {
            // The thread receives before anything else; if it is gone the
            // send fails and the thread has already ended.
            let _ = tx.send((shared, queues));
            Ok(thread)
        }
        Err(_) => Err(queues),
    }
}

/// Under loom no spare starts: loom's threads are the models' own.
#[cfg(corepool_loom)]
pub(crate) fn spawn_worker(
    _builder: std::thread::Builder,
    _index: usize,
    _shared: Arc<Shared>,
    queues: Queues,
) -> Result<std::thread::JoinHandle<()>, Queues> {
    Err(queues)
}
