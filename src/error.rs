//! Error types. Every submission error hands the closure back
//! (`into_inner`), and none needs `F: Debug` to be printed.
//!
//! The submission errors are `Send + Sync` for any `F: Send`, so they go
//! through `?` into `Box<dyn Error + Send + Sync>` (or `anyhow::Error`)
//! even when the closure captures something that is not `Sync`, such as a
//! `Cell`. They hold the closure in a private `SyncWrapper`, which gives it
//! out only by value; that is also why their fields are private and why
//! they do not implement `Clone` or `PartialEq` (both need `&F`).

use std::error::Error;
use std::fmt;

use crate::sync_wrapper::SyncWrapper;

/// [`submit`](crate::Pool::submit) or [`spawn`](crate::Pool::spawn) failed
/// because the pool is shutting down. The closure is handed back.
///
/// `Send + Sync` whenever `F: Send`.
///
/// ```
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let handle = pool.handle();
/// drop(pool); // shuts the pool down
/// let err = handle.submit(|| println!("never runs")).unwrap_err();
/// let closure = err.into_inner(); // not lost: run it here, or drop it
/// closure();
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct SubmitError<F>(SyncWrapper<F>);

impl<F> SubmitError<F> {
    /// An error holding `task`; for code that wraps or fakes a pool.
    ///
    /// ```
    /// let err = corepool::SubmitError::new(42);
    /// assert_eq!(err.to_string(), "submitting to a pool that is shutting down");
    /// ```
    pub fn new(task: F) -> Self {
        SubmitError(SyncWrapper::new(task))
    }

    /// The closure that was not accepted.
    ///
    /// ```
    /// let err = corepool::SubmitError::new(42);
    /// assert_eq!(err.into_inner(), 42);
    /// ```
    pub fn into_inner(self) -> F {
        self.0.into_inner()
    }
}

impl<F> fmt::Debug for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubmitError(..)")
    }
}

impl<F> fmt::Display for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("submitting to a pool that is shutting down")
    }
}

impl<F> Error for SubmitError<F> {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TryKind {
    Full,
    Shutdown,
}

/// [`try_submit`](crate::Pool::try_submit) or
/// [`try_spawn`](crate::Pool::try_spawn) failed: the pool is full
/// ([`is_full`](Self::is_full)) or shutting down
/// ([`is_shutdown`](Self::is_shutdown)). The closure is handed back in
/// either case.
///
/// `Send + Sync` whenever `F: Send`.
///
/// ```
/// let pool = corepool::Pool::builder().workers(1).queue_capacity(1).build()?;
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// pool.submit(move || drop(rx.recv())).unwrap(); // occupies the worker...
/// while pool.queued() > 0 { std::thread::yield_now(); } // it has started
/// pool.submit(|| ()).unwrap(); // ...and fills the one slot
/// match pool.try_spawn(|| 1) {
///     Ok(_) => unreachable!("the pool is full"),
///     Err(err) if err.is_full() => assert_eq!(err.into_inner()(), 1), // run it ourselves
///     Err(_) => unreachable!("the pool is running"),
/// }
/// tx.send(()).unwrap();
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct TrySubmitError<F> {
    kind: TryKind,
    task: SyncWrapper<F>,
}

impl<F> TrySubmitError<F> {
    /// A "the pool is full" error holding `task`; for code that wraps or
    /// fakes a pool.
    ///
    /// ```
    /// let err = corepool::TrySubmitError::full(7);
    /// assert!(err.is_full());
    /// assert_eq!(err.to_string(), "the pool's queue is full");
    /// ```
    pub fn full(task: F) -> Self {
        TrySubmitError {
            kind: TryKind::Full,
            task: SyncWrapper::new(task),
        }
    }

    /// A "the pool is shutting down" error holding `task`.
    ///
    /// ```
    /// assert!(corepool::TrySubmitError::shutdown(7).is_shutdown());
    /// ```
    pub fn shutdown(task: F) -> Self {
        TrySubmitError {
            kind: TryKind::Shutdown,
            task: SyncWrapper::new(task),
        }
    }

    /// The closure that was not accepted.
    ///
    /// ```
    /// assert_eq!(corepool::TrySubmitError::shutdown("job").into_inner(), "job");
    /// ```
    pub fn into_inner(self) -> F {
        self.task.into_inner()
    }

    /// Whether the pool was full.
    ///
    /// ```
    /// assert!(corepool::TrySubmitError::full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.kind == TryKind::Full
    }

    /// Whether the pool is shutting down.
    ///
    /// ```
    /// assert!(corepool::TrySubmitError::shutdown(()).is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.kind == TryKind::Shutdown
    }
}

impl<F> fmt::Debug for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TryKind::Full => f.write_str("Full(..)"),
            TryKind::Shutdown => f.write_str("Shutdown(..)"),
        }
    }
}

impl<F> fmt::Display for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TryKind::Full => f.write_str("the pool's queue is full"),
            TryKind::Shutdown => f.write_str("submitting to a pool that is shutting down"),
        }
    }
}

impl<F> Error for TrySubmitError<F> {}

impl<F> From<SubmitError<F>> for TrySubmitError<F> {
    fn from(err: SubmitError<F>) -> Self {
        TrySubmitError::shutdown(err.into_inner())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TimeoutKind {
    Timeout,
    Shutdown,
}

/// [`submit_timeout`](crate::Pool::submit_timeout) failed: the pool stayed
/// full until the timeout passed ([`is_timeout`](Self::is_timeout)) or is
/// shutting down ([`is_shutdown`](Self::is_shutdown)). The closure is
/// handed back in either case.
///
/// `Send + Sync` whenever `F: Send`.
///
/// ```
/// use std::time::Duration;
/// let pool = corepool::Pool::builder().workers(1).queue_capacity(1).build()?;
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// pool.submit(move || drop(rx.recv())).unwrap(); // occupies the worker...
/// while pool.queued() > 0 { std::thread::yield_now(); } // it has started
/// pool.submit(|| ()).unwrap(); // ...and fills the one slot
/// let err = pool.submit_timeout(|| println!("late"), Duration::from_millis(10)).unwrap_err();
/// assert!(err.is_timeout());
/// let closure = err.into_inner(); // not lost: retry, run it here, or drop it
/// closure();
/// tx.send(()).unwrap();
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct SubmitTimeoutError<F> {
    kind: TimeoutKind,
    task: SyncWrapper<F>,
}

impl<F> SubmitTimeoutError<F> {
    /// A "timed out" error holding `task`; for code that wraps or fakes a
    /// pool.
    ///
    /// ```
    /// let err = corepool::SubmitTimeoutError::timeout(3);
    /// assert!(err.is_timeout());
    /// assert_eq!(err.into_inner(), 3);
    /// ```
    pub fn timeout(task: F) -> Self {
        SubmitTimeoutError {
            kind: TimeoutKind::Timeout,
            task: SyncWrapper::new(task),
        }
    }

    /// A "the pool is shutting down" error holding `task`.
    ///
    /// ```
    /// assert!(corepool::SubmitTimeoutError::shutdown(3).is_shutdown());
    /// ```
    pub fn shutdown(task: F) -> Self {
        SubmitTimeoutError {
            kind: TimeoutKind::Shutdown,
            task: SyncWrapper::new(task),
        }
    }

    /// The closure that was not accepted.
    ///
    /// ```
    /// assert_eq!(corepool::SubmitTimeoutError::timeout(1).into_inner(), 1);
    /// ```
    pub fn into_inner(self) -> F {
        self.task.into_inner()
    }

    /// Whether the timeout passed.
    ///
    /// ```
    /// assert!(corepool::SubmitTimeoutError::timeout(()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.kind == TimeoutKind::Timeout
    }

    /// Whether the pool is shutting down.
    ///
    /// ```
    /// assert!(corepool::SubmitTimeoutError::shutdown(()).is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.kind == TimeoutKind::Shutdown
    }
}

impl<F> fmt::Debug for SubmitTimeoutError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TimeoutKind::Timeout => f.write_str("Timeout(..)"),
            TimeoutKind::Shutdown => f.write_str("Shutdown(..)"),
        }
    }
}

impl<F> fmt::Display for SubmitTimeoutError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TimeoutKind::Timeout => f.write_str("timed out waiting for room in the pool's queue"),
            TimeoutKind::Shutdown => f.write_str("submitting to a pool that is shutting down"),
        }
    }
}

impl<F> Error for SubmitTimeoutError<F> {}

/// [`Builder::build`](crate::Builder::build) failed. No worker thread is
/// left running.
///
/// ```
/// let err = corepool::Pool::builder().workers(0).build().unwrap_err();
/// assert!(matches!(err, corepool::BuildError::ZeroWorkers));
/// assert!(err.to_string().contains("at least one worker"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// `workers(0)`: a pool needs at least one worker.
    ZeroWorkers,
    /// More workers than the pool can count.
    TooManyWorkers {
        /// What was asked for.
        requested: usize,
        /// The most this build supports.
        max: usize,
    },
    /// `queue_capacity(0)`: corepool has no rendezvous mode; see
    /// `docs/design.md`.
    ZeroCapacity,
    /// A capacity larger than the admission counter can hold.
    CapacityTooLarge {
        /// What was asked for.
        requested: usize,
        /// The largest capacity supported.
        max: usize,
    },
    /// The thread name contains a NUL byte, which no OS accepts.
    InvalidThreadName(String),
    /// `max_workers` is below the number of workers to start.
    MaxWorkersTooSmall {
        /// Workers to start.
        workers: usize,
        /// The `max_workers` given.
        max_workers: usize,
    },
    /// The autoscaling policy is inconsistent (for example `min > max`);
    /// the message says what.
    InvalidAutoscale(String),
    /// A queue-fill alert threshold outside `(0, 1]`.
    InvalidFillThreshold(f64),
    /// A worker stack smaller than [`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE):
    /// the worker's own frames would leave a task too little room, and a
    /// stack overflow aborts the process.
    StackTooSmall {
        /// The `stack_size` given, in bytes.
        requested: usize,
        /// The smallest accepted, in bytes.
        min: usize,
    },
    /// `queue_delay_budget(Duration::ZERO)`: most likely a "0 = off"
    /// setting passed through, and taken literally it would refuse every
    /// task that has to queue at all. Leave the budget unset to have none.
    ZeroDelayBudget,
    /// The OS refused to start a worker thread (for example, the stack size
    /// was refused, or the thread limit was reached).
    Spawn {
        /// Index of the worker that could not start.
        worker: usize,
        /// The stack size asked for, if one was set.
        stack_size: Option<usize>,
        /// The OS's error.
        source: std::io::Error,
    },
    /// [`Builder::build_global`](crate::Builder::build_global) was called
    /// once the global pool existed: built by an earlier `build_global`,
    /// or with the defaults by the first use of a free function
    /// ([`corepool::join`](crate::join), [`corepool::spawn`](crate::spawn),
    /// ...) off a worker. The pool that exists is kept unchanged.
    ///
    /// ```
    /// corepool::current_num_threads(); // builds the global pool, if needed
    /// let err = corepool::Builder::new().build_global().unwrap_err();
    /// assert!(matches!(err, corepool::BuildError::GlobalPoolAlreadyInitialized));
    /// ```
    GlobalPoolAlreadyInitialized,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroWorkers => {
                f.write_str("a pool needs at least one worker (workers(0) was given)")
            }
            BuildError::TooManyWorkers { requested, max } => {
                write!(
                    f,
                    "{requested} workers requested, at most {max} are supported"
                )
            }
            BuildError::ZeroCapacity => f.write_str(
                "queue_capacity(0) is not supported: the bound must admit at least one task",
            ),
            BuildError::CapacityTooLarge { requested, max } => {
                write!(
                    f,
                    "queue capacity {requested} is too large, at most {max} is supported"
                )
            }
            BuildError::InvalidThreadName(name) => {
                write!(f, "thread name {name:?} contains a NUL byte")
            }
            BuildError::MaxWorkersTooSmall {
                workers,
                max_workers,
            } => write!(
                f,
                "max_workers({max_workers}) is below the {workers} workers to start"
            ),
            BuildError::InvalidAutoscale(why) => write!(f, "invalid autoscale policy: {why}"),
            BuildError::InvalidFillThreshold(threshold) => {
                write!(f, "queue fill threshold {threshold} is outside (0, 1]")
            }
            BuildError::StackTooSmall { requested, min } => write!(
                f,
                "stack_size({requested}) is too small: a worker needs a stack of at least {min} bytes"
            ),
            BuildError::ZeroDelayBudget => f.write_str(
                "queue_delay_budget(0) is not supported: leave the budget unset to have none",
            ),
            BuildError::Spawn {
                worker,
                stack_size,
                source,
            } => {
                write!(f, "could not start worker thread {worker}")?;
                if let Some(size) = stack_size {
                    write!(f, " with a stack of {size} bytes")?;
                }
                write!(f, ": {source}")
            }
            BuildError::GlobalPoolAlreadyInitialized => {
                f.write_str("the global pool has already been initialized")
            }
        }
    }
}

impl Error for BuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BuildError::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// [`Pool::set_workers`](crate::Pool::set_workers) refused a worker count.
///
/// ```
/// let pool = corepool::Pool::builder().workers(2).max_workers(4).build()?;
/// let err = pool.set_workers(0).unwrap_err();
/// assert!(matches!(err, corepool::ResizeError::Zero));
/// assert!(pool.set_workers(5).is_err());
/// assert!(pool.set_workers(4).is_ok());
/// # Ok::<(), corepool::BuildError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResizeError {
    /// A pool needs at least one active worker.
    Zero,
    /// More workers than the pool reserved (`Builder::max_workers`).
    AboveMax {
        /// What was asked for.
        requested: usize,
        /// The pool's `max_workers`.
        max: usize,
    },
    /// The pool is shutting down.
    Shutdown,
}

impl fmt::Display for ResizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResizeError::Zero => f.write_str("set_workers(0): a pool needs at least one worker"),
            ResizeError::AboveMax { requested, max } => write!(
                f,
                "set_workers({requested}) is above the pool's max_workers ({max}); \
                 raise Builder::max_workers"
            ),
            ResizeError::Shutdown => f.write_str("cannot resize a pool that is shutting down"),
        }
    }
}

impl Error for ResizeError {}

/// [`Handle::set_queue_delay_budget`](crate::Handle::set_queue_delay_budget)
/// refused a budget.
///
/// ```
/// use std::time::Duration;
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let err = pool.handle().set_queue_delay_budget(Duration::from_millis(5)).unwrap_err();
/// assert!(matches!(err, corepool::BudgetError::NotConfigured));
/// # Ok::<(), corepool::BuildError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetError {
    /// The pool was built without
    /// [`Builder::queue_delay_budget`](crate::Builder::queue_delay_budget):
    /// a budget cannot be switched on later.
    NotConfigured,
    /// A zero budget would refuse every task that finds a queue.
    Zero,
}

impl fmt::Display for BudgetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetError::NotConfigured => f.write_str(
                "the pool was built without a queue-delay budget; set one with \
                 Builder::queue_delay_budget",
            ),
            BudgetError::Zero => f.write_str("a queue-delay budget must be above zero"),
        }
    }
}

impl Error for BudgetError {}
