//! `scope`: spawn tasks that borrow from the caller's stack.
//!
//! A scope counts its unfinished tasks. [`Pool::scope`](crate::Pool::scope)
//! runs the scope's body on a worker, then keeps that worker running tasks
//! (its own scope's and any others) until the count is zero, and only then
//! returns, so nothing spawned in the scope can outlive what it borrows.
//! The count lives in an `Arc` that every task holds, so the last task's
//! decrement never touches freed memory.

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::pool::Handle;
use crate::sync::{lock, Arc, AtomicUsize, Mutex, Ordering};
use crate::worker::{self, WorkerContext};

/// A fork-join scope, created by [`Pool::scope`](crate::Pool::scope).
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
    /// Spawned tasks not yet finished.
    pending: AtomicUsize,
    /// The first panic of a spawned task, re-raised by `scope`.
    panic: Mutex<Option<Box<dyn Any + Send + 'static>>>,
}

impl ScopeState {
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
            state.pending.fetch_sub(1, Ordering::Release);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            state.record_panic(Box::new("a scope task was dropped without running"));
            state.pending.fetch_sub(1, Ordering::Release);
        }
    }
}

impl<'scope> Scope<'scope> {
    /// Spawns `f` into the scope. It may borrow anything that outlives the
    /// scope, and may spawn more tasks through the `&Scope` it is given.
    ///
    /// From a worker of the pool (the usual case) the task goes onto that
    /// worker's deque: it never blocks and is not counted by the bound.
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
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(&scope))) {
                scope.state.record_panic(payload);
            }
            drop(scope);
            completion.done();
        };
        // SAFETY: `Pool::scope` returns only once `pending` is zero, after
        // this closure ran or was dropped, so what it borrows for `'scope`
        // is never used after `'scope` ends.
        unsafe { self.handle.push_or_run_scoped(run) };
    }
}

/// The body of `Pool::scope`, running on `worker` (or, while the pool
/// shuts down, on the caller's thread).
pub(crate) fn run_scope<'scope, OP, R>(worker: Option<&WorkerContext>, handle: &Handle, op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R,
{
    let scope = Scope {
        state: Arc::new(ScopeState {
            pending: AtomicUsize::new(0),
            panic: Mutex::new(None),
        }),
        handle: handle.clone(),
        _marker: PhantomData,
    };
    let result = catch_unwind(AssertUnwindSafe(|| op(&scope)));
    // Whatever happened, the borrowed stack must outlive every task.
    worker::help_until(
        worker,
        || scope.state.pending.load(Ordering::Acquire) == 0,
        None,
    );
    let value = match result {
        Ok(value) => value,
        Err(payload) => resume_unwind(payload),
    };
    if let Some(payload) = lock(&scope.state.panic).take() {
        resume_unwind(payload);
    }
    value
}
