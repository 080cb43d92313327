//! Jobs that live on a waiting thread's stack, and the latches that tell
//! their owner they are done. `join` and `install` use them so that a
//! closure which borrows from the stack can run on another worker without
//! a heap allocation, and without a `'static` bound.
//!
//! The owner of a `StackJob` never returns (and so never frees the job)
//! before the job's latch is set, and the latch is the last thing the
//! executing thread touches. That is the whole safety argument; each
//! `unsafe` below relies on it.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::sync::{Arc, AtomicUsize, Ordering, Parker, Signal};
use crate::task::{Action, JobHeader, JobRef, Slot, TaskKind};

/// Something a job's owner waits on.
pub(crate) trait Latch {
    /// Marks the job done and wakes its owner if it sleeps.
    ///
    /// # Safety
    ///
    /// `this` must point at a live latch. The owner may free the latch as
    /// soon as it sees it set, so `set` touches `*this` for the last time
    /// in the store that makes it visible, and the caller must not touch
    /// it afterwards either.
    unsafe fn set(this: *const Self);
}

/// Not set; the owner is awake (running, helping or spinning).
const UNSET: usize = 0;
/// Set: the job is done. Any other value: not set, and the owner has
/// parked (or is about to) on the parker at that address.
const SET: usize = 1;

/// The latch of a `join`'s second closure: the owner, a worker, polls it
/// while it helps (see `crate::wait`) and, once nothing is left to help
/// with, parks on its own wait parker; the thread that sets the latch
/// unparks it.
pub(crate) struct JoinLatch {
    /// `UNSET`, `SET`, or the address of the parked owner's wait parker:
    /// the setter learns whom to wake from the same swap that sets the
    /// latch, and a join that never parks never looks its parker up. The
    /// parker lives in the pool's shared state, which every thread that
    /// can run this job keeps alive (a worker of the same pool), so it
    /// outlives the latch.
    state: AtomicUsize,
}

impl JoinLatch {
    pub(crate) fn new() -> Self {
        JoinLatch {
            state: AtomicUsize::new(UNSET),
        }
    }

    pub(crate) fn probe(&self) -> bool {
        self.state.load(Ordering::Acquire) == SET
    }

    /// Parks the owner on `parker`, its wait parker, until the latch is
    /// set, or until `interrupted()` (a broadcast share arrived: whoever
    /// posts one unparks the same parker after posting). Only the owner
    /// calls it; after an interruption it may call it again.
    pub(crate) fn park_until_set(&self, parker: &Parker, interrupted: impl Fn() -> bool) {
        let address = parker as *const Parker as usize;
        // A failed exchange means the latch is already set, or the owner
        // registered in an earlier, interrupted call.
        if let Err(current) =
            self.state
                .compare_exchange(UNSET, address, Ordering::AcqRel, Ordering::Acquire)
        {
            if current != address {
                return;
            }
        }
        // The setter unparks exactly once after it saw the address, and
        // the parker keeps that token, so this loop ends once the latch is
        // set. (A token left by an interrupted call or a broadcast's post
        // only makes one `park` return early.)
        while !self.probe() {
            if interrupted() {
                return;
            }
            parker.park();
        }
    }
}

impl Latch for JoinLatch {
    unsafe fn set(this: *const Self) {
        // SAFETY: per the contract `this` is live until this swap makes the
        // latch visible as set; nothing touches it afterwards.
        let previous = unsafe { (*this).state.swap(SET, Ordering::AcqRel) };
        if previous != UNSET && previous != SET {
            // SAFETY: the owner stored its wait parker's address, which
            // lives in the pool's shared state, not in the latch (see
            // `state`).
            unsafe { (*(previous as *const Parker)).unpark() };
        }
    }
}

/// A latch a thread outside the pool blocks on. The state lives in an
/// `Arc`, so the setter keeps it alive through the final unlock and notify
/// even if the owner returns the moment it sees the flag.
pub(crate) struct LockLatch {
    inner: Arc<Signal>,
}

impl LockLatch {
    pub(crate) fn new() -> Self {
        LockLatch {
            inner: Arc::new(Signal::new()),
        }
    }

    pub(crate) fn wait(&self) {
        self.inner.wait(false);
    }
}

impl Latch for LockLatch {
    unsafe fn set(this: *const Self) {
        // SAFETY: per the contract `this` is live here; the clone keeps the
        // state alive through the unlock and notify below, after which the
        // owner may free the latch.
        let inner = unsafe { (*this).inner.clone() };
        inner.set();
    }
}

/// What a [`StackJob`] runs: a closure `FnOnce() -> R`, or a body that
/// finds what it needs on the thread that runs it (a `JoinContext` join's
/// second closure takes the context of the worker that runs it).
pub(crate) trait JobBody<R>: Send {
    /// Runs the body on the current thread.
    fn run(self) -> R;
}

impl<R, F> JobBody<R> for F
where
    F: FnOnce() -> R + Send,
{
    #[inline]
    fn run(self) -> R {
        self()
    }
}

/// A closure and the slot for its result, on the owner's stack. The
/// header comes first (`repr(C)`), as a `Task` expects of every job.
#[repr(C)]
pub(crate) struct StackJob<L, F, R> {
    header: JobHeader,
    pub(crate) latch: L,
    func: UnsafeCell<Option<F>>,
    result: UnsafeCell<Option<Result<R, Box<dyn Any + Send>>>>,
}

impl<L, F, R> StackJob<L, F, R>
where
    L: Latch,
    F: JobBody<R>,
    R: Send,
{
    pub(crate) fn new(latch: L, func: F) -> Self {
        StackJob {
            header: JobHeader::new(),
            latch,
            func: UnsafeCell::new(Some(func)),
            result: UnsafeCell::new(None),
        }
    }

    /// # Safety
    ///
    /// The caller must keep `self` alive, and not move it, until
    /// `self.latch` is set; and it must not touch `func` or `result` until
    /// then. The returned reference may be run at most once.
    pub(crate) unsafe fn as_job_ref(&self) -> JobRef {
        // SAFETY: the caller's contract is the rest of `JobRef::new`'s; the
        // job starts with its header (`repr(C)`).
        unsafe { JobRef::new(self as *const Self as *const (), Self::KINDS) }
    }

    const KINDS: &'static [TaskKind; 2] = &TaskKind::stack(Self::execute);

    /// The region a waiter for this job leapfrogs into: its address.
    pub(crate) fn region(&self) -> usize {
        self as *const Self as usize
    }

    /// # Safety
    ///
    /// `slot` must hold the address, from `as_job_ref`, of a live job, to
    /// be executed at most once. The action is ignored: a stack job always
    /// runs, since its owner waits for its latch (`Task` never discards
    /// one).
    unsafe fn execute(slot: *mut Slot, _: Action) {
        // SAFETY: per the contract, the slot holds the job's address.
        let this = unsafe { (*slot).assume_init() } as *const ();
        // SAFETY: per the contract, `this` points at a live `StackJob` of
        // exactly this type, and only this call touches its cells until
        // the latch is set.
        let this = unsafe { &*(this as *const Self) };
        // SAFETY: as above: no one else reads or writes `func` now.
        let func = unsafe { (*this.func.get()).take() };
        if let Some(func) = func {
            let region = this.region();
            let result = catch_unwind(AssertUnwindSafe(|| {
                crate::worker::in_piece(region, || func.run())
            }));
            // SAFETY: as above; the owner reads `result` only after the
            // latch is set, which happens-after this write (Release/Acquire
            // or the latch's mutex).
            unsafe { *this.result.get() = Some(result) };
        }
        // SAFETY: the latch is live until this call makes it set, and
        // nothing here touches the job afterwards.
        unsafe { L::set(&this.latch) };
    }

    /// Runs the job on the current thread, if no one has taken it.
    pub(crate) fn run_inline(&self) {
        let mut slot = Slot::new(self as *const Self as *mut ());
        // SAFETY: called by the owner only when no `JobRef` to this job
        // can be executed by anyone else (it was never shared, or it was
        // popped back from the owner's own deque).
        unsafe { Self::execute(&mut slot, Action::Run) }
    }

    /// Takes the body back, unrun, for an owner that runs it itself: one
    /// that never offered its job, or popped it back before anyone else
    /// could run it. Returns `None` if the job already ran.
    pub(crate) fn take_here(&self) -> Option<F> {
        // SAFETY: called by the owner only when no one else can execute a
        // `JobRef` to this job, so no one else touches `func`.
        unsafe { (*self.func.get()).take() }
    }

    /// The job's result, re-raising its panic. Call only once the latch
    /// is set.
    pub(crate) fn into_result(self) -> R {
        match self.into_result_catching() {
            Ok(value) => value,
            Err(payload) => resume_unwind(payload),
        }
    }

    /// The job's result, or its panic payload. Call only once the latch is
    /// set.
    pub(crate) fn into_result_catching(self) -> Result<R, Box<dyn Any + Send>> {
        match self.result.into_inner() {
            Some(result) => result,
            None => unreachable!("a stack job's result was read before it ran"),
        }
    }
}
