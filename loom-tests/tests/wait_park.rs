//! Model 13: the wait protocol's park and wake (`src/wait.rs`).
//!
//! A fork-join waiter that finds nothing of its own to run parks: a `scope`
//! on its owner's wait parker, which the task that brings the count to
//! zero unparks (a `join` on its latch: model 9 in `join.rs` covers that
//! path, since under loom every stolen join's owner parks). Under loom a
//! waiter parks as soon as one round found nothing, so every interleaving
//! of the park with the completion is explored: no lost wake-up (loom
//! reports a deadlock), and the task runs exactly once.
#![cfg(corepool_loom)]

use loom_tests::{model, pool, Runs};

/// A scope with one task on two workers: the body's own count and the
/// task's finish race; the owner parks until the count is zero.
#[test]
fn a_scope_waiter_parks_and_the_last_task_wakes_it() {
    model("wait_park_scope", || {
        let pool = pool(2, 1);
        let runs = Runs::new(1);
        let task = runs.task(0);
        pool.scope(move |s| {
            s.spawn(move |_| task());
        });
        runs.assert_once(0);
        drop(pool);
    });
}
