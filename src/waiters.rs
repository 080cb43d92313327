//! The queue of producers waiting for a slot of the bound: blocked threads
//! and pending futures in one FIFO, each entry woken by its own kind of
//! signal (a thread parker or a task `Waker`), as crossbeam-channel's
//! `SyncWaker` keeps one list of blocked operations.
//!
//! A slot is *granted* to the head entry: the releaser marks it, removes it
//! from the queue and wakes it, and the slot stays counted in the bound's
//! word, now owned by that waiter (see `crate::admission` for why this
//! keeps the queue FIFO and no slot is lost). Every change to the queue
//! and every grant happen under one lock; `len` mirrors the queue's
//! length so that a release can look whether anyone waits without it.

use std::collections::VecDeque;
use std::task::Waker;

use crossbeam_utils::CachePadded;

use crate::sync::{lock, Arc, AtomicBool, AtomicUsize, Instant, Mutex, Ordering, Parker};

/// How a waiter is woken.
enum Signal {
    /// A blocked producer thread.
    Thread(Parker),
    /// A pending future; the waker of its latest poll.
    Task(Mutex<Option<Waker>>),
}

/// One producer waiting for a slot.
pub(crate) struct Waiter {
    /// Set, under the queue's lock, when a slot was granted to this waiter.
    granted: AtomicBool,
    signal: Signal,
}

impl Waiter {
    /// A waiter for the calling thread, which will park.
    pub(crate) fn thread() -> Arc<Waiter> {
        Arc::new(Waiter {
            granted: AtomicBool::new(false),
            signal: Signal::Thread(Parker::new()),
        })
    }

    /// A waiter for a future, woken through `waker`.
    pub(crate) fn task(waker: &Waker) -> Arc<Waiter> {
        Arc::new(Waiter {
            granted: AtomicBool::new(false),
            signal: Signal::Task(Mutex::new(Some(waker.clone()))),
        })
    }

    /// Whether a slot was granted to this waiter. Once true, it stays true
    /// and the waiter owns that slot.
    pub(crate) fn is_granted(&self) -> bool {
        self.granted.load(Ordering::SeqCst)
    }

    /// Replaces the waker a grant or a close will wake (a future polled
    /// again may have moved to another task's context).
    pub(crate) fn set_waker(&self, waker: &Waker) {
        if let Signal::Task(slot) = &self.signal {
            let mut slot = lock(slot);
            match &*slot {
                Some(current) if current.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
    }

    /// Parks the calling thread until woken (a thread waiter only).
    pub(crate) fn park(&self) {
        if let Signal::Thread(parker) = &self.signal {
            parker.park();
        }
    }

    /// Parks until woken or `deadline`; `false` when the deadline passed
    /// first (a thread waiter only).
    pub(crate) fn park_until(&self, deadline: Instant) -> bool {
        match &self.signal {
            Signal::Thread(parker) => parker.park_until(deadline),
            Signal::Task(_) => true,
        }
    }

    fn wake(&self) {
        match &self.signal {
            Signal::Thread(parker) => parker.unpark(),
            Signal::Task(slot) => {
                // Taken out first: a waker runs executor code, never under
                // our lock.
                let waker = lock(slot).take();
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        }
    }
}

/// The FIFO of waiting producers.
pub(crate) struct Waiters {
    queue: Mutex<VecDeque<Arc<Waiter>>>,
    /// The queue's length; read on every release without the lock.
    len: CachePadded<AtomicUsize>,
}

impl Waiters {
    pub(crate) fn new() -> Self {
        Waiters {
            queue: Mutex::new(VecDeque::new()),
            len: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// How many wait. SeqCst: pairs with the bound's word (see
    /// `crate::admission`).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }

    /// How many wait, as a hint (no ordering with anything else).
    pub(crate) fn len_hint(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Queues `waiter` at the back.
    pub(crate) fn push(&self, waiter: &Arc<Waiter>) {
        let mut queue = lock(&self.queue);
        queue.push_back(waiter.clone());
        self.len.fetch_add(1, Ordering::SeqCst);
    }

    /// Takes `waiter` out of the queue. `false` when it was no longer
    /// there: a slot was granted to it, or a close woke it.
    pub(crate) fn remove(&self, waiter: &Arc<Waiter>) -> bool {
        let mut queue = lock(&self.queue);
        match queue.iter().position(|w| Arc::ptr_eq(w, waiter)) {
            Some(index) => {
                queue.remove(index);
                self.len.fetch_sub(1, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Grants up to `slots` slots to the waiters at the head, in order,
    /// while `take_slot` (called under the lock, once per grant) finds one
    /// to give. Returns how many were granted.
    pub(crate) fn grant(&self, slots: usize, mut take_slot: impl FnMut() -> bool) -> usize {
        let mut woken = Vec::new();
        {
            let mut queue = lock(&self.queue);
            while woken.len() < slots && !queue.is_empty() && take_slot() {
                let Some(waiter) = queue.pop_front() else {
                    break;
                };
                self.len.fetch_sub(1, Ordering::SeqCst);
                waiter.granted.store(true, Ordering::SeqCst);
                woken.push(waiter);
            }
        }
        let granted = woken.len();
        for waiter in woken {
            waiter.wake();
        }
        granted
    }

    /// Wakes every waiter without a grant (the pool closed).
    pub(crate) fn wake_all(&self) {
        let woken: Vec<Arc<Waiter>> = {
            let mut queue = lock(&self.queue);
            self.len.fetch_sub(queue.len(), Ordering::SeqCst);
            queue.drain(..).collect()
        };
        for waiter in woken {
            waiter.wake();
        }
    }
}
