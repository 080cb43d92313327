//! `Pool`: the public face of a pool, where a submitted task enters (the
//! routing itself is `crate::entry`'s; the cloneable `Handle` is
//! `crate::handle`'s). Its fork-join entry points are in `fork_join`, its
//! shutdown family in `shutdown`.
//!
//! A submission from a worker of the same pool goes straight onto that
//! worker's own deque (see [`crate::worker`]): it never blocks and is not
//! counted by the bound, so tasks that spawn tasks cannot deadlock a full
//! pool. Any other submission first takes a slot of the bound (see
//! [`crate::admission`]), then the closure is boxed, pushed onto the global
//! injector, and one idle worker is woken if none is already searching (see
//! [`crate::sleep`]).

mod fork_join;
mod shutdown;

use std::time::Duration;

use crate::builder::Builder;
use crate::error::{BuildError, ResizeError, SubmitError, SubmitTimeoutError, TrySubmitError};
use crate::handle::Handle;
use crate::metrics::MetricsSnapshot;
use crate::permit::Permit;
use crate::registry::Shared;
use crate::spawn::JoinHandle;
use crate::submit_async::{ReserveAsync, SpawnAsync, SubmitAsync};
use crate::sync::{thread, Arc, Instant};
use crate::worker::{self, WorkerContext};

pub use shutdown::{ShutdownReport, ShutdownTimedOut};

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
        self.handle.shared.active_workers()
    }

    /// Changes the number of active workers, at run time, up to the
    /// pool's [`max_workers`](crate::Builder::max_workers). Growing
    /// reactivates reserved workers, which join the stealing at once.
    /// Shrinking retires the workers with the highest indexes after their
    /// current task; the tasks queued on their deques move to the injector,
    /// so nothing is lost or run twice.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(4).build()?;
    /// pool.set_workers(2).unwrap();
    /// assert_eq!(pool.workers(), 2);
    /// assert!(pool.set_workers(0).is_err());
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn set_workers(&self, workers: usize) -> Result<(), ResizeError> {
        let shared = &self.handle.shared;
        if workers == 0 {
            return Err(ResizeError::Zero);
        }
        if workers > shared.num_workers() {
            return Err(ResizeError::AboveMax {
                requested: workers,
                max: shared.num_workers(),
            });
        }
        if shared.admission.is_closed() {
            return Err(ResizeError::Shutdown);
        }
        shared.set_active(workers);
        Ok(())
    }

    /// Runs one step of the autoscaler as if the time were `now`, and
    /// applies its decision; returns the new worker count if it changed.
    /// The pool's monitor thread calls this every
    /// [`AutoscalePolicy::tick`](crate::AutoscalePolicy::tick); with
    /// `tick: None` the caller drives it, with any clock (tests use a
    /// synthetic one). Without an autoscale policy it does nothing.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mut policy = corepool::AutoscalePolicy::new(1, 2);
    /// policy.tick = None;
    /// let pool = corepool::Pool::builder().autoscale_policy(policy).build()?;
    /// let t0 = Instant::now();
    /// assert_eq!(pool.autoscale_tick(t0), None); // an empty queue: no change
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn autoscale_tick(&self, now: Instant) -> Option<usize> {
        let shared = &self.handle.shared;
        let scaler = shared.autoscaler.as_ref()?;
        let mut scaler = crate::sync::lock(scaler);
        shared.autoscale_step(&mut scaler, now)
    }

    /// A snapshot of the pool's counters; see [`MetricsSnapshot`].
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// let m = pool.metrics();
    /// assert_eq!(m.workers, 2);
    /// assert_eq!(m.per_worker.len(), 2);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn metrics(&self) -> MetricsSnapshot {
        self.handle.metrics()
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

    /// Like [`submit`](Pool::submit), for a closure with a result: the
    /// returned [`JoinHandle`] joins it (blocking or `.await`) or cancels
    /// it. Blocks while the pool is full; fails only once it shuts down.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// let handles: Vec<_> = (0..4u64).map(|i| pool.spawn(move || i * i).unwrap()).collect();
    /// let squares: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    /// assert_eq!(squares, [0, 1, 4, 9]);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.handle.spawn(f)
    }

    /// Like [`try_submit`](Pool::try_submit), for a closure with a result.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// match pool.try_spawn(|| 1) {
    ///     Ok(handle) => assert_eq!(handle.join().unwrap(), 1),
    ///     Err(err) if err.is_full() => assert_eq!(err.into_inner()(), 1),
    ///     Err(_) => unreachable!("the pool is running"),
    /// }
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn try_spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.handle.try_spawn(f)
    }

    /// Reserves a slot of the bound, blocking while the pool is full. See
    /// [`Handle::reserve`].
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let permit = pool.reserve().unwrap();
    /// permit.submit(|| {});
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn reserve(&self) -> Result<Permit, SubmitError<()>> {
        self.handle.reserve()
    }

    /// Reserves a slot of the bound if one is free, without blocking. See
    /// [`Handle::try_reserve`].
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).queue_capacity(1).build()?;
    /// let permit = pool.try_reserve().unwrap();
    /// assert!(pool.try_reserve().unwrap_err().is_full()); // the one slot is ours
    /// drop(permit);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn try_reserve(&self) -> Result<Permit, TrySubmitError<()>> {
        self.handle.try_reserve()
    }

    /// Reserves a slot of the bound, waiting at most `timeout`. See
    /// [`Handle::reserve_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let permit = pool.reserve_timeout(Duration::from_millis(10)).unwrap();
    /// permit.submit(|| {});
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn reserve_timeout(&self, timeout: Duration) -> Result<Permit, SubmitTimeoutError<()>> {
        self.handle.reserve_timeout(timeout)
    }

    /// Reserves a slot of the bound, waiting without blocking the thread.
    /// See [`Handle::reserve_async`].
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let permit = futures::executor::block_on(pool.reserve_async()).unwrap();
    /// permit.submit(|| {});
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn reserve_async(&self) -> ReserveAsync<'_> {
        self.handle.reserve_async()
    }

    /// Submits `f`, waiting for room without blocking the thread. See
    /// [`Handle::submit_async`].
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// futures::executor::block_on(pool.submit_async(|| println!("ran"))).unwrap();
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn submit_async<F>(&self, f: F) -> SubmitAsync<'_, F>
    where
        F: FnOnce() + Send + 'static,
    {
        self.handle.submit_async(f)
    }

    /// Like [`submit_async`](Pool::submit_async), for a closure with a
    /// result. See [`Handle::spawn_async`].
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let four = futures::executor::block_on(async {
    ///     pool.spawn_async(|| 2 + 2).await.unwrap().await
    /// });
    /// assert_eq!(four.unwrap(), 4);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn spawn_async<F, T>(&self, f: F) -> SpawnAsync<'_, F>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.handle.spawn_async(f)
    }

    /// Blocks until the pool is idle: no task it accepted is queued or
    /// running, including the tasks those tasks spawned. The pool stays
    /// open: submit more and wait again (`threadpool`'s `ThreadPool::join`).
    /// Tasks submitted by other threads while it waits are waited for if
    /// they are accepted before the pool is seen idle.
    ///
    /// The caller sleeps on a condition variable that a worker signals
    /// when it is about to park (or retire, or exit) while someone waits:
    /// no polling, and no cost per task beyond two stores to counters of
    /// the worker's own (see `docs/design.md`, "Waiting until idle").
    ///
    /// Called from a task running on this pool, it would wait for that
    /// very task: it returns at once instead (and
    /// [`wait_idle_timeout`](Pool::wait_idle_timeout) returns `false`).
    /// On a worker of another pool, that worker counts as blocked: its
    /// pool has a spare run its queues meanwhile.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..100 {
    ///     let done = done.clone();
    ///     pool.submit(move || {
    ///         let done = done.clone();
    ///         // Children count too.
    ///         corepool::submit(move || {
    ///             done.fetch_add(1, Ordering::Relaxed);
    ///         });
    ///     })
    ///     .unwrap();
    /// }
    /// pool.wait_idle();
    /// assert_eq!(done.load(Ordering::Relaxed), 100);
    /// pool.submit(|| {}).unwrap(); // still open
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn wait_idle(&self) {
        self.wait_idle_until(None);
    }

    /// Like [`wait_idle`](Pool::wait_idle), waiting at most `timeout`.
    /// Returns whether the pool was seen idle (`false` on timeout, and at
    /// once when called from a task running on this pool). A timeout too
    /// large to represent as a deadline waits forever.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// pool.submit(move || rx.recv().unwrap()).unwrap();
    /// assert!(!pool.wait_idle_timeout(Duration::ZERO)); // the task waits on `rx`
    /// tx.send(()).unwrap();
    /// assert!(pool.wait_idle_timeout(Duration::from_secs(60)));
    /// assert!(!pool.install(|| pool.wait_idle_timeout(Duration::from_secs(60))));
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn wait_idle_timeout(&self, timeout: Duration) -> bool {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_idle_until(Some(deadline)),
            None => self.wait_idle_until(None),
        }
    }

    fn wait_idle_until(&self, deadline: Option<Instant>) -> bool {
        let shared = &self.handle.shared;
        if worker::is_inside(shared) {
            // It would wait for the caller's own task.
            return false;
        }
        let caller = worker::current_any();
        let _blocked = caller.as_deref().map(WorkerContext::block);
        shared.wait_idle(deadline)
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
