//! The unit of work that travels through the queues.
//!
//! A [`Task`] is two words: a slot and a kind. The slot holds the closure
//! itself when it fits in a word (one `Arc`, `Box` or reference, or
//! nothing at all), so the most common submissions cost no allocation;
//! otherwise it holds the address of the job (a `HeapJob`, or a `join`'s
//! job on the waiting thread's stack). The kind is a static made for the
//! closure's type: the function that runs (or discards) the job, and the
//! flags. `join` pushes a task onto the worker's deque and pops it back on
//! every call, and a task of this shape (like an `Option` of it, thanks
//! to the kind reference's niche) travels in two registers: into the
//! deque's slot, and back out of `pop`. A wider task goes through the
//! stack on every push and pop, and its 16-byte reloads miss store
//! forwarding, which dominated `join` (docs/benchmarks.md, "fork-join").
//!
//! Every job a task points to starts with a [`JobHeader`], which holds
//! what does not fit in the two words: the submission stamp for the
//! queue-wait latency. A task that is stamped is therefore never inline.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};

/// A task the pool accepted but never started, handed back by
/// [`Pool::shutdown_now`](crate::Pool::shutdown_now).
///
/// Call [`run`](Task::run) to run it on the current thread, or drop it. If
/// it came from [`spawn`](crate::Pool::spawn), dropping it resolves its
/// [`JoinHandle`](crate::JoinHandle) to a [`JoinError`](crate::JoinError)
/// that [`is_cancelled`](crate::JoinError::is_cancelled); running it
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
    /// The closure itself when it fits in a word (`TaskKind::INLINE`), or
    /// the address of its job: a `HeapJob` this task owns, or a job on a
    /// waiting thread's stack.
    job: Slot,
    /// How to finish the job, and what kind of task this is: one static
    /// per closure type and flags.
    kind: &'static TaskKind,
}

/// A word that holds a pointer, or a closure of at most a pointer's size
/// and alignment.
pub(crate) type Slot = MaybeUninit<*mut ()>;

/// Submitted from outside the pool, so counted by
/// [`Admission`](crate::admission::Admission) until it starts.
const ADMITTED: u8 = 1;
/// A job on a waiting thread's stack.
const STACK: u8 = 2;
/// The closure is in the task's own word: no allocation, no stamp.
const INLINE: u8 = 4;
/// A stand-in for a spawned task that its joiner may run first
/// ([`Claimable`]); `spent` says whether it did.
const CLAIMABLE: u8 = 8;

/// A task's finish function and flags.
pub(crate) struct TaskKind {
    /// Runs the job, or drops it unrun (never a stack job).
    finish: unsafe fn(*mut Slot, Action),
    flags: u8,
    /// For a `CLAIMABLE` task: whether someone else already ran it.
    spent: unsafe fn(*const Slot) -> bool,
}

/// A queued stand-in for a task that may also be run by whoever waits for
/// it (a `spawn`'s, run by a worker joining its handle: `crate::wait`).
pub(crate) trait Claimable: Send {
    /// Runs the task, unless it already ran or was cancelled.
    fn run(self);
    /// Whether running it would do nothing: it ran elsewhere, or was
    /// cancelled.
    fn is_spent(&self) -> bool;
}

/// The `spent` of a task that is not `CLAIMABLE`.
unsafe fn never_spent(_: *const Slot) -> bool {
    false
}

impl TaskKind {
    /// The kinds of a stack job whose `execute` is given: not admitted,
    /// and admitted.
    pub(crate) const fn stack(execute: unsafe fn(*mut Slot, Action)) -> [TaskKind; 2] {
        [
            TaskKind {
                finish: execute,
                flags: STACK,
                spent: never_spent,
            },
            TaskKind {
                finish: execute,
                flags: STACK | ADMITTED,
                spent: never_spent,
            },
        ]
    }
}

/// The kinds of a closure of type `F`, inline or boxed, admitted or not.
struct ClosureKinds<F>(PhantomData<F>);

impl<F: FnOnce()> ClosureKinds<F> {
    const INLINE: &'static [TaskKind; 2] = &[
        TaskKind {
            finish: finish_inline::<F>,
            flags: INLINE,
            spent: never_spent,
        },
        TaskKind {
            finish: finish_inline::<F>,
            flags: INLINE | ADMITTED,
            spent: never_spent,
        },
    ];
    const BOXED: &'static [TaskKind; 2] = &[
        TaskKind {
            finish: finish_heap_job::<F>,
            flags: 0,
            spent: never_spent,
        },
        TaskKind {
            finish: finish_heap_job::<F>,
            flags: ADMITTED,
            spent: never_spent,
        },
    ];
}

/// Runs a `Claimable` through the closure kinds' finish functions.
struct ClaimRun<C>(C);

impl<C: Claimable> ClaimRun<C> {
    fn call(self) {
        self.0.run()
    }
}

/// The kinds of a `Claimable` of type `C`, inline or boxed, admitted or
/// not: a closure's, plus `CLAIMABLE` and its `spent` check.
struct ClaimKinds<C>(PhantomData<C>);

impl<C: Claimable> ClaimKinds<C> {
    const INLINE: &'static [TaskKind; 2] = &[
        TaskKind {
            finish: finish_claim_inline::<C>,
            flags: INLINE | CLAIMABLE,
            spent: spent_inline::<C>,
        },
        TaskKind {
            finish: finish_claim_inline::<C>,
            flags: INLINE | CLAIMABLE | ADMITTED,
            spent: spent_inline::<C>,
        },
    ];
    const BOXED: &'static [TaskKind; 2] = &[
        TaskKind {
            finish: finish_claim_heap::<C>,
            flags: CLAIMABLE,
            spent: spent_heap::<C>,
        },
        TaskKind {
            finish: finish_claim_heap::<C>,
            flags: CLAIMABLE | ADMITTED,
            spent: spent_heap::<C>,
        },
    ];
}

/// # Safety
///
/// As `finish_inline`, for a `C` written by `Task::claimable`.
unsafe fn finish_claim_inline<C: Claimable>(slot: *mut Slot, action: Action) {
    // SAFETY: per the contract, the slot holds a live `C`, taken out once.
    let claim = unsafe { slot.cast::<C>().read() };
    match action {
        Action::Run => ClaimRun(claim).call(),
        Action::Discard => drop(claim),
    }
}

/// # Safety
///
/// As `finish_heap_job`, for a `Box<HeapJob<C>>` made by `Task::claimable`.
unsafe fn finish_claim_heap<C: Claimable>(slot: *mut Slot, action: Action) {
    // SAFETY: per the contract, the slot holds a live box's pointer.
    let job = unsafe { Box::from_raw((*slot).assume_init() as *mut HeapJob<C>) };
    match action {
        Action::Run => ClaimRun(job.func).call(),
        Action::Discard => drop(job),
    }
}

/// # Safety
///
/// `slot` must hold a live `C` written by `Task::claimable`.
unsafe fn spent_inline<C: Claimable>(slot: *const Slot) -> bool {
    // SAFETY: per the contract; only a shared reference, nothing moves.
    unsafe { (*slot.cast::<C>()).is_spent() }
}

/// # Safety
///
/// `slot` must hold the pointer of a live `Box<HeapJob<C>>`.
unsafe fn spent_heap<C: Claimable>(slot: *const Slot) -> bool {
    // SAFETY: per the contract; only a shared reference to the job.
    unsafe {
        (*((*slot).assume_init() as *const HeapJob<C>))
            .func
            .is_spent()
    }
}

// SAFETY: a task owns its closure (inline or boxed), which `Task::new`
// and `Task::new_unchecked` require to be `Send`; a stack job is `Send` by `JobRef::new`'s
// contract. Moving the task moves that ownership, nothing is shared.
unsafe impl Send for Task {}

/// What a task's finish function does with its job.
#[derive(Clone, Copy)]
pub(crate) enum Action {
    Run,
    /// Drop the closure unrun. A stack job is never discarded: its owner
    /// waits for it (see `Task::is_stack_job`).
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

/// A pointer to a job on some thread's stack, and its kinds.
/// Used by `join` so that the second closure needs no heap allocation.
#[derive(Clone, Copy)]
pub(crate) struct JobRef {
    data: *const (),
    kinds: &'static [TaskKind; 2],
}

impl JobRef {
    /// # Safety
    ///
    /// `data` must point at a job that starts with a [`JobHeader`]; it
    /// must stay valid, and `kinds`' finish function must be sound to call
    /// once, from any thread, on a slot holding `data`, until the job has
    /// run; the job's closure and result must be `Send`.
    pub(crate) unsafe fn new(data: *const (), kinds: &'static [TaskKind; 2]) -> Self {
        JobRef { data, kinds }
    }

    /// Whether both refer to the same job.
    pub(crate) fn same_job(&self, other: &JobRef) -> bool {
        std::ptr::eq(self.data, other.data)
    }
}

/// Whether a closure of type `F` fits in a task's own word.
const fn fits_inline<F>() -> bool {
    size_of::<F>() <= size_of::<Slot>() && align_of::<F>() <= align_of::<Slot>()
}

/// # Safety
///
/// `slot` must hold an `F` written by `Task::new_unchecked`, used by no
/// one else; this call consumes it.
unsafe fn finish_inline<F: FnOnce()>(slot: *mut Slot, action: Action) {
    // SAFETY: per the contract, the slot holds a live `F` (it fits:
    // `fits_inline`), which we take out once.
    let func = unsafe { slot.cast::<F>().read() };
    match action {
        Action::Run => func(),
        Action::Discard => drop(func),
    }
}

/// # Safety
///
/// `slot` must hold the pointer of a `Box<HeapJob<F>>` made by
/// `Task::new_unchecked`, used by no one else; this call consumes it.
unsafe fn finish_heap_job<F: FnOnce()>(slot: *mut Slot, action: Action) {
    // SAFETY: per the contract, the slot holds a live `Box<HeapJob<F>>`'s
    // pointer, which we own.
    let job = unsafe { Box::from_raw((*slot).assume_init() as *mut HeapJob<F>) };
    match action {
        Action::Run => {
            let HeapJob { func, .. } = *job;
            func()
        }
        Action::Discard => drop(job),
    }
}

impl Task {
    /// A task for `func`: in the task's own word if it fits and `stamped`
    /// is false (an inline closure has no header to hold a stamp), on the
    /// heap otherwise.
    pub(crate) fn new<F>(func: F, admitted: bool, stamped: bool) -> Self
    where
        F: FnOnce() + Send + 'static,
    {
        // SAFETY: `F: 'static` borrows nothing that could end first.
        unsafe { Self::new_unchecked(func, admitted, stamped) }
    }

    /// As [`Task::new`], for a closure that may borrow (a scope's tasks).
    ///
    /// # Safety
    ///
    /// Whatever `func` borrows must outlive the task: it must be run or
    /// dropped before any of those borrows end.
    pub(crate) unsafe fn new_unchecked<F>(func: F, admitted: bool, stamped: bool) -> Self
    where
        F: FnOnce() + Send,
    {
        let mut job = Slot::uninit();
        let kinds = if fits_inline::<F>() && !stamped {
            // SAFETY: `F` fits in the slot's size and alignment.
            unsafe { job.as_mut_ptr().cast::<F>().write(func) };
            ClosureKinds::<F>::INLINE
        } else {
            job.write(Box::into_raw(Box::new(HeapJob {
                header: JobHeader::new(),
                func,
            })) as *mut ());
            ClosureKinds::<F>::BOXED
        };
        Task {
            job,
            kind: &kinds[admitted as usize],
        }
    }

    /// A task for a [`Claimable`], stored as `new` stores a closure.
    pub(crate) fn claimable<C>(claim: C, admitted: bool, stamped: bool) -> Self
    where
        C: Claimable + 'static,
    {
        let mut job = Slot::uninit();
        let kinds = if fits_inline::<C>() && !stamped {
            // SAFETY: `C` fits in the slot's size and alignment.
            unsafe { job.as_mut_ptr().cast::<C>().write(claim) };
            ClaimKinds::<C>::INLINE
        } else {
            job.write(Box::into_raw(Box::new(HeapJob {
                header: JobHeader::new(),
                func: claim,
            })) as *mut ());
            ClaimKinds::<C>::BOXED
        };
        Task {
            job,
            kind: &kinds[admitted as usize],
        }
    }

    /// Whether running this task would do nothing: a spawned task that its
    /// joiner already ran (or that was cancelled).
    pub(crate) fn is_spent(&self) -> bool {
        // SAFETY: `spent` is made for this task's kind, and the slot is
        // live while the task exists.
        self.kind.flags & CLAIMABLE != 0 && unsafe { (self.kind.spent)(&self.job) }
    }

    pub(crate) fn stack(job: JobRef, admitted: bool) -> Self {
        Task {
            job: Slot::new(job.data as *mut ()),
            kind: &job.kinds[admitted as usize],
        }
    }

    fn header(&self) -> Option<&JobHeader> {
        if self.kind.flags & INLINE != 0 {
            return None;
        }
        // SAFETY: a task that is not inline holds the address of a job
        // that starts with its header (`repr(C)`) and stays valid while a
        // task points at it (`new_unchecked`, `JobRef::new`).
        Some(unsafe { &*((*self.job.as_ptr()) as *const JobHeader) })
    }

    #[inline]
    pub(crate) fn is_admitted(&self) -> bool {
        self.kind.flags & ADMITTED != 0
    }

    /// Stamps the submission time (nanoseconds since the latency epoch);
    /// an inline task (made with `stamped` false) has nowhere to keep it.
    pub(crate) fn set_enqueued_ns(&mut self, nanos: u64) {
        if let Some(header) = self.header() {
            header.enqueued.set(nanos.saturating_add(1));
        }
    }

    pub(crate) fn enqueued_ns(&self) -> Option<u64> {
        self.header()?.enqueued.get().checked_sub(1)
    }

    /// Whether this task is `job`, made by `Task::stack(job, false)`. Two
    /// comparisons of words, no load: `join` asks it of every task it pops.
    #[inline]
    pub(crate) fn is_job(&self, job: &JobRef) -> bool {
        // Only a stack task has a stack job's kind, and a stack task's slot
        // holds an address (`stack`), so reading the slot as one is sound.
        std::ptr::eq(self.kind, &job.kinds[0])
            // SAFETY: see above; `&&` reads the slot only for a stack task.
            && std::ptr::eq(unsafe { self.job.assume_init() }, job.data)
    }

    /// Whether this task points into a waiting thread's stack, and must be
    /// run rather than handed back or dropped.
    #[inline]
    pub(crate) fn is_stack_job(&self) -> bool {
        self.kind.flags & STACK != 0
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
        let mut task = ManuallyDrop::new(self);
        // SAFETY: the task is consumed and never dropped, so its job is
        // finished exactly once, here, by the function made for it.
        unsafe { (task.kind.finish)(&mut task.job, Action::Run) }
    }
}

impl Drop for Task {
    #[inline]
    fn drop(&mut self) {
        if !self.is_stack_job() {
            // SAFETY: a closure's task dropped unrun: this is the only use
            // of the closure it owns (`run` never reaches `drop`).
            unsafe { (self.kind.finish)(&mut self.job, Action::Discard) }
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
        let mut task = Task::new(move || drop(held), true, true);
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
    fn a_closure_of_one_word_is_inline_unless_stamped_and_a_larger_one_boxed() {
        let alive = std::sync::Arc::new(());
        let (one, two) = (alive.clone(), alive.clone());
        let small = Task::new(move || drop(one), true, false);
        assert!(small.header().is_none(), "inline: one Arc fits in a word");
        assert!(small.is_admitted());
        let stamped = Task::new(move || drop(two), false, true);
        assert!(stamped.header().is_some(), "a stamped task needs a header");
        let pair = (alive.clone(), alive.clone());
        let large = Task::new(move || drop(pair), false, false);
        assert!(large.header().is_some(), "two words do not fit");
        assert_eq!(std::sync::Arc::strong_count(&alive), 5);
        small.run();
        assert_eq!(
            std::sync::Arc::strong_count(&alive),
            4,
            "ran, and dropped its capture"
        );
        drop((stamped, large));
        assert_eq!(std::sync::Arc::strong_count(&alive), 1, "dropped unrun");
    }

    #[test]
    fn a_heap_task_runs_its_closure_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        Task::new(move || tx.send(7).unwrap(), false, false).run();
        assert_eq!(rx.recv().ok(), Some(7));
        assert!(rx.recv().is_err(), "the closure (and its sender) is gone");
    }
}
