//! Loom's atomics, with the one ordering of `SeqCst` accesses that loom does
//! not model added back. Used only under `cfg(corepool_loom)`.
//!
//! Loom treats a `SeqCst` *access* as `AcqRel` (loom's README, "Unsupported
//! features"; tokio-rs/loom#180); only `fence(SeqCst)` takes part in its
//! single total order. In the C++20 model (Rust's), two `SeqCst` accesses of
//! one thread are ordered in that total order, so a `SeqCst` write followed
//! by a `SeqCst` read of another location cannot be reordered (store-load).
//! Loom lets that read return a stale value, and then reports code that
//! relies on it as racy when it is not. The admission hand-off is such code:
//! a worker does `state.fetch_sub(SeqCst)` then `waiting.load(SeqCst)`,
//! with no fence between, and plain loom reports a lost wake-up that C++20
//! rules out (see `docs/verification.md`).
//!
//! So each loom thread remembers whether it made a `SeqCst` write (a store
//! or read-modify-write through these types) since its last `SeqCst` fence;
//! if so, its next `load(SeqCst)` is preceded by `fence(SeqCst)`. That
//! restores exactly the store-load order between two `SeqCst` accesses, and
//! nothing for any access that is not `SeqCst`: a `Release` store followed
//! by a `SeqCst` load, or a `SeqCst` write followed by a `Relaxed`/`Acquire`
//! load, may still be reordered, as in C++20. (The fence is slightly
//! stronger than the `SeqCst` pair it stands for: it also orders the
//! thread's non-`SeqCst` accesses before the write with the read.)
//!
//! Only the methods below are tracked; anything else reaches loom's atomic
//! through `Deref`, untracked (so at worst a missing fence, never an extra
//! one). Atomics outside the crate (in the models themselves) are loom's own.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};

use loom::sync::atomic::Ordering;

loom::thread_local! {
    /// This thread made a `SeqCst` write since its last `SeqCst` fence.
    static SEQCST_WRITE_PENDING: Cell<bool> = Cell::new(false);
}

/// A fence; a `SeqCst` one also settles this thread's pending `SeqCst` write.
#[track_caller]
pub(crate) fn fence(order: Ordering) {
    loom::sync::atomic::fence(order);
    if order == Ordering::SeqCst {
        SEQCST_WRITE_PENDING.with(|pending| pending.set(false));
    }
}

/// After a write with ordering `order`.
fn wrote(order: Ordering) {
    if order == Ordering::SeqCst {
        SEQCST_WRITE_PENDING.with(|pending| pending.set(true));
    }
}

/// Before a read with ordering `order`: a `SeqCst` read after a pending
/// `SeqCst` write gets the fence that orders the two.
#[track_caller]
fn reading(order: Ordering) {
    if order == Ordering::SeqCst && SEQCST_WRITE_PENDING.with(|pending| pending.replace(false)) {
        loom::sync::atomic::fence(Ordering::SeqCst);
    }
}

macro_rules! tracked_atomic {
    ($name:ident, $value:ty) => {
        /// A loom atomic whose `SeqCst` accesses keep their store-load order
        /// (see the module docs).
        #[derive(Debug, Default)]
        pub(crate) struct $name(loom::sync::atomic::$name);

        #[allow(dead_code)] // the types offer what std's do; not all is used
        impl $name {
            #[track_caller]
            pub(crate) fn new(value: $value) -> Self {
                $name(loom::sync::atomic::$name::new(value))
            }

            #[track_caller]
            pub(crate) fn load(&self, order: Ordering) -> $value {
                reading(order);
                self.0.load(order)
            }

            #[track_caller]
            pub(crate) fn store(&self, value: $value, order: Ordering) {
                self.0.store(value, order);
                wrote(order);
            }

            #[track_caller]
            pub(crate) fn swap(&self, value: $value, order: Ordering) -> $value {
                let previous = self.0.swap(value, order);
                wrote(order);
                previous
            }

            #[track_caller]
            pub(crate) fn fetch_or(&self, value: $value, order: Ordering) -> $value {
                let previous = self.0.fetch_or(value, order);
                wrote(order);
                previous
            }

            #[track_caller]
            pub(crate) fn fetch_and(&self, value: $value, order: Ordering) -> $value {
                let previous = self.0.fetch_and(value, order);
                wrote(order);
                previous
            }

            #[track_caller]
            pub(crate) fn compare_exchange(
                &self,
                current: $value,
                new: $value,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$value, $value> {
                reading(failure);
                let result = self.0.compare_exchange(current, new, success, failure);
                if result.is_ok() {
                    wrote(success);
                }
                result
            }

            #[track_caller]
            pub(crate) fn compare_exchange_weak(
                &self,
                current: $value,
                new: $value,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$value, $value> {
                reading(failure);
                let result = self.0.compare_exchange_weak(current, new, success, failure);
                if result.is_ok() {
                    wrote(success);
                }
                result
            }

            #[track_caller]
            pub(crate) fn fetch_update<F>(
                &self,
                set_order: Ordering,
                fetch_order: Ordering,
                f: F,
            ) -> Result<$value, $value>
            where
                F: FnMut($value) -> Option<$value>,
            {
                reading(fetch_order);
                let result = self.0.fetch_update(set_order, fetch_order, f);
                if result.is_ok() {
                    wrote(set_order);
                }
                result
            }
        }

        impl Deref for $name {
            type Target = loom::sync::atomic::$name;

            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl DerefMut for $name {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.0
            }
        }
    };
}

tracked_atomic!(AtomicBool, bool);
tracked_atomic!(AtomicUsize, usize);

#[allow(dead_code)] // the types offer what std's do; not all is used
impl AtomicUsize {
    #[track_caller]
    pub(crate) fn fetch_add(&self, value: usize, order: Ordering) -> usize {
        let previous = self.0.fetch_add(value, order);
        wrote(order);
        previous
    }

    #[track_caller]
    pub(crate) fn fetch_sub(&self, value: usize, order: Ordering) -> usize {
        let previous = self.0.fetch_sub(value, order);
        wrote(order);
        previous
    }
}
