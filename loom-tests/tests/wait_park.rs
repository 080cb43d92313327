//! Model 13: the wait protocol's park and wake (`src/wait.rs`).
//!
//! A fork-join waiter that finds nothing of its own to run parks: a `scope`
//! on its own parker, which the task that brings the count to zero
//! unparks (a `join` on its latch: model 9 in `join.rs` covers that path,
//! since under loom every stolen join's owner parks). A `JoinHandle::join` on a worker runs the task itself if it has
//! not started (a claim racing the worker that pops it), and otherwise
//! blocks on the packet's condition variable. Under loom a waiter parks as
//! soon as one round found nothing, so every interleaving of the park with
//! the completion is explored: no lost wake-up (loom reports a deadlock),
//! every closure runs exactly once, and each result reaches its waiter.
#![cfg(loom)]

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

/// `JoinHandle::join` on a worker for a task it spawned: the joiner claims
/// it, or the other worker steals and runs it and the joiner blocks until
/// it finishes. Either way it runs once and the value arrives.
#[test]
fn a_handle_join_claims_or_waits_exactly_once() {
    model("wait_claim", || {
        let pool = pool(2, 1);
        let runs = Runs::new(1);
        let task = runs.task(0);
        let value = pool.install(move || {
            let handle = corepool::spawn(move || {
                task();
                7
            });
            handle.join().ok()
        });
        assert_eq!(value, Some(7));
        drop(pool);
        runs.assert_once(0);
    });
}
