//! `Pool`'s shutdown family (`shutdown`, `shutdown_timeout`, `shutdown_now`,
//! `shutdown_background`, and `Drop`) and what it reports: `ShutdownReport`,
//! `ShutdownTimedOut`.

use std::time::Duration;

use super::Pool;
use crate::registry::Shared;
use crate::sync::{thread, Arc, Instant};
use crate::task::Task;
use crate::worker;

impl Pool {
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
    /// [`Permit`](crate::Permit)s are not waited for: one used afterwards drops its
    /// closure unrun, counted as handed back (see [`Permit`](crate::Permit)).
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
    /// caller's own worker). Later submissions through a [`Handle`](crate::Handle) are
    /// refused with their closure back, as after any shutdown;
    /// [`Handle::metrics`](crate::Handle::metrics) keeps working and shows the drain's progress.
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
