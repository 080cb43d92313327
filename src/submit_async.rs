//! Futures that wait for a slot of the bound without blocking the thread
//! that polls them:
//! [`Handle::reserve_async`](crate::Handle::reserve_async),
//! [`Handle::submit_async`](crate::Handle::submit_async),
//! [`Handle::spawn_async`](crate::Handle::spawn_async).
//!
//! They queue in the same FIFO as blocked [`Handle::submit`](crate::Handle::submit) calls
//! (`crate::waiters`), woken through the std [`Waker`](std::task::Waker) of
//! their last poll, so any executor drives them. Dropping one while it
//! waits gives up its place; a slot already granted to it goes to the next
//! waiter, and its closure is dropped unrun (see `Admission::cancel`).
//!
//! Polled on a worker of the pool itself, they complete at the first poll,
//! as the blocking calls never block there: `submit_async` and
//! `spawn_async` push onto the worker's own deque, `reserve_async` takes a
//! slot even above the capacity (see [`Permit`]).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::admission::{Refused, Released};
use crate::error::SubmitError;
use crate::permit::Permit;
use crate::registry::Shared;
use crate::spawn::{self, JoinHandle};
use crate::sync::Arc;
use crate::task::Task;
use crate::waiters::Waiter;
use crate::worker::{self, WorkerContext};

/// Where a slot, once there, sends the task.
enum Slot {
    /// The polling thread is a worker of the pool: its own deque, no slot.
    Local(Rc<WorkerContext>),
    /// A slot of the bound was taken.
    Bound,
}

/// The waiting part shared by the three futures.
struct Acquire<'a> {
    shared: &'a Arc<Shared>,
    /// Queued among the waiters (between a `Pending` and the slot).
    waiter: Option<Arc<Waiter>>,
}

impl<'a> Acquire<'a> {
    fn new(shared: &'a Arc<Shared>) -> Self {
        Acquire {
            shared,
            waiter: None,
        }
    }

    /// `unbounded_inside`: a permit reserved on a worker takes a slot
    /// anyway; a task submitted there goes to the worker's deque.
    fn poll(&mut self, cx: &mut Context<'_>, unbounded_inside: bool) -> Poll<Result<Slot, ()>> {
        let shared = self.shared;
        let admission = &shared.admission;
        if self.waiter.is_none() {
            if let Some(worker) = worker::current(shared) {
                if !unbounded_inside {
                    return Poll::Ready(Ok(Slot::Local(worker)));
                }
                return Poll::Ready(match admission.acquire_unbounded() {
                    Ok(()) => Ok(Slot::Bound),
                    Err(_) => {
                        shared.rejected_shutdown.add(1);
                        Err(())
                    }
                });
            }
        }
        match admission.poll_acquire(&mut self.waiter, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(Slot::Bound)),
            Poll::Ready(Err(refused)) => {
                debug_assert_eq!(refused, Refused::Closed);
                shared.rejected_shutdown.add(1);
                Poll::Ready(Err(()))
            }
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if let Some(waiter) = self.waiter.take() {
            let shared = self.shared;
            if shared.admission.cancel(waiter) == Released::LastAfterClose {
                // The slot granted to us was the last one of a closed pool.
                shared.sleep.wake_all();
            }
        }
    }
}

/// The future of [`Handle::reserve_async`](crate::Handle::reserve_async): a [`Permit`] once a slot is
/// free, or an error once the pool shuts down. Cancel-safe: dropped while
/// waiting, it gives up its place and takes no slot.
///
/// ```
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let permit = futures::executor::block_on(pool.reserve_async()).unwrap();
/// permit.submit(|| {});
/// # Ok::<(), corepool::BuildError>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct ReserveAsync<'a> {
    acquire: Acquire<'a>,
    done: bool,
}

impl Future for ReserveAsync<'_> {
    type Output = Result<Permit, SubmitError<()>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Polled again after its permit, it must not take a second slot.
        assert!(!this.done, "ReserveAsync polled after completion");
        let slot = std::task::ready!(this.acquire.poll(cx, true));
        this.done = true;
        Poll::Ready(match slot {
            Ok(_) => Ok(Permit::new(this.acquire.shared.clone())),
            Err(()) => Err(SubmitError::new(())),
        })
    }
}

/// The future of [`Handle::submit_async`](crate::Handle::submit_async). Cancel-safe: dropped while
/// waiting, it gives up its place and drops the closure unrun.
///
/// ```
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// futures::executor::block_on(pool.submit_async(|| println!("ran"))).unwrap();
/// # Ok::<(), corepool::BuildError>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct SubmitAsync<'a, F> {
    acquire: Acquire<'a>,
    f: Option<F>,
}

// The closure is never pinned: it is moved out whole once a slot is there.
impl<F> Unpin for SubmitAsync<'_, F> {}

impl<F> Future for SubmitAsync<'_, F>
where
    F: FnOnce() + Send + 'static,
{
    type Output = Result<(), SubmitError<F>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Polled again after it submitted, it must not take a second slot.
        assert!(this.f.is_some(), "SubmitAsync polled after completion");
        let slot = std::task::ready!(this.acquire.poll(cx, false));
        let Some(f) = this.f.take() else {
            unreachable!("checked above")
        };
        Poll::Ready(match slot {
            Ok(Slot::Local(worker)) => {
                worker.push(Task::new(f, false, false));
                Ok(())
            }
            Ok(Slot::Bound) => {
                let shared = this.acquire.shared;
                let stamped = shared.track_latency;
                shared.inject(Task::new(f, true, stamped));
                Ok(())
            }
            Err(()) => Err(SubmitError::new(f)),
        })
    }
}

/// The future of [`Handle::spawn_async`](crate::Handle::spawn_async). Cancel-safe: dropped while
/// waiting, it gives up its place and drops the closure unrun.
///
/// ```
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let answer = futures::executor::block_on(async {
///     pool.spawn_async(|| 6 * 7).await.unwrap().await
/// });
/// assert_eq!(answer.unwrap(), 42);
/// # Ok::<(), corepool::BuildError>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct SpawnAsync<'a, F> {
    acquire: Acquire<'a>,
    f: Option<F>,
}

// The closure is never pinned: it is moved out whole once a slot is there.
impl<F> Unpin for SpawnAsync<'_, F> {}

impl<F, T> Future for SpawnAsync<'_, F>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = Result<JoinHandle<T>, SubmitError<F>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Polled again after it submitted, it must not take a second slot.
        assert!(this.f.is_some(), "SpawnAsync polled after completion");
        let slot = std::task::ready!(this.acquire.poll(cx, false));
        let Some(f) = this.f.take() else {
            unreachable!("checked above")
        };
        let shared = this.acquire.shared;
        Poll::Ready(match slot {
            Ok(Slot::Local(worker)) => {
                let (queued, join) = spawn::wrap(f, Arc::as_ptr(shared) as usize);
                worker.push(Task::claimable(queued, false, false));
                Ok(join)
            }
            Ok(Slot::Bound) => {
                let (queued, join) = spawn::wrap(f, Arc::as_ptr(shared) as usize);
                let stamped = shared.track_latency;
                shared.inject(Task::claimable(queued, true, stamped));
                Ok(join)
            }
            Err(()) => Err(SubmitError::new(f)),
        })
    }
}

impl std::fmt::Debug for ReserveAsync<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReserveAsync")
            .field("waiting", &self.acquire.waiter.is_some())
            .finish()
    }
}

impl<F> std::fmt::Debug for SubmitAsync<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmitAsync")
            .field("waiting", &self.acquire.waiter.is_some())
            .finish()
    }
}

impl<F> std::fmt::Debug for SpawnAsync<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnAsync")
            .field("waiting", &self.acquire.waiter.is_some())
            .finish()
    }
}

impl<'a> ReserveAsync<'a> {
    pub(crate) fn new(shared: &'a Arc<Shared>) -> Self {
        ReserveAsync {
            acquire: Acquire::new(shared),
            done: false,
        }
    }
}

impl<'a, F> SubmitAsync<'a, F> {
    pub(crate) fn new(shared: &'a Arc<Shared>, f: F) -> Self {
        SubmitAsync {
            acquire: Acquire::new(shared),
            f: Some(f),
        }
    }
}

impl<'a, F> SpawnAsync<'a, F> {
    pub(crate) fn new(shared: &'a Arc<Shared>, f: F) -> Self {
        SpawnAsync {
            acquire: Acquire::new(shared),
            f: Some(f),
        }
    }
}
