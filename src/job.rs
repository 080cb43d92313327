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

use crate::sync::{lock, Arc, AtomicBool, Condvar, Mutex, Ordering};
use crate::task::{Action, JobHeader, JobRef, Slot, TaskKind};

/// Something a job's owner waits on.
pub(crate) trait Latch {
    /// Marks the job done. After this call the job may be freed at once,
    /// so `set` must not touch `self` once the flag is visible.
    fn set(&self);
}

/// A flag the owner polls while it helps with other work (inside a worker).
pub(crate) struct SpinLatch {
    done: AtomicBool,
}

impl SpinLatch {
    pub(crate) fn new() -> Self {
        SpinLatch {
            done: AtomicBool::new(false),
        }
    }

    pub(crate) fn probe(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

impl Latch for SpinLatch {
    fn set(&self) {
        self.done.store(true, Ordering::Release);
    }
}

/// A latch a thread outside the pool blocks on. The state lives in an
/// `Arc`, so the setter keeps it alive through the final unlock and notify
/// even if the owner returns the moment it sees the flag.
pub(crate) struct LockLatch {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl LockLatch {
    pub(crate) fn new() -> Self {
        LockLatch {
            inner: Arc::new((Mutex::new(false), Condvar::new())),
        }
    }

    pub(crate) fn wait(&self) {
        let (done, cvar) = &*self.inner;
        let mut done = lock(done);
        while !*done {
            done = match cvar.wait(done) {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }
}

impl Latch for LockLatch {
    fn set(&self) {
        let inner = self.inner.clone();
        let (done, cvar) = &*inner;
        *lock(done) = true;
        cvar.notify_all();
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
    F: FnOnce() -> R + Send,
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
            let result = catch_unwind(AssertUnwindSafe(func));
            // SAFETY: as above; the owner reads `result` only after the
            // latch is set, which happens-after this write (Release/Acquire
            // or the latch's mutex).
            unsafe { *this.result.get() = Some(result) };
        }
        this.latch.set();
    }

    /// Runs the job on the current thread, if no one has taken it.
    pub(crate) fn run_inline(&self) {
        let mut slot = Slot::new(self as *const Self as *mut ());
        // SAFETY: called by the owner only when no `JobRef` to this job
        // can be executed by anyone else (it was never shared, or it was
        // popped back from the owner's own deque).
        unsafe { Self::execute(&mut slot, Action::Run) }
    }

    /// Takes the closure back and runs it here, catching a panic: for an
    /// owner that never offered its job, or popped it back before anyone
    /// else could run it. Skips the result cell and the latch, which no
    /// one else reads. Returns `None` if the job already ran.
    pub(crate) fn run_here(&self) -> Option<Result<R, Box<dyn Any + Send>>> {
        // SAFETY: called by the owner only when no one else can execute a
        // `JobRef` to this job (never offered, or popped back from the
        // owner's own deque), so no one else touches `func`.
        let func = unsafe { (*self.func.get()).take() }?;
        Some(catch_unwind(AssertUnwindSafe(func)))
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
