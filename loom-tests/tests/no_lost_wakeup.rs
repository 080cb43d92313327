//! Model 2: no lost wake-up.
//!
//! One worker, which finds nothing on its own, searches and then goes
//! through the park protocol; the main thread submits a task at any point of
//! that. The main thread then waits for the task to *complete* before it
//! starts shutdown, so shutdown's wake-all cannot rescue a worker that slept
//! through the task's notify: if the wake-up is lost, the worker parks, the
//! main thread waits for ever, and loom reports the deadlock.
#![cfg(corepool_loom)]

use loom_tests::{model, pool, Latch, Runs};

#[test]
fn task_submitted_while_worker_parks_runs_before_shutdown() {
    model("no_lost_wakeup", || {
        let pool = pool(1, 1);
        let runs = Runs::new(1);
        let done = Latch::new();
        let signal = done.clone();
        pool.submit(runs.task_then(0, move || signal.open()))
            .expect("the pool is running");
        // Completion first, with no help from shutdown's wake-all.
        done.wait();
        runs.assert_once(0);
        drop(pool);
        runs.assert_once(0);
    });
}
