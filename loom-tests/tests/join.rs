//! Model 9: `join` on a pool of two workers (9b: a join nested in another).
//!
//! `Pool::install` runs a `join` of A and B on a worker: B is pushed onto
//! that worker's deque (without the SeqCst fence other pushes pay, see
//! `Sleep::notify_join_work`), A runs, and then B is either popped back and
//! run inline, or stolen by the other worker, in which case the joining
//! worker helps until B's latch is set. Whatever the interleaving: no
//! deadlock (the joining worker never waits on a wake-up for B), both
//! closures ran exactly once, `join` returns both results, and B's result
//! is read only after B finished.
#![cfg(corepool_loom)]

use loom_tests::{model, pool, Runs};

/// `join(A, B)`, where A counts run 0 and B run 1.
fn join_a_b(a_runs: Runs, b_runs: Runs) -> (&'static str, &'static str) {
    corepool::join(
        move || {
            a_runs.hit(0);
            "a"
        },
        move || {
            b_runs.hit(1);
            "b"
        },
    )
}

#[test]
fn join_runs_both_halves_once_stolen_or_not() {
    model("join", || {
        let pool = pool(2, 1);
        let runs = Runs::new(2);
        let (a_runs, b_runs) = (runs.clone(), runs.clone());
        let (a, b) = pool.install(move || join_a_b(a_runs, b_runs));
        assert_eq!((a, b), ("a", "b"));
        drop(pool);
        runs.assert_once(0);
        runs.assert_once(1);
    });
}

/// Model 9b: a join inside a join's first closure. The outer join finds
/// the worker's deque empty and offers `C` at once, as in model 9; the
/// inner one keeps its `B` private and runs it inline unless the deque is
/// empty when it opens or closes (the outer `C` already stolen), and then
/// offers it, to be popped back or stolen in turn. Whatever the
/// interleaving: no deadlock, every closure ran exactly once, and the
/// results come back in place.
#[test]
fn a_nested_join_offered_lazily_runs_everything_once() {
    model("join_lazy", || {
        let pool = pool(2, 1);
        let runs = Runs::new(3);
        let (a_runs, b_runs, c_runs) = (runs.clone(), runs.clone(), runs.clone());
        let ((a, b), c) = pool.install(move || {
            corepool::join(
                move || join_a_b(a_runs, b_runs),
                move || {
                    c_runs.hit(2);
                    "c"
                },
            )
        });
        assert_eq!((a, b, c), ("a", "b", "c"));
        drop(pool);
        runs.assert_once(0);
        runs.assert_once(1);
        runs.assert_once(2);
    });
}
