//! A loom-visible stand-in for crossbeam-deque, used only under `cfg(corepool_loom)`.
//!
//! Same method names and `Steal` results as crossbeam's `Injector`, `Worker`
//! and `Stealer`, built on a loom `Mutex<VecDeque>`, so that loom sees every
//! push and steal. It never returns `Steal::Retry`.
//!
//! A mutex alone would make the stand-in much stronger than crossbeam: a
//! thief that locks after a push would always see it, so a missing fence in
//! the pool's sleep protocol could never show. Crossbeam's thieves decide
//! "empty" from plain atomic loads of the queue's indices, without any lock.
//! So each queue here also publishes its length in an atomic, stored
//! (`Release`) by every locked operation, and a thief that loads (`Acquire`)
//! a length of zero returns `Steal::Empty` without locking, exactly as a
//! crossbeam thief that sees `head == tail` does. It may read a stale
//! length, so a push is not visible to a thief unless the protocol orders
//! them (crossbeam's own internal `SeqCst` fences are not modelled: the pool
//! must not rely on them).

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};

pub(crate) use crossbeam_deque::Steal;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex, MutexGuard};

/// A locked queue plus its published length.
struct Queue<T> {
    items: Mutex<VecDeque<T>>,
    len: AtomicUsize,
}

impl<T> Queue<T> {
    fn new() -> Self {
        Queue {
            items: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
        }
    }

    /// What a lock-free thief sees: `true` when the queue looks empty.
    fn looks_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }
}

/// The queue, locked; publishes the new length, if it changed, when dropped.
struct Locked<'a, T> {
    guard: MutexGuard<'a, VecDeque<T>>,
    len: &'a AtomicUsize,
    /// The length when locked, which is also the last one published.
    before: usize,
}

impl<T> Deref for Locked<'_, T> {
    type Target = VecDeque<T>;

    fn deref(&self) -> &VecDeque<T> {
        &self.guard
    }
}

impl<T> DerefMut for Locked<'_, T> {
    fn deref_mut(&mut self) -> &mut VecDeque<T> {
        &mut self.guard
    }
}

impl<T> Drop for Locked<'_, T> {
    fn drop(&mut self) {
        // Still under the lock: the lengths are stored in lock order.
        if self.guard.len() != self.before {
            self.len.store(self.guard.len(), Ordering::Release);
        }
    }
}

fn lock<T>(queue: &Queue<T>) -> Locked<'_, T> {
    let guard = super::lock(&queue.items);
    let before = guard.len();
    Locked {
        guard,
        len: &queue.len,
        before,
    }
}

/// Moves up to `limit` items (at most half of `src`, at least one) from the
/// front of `src` to `dest`'s queue and returns the first one.
fn batch_and_pop<T>(src: &Queue<T>, dest: &Worker<T>, limit: usize) -> Steal<T> {
    if src.looks_empty() {
        return Steal::Empty;
    }
    // Take the batch under the source lock alone, then release it before
    // locking the destination: two workers stealing from each other must not
    // hold both locks in opposite orders.
    let (first, batch) = {
        let mut src = lock(src);
        let Some(first) = src.pop_front() else {
            return Steal::Empty;
        };
        let extra = src.len().div_ceil(2).min(limit.saturating_sub(1));
        let batch: Vec<T> = src.drain(..extra).collect();
        (first, batch)
    };
    if !batch.is_empty() {
        lock(&dest.queue).extend(batch);
    }
    Steal::Success(first)
}

pub(crate) struct Injector<T> {
    queue: Queue<T>,
}

impl<T> Injector<T> {
    pub(crate) fn new() -> Self {
        Injector {
            queue: Queue::new(),
        }
    }
    pub(crate) fn steal(&self) -> Steal<T> {
        if self.queue.looks_empty() {
            return Steal::Empty;
        }
        match lock(&self.queue).pop_front() {
            Some(item) => Steal::Success(item),
            None => Steal::Empty,
        }
    }
    pub(crate) fn push(&self, item: T) {
        lock(&self.queue).push_back(item);
    }
    pub(crate) fn len(&self) -> usize {
        lock(&self.queue).len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.looks_empty()
    }
    pub(crate) fn steal_batch_with_limit_and_pop(
        &self,
        dest: &Worker<T>,
        limit: usize,
    ) -> Steal<T> {
        batch_and_pop(&self.queue, dest, limit)
    }
}

/// LIFO (`pop` takes the newest) or FIFO for the owner, FIFO for thieves.
pub(crate) struct Worker<T> {
    queue: Arc<Queue<T>>,
    fifo: bool,
}

impl<T> Worker<T> {
    pub(crate) fn new_lifo() -> Self {
        Worker {
            queue: Arc::new(Queue::new()),
            fifo: false,
        }
    }
    pub(crate) fn new_fifo() -> Self {
        Worker {
            queue: Arc::new(Queue::new()),
            fifo: true,
        }
    }
    pub(crate) fn push(&self, item: T) {
        lock(&self.queue).push_back(item);
    }
    pub(crate) fn pop(&self) -> Option<T> {
        if self.fifo {
            lock(&self.queue).pop_front()
        } else {
            lock(&self.queue).pop_back()
        }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.looks_empty()
    }
    pub(crate) fn stealer(&self) -> Stealer<T> {
        Stealer {
            queue: self.queue.clone(),
        }
    }
}

pub(crate) struct Stealer<T> {
    queue: Arc<Queue<T>>,
}

impl<T> Stealer<T> {
    pub(crate) fn len(&self) -> usize {
        lock(&self.queue).len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.looks_empty()
    }
    pub(crate) fn steal(&self) -> Steal<T> {
        if self.queue.looks_empty() {
            return Steal::Empty;
        }
        match lock(&self.queue).pop_front() {
            Some(item) => Steal::Success(item),
            None => Steal::Empty,
        }
    }
    pub(crate) fn steal_batch_with_limit_and_pop(
        &self,
        dest: &Worker<T>,
        limit: usize,
    ) -> Steal<T> {
        batch_and_pop(&self.queue, dest, limit)
    }
}
