//! `Builder`: the pool's configuration; validating it and starting the
//! workers is `startup`'s.

mod startup;

use std::any::Any;
use std::time::Duration;

use crate::autoscale::AutoscalePolicy;
use crate::monitor::{FillCallback, FillEvent};
use crate::registry::{PanicHandler, ThreadName, WorkerHook};

/// Default queue capacity per worker: a pool built without
/// [`Builder::queue_capacity`] accepts `workers × 256` tasks not yet
/// started. `docs/benchmarks.md` ("Default capacity") has the measurement
/// behind it.
///
/// ```
/// let pool = corepool::Pool::builder().workers(2).build()?;
/// assert_eq!(pool.capacity(), 2 * corepool::DEFAULT_CAPACITY_PER_WORKER);
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub const DEFAULT_CAPACITY_PER_WORKER: usize = 256;

/// The smallest worker stack [`Builder::stack_size`] accepts: 64 KiB.
/// A worker's own frames (its loop, `catch_unwind`, and the panic
/// machinery that reports a task's panic) take some tens of KiB before a
/// task runs, and a stack overflow aborts the whole process, so a smaller
/// stack is refused at `build` rather than failing on the first task.
///
/// ```
/// let refused = corepool::Pool::builder()
///     .stack_size(corepool::MIN_STACK_SIZE - 1)
///     .build();
/// assert!(matches!(
///     refused,
///     Err(corepool::BuildError::StackTooSmall { .. })
/// ));
/// let pool = corepool::Pool::builder()
///     .workers(1)
///     .stack_size(corepool::MIN_STACK_SIZE)
///     .build()?;
/// # drop(pool);
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub const MIN_STACK_SIZE: usize = 64 * 1024;

/// Spare slots per worker when `max_spare_threads` is not set: one, so
/// every worker may block at once and the pool keeps its parallelism.
/// Under loom none: no spare can start there (`worker::spawn_worker`),
/// and each empty slot would only be one more deque the models scan.
const DEFAULT_SPARES_PER_WORKER: usize = if cfg!(corepool_loom) { 0 } else { 1 };

/// Configures and builds a [`Pool`](crate::Pool).
///
/// ```
/// let pool = corepool::Pool::builder()
///     .workers(4)
///     .queue_capacity(1024)
///     .pin_workers(true)
///     .thread_name("payments")
///     .stack_size(256 * 1024)
///     .panic_handler(|payload| eprintln!("task panicked: {:?}", payload.downcast_ref::<&str>()))
///     .build()?;
/// assert_eq!(pool.workers(), 4);
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct Builder {
    workers: Option<usize>,
    capacity: Option<usize>,
    pin: bool,
    thread_name: ThreadName,
    stack_size: Option<usize>,
    panic_handler: Option<Box<PanicHandler>>,
    on_start: Option<Box<WorkerHook>>,
    on_stop: Option<Box<WorkerHook>>,
    max_workers: Option<usize>,
    max_spare_threads: Option<usize>,
    track_latency: bool,
    queue_delay_budget: Option<Duration>,
    autoscale: Option<AutoscalePolicy>,
    fill_alert: Option<(f64, Box<FillCallback>)>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("workers", &self.workers)
            .field("queue_capacity", &self.capacity)
            .field("pin_workers", &self.pin)
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .field("panic_handler", &self.panic_handler.is_some())
            .field("on_worker_start", &self.on_start.is_some())
            .field("on_worker_stop", &self.on_stop.is_some())
            .field("max_workers", &self.max_workers)
            .field("max_spare_threads", &self.max_spare_threads)
            .field("track_latency", &self.track_latency)
            .field("queue_delay_budget", &self.queue_delay_budget)
            .field("autoscale", &self.autoscale)
            .field("on_queue_fill", &self.fill_alert.as_ref().map(|(t, _)| *t))
            .finish()
    }
}

impl Builder {
    /// The defaults: one worker per core the process may run on, pinned;
    /// a queue capacity of [`DEFAULT_CAPACITY_PER_WORKER`] per worker;
    /// threads named `corepool-N`; the OS's default stack size; panics
    /// counted and otherwise ignored.
    ///
    /// ```
    /// let pool = corepool::Builder::new().build()?;
    /// assert_eq!(pool.capacity(), pool.workers() * corepool::DEFAULT_CAPACITY_PER_WORKER);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn new() -> Self {
        Builder {
            workers: None,
            capacity: None,
            pin: true,
            thread_name: ThreadName::Prefix("corepool".to_owned()),
            stack_size: None,
            panic_handler: None,
            on_start: None,
            on_stop: None,
            max_workers: None,
            max_spare_threads: None,
            track_latency: false,
            queue_delay_budget: None,
            autoscale: None,
            fill_alert: None,
        }
    }

    /// The number of worker threads. More workers than cores is allowed
    /// (for I/O-heavy work); they are pinned round-robin.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// assert_eq!(pool.workers(), 2);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// How many externally submitted tasks may be accepted and not yet
    /// started at once. When that many are waiting, `submit` blocks,
    /// `try_submit` returns `Full`, and `submit_timeout` waits. Tasks that
    /// running tasks submit to their own pool are not counted.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().queue_capacity(100).build()?;
    /// assert_eq!(pool.capacity(), 100);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Whether to pin each worker to a core (default `true`). A refused
    /// pin is not an error: see [`Pool::worker_cores`](crate::Pool::worker_cores).
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).pin_workers(false).build()?;
    /// assert_eq!(pool.worker_cores(), &[None]);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn pin_workers(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// The prefix of the worker threads' names; worker `i` is named
    /// `{prefix}-{i}`.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).thread_name("io").build()?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// pool.submit(move || tx.send(std::thread::current().name().map(String::from)).unwrap()).unwrap();
    /// assert_eq!(rx.recv().unwrap().as_deref(), Some("io-0"));
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    ///
    /// This and [`thread_name_fn`](Builder::thread_name_fn) set the same
    /// thing: the later call wins.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = ThreadName::Prefix(prefix.into());
        self
    }

    /// Names each thread by calling `name` with its index: worker `i`
    /// gets `name(i)`, and a spare thread (see
    /// [`max_spare_threads`](Builder::max_spare_threads)) the index of its
    /// slot, which follows the workers' (`max_workers + k` for the `k`-th
    /// spare), the index that [`corepool::current_thread_index`](crate::current_thread_index)
    /// reports on it. rayon's `ThreadPoolBuilder::thread_name`.
    ///
    /// This and [`thread_name`](Builder::thread_name) (a prefix) set the
    /// same thing: the later call wins. A name with a NUL byte fails
    /// `build` with
    /// [`BuildError::InvalidThreadName`](crate::BuildError::InvalidThreadName); a spare, named
    /// later, whose name has one (or whose `name` call panics) starts
    /// unnamed.
    ///
    /// ```
    /// let pool = corepool::Pool::builder()
    ///     .workers(2)
    ///     .thread_name_fn(|index| format!("render #{index}"))
    ///     .build()?;
    /// let name = pool.install(|| std::thread::current().name().map(String::from));
    /// assert!(matches!(name.as_deref(), Some("render #0" | "render #1")));
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn thread_name_fn<N>(mut self, name: N) -> Self
    where
        N: Fn(usize) -> String + Send + Sync + 'static,
    {
        self.thread_name = ThreadName::Fn(Box::new(name));
        self
    }

    /// The stack size of each worker thread, in bytes: at least
    /// [`MIN_STACK_SIZE`] (64 KiB), or `build` fails with
    /// [`BuildError::StackTooSmall`](crate::BuildError::StackTooSmall).
    /// The tasks' own frames come on top
    /// of the worker's: size it for the deepest task.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).stack_size(4 << 20).build()?;
    /// let err = corepool::Pool::builder().stack_size(16 * 1024).build().unwrap_err();
    /// assert!(matches!(err, corepool::BuildError::StackTooSmall { .. }));
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Called, on the worker thread, with the payload of every task that
    /// panics. The worker survives either way; a panic inside the handler
    /// is caught too.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let panics = Arc::new(AtomicUsize::new(0));
    /// let seen = panics.clone();
    /// let pool = corepool::Pool::builder()
    ///     .workers(1)
    ///     .panic_handler(move |_payload| {
    ///         seen.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .build()?;
    /// pool.submit(|| panic!("boom")).unwrap();
    /// drop(pool);
    /// assert_eq!(panics.load(Ordering::Relaxed), 1);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn panic_handler<H>(mut self, handler: H) -> Self
    where
        H: Fn(Box<dyn Any + Send>) + Send + Sync + 'static,
    {
        self.panic_handler = Some(Box::new(handler));
        self
    }

    /// Called on each worker thread, with the worker's index, when it
    /// starts (after it is pinned, before it runs any task): the place to
    /// register the thread with a profiler or a tracing subscriber.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let started = Arc::new(AtomicUsize::new(0));
    /// let seen = started.clone();
    /// let pool = corepool::Pool::builder()
    ///     .workers(2)
    ///     .on_worker_start(move |_index| {
    ///         seen.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .build()?;
    /// pool.shutdown();
    /// assert_eq!(started.load(Ordering::Relaxed), 2);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn on_worker_start<H>(mut self, hook: H) -> Self
    where
        H: Fn(usize) + Send + Sync + 'static,
    {
        self.on_start = Some(Box::new(hook));
        self
    }

    /// Called on each worker thread, with the worker's index, when it
    /// stops (after its last task).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let stopped = Arc::new(AtomicUsize::new(0));
    /// let seen = stopped.clone();
    /// let pool = corepool::Pool::builder()
    ///     .workers(2)
    ///     .on_worker_stop(move |_index| {
    ///         seen.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .build()?;
    /// pool.shutdown();
    /// assert_eq!(stopped.load(Ordering::Relaxed), 2);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn on_worker_stop<H>(mut self, hook: H) -> Self
    where
        H: Fn(usize) + Send + Sync + 'static,
    {
        self.on_stop = Some(Box::new(hook));
        self
    }

    /// The most *spare* threads the pool starts to stand in for workers
    /// blocked in a wait it cannot help with: a `JoinHandle::join` of a
    /// task that is running, or an `install` (or `Pool::join`,
    /// `Pool::scope`) on another pool, called from inside a task. While
    /// `n` workers are blocked, `min(n, max)` spares run the pool's queues,
    /// so queued tasks keep the parallelism the pool was built with. Spares
    /// start on first need, are not pinned, and wait, retired, when no
    /// longer needed. At the limit a blocked worker leaves the pool one
    /// thread short until it returns. Default: the number of workers; `0`
    /// turns compensation off. See docs/fork-join.md, "Waiting inside a task".
    ///
    /// ```
    /// let a = corepool::Pool::builder().workers(1).max_spare_threads(2).build()?;
    /// let b = corepool::Pool::builder().workers(1).build()?;
    /// // `a`'s only worker blocks in `b.install` while `b` needs `a`: a
    /// // spare of `a` runs the innermost closure.
    /// assert_eq!(a.install(|| b.install(|| a.install(|| 42))), 42);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn max_spare_threads(mut self, max: usize) -> Self {
        self.max_spare_threads = Some(max);
        self
    }

    /// How many worker threads the pool reserves, for
    /// [`Pool::set_workers`](crate::Pool::set_workers)
    /// and autoscaling to grow into. Reserved workers
    /// beyond the active count are started and wait, retired, until
    /// needed (a parked thread costs its stack's address space, no CPU).
    /// Default: the number of workers (or the autoscale maximum).
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(2).max_workers(8).build()?;
    /// assert_eq!(pool.workers(), 2);
    /// pool.set_workers(8).unwrap();
    /// assert_eq!(pool.workers(), 8);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn max_workers(mut self, max: usize) -> Self {
        self.max_workers = Some(max);
        self
    }

    /// Records each externally submitted task's queue wait (submit to
    /// start) in a histogram, reported by [`Pool::metrics`](crate::Pool::metrics). It costs two
    /// clock reads per task, so it is off by default; `docs/monitoring.md`
    /// gives the measured overhead.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).track_latency(true).build()?;
    /// pool.submit(|| {}).unwrap();
    /// let handle = pool.handle();
    /// drop(pool);
    /// assert_eq!(handle.metrics().queue_wait.count, 1);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn track_latency(mut self, track: bool) -> Self {
        self.track_latency = track;
        self
    }

    /// Bounds the *queue wait* as well as the queue's length, at the 99th
    /// percentile: [`try_submit`](crate::Handle::try_submit) and
    /// [`try_spawn`](crate::Handle::try_spawn) (and
    /// [`try_reserve`](crate::Handle::try_reserve)) also refuse, with their
    /// usual `Full` error that hands the closure back, a task unless the
    /// pool expects it to start within `budget`, so that about one
    /// admitted task in 100 waits longer than `budget` before it starts.
    /// The wait is estimated from what the pool observes (the tasks queued
    /// ahead, times the average worker time an admitted task has taken
    /// recently, divided by the active workers) and compared with a limit
    /// below the budget, which the pool lowers for every admitted task
    /// that started late and raises for those on time. Until a task has
    /// been observed, every task is admitted. The budget covers the wait
    /// only: the task's own run, and whatever the caller does around the
    /// pool, come on top.
    ///
    /// The count bound ([`queue_capacity`](Builder::queue_capacity)) still
    /// holds. Blocking and awaitable submissions (`submit`, `spawn`,
    /// `submit_timeout`, `reserve`, `submit_async`, ...)
    /// never consult the budget, and tasks submitted from inside the pool
    /// are never refused. Refusals by the budget are counted in
    /// [`MetricsSnapshot::rejected_budget`](crate::MetricsSnapshot::rejected_budget),
    /// and the current estimate is
    /// [`MetricsSnapshot::expected_queue_delay`](crate::MetricsSnapshot::expected_queue_delay).
    /// A zero budget is refused by `build` with
    /// [`BuildError::ZeroDelayBudget`](crate::BuildError::ZeroDelayBudget);
    /// a budget beyond `u64::MAX`
    /// nanoseconds (about 584 years) counts as that much, which never
    /// refuses anything.
    ///
    /// The percentile holds while the load is steady; it takes some
    /// hundreds of tasks to settle after a change. `docs/delay-budget.md`
    /// has the measurements, and `src/budget.rs` the rule
    /// and its failure modes.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = corepool::Pool::builder()
    ///     .workers(2)
    ///     .queue_delay_budget(Duration::from_millis(10))
    ///     .build()?;
    /// match pool.try_submit(|| { /* a request's CPU work */ }) {
    ///     Ok(()) => {}
    ///     // Full, or expected to wait over 10 ms: answer 503 and move on.
    ///     Err(err) if err.is_full() => drop(err.into_inner()),
    ///     Err(_) => unreachable!("the pool is running"),
    /// }
    /// let err = corepool::Pool::builder().queue_delay_budget(Duration::ZERO).build().unwrap_err();
    /// assert!(matches!(err, corepool::BuildError::ZeroDelayBudget));
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn queue_delay_budget(mut self, budget: Duration) -> Self {
        self.queue_delay_budget = Some(budget);
        self
    }

    /// Scales the number of active workers between `min` and `max` with
    /// the default [`AutoscalePolicy`]: one more worker when the queue
    /// stays at least 80% full for a second, one fewer when a worker has
    /// sat idle for ten seconds.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().autoscale(2, 8).build()?;
    /// assert_eq!(pool.workers(), 2);
    /// assert_eq!(pool.metrics().max_workers, 8);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn autoscale(self, min: usize, max: usize) -> Self {
        self.autoscale_policy(AutoscalePolicy::new(min, max))
    }

    /// Scales the number of active workers by `policy`.
    ///
    /// ```
    /// let mut policy = corepool::AutoscalePolicy::new(1, 4);
    /// policy.tick = None; // no monitor thread: call Pool::autoscale_tick yourself
    /// let pool = corepool::Pool::builder().autoscale_policy(policy).build()?;
    /// assert_eq!(pool.workers(), 1);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn autoscale_policy(mut self, policy: AutoscalePolicy) -> Self {
        self.autoscale = Some(policy);
        self
    }

    /// Calls `callback` when the queue's fill (queued tasks / capacity)
    /// reaches `threshold`, and again when it falls back
    /// [`FILL_HYSTERESIS`](crate::FILL_HYSTERESIS) below it: edge-triggered,
    /// once per crossing, on the pool's monitor thread (never on a
    /// producer's or a worker's). `threshold` must be in `(0, 1]`. The
    /// monitor samples the fill every
    /// [`FILL_SAMPLE_INTERVAL`](crate::FILL_SAMPLE_INTERVAL), so the
    /// submission path pays nothing for the alert; a crossing that is
    /// undone within one interval may go unreported.
    ///
    /// ```
    /// let pool = corepool::Pool::builder()
    ///     .on_queue_fill(0.7, |event| eprintln!("queue fill alert: {event:?}"))
    ///     .build()?;
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn on_queue_fill<C>(mut self, threshold: f64, callback: C) -> Self
    where
        C: Fn(FillEvent) + Send + Sync + 'static,
    {
        self.fill_alert = Some((threshold, Box::new(callback)));
        self
    }
}
