//! [`Permit`]: one slot of the bound, reserved ahead of the task that
//! will use it (tokio's `mpsc::Sender::reserve` / `Permit`).
//!
//! A permit's slot is counted in the bound's word like an admitted task's,
//! so the bound holds and a graceful shutdown waits for it; it is not
//! counted by `queued()` (nothing is queued yet) until it is used. How the
//! slot changes hands, and why `shutdown_now` never loses a task to a
//! permit used while it drains, is in `crate::admission`.

use crate::admission::Released;
use crate::registry::Shared;
use crate::spawn::{self, JoinHandle};
use crate::sync::Arc;
use crate::task::Task;

/// One reserved slot of a pool's bound: submitting through it cannot fail
/// and never waits.
///
/// Get one with [`Handle::reserve`](crate::Handle::reserve),
/// [`Handle::try_reserve`](crate::Handle::try_reserve),
/// [`Handle::reserve_timeout`](crate::Handle::reserve_timeout) or
/// [`Handle::reserve_async`](crate::Handle::reserve_async) (or the same on
/// [`Pool`](crate::Pool)). Reserve first, decide what to run afterwards:
/// when the pool is full you still hold your request and can answer it
/// (shed, 503) instead of getting a closure back.
///
/// * Dropped unused, the slot is freed at once and goes to the next
///   waiting producer, if any.
/// * [`submit`](Permit::submit) and [`spawn`](Permit::spawn) use it. They
///   are infallible: a permit granted before a graceful shutdown began is
///   honoured, and [`Pool::shutdown`](crate::Pool::shutdown) (or dropping
///   the pool) waits until every outstanding permit is used or dropped.
///   So do not hold a permit on the thread that shuts the pool down.
/// * After [`Pool::shutdown_now`](crate::Pool::shutdown_now) began, a
///   permit used drops its closure unrun, counted as handed back
///   (`MetricsSnapshot::handed_back`); the `JoinHandle` from
///   [`spawn`](Permit::spawn) then reports
///   [`is_cancelled`](crate::JoinError::is_cancelled). `shutdown_now` does
///   not wait for outstanding permits.
/// * Reserved from inside one of the pool's own tasks, a permit never
///   waits: it takes a slot even above the capacity (as a task's own
///   submissions are never refused for a full pool), and is refused only
///   once the pool shuts down.
///
/// ```
/// let pool = corepool::Pool::builder().workers(1).queue_capacity(8).build()?;
/// let request = String::from("GET /");
/// match pool.try_reserve() {
///     Ok(permit) => {
///         let answer = permit.spawn(move || request.len());
///         assert_eq!(answer.join().unwrap(), 5);
///     }
///     // Full or shutting down: `request` is still ours, answer it here.
///     Err(_) => drop(request),
/// }
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct Permit {
    shared: Arc<Shared>,
    /// Set once the slot went to a task (or back, after `shutdown_now`).
    used: bool,
}

// Checked at compile time: a permit may travel between threads and outlive
// any borrow.
const _: fn() = || {
    fn send_static<T: Send + 'static>() {}
    send_static::<Permit>();
};

impl Permit {
    /// Wraps a slot just taken from the bound of `shared`'s pool.
    pub(crate) fn new(shared: Arc<Shared>) -> Permit {
        shared.admission.add_permit();
        Permit {
            shared,
            used: false,
        }
    }

    /// Runs `f` on the pool, in this permit's slot. Never fails, never
    /// waits.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// pool.reserve().unwrap().submit(move || tx.send(7).unwrap());
    /// assert_eq!(rx.recv().unwrap(), 7);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn submit<F>(mut self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        let stamped = self.shared.track_latency;
        self.use_slot(Task::new(f, true, stamped));
    }

    /// Like [`submit`](Permit::submit), for a closure with a result: the
    /// returned [`JoinHandle`] joins it (blocking or `.await`) or cancels
    /// it.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let permit = pool.reserve().unwrap();
    /// assert_eq!(permit.spawn(|| 6 * 7).join().unwrap(), 42);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn spawn<F, T>(mut self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let shared = &self.shared;
        let (queued, join) = spawn::wrap(f, Arc::as_ptr(shared) as usize);
        let task = Task::claimable(queued, true, shared.track_latency);
        self.use_slot(task);
        join
    }

    fn use_slot(&mut self, task: Task) {
        self.used = true;
        let shared = &self.shared;
        if shared.admission.use_permit() {
            // `shutdown_now` began: nothing may start any more. The slot
            // is freed before the task is dropped, in case its drop panics.
            shared.handed_back.add(1);
            if shared.admission.release(1) == Released::LastAfterClose {
                shared.sleep.wake_all();
            }
            drop(task);
        } else {
            self.shared.inject(task);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.used {
            let shared = &self.shared;
            if shared.admission.drop_permit() == Released::LastAfterClose {
                // The pool is closed and this was the last slot: idle
                // workers may exit now.
                shared.sleep.wake_all();
            }
        }
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}
