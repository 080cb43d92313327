//! Helpers shared by the `observe_*` integration tests (metrics, resizing,
//! autoscaling, fill alerts): a gate to hold workers, a watchdog that turns
//! a hang into a failure, bounded condition polling, and a way to fail a
//! test whose pool is stuck without hanging in the pool's drop.
//!
//! Nothing here sleeps to synchronize: waits are on channels, barriers,
//! gates, or a polled condition with a generous deadline that only a hang
//! can reach.

#![allow(dead_code)]

use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use corepool::Pool;

#[path = "../shared/gate.rs"]
mod gate;
// Each test binary uses a subset of these.
#[allow(unused_imports)]
pub use gate::{hold_workers, Gate, Watchdog};

/// How long a test may wait for something that must happen. Generous: it
/// is reached only by a hang, never by a slow machine doing real work.
pub const PATIENCE: Duration = Duration::from_secs(60);

impl Watchdog {
    pub fn new(what: &'static str) -> Watchdog {
        Watchdog::with_limit(what, PATIENCE * 3)
    }
}

/// Fails the test with `what` and the pool's metrics, leaking the pool
/// (its drop would join workers that may never finish) so the failure is
/// reported instead of hanging.
pub fn fail_stuck(pool: Pool, what: &str) -> ! {
    let metrics = pool.metrics();
    std::mem::forget(pool);
    panic!("{what}; pool metrics: {metrics:#?}");
}

/// Receives `count` messages, each within [`PATIENCE`]; fails the test
/// (via [`fail_stuck`]) when one does not come.
pub fn recv_all<T>(pool: Pool, rx: &Receiver<T>, count: usize, what: &str) -> (Pool, Vec<T>) {
    let mut got = Vec::with_capacity(count);
    for i in 0..count {
        match rx.recv_timeout(PATIENCE) {
            Ok(value) => got.push(value),
            Err(err) => fail_stuck(
                pool,
                &format!("{what}: only {i} of {count} arrived within {PATIENCE:?} ({err:?})"),
            ),
        }
    }
    (pool, got)
}

/// Polls `condition` (yielding between looks, never sleeping) until it
/// holds; panics with `what` if it does not within [`PATIENCE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {PATIENCE:?}"
        );
        thread::yield_now();
    }
}

/// Runs one task on each of `count` workers at once (a barrier sized to
/// `count`, so the tasks must be on distinct threads) and returns the
/// thread names, sorted. Fails (without hanging) if fewer than `count`
/// workers take part.
pub fn names_of_workers_running_together(pool: Pool, count: usize) -> (Pool, Vec<String>) {
    let together = Arc::new(Barrier::new(count));
    let (tx, rx) = mpsc::channel();
    for _ in 0..count {
        let together = together.clone();
        let tx = tx.clone();
        pool.submit(move || {
            together.wait();
            let name = thread::current().name().unwrap_or("<unnamed>").to_owned();
            tx.send(name).unwrap();
        })
        .expect("the pool is running");
    }
    let (pool, mut names) = recv_all(
        pool,
        &rx,
        count,
        &format!("a barrier of {count} tasks: some worker is missing"),
    );
    names.sort();
    (pool, names)
}
