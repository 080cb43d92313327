//! The free functions that find their pool by themselves: [`join`]
//! (`rayon::join`), [`submit`] and [`spawn`] (the counterparts of
//! `rayon::spawn` and `tokio::spawn`), [`scope`] (`rayon::scope`), and
//! where a task runs:
//! [`current_thread_index`] and [`current_num_threads`].
//!
//! On a worker thread they use that worker's pool. A task that spawns
//! more tasks would otherwise capture a `Handle` clone, and every hop of
//! a chain or a ping-pong would pay two atomic updates of the pool's
//! reference count, on a cache line that every worker writes
//! (`docs/benchmarks.md`, "ping_pong": half of corepool's time there). The
//! worker running the task is already known to its thread, so these
//! functions push onto its deque through the thread-local worker context,
//! exactly where `Handle::submit` from inside the pool puts a task: not
//! counted by the bound, never blocking, accepted while the pool drains.
//!
//! Off a worker thread they use the global pool (`crate::global`), built
//! with the defaults on first use unless
//! [`Builder::build_global`](crate::Builder::build_global) configured it.
//!
//! Also here, as in rayon and tokio: [`spawn_fifo`] (children that start
//! in the order spawned), [`yield_now`] (run one pending task from inside
//! a long one) and [`block_in_place`] (block without taking a worker away
//! from the pool).

use crate::global::{global, NEVER_SHUTS_DOWN};
use crate::join::join_on;
use crate::scope::{self, Scope};
use crate::spawn::{self, JoinHandle};
use crate::task::Task;
use crate::worker::{self, WorkerContext};

/// Runs `a` and `b`, potentially in parallel, and returns both results.
///
/// On a worker thread (of any corepool pool), `b` may be taken by another
/// worker while the caller runs `a`. A worker keeps one piece of its joins
/// on offer, the oldest `b` it holds, whenever its deque is otherwise
/// empty, and runs the others itself, so that the many small joins at the
/// bottom of a recursion cost no atomic operation. On any other thread,
/// the join runs on the global pool (built with the defaults on first use
/// unless [`Builder::build_global`](crate::Builder::build_global)
/// configured it), as [`Pool::join`](crate::Pool::join) on it: both
/// closures may run in parallel and the caller blocks until both are done
/// (`rayon::join`). To join on a given pool from outside it, use
/// `Pool::join`.
///
/// If either closure panics, the panic is re-raised after both have
/// finished (the first closure's panic wins if both panic).
///
/// For a recursion that joins at every node down to tiny leaves, where
/// the join itself is most of the work, [`join_context`](crate::join_context)
/// and [`JoinContext::join`](crate::JoinContext::join) cost about a
/// plain call, at the price of offering only some second closures.
///
/// `a` must not wait for `b` by blocking (on a channel, a lock): `b` may
/// run after `a`, on the same thread. It always does in a pool of one
/// worker; in larger pools `b` is not offered at all while this worker's
/// deque holds anything (an older `b` on offer, a spawned task), and
/// offering it does not guarantee that a sleeping worker wakes for it (the
/// push skips the fence that [`submit`](crate::submit) pays; the joining
/// worker runs `b` itself if no one took it). rayon's `join` has the same
/// rule.
///
/// ```
/// fn fib(n: u64) -> u64 {
///     if n < 15 {
///         return if n < 2 { n } else { fib(n - 1) + fib(n - 2) };
///     }
///     let (a, b) = corepool::join(|| fib(n - 1), || fib(n - 2));
///     a + b
/// }
/// let pool = corepool::Pool::builder().workers(2).build()?;
/// assert_eq!(pool.install(|| fib(25)), 75_025);
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let off_worker = worker::with_current(|current| match current {
        Some(worker) => Ok(join_on(worker, a, b)),
        None => Err((a, b)),
    });
    match off_worker {
        Ok(results) => results,
        Err((a, b)) => global().join(a, b),
    }
}

/// Submits `f` to the pool whose worker is running the calling task,
/// onto that worker's own deque (idle workers steal from there); called
/// off any worker, submits it to the global pool.
///
/// On a worker, like [`Handle::submit`](crate::Handle::submit) called from
/// inside the pool, it never blocks, is not counted by the bound, and is
/// accepted even while the pool drains during shutdown. Off a worker it is
/// the global pool's [`Pool::submit`](crate::Pool::submit): it blocks while
/// the global pool's queue is full (it is never refused: the global pool
/// never shuts down). `rayon::spawn`.
///
/// ```
/// use std::sync::mpsc;
///
/// let pool = corepool::Pool::builder().workers(2).build()?;
/// let (tx, rx) = mpsc::channel();
/// pool.submit(move || {
///     for i in 0..3 {
///         let tx = tx.clone();
///         // No handle captured: the task knows its pool.
///         corepool::submit(move || tx.send(i).unwrap());
///     }
/// })
/// .unwrap();
/// let mut got: Vec<i32> = rx.iter().take(3).collect();
/// got.sort();
/// assert_eq!(got, [0, 1, 2]);
///
/// // Not on a worker: the global pool runs it.
/// let (tx, rx) = mpsc::channel();
/// corepool::submit(move || tx.send(corepool::current_thread_index()).unwrap());
/// assert!(rx.recv().unwrap().is_some());
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub fn submit<F>(f: F)
where
    F: FnOnce() + Send + 'static,
{
    let f = worker::with_current(|current| match current {
        Some(worker) => {
            worker.push(Task::new(f, false, false));
            None
        }
        None => Some(f),
    });
    if let Some(f) = f {
        if global().submit(f).is_err() {
            unreachable!("{NEVER_SHUTS_DOWN}");
        }
    }
}

/// Like [`submit`], for a closure with a result: the returned
/// [`JoinHandle`] joins it, awaits it, or cancels it.
///
/// ```
/// let pool = corepool::Pool::builder().workers(2).build()?;
/// let sum = pool
///     .spawn(|| {
///         let left = corepool::spawn(|| (1..=50u64).sum::<u64>());
///         let right: u64 = (51..=100u64).sum();
///         // If no other worker started `left`, this one runs it here.
///         left.join().unwrap() + right
///     })
///     .unwrap();
/// assert_eq!(sum.join().unwrap(), 5050);
/// // Not on a worker: the global pool runs it.
/// assert_eq!(corepool::spawn(|| 1).join().unwrap(), 1);
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match spawn_on_worker(f, WorkerContext::push) {
        Ok(handle) => handle,
        Err(f) => match global().spawn(f) {
            Ok(handle) => handle,
            Err(_) => unreachable!("{NEVER_SHUTS_DOWN}"),
        },
    }
}

/// Spawns `f` onto the calling worker with `push` (its deque, or its FIFO
/// queue); hands `f` back off a worker.
fn spawn_on_worker<F, T>(f: F, push: fn(&WorkerContext, Task)) -> Result<JoinHandle<T>, F>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    worker::with_current(|current| match current {
        Some(worker) => {
            let (queued, handle) = spawn::wrap(f, worker.pool_id());
            push(worker, Task::claimable(queued, false, false));
            Ok(handle)
        }
        None => Err(f),
    })
}

/// Creates a fork-join scope on the current pool: the calling worker's,
/// or the global pool's off any worker (`rayon::scope`). Closures spawned
/// in it may borrow from the caller's stack; `scope` returns once all of
/// them, and all they spawned, have finished. See
/// [`Pool::scope`](crate::Pool::scope): on a worker, `op` runs right
/// there; off a worker, `op` runs on a worker of the global pool while the
/// caller blocks.
///
/// ```
/// let mut parts = [0u64; 4];
/// corepool::scope(|s| {
///     for (i, part) in parts.iter_mut().enumerate() {
///         s.spawn(move |_| *part = (i as u64 * 100..(i as u64 + 1) * 100).sum());
///     }
/// });
/// assert_eq!(parts.iter().sum::<u64>(), (0..400).sum());
/// ```
pub fn scope<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R + Send,
    R: Send,
{
    let op = worker::with_current(|current| match current {
        Some(worker) => Ok(scope::run_scope(Some(worker), worker.shared(), op)),
        None => Err(op),
    });
    match op {
        Ok(result) => result,
        Err(op) => global().scope(op),
    }
}

/// The index of the calling thread in its pool, or `None` off any pool's
/// worker (`rayon::current_thread_index`). Workers are numbered from 0
/// (the index their [`thread_name`](crate::Builder::thread_name) and
/// hooks get); a spare thread, standing in for a blocked worker, reports
/// its slot's index, which follows the workers' (`max_workers + k` for
/// the `k`-th spare).
///
/// ```
/// assert_eq!(corepool::current_thread_index(), None);
/// let pool = corepool::Pool::builder().workers(3).build()?;
/// let index = pool.install(corepool::current_thread_index);
/// assert!(index.is_some_and(|i| i < 3));
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub fn current_thread_index() -> Option<usize> {
    worker::with_current(|current| current.map(WorkerContext::index))
}

/// The number of active workers of the current pool: the calling
/// worker's pool, or the global pool off any worker (which builds the
/// global pool if it does not exist yet; `rayon::current_num_threads`).
/// Spare threads are not counted; after
/// [`Pool::set_workers`](crate::Pool::set_workers) the new count is.
///
/// ```
/// let pool = corepool::Pool::builder().workers(3).build()?;
/// assert_eq!(pool.install(corepool::current_num_threads), 3);
/// assert!(corepool::current_num_threads() >= 1); // the global pool's
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub fn current_num_threads() -> usize {
    worker::with_current(|current| current.map(WorkerContext::active_workers))
        .unwrap_or_else(|| global().workers())
}

/// Like [`spawn`], but the tasks a worker spawns this way start in the
/// order they were spawned (rayon's `spawn_fifo`), while [`spawn`] is LIFO
/// (the newest child runs first, hottest in cache).
///
/// As in rayon, the task joins a FIFO queue of the calling worker, and a
/// small task that starts the oldest entry of that queue joins its deque:
/// whoever pops or steals it starts the oldest task. Not counted by the
/// bound, never blocking. Off a worker thread it is [`spawn`] on the global
/// pool, whose injector is first-in, first-out.
///
/// ```
/// use std::sync::mpsc;
///
/// // One worker: the children start in the order spawned.
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let (tx, rx) = mpsc::channel();
/// pool.submit(move || {
///     for i in 0..4 {
///         let tx = tx.clone();
///         corepool::spawn_fifo(move || tx.send(i).unwrap());
///     }
/// })
/// .unwrap();
/// let order: Vec<i32> = rx.iter().take(4).collect();
/// assert_eq!(order, [0, 1, 2, 3]);
/// assert_eq!(corepool::spawn_fifo(|| 1).join().unwrap(), 1); // the global pool
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub fn spawn_fifo<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match spawn_on_worker(f, WorkerContext::push_fifo) {
        Ok(handle) => handle,
        Err(f) => spawn(f),
    }
}

/// What [`yield_now`] did.
///
/// ```
/// // Off a worker there is nothing to yield to.
/// assert_eq!(corepool::yield_now(), None);
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// // On a worker with nothing else queued: `Idle`.
/// let on_worker = pool.install(corepool::yield_now);
/// assert_eq!(on_worker, Some(corepool::Yield::Idle));
/// # Ok::<(), corepool::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Yield {
    /// It ran another task (or a broadcast share).
    Executed,
    /// There was no task it could run.
    Idle,
}

/// From inside a task, runs one other pending task of the pool, if there
/// is one this worker may run here (rayon's `yield_now`): returns
/// `Some(Yield::Executed)` if it ran one, `Some(Yield::Idle)` if not, and
/// `None` off a worker thread.
///
/// What it may run follows the wait protocol (`docs/fork-join.md`,
/// "Yielding"): at the top of a task (no `join` or `scope` waiting on this
/// worker's stack, and not inside a scope's body) whatever the worker
/// would run next: a pending broadcast share, its own deque's newest task,
/// a batch from the injector, another worker's oldest task. Inside a wait
/// region only the innermost region's own tasks, which descend from what
/// is waited for.
///
/// ```
/// use corepool::Yield;
///
/// assert_eq!(corepool::yield_now(), None); // not on a worker
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let yielded = pool
///     .spawn(|| {
///         let child = corepool::spawn(|| 7);
///         // The only worker runs the child here, then finds nothing.
///         let first = corepool::yield_now();
///         assert!(child.is_finished());
///         (first, corepool::yield_now())
///     })
///     .unwrap()
///     .join()
///     .unwrap();
/// assert_eq!(yielded, (Some(Yield::Executed), Some(Yield::Idle)));
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub fn yield_now() -> Option<Yield> {
    worker::with_current(|current| {
        current.map(|worker| {
            if worker.yield_one() {
                Yield::Executed
            } else {
                Yield::Idle
            }
        })
    })
}

/// Runs `f`, which is about to block (I/O, a lock, a channel), on this
/// worker while a spare worker runs the pool's queues in its place, as
/// tokio's `block_in_place`. Off a worker thread it just runs `f`.
///
/// This is the compensation corepool's own blocking waits use
/// (`docs/fork-join.md`, "Waiting inside a task"): the worker counts itself
/// blocked and returns its held slots of the bound, and a spare worker
/// (started on first need, unpinned) runs tasks until `f` returns. Spares
/// are bounded by [`Builder::max_spare_threads`](crate::Builder::max_spare_threads):
/// past that many blocked workers (or if no thread can be started), the
/// pool runs one thread short until `f` returns. Meanwhile this worker
/// runs nothing else, not even its broadcast shares.
///
/// ```
/// use std::sync::mpsc;
///
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let (tx, rx) = mpsc::channel();
/// let waiter = pool
///     .spawn(move || corepool::block_in_place(|| rx.recv().unwrap()))
///     .unwrap();
/// // Queued behind the waiter on the only worker: a spare runs it.
/// pool.submit(move || tx.send(42).unwrap()).unwrap();
/// assert_eq!(waiter.join().unwrap(), 42);
///
/// assert_eq!(corepool::block_in_place(|| 1 + 1), 2); // off a worker: just runs
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub fn block_in_place<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    let worker = worker::current_any();
    let _blocked = worker.as_deref().map(WorkerContext::block);
    f()
}
