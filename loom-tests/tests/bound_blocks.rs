//! Model 1: capacity 1, a second `submit` that must block, then drain.
//!
//! One worker. Task G holds the worker until the main thread opens a gate;
//! task A is then admitted (the bound counts accepted-and-not-started tasks,
//! and G has started) and waits behind G. So the pool is full: a
//! `try_submit` of C must be refused with `Full`, hand C back, and C must
//! never run. The main thread opens the gate and submits B, which blocks
//! while A waits; loom explores the worker finishing G and starting A at
//! every point of B's slow path (register, re-try, park). `submit(B)` must
//! return only after G finished (A's slot freed), and dropping the pool must
//! run G, A and B exactly once.
#![cfg(corepool_loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom_tests::{model, pool, Latch, Runs};

const G: usize = 0;
const A: usize = 1;
const B: usize = 2;
const C: usize = 3;

#[test]
fn second_submit_blocks_until_a_slot_frees_then_all_drain() {
    model("bound_blocks", || {
        let pool = pool(1, 1);
        let runs = Runs::new(4);
        let gate = Latch::new();
        let g_done = Arc::new(AtomicBool::new(false));

        let (gate_g, g_done_g) = (gate.clone(), g_done.clone());
        pool.submit(runs.task_then(G, move || {
            gate_g.wait();
            g_done_g.store(true, Ordering::Relaxed);
        }))
        .expect("the pool is running");
        // Blocks until the worker has started G.
        pool.submit(runs.task(A)).expect("the pool is running");

        // G runs (gated), A is admitted and not started: full.
        match pool.try_submit(runs.task(C)) {
            Err(err) if err.is_full() => drop(err.into_inner()),
            Err(other) => panic!("expected Full, got {other:?}"),
            Ok(()) => panic!("a full pool accepted a task"),
        }

        gate.open();
        pool.submit(runs.task(B)).expect("the pool is running");
        // B took the slot A gave back when it started, after G returned.
        assert!(
            g_done.load(Ordering::Relaxed),
            "submit returned while the pool was full"
        );

        drop(pool);
        for task in [G, A, B] {
            runs.assert_once(task);
        }
        runs.assert_never(C);
    });
}
