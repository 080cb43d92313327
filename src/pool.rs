//! `Pool` and `Handle`: where a submitted task enters.
//!
//! A submission from a worker of the same pool goes straight onto that
//! worker's own deque (see [`crate::worker`]): it never blocks and is not
//! counted by the bound, so tasks that spawn tasks cannot deadlock a full
//! pool. Any other submission first takes a slot of the bound (see
//! [`crate::admission`]), then the closure is boxed, pushed onto the global
//! injector, and one idle worker is woken if none is already searching (see
//! [`crate::sleep`]).

use std::time::Duration;

use crate::admission::Refused;
use crate::builder::Builder;
use crate::error::{BuildError, SubmitError, SubmitTimeoutError, TrySubmitError};
use crate::sync::{thread, Arc, Instant};
use crate::task::Task;
use crate::worker::{self, Shared};

/// A pool of long-lived worker threads, each pinned to a core, with a
/// bounded queue for work submitted from outside.
///
/// Dropping the pool shuts it down gracefully: it stops accepting work
/// (handles then get `Shutdown` errors), runs every task it accepted, and
/// joins its threads.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let pool = corepool::Pool::builder().workers(2).queue_capacity(64).build()?;
/// let done = Arc::new(AtomicUsize::new(0));
/// for _ in 0..100 {
///     let done = done.clone();
///     pool.submit(move || {
///         done.fetch_add(1, Ordering::Relaxed);
///     })
///     .expect("the pool is running");
/// }
/// drop(pool); // waits for all 100 tasks
/// assert_eq!(done.load(Ordering::Relaxed), 100);
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct Pool {
    handle: Handle,
    threads: Vec<thread::JoinHandle<()>>,
    worker_cores: Vec<Option<usize>>,
}

/// A cloneable, thread-safe handle for submitting work to a [`Pool`].
///
/// Handles do not keep the pool alive: once the pool is dropped, every
/// submission through a handle fails with a `Shutdown` error that hands
/// the closure back.
///
/// ```
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let handle = pool.handle();
/// let producer = std::thread::spawn(move || {
///     handle.submit(|| println!("hello from a pool worker")).is_ok()
/// });
/// assert!(producer.join().unwrap());
/// # Ok::<(), corepool::BuildError>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Pool {
    /// A builder to configure a pool.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(2).pin_workers(false).build()?;
    /// assert_eq!(pool.workers(), 2);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A pool with the default configuration: one worker per core in the
    /// process's affinity mask, each pinned, and the default capacity.
    ///
    /// ```
    /// let pool = corepool::Pool::new()?;
    /// assert!(pool.workers() >= 1);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn new() -> Result<Pool, BuildError> {
        Builder::new().build()
    }

    pub(crate) fn from_parts(
        shared: Arc<Shared>,
        threads: Vec<thread::JoinHandle<()>>,
        worker_cores: Vec<Option<usize>>,
    ) -> Pool {
        Pool {
            handle: Handle { shared },
            threads,
            worker_cores,
        }
    }

    /// A new handle for submitting work from other threads.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let handle = pool.handle();
    /// handle.submit(|| {}).unwrap();
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Submits `f`, blocking while the pool's queue is full. See
    /// [`Handle::submit`].
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// pool.submit(|| println!("ran")).unwrap();
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn submit<F>(&self, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.handle.submit(f)
    }

    /// Submits `f` if there is room, without blocking. See
    /// [`Handle::try_submit`].
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// if let Err(err) = pool.try_submit(|| println!("ran")) {
    ///     let shed = err.into_inner(); // full: shed the load, or run it here
    ///     shed();
    /// }
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn try_submit<F>(&self, f: F) -> Result<(), TrySubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.handle.try_submit(f)
    }

    /// Submits `f`, waiting at most `timeout` for room. See
    /// [`Handle::submit_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// pool.submit_timeout(|| println!("ran"), Duration::from_millis(10)).unwrap();
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn submit_timeout<F>(&self, f: F, timeout: Duration) -> Result<(), SubmitTimeoutError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.handle.submit_timeout(f, timeout)
    }

    /// The number of worker threads.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(3).build()?;
    /// assert_eq!(pool.workers(), 3);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn workers(&self) -> usize {
        self.worker_cores.len()
    }

    /// For each worker, the core it is pinned to, or `None` where pinning
    /// was turned off, is unsupported, or was refused by the OS.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(2).pin_workers(false).build()?;
    /// assert_eq!(pool.worker_cores(), &[None, None]);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn worker_cores(&self) -> &[Option<usize>] {
        &self.worker_cores
    }

    /// The most externally submitted tasks that may be accepted and not yet
    /// started at once.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().queue_capacity(8).build()?;
    /// assert_eq!(pool.capacity(), 8);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.handle.capacity()
    }

    /// Externally submitted tasks accepted and not yet started.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// assert!(pool.queued() <= pool.capacity());
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn queued(&self) -> usize {
        self.handle.queued()
    }

    /// Stops accepting work, runs every accepted task and joins the
    /// workers. The same as dropping the pool, made explicit.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let handle = pool.handle();
    /// pool.shutdown();
    /// assert!(handle.is_shutdown());
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn shutdown(self) {
        drop(self);
    }

    fn close_and_join(&mut self) {
        self.handle.shared.close();
        let inside = worker::is_inside(&self.handle.shared);
        for thread in self.threads.drain(..) {
            if inside && thread.thread().id() == thread::current().id() {
                // Dropped by one of its own tasks: this worker finishes its
                // deque and exits by itself once the task returns; joining
                // it from here would wait on ourselves.
                continue;
            }
            // A worker thread never unwinds (task panics are caught), so an
            // error here would mean a bug in corepool; there is nothing
            // more to clean up either way.
            let _ = thread.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.close_and_join();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers())
            .field("capacity", &self.capacity())
            .field("queued", &self.queued())
            .finish()
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("capacity", &self.capacity())
            .field("queued", &self.queued())
            .field("shutdown", &self.is_shutdown())
            .finish()
    }
}

impl Handle {
    /// Submits `f`, blocking while `capacity` externally submitted tasks
    /// are accepted and not yet started.
    ///
    /// Called from a task running on this pool, `f` goes onto the calling
    /// worker's own deque instead: it never blocks and is not counted by
    /// the bound (so a full pool cannot deadlock on itself), and it is
    /// accepted even while the pool drains during shutdown.
    ///
    /// Fails only once the pool is shutting down, handing `f` back.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).queue_capacity(4).build()?;
    /// let handle = pool.handle();
    /// let inner = handle.clone();
    /// handle
    ///     .submit(move || {
    ///         // From inside the pool: goes to this worker's deque, never blocks.
    ///         inner.submit(|| println!("child")).unwrap();
    ///     })
    ///     .unwrap();
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn submit<F>(&self, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        if let Some(worker) = worker::current(&self.shared) {
            worker.push(Task::new(Box::new(f), false));
            return Ok(());
        }
        match self.shared.admission.acquire(None) {
            Ok(()) => {
                self.inject(Box::new(f));
                Ok(())
            }
            Err(_) => Err(SubmitError(f)),
        }
    }

    /// Submits `f` if there is room, without ever blocking. When the pool
    /// is full, `TrySubmitError::Full(f)` hands the closure straight back,
    /// ready to shed, retry or run elsewhere.
    ///
    /// ```
    /// use corepool::TrySubmitError;
    /// let pool = corepool::Pool::builder().workers(1).queue_capacity(1).build()?;
    /// match pool.try_submit(|| {}) {
    ///     Ok(()) => {}
    ///     Err(TrySubmitError::Full(f)) => f(), // run it ourselves
    ///     Err(TrySubmitError::Shutdown(_)) => unreachable!(),
    /// }
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn try_submit<F>(&self, f: F) -> Result<(), TrySubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        if let Some(worker) = worker::current(&self.shared) {
            worker.push(Task::new(Box::new(f), false));
            return Ok(());
        }
        match self.shared.admission.try_acquire() {
            Ok(()) => {
                self.inject(Box::new(f));
                Ok(())
            }
            Err(Refused::Full) => Err(TrySubmitError::Full(f)),
            Err(_) => Err(TrySubmitError::Shutdown(f)),
        }
    }

    /// Submits `f`, waiting at most `timeout` for room in the queue.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let handle = pool.handle();
    /// handle.submit_timeout(|| {}, Duration::from_millis(5)).unwrap();
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn submit_timeout<F>(&self, f: F, timeout: Duration) -> Result<(), SubmitTimeoutError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        if let Some(worker) = worker::current(&self.shared) {
            worker.push(Task::new(Box::new(f), false));
            return Ok(());
        }
        // A timeout too large to represent as a deadline waits forever.
        let deadline = Instant::now().checked_add(timeout);
        let acquired = match deadline {
            Some(deadline) => self.shared.admission.acquire(Some(deadline)),
            None => self.shared.admission.acquire(None),
        };
        match acquired {
            Ok(()) => {
                self.inject(Box::new(f));
                Ok(())
            }
            Err(Refused::TimedOut) | Err(Refused::Full) => Err(SubmitTimeoutError::Timeout(f)),
            Err(Refused::Closed) => Err(SubmitTimeoutError::Shutdown(f)),
        }
    }

    /// Whether the pool has begun shutting down (or is gone).
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let handle = pool.handle();
    /// assert!(!handle.is_shutdown());
    /// drop(pool);
    /// assert!(handle.is_shutdown());
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.shared.admission.is_closed()
    }

    /// The pool's queue capacity.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().queue_capacity(16).build()?;
    /// assert_eq!(pool.handle().capacity(), 16);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.admission.capacity()
    }

    /// Externally submitted tasks accepted and not yet started.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// assert!(pool.handle().queued() <= pool.capacity());
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn queued(&self) -> usize {
        self.shared.admission.admitted()
    }

    /// After a slot was taken: the task joins the injector and, if nobody
    /// is looking for work, one sleeping worker is woken.
    fn inject(&self, run: Box<dyn FnOnce() + Send + 'static>) {
        self.shared.injector.push(Task::new(run, true));
        self.shared.sleep.notify_work();
    }
}
