//! Submitting from a running task to the pool it runs on, without a
//! [`Handle`](crate::Handle): [`submit`] and [`spawn`], the counterparts of
//! `rayon::spawn` and `tokio::spawn`.
//!
//! A task that spawns more tasks would otherwise capture a `Handle` clone,
//! and every hop of a chain or a ping-pong would pay two atomic updates of
//! the pool's reference count, on a cache line that every worker writes
//! (`docs/benchmarks.md`, "ping_pong": half of corepool's time there). The
//! worker running the task is already known to its thread, so these
//! functions push onto its deque through the thread-local worker context,
//! exactly where `Handle::submit` from inside the pool puts a task: not
//! counted by the bound, never blocking, accepted while the pool drains.
//!
//! Outside a worker thread there is no pool to submit to: the closure is
//! handed back in [`NotInPool`].

use crate::error::NotInPool;
use crate::spawn::{self, JoinHandle};
use crate::task::Task;
use crate::worker;

/// Submits `f` to the pool whose worker is running the calling task,
/// onto that worker's own deque (idle workers steal from there).
///
/// Like [`Handle::submit`](crate::Handle::submit) called from inside the
/// pool, it never blocks, is not counted by the bound, and is accepted
/// even while the pool drains during shutdown. Called from a thread that
/// is not a corepool worker, it hands `f` back.
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
///         corepool::submit(move || tx.send(i).unwrap()).unwrap();
///     }
/// })
/// .unwrap();
/// let mut got: Vec<i32> = rx.iter().take(3).collect();
/// got.sort();
/// assert_eq!(got, [0, 1, 2]);
///
/// // Not on a worker: the closure comes back.
/// let err = corepool::submit(|| {}).unwrap_err();
/// let _closure = err.into_inner();
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub fn submit<F>(f: F) -> Result<(), NotInPool<F>>
where
    F: FnOnce() + Send + 'static,
{
    worker::with_current(|current| match current {
        Some(worker) => {
            worker.push(Task::new(f, false, false));
            Ok(())
        }
        None => Err(NotInPool::new(f)),
    })
}

/// Like [`submit`], for a closure with a result: the returned
/// [`JoinHandle`] joins it, awaits it, or cancels it.
///
/// ```
/// let pool = corepool::Pool::builder().workers(2).build()?;
/// let sum = pool
///     .spawn(|| {
///         let left = corepool::spawn(|| (1..=50u64).sum::<u64>()).unwrap();
///         let right: u64 = (51..=100u64).sum();
///         // If no other worker started `left`, this one runs it here.
///         left.join().unwrap() + right
///     })
///     .unwrap();
/// assert_eq!(sum.join().unwrap(), 5050);
/// assert!(corepool::spawn(|| 1).is_err()); // not on a worker
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub fn spawn<F, T>(f: F) -> Result<JoinHandle<T>, NotInPool<F>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    worker::with_current(|current| match current {
        Some(worker) => {
            let (queued, handle) = spawn::wrap(f, worker.pool_id());
            worker.push(Task::claimable(queued, false, false));
            Ok(handle)
        }
        None => Err(NotInPool::new(f)),
    })
}
