//! Regression tests for lifecycle defects: closing a pool from inside its
//! own tasks and callbacks, a pool kept in a `thread_local!`,
//! `shutdown_background`, panic payloads whose `Drop` panics, submissions
//! from `on_worker_stop`, autoscaling with a huge step, the `accepted`
//! counter after `shutdown_now`, and stacks too small to run a worker.
//!
//! Every body that could hang runs under the `within` watchdog. See
//! `docs/lifecycle.md` for the behaviour each test pins down.

mod lifecycle_support;

use std::panic::panic_any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use lifecycle_support::WATCHDOG;

/// A panic payload whose `Drop` panics: with a depth above zero, with
/// another `DropBomb` (one level less deep) as the new payload.
struct DropBomb(u32);

impl Drop for DropBomb {
    fn drop(&mut self) {
        if self.0 == 0 {
            panic!("DropBomb exploded while being dropped");
        }
        panic_any(DropBomb(self.0 - 1));
    }
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// Receives `n` messages, failing (not hanging) if the senders are gone.
fn recv_n<T>(rx: &mpsc::Receiver<T>, n: usize, what: &str) -> Vec<T> {
    (0..n)
        .map(|i| {
            rx.recv_timeout(WATCHDOG)
                .unwrap_or_else(|err| panic!("{what}: message {i} of {n} missing ({err:?})"))
        })
        .collect()
}

/// 5. Panic payloads whose `Drop` panics.
mod panic_payloads {
    use super::*;
    use crate::lifecycle_support::within;
    use corepool::Pool;
    use std::panic::panic_any;

    fn one_worker_pool() -> Pool {
        Pool::builder()
            .workers(1)
            .queue_capacity(64)
            .pin_workers(false)
            .build()
            .expect("build a pool")
    }

    /// Submits a task that must run after the bomb: the worker survived.
    fn assert_worker_survives(pool: &Pool, what: &str) {
        let (tx, rx) = mpsc::channel();
        pool.submit(move || {
            let _ = tx.send(());
        })
        .expect("the pool is running");
        recv_n(&rx, 1, what);
    }

    #[test]
    fn a_panic_payload_whose_drop_panics_does_not_kill_the_worker() {
        within("DropBomb payload of a submitted task", || {
            let pool = one_worker_pool();
            pool.submit(|| panic_any(DropBomb(0)))
                .expect("the pool is running");
            assert_worker_survives(&pool, "a task after a DropBomb");
            // A chain: each drop panics with another bomb; the last resort
            // (leaking the payload) keeps the worker alive.
            pool.submit(|| panic_any(DropBomb(5)))
                .expect("the pool is running");
            assert_worker_survives(&pool, "a task after a chain of DropBombs");
            let report = pool.shutdown();
            assert_eq!((report.executed, report.panicked), (4, 2));
        });
    }

    #[test]
    fn a_spawned_task_panicking_with_a_drop_bomb_does_not_kill_the_worker() {
        within("DropBomb payload of a spawned task", || {
            let pool = one_worker_pool();
            // Joined: the payload comes back to us, and dropping it is our
            // business (we leak it).
            let joined = pool.spawn(|| panic_any(DropBomb(0))).expect("running");
            let err = joined.join().expect_err("the task panicked");
            std::mem::forget(err);
            assert_worker_survives(&pool, "a task after a joined DropBomb");
            // Detached: whichever side drops the result last, the worker lives.
            for _ in 0..8 {
                drop(pool.spawn(|| panic_any(DropBomb(1))).expect("running"));
            }
            assert_worker_survives(&pool, "a task after detached DropBombs");
            let report = pool.shutdown();
            assert_eq!(report.executed, 11);
        });
    }

    #[test]
    fn a_panic_handler_that_repanics_with_a_drop_bomb_does_not_kill_the_worker() {
        within("panic handler re-panicking with a DropBomb", || {
            let handled = counter();
            let seen = handled.clone();
            let pool = Pool::builder()
                .workers(1)
                .pin_workers(false)
                .panic_handler(move |_payload| {
                    seen.fetch_add(1, Ordering::SeqCst);
                    panic_any(DropBomb(1));
                })
                .build()
                .expect("build a pool");
            pool.submit(|| panic!("boom")).expect("running");
            assert_worker_survives(&pool, "a task after the handler's DropBomb");
            pool.submit(|| panic!("boom again")).expect("running");
            assert_worker_survives(&pool, "a task after the second DropBomb");
            assert_eq!(handled.load(Ordering::SeqCst), 2);
            let report = pool.shutdown();
            assert_eq!((report.executed, report.panicked), (4, 2));
        });
    }

    #[test]
    fn worker_hooks_panicking_with_a_drop_bomb_do_not_kill_the_worker() {
        within("hooks panicking with a DropBomb", || {
            let stopped = counter();
            let seen = stopped.clone();
            let pool = Pool::builder()
                .workers(2)
                .pin_workers(false)
                .on_worker_start(|_| panic_any(DropBomb(0)))
                .on_worker_stop(move |_| {
                    seen.fetch_add(1, Ordering::SeqCst);
                    panic_any(DropBomb(0));
                })
                .build()
                .expect("build a pool");
            assert_worker_survives(&pool, "a task after the start hooks' DropBombs");
            let handle = pool.handle();
            drop(pool);
            assert_eq!(stopped.load(Ordering::SeqCst), 2, "both stop hooks ran");
            assert_eq!(handle.metrics().executed, 1);
        });
    }
}
