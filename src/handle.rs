//! `Handle`: the cloneable way to submit work to a pool from any thread
//! (the submit, spawn and reserve families), and to read its gauges.
//!
//! Routing is `crate::entry`'s: a submission from a worker of the same pool
//! goes onto that worker's own deque and never blocks; any other first takes
//! a slot of the bound (see [`crate::admission`]).

use std::time::Duration;

use crate::admission::Refused;
use crate::budget::DelayBudget;
use crate::entry::Wait;
use crate::error::{BudgetError, SubmitError, SubmitTimeoutError, TrySubmitError};
use crate::job::{LockLatch, StackJob};
use crate::metrics::MetricsSnapshot;
use crate::permit::Permit;
use crate::registry::Shared;
use crate::spawn::JoinHandle;
use crate::submit_async::{ReserveAsync, SpawnAsync, SubmitAsync};
use crate::sync::Arc;
use crate::task::Task;
use crate::worker::{self, WorkerContext};

/// A cloneable, thread-safe handle for submitting work to a [`Pool`](crate::Pool).
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
    pub(crate) shared: Arc<Shared>,
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
    /// accepted even while the pool drains during shutdown. A task can do
    /// the same without capturing a handle: [`corepool::submit`](crate::submit).
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
        match self.shared.route(Wait::Forever) {
            Ok(route) => {
                self.shared.push(route, f);
                Ok(())
            }
            Err(_) => Err(SubmitError::new(f)),
        }
    }

    /// Submits `f` if there is room, without ever blocking. When the pool
    /// is full, the [`TrySubmitError`] (`is_full()`) hands the closure
    /// straight back (`into_inner`), ready to shed, retry or run elsewhere.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).queue_capacity(1).build()?;
    /// match pool.try_submit(|| {}) {
    ///     Ok(()) => {}
    ///     Err(err) if err.is_full() => err.into_inner()(), // run it ourselves
    ///     Err(_) => unreachable!("the pool is running"),
    /// }
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn try_submit<F>(&self, f: F) -> Result<(), TrySubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        match self.shared.route(Wait::Never) {
            Ok(route) => {
                self.shared.push(route, f);
                Ok(())
            }
            Err(Refused::Full) => Err(TrySubmitError::full(f)),
            Err(_) => Err(TrySubmitError::shutdown(f)),
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
        match self.shared.route(Wait::For(timeout)) {
            Ok(route) => {
                self.shared.push(route, f);
                Ok(())
            }
            Err(Refused::Closed) => Err(SubmitTimeoutError::shutdown(f)),
            Err(_) => Err(SubmitTimeoutError::timeout(f)),
        }
    }

    /// Like [`submit`](Handle::submit), for a closure with a result: the
    /// returned [`JoinHandle`] joins it, awaits it, or cancels it.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let handle = pool.handle().spawn(|| 2 + 2).unwrap();
    /// assert_eq!(handle.join().unwrap(), 4);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.shared.route(Wait::Forever) {
            Ok(route) => Ok(self.shared.push_spawned(route, f)),
            Err(_) => Err(SubmitError::new(f)),
        }
    }

    /// Like [`try_submit`](Handle::try_submit), for a closure with a result.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// if let Ok(handle) = pool.handle().try_spawn(|| "fits") {
    ///     assert_eq!(handle.join().unwrap(), "fits");
    /// }
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn try_spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.shared.route(Wait::Never) {
            Ok(route) => Ok(self.shared.push_spawned(route, f)),
            Err(Refused::Full) => Err(TrySubmitError::full(f)),
            Err(_) => Err(TrySubmitError::shutdown(f)),
        }
    }

    /// Reserves one slot of the bound, blocking while the pool is full,
    /// and returns it as a [`Permit`]: submitting through the permit then
    /// cannot fail. Waits in line with blocked [`submit`](Handle::submit)s
    /// and pending [`submit_async`](Handle::submit_async)s, first come
    /// first served. Fails only once the pool is shutting down.
    ///
    /// From a task running on this pool it never blocks: the permit takes
    /// a slot even above the capacity (see [`Permit`]).
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let handle = pool.handle();
    /// let permit = handle.reserve().expect("the pool is running");
    /// let job = permit.spawn(|| "ran");
    /// assert_eq!(job.join().unwrap(), "ran");
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn reserve(&self) -> Result<Permit, SubmitError<()>> {
        match self.shared.reserve_slot(Wait::Forever) {
            Ok(()) => Ok(Permit::new(self.shared.clone())),
            Err(_) => Err(SubmitError::new(())),
        }
    }

    /// Reserves one slot of the bound if one is free, without ever
    /// blocking: tokio's `Sender::try_reserve`. When the pool is full the
    /// error `is_full()`, and whatever the task would have captured is
    /// still the caller's; with
    /// [`Builder::queue_delay_budget`](crate::Builder::queue_delay_budget) it is also
    /// refused (`is_full()`) when a task submitted now is expected to wait
    /// longer than the budget. From a task of this pool, as `try_submit`
    /// there, it is never refused for a full pool (see [`Permit`]).
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let request = vec![1u8, 2, 3];
    /// match pool.handle().try_reserve() {
    ///     Ok(permit) => permit.submit(move || drop(request)),
    ///     Err(err) if err.is_full() => drop(request), // answer "busy" with it
    ///     Err(_) => unreachable!("the pool is running"),
    /// }
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn try_reserve(&self) -> Result<Permit, TrySubmitError<()>> {
        match self.shared.reserve_slot(Wait::Never) {
            Ok(()) => Ok(Permit::new(self.shared.clone())),
            Err(Refused::Full) => Err(TrySubmitError::full(())),
            Err(_) => Err(TrySubmitError::shutdown(())),
        }
    }

    /// Reserves one slot of the bound, waiting at most `timeout` for it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// match pool.handle().reserve_timeout(Duration::from_millis(50)) {
    ///     Ok(permit) => permit.submit(|| {}),
    ///     Err(err) => assert!(err.is_timeout()),
    /// }
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn reserve_timeout(&self, timeout: Duration) -> Result<Permit, SubmitTimeoutError<()>> {
        match self.shared.reserve_slot(Wait::For(timeout)) {
            Ok(()) => Ok(Permit::new(self.shared.clone())),
            Err(Refused::Closed) => Err(SubmitTimeoutError::shutdown(())),
            Err(_) => Err(SubmitTimeoutError::timeout(())),
        }
    }

    /// Reserves one slot of the bound, waiting for it without blocking the
    /// thread: the future resolves to a [`Permit`], or to an error once
    /// the pool shuts down. It waits in the same line as blocked
    /// producers, first come first served. Cancel-safe: dropped while it
    /// waits, it gives up its place and no slot is taken. On a worker of
    /// this pool it is ready at once (see [`reserve`](Handle::reserve)).
    /// Works with any executor (std `Waker`s only).
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let handle = pool.handle();
    /// let answer = futures::executor::block_on(async {
    ///     let permit = handle.reserve_async().await.expect("the pool is running");
    ///     permit.spawn(|| 40 + 2).await
    /// });
    /// assert_eq!(answer.unwrap(), 42);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn reserve_async(&self) -> ReserveAsync<'_> {
        ReserveAsync::new(&self.shared)
    }

    /// Submits `f`, waiting for room without blocking the thread: the
    /// async counterpart of [`submit`](Handle::submit), for callers on an
    /// async runtime. It waits in the same line as blocked producers,
    /// first come first served, and fails only once the pool shuts down,
    /// handing `f` back. Cancel-safe: dropped while it waits, it gives up
    /// its place and drops `f` unrun; nothing else is lost. From a task
    /// of this pool, `f` goes onto the worker's own deque at the first
    /// poll, as with `submit`.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).queue_capacity(4).build()?;
    /// let handle = pool.handle();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// futures::executor::block_on(async {
    ///     for i in 0..10 {
    ///         let tx = tx.clone();
    ///         // Waits for a slot whenever four are queued.
    ///         handle.submit_async(move || tx.send(i).unwrap()).await.unwrap();
    ///     }
    /// });
    /// assert_eq!(rx.iter().take(10).count(), 10);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn submit_async<F>(&self, f: F) -> SubmitAsync<'_, F>
    where
        F: FnOnce() + Send + 'static,
    {
        SubmitAsync::new(&self.shared, f)
    }

    /// Like [`submit_async`](Handle::submit_async), for a closure with a
    /// result: resolves to the task's [`JoinHandle`], itself a future of
    /// the result.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let handle = pool.handle();
    /// let sum = futures::executor::block_on(async {
    ///     let job = handle.spawn_async(|| (1..=10).sum::<u32>()).await.unwrap();
    ///     job.await.unwrap()
    /// });
    /// assert_eq!(sum, 55);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn spawn_async<F, T>(&self, f: F) -> SpawnAsync<'_, F>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        SpawnAsync::new(&self.shared, f)
    }

    /// A snapshot of the pool's counters; see [`MetricsSnapshot`]. Works
    /// after the pool is gone too (the counters are final then).
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let handle = pool.handle();
    /// handle.submit(|| {}).unwrap();
    /// drop(pool);
    /// assert_eq!(handle.metrics().executed, 1);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics()
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

    /// The [delay budget](crate::Builder::queue_delay_budget)'s estimate
    /// of how long a task submitted now would wait before it starts, on
    /// average: the figure `try_submit` compares with the budget's current
    /// limit (at most the budget; see `docs/delay-budget.md`). A few loads, no lock:
    /// cheap enough to read per request (say, to log it beside a refusal).
    /// `None` without a budget, or before any task was observed.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = corepool::Pool::builder()
    ///     .workers(1)
    ///     .queue_delay_budget(Duration::from_millis(10))
    ///     .build()?;
    /// assert_eq!(pool.handle().expected_queue_delay(), None); // nothing observed yet
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn expected_queue_delay(&self) -> Option<Duration> {
        self.shared.expected_queue_delay()
    }

    /// The [delay budget](crate::Builder::queue_delay_budget) in force:
    /// the one built with, or the last one set; `None` without a budget.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = corepool::Pool::builder()
    ///     .workers(1)
    ///     .queue_delay_budget(Duration::from_millis(10))
    ///     .build()?;
    /// assert_eq!(pool.handle().queue_delay_budget(), Some(Duration::from_millis(10)));
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn queue_delay_budget(&self) -> Option<Duration> {
        self.shared.delay_budget.as_ref().map(DelayBudget::budget)
    }

    /// Replaces the [delay budget](crate::Builder::queue_delay_budget) of
    /// a pool built with one, for the `try_*` submissions from now on:
    /// for a service whose latency target covers more than the queue wait
    /// and that measures the rest as it runs (its budget for the wait is
    /// the target minus that; `examples/http_service.rs` does so). The
    /// limit the pool steered below the old budget keeps its ratio to the
    /// new one, so what it learned about the scatter of waits carries
    /// over. Cheap (a few relaxed atomic operations, no lock), and
    /// callable from anywhere, a task of this pool included.
    ///
    /// Errors: [`BudgetError::NotConfigured`] if the pool was built
    /// without a budget, [`BudgetError::Zero`] for a zero budget; the
    /// budget in force is then unchanged.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = corepool::Pool::builder()
    ///     .workers(1)
    ///     .queue_delay_budget(Duration::from_millis(10))
    ///     .build()?;
    /// let handle = pool.handle();
    /// handle.set_queue_delay_budget(Duration::from_millis(8)).unwrap();
    /// assert_eq!(handle.queue_delay_budget(), Some(Duration::from_millis(8)));
    /// assert_eq!(
    ///     handle.set_queue_delay_budget(Duration::ZERO),
    ///     Err(corepool::BudgetError::Zero)
    /// );
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn set_queue_delay_budget(&self, budget: Duration) -> Result<(), BudgetError> {
        let Some(delay_budget) = &self.shared.delay_budget else {
            return Err(BudgetError::NotConfigured);
        };
        if budget.is_zero() {
            return Err(BudgetError::Zero);
        }
        delay_budget.set_budget(budget);
        Ok(())
    }

    /// Runs `op` on a worker of this pool and returns its result; see
    /// [`Pool::install`](crate::Pool::install).
    pub(crate) fn install<OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce() -> R + Send,
        R: Send,
    {
        if worker::current(&self.shared).is_some() {
            return op();
        }
        let job = StackJob::new(LockLatch::new(), op);
        if self.shared.admission.acquire(None).is_err() {
            // Shutting down: run it here rather than lose it.
            job.run_inline();
            return job.into_result();
        }
        // SAFETY: `job` stays on this frame until its latch is set: we wait
        // right below and nothing between can unwind; `shutdown_now` runs a
        // stack job it collects (never hands it back), setting the latch.
        let job_ref = unsafe { job.as_job_ref() };
        self.shared.inject(Task::stack(job_ref, true));
        // On a worker of another pool, that pool has a spare run its queues
        // while this worker blocks (`crate::wait`).
        let caller = worker::current_any();
        let _blocked = caller.as_deref().map(WorkerContext::block);
        job.latch.wait();
        job.into_result()
    }
}
