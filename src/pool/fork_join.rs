//! `Pool`'s fork-join entry points: `install`, `join`, the scopes and the
//! broadcasts, each running its work on the pool's workers and waiting for it.

use super::Pool;
use crate::broadcast::{self, BroadcastContext};
use crate::scope::{self, Scope, ScopeFifo};
use crate::worker;

impl Pool {
    /// Runs `op` on a worker of this pool, waits for it, and returns its
    /// result; `op` may borrow from the caller's stack. From outside the
    /// pool this takes a slot of the bound (blocking while full); from
    /// inside, `op` simply runs. Called on a worker of *another* pool, that
    /// worker blocks and its pool has a spare worker run its queues
    /// meanwhile (
    /// [`Builder::max_spare_threads`](crate::Builder::max_spare_threads)), so pools may call each
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
    /// `docs/fork-join.md`, "Waiting inside a task").
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
    /// (a spare stands in,
    /// [`Builder::max_spare_threads`](crate::Builder::max_spare_threads)), running shares
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
}
