//! Model 4: two blocked producers and a worker.
//!
//! One worker, capacity 1. Task G holds the worker until the main thread
//! opens a gate, and task A is admitted behind it, so the pool is full. Two
//! producer threads each `submit` one task and block; the main thread opens
//! the gate at any point of that. Every freed slot must reach a blocked
//! producer (one wake per slot, no thundering herd, no lost hand-off), so
//! nobody stays stuck (a stuck producer is a loom deadlock), every task runs
//! exactly once, and the bound holds: a producer whose `submit` returned
//! reads `queued() <= 1`. That last check is what catches an acquire that
//! checks and increments in two steps (`split_acquire`): both producers see
//! the one free slot and both take it.
#![cfg(corepool_loom)]

use loom_tests::{model, pool, Latch, Runs};

const G: usize = 0;
const A: usize = 1;
const P1: usize = 2;
const P2: usize = 3;

#[test]
fn two_blocked_producers_both_get_through() {
    model("blocked_producers", || {
        let pool = pool(1, 1);
        let runs = Runs::new(4);
        let gate = Latch::new();
        let gate_g = gate.clone();
        pool.submit(runs.task_then(G, move || gate_g.wait()))
            .expect("the pool is running");
        // Admitted once G started; A then waits behind the gated G.
        pool.submit(runs.task(A)).expect("the pool is running");

        let producers = [P1, P2].map(|i| {
            let handle = pool.handle();
            let task = runs.task(i);
            loom::thread::spawn(move || {
                handle.submit(task).expect("the pool is running");
                let queued = handle.queued();
                assert!(queued <= 1, "{queued} tasks admitted with capacity 1");
            })
        });
        gate.open();
        for producer in producers {
            producer.join().expect("a producer failed");
        }
        drop(pool);
        for task in [G, A, P1, P2] {
            runs.assert_once(task);
        }
    });
}
