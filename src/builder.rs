//! `Builder`: configuration, validation, and starting the workers.
//!
//! Each worker pins itself first, then allocates its deque (so the deque's
//! memory is first touched on its own core), reports its stealer and its
//! core, and waits until every worker has reported. Only then is the shared
//! state, which holds every stealer, published to all of them. If a thread
//! cannot be started, the workers already started are told to exit and are
//! joined before `build` returns the error.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::admission::MAX_CAPACITY;
use crate::autoscale::{AutoscalePolicy, Autoscaler};
use crate::error::BuildError;
use crate::monitor::{self, FillCallback, FillEvent, FillTrigger, Monitor};
use crate::pool::Pool;
use crate::sleep::MAX_WORKERS;
use crate::sync::{lock, thread, Arc, Condvar, Instant, Mutex, Parker, Stealer, Worker};
use crate::task::Task;
use crate::topology;
use crate::worker::{Hooks, PanicHandler, Shared, SharedConfig, WorkerContext, WorkerHook};

/// Default queue capacity per worker: see `docs/design.md` ("The default
/// capacity") for the measurement behind it.
pub const DEFAULT_CAPACITY_PER_WORKER: usize = 256;

/// The smallest worker stack [`Builder::stack_size`] accepts: 64 KiB.
/// A worker's own frames (its loop, `catch_unwind`, and the panic
/// machinery that reports a task's panic) take some tens of KiB before a
/// task runs, and a stack overflow aborts the whole process, so a smaller
/// stack is refused at `build` rather than failing on the first task.
pub const MIN_STACK_SIZE: usize = 64 * 1024;

/// Configures and builds a [`Pool`].
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
    /// pin is not an error: see [`Pool::worker_cores`].
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
    /// `build` with [`BuildError::InvalidThreadName`]; a spare, named
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
    /// [`BuildError::StackTooSmall`]. The tasks' own frames come on top
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
    /// turns compensation off. See docs/design.md, "Waiting inside a task".
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
    /// [`Pool::set_workers`] and autoscaling to grow into. Reserved workers
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
    /// start) in a histogram, reported by [`Pool::metrics`]. It costs two
    /// clock reads per task, so it is off by default; `docs/operations.md`
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

    /// Bounds the *expected queue wait* as well as the queue's length:
    /// [`try_submit`](crate::Handle::try_submit) and
    /// [`try_spawn`](crate::Handle::try_spawn) also refuse, with their
    /// usual `Full` error that hands the closure back, a task expected to
    /// wait longer than `budget` before it starts. The wait is estimated
    /// from what the pool observes: the tasks queued ahead, times the
    /// average worker time an admitted task has taken recently, divided
    /// by the active workers. Until a task has been observed, every task
    /// is admitted.
    ///
    /// The count bound ([`queue_capacity`](Builder::queue_capacity)) still
    /// holds. Blocking submissions (`submit`, `spawn`, `submit_timeout`)
    /// never consult the budget, and tasks submitted from inside the pool
    /// are never refused. Refusals by the budget are counted in
    /// [`MetricsSnapshot::rejected_budget`](crate::MetricsSnapshot::rejected_budget),
    /// and the current estimate is
    /// [`MetricsSnapshot::expected_queue_delay`](crate::MetricsSnapshot::expected_queue_delay).
    /// A zero budget is refused by `build` with
    /// [`BuildError::ZeroDelayBudget`]; a budget beyond `u64::MAX`
    /// nanoseconds (about 584 years) counts as that much, which never
    /// refuses anything.
    ///
    /// The budget bounds the *expected* wait, not a percentile: at twice
    /// the capacity with a 10 ms budget, on a busy 2-core machine, admitted
    /// tasks waited 8 ms on average and 23 ms at the 99th percentile, where
    /// without a budget they waited 110 ms. For a p99 target, set the
    /// budget below it. `docs/operations.md` ("Delay budget") has the
    /// measurements and the estimator's failure modes.
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
    /// producer's or a worker's). `threshold` must be in `(0, 1]`.
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

    /// Validates the configuration and starts the workers. On error no
    /// worker thread is left running.
    ///
    /// ```
    /// let err = corepool::Pool::builder().queue_capacity(0).build().unwrap_err();
    /// assert!(matches!(err, corepool::BuildError::ZeroCapacity));
    /// ```
    pub fn build(self) -> Result<Pool, BuildError> {
        if let Some(policy) = &self.autoscale {
            policy.validate().map_err(BuildError::InvalidAutoscale)?;
        }
        let workers = match (self.workers, &self.autoscale) {
            (Some(0), _) => return Err(BuildError::ZeroWorkers),
            (Some(n), Some(policy)) if n < policy.min || n > policy.max => {
                return Err(BuildError::InvalidAutoscale(format!(
                    "workers({n}) is outside the autoscale range {}..={}",
                    policy.min, policy.max
                )))
            }
            (Some(n), _) => n,
            (None, Some(policy)) => policy.min,
            (None, None) => topology::default_workers(),
        };
        let slots = match self.max_workers {
            Some(max) if max < workers => {
                return Err(BuildError::MaxWorkersTooSmall {
                    workers,
                    max_workers: max,
                })
            }
            Some(max) => max,
            None => workers,
        }
        .max(self.autoscale.as_ref().map_or(0, |policy| policy.max));
        if slots > MAX_WORKERS {
            return Err(BuildError::TooManyWorkers {
                requested: slots,
                max: MAX_WORKERS,
            });
        }
        let capacity = match self.capacity {
            Some(0) => return Err(BuildError::ZeroCapacity),
            Some(c) if c > MAX_CAPACITY => {
                return Err(BuildError::CapacityTooLarge {
                    requested: c,
                    max: MAX_CAPACITY,
                })
            }
            Some(c) => c,
            None => workers
                .saturating_mul(DEFAULT_CAPACITY_PER_WORKER)
                .min(MAX_CAPACITY),
        };
        if let Some((threshold, _)) = &self.fill_alert {
            if !(*threshold > 0.0 && *threshold <= 1.0) {
                return Err(BuildError::InvalidFillThreshold(*threshold));
            }
        }
        if self.queue_delay_budget == Some(Duration::ZERO) {
            return Err(BuildError::ZeroDelayBudget);
        }
        if let Some(size) = self.stack_size.filter(|&size| size < MIN_STACK_SIZE) {
            return Err(BuildError::StackTooSmall {
                requested: size,
                min: MIN_STACK_SIZE,
            });
        }
        if let ThreadName::Prefix(prefix) = &self.thread_name {
            if prefix.contains('\0') {
                return Err(BuildError::InvalidThreadName(prefix.clone()));
            }
        }
        // Every worker's name, before any thread starts: a name with a NUL
        // byte, or a panicking `thread_name_fn`, leaves nothing running.
        let names: Vec<String> = (0..slots).map(|i| self.thread_name.worker(i)).collect();
        if let Some(bad) = names.iter().find(|name| name.contains('\0')) {
            return Err(BuildError::InvalidThreadName(bad.clone()));
        }
        let cores = if self.pin {
            topology::allowed_cores()
        } else {
            None
        };
        let startup = Arc::new(Startup::new(slots));
        let mut threads = Vec::with_capacity(slots + 1);
        for (index, name) in names.into_iter().enumerate() {
            let target_core = cores.as_ref().map(|cores| cores[index % cores.len()]);
            let mut builder = thread::Builder::new().name(name);
            if let Some(size) = self.stack_size {
                builder = builder.stack_size(size);
            }
            let startup_for_worker = startup.clone();
            match builder.spawn(move || worker_thread(index, target_core, &startup_for_worker)) {
                Ok(thread) => threads.push(thread),
                Err(source) => {
                    startup.publish(None);
                    for thread in threads {
                        let _ = thread.join();
                    }
                    return Err(BuildError::Spawn {
                        worker: index,
                        stack_size: self.stack_size,
                        source,
                    });
                }
            }
        }
        let (mut stealers, worker_cores) = startup.wait_for_reports();
        // Under loom no spare can start (`worker::spawn_worker`), so the
        // models' pools get no spare slots to scan.
        let default_spares = if crate::sync::IS_LOOM { 0 } else { workers };
        let spare_deques: Vec<Worker<Task>> = (0..self.max_spare_threads.unwrap_or(default_spares))
            .map(|_| Worker::new_lifo())
            .collect();
        stealers.extend(spare_deques.iter().map(Worker::stealer));

        let autoscaler = self
            .autoscale
            .map(|policy| Arc::new(Mutex::new(Autoscaler::new(policy))));
        let needs_monitor = self.fill_alert.is_some()
            || autoscaler
                .as_ref()
                .is_some_and(|scaler| lock(scaler).policy().tick.is_some());
        let monitor_parker = needs_monitor.then(|| Arc::new(Parker::new()));
        let (fill_trigger, fill_callback) = match (self.fill_alert, &monitor_parker) {
            (Some((threshold, callback)), Some(parker)) => (
                Some(FillTrigger::new(threshold, capacity, parker.clone())),
                Some(callback),
            ),
            _ => (None, None),
        };
        let shared = Arc::new(Shared::new(SharedConfig {
            capacity,
            stealers,
            cores: worker_cores.clone(),
            active: workers,
            hooks: Hooks {
                panic_handler: self.panic_handler,
                on_start: self.on_start,
                on_stop: self.on_stop,
            },
            latency_epoch: self.track_latency.then(Instant::now),
            delay_budget: self.queue_delay_budget,
            fill_trigger,
            monitor: monitor_parker.clone(),
            autoscaler: autoscaler.clone(),
            spare_deques,
            thread_name: self.thread_name,
            stack_size: self.stack_size,
        }));
        startup.publish(Some(shared.clone()));
        if let Some(parker) = monitor_parker {
            let monitor = Monitor {
                parker,
                fill_callback,
                autoscaler,
            };
            match monitor::start(shared.clone(), monitor) {
                Ok(thread) => threads.push(thread),
                Err(source) => {
                    // Dropping the pool closes it and joins the workers.
                    drop(Pool::from_parts(shared, threads, worker_cores));
                    return Err(BuildError::Spawn {
                        worker: slots,
                        stack_size: None,
                        source,
                    });
                }
            }
        }
        Ok(Pool::from_parts(shared, threads, worker_cores))
    }

    /// Builds the *global* pool with this configuration: the pool that
    /// [`corepool::join`](crate::join), [`corepool::scope`](crate::scope),
    /// [`corepool::spawn`](crate::spawn), [`corepool::submit`](crate::submit)
    /// and [`corepool::current_num_threads`](crate::current_num_threads)
    /// use when called off any pool's worker (rayon's
    /// `ThreadPoolBuilder::build_global`). The global pool lives until the
    /// process ends; it is never shut down.
    ///
    /// Call it once, early: if the global pool already exists (an earlier
    /// `build_global`, or the first use of one of those functions, which
    /// builds it with [`Builder::new`]'s defaults), it fails with
    /// [`BuildError::GlobalPoolAlreadyInitialized`] and the existing pool
    /// is kept. Any other error is `build`'s, and leaves the global pool
    /// unbuilt.
    ///
    /// ```
    /// corepool::Builder::new()
    ///     .workers(2)
    ///     .thread_name_fn(|i| format!("global-{i}"))
    ///     .build_global()?;
    /// assert_eq!(corepool::current_num_threads(), 2);
    /// let (a, b) = corepool::join(|| 1, || 2); // runs on the global pool
    /// assert_eq!(a + b, 3);
    /// let again = corepool::Builder::new().build_global().unwrap_err();
    /// assert!(matches!(again, corepool::BuildError::GlobalPoolAlreadyInitialized));
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn build_global(self) -> Result<(), BuildError> {
        crate::global::init(self)
    }
}

/// How the pool's threads are named: `thread_name` or `thread_name_fn`.
pub(crate) enum ThreadName {
    /// Worker `i` is `{prefix}-{i}`, spare `k` is `{prefix}-spare-{k}`.
    Prefix(String),
    /// Every thread is named by the function, with its slot's index.
    Fn(Box<dyn Fn(usize) -> String + Send + Sync + 'static>),
}

impl ThreadName {
    /// The name of worker `index`.
    fn worker(&self, index: usize) -> String {
        match self {
            ThreadName::Prefix(prefix) => format!("{prefix}-{index}"),
            ThreadName::Fn(name) => name(index),
        }
    }

    /// The name of the spare of rank `rank`, in slot `slot`; `None` (no
    /// name) if the function panics or gives a name with a NUL byte: the
    /// spare is started by a blocked worker, inside a task.
    pub(crate) fn spare(&self, rank: usize, slot: usize) -> Option<String> {
        match self {
            ThreadName::Prefix(prefix) => Some(format!("{prefix}-spare-{rank}")),
            ThreadName::Fn(name) => catch_unwind(AssertUnwindSafe(|| name(slot))).ok(),
        }
        .filter(|name| !name.contains('\0'))
    }
}

impl std::fmt::Debug for ThreadName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThreadName::Prefix(prefix) => write!(f, "{prefix:?}"),
            ThreadName::Fn(_) => f.write_str("<thread_name_fn>"),
        }
    }
}

fn worker_thread(index: usize, target_core: Option<usize>, startup: &Startup) {
    let pinned =
        target_core.filter(|&id| core_affinity::set_for_current(core_affinity::CoreId { id }));
    let local = Worker::new_lifo();
    startup.report(index, local.stealer(), pinned);
    if let Some(shared) = startup.wait_for_shared() {
        WorkerContext::new(index, shared, local).run();
    }
}

/// The rendezvous between `build` and the workers it starts.
struct Startup {
    state: Mutex<StartupState>,
    changed: Condvar,
}

struct StartupState {
    reports: Vec<Option<(Stealer<Task>, Option<usize>)>>,
    reported: usize,
    /// `None` until `build` decides; then the shared state, or `None` to abort.
    outcome: Option<Option<Arc<Shared>>>,
}

impl Startup {
    fn new(workers: usize) -> Self {
        Startup {
            state: Mutex::new(StartupState {
                reports: (0..workers).map(|_| None).collect(),
                reported: 0,
                outcome: None,
            }),
            changed: Condvar::new(),
        }
    }

    fn report(&self, index: usize, stealer: Stealer<Task>, core: Option<usize>) {
        let mut state = lock(&self.state);
        state.reports[index] = Some((stealer, core));
        state.reported += 1;
        self.changed.notify_all();
    }

    fn wait_for_reports(&self) -> (Vec<Stealer<Task>>, Vec<Option<usize>>) {
        let mut state = lock(&self.state);
        while state.reported < state.reports.len() {
            state = wait(&self.changed, state);
        }
        state.reports.iter_mut().filter_map(Option::take).unzip()
    }

    fn publish(&self, outcome: Option<Arc<Shared>>) {
        lock(&self.state).outcome = Some(outcome);
        self.changed.notify_all();
    }

    fn wait_for_shared(&self) -> Option<Arc<Shared>> {
        let mut state = lock(&self.state);
        loop {
            if let Some(outcome) = &state.outcome {
                return outcome.clone();
            }
            state = wait(&self.changed, state);
        }
    }
}

fn wait<'a, T>(
    cvar: &Condvar,
    guard: crate::sync::MutexGuard<'a, T>,
) -> crate::sync::MutexGuard<'a, T> {
    match cvar.wait(guard) {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
