//! Error types. Every submission error hands the closure back
//! (`into_inner`), and none needs `F: Debug` to be printed.

use std::error::Error;
use std::fmt;

/// [`submit`](crate::Pool::submit) failed because the pool is shutting down.
/// The closure is handed back.
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
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SubmitError<F>(pub F);

impl<F> SubmitError<F> {
    /// The closure that was not accepted.
    ///
    /// ```
    /// let err = corepool::SubmitError(42);
    /// assert_eq!(err.into_inner(), 42);
    /// ```
    pub fn into_inner(self) -> F {
        self.0
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

/// [`corepool::submit`](crate::submit) or [`corepool::spawn`](crate::spawn)
/// was called from a thread that is not a corepool worker, so there is no
/// current pool to submit to. The closure is handed back.
///
/// ```
/// let err = corepool::submit(|| println!("no pool here")).unwrap_err();
/// assert_eq!(err.to_string(), "not called from a corepool worker thread");
/// let closure = err.into_inner();
/// closure(); // run it here, or submit it through a `Handle`
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct NotInPool<F>(pub F);

impl<F> NotInPool<F> {
    /// The closure that was not accepted.
    ///
    /// ```
    /// assert_eq!(corepool::NotInPool(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> F {
        self.0
    }
}

impl<F> fmt::Debug for NotInPool<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NotInPool(..)")
    }
}

impl<F> fmt::Display for NotInPool<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not called from a corepool worker thread")
    }
}

impl<F> Error for NotInPool<F> {}

/// [`try_submit`](crate::Pool::try_submit) failed. The closure is handed
/// back in either case.
///
/// ```
/// use corepool::TrySubmitError;
/// let err: TrySubmitError<u8> = TrySubmitError::Full(7);
/// assert!(err.is_full());
/// assert_eq!(err.to_string(), "the pool's queue is full");
/// assert_eq!(err.into_inner(), 7);
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySubmitError<F> {
    /// `queue_capacity` tasks are already accepted and not yet started.
    Full(F),
    /// The pool is shutting down.
    Shutdown(F),
}

impl<F> TrySubmitError<F> {
    /// The closure that was not accepted.
    ///
    /// ```
    /// assert_eq!(corepool::TrySubmitError::Shutdown("job").into_inner(), "job");
    /// ```
    pub fn into_inner(self) -> F {
        match self {
            TrySubmitError::Full(f) | TrySubmitError::Shutdown(f) => f,
        }
    }

    /// Whether the pool was full.
    ///
    /// ```
    /// assert!(corepool::TrySubmitError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySubmitError::Full(_))
    }

    /// Whether the pool is shutting down.
    ///
    /// ```
    /// assert!(corepool::TrySubmitError::Shutdown(()).is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        matches!(self, TrySubmitError::Shutdown(_))
    }
}

impl<F> fmt::Debug for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("Full(..)"),
            TrySubmitError::Shutdown(_) => f.write_str("Shutdown(..)"),
        }
    }
}

impl<F> fmt::Display for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("the pool's queue is full"),
            TrySubmitError::Shutdown(_) => {
                f.write_str("submitting to a pool that is shutting down")
            }
        }
    }
}

impl<F> Error for TrySubmitError<F> {}

impl<F> From<SubmitError<F>> for TrySubmitError<F> {
    fn from(err: SubmitError<F>) -> Self {
        TrySubmitError::Shutdown(err.0)
    }
}

/// [`submit_timeout`](crate::Pool::submit_timeout) failed. The closure is
/// handed back in either case.
///
/// ```
/// use corepool::SubmitTimeoutError;
/// let err: SubmitTimeoutError<u8> = SubmitTimeoutError::Timeout(3);
/// assert!(err.is_timeout());
/// assert_eq!(err.into_inner(), 3);
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SubmitTimeoutError<F> {
    /// The pool stayed full until the timeout passed.
    Timeout(F),
    /// The pool is shutting down.
    Shutdown(F),
}

impl<F> SubmitTimeoutError<F> {
    /// The closure that was not accepted.
    ///
    /// ```
    /// assert_eq!(corepool::SubmitTimeoutError::Timeout(1).into_inner(), 1);
    /// ```
    pub fn into_inner(self) -> F {
        match self {
            SubmitTimeoutError::Timeout(f) | SubmitTimeoutError::Shutdown(f) => f,
        }
    }

    /// Whether the timeout passed.
    ///
    /// ```
    /// assert!(corepool::SubmitTimeoutError::Timeout(()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SubmitTimeoutError::Timeout(_))
    }

    /// Whether the pool is shutting down.
    ///
    /// ```
    /// assert!(corepool::SubmitTimeoutError::Shutdown(()).is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        matches!(self, SubmitTimeoutError::Shutdown(_))
    }
}

impl<F> fmt::Debug for SubmitTimeoutError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SubmitTimeoutError::Shutdown(_) => f.write_str("Shutdown(..)"),
        }
    }
}

impl<F> fmt::Display for SubmitTimeoutError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitTimeoutError::Timeout(_) => {
                f.write_str("timed out waiting for room in the pool's queue")
            }
            SubmitTimeoutError::Shutdown(_) => {
                f.write_str("submitting to a pool that is shutting down")
            }
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
