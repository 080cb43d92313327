//! The unit of work that travels through the queues.
//!
//! A [`Task`] is two words: the address of its job, tagged with two flag
//! bits, and the function that runs (or discards) the job. `join` pushes
//! one onto the worker's deque and pops it back on every call, and a task
//! of this shape (like an `Option` of it, thanks to the function
//! pointer's niche) travels in two registers: into the deque's slot, and
//! back out of `pop`. The first layout, an enum of a boxed `dyn FnOnce`
//! or a stack job plus a word of flags (32 bytes), went through the stack
//! on every push and pop and was read back with 16-byte loads that missed
//! store forwarding: 45 % of `join_on`'s perf samples, a fifth of a tree
//! sum's (`docs/benchmarks.md`, "What changed in the third round").
//!
//! Every job starts with a [`JobHeader`], which holds what does not fit in
//! the two words: the submission stamp for the queue-wait latency.

use std::cell::Cell;
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
    /// The job's address (a `HeapJob` this task owns, or a job on a
    /// waiting thread's stack), with `ADMITTED` and `STACK` in its low
    /// bits (jobs are aligned to 8: their header is a `u64`).
    job: usize,
    /// Runs the job, or drops it unrun (heap jobs only); made for the
    /// job's type.
    finish: unsafe fn(*const (), Action),
}

/// Submitted from outside the pool, so counted by
/// [`Admission`](crate::admission::Admission) until it starts.
const ADMITTED: usize = 1;
/// A job on a waiting thread's stack.
const STACK: usize = 2;
const FLAGS: usize = ADMITTED | STACK;

// SAFETY: a heap job is a `HeapJob<F>` with `F: Send` (`Task::boxed`),
// owned by this task alone; a stack job is `Send` by `JobRef::new`'s
// contract. Moving the task moves that ownership, nothing is shared.
unsafe impl Send for Task {}

/// What a task's `finish` function does with its job.
#[derive(Clone, Copy)]
pub(crate) enum Action {
    Run,
    /// Drop a heap job's closure unrun. A stack job is never discarded:
    /// its owner waits for it (see `Task::is_stack_job`).
    Discard,
}

/// The first field of every job a task points to (`repr(C)` in both
/// kinds of job, so the job's address is its header's).
pub(crate) struct JobHeader {
    /// When the task was submitted, in nanoseconds since the pool's
    /// latency epoch, plus one; zero when queue-wait latency is not
    /// tracked. Written by the submitter before the push, read by the
    /// worker after the pop (the queue orders the two).
    enqueued: Cell<u64>,
}

impl JobHeader {
    pub(crate) fn new() -> Self {
        JobHeader {
            enqueued: Cell::new(0),
        }
    }
}

/// A closure on the heap, behind its header.
#[repr(C)]
struct HeapJob<F> {
    header: JobHeader,
    func: F,
}

/// A pointer to a job on some thread's stack, and the function that runs it.
/// Used by `join` so that the second closure needs no heap allocation.
pub(crate) struct JobRef {
    data: *const (),
    execute: unsafe fn(*const (), Action),
}

impl JobRef {
    /// # Safety
    ///
    /// `data` must point at a job that starts with a [`JobHeader`] and is
    /// aligned to at least 4; it must stay valid, and `execute(data, _)`
    /// must be sound to call once from any thread, until the job has run;
    /// the job's closure and result must be `Send`.
    pub(crate) unsafe fn new(data: *const (), execute: unsafe fn(*const (), Action)) -> Self {
        debug_assert_eq!(data as usize & FLAGS, 0, "a stack job is aligned to 4");
        JobRef { data, execute }
    }
}

/// # Safety
///
/// `job` must come from `Box::<HeapJob<F>>::into_raw` and be used by no
/// one else; this call consumes it.
unsafe fn finish_heap_job<F: FnOnce()>(job: *const (), action: Action) {
    // SAFETY: per the contract, `job` is a live `Box<HeapJob<F>>` we own.
    let job = unsafe { Box::from_raw(job as *mut HeapJob<F>) };
    match action {
        Action::Run => {
            let HeapJob { func, .. } = *job;
            func()
        }
        Action::Discard => drop(job),
    }
}

impl Task {
    pub(crate) fn boxed<F>(func: F, admitted: bool) -> Self
    where
        F: FnOnce() + Send + 'static,
    {
        // SAFETY: `F: 'static` borrows nothing that could end first.
        unsafe { Self::boxed_unchecked(func, admitted) }
    }

    /// A heap task whose closure may borrow (a scope's tasks).
    ///
    /// # Safety
    ///
    /// Whatever `func` borrows must outlive the task: it must be run or
    /// dropped before any of those borrows end.
    pub(crate) unsafe fn boxed_unchecked<F>(func: F, admitted: bool) -> Self
    where
        F: FnOnce() + Send,
    {
        let job = Box::into_raw(Box::new(HeapJob {
            header: JobHeader::new(),
            func,
        }));
        Task {
            // The header's `u64` aligns the job to 8: the flag bits are free.
            job: job as usize | admitted as usize,
            finish: finish_heap_job::<F>,
        }
    }

    pub(crate) fn stack(job: JobRef, admitted: bool) -> Self {
        Task {
            job: job.data as usize | STACK | admitted as usize,
            finish: job.execute,
        }
    }

    fn address(&self) -> *const () {
        (self.job & !FLAGS) as *const ()
    }

    fn header(&self) -> &JobHeader {
        // SAFETY: every job starts with its header (`repr(C)`), and stays
        // valid while a task points at it (`boxed_unchecked`, `JobRef::new`).
        unsafe { &*(self.address() as *const JobHeader) }
    }

    #[inline]
    pub(crate) fn is_admitted(&self) -> bool {
        self.job & ADMITTED != 0
    }

    /// Stamps the submission time (nanoseconds since the latency epoch).
    pub(crate) fn set_enqueued_ns(&mut self, nanos: u64) {
        self.header().enqueued.set(nanos.saturating_add(1));
    }

    pub(crate) fn enqueued_ns(&self) -> Option<u64> {
        self.header().enqueued.get().checked_sub(1)
    }

    /// Whether this task is the stack job at `data`.
    #[inline]
    pub(crate) fn is_job(&self, data: *const ()) -> bool {
        self.is_stack_job() && self.address() == data
    }

    /// Whether this task points into a waiting thread's stack, and must be
    /// run rather than handed back or dropped.
    #[inline]
    pub(crate) fn is_stack_job(&self) -> bool {
        self.job & STACK != 0
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
        let task = std::mem::ManuallyDrop::new(self);
        // SAFETY: the task is consumed and never dropped, so its job is
        // finished exactly once, here, by the function made for its type
        // (`boxed_unchecked` and `JobRef::new` keep the job valid till then).
        unsafe { (task.finish)(task.address(), Action::Run) }
    }
}

impl Drop for Task {
    #[inline]
    fn drop(&mut self) {
        if !self.is_stack_job() {
            // SAFETY: a heap task dropped unrun: this is the only use of
            // the `HeapJob` it owns (`run` never reaches `drop`).
            unsafe { (self.finish)(self.address(), Action::Discard) }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_and_an_option_of_one_are_two_words() {
        assert_eq!(
            std::mem::size_of::<Task>(),
            2 * std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::size_of::<Option<Task>>(),
            2 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn a_heap_task_keeps_its_flags_and_stamp_and_drops_its_closure_unrun() {
        let alive = std::sync::Arc::new(());
        let held = alive.clone();
        let mut task = Task::boxed(move || drop(held), true);
        assert!(task.is_admitted());
        assert!(!task.is_stack_job());
        assert_eq!(task.enqueued_ns(), None);
        task.set_enqueued_ns(0);
        assert_eq!(task.enqueued_ns(), Some(0));
        task.set_enqueued_ns(41);
        assert_eq!(task.enqueued_ns(), Some(41));
        assert!(task.is_admitted());
        assert_eq!(std::sync::Arc::strong_count(&alive), 2);
        drop(task);
        assert_eq!(std::sync::Arc::strong_count(&alive), 1, "dropped unrun");
    }

    #[test]
    fn a_heap_task_runs_its_closure_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        Task::boxed(move || tx.send(7).unwrap(), false).run();
        assert_eq!(rx.recv().ok(), Some(7));
        assert!(rx.recv().is_err(), "the closure (and its sender) is gone");
    }
}
