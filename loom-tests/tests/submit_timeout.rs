//! Model 6: `submit_timeout`, with the timeout firing at every point.
//!
//! Under loom, `Parker::park_until` yields and then reports whether a token
//! was there: the timeout fires right after a scheduling point, and loom
//! places that point everywhere in the other threads' execution.
//!
//! One worker, capacity 1. Task G holds the worker until the main thread
//! opens a gate and task A is admitted behind it, so the pool is full. A
//! producer thread calls `submit_timeout(T)` and blocks; the main thread
//! opens the gate and then blocks in `submit(B)` itself, so the two compete
//! for the slots that A and then the winner free. The producer may time out
//! at any point, including after a worker chose it for a freed slot: it must
//! then pass that wake-up on, or the main thread stays blocked (a loom
//! deadlock). `Ok` implies T ran exactly once; `Timeout` implies T never ran
//! and came back (we run it to prove it is the same closure).
#![cfg(corepool_loom)]

use std::time::Duration;

use loom_tests::{model, pool, Latch, Runs};

const G: usize = 0;
const A: usize = 1;
const B: usize = 2;
const T: usize = 3;

#[test]
fn timeout_at_any_point_neither_loses_nor_duplicates() {
    model("submit_timeout", || {
        let pool = pool(1, 1);
        let runs = Runs::new(4);
        let gate = Latch::new();
        let gate_g = gate.clone();
        pool.submit(runs.task_then(G, move || gate_g.wait()))
            .expect("the pool is running");
        pool.submit(runs.task(A)).expect("the pool is running");

        let handle = pool.handle();
        let task = runs.task(T);
        let producer = loom::thread::spawn(move || {
            match handle.submit_timeout(task, Duration::from_secs(1)) {
                Ok(()) => None,
                Err(err) if err.is_timeout() => Some(err.into_inner()),
                Err(_) => panic!("the pool is running"),
            }
        });
        gate.open();
        pool.submit(runs.task(B)).expect("the pool is running");
        let came_back = producer.join().expect("the producer does not panic");
        drop(pool);
        for task in [G, A, B] {
            runs.assert_once(task);
        }
        match came_back {
            None => runs.assert_once(T),
            Some(task) => {
                runs.assert_never(T);
                task();
                runs.assert_once(T);
            }
        }
    });
}
