//! The unit of work that travels through the queues.

use std::fmt;

/// A task the pool accepted but never started, handed back by
/// [`Pool::shutdown_now`](crate::Pool::shutdown_now).
///
/// Call [`run`](Task::run) to run it on the current thread, or drop it. If
/// it came from [`spawn`](crate::Pool::spawn), dropping it resolves its
/// [`JoinHandle`](crate::JoinHandle) to
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled); running it
/// delivers the result as usual.
///
/// ```
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let leftovers: Vec<corepool::Task> = pool.shutdown_now().unstarted;
/// for task in leftovers {
///     task.run(); // or drop(task)
/// }
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct Task {
    kind: Kind,
    /// Bit 0: submitted from outside the pool, so counted by
    /// [`Admission`](crate::admission::Admission) until it starts. Bits
    /// 1..: when it was submitted, in nanoseconds since the pool's latency
    /// epoch, plus one; zero when queue-wait latency is not tracked. One
    /// word rather than two fields: a task is copied into a deque slot and
    /// back on every push and pop, and `join` pushes and pops one per call.
    meta: u64,
}

const ADMITTED: u64 = 1;

enum Kind {
    /// A `'static` closure: `submit`, `spawn`, a scope's tasks.
    Boxed(Box<dyn FnOnce() + Send + 'static>),
    /// A job that lives on a waiting thread's stack (`join`).
    Stack(JobRef),
}

/// A pointer to a job on some thread's stack, and the function that runs it.
/// Used by `join` so that the second closure needs no heap allocation.
pub(crate) struct JobRef {
    data: *const (),
    execute: unsafe fn(*const ()),
}

// SAFETY: a `JobRef` is only created (by `StackJob::as_job_ref`) for jobs
// whose closure and result are `Send`, and the thread that owns the job
// waits for it to finish before the pointed-to memory goes away.
unsafe impl Send for JobRef {}

impl JobRef {
    /// # Safety
    ///
    /// `data` must stay valid, and `execute(data)` must be sound to call
    /// once from any thread, until the job has run.
    pub(crate) unsafe fn new(data: *const (), execute: unsafe fn(*const ())) -> Self {
        JobRef { data, execute }
    }
}

impl Task {
    pub(crate) fn boxed(run: Box<dyn FnOnce() + Send + 'static>, admitted: bool) -> Self {
        Task {
            kind: Kind::Boxed(run),
            meta: admitted as u64,
        }
    }

    pub(crate) fn stack(job: JobRef, admitted: bool) -> Self {
        Task {
            kind: Kind::Stack(job),
            meta: admitted as u64,
        }
    }

    pub(crate) fn is_admitted(&self) -> bool {
        self.meta & ADMITTED != 0
    }

    /// Stamps the submission time (nanoseconds since the latency epoch).
    /// (63 bits of nanoseconds: 292 years after the epoch.)
    pub(crate) fn set_enqueued_ns(&mut self, nanos: u64) {
        let stamp = nanos.saturating_add(1).min(u64::MAX >> 1);
        self.meta = (self.meta & ADMITTED) | (stamp << 1);
    }

    pub(crate) fn enqueued_ns(&self) -> Option<u64> {
        (self.meta >> 1).checked_sub(1)
    }

    /// Whether this task is the stack job at `data`.
    pub(crate) fn is_job(&self, data: *const ()) -> bool {
        matches!(&self.kind, Kind::Stack(job) if job.data == data)
    }

    /// Whether this task points into a waiting thread's stack, and must be
    /// run rather than handed back or dropped.
    pub(crate) fn is_stack_job(&self) -> bool {
        matches!(self.kind, Kind::Stack(_))
    }

    /// Runs the task on the current thread. A panic in a task from
    /// `submit` propagates to the caller; a task from `spawn` delivers its
    /// panic to its `JoinHandle` instead.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// for task in pool.shutdown_now().unstarted {
    ///     task.run();
    /// }
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn run(self) {
        match self.kind {
            Kind::Boxed(run) => run(),
            // SAFETY: a `JobRef` is run at most once: the `Task` holding it
            // is consumed here, and `JobRef::new`'s contract keeps `data`
            // valid until then.
            Kind::Stack(job) => unsafe { (job.execute)(job.data) },
        }
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("admitted", &self.is_admitted())
            .field("stack_job", &self.is_stack_job())
            .finish()
    }
}
