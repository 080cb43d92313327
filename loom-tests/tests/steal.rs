//! Model 5: two workers, two tasks, stealing.
//!
//! Task T1, submitted from outside, spawns T2 from inside the pool through a
//! captured `Handle` (so T2 goes onto the running worker's own deque, not
//! through the bound), and then waits for T2 to finish. The worker running
//! T1 is stuck in it, so T2 can only run if the *other* worker steals it:
//! the local push must wake the other worker, or that worker must find T2
//! when it re-checks before parking. The main thread waits for T1 to finish
//! before it shuts the pool down, so shutdown's wake-all cannot rescue a
//! lost wake-up. Both tasks must run exactly once.
#![cfg(corepool_loom)]

use loom_tests::{model, pool, Latch, Runs};

#[test]
fn a_spawned_task_is_stolen_by_the_other_worker() {
    model("steal", || {
        let pool = pool(2, 1);
        let runs = Runs::new(2);
        let t1_done = Latch::new();
        let handle = pool.handle();
        let (t1_signal, spawner) = (t1_done.clone(), runs.clone());
        pool.submit(runs.task_then(0, move || {
            let t2_done = Latch::new();
            let t2_signal = t2_done.clone();
            handle
                .submit(spawner.task_then(1, move || t2_signal.open()))
                .expect("a submit from inside the pool never fails");
            t2_done.wait();
            t1_signal.open();
        }))
        .expect("the pool is running");
        t1_done.wait();
        drop(pool);
        runs.assert_once(0);
        runs.assert_once(1);
    });
}
