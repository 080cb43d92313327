//! How a task enters a pool from a `Handle`, a `Permit`, a scope or an
//! awaitable submission: the *route* (the calling worker's own deque when
//! called from inside the pool, no slot needed; otherwise the injector,
//! once a slot of the bound is taken, `crate::admission`), the refusal
//! counters, and the push itself, which wakes a sleeping worker if nobody
//! is looking for work (`crate::sleep`).

use std::rc::Rc;
use std::time::Duration;

use crate::admission::Refused;
use crate::budget::Check;
use crate::registry::{nanos_between, Shared};
use crate::spawn::{self, JoinHandle};
use crate::sync::Instant;
use crate::task::Task;
use crate::worker::{self, WorkerContext};

/// How long a submission may wait for room.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    Never,
    Forever,
    For(Duration),
}

/// Where a submission goes.
pub(crate) enum Route {
    /// The calling worker's own deque (submitted from inside the pool).
    Local(Rc<WorkerContext>),
    /// The injector; a slot of the bound has been taken. With `judge`
    /// the task was admitted near the delay budget's limit: it is stamped,
    /// so that its wait is judged when it starts (`crate::budget`).
    Injector { judge: bool },
}

impl Shared {
    /// Takes a slot for a permit: waits like a submission from outside,
    /// and never from inside the pool (see [`Permit`]).
    pub(crate) fn reserve_slot(&self, wait: Wait) -> Result<(), Refused> {
        if worker::current(self).is_some() {
            let taken = self.admission.acquire_unbounded();
            return self.count_refusal(taken);
        }
        self.acquire_slot(wait).map(|_judge| ())
    }

    /// Takes a slot of the bound, waiting as `wait` says; counts a refusal.
    /// `Ok(true)`: admitted by the delay budget near its limit, to be
    /// judged (`crate::budget`).
    pub(crate) fn acquire_slot(&self, wait: Wait) -> Result<bool, Refused> {
        let admission = &self.admission;
        let mut judge = false;
        let acquired = match wait {
            Wait::Never => match self.check_delay_budget() {
                // The budget refuses like a full pool (counted apart, in
                // `rejected_budget`).
                Check::Refuse => return Err(Refused::Full),
                check => {
                    judge = check == Check::AdmitAndJudge;
                    admission.try_acquire()
                }
            },
            Wait::Forever => admission.acquire(None),
            // A timeout too large to represent as a deadline waits forever.
            Wait::For(timeout) => admission.acquire(Instant::now().checked_add(timeout)),
        };
        self.count_refusal(acquired).map(|()| judge)
    }

    pub(crate) fn count_refusal(&self, acquired: Result<(), Refused>) -> Result<(), Refused> {
        if let Err(refused) = acquired {
            match refused {
                Refused::Full => self.rejected_full.add(1),
                Refused::Closed => self.rejected_shutdown.add(1),
                Refused::TimedOut => self.timed_out.add(1),
            }
        }
        acquired
    }

    /// Where a submission goes: onto the calling worker's own deque when
    /// called from inside this pool (no slot needed), or into the injector
    /// once a slot of the bound is taken.
    pub(crate) fn route(&self, wait: Wait) -> Result<Route, Refused> {
        if let Some(worker) = worker::current(self) {
            return Ok(Route::Local(worker));
        }
        let judge = self.acquire_slot(wait)?;
        Ok(Route::Injector { judge })
    }

    pub(crate) fn push<F>(&self, route: Route, run: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.push_task(route, |admitted, stamped| Task::new(run, admitted, stamped));
    }

    /// `make_task(admitted, stamped)` builds the task once the route is
    /// known (only injected tasks are stamped, when latency is tracked).
    pub(crate) fn push_task(&self, route: Route, make_task: impl FnOnce(bool, bool) -> Task) {
        match route {
            Route::Local(worker) => worker.push(make_task(false, false)),
            Route::Injector { judge } => {
                let stamp = judge || self.track_latency;
                self.inject_stamped(make_task(true, stamp), stamp)
            }
        }
    }

    pub(crate) fn push_spawned<F, T>(&self, route: Route, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (queued, handle) = spawn::wrap(f, std::ptr::from_ref(self) as usize);
        self.push_task(route, |admitted, stamped| {
            Task::claimable(queued, admitted, stamped)
        });
        handle
    }

    /// After a slot was taken: the task joins the injector and, if nobody
    /// is looking for work, one sleeping worker is woken.
    pub(crate) fn inject(&self, task: Task) {
        self.inject_stamped(task, self.track_latency);
    }

    /// [`inject`](Self::inject), stamping the task with the time if `stamp`.
    fn inject_stamped(&self, mut task: Task, stamp: bool) {
        if let (true, Some(epoch)) = (stamp, self.latency_epoch) {
            task.set_enqueued_ns(nanos_between(epoch, Instant::now()));
        }
        let injector = &self.injector;
        injector.push(task);
        self.sleep.notify_work(|| injector.len() > 1);
    }

    /// For fork-join pieces that must run whatever happens (a scope's
    /// tasks): submitted like `submit`, or run right here if the pool is
    /// shutting down, so that nothing a scope waits for is ever lost.
    ///
    /// # Safety
    ///
    /// Whatever `run` borrows must outlive its run (`Pool::scope` waits
    /// for every task it spawned before its borrows end).
    /// With `fifo`, a task pushed onto a worker's deque goes through its
    /// FIFO queue (`WorkerContext::push_fifo`).
    pub(crate) unsafe fn push_or_run_scoped<F>(&self, fifo: bool, run: F)
    where
        F: FnOnce() + Send,
    {
        match self.route(Wait::Forever) {
            Ok(Route::Local(worker)) if fifo => {
                // SAFETY: the caller's contract is `Task::new_unchecked`'s.
                let task = unsafe { Task::new_unchecked(run, false, false) };
                worker.push_fifo(task)
            }
            // SAFETY: the caller's contract is `Task::new_unchecked`'s.
            Ok(route) => self.push_task(route, |admitted, stamped| unsafe {
                Task::new_unchecked(run, admitted, stamped)
            }),
            Err(_) => run(),
        }
    }
}
