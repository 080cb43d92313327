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

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::admission::{Admission, Released};
use crate::autoscale::{Autoscaler, LoadSample};
use crate::broadcast::Inbox;
use crate::budget::{DelayBudget, Probe};
use crate::builder::ThreadName;
use crate::metrics::{
    bump, LatencySummary, MetricsSnapshot, StripedCounter, WorkerCounters, WorkerMetrics,
};
use crate::monitor::FillTrigger;
use crate::sleep::{Parked, Recheck, Sleep};
use crate::sync::{
    lock, thread, thread_local, Arc, AtomicUsize, Condvar, Injector, Instant, Mutex, Ordering,
    Parker, Steal, Stealer, Worker,
};
use crate::task::{JobRef, Task};
use crate::topology;

/// High bit of `Shared::control`.
const ABORT: usize = 1 << (usize::BITS - 1);

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
/// task waits before the next take (see `take_from_injector`). Against
/// no pause, 1 µs took one producer's tiny tasks from 240 to 66 ns each,
/// 2 µs to 55, 4 µs to 50 (docs/benchmarks.md, fourth round): 2 µs takes
/// most of the gain, and a task that arrives meanwhile waits at most that.
const INJECTOR_PACE: Duration = Duration::from_micros(2);

/// Rounds of searching (injector and every other worker) before parking,
/// at least. Each round ends with a `sched_yield`, not a spin: a pinned
/// worker that spins holds its core, which an unpinned producer may share,
/// while a yield hands it over at once if anyone else wants it (with
/// crossbeam's spin-then-yield `Backoff` instead, one producer's 500k
/// submissions took 1.2x the time, and p90 submit-to-start at 200k tasks/s
/// was 30 µs instead of 1 µs: docs/benchmarks.md). 16 rounds keep a worker
/// awake for some 10 µs after its last task, enough to catch the next task
/// of a steady stream without a park and a wake-up; a longer window, 50 µs
/// for workers whose last idle gap was short, made the same producer 1.7x
/// slower: two workers yielding for that long take turns on the
/// producer's core. Under loom one round: spinning only multiplies the
/// interleavings.
const SEARCH_ROUNDS: u32 = if crate::sync::IS_LOOM { 1 } else { 16 };

/// How long a searcher that is catching a stream from outside (its last
/// search found a task in the injector) keeps searching before it parks,
/// however quickly its rounds go by (see `search`).
///
/// Sixteen rounds last as long as their yields: ~5 µs on a core of its
/// own, where a yield returns at once, but much longer on a core shared
/// with a busy producer, where each yield runs the producer first. So in
/// a steady stream the worker that shares the producer's core outlasts
/// the one with a core to itself, catches every task, and the producer
/// waits for its core (a scratch probe at 200k tasks/s on 2 cores: the
/// producer spent 1.2 s of every 2 s waiting for a core while the other
/// core idled). With a window in time instead of rounds, the worker on
/// the free core catches the stream and the other parks (the same probe:
/// the producer waited 0.13 s instead of 1.2 s): latency bench p50 1.3 →
/// 0.7 µs and p99 (median of three runs) 42 → 34 µs, with no change in
/// the spawn, imbalance or idle_cpu benches (docs/benchmarks.md, fifth
/// round). It applies only while tasks come from outside at least as
/// often as a search lasts, so one task a millisecond still parks after
/// 16 rounds; the price is a worker that stays awake through gaps of up
/// to 20 µs in such a stream (at 200k tasks/s, ~0.4 of a core more). In
/// the README load test (high load) its p50 fell from 37 to 21 µs; its
/// p99 rose by an eighth in one A/B and not in later runs (the machine's
/// noise is as large).
const STREAM_WINDOW: Duration = Duration::from_micros(20);

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
    /// For each worker, the pieces it is running that waiters may
    /// leapfrog into (see `crate::wait`).
    pub(crate) pieces: Box<[CachePadded<Pieces>]>,
    /// For each worker, where it parks while it waits inside a task (a
    /// `join` or `scope`); apart from the idle parkers of `crate::sleep`,
    /// so that a wake-up of one kind is never taken for the other.
    pub(crate) wait_parkers: Box<[Parker]>,
    hooks: Hooks,
    /// `ABORT` bit (set by `shutdown_now`: workers stop taking tasks) |
    /// the number of active workers (workers with a higher index retire).
    /// Read once per task, written only by `set_workers` and `shutdown_now`.
    control: CachePadded<AtomicUsize>,
    /// Retired workers wait here to be reactivated (or for shutdown).
    resize: Mutex<()>,
    resize_cvar: Condvar,
    /// Where worker `i` is pinned.
    pub(crate) cores: Box<[Option<usize>]>,
    /// Queue-wait tracking: the clock's origin, if enabled.
    pub(crate) latency_epoch: Option<Instant>,
    /// The queue-delay budget and its estimate, if configured.
    pub(crate) delay_budget: Option<DelayBudget>,
    /// Workers that have left their loop, and a condition to wait on it
    /// with a deadline (`shutdown_timeout`).
    exited: Mutex<usize>,
    exited_cvar: Condvar,
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
    core_slots: usize,
    /// Workers blocked in a wait the pool compensates for (`crate::wait`):
    /// spare `k` runs while `k < blocked`.
    blocked: AtomicUsize,
    /// The spare slots' deques not yet given to a thread, and the spare
    /// threads started.
    spares: Mutex<Spares>,
    /// Threads in `Pool::wait_idle` (see `Shared::wait_idle`). Plain std
    /// primitives in every build, as the statistics counters it reads:
    /// no loom model waits until idle, so loom need not explore the
    /// fence and load that every park pays for it.
    idle_waiters: std::sync::atomic::AtomicUsize,
    idle_lock: std::sync::Mutex<()>,
    idle_cvar: std::sync::Condvar,
    /// For each core slot, the broadcast shares it has yet to run
    /// (`crate::broadcast`).
    pub(crate) inboxes: Box<[CachePadded<Inbox>]>,
    /// For each worker (spares included), the tasks it spawned with
    /// `spawn_fifo`, oldest first; each has a trampoline on the worker's
    /// deque that runs one of them (see `run_fifo`).
    fifos: Box<[CachePadded<Mutex<VecDeque<FifoEntry>>>]>,
}

/// A task spawned with `spawn_fifo`, numbered in its worker's order.
struct FifoEntry {
    seq: u64,
    task: Task,
}

/// The spare workers of a pool (see `crate::wait`, "Blocking waits").
pub(crate) struct Spares {
    deques: Vec<Option<Worker<Task>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// How spare threads are named (`{prefix}-spare-{k}`, or the
    /// builder's `thread_name_fn` called with the slot's index) and sized.
    thread_name: ThreadName,
    stack_size: Option<usize>,
}

/// Everything `Shared::new` needs, gathered by the builder.
pub(crate) struct SharedConfig {
    pub(crate) capacity: usize,
    pub(crate) stealers: Vec<Stealer<Task>>,
    pub(crate) cores: Vec<Option<usize>>,
    pub(crate) active: usize,
    pub(crate) hooks: Hooks,
    pub(crate) latency_epoch: Option<Instant>,
    pub(crate) delay_budget: Option<Duration>,
    pub(crate) fill_trigger: Option<FillTrigger>,
    pub(crate) monitor: Option<Arc<Parker>>,
    pub(crate) autoscaler: Option<Arc<Mutex<Autoscaler>>>,
    /// Deques for the spare slots (their stealers end `stealers`).
    pub(crate) spare_deques: Vec<Worker<Task>>,
    pub(crate) thread_name: ThreadName,
    pub(crate) stack_size: Option<usize>,
}

impl Shared {
    pub(crate) fn new(config: SharedConfig) -> Self {
        let workers = config.stealers.len();
        let core_slots = workers - config.spare_deques.len();
        let mut cores = config.cores;
        cores.resize(workers, None);
        let victims = topology::victim_orders(&cores);
        Shared {
            injector: Injector::new(),
            admission: Admission::new(config.capacity, workers, config.fill_trigger),
            sleep: Sleep::new(workers),
            stealers: config.stealers.into_boxed_slice(),
            victims: victims.into_boxed_slice(),
            counters: (0..workers).map(|_| CachePadded::default()).collect(),
            pieces: (0..workers).map(|_| CachePadded::default()).collect(),
            wait_parkers: (0..workers).map(|_| Parker::new()).collect(),
            hooks: config.hooks,
            control: CachePadded::new(AtomicUsize::new(config.active)),
            resize: Mutex::new(()),
            resize_cvar: Condvar::new(),
            cores: cores.into_boxed_slice(),
            latency_epoch: config.latency_epoch,
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
                deques: config.spare_deques.into_iter().map(Some).collect(),
                threads: Vec::new(),
                thread_name: config.thread_name,
                stack_size: config.stack_size,
            }),
            idle_waiters: std::sync::atomic::AtomicUsize::new(0),
            idle_lock: std::sync::Mutex::new(()),
            idle_cvar: std::sync::Condvar::new(),
            inboxes: (0..core_slots).map(|_| CachePadded::default()).collect(),
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

    /// A snapshot of every counter.
    pub(crate) fn metrics(&self) -> MetricsSnapshot {
        let load = |c: &crate::sync::stats::AtomicU64| c.load(Ordering::Relaxed);
        let active = self.active_workers();
        let per_worker: Vec<WorkerMetrics> = self.counters[..self.core_slots]
            .iter()
            .enumerate()
            .map(|(index, c)| WorkerMetrics {
                index,
                core: self.cores[index],
                active: index < active,
                executed: load(&c.executed),
                stolen: load(&c.stolen),
                steal_attempts: load(&c.steal_attempts),
                parks: load(&c.parks),
                panicked: load(&c.panicked),
                busy: Duration::from_nanos(load(&c.busy_ns)),
                local_queue_depth: self.stealers[index].len(),
                running: load(&c.running) > 0,
            })
            .collect();
        let queue_depth = self.admission.admitted();
        let capacity = self.admission.capacity();
        let started: u64 = self
            .counters
            .iter()
            .map(|c| load(&c.admitted_started))
            .sum();
        let handed_back = self.handed_back.sum();
        MetricsSnapshot {
            workers: active,
            max_workers: self.num_workers(),
            queue_depth,
            capacity,
            fill_ratio: queue_depth as f64 / capacity as f64,
            accepted: started + handed_back + queue_depth as u64,
            handed_back,
            rejected_full: self.rejected_full.sum(),
            rejected_budget: self.rejected_budget.sum(),
            rejected_shutdown: self.rejected_shutdown.sum(),
            timed_out: self.timed_out.sum(),
            executed: self.counters.iter().map(|c| load(&c.executed)).sum(),
            stolen: self.counters.iter().map(|c| load(&c.stolen)).sum(),
            steal_attempts: self.counters.iter().map(|c| load(&c.steal_attempts)).sum(),
            panicked: self.counters.iter().map(|c| load(&c.panicked)).sum(),
            in_flight: self
                .counters
                .iter()
                .filter(|c| load(&c.running) > 0)
                .count(),
            idle_workers: self.sleep.sleeping(),
            searching_workers: self.sleep.searching(),
            queue_wait: LatencySummary::from_workers(self.counters.iter().map(|c| &**c)),
            expected_queue_delay: self.expected_queue_delay(),
            per_worker,
        }
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
            let _guard = self.idle_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.idle_cvar.notify_all();
        }
    }

    /// Blocks until [`is_idle`](Shared::is_idle) holds, or `deadline`
    /// passes; returns whether it holds. No polling: the waiter sleeps on
    /// a condition variable that workers signal when they go idle
    /// (`notify_idle_waiters`).
    pub(crate) fn wait_idle(&self, deadline: Option<Instant>) -> bool {
        let mut guard = self.idle_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.idle_waiters.fetch_add(1, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        let idle = loop {
            if self.is_idle() {
                break true;
            }
            guard = match deadline {
                None => match self.idle_cvar.wait(guard) {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                },
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break false;
                    }
                    match self.idle_cvar.wait_timeout(guard, deadline - now) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    }
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
    fn is_active_slot(&self, index: usize) -> bool {
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

    fn is_aborting(&self) -> bool {
        self.control.load(Ordering::Relaxed) & ABORT != 0
    }

    /// Workers with an index below this run tasks; the others are retired.
    pub(crate) fn active_workers(&self) -> usize {
        self.control.load(Ordering::Relaxed) & !ABORT
    }

    /// Whether a non-blocking submission from outside must be refused
    /// (`Full`) by the queue-delay budget: a task submitted now is
    /// expected to wait longer than the budget (`crate::budget`), and the
    /// pool is open (a closed pool's refusal is `Shutdown`, the caller's
    /// acquire says so). Counts the refusal in `rejected_budget` when it
    /// says yes. `false` at once without a budget.
    pub(crate) fn over_delay_budget(&self) -> bool {
        let Some(budget) = &self.delay_budget else {
            return false;
        };
        let over =
            budget.over(&self.admission, self.active_workers()) && !self.admission.is_closed();
        if over {
            self.rejected_budget.add(1);
        }
        over
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

    fn take_queued(&self) -> Vec<Task> {
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
    /// Spare threads started so far: each took its slot's deque.
    fn threads_started(&self) -> usize {
        self.deques.iter().filter(|deque| deque.is_none()).count()
    }
}

/// A worker marked blocked (see `WorkerContext::block`); unmarks on drop.
pub(crate) struct Blocked<'a> {
    shared: &'a Shared,
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        // The spare of the highest rank retires after its current task.
        self.shared.blocked.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What `enter_region` saved of the enclosing region.
pub(crate) struct SavedRegion {
    frames: Vec<JobRef>,
    offered: usize,
    new: usize,
    fifo_floor: u64,
}

/// The state of the worker running on this thread.
pub(crate) struct WorkerContext {
    index: usize,
    shared: Arc<Shared>,
    local: Worker<Task>,
    /// Whose turn it is in the periodic balancing steal.
    balance_turn: Cell<usize>,
    /// Whether this worker's last take from the injector found a single
    /// task (see `take_from_injector`).
    took_single: Cell<bool>,
    /// Whether this worker's last search found a task in the injector:
    /// tasks from outside arrive about as fast as a search lasts (see
    /// [`STREAM_WINDOW`]).
    catching_stream: Cell<bool>,
    /// The second closures of the `join`s whose first closure is running
    /// on this worker, oldest first. The oldest `offered_frames` of them
    /// have been pushed onto `local`; the rest no other worker can see
    /// (`crate::join`, "When the second closure is offered").
    ///
    /// An `UnsafeCell`, not a `RefCell`: the borrow flag's checks cost
    /// fine-grained joins ~10 % of their time (fib_join_fine 13.1, 12.8 →
    /// 11.6, 11.6 ms on 2 workers, 25.9, 25.7 → 23.1, 23.0 on one;
    /// docs/benchmarks.md, sixth round). Sound because a `WorkerContext`
    /// never leaves its thread (it is `!Sync`, behind an `Rc`), and each
    /// access below is one call on the `Vec` that runs no other code, so
    /// no two references to it ever overlap.
    join_frames: UnsafeCell<Vec<JobRef>>,
    offered_frames: Cell<usize>,
    /// An upper bound on the tasks of this worker's deque pushed since its
    /// innermost wait began (see `crate::wait`, "What a waiter runs").
    region_new: Cell<usize>,
    /// How many entries of this worker's `Pieces` are published.
    piece_depth: Cell<usize>,
    /// How many wait regions are open on this worker's stack (`yield_now`
    /// and the FIFO trampolines run less inside one).
    wait_depth: Cell<usize>,
    /// The number of the next `spawn_fifo` entry of this worker.
    fifo_seq: Cell<u64>,
    /// The number of the first `spawn_fifo` entry pushed inside the
    /// innermost wait region.
    fifo_floor: Cell<u64>,
    /// This worker's samples for the delay budget (`crate::budget`).
    budget_probe: Probe,
}

/// How many nested pieces a worker publishes for leapfrogging; deeper
/// ones are not published, and their waiters park instead of helping.
/// Two workers leapfrogging into each other nest a piece per level of a
/// fork-join tree: with 8, fib_join (fib(32), 2 workers) took 3.0-3.8 ms
/// against 2.6-3.0 before the wait protocol; with 32, 2.6-2.8
/// (docs/benchmarks.md, "Waiting inside a task").
/// Under loom two: the models nest at most that deep, and every entry
/// scanned is a branch point.
pub(crate) const MAX_PUBLISHED_PIECES: usize = if crate::sync::IS_LOOM { 2 } else { 32 };

/// The pieces one worker is running, innermost last (see `crate::wait`).
#[derive(Default)]
pub(crate) struct Pieces {
    entries: [Piece; MAX_PUBLISHED_PIECES],
}

/// One published piece: the region it belongs to, and a generation that
/// is odd while the piece runs and changes whenever the entry is reused.
#[derive(Default)]
struct Piece {
    region: AtomicUsize,
    generation: AtomicUsize,
}

// The worker context of this thread, if it is a worker. (loom's
// `thread_local!` does not take the `const { .. }` form.)
#[cfg(not(loom))]
thread_local! {
    static CURRENT: RefCell<Option<Rc<WorkerContext>>> = const { RefCell::new(None) };
    /// The same context, as a plain pointer, for `join` and the free
    /// `submit`: a `Cell` of a pointer needs no destructor, so reading it
    /// is one load from the thread's block, where the `RefCell` of an
    /// `Rc` first checks its destructor's registration and its borrow flag.
    static CURRENT_PTR: Cell<*const WorkerContext> = const { Cell::new(std::ptr::null()) };
}
#[cfg(loom)]
thread_local! {
    static CURRENT: RefCell<Option<Rc<WorkerContext>>> = RefCell::new(None);
    static CURRENT_PTR: Cell<*const WorkerContext> = Cell::new(std::ptr::null());
}

/// The worker running on this thread, if it belongs to the pool that owns
/// `shared`.
///
/// The pool is recognized by identity, not by "some worker": a worker of
/// another pool submitting here goes through the bound like anyone else.
///
/// Like every access to corepool's thread-locals, it degrades to "not
/// inside a worker" once the thread's locals are being destroyed (a `Pool`
/// kept in a user's `thread_local!` is dropped then), instead of panicking
/// there, which would abort the process.
pub(crate) fn current(shared: &Arc<Shared>) -> Option<Rc<WorkerContext>> {
    CURRENT
        .try_with(|current| match &*current.borrow() {
            Some(ctx) if Arc::ptr_eq(&ctx.shared, shared) => Some(ctx.clone()),
            _ => None,
        })
        .unwrap_or(None)
}

/// Calls `f` with the worker running on this thread, of whichever pool,
/// without cloning its context (the free `submit` and `spawn`).
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&WorkerContext>) -> R) -> R {
    let current = CURRENT_PTR.try_with(Cell::get).unwrap_or(std::ptr::null());
    // SAFETY: `WorkerContext::run` sets the pointer from the `Rc` it holds
    // and clears it before that `Rc` drops (`ClearCurrentPtr`), and all a
    // worker runs runs inside `run`; `f` cannot keep the reference.
    let current = unsafe { current.as_ref() };
    f(current)
}

/// Clears `CURRENT_PTR` when `WorkerContext::run` ends, however it ends,
/// before the context it points into is dropped.
struct ClearCurrentPtr;

impl Drop for ClearCurrentPtr {
    fn drop(&mut self) {
        let _ = CURRENT_PTR.try_with(|current| current.set(std::ptr::null()));
    }
}

/// The worker running on this thread, of whichever pool.
pub(crate) fn current_any() -> Option<Rc<WorkerContext>> {
    CURRENT
        .try_with(|current| current.borrow().clone())
        .unwrap_or(None)
}

/// Counts a panic that a task caught itself (a `spawn` task delivers its
/// panic to its `JoinHandle`, not to the panic handler).
pub(crate) fn note_panic() {
    let _ = CURRENT.try_with(|current| {
        if let Some(ctx) = &*current.borrow() {
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

/// Whether this thread is a worker of the pool that owns `shared`.
pub(crate) fn is_inside(shared: &Arc<Shared>) -> bool {
    CURRENT
        .try_with(
            |current| matches!(&*current.borrow(), Some(ctx) if Arc::ptr_eq(&ctx.shared, shared)),
        )
        .unwrap_or(false)
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

    /// Whether a broadcast share waits in this worker's inbox.
    #[inline]
    pub(crate) fn broadcast_pending(&self) -> bool {
        !crate::sync::IS_LOOM
            && self
                .shared
                .inboxes
                .get(self.index)
                .is_some_and(|inbox| inbox.is_pending())
    }

    /// Runs every broadcast share in this worker's inbox; returns whether
    /// it ran any. For the main loop (no wait open on this stack).
    fn run_broadcasts(&self) -> bool {
        let Some(inbox) = self.shared.inboxes.get(self.index) else {
            return false;
        };
        let mut ran = false;
        while let Some(share) = inbox.pop() {
            share.run(self.index, &self.shared);
            ran = true;
        }
        ran
    }

    /// Runs the broadcast shares in this worker's inbox from inside a wait
    /// (a `join`, a `scope`, a broadcast, `block_in_place`): in a region of
    /// their own, so that nothing they leave on the deque is taken for the
    /// enclosing region's work; what they leave goes to the injector.
    /// Returns whether it ran any.
    pub(crate) fn run_broadcasts_in_wait(&self) -> bool {
        if !self.broadcast_pending() {
            return false;
        }
        let saved = self.enter_region();
        let ran = self.run_broadcasts();
        // `region_new` counts what the shares pushed and did not pop. It
        // overcounts only if thieves took some of those tasks, and thieves
        // take the oldest first: then nothing older is left below, so the
        // pops below never reach the enclosing region's tasks.
        let mut moved = false;
        for _ in 0..self.region_new.replace(0) {
            match self.local.pop() {
                Some(task) => {
                    self.shared.injector.push(task);
                    moved = true;
                }
                None => break,
            }
        }
        if moved {
            self.shared.sleep.notify_work(|| true);
        }
        self.exit_region(saved);
        ran
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

    /// Opens a join frame for `job`, the second closure of a `join` about
    /// to run its first; if this worker's deque is empty, offers the
    /// oldest private frame (`crate::join`, "When the second closure is
    /// offered").
    #[inline]
    pub(crate) fn open_join(&self, job: JobRef) {
        // SAFETY: only this thread reaches `join_frames`, and this
        // reference ends with the push, which runs no other code (see the
        // field).
        unsafe { (*self.join_frames.get()).push(job) };
        if self.local.is_empty() {
            self.offer_oldest_frame();
        }
    }

    /// Pushes the oldest frame no other worker can see yet onto this
    /// worker's deque, and wakes a sleeper if no one is searching (see
    /// `Sleep::notify_join_work` for why this push may skip the fence that
    /// `push` pays).
    fn offer_oldest_frame(&self) {
        let offered = self.offered_frames.get();
        // SAFETY: as in `open_join`: one call on the `Vec`, on its thread.
        let oldest = unsafe { (&*self.join_frames.get()).get(offered).copied() };
        if let Some(job) = oldest {
            self.offered_frames.set(offered + 1);
            self.local.push(Task::stack(job, false));
            self.region_new.set(self.region_new.get() + 1);
            self.shared.sleep.notify_join_work();
        }
    }

    /// Closes the newest join frame, `job`'s, once its first closure has
    /// returned. Returns whether it was offered: if not, no other thread
    /// can reach `job`, and the caller runs it inline (after offering the
    /// oldest private frame left, if the deque is empty).
    #[inline]
    pub(crate) fn close_join(&self, job: &JobRef) -> bool {
        let remaining = {
            // SAFETY: as in `open_join`: this reference ends with this
            // block, which calls only `Vec` methods.
            let frames = unsafe { &mut *self.join_frames.get() };
            let newest = frames.pop();
            debug_assert!(newest.is_some_and(|newest| newest.same_job(job)));
            frames.len()
        };
        // Offered frames are the oldest ones, so the newest was offered
        // exactly when every frame was.
        let offered_frames = self.offered_frames.get();
        if offered_frames > remaining {
            self.offered_frames.set(remaining);
            return true;
        }
        // Keep one on offer while `job` runs inline, too: on its way back
        // up a chain of joins a worker opens none.
        if offered_frames < remaining && self.local.is_empty() {
            self.offer_oldest_frame();
        }
        false
    }

    /// The worker's main loop; returns when the pool has shut down and
    /// this worker has nothing left to run.
    pub(crate) fn run(self) {
        let ctx = Rc::new(self);
        let _ = CURRENT.try_with(|current| *current.borrow_mut() = Some(ctx.clone()));
        let _ = CURRENT_PTR.try_with(|current| current.set(Rc::as_ptr(&ctx)));
        // Declared after `ctx`, so dropped before it, even in an unwind.
        let _clear_ptr = ClearCurrentPtr;
        if let Some(hook) = &ctx.shared.hooks.on_start {
            // A panicking hook must not take the worker down.
            call_guarded(|| hook(ctx.index));
        }
        ctx.main_loop();
        // Shares posted before the inbox closes run here; later ones run on
        // their broadcaster's thread (`crate::broadcast`).
        // (Not under loom: broadcasts are not modeled.)
        if let Some(inbox) = ctx
            .shared
            .inboxes
            .get(ctx.index)
            .filter(|_| !crate::sync::IS_LOOM)
        {
            for share in inbox.close() {
                share.run(ctx.index, &ctx.shared);
            }
        }
        // This thread is no worker any more: a submission from the stop
        // hook must go through the bound and be refused (the pool is
        // closed), not land on a deque nobody will look at again.
        let _ = CURRENT.try_with(|current| current.borrow_mut().take());
        let _ = CURRENT_PTR.try_with(|current| current.set(std::ptr::null()));
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

    /// A handle to this worker's pool.
    pub(crate) fn handle(&self) -> crate::pool::Handle {
        crate::pool::Handle::from_shared(self.shared.clone())
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

    /// Marks this worker blocked until the guard drops: it gives back its
    /// held slots of the bound, and a spare worker runs the pool's queues
    /// meanwhile, if one of the pool's spare slots is free (`crate::wait`,
    /// "Blocking waits").
    pub(crate) fn block(&self) -> Blocked<'_> {
        let shared = &*self.shared;
        self.return_held_slots();
        let rank = shared.blocked.fetch_add(1, Ordering::SeqCst);
        let index = shared.core_slots + rank;
        if index < shared.stealers.len() {
            self.start_spare(index);
        }
        Blocked { shared }
    }

    /// Starts the spare in slot `index`, or wakes it if it waits retired.
    fn start_spare(&self, index: usize) {
        let shared = &*self.shared;
        let rank = index - shared.core_slots;
        let mut spares = lock(&shared.spares);
        if let Some(deque) = spares.deques[rank].take() {
            let mut builder = std::thread::Builder::new();
            if let Some(name) = spares.thread_name.spare(rank, index) {
                builder = builder.name(name);
            }
            if let Some(size) = spares.stack_size {
                builder = builder.stack_size(size);
            }
            // Counted as started before `wait_for_exit` can look again.
            let _exited = lock(&shared.exited);
            match spawn_worker(builder, index, self.shared.clone(), deque) {
                Ok(thread) => spares.threads.push(thread),
                // No thread to be had: the pool runs one worker short
                // until this one returns, as with no spare slot left.
                Err(deque) => spares.deques[rank] = Some(deque),
            }
            return;
        }
        drop(spares);
        shared.wait_parkers[index].unpark();
    }

    /// Where this worker parks while it waits inside a task.
    pub(crate) fn wait_parker(&self) -> &Parker {
        &self.shared.wait_parkers[self.index]
    }

    /// Opens a wait region (see `crate::wait`): until `exit_region`, no
    /// join frame opened before it is offered, and `pop_region_task`
    /// returns only tasks pushed inside it.
    pub(crate) fn enter_region(&self) -> SavedRegion {
        // SAFETY: as in `open_join`: one call on the `Vec`, on its thread.
        let frames = unsafe { std::mem::take(&mut *self.join_frames.get()) };
        self.wait_depth.set(self.wait_depth.get() + 1);
        SavedRegion {
            frames,
            offered: self.offered_frames.replace(0),
            new: self.region_new.replace(0),
            fifo_floor: self.fifo_floor.replace(self.fifo_seq.get()),
        }
    }

    /// Closes the region `enter_region` opened. Every join opened inside
    /// has closed, so its frame stack is empty; the tasks pushed inside and
    /// still queued count as new for the enclosing region too.
    pub(crate) fn exit_region(&self, saved: SavedRegion) {
        // SAFETY: as in `open_join`.
        let inner = unsafe { std::mem::replace(&mut *self.join_frames.get(), saved.frames) };
        debug_assert!(inner.is_empty());
        self.offered_frames.set(saved.offered);
        self.region_new
            .set(saved.new.saturating_add(self.region_new.get()));
        self.fifo_floor.set(saved.fifo_floor);
        self.wait_depth.set(self.wait_depth.get() - 1);
    }

    /// The newest task of this worker's deque if it was pushed inside the
    /// innermost region. `region_new` bounds those tasks from above, and
    /// thieves take from the other end: so while it is not zero the
    /// newest task, if any, is one of them (if thieves took some of them,
    /// they took every older task first).
    pub(crate) fn pop_region_task(&self) -> Option<Task> {
        if self.region_new.get() == 0 {
            return None;
        }
        self.pop_local()
    }

    /// Publishes that this worker starts a piece of `region`, if its deque
    /// is empty: from now until `exit_piece`, every task on its deque
    /// descends from that piece. Returns the entry to clear.
    pub(crate) fn enter_piece(&self, region: usize) -> Option<usize> {
        let depth = self.piece_depth.get();
        if depth >= MAX_PUBLISHED_PIECES || !self.local.is_empty() {
            return None;
        }
        let piece = &self.shared.pieces[self.index].entries[depth];
        piece.region.store(region, Ordering::Relaxed);
        // Odd: running. Release: a leapfrogger that reads this generation
        // reads the region stored above.
        piece.generation.fetch_add(1, Ordering::Release);
        self.piece_depth.set(depth + 1);
        Some(depth)
    }

    /// Ends a piece `enter_piece` published.
    pub(crate) fn exit_piece(&self, depth: Option<usize>) {
        if let Some(depth) = depth {
            let piece = &self.shared.pieces[self.index].entries[depth];
            // Even: ended. Release: whatever this worker pushes from now on
            // is ordered after it, so a leapfrogger that steals such a task
            // sees the generation change (see `leapfrog`).
            piece.generation.fetch_add(1, Ordering::Release);
            self.piece_depth.set(depth);
        }
    }

    /// Leapfrogging: steals the oldest task of a worker that is running a
    /// piece of `region`, if that piece is still running after the steal,
    /// so the task descends from it. A task stolen just after the piece
    /// ended may be anyone's: it goes to the injector, not to the waiter.
    pub(crate) fn leapfrog(&self, region: usize) -> Option<Task> {
        let shared = &*self.shared;
        for (victim, pieces) in shared.pieces.iter().enumerate() {
            if victim == self.index {
                continue;
            }
            for piece in &pieces.entries {
                let generation = piece.generation.load(Ordering::Acquire);
                if generation % 2 == 0 {
                    // Entries are a stack: none above an ended one runs.
                    break;
                }
                if piece.region.load(Ordering::Relaxed) != region {
                    continue;
                }
                let Some(task) = self.steal_from(victim) else {
                    break;
                };
                // The steal synchronizes with the push of `task`: if the
                // piece had ended before that push, this load sees it.
                if piece.generation.load(Ordering::Acquire) == generation {
                    return Some(task);
                }
                shared.injector.push(task);
                shared.sleep.notify_work(|| true);
                return None;
            }
        }
        None
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
            guard = match shared.resize_cvar.wait(guard) {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
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
    /// producer's own pushes slow down (one producer, 1M tiny tasks: 240
    /// ns per task with 1.2 tasks per take; with the pause, 55 ns and 16 per
    /// take; docs/benchmarks.md). A stream that has ended costs the worker
    /// one pause before it searches; a task arriving meanwhile waits at
    /// most that long.
    fn take_from_injector(&self) -> Option<Task> {
        if self.took_single.get() && !crate::sync::IS_LOOM {
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
        let window_from =
            (self.catching_stream.replace(false) && !crate::sync::IS_LOOM).then(Instant::now);
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
            if crate::sync::IS_LOOM {
                crate::sync::spin_hint();
            } else {
                thread::yield_now();
            }
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
    /// (`docs/benchmarks.md`, "What changed in the third round").
    fn steal_from(&self, victim: usize) -> Option<Task> {
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

/// Starts a thread that runs slot `index` as a worker; hands the deque
/// back if no thread could be started.
#[cfg(not(loom))]
fn spawn_worker(
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
#[cfg(loom)]
fn spawn_worker(
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

/// Nanoseconds from `earlier` to `later` (zero if the clock went backwards).
pub(crate) fn nanos_between(earlier: Instant, later: Instant) -> u64 {
    u64::try_from(later.saturating_duration_since(earlier).as_nanos()).unwrap_or(u64::MAX)
}
