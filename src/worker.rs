//! The worker thread: where a task is found, and where it runs.
//!
//! # Finding work
//!
//! A worker looks, in order:
//!
//! 1. every [`GLOBAL_QUEUE_INTERVAL`]th time, the injector first, so that
//!    injected work is served even while tasks keep spawning locally;
//! 2. its own deque (LIFO: the task it spawned last is hottest in cache);
//! 3. the injector, taking a batch into its own deque;
//! 4. as a *searcher* (see [`crate::sleep`]), batches stolen from the other
//!    workers, nearest cores first, for a few rounds with backoff;
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

use std::any::Any;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use crossbeam_utils::{Backoff, CachePadded};

use crate::admission::{Admission, Released};
use crate::sleep::{Parked, Recheck, Sleep};
use crate::sync::{
    lock, thread, thread_local, Arc, AtomicBool, AtomicU64, Condvar, Injector, Instant, Mutex,
    Ordering, Steal, Stealer, Worker,
};
use crate::task::Task;

/// How often (in tasks) a worker looks at the injector before its own deque.
/// A prime, as in tokio, so the check does not fall into lock-step with a
/// periodic workload; small enough that a local spawn storm cannot delay
/// injected work by more than ~60 tasks per worker.
const GLOBAL_QUEUE_INTERVAL: u32 = 61;

/// Most tasks taken in one steal. crossbeam moves at most half of the
/// source queue, and at most 32 from the injector, in one batch.
const STEAL_BATCH: usize = 32;

/// Rounds of searching (injector and every other worker) before parking.
/// Each round ends with a `Backoff::snooze`, which spins briefly and then
/// yields; 16 rounds keep a worker awake for a few microseconds after the
/// last task, enough to catch the next task of a steady stream without a
/// park/unpark pair, and short enough that an idle pool burns no CPU. Under
/// loom one round: spinning only multiplies the interleavings.
const SEARCH_ROUNDS: u32 = if crate::sync::IS_LOOM { 1 } else { 16 };

/// Per-worker counters. Written only by their worker (a load and a store,
/// no read-modify-write, no contention), summed by readers.
#[derive(Default)]
pub(crate) struct WorkerCounters {
    pub(crate) executed: AtomicU64,
    pub(crate) stolen: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) panicked: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

pub(crate) type PanicHandler = dyn Fn(Box<dyn Any + Send>) + Send + Sync + 'static;
pub(crate) type WorkerHook = dyn Fn(usize) + Send + Sync + 'static;

/// The user's callbacks.
pub(crate) struct Hooks {
    pub(crate) panic_handler: Option<Box<PanicHandler>>,
    pub(crate) on_start: Option<Box<WorkerHook>>,
    pub(crate) on_stop: Option<Box<WorkerHook>>,
}

/// What every worker and every handle of one pool share.
pub(crate) struct Shared {
    pub(crate) injector: Injector<Task>,
    pub(crate) admission: Admission,
    pub(crate) sleep: Sleep,
    stealers: Box<[Stealer<Task>]>,
    /// For each worker, the others in the order it steals from them.
    victims: Box<[Box<[usize]>]>,
    pub(crate) counters: Box<[CachePadded<WorkerCounters>]>,
    hooks: Hooks,
    /// Set by `shutdown_now`: workers stop taking new tasks.
    aborting: AtomicBool,
    /// Workers that have left their loop, and a condition to wait on it
    /// with a deadline (`shutdown_timeout`).
    exited: Mutex<usize>,
    exited_cvar: Condvar,
}

impl Shared {
    pub(crate) fn new(
        capacity: usize,
        stealers: Vec<Stealer<Task>>,
        victims: Vec<Box<[usize]>>,
        hooks: Hooks,
    ) -> Self {
        let workers = stealers.len();
        Shared {
            injector: Injector::new(),
            admission: Admission::new(capacity),
            sleep: Sleep::new(workers),
            stealers: stealers.into_boxed_slice(),
            victims: victims.into_boxed_slice(),
            counters: (0..workers).map(|_| CachePadded::default()).collect(),
            hooks,
            aborting: AtomicBool::new(false),
            exited: Mutex::new(0),
            exited_cvar: Condvar::new(),
        }
    }

    pub(crate) fn num_workers(&self) -> usize {
        self.stealers.len()
    }

    /// Tells workers to stop taking tasks (`shutdown_now`), then closes.
    pub(crate) fn abort(&self) {
        self.aborting.store(true, Ordering::SeqCst);
        self.close();
    }

    fn is_aborting(&self) -> bool {
        self.aborting.load(Ordering::Relaxed)
    }

    /// Waits until every worker has left its loop, or `deadline` passes.
    /// Returns how many workers are still running.
    pub(crate) fn wait_for_exit(&self, deadline: Option<Instant>) -> usize {
        let workers = self.num_workers();
        let mut exited = lock(&self.exited);
        while *exited < workers {
            exited = match deadline {
                None => match self.exited_cvar.wait(exited) {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                },
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    match self.exited_cvar.wait_timeout(exited, deadline - now) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    }
                }
            };
        }
        workers - *exited
    }

    /// Takes every task left in the queues. Only sound to call once every
    /// worker has exited (`shutdown_now`), when no one else takes tasks.
    pub(crate) fn drain_unstarted(&self) -> Vec<Task> {
        let mut tasks = Vec::new();
        let mut take_all = |steal: &dyn Fn() -> Steal<Task>| loop {
            match steal() {
                Steal::Success(task) => {
                    if task.is_admitted() {
                        self.admission.release();
                    }
                    tasks.push(task);
                }
                Steal::Empty => break,
                Steal::Retry => crate::sync::spin_hint(),
            }
        };
        take_all(&|| self.injector.steal());
        for stealer in self.stealers.iter() {
            take_all(&|| stealer.steal());
        }
        tasks
    }

    /// Tasks run and tasks that panicked, over the pool's life.
    pub(crate) fn totals(&self) -> (u64, u64) {
        self.counters.iter().fold((0, 0), |(run, panicked), c| {
            (
                run + c.executed.load(Ordering::Relaxed),
                panicked + c.panicked.load(Ordering::Relaxed),
            )
        })
    }

    /// Begins shutdown: no more external submissions; idle workers wake to
    /// drain what was accepted, then exit.
    pub(crate) fn close(&self) {
        self.admission.close();
        self.sleep.wake_all();
    }
}

/// The state of the worker running on this thread.
pub(crate) struct WorkerContext {
    index: usize,
    shared: Arc<Shared>,
    local: Worker<Task>,
}

// The worker context of this thread, if it is a worker. (loom's
// `thread_local!` does not take the `const { .. }` form.)
#[cfg(not(loom))]
thread_local! {
    static CURRENT: RefCell<Option<Rc<WorkerContext>>> = const { RefCell::new(None) };
}
#[cfg(loom)]
thread_local! {
    static CURRENT: RefCell<Option<Rc<WorkerContext>>> = RefCell::new(None);
}

/// The worker running on this thread, if it belongs to the pool that owns
/// `shared`.
///
/// The pool is recognized by identity, not by "some worker": a worker of
/// another pool submitting here goes through the bound like anyone else.
pub(crate) fn current(shared: &Arc<Shared>) -> Option<Rc<WorkerContext>> {
    CURRENT.with(|current| match &*current.borrow() {
        Some(ctx) if Arc::ptr_eq(&ctx.shared, shared) => Some(ctx.clone()),
        _ => None,
    })
}

/// The worker running on this thread, of whichever pool.
pub(crate) fn current_any() -> Option<Rc<WorkerContext>> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Counts a panic that a task caught itself (a `spawn` task delivers its
/// panic to its `JoinHandle`, not to the panic handler).
pub(crate) fn note_panic() {
    CURRENT.with(|current| {
        if let Some(ctx) = &*current.borrow() {
            bump(&ctx.shared.counters[ctx.index].panicked, 1);
        }
    });
}

/// Runs other tasks until `done()` (or until `deadline`); returns whether
/// `done()` became true. Used by every wait inside a worker (`join`,
/// `scope`, `JoinHandle::join`), so a waiting worker never idles while
/// there is work, and the task it waits for, if still queued, is run.
///
/// With no worker (`scope` on the caller's thread during shutdown), it
/// yields until `done()`: the draining workers finish the rest.
pub(crate) fn help_until(
    worker: Option<&WorkerContext>,
    done: impl Fn() -> bool,
    deadline: Option<Instant>,
) -> bool {
    let backoff = Backoff::new();
    loop {
        if done() {
            return true;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return false;
        }
        if let Some(worker) = worker {
            if let Some(task) = worker.find_help() {
                worker.execute(task);
                backoff.reset();
                continue;
            }
        }
        if crate::sync::IS_LOOM || backoff.is_completed() {
            thread::yield_now();
        } else {
            backoff.snooze();
        }
    }
}

/// Whether this thread is a worker of the pool that owns `shared`.
pub(crate) fn is_inside(shared: &Arc<Shared>) -> bool {
    CURRENT
        .with(|current| matches!(&*current.borrow(), Some(ctx) if Arc::ptr_eq(&ctx.shared, shared)))
}

impl WorkerContext {
    pub(crate) fn new(index: usize, shared: Arc<Shared>, local: Worker<Task>) -> Self {
        WorkerContext {
            index,
            shared,
            local,
        }
    }

    /// Pushes a task spawned by a task running on this worker onto the
    /// worker's own deque, where the others can steal it.
    pub(crate) fn push(&self, task: Task) {
        self.local.push(task);
        self.shared.sleep.notify_work();
    }

    /// The worker's main loop; returns when the pool has shut down and
    /// this worker has nothing left to run.
    pub(crate) fn run(self) {
        let ctx = Rc::new(self);
        CURRENT.with(|current| *current.borrow_mut() = Some(ctx.clone()));
        if let Some(hook) = &ctx.shared.hooks.on_start {
            // A panicking hook must not take the worker down.
            let _ = catch_unwind(AssertUnwindSafe(|| hook(ctx.index)));
        }
        ctx.main_loop();
        if let Some(hook) = &ctx.shared.hooks.on_stop {
            let _ = catch_unwind(AssertUnwindSafe(|| hook(ctx.index)));
        }
        CURRENT.with(|current| current.borrow_mut().take());
        let shared = &ctx.shared;
        *lock(&shared.exited) += 1;
        shared.exited_cvar.notify_all();
    }

    /// Pops the newest task of this worker's own deque.
    pub(crate) fn pop_local(&self) -> Option<Task> {
        self.local.pop()
    }

    /// What a waiting worker may run: its own deque, other workers', and
    /// the injector, except while `shutdown_now` is collecting unstarted
    /// tasks (a join or scope in progress still needs its own pieces,
    /// which sit in deques, never in the injector).
    fn find_help(&self) -> Option<Task> {
        self.local.pop().or_else(|| {
            if self.shared.is_aborting() {
                self.steal_from_workers()
            } else {
                self.steal_from_injector()
                    .or_else(|| self.steal_from_workers())
            }
        })
    }

    fn main_loop(&self) {
        let shared = &*self.shared;
        let mut tick: u32 = 0;
        let mut searching = false;
        loop {
            if shared.is_aborting() {
                // shutdown_now: leave every unstarted task where it is; the
                // caller collects them once all workers have exited.
                if searching {
                    shared.sleep.leave_searching();
                }
                return;
            }
            tick = tick.wrapping_add(1);
            if let Some(task) = self.find_nearby(tick) {
                if searching {
                    searching = false;
                    shared.sleep.stop_searching();
                }
                self.execute(task);
                continue;
            }
            if !searching {
                searching = shared.sleep.try_start_searching();
            }
            if searching {
                if let Some(task) = self.search() {
                    searching = false;
                    shared.sleep.stop_searching();
                    self.execute(task);
                    continue;
                }
            }
            bump(&shared.counters[self.index].parks, 1);
            let parked = shared.sleep.park(self.index, searching, || {
                if shared.is_aborting() {
                    Recheck::Exit
                } else if let Some(task) = self
                    .steal_from_injector()
                    .or_else(|| self.steal_from_workers())
                {
                    Recheck::Work(task)
                } else if shared.admission.is_closed_and_drained() {
                    Recheck::Exit
                } else {
                    Recheck::Nothing
                }
            });
            match parked {
                Parked::Found {
                    item,
                    searching: now,
                } => {
                    if now {
                        shared.sleep.stop_searching();
                    }
                    searching = false;
                    self.execute(item);
                }
                Parked::Woken => searching = true,
                Parked::Exit => return,
            }
        }
    }

    /// Steps 1 to 3: the fair injector check, the own deque, the injector.
    fn find_nearby(&self, tick: u32) -> Option<Task> {
        if tick.is_multiple_of(GLOBAL_QUEUE_INTERVAL) {
            if let Some(task) = self.steal_from_injector() {
                return Some(task);
            }
        }
        self.local.pop().or_else(|| self.steal_from_injector())
    }

    /// Step 4: a few rounds over the injector and every other worker.
    fn search(&self) -> Option<Task> {
        let backoff = Backoff::new();
        for _ in 0..SEARCH_ROUNDS {
            if let Some(task) = self
                .steal_from_injector()
                .or_else(|| self.steal_from_workers())
            {
                return Some(task);
            }
            if self.shared.admission.is_closed_and_drained() {
                return None;
            }
            if crate::sync::IS_LOOM {
                crate::sync::spin_hint();
            } else {
                backoff.snooze();
            }
        }
        None
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

    fn steal_from_workers(&self) -> Option<Task> {
        let shared = &*self.shared;
        loop {
            let mut contended = false;
            for &victim in shared.victims[self.index].iter() {
                match shared.stealers[victim]
                    .steal_batch_with_limit_and_pop(&self.local, STEAL_BATCH)
                {
                    Steal::Success(task) => {
                        bump(&shared.counters[self.index].stolen, 1);
                        return Some(task);
                    }
                    Steal::Empty => {}
                    Steal::Retry => contended = true,
                }
            }
            if !contended {
                return None;
            }
            crate::sync::spin_hint();
        }
    }

    /// Runs one task: frees its slot of the bound first, then runs it,
    /// catching a panic.
    pub(crate) fn execute(&self, task: Task) {
        let shared = &*self.shared;
        if task.is_admitted() && shared.admission.release() == Released::LastAfterClose {
            // Idle workers may be parked waiting for this last admitted
            // task; now they may exit.
            shared.sleep.wake_all();
        }
        let counters = &shared.counters[self.index];
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| task.run())) {
            bump(&counters.panicked, 1);
            if let Some(handler) = &shared.hooks.panic_handler {
                // A panicking handler must not take the worker down either.
                let _ = catch_unwind(AssertUnwindSafe(|| handler(payload)));
            }
        }
        bump(&counters.executed, 1);
    }
}
