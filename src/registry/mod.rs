//! A pool's registry: the state every worker and every handle of one pool
//! share (`Shared`), with what acts on all of it at once: metrics,
//! autoscaling decisions, resizing, waiting until idle, and the shutdown
//! drain. The worker threads themselves, and how they find and run tasks,
//! are in `crate::worker`. Child modules hold each slot's two deques and
//! the order tasks start in (`queues`), the snapshot's assembly
//! (`snapshot`), the workers' broadcast inboxes (`inbox`) and thread naming
//! (`thread_name`).

mod inbox;
mod queues;
mod snapshot;
mod thread_name;

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::admission::Admission;
use crate::autoscale::{Autoscaler, LoadSample};
use crate::budget::{Check, DelayBudget};
use crate::metrics::{bump, StripedCounter, WorkerCounters};
use crate::sleep::Sleep;
use crate::sync::{
    lock, thread, wait_deadline, Arc, AtomicUsize, Condvar, Hint, Injector, Instant, Mutex,
    Ordering, Parker, Steal,
};
use crate::task::Task;
use crate::topology;

pub(crate) use inbox::{Inbox, RunShare, Share};
pub(crate) use queues::{Queues, Stealers};
pub(crate) use thread_name::ThreadName;

/// High bit of `Shared::control`.
pub(crate) const ABORT: usize = 1 << (usize::BITS - 1);

/// Broadcast inboxes per core slot: one. Under loom none: broadcasts are
/// not modeled (a broadcast there panics on the missing inbox), and the
/// main loop's read of an inbox on every pass would only multiply the
/// interleavings.
const INBOXES_PER_SLOT: usize = if cfg!(corepool_loom) { 0 } else { 1 };

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
    /// For each slot, the ends of its two deques that others take from.
    pub(crate) stealers: Box<[Stealers]>,
    /// For each slot, the number of the batch its inflow holds, as its
    /// owner last said (0: none): a new number at each batch it takes, 0
    /// when it finds its inflow empty. A busy worker whose own queues ran
    /// dry takes from another worker's inflow only if it holds the same
    /// batch as at this worker's last look: that worker is stuck or slower
    /// (`crate::registry::Queues`). Workers that keep up are left to their
    /// own batches, and no look touches an inflow's front, which moves at
    /// every pop. Searchers and the look before parking see every inflow.
    pub(crate) inflow_held: Box<[CachePadded<Hint>]>,
    /// For each worker, the others in the order it steals from them.
    pub(crate) victims: Box<[Box<[usize]>]>,
    pub(crate) counters: Box<[CachePadded<WorkerCounters>]>,
    /// For each worker, the pieces it is running that waiters may
    /// leapfrog into (see `crate::wait`).
    pub(crate) pieces: Box<[CachePadded<Pieces>]>,
    /// For each worker, where it parks while it waits inside a task (a
    /// `join` or `scope`); apart from the idle parkers of `crate::sleep`,
    /// so that a wake-up of one kind is never taken for the other.
    pub(crate) wait_parkers: Box<[Parker]>,
    pub(crate) hooks: Hooks,
    /// `ABORT` bit (set by `shutdown_now`: workers stop taking tasks) |
    /// the number of active workers (workers with a higher index retire).
    /// Read once per task, written only by `set_workers` and `shutdown_now`.
    pub(crate) control: CachePadded<AtomicUsize>,
    /// Retired workers wait here to be reactivated (or for shutdown).
    pub(crate) resize: Mutex<()>,
    pub(crate) resize_cvar: Condvar,
    /// Where worker `i` is pinned.
    pub(crate) cores: Box<[Option<usize>]>,
    /// The origin of the submission stamps of injected tasks, with
    /// `track_latency` (every injected task is stamped, for the queue-wait
    /// histogram) or a delay budget (the tasks it admits near its limit are
    /// stamped, to judge their waits: `crate::budget`).
    pub(crate) latency_epoch: Option<Instant>,
    /// Whether queue waits go into the histogram (`track_latency`).
    pub(crate) track_latency: bool,
    /// The queue-delay budget and its estimate, if configured.
    pub(crate) delay_budget: Option<DelayBudget>,
    /// Workers that have left their loop, and a condition to wait on it
    /// with a deadline (`shutdown_timeout`).
    pub(crate) exited: Mutex<usize>,
    pub(crate) exited_cvar: Condvar,
    /// Refusals, counted where producers see them.
    pub(crate) rejected_full: StripedCounter,
    pub(crate) rejected_shutdown: StripedCounter,
    pub(crate) timed_out: StripedCounter,
    /// `try_*` refusals by the delay budget (not in `rejected_full`).
    pub(crate) rejected_budget: StripedCounter,
    /// Externally submitted tasks `shutdown_now` took back unstarted.
    pub(crate) handed_back: StripedCounter,
    /// The monitor thread's parker (fill alerts, autoscaling), if it runs.
    pub(crate) monitor: Option<Arc<Parker>>,
    /// The autoscaler, if configured (shared with the monitor thread).
    pub(crate) autoscaler: Option<Arc<Mutex<Autoscaler>>>,
    /// Worker slots the pool was built with; the spare slots follow them.
    pub(crate) core_slots: usize,
    /// Workers blocked in a wait the pool compensates for (`crate::wait`):
    /// spare `k` runs while `k < blocked`.
    pub(crate) blocked: AtomicUsize,
    /// The spare slots' queues not yet given to a thread, and the spare
    /// threads started.
    pub(crate) spares: Mutex<Spares>,
    /// Threads in `Pool::wait_idle` (see `Shared::wait_idle`). A plain std
    /// atomic in every build, as the statistics counters it reads: no loom
    /// model waits until idle, so loom need not explore the fence and load
    /// that every park pays for it (and the lock below is then never taken).
    pub(crate) idle_waiters: std::sync::atomic::AtomicUsize,
    pub(crate) idle_lock: Mutex<()>,
    pub(crate) idle_cvar: Condvar,
    /// For each core slot, the broadcast shares it has yet to run
    /// (`crate::broadcast`).
    pub(crate) inboxes: Box<[CachePadded<Inbox>]>,
    /// For each worker (spares included), the tasks it spawned with
    /// `spawn_fifo`, oldest first; each has a trampoline on the worker's
    /// deque that runs one of them (see `crate::fifo`).
    pub(crate) fifos: Box<[CachePadded<Mutex<VecDeque<FifoEntry>>>]>,
}

/// A task spawned with `spawn_fifo`, numbered in its worker's order.
pub(crate) struct FifoEntry {
    pub(crate) seq: u64,
    pub(crate) task: Task,
}

/// The spare workers of a pool (see `crate::wait`, "Blocking waits").
pub(crate) struct Spares {
    pub(crate) queues: Vec<Option<Queues>>,
    pub(crate) threads: Vec<std::thread::JoinHandle<()>>,
    /// How spare threads are named (`{prefix}-spare-{k}`, or the
    /// builder's `thread_name_fn` called with the slot's index) and sized.
    pub(crate) thread_name: ThreadName,
    pub(crate) stack_size: Option<usize>,
}

/// Everything `Shared::new` needs, gathered by the builder.
pub(crate) struct SharedConfig {
    pub(crate) capacity: usize,
    pub(crate) stealers: Vec<Stealers>,
    pub(crate) cores: Vec<Option<usize>>,
    pub(crate) active: usize,
    pub(crate) hooks: Hooks,
    pub(crate) latency_epoch: Option<Instant>,
    pub(crate) track_latency: bool,
    pub(crate) delay_budget: Option<Duration>,
    pub(crate) monitor: Option<Arc<Parker>>,
    pub(crate) autoscaler: Option<Arc<Mutex<Autoscaler>>>,
    /// Queues for the spare slots (their stealers end `stealers`).
    pub(crate) spare_queues: Vec<Queues>,
    pub(crate) thread_name: ThreadName,
    pub(crate) stack_size: Option<usize>,
}

impl Shared {
    pub(crate) fn new(config: SharedConfig) -> Self {
        let workers = config.stealers.len();
        let core_slots = workers - config.spare_queues.len();
        let mut cores = config.cores;
        cores.resize(workers, None);
        let victims = topology::victim_orders(&cores);
        Shared {
            injector: Injector::new(),
            admission: Admission::new(config.capacity, workers),
            sleep: Sleep::new(workers),
            stealers: config.stealers.into_boxed_slice(),
            victims: victims.into_boxed_slice(),
            counters: (0..workers).map(|_| CachePadded::default()).collect(),
            pieces: (0..workers).map(|_| CachePadded::default()).collect(),
            inflow_held: (0..workers)
                .map(|_| CachePadded::new(Hint::new()))
                .collect(),
            wait_parkers: (0..workers).map(|_| Parker::new()).collect(),
            hooks: config.hooks,
            control: CachePadded::new(AtomicUsize::new(config.active)),
            resize: Mutex::new(()),
            resize_cvar: Condvar::new(),
            cores: cores.into_boxed_slice(),
            latency_epoch: config.latency_epoch,
            track_latency: config.track_latency,
            delay_budget: config.delay_budget.map(DelayBudget::new),
            exited: Mutex::new(0),
            exited_cvar: Condvar::new(),
            rejected_full: StripedCounter::default(),
            rejected_shutdown: StripedCounter::default(),
            timed_out: StripedCounter::default(),
            rejected_budget: StripedCounter::default(),
            handed_back: StripedCounter::default(),
            monitor: config.monitor,
            autoscaler: config.autoscaler,
            core_slots,
            blocked: AtomicUsize::new(0),
            spares: Mutex::new(Spares {
                queues: config.spare_queues.into_iter().map(Some).collect(),
                threads: Vec::new(),
                thread_name: config.thread_name,
                stack_size: config.stack_size,
            }),
            idle_waiters: std::sync::atomic::AtomicUsize::new(0),
            idle_lock: Mutex::new(()),
            idle_cvar: Condvar::new(),
            inboxes: (0..core_slots * INBOXES_PER_SLOT)
                .map(|_| CachePadded::default())
                .collect(),
            fifos: (0..workers)
                .map(|_| CachePadded::new(Mutex::new(VecDeque::new())))
                .collect(),
        }
    }

    /// Hands a panic caught outside a task's own `catch_unwind` (a
    /// `spawn_broadcast` share's) to the panic handler, counting it for
    /// worker `index`, as `WorkerContext::execute` does for a task's.
    pub(crate) fn report_panic(&self, index: usize, payload: Box<dyn Any + Send>) {
        if let Some(counters) = self.counters.get(index) {
            bump(&counters.panicked, 1);
        }
        match &self.hooks.panic_handler {
            Some(handler) => call_guarded(|| handler(payload)),
            None => drop_payload(payload),
        }
    }

    /// Wakes every core worker that may have to run a broadcast share just
    /// posted: idle ones (`crate::sleep`), retired ones (they run a share
    /// posted while they were active) and ones parked in a wait inside a
    /// task (`crate::wait`).
    pub(crate) fn wake_for_broadcast(&self, targets: usize) {
        self.sleep.wake_all();
        {
            let _guard = lock(&self.resize);
            self.resize_cvar.notify_all();
        }
        for parker in &self.wait_parkers[..targets] {
            parker.unpark();
        }
    }

    /// One autoscaling decision at time `now`, applied. Returns the new
    /// number of active workers if it changed.
    pub(crate) fn autoscale_step(&self, scaler: &mut Autoscaler, now: Instant) -> Option<usize> {
        if self.admission.is_closed() {
            return None;
        }
        let sample = LoadSample {
            fill: self.admission.admitted() as f64 / self.admission.capacity() as f64,
            active: self.active_workers(),
            idle: self.sleep.sleeping(),
        };
        let target = scaler.observe(now, sample)?.clamp(1, self.num_workers());
        if target == sample.active {
            return None;
        }
        self.set_active(target);
        Some(target)
    }

    /// Whether no accepted task is queued or running (`Pool::wait_idle`).
    ///
    /// Counts, without any counter of its own on the hot path: the tasks
    /// finished (each worker's `finished`), read first, then the tasks
    /// accepted: the admission word (external tasks not started, and
    /// held-back slots of started ones), then each worker's
    /// `admitted_started` (a task is counted there before it leaves the
    /// word) and `pushed` (counted before the push). Every task finished
    /// in the first reading is accepted in the second (its counts were
    /// stored before its `finished`, which is read with `Acquire`); a task
    /// may be counted twice (started, its slot held back), never missed
    /// once accepted before this call. So equal counts mean every task
    /// accepted had finished when the finished ones were read. A task
    /// that is running, or queued anywhere, keeps the accepted count
    /// above the finished one.
    pub(crate) fn is_idle(&self) -> bool {
        let finished: u64 = self
            .counters
            .iter()
            .map(|c| c.finished.load(Ordering::Acquire))
            .fold(0, u64::wrapping_add);
        let word = self.admission.admitted_and_held() as u64;
        let accepted = self.counters.iter().fold(word, |sum, c| {
            sum.wrapping_add(c.admitted_started.load(Ordering::Relaxed))
                .wrapping_add(c.pushed.load(Ordering::Relaxed))
        });
        accepted <= finished
    }

    /// Wakes the threads in `Pool::wait_idle`, if any, to look again: a
    /// worker calls it when it is about to park, retire or exit, that is
    /// when it may have finished the last task. The fence pairs with the
    /// one in `wait_idle`: either this load sees the waiter registered,
    /// or the waiter's look sees every task this worker finished.
    pub(crate) fn notify_idle_waiters(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.idle_waiters.load(Ordering::SeqCst) != 0 {
            let _guard = lock(&self.idle_lock);
            self.idle_cvar.notify_all();
        }
    }

    /// Blocks until [`is_idle`](Shared::is_idle) holds, or `deadline`
    /// passes; returns whether it holds. No polling: the waiter sleeps on
    /// a condition variable that workers signal when they go idle
    /// (`notify_idle_waiters`).
    pub(crate) fn wait_idle(&self, deadline: Option<Instant>) -> bool {
        let mut guard = lock(&self.idle_lock);
        self.idle_waiters.fetch_add(1, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        let idle = loop {
            if self.is_idle() {
                break true;
            }
            guard = match wait_deadline(&self.idle_cvar, guard, deadline) {
                Ok(guard) => guard,
                Err(timed_out) => {
                    guard = timed_out;
                    break false;
                }
            };
        };
        self.idle_waiters.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
        idle
    }

    /// Worker slots the pool was built with (its maximum of active
    /// workers), not counting spares.
    pub(crate) fn num_workers(&self) -> usize {
        self.core_slots
    }

    /// The spare threads started so far, to join at shutdown.
    pub(crate) fn take_spare_threads(&self) -> Vec<std::thread::JoinHandle<()>> {
        std::mem::take(&mut lock(&self.spares).threads)
    }

    /// Whether the worker in slot `index` may run tasks now: a core slot
    /// below the active count, or a spare needed by a blocked worker.
    pub(crate) fn is_active_slot(&self, index: usize) -> bool {
        match index.checked_sub(self.core_slots) {
            None => index < self.active_workers(),
            Some(rank) => rank < self.blocked.load(Ordering::SeqCst),
        }
    }

    /// Tells workers to stop taking tasks (`shutdown_now`), then closes.
    pub(crate) fn abort(&self) {
        self.control.fetch_or(ABORT, Ordering::SeqCst);
        self.close();
    }

    pub(crate) fn is_aborting(&self) -> bool {
        self.control.load(Ordering::Relaxed) & ABORT != 0
    }

    /// Workers with an index below this run tasks; the others are retired.
    pub(crate) fn active_workers(&self) -> usize {
        self.control.load(Ordering::Relaxed) & !ABORT
    }

    /// The queue-delay budget's verdict on a non-blocking submission from
    /// outside (`crate::budget`): `Refuse` (as `Full`) if a task submitted
    /// now is expected to wait longer than the limit and the pool is open
    /// (a closed pool's refusal is `Shutdown`, the caller's acquire says
    /// so), counted in `rejected_budget`. `Admit` at once without a budget.
    pub(crate) fn check_delay_budget(&self) -> Check {
        let Some(budget) = &self.delay_budget else {
            return Check::Admit;
        };
        let check = budget.check(&self.admission, self.active_workers());
        if check == Check::Refuse {
            if self.admission.is_closed() {
                return Check::Admit;
            }
            self.rejected_budget.add(1);
        }
        check
    }

    /// The delay-budget estimate of a task submitted now, if a budget is
    /// configured and a task has been observed.
    pub(crate) fn expected_queue_delay(&self) -> Option<Duration> {
        self.delay_budget
            .as_ref()?
            .expected_wait(self.admission.admitted(), self.active_workers())
    }

    /// Sets the number of active workers (at most the number of slots).
    /// Workers above it retire after their current task, handing their
    /// queued tasks to the injector; retired workers below it come back.
    pub(crate) fn set_active(&self, active: usize) {
        debug_assert!(active >= 1 && active <= self.num_workers());
        {
            let _guard = lock(&self.resize);
            let _ = self
                .control
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |control| {
                    Some((control & ABORT) | active)
                });
            self.resize_cvar.notify_all();
        }
        // Sleeping workers above the new count must wake up to retire.
        self.sleep.wake_all();
    }

    /// Waits until every worker has left its loop, or `deadline` passes.
    /// Returns how many workers are still running.
    pub(crate) fn wait_for_exit(&self, deadline: Option<Instant>) -> usize {
        let mut exited = lock(&self.exited);
        // Spares start under this lock (`start_spare`), so this count
        // cannot miss one.
        let workers = || self.core_slots + lock(&self.spares).threads_started();
        while *exited < workers() {
            exited = match wait_deadline(&self.exited_cvar, exited, deadline) {
                Ok(guard) => guard,
                Err(timed_out) => {
                    exited = timed_out;
                    break;
                }
            };
        }
        workers() - *exited
    }

    /// Takes every task left in the queues, once every worker has exited
    /// (`shutdown_now`). A producer may have taken a slot before the close
    /// and not pushed its task yet: the drain goes on until every admitted
    /// task is collected, so that task is handed back too.
    pub(crate) fn drain_unstarted(&self) -> Vec<Task> {
        let mut tasks = self.take_queued();
        while self.admission.admitted() > 0 {
            // The producer is between its slot and its push: no blocking
            // call lies between them, so this wait is short.
            thread::yield_now();
            tasks.extend(self.take_queued());
        }
        // A spawned task its joiner already ran leaves a stand-in behind
        // (`crate::wait`): it counts as executed, not as handed back.
        let before = tasks.len();
        tasks.retain(|task| !task.is_spent());
        bump(&self.counters[0].executed, (before - tasks.len()) as u64);
        tasks
    }

    pub(crate) fn take_queued(&self) -> Vec<Task> {
        let mut tasks = Vec::new();
        let mut take_all = |steal: &dyn Fn() -> Steal<Task>| loop {
            match steal() {
                Steal::Success(task) => {
                    if task.is_admitted() {
                        self.admission.release(1);
                        self.handed_back.add(1);
                    }
                    tasks.push(task);
                }
                Steal::Empty => break,
                Steal::Retry => crate::sync::spin_hint(),
            }
        };
        take_all(&|| self.injector.steal());
        for stealers in self.stealers.iter() {
            take_all(&|| stealers.inflow.steal());
            take_all(&|| stealers.local.steal());
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
    /// drain what was accepted, then exit; retired workers exit.
    pub(crate) fn close(&self) {
        self.admission.close();
        self.sleep.wake_all();
        if let Some(monitor) = &self.monitor {
            monitor.unpark();
        }
        let _guard = lock(&self.resize);
        self.resize_cvar.notify_all();
        for parker in &self.wait_parkers[self.core_slots..] {
            parker.unpark();
        }
    }
}

impl Spares {
    /// Spare threads started so far: each took its slot's queues.
    pub(crate) fn threads_started(&self) -> usize {
        self.queues.iter().filter(|queues| queues.is_none()).count()
    }
}

/// Drops a panic payload that corepool caught (a task's, a panic
/// handler's, a hook's or a callback's) without letting a panic in the
/// payload's own `Drop` escape: that would take the worker (or the
/// monitor) down. A panic while dropping is caught, and its payload
/// dropped the same way; one that panics again is leaked with
/// `mem::forget`, the last resort, rather than risk the thread.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        if let Err(third) = catch_unwind(AssertUnwindSafe(move || drop(second))) {
            std::mem::forget(third);
        }
    }
}

/// Calls a user's function (a hook, a callback) that must not take the
/// calling corepool thread down: its panic is caught and its payload
/// dropped by [`drop_payload`].
pub(crate) fn call_guarded(f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        drop_payload(payload);
    }
}

/// Nanoseconds from `earlier` to `later` (zero if the clock went backwards).
pub(crate) fn nanos_between(earlier: Instant, later: Instant) -> u64 {
    u64::try_from(later.saturating_duration_since(earlier).as_nanos()).unwrap_or(u64::MAX)
}

/// How many nested pieces a worker publishes for leapfrogging; deeper
/// ones are not published, and their waiters park instead of helping.
/// Two workers leapfrogging into each other nest a piece per level of a
/// fork-join tree, so the bound must exceed a deep tree's depth or its
/// waiters stop helping (docs/benchmarks.md, "Waiting inside a task").
/// Under loom two: the models nest at most that deep, and every entry
/// scanned is a branch point.
pub(crate) const MAX_PUBLISHED_PIECES: usize = if cfg!(corepool_loom) { 2 } else { 32 };

/// The pieces one worker is running, innermost last (see `crate::wait`).
#[derive(Default)]
pub(crate) struct Pieces {
    pub(crate) entries: [Piece; MAX_PUBLISHED_PIECES],
}

/// One published piece: the region it belongs to, and a generation that
/// is odd while the piece runs and changes whenever the entry is reused.
#[derive(Default)]
pub(crate) struct Piece {
    pub(crate) region: AtomicUsize,
    pub(crate) generation: AtomicUsize,
}
