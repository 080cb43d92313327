//! `scope`: spawn tasks that borrow from the caller's stack.
//!
//! A scope counts its unfinished tasks, plus one for its body.
//! [`Pool::scope`](crate::Pool::scope) runs the body on a worker inside a
//! wait region (`crate::wait`), then keeps that worker running the scope's
//! own tasks (those on its deque, and those it can leapfrog into) until the
//! count is zero, parking when there are none; the task that brings the
//! count to zero unparks it. Only then does `scope` return, so nothing
//! spawned in the scope can outlive what it borrows. The count and the
//! parker live in an `Arc` that every task holds, so the last task's
//! decrement and wake-up never touch freed memory.

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::pool::Handle;
use crate::registry::Shared;
use crate::sync::{lock, Arc, AtomicUsize, Mutex, Ordering, Parker};
use crate::wait::Region;
use crate::worker::{self, WorkerContext};

/// A fork-join scope, created by [`Pool::scope`](crate::Pool::scope),
/// [`Pool::in_place_scope`](crate::Pool::in_place_scope) or
/// [`corepool::scope`](crate::scope).
///
/// ```
/// let pool = corepool::Pool::builder().workers(2).build()?;
/// let mut data = vec![1u64; 1000];
/// pool.scope(|s| {
///     for chunk in data.chunks_mut(100) {
///         s.spawn(move |_| chunk.iter_mut().for_each(|x| *x *= 2));
///     }
/// });
/// assert_eq!(data.iter().sum::<u64>(), 2000);
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct Scope<'scope> {
    state: Arc<ScopeState>,
    handle: Handle,
    /// Invariant in `'scope`, as in `std::thread::Scope`.
    _marker: PhantomData<&'scope mut &'scope ()>,
}

struct ScopeState {
    /// Spawned tasks not yet finished, plus one while the body runs.
    pending: AtomicUsize,
    /// Where the scope's owner parks while it waits for `pending` to fall
    /// to zero.
    parker: OwnerParker,
    /// The first panic of a spawned task, re-raised by `scope`.
    panic: Mutex<Option<Box<dyn Any + Send + 'static>>>,
}

/// The parker of a scope's owner: on a worker its wait parker, which a
/// broadcast's post unparks too (`crate::broadcast`); elsewhere one of the
/// scope's own.
enum OwnerParker {
    Own(Parker),
    Worker(Arc<Shared>, usize),
}

impl OwnerParker {
    fn get(&self) -> &Parker {
        match self {
            OwnerParker::Own(parker) => parker,
            OwnerParker::Worker(shared, index) => &shared.wait_parkers[*index],
        }
    }
}

impl ScopeState {
    /// One task (or the body) finished; the last one wakes the owner.
    fn finish_one(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.parker.get().unpark();
        }
    }

    fn done(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// The region the scope's tasks are pieces of: its address.
    fn region(&self) -> usize {
        self as *const Self as usize
    }

    fn record_panic(&self, payload: Box<dyn Any + Send + 'static>) {
        let mut slot = lock(&self.panic);
        if slot.is_none() {
            *slot = Some(payload);
        }
    }
}

/// Ends one scope task, run or not: a scope task dropped without running
/// (only possible if it is handed back by `shutdown_now` and dropped) still
/// counts down, and the scope reports it as a panic rather than hanging.
struct Completion(Option<Arc<ScopeState>>);

impl Completion {
    fn done(mut self) {
        if let Some(state) = self.0.take() {
            state.finish_one();
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            state.record_panic(Box::new("a scope task was dropped without running"));
            state.finish_one();
        }
    }
}

impl<'scope> Scope<'scope> {
    /// Spawns `f` into the scope. It may borrow anything that outlives the
    /// scope, and may spawn more tasks through the `&Scope` it is given.
    ///
    /// From a worker of the pool (the usual case) the task goes onto that
    /// worker's deque: it never blocks and is not counted by the bound.
    /// From any other thread (the body of an
    /// [`in_place_scope`](crate::Pool::in_place_scope) called from
    /// outside) it takes a slot of the bound like
    /// [`Pool::submit`](crate::Pool::submit), blocking while the queue is
    /// full, and runs right there if the pool is shutting down.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// let count = AtomicUsize::new(0);
    /// pool.scope(|s| {
    ///     s.spawn(|s| {
    ///         count.fetch_add(1, Ordering::Relaxed);
    ///         s.spawn(|_| {
    ///             count.fetch_add(1, Ordering::Relaxed);
    ///         });
    ///     });
    /// });
    /// assert_eq!(count.into_inner(), 2);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn spawn<F>(&self, f: F)
    where
        F: FnOnce(&Scope<'scope>) + Send + 'scope,
    {
        self.spawn_task(false, f);
    }

    /// `spawn`, or `ScopeFifo::spawn_fifo` when `fifo`.
    fn spawn_task<F>(&self, fifo: bool, f: F)
    where
        F: FnOnce(&Scope<'scope>) + Send + 'scope,
    {
        self.state.pending.fetch_add(1, Ordering::Relaxed);
        let completion = Completion(Some(self.state.clone()));
        let handle = self.handle.clone();
        let run = move || {
            let scope = Scope {
                state: match &completion.0 {
                    Some(state) => state.clone(),
                    None => unreachable!("a scope task runs once"),
                },
                handle,
                _marker: PhantomData,
            };
            let region = scope.state.region();
            let body = || worker::in_piece(region, || f(&scope));
            if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
                scope.state.record_panic(payload);
            }
            drop(scope);
            completion.done();
        };
        // SAFETY: `Pool::scope` returns only once `pending` is zero, after
        // this closure ran or was dropped, so what it borrows for `'scope`
        // is never used after `'scope` ends.
        unsafe { self.handle.push_or_run_scoped(fifo, run) };
    }
}

/// The body of `Pool::scope` and `corepool::scope`, running on `worker`,
/// a worker of `handle`'s pool; with `None`, the body of
/// `Pool::in_place_scope` called off the pool (or of `Pool::scope` while
/// the pool shuts down), on the caller's thread, which parks until the
/// scope's tasks are done (a worker of another pool counts itself blocked
/// meanwhile, as in `install`).
/// A fork-join scope whose tasks start in the order they were spawned,
/// created by [`Pool::scope_fifo`](crate::Pool::scope_fifo) (rayon's
/// `ScopeFifo`).
///
/// ```
/// use std::sync::Mutex;
/// // One worker: the tasks start in the order spawned.
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let order = Mutex::new(Vec::new());
/// pool.scope_fifo(|s| {
///     for i in 0..4 {
///         let order = &order;
///         s.spawn_fifo(move |_| order.lock().unwrap().push(i));
///     }
/// });
/// assert_eq!(order.into_inner().unwrap(), [0, 1, 2, 3]);
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct ScopeFifo<'scope> {
    scope: Scope<'scope>,
}

impl<'scope> ScopeFifo<'scope> {
    /// Spawns `f` into the scope, in FIFO order: of the tasks one worker
    /// spawns this way, the oldest starts first (whoever starts it: the
    /// spawning worker or a thief). As with [`Scope::spawn`], `f` may
    /// borrow anything that outlives the scope and may spawn more.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// let count = AtomicUsize::new(0);
    /// pool.scope_fifo(|s| {
    ///     s.spawn_fifo(|s| {
    ///         count.fetch_add(1, Ordering::Relaxed);
    ///         s.spawn_fifo(|_| {
    ///             count.fetch_add(1, Ordering::Relaxed);
    ///         });
    ///     });
    /// });
    /// assert_eq!(count.into_inner(), 2);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn spawn_fifo<F>(&self, f: F)
    where
        F: FnOnce(&ScopeFifo<'scope>) + Send + 'scope,
    {
        self.scope.spawn_task(true, move |scope: &Scope<'scope>| {
            let fifo = ScopeFifo {
                scope: Scope {
                    state: scope.state.clone(),
                    handle: scope.handle.clone(),
                    _marker: PhantomData,
                },
            };
            f(&fifo)
        });
    }
}

/// The body of `Pool::scope_fifo`: `run_scope` with a `ScopeFifo`.
pub(crate) fn run_scope_fifo<'scope, OP, R>(
    worker: Option<&WorkerContext>,
    handle: &Handle,
    op: OP,
) -> R
where
    OP: FnOnce(&ScopeFifo<'scope>) -> R,
{
    run_scope(worker, handle, |scope: &Scope<'scope>| {
        let fifo = ScopeFifo {
            scope: Scope {
                state: scope.state.clone(),
                handle: scope.handle.clone(),
                _marker: PhantomData,
            },
        };
        op(&fifo)
    })
}

/// The body of `Pool::scope`, running on `worker` (or, while the pool
/// shuts down, on the caller's thread).
pub(crate) fn run_scope<'scope, OP, R>(worker: Option<&WorkerContext>, handle: &Handle, op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R,
{
    // On a worker, the owner parks on its wait parker, which a broadcast
    // also unparks (`Shared::wake_for_broadcast`).
    let parker = match worker {
        Some(worker) => OwnerParker::Worker(worker.shared().clone(), worker.index()),
        None => OwnerParker::Own(Parker::new()),
    };
    let scope = Scope {
        state: Arc::new(ScopeState {
            pending: AtomicUsize::new(1),
            parker,
            panic: Mutex::new(None),
        }),
        handle: handle.clone(),
        _marker: PhantomData,
    };
    let state = &*scope.state;
    // Returns once the count is zero, or (on a worker) when a broadcast
    // share waits to run (`Region::wait` runs it and parks again).
    let park = || {
        while !state.done() {
            if worker.is_some_and(WorkerContext::broadcast_pending) {
                return;
            }
            state.parker.get().park();
        }
    };
    // Whatever happened, the borrowed stack must outlive every task.
    let result = match worker {
        Some(worker) => {
            let region = Region::enter(worker);
            let result = catch_unwind(AssertUnwindSafe(|| op(&scope)));
            state.finish_one();
            region.wait(state.region(), || state.done(), park);
            result
        }
        None => {
            let result = catch_unwind(AssertUnwindSafe(|| op(&scope)));
            state.finish_one();
            if !state.done() {
                // On a worker of another pool, that pool has a spare run
                // its queues while this worker blocks (`crate::wait`).
                let caller = worker::current_any();
                let _blocked = caller.as_deref().map(WorkerContext::block);
                park();
            }
            result
        }
    };
    let value = match result {
        Ok(value) => value,
        Err(payload) => resume_unwind(payload),
    };
    if let Some(payload) = lock(&scope.state.panic).take() {
        resume_unwind(payload);
    }
    value
}
