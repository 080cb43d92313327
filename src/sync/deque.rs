//! A loom-visible stand-in for crossbeam-deque, used only under `cfg(loom)`.
//!
//! Same method names and `Steal` results as crossbeam's `Injector`, `Worker`
//! and `Stealer`, built on a loom `Mutex<VecDeque>`, so that loom sees every
//! push and steal. It never returns `Steal::Retry`.

use std::collections::VecDeque;

pub(crate) use crossbeam_deque::Steal;
use loom::sync::{Arc, Mutex};

fn lock<T>(m: &Mutex<VecDeque<T>>) -> loom::sync::MutexGuard<'_, VecDeque<T>> {
    super::lock(m)
}

/// Moves up to `limit` items (at most half of `src`, at least one) from the
/// front of `src` to `dest`'s queue and returns the first one.
fn batch_and_pop<T>(src: &Mutex<VecDeque<T>>, dest: &Worker<T>, limit: usize) -> Steal<T> {
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
    lock(&dest.queue).extend(batch);
    Steal::Success(first)
}

pub(crate) struct Injector<T> {
    queue: Mutex<VecDeque<T>>,
}

impl<T> Injector<T> {
    pub(crate) fn new() -> Self {
        Injector {
            queue: Mutex::new(VecDeque::new()),
        }
    }
    pub(crate) fn steal(&self) -> Steal<T> {
        match lock(&self.queue).pop_front() {
            Some(item) => Steal::Success(item),
            None => Steal::Empty,
        }
    }
    pub(crate) fn push(&self, item: T) {
        lock(&self.queue).push_back(item);
    }
    pub(crate) fn steal_batch_with_limit_and_pop(
        &self,
        dest: &Worker<T>,
        limit: usize,
    ) -> Steal<T> {
        batch_and_pop(&self.queue, dest, limit)
    }
}

/// LIFO for the owner (`pop` takes the newest), FIFO for thieves.
pub(crate) struct Worker<T> {
    queue: Arc<Mutex<VecDeque<T>>>,
}

impl<T> Worker<T> {
    pub(crate) fn new_lifo() -> Self {
        Worker {
            queue: Arc::new(Mutex::new(VecDeque::new())),
        }
    }
    pub(crate) fn push(&self, item: T) {
        lock(&self.queue).push_back(item);
    }
    pub(crate) fn pop(&self) -> Option<T> {
        lock(&self.queue).pop_back()
    }
    pub(crate) fn stealer(&self) -> Stealer<T> {
        Stealer {
            queue: self.queue.clone(),
        }
    }
}

pub(crate) struct Stealer<T> {
    queue: Arc<Mutex<VecDeque<T>>>,
}

impl<T> Stealer<T> {
    pub(crate) fn len(&self) -> usize {
        lock(&self.queue).len()
    }
    pub(crate) fn steal(&self) -> Steal<T> {
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
        if Arc::ptr_eq(&self.queue, &dest.queue) {
            return Steal::Empty;
        }
        batch_and_pop(&self.queue, dest, limit)
    }
}
