//! Model 8: slots held back by a worker, and taken over by producers.
//!
//! One worker, capacity 2, so that under loom the worker holds back the
//! slots of up to 2 started tasks before returning them (see
//! `Admission::start`). G holds the worker on a gate once started; its
//! slot is held back. A is admitted behind it: the word says 2 (full) but
//! only A waits, so `try_submit(P1)` must succeed by taking over G's
//! held-back slot, and the bound must read exactly 2. Then the pool is
//! full for real: a producer's blocking `submit(P2)` races the gate opening,
//! the worker returning held slots and starting A and P1; it must get
//! through (a stuck producer is a loom deadlock) with at most 2 admitted,
//! and every task runs exactly once.
#![cfg(corepool_loom)]

use loom_tests::{model, pool, Latch, Runs};

const G: usize = 0;
const A: usize = 1;
const P1: usize = 2;
const P2: usize = 3;

#[test]
fn held_back_slots_keep_the_bound_exact() {
    model("held_slots", || {
        let pool = pool(1, 2);
        let runs = Runs::new(4);
        let (started, gate) = (Latch::new(), Latch::new());
        let (started_g, gate_g) = (started.clone(), gate.clone());
        pool.submit(runs.task_then(G, move || {
            started_g.open();
            gate_g.wait();
        }))
        .expect("the pool is running");
        started.wait();
        pool.submit(runs.task(A)).expect("the pool is running");
        assert!(
            pool.try_submit(runs.task(P1)).is_ok(),
            "G has started: one of the two slots is free"
        );
        assert_eq!(pool.queued(), 2);

        let handle = pool.handle();
        let task = runs.task(P2);
        let producer = loom::thread::spawn(move || {
            handle.submit(task).expect("the pool is running");
            let queued = handle.queued();
            assert!(queued <= 2, "{queued} tasks admitted with capacity 2");
        });
        gate.open();
        producer.join().expect("the producer failed");
        drop(pool);
        for task in [G, A, P1, P2] {
            runs.assert_once(task);
        }
    });
}
