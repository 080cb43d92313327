//! Loom's atomics, with `SeqCst` loads modelled closer to the C++20 memory
//! model. Used only under `cfg(loom)`.
//!
//! Loom treats a `SeqCst` *access* as `AcqRel` (loom's README, "Unsupported
//! features"; tokio-rs/loom#180); only `fence(SeqCst)` takes part in its
//! single total order. Code that relies on `SeqCst` accesses alone is then
//! reported as racy when it is not. The admission hand-off is such code: a
//! worker does `state.fetch_sub(SeqCst)` then `waiting.load(SeqCst)`, with
//! no fence in between, and the producer's side is `waiting.fetch_add(SeqCst);
//! fence(SeqCst); state.load(..)`. In C++20 the two `SeqCst` accesses and the
//! fence cannot all read stale values (see `docs/verification.md`), but
//! loom lets both sides miss each other and reports a lost wake-up.
//!
//! So here a `load(SeqCst)` is `fence(SeqCst)` followed by the load. That is
//! at least as strong as a `SeqCst` load, and somewhat stronger: the fence
//! also orders the thread's earlier non-`SeqCst` accesses, which a `SeqCst`
//! load does not. A bug that needs exactly that difference can be missed
//! under loom; every other access keeps loom's own semantics, and the
//! explicit fences of the protocols (the ones the `drop_fence` seeded bug
//! removes) are not touched. Read-modify-writes need nothing: loom already
//! makes them read the newest value.

use std::ops::{Deref, DerefMut};

use loom::sync::atomic::{fence, Ordering};

macro_rules! seqcst_load_atomic {
    ($name:ident, $value:ty) => {
        /// A loom atomic whose `load(SeqCst)` is preceded by `fence(SeqCst)`;
        /// every other method is loom's, through `Deref`.
        #[derive(Debug, Default)]
        pub(crate) struct $name(loom::sync::atomic::$name);

        impl $name {
            #[track_caller]
            #[allow(dead_code)] // not every type is built with `new`
            pub(crate) fn new(value: $value) -> Self {
                $name(loom::sync::atomic::$name::new(value))
            }

            #[track_caller]
            pub(crate) fn load(&self, order: Ordering) -> $value {
                if order == Ordering::SeqCst {
                    fence(Ordering::SeqCst);
                }
                self.0.load(order)
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

seqcst_load_atomic!(AtomicBool, bool);
seqcst_load_atomic!(AtomicUsize, usize);
