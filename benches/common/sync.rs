//! Completion signalling: how the measuring thread learns that the last
//! task of a round has run, without spinning on a core the workers need.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, Thread};

use crossbeam_utils::CachePadded;

/// A countdown latch owned by one waiting thread (the one that created it).
/// `count_down` is the "atomic increment" every benchmark task performs;
/// the last one unparks the waiter.
pub struct Latch {
    remaining: CachePadded<AtomicUsize>,
    done: AtomicBool,
    waiter: Thread,
}

impl Latch {
    /// A latch that the current thread will wait on.
    pub fn new() -> Self {
        Latch {
            remaining: CachePadded::new(AtomicUsize::new(0)),
            done: AtomicBool::new(true),
            waiter: thread::current(),
        }
    }

    /// A latch leaked for the rest of the process, so that tasks capture a
    /// plain reference (no reference count per task for any runtime).
    pub fn leaked() -> &'static Latch {
        Box::leak(Box::new(Latch::new()))
    }

    /// Arms the latch for `count` tasks. Call before submitting them.
    pub fn reset(&self, count: usize) {
        assert!(self.done.load(Ordering::Acquire), "latch reset while armed");
        self.done.store(count == 0, Ordering::Relaxed);
        self.remaining.store(count, Ordering::Release);
    }

    /// One task done.
    #[inline]
    pub fn count_down(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.store(true, Ordering::Release);
            self.waiter.unpark();
        }
    }

    /// Parks until every task counted down. Only the creating thread may wait.
    pub fn wait(&self) {
        debug_assert_eq!(thread::current().id(), self.waiter.id());
        while !self.done.load(Ordering::Acquire) {
            thread::park();
        }
    }
}

impl Default for Latch {
    fn default() -> Self {
        Latch::new()
    }
}
