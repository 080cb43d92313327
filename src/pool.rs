//! `Pool`: the public face of a pool, where a submitted task enters (the
//! routing itself is `crate::entry`'s; the cloneable `Handle` is
//! `crate::handle`'s), and its shutdown family.
//!
//! A submission from a worker of the same pool goes straight onto that
//! worker's own deque (see [`crate::worker`]): it never blocks and is not
//! counted by the bound, so tasks that spawn tasks cannot deadlock a full
//! pool. Any other submission first takes a slot of the bound (see
//! [`crate::admission`]), then the closure is boxed, pushed onto the global
//! injector, and one idle worker is woken if none is already searching (see
//! [`crate::sleep`]).

use std::time::Duration;

use crate::broadcast::{self, BroadcastContext};
use crate::builder::Builder;
use crate::error::{BuildError, ResizeError, SubmitError, SubmitTimeoutError, TrySubmitError};
use crate::handle::Handle;
use crate::metrics::MetricsSnapshot;
use crate::permit::Permit;
use crate::registry::Shared;
use crate::scope::{self, Scope, ScopeFifo};
use crate::spawn::JoinHandle;
use crate::submit_async::{ReserveAsync, SpawnAsync, SubmitAsync};
use crate::sync::{thread, Arc, Instant};
use crate::task::Task;
use crate::worker::{self, WorkerContext};

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

    /// Runs `op` on a worker of this pool, waits for it, and returns its
    /// result; `op` may borrow from the caller's stack. From outside the
    /// pool this takes a slot of the bound (blocking while full); from
    /// inside, `op` simply runs. Called on a worker of *another* pool, that
    /// worker blocks and its pool has a spare worker run its queues
    /// meanwhile ([`Builder::max_spare_threads`]), so pools may call each
    /// other back. While the pool shuts down, `op` runs on the caller's
    /// thread.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).thread_name("w").build()?;
    /// let name = pool.install(|| std::thread::current().name().map(String::from));
    /// assert_eq!(name.as_deref(), Some("w-0"));
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn install<OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce() -> R + Send,
        R: Send,
    {
        self.handle.install(op)
    }

    /// Runs `a` and `b` on this pool, potentially in parallel (see
    /// [`join`](crate::join)), and returns both results. Works from outside
    /// the pool (the join is injected and the caller waits) and from inside
    /// (the local deque; the caller waits by the wait protocol of
    /// `docs/design.md`, "Waiting inside a task").
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// let v: Vec<u64> = (1..=1000).collect();
    /// let (left, right) = v.split_at(500);
    /// let (a, b) = pool.join(|| left.iter().sum::<u64>(), || right.iter().sum::<u64>());
    /// assert_eq!(a + b, 500_500);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        self.install(|| crate::join::join_here(a, b))
    }

    /// Creates a fork-join scope: closures spawned in it may borrow from
    /// the caller's stack, and `scope` returns only after all of them, and
    /// all they spawned in turn, have finished. A panic in `op` or in any
    /// spawned closure is re-raised here, after everything has finished.
    ///
    /// Tasks spawned in a scope go onto the spawning worker's deque: they
    /// are not counted by the bound and never wait for room.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// let words = ["alpha", "beta", "gamma"];
    /// let mut lengths = [0usize; 3];
    /// pool.scope(|s| {
    ///     for (word, len) in words.iter().zip(lengths.iter_mut()) {
    ///         s.spawn(move |_| *len = word.len());
    ///     }
    /// });
    /// assert_eq!(lengths, [5, 4, 5]);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn scope<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&Scope<'scope>) -> R + Send,
        R: Send,
    {
        let handle = &self.handle;
        self.install(|| {
            let worker = worker::current(&handle.shared);
            scope::run_scope(worker.as_deref(), &handle.shared, op)
        })
    }

    /// Like [`scope`](Pool::scope), but `op` runs on the calling thread
    /// (rayon's `ThreadPool::in_place_scope`), so it need not be `Send`;
    /// the closures spawned in the scope run on this pool, and the call
    /// returns once all of them, and all they spawned, have finished.
    ///
    /// Called off this pool, each task `op` spawns goes through the bound
    /// like [`submit`](Pool::submit) (blocking while the queue is full;
    /// run right here if the pool is shutting down), and once `op` returns
    /// the caller parks until the last task wakes it (no CPU while it
    /// waits; on a worker of another pool, that pool has a spare run its
    /// queues meanwhile, as in [`install`](Pool::install)). Called on a
    /// worker of this pool it is `scope`: the tasks go onto that worker's
    /// deque and it helps run them while it waits.
    ///
    /// ```
    /// use std::cell::Cell;
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// let caller = std::thread::current().id();
    /// let not_send = Cell::new(0); // `op` may use it: it stays on this thread
    /// let mut squares = [0u64; 8];
    /// pool.in_place_scope(|s| {
    ///     assert_eq!(std::thread::current().id(), caller);
    ///     for (i, square) in squares.iter_mut().enumerate() {
    ///         not_send.set(not_send.get() + 1);
    ///         s.spawn(move |_| *square = (i * i) as u64);
    ///     }
    /// });
    /// assert_eq!(not_send.get(), 8);
    /// assert_eq!(squares[7], 49);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn in_place_scope<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&Scope<'scope>) -> R,
    {
        let handle = &self.handle;
        let worker = worker::current(&handle.shared);
        scope::run_scope(worker.as_deref(), &handle.shared, op)
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

    /// Like [`scope`](Pool::scope), but the tasks spawned with
    /// [`ScopeFifo::spawn_fifo`] start in the order they were spawned (per
    /// spawning worker), as rayon's `scope_fifo`; plain `spawn` and the
    /// free [`corepool::spawn`](crate::spawn) stay LIFO.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// let mut squares = [0u64; 8];
    /// pool.scope_fifo(|s| {
    ///     for (i, square) in squares.iter_mut().enumerate() {
    ///         s.spawn_fifo(move |_| *square = (i * i) as u64);
    ///     }
    /// });
    /// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49]);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn scope_fifo<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&ScopeFifo<'scope>) -> R + Send,
        R: Send,
    {
        let handle = &self.handle;
        self.install(|| {
            let worker = worker::current(&handle.shared);
            scope::run_scope_fifo(worker.as_deref(), &handle.shared, op)
        })
    }

    /// Runs `op` once on every active worker and returns the results in
    /// worker order ([`BroadcastContext::index`]), as rayon's `broadcast`:
    /// for per-thread caches, or flushing thread-locals.
    ///
    /// The workers taking part are those active when the broadcast starts
    /// (`0..workers()`): workers retired by [`set_workers`](Pool::set_workers)
    /// do not take part (one retired after the start still runs its
    /// share), nor do spare workers. Each worker runs its share when it
    /// next returns to its loop (at once if idle), or while it waits
    /// inside a `join` or `scope`. A worker in a blocking wait
    /// (`JoinHandle::join`, [`block_in_place`](crate::block_in_place),
    /// `install` into another pool, `wait_idle`) first runs the shares
    /// already posted to it; a share posted while it waits runs on the
    /// caller's thread instead (with that worker's index), so a broadcast
    /// from a task such a worker waits for still finishes.
    ///
    /// A broadcast is internal work: it takes no slot of the bound and is
    /// never refused. Called from a worker of this pool, that worker runs
    /// its own share itself, then waits for the others as a blocking wait
    /// (a spare stands in, [`Builder::max_spare_threads`]), running shares
    /// of other broadcasts meanwhile. Once the pool has shut down and its
    /// workers have exited, their shares run on the calling thread. If a
    /// share panics, the panic is re-raised here after every share ended.
    ///
    /// ```
    /// use std::cell::Cell;
    /// thread_local!(static HITS: Cell<u32> = const { Cell::new(0) });
    ///
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// pool.broadcast(|_| HITS.with(|h| h.set(h.get() + 1)));
    /// // Collect every worker's thread-local, in worker order.
    /// let hits = pool.broadcast(|ctx| (ctx.index(), HITS.with(Cell::get)));
    /// assert_eq!(hits, [(0, 1), (1, 1)]);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn broadcast<OP, R>(&self, op: OP) -> Vec<R>
    where
        OP: Fn(BroadcastContext<'_>) -> R + Sync,
        R: Send,
    {
        broadcast::broadcast(&self.handle.shared, op)
    }

    /// Runs `op` once on every active worker, as [`broadcast`](Pool::broadcast),
    /// without waiting (rayon's `spawn_broadcast`). A worker that calls it
    /// runs its own share later, from its loop, like the others; the share
    /// of a worker in a blocking wait runs on the caller's thread, before
    /// `spawn_broadcast` returns. A panic
    /// in a share goes to the pool's panic handler, like a submitted
    /// task's.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// let (tx, rx) = mpsc::channel();
    /// let tx = std::sync::Mutex::new(tx);
    /// pool.spawn_broadcast(move |ctx| tx.lock().unwrap().send(ctx.index()).unwrap());
    /// let mut seen: Vec<usize> = rx.iter().take(2).collect();
    /// seen.sort();
    /// assert_eq!(seen, [0, 1]);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn spawn_broadcast<OP>(&self, op: OP)
    where
        OP: Fn(BroadcastContext<'_>) + Send + Sync + 'static,
    {
        broadcast::spawn_broadcast(&self.handle.shared, op)
    }

    /// Stops accepting work, runs every task already accepted, and joins
    /// the workers. Dropping the pool does the same; this also reports.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// for _ in 0..10 {
    ///     pool.submit(|| {}).unwrap();
    /// }
    /// let report = pool.shutdown();
    /// assert_eq!(report.executed, 10);
    /// assert!(report.unstarted.is_empty());
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn shutdown(mut self) -> ShutdownReport {
        self.close_and_join();
        self.report(Vec::new())
    }

    /// Like [`shutdown`](Pool::shutdown), but waits at most `timeout` for
    /// the accepted tasks to finish. On timeout nothing is lost: the pool
    /// (already closed to new work, still draining) comes back inside the
    /// error, with how much was still pending, and the caller chooses:
    /// wait again, call [`shutdown_now`](Pool::shutdown_now) to take back
    /// what has not started, or drop it (which waits for the drain).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// pool.submit(|| {}).unwrap();
    /// let report = match pool.shutdown_timeout(Duration::from_secs(30)) {
    ///     Ok(report) => report,
    ///     Err(timed_out) => timed_out.into_pool().shutdown_now(),
    /// };
    /// assert_eq!(report.executed + report.unstarted.len() as u64, 1);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn shutdown_timeout(
        mut self,
        timeout: Duration,
    ) -> Result<ShutdownReport, ShutdownTimedOut> {
        let shared = self.handle.shared.clone();
        close(&shared);
        let deadline = Instant::now().checked_add(timeout);
        let running = if worker::is_inside(&shared) {
            // Cannot wait for our own thread to exit; report it running.
            shared.wait_for_exit(Some(Instant::now())).max(1)
        } else {
            shared.wait_for_exit(deadline)
        };
        if running > 0 {
            return Err(ShutdownTimedOut {
                queued: shared.admission.admitted(),
                running_workers: running,
                pool: self,
            });
        }
        self.close_and_join();
        Ok(self.report(Vec::new()))
    }

    /// Stops at once: no new work is accepted, no task that has not started
    /// will start, and the tasks that never started are handed back in the
    /// report's `unstarted`, to run or drop. Tasks already running finish
    /// first. A `JoinHandle` whose task is dropped resolves to a
    /// [`JoinError`](crate::JoinError) that
    /// [`is_cancelled`](crate::JoinError::is_cancelled).
    ///
    /// A `join` or `scope` already running completes its own pieces, and a
    /// `Pool::join`/`install`/`scope` waiting to start is run here rather
    /// than handed back (its caller is blocked on it). Outstanding
    /// [`Permit`]s are not waited for: one used afterwards drops its
    /// closure unrun, counted as handed back (see [`Permit`]).
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    /// pool.submit(move || {
    ///     started_tx.send(()).unwrap();
    ///     rx.recv().ok();
    /// })
    /// .unwrap();
    /// started_rx.recv().unwrap(); // the only worker is now busy
    /// let queued = pool.spawn(|| "queued").unwrap();
    /// let opener = std::thread::spawn(move || tx.send(()));
    /// let report = pool.shutdown_now();
    /// opener.join().unwrap().ok();
    /// assert_eq!(report.executed + report.unstarted.len() as u64, 2);
    /// drop(report); // drops the unstarted task, if it was handed back
    /// let _ = queued.join(); // its value if it ran, `Cancelled` if it was dropped
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn shutdown_now(mut self) -> ShutdownReport {
        let shared = self.handle.shared.clone();
        // Before the drain: a permit used from now on drops its task.
        shared.admission.abort_permits();
        shared.abort();
        self.close_and_join();
        let mut unstarted = Vec::new();
        for task in shared.drain_unstarted() {
            if task.is_stack_job() {
                // Someone is blocked on it (install/join/scope from outside).
                task.run();
            } else {
                unstarted.push(task);
            }
        }
        self.report(unstarted)
    }

    /// Closes the pool and returns at once, handing nothing back: the
    /// workers run every task already accepted (and what those tasks
    /// submit), then exit on their own; nothing waits for them. The
    /// counterpart of tokio's `Runtime::shutdown_background`.
    ///
    /// Use it where waiting is not an option (inside an async context, or
    /// in a task of the pool itself, where `shutdown` would wait for the
    /// caller's own worker). Later submissions through a [`Handle`] are
    /// refused with their closure back, as after any shutdown;
    /// [`Handle::metrics`] keeps working and shows the drain's progress.
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let (tx, rx) = mpsc::channel();
    /// for i in 0..3 {
    ///     let tx = tx.clone();
    ///     pool.submit(move || tx.send(i).unwrap()).unwrap();
    /// }
    /// let handle = pool.handle();
    /// pool.shutdown_background(); // returns at once
    /// assert!(handle.is_shutdown());
    /// assert!(handle.submit(|| {}).is_err());
    /// // Every accepted task still runs.
    /// let mut ran: Vec<i32> = rx.iter().take(3).collect();
    /// ran.sort();
    /// assert_eq!(ran, [0, 1, 2]);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn shutdown_background(mut self) {
        close(&self.handle.shared);
        // Dropping the join handles detaches the threads; `Drop` then finds
        // nothing to join.
        self.threads.clear();
    }

    fn report(&self, unstarted: Vec<Task>) -> ShutdownReport {
        let (executed, panicked) = self.handle.shared.totals();
        ShutdownReport {
            executed,
            panicked,
            unstarted,
        }
    }

    fn close_and_join(&mut self) {
        close(&self.handle.shared);
        let me = thread::current().id();
        for thread in self.threads.drain(..) {
            if thread.thread().id() == me {
                // Dropped by one of its own tasks (or its stop hook), or by
                // a fill-alert callback on the monitor thread: this thread
                // finishes and exits by itself once the call returns;
                // joining it from here would wait on ourselves. Dropping
                // its handle detaches it.
                continue;
            }
            // A worker thread never unwinds (task panics are caught), so an
            // error here would mean a bug in corepool; there is nothing
            // more to clean up either way.
            let _ = thread.join();
        }
        // Spares start while workers block, so once every core worker has
        // exited no new one starts; take until none is left.
        loop {
            let spares = self.handle.shared.take_spare_threads();
            if spares.is_empty() {
                break;
            }
            for thread in spares {
                if thread.thread().id() == std::thread::current().id() {
                    continue;
                }
                let _ = thread.join();
            }
        }
    }
}

/// Closes the pool (see `Shared::close`). Called from one of the pool's
/// own tasks, it also returns the slots of the bound that the calling
/// worker holds back (`Admission::start`): they count as admitted until
/// returned, and the other workers exit only once nothing admitted is
/// left, so a close from inside that kept them would wait on itself.
fn close(shared: &Arc<Shared>) {
    shared.close();
    if let Some(worker) = worker::current(shared) {
        worker.return_held_slots();
    }
}

/// What a shutdown did.
///
/// ```
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// pool.submit(|| panic!("oops")).unwrap();
/// let report = pool.shutdown();
/// assert_eq!((report.executed, report.panicked), (1, 1));
/// # Ok::<(), corepool::BuildError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Tasks the workers ran over the pool's life, including those that
    /// panicked.
    pub executed: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Tasks accepted but never started ([`Pool::shutdown_now`] only;
    /// empty after a graceful shutdown).
    pub unstarted: Vec<Task>,
}

/// [`Pool::shutdown_timeout`] ran out of time. The pool is closed to new
/// work and still draining; it comes back here so nothing is lost.
///
/// ```
/// use std::time::Duration;
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
/// pool.submit(move || {
///     started_tx.send(()).unwrap();
///     rx.recv().ok();
/// })
/// .unwrap();
/// started_rx.recv().unwrap();
/// let timed_out = pool.shutdown_timeout(Duration::from_millis(1)).unwrap_err();
/// assert_eq!(timed_out.running_workers(), 1);
/// tx.send(()).unwrap();
/// let report = timed_out.into_pool().shutdown();
/// assert_eq!(report.executed, 1);
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct ShutdownTimedOut {
    pool: Pool,
    queued: usize,
    running_workers: usize,
}

impl ShutdownTimedOut {
    /// Externally submitted tasks that had not started when time ran out.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let pool = corepool::Pool::builder().workers(1).build()?;
    /// # let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// # pool.submit(move || { rx.recv().ok(); }).unwrap();
    /// if let Err(timed_out) = pool.shutdown_timeout(Duration::ZERO) {
    ///     println!("{} tasks still queued", timed_out.queued());
    ///     # tx.send(()).unwrap();
    /// }
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Workers that had not finished when time ran out.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let pool = corepool::Pool::builder().workers(1).build()?;
    /// # let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// # pool.submit(move || { rx.recv().ok(); }).unwrap();
    /// if let Err(timed_out) = pool.shutdown_timeout(Duration::ZERO) {
    ///     assert!(timed_out.running_workers() >= 1);
    ///     # tx.send(()).unwrap();
    /// }
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn running_workers(&self) -> usize {
        self.running_workers
    }

    /// The pool, still draining, to wait on again or stop now.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let pool = corepool::Pool::builder().workers(1).build()?;
    /// # let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// # pool.submit(move || { rx.recv().ok(); }).unwrap();
    /// if let Err(timed_out) = pool.shutdown_timeout(Duration::ZERO) {
    ///     # tx.send(()).unwrap();
    ///     let report = timed_out.into_pool().shutdown_now();
    ///     println!("{} tasks handed back", report.unstarted.len());
    /// }
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn into_pool(self) -> Pool {
        self.pool
    }
}

impl std::fmt::Debug for ShutdownTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownTimedOut")
            .field("queued", &self.queued)
            .field("running_workers", &self.running_workers)
            .finish()
    }
}

impl std::fmt::Display for ShutdownTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "shutdown timed out with {} workers still running and {} tasks not yet started",
            self.running_workers, self.queued
        )
    }
}

impl std::error::Error for ShutdownTimedOut {}

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
