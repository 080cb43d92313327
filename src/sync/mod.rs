//! The one place that names `std::sync` or `loom`.
//!
//! Every atomic, lock, thread and park/unpark that the pool's protocols use
//! comes through here, so that building with `RUSTFLAGS="--cfg corepool_loom"` swaps
//! the whole crate onto loom's instrumented primitives and the models in
//! `loom-tests/` check the real code, not a copy of it.
//!
//! crossbeam-deque is not loom-aware (its atomics are not instrumented), so
//! under `cfg(corepool_loom)` the deque and the injector are replaced by a loom-visible
//! stand-in with the same interface ([`deque`]). It never returns
//! `Steal::Retry`. It follows that no park, wake, capacity or close decision
//! may read a deque's length: those decisions read pool-owned atomics only.

#[cfg(not(corepool_loom))]
mod imp {
    pub(crate) use crossbeam_deque::{Injector, Steal, Stealer, Worker};
    pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use std::thread;
    pub(crate) use std::thread_local;

    /// Spins for a moment; a hint to the CPU, not a scheduling point.
    pub(crate) fn spin_hint() {
        std::hint::spin_loop();
    }

    /// crossbeam's `steal_batch_with_limit_and_pop`, but `Empty` at once
    /// when the deque looks empty: crossbeam pins its epoch (a SeqCst
    /// fence) before it looks, and a worker probes other workers' inflows,
    /// mostly empty, each time its own queues run dry. The stand-in's
    /// steal already starts with the same lock-free look.
    pub(crate) fn steal_batch_if_any<T>(
        stealer: &Stealer<T>,
        dest: &Worker<T>,
        limit: usize,
    ) -> Steal<T> {
        if stealer.is_empty() {
            return Steal::Empty;
        }
        stealer.steal_batch_with_limit_and_pop(dest, limit)
    }
}

#[cfg(corepool_loom)]
mod imp {
    pub(crate) use super::deque::{Injector, Steal, Stealer, Worker};
    pub(crate) use super::seqcst::{fence, AtomicBool, AtomicUsize};
    pub(crate) use loom::sync::atomic::Ordering;
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use loom::thread;
    pub(crate) use loom::thread_local;

    /// Under loom a spin is a scheduling point, so that a bounded spin loop
    /// lets the other threads make progress.
    pub(crate) fn spin_hint() {
        loom::thread::yield_now();
    }

    /// As outside loom; the stand-in's steal makes the same lock-free look
    /// first, so no second look is added to the models.
    pub(crate) fn steal_batch_if_any<T>(
        stealer: &Stealer<T>,
        dest: &Worker<T>,
        limit: usize,
    ) -> Steal<T> {
        stealer.steal_batch_with_limit_and_pop(dest, limit)
    }
}

#[cfg(corepool_loom)]
pub(crate) mod deque;
#[cfg(corepool_loom)]
mod seqcst;
mod signal;

pub(crate) use signal::{Parker, Signal};

pub(crate) use imp::*;

/// Statistics counters: plain std atomics in every build. They take part in
/// no protocol of the scheduler (nothing it decides depends on them), so
/// loom need not track them, and they would only slow the models down.
/// `Pool::wait_idle` decides from some of them (`pushed`, `finished`,
/// `admitted_started`); no loom model covers it.
pub(crate) mod stats {
    pub(crate) use std::sync::atomic::AtomicU64;
}

/// A number that only steers where a worker looks first, never whether a
/// task is found: a plain std atomic, read and written `Relaxed`. Under
/// loom it always reads 1 (writes are dropped), since loom must replay
/// every read it does not track the same way: loom then checks a worker
/// that takes from another's inflow at every busy look but its first,
/// and every path that decides to park ignores the hint in every build.
pub(crate) struct Hint(#[cfg(not(corepool_loom))] std::sync::atomic::AtomicU64);

impl Hint {
    pub(crate) fn new() -> Self {
        Hint(
            #[cfg(not(corepool_loom))]
            std::sync::atomic::AtomicU64::new(0),
        )
    }

    pub(crate) fn set(&self, _value: u64) {
        #[cfg(not(corepool_loom))]
        self.0.store(_value, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        #[cfg(not(corepool_loom))]
        {
            self.0.load(std::sync::atomic::Ordering::Relaxed)
        }
        #[cfg(corepool_loom)]
        {
            1
        }
    }
}

/// The clock. Deadlines are computed from it; under loom no wait actually
/// waits for it (see [`Parker::park_until`]), which keeps executions
/// deterministic while still exploring every point at which a timeout fires.
pub(crate) use std::time::Instant;

/// A number for the calling thread, never zero while the thread runs
/// tasks: equal for two calls exactly when they come from the same thread
/// (zero while thread-locals are being destroyed). Under std the address
/// of a thread-local; under loom, whose threads share one OS thread, a
/// hash of loom's thread id.
pub(crate) fn thread_token() -> usize {
    #[cfg(not(corepool_loom))]
    {
        std::thread_local!(static TOKEN: u8 = const { 0 });
        TOKEN
            .try_with(|token| token as *const u8 as usize)
            .unwrap_or(0)
    }
    #[cfg(corepool_loom)]
    {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        loom::thread::current().id().hash(&mut hasher);
        (hasher.finish() as usize) | 1
    }
}

/// The core ids in this process's affinity mask, as the OS lists them, or
/// `None` where the platform cannot tell. Under loom always `None`: loom's
/// threads all run on the model's one OS thread, so pinning a worker would
/// pin the test itself.
pub(crate) fn affinity_mask() -> Option<Vec<usize>> {
    #[cfg(not(corepool_loom))]
    {
        Some(
            core_affinity::get_core_ids()?
                .into_iter()
                .map(|core| core.id)
                .collect(),
        )
    }
    #[cfg(corepool_loom)]
    {
        None
    }
}

/// Locks a mutex, ignoring poisoning: no critical section in this crate runs
/// user code, so a poisoned lock still guards consistent data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits on `cvar`, ignoring poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(cvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cvar.wait(guard)
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits on `cvar` until notified, ignoring poisoning, or until `deadline`
/// if there is one: `Err` hands the guard back once the deadline has
/// passed, without waiting. Callers loop on their own condition, so a
/// spurious or early return costs one more look.
pub(crate) fn wait_deadline<'a, T>(
    cvar: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
) -> Result<MutexGuard<'a, T>, MutexGuard<'a, T>> {
    let Some(deadline) = deadline else {
        return Ok(wait(cvar, guard));
    };
    let now = Instant::now();
    if now >= deadline {
        return Err(guard);
    }
    Ok(cvar
        .wait_timeout(guard, deadline - now)
        .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard))
}
