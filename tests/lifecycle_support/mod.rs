//! Helpers shared by the `lifecycle_*` integration tests: a gate to hold a
//! worker, a watchdog that turns a hang into a test failure, and a way to
//! wait until a one-worker pool has finished everything queued before.
//! Each test binary uses a subset of them.

#![allow(dead_code)]

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[path = "../shared/gate.rs"]
mod gate;
pub use gate::Gate;

/// How long a piece of work run under [`within`] may take before the test
/// fails as hung. Generous: it only fires on a hang, never on a slow machine
/// doing real work. No test asserts anything about timing.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `f` on a fresh thread and returns its result, re-raising its panic.
/// If `f` does not finish within [`WATCHDOG`], the test fails with a panic
/// naming `what` (the hung thread is left behind; the process ends with
/// the test binary).
pub fn within<T, F>(what: &str, f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (done_tx, done_rx) = mpsc::channel();
    thread::Builder::new()
        .name(format!("lifecycle: {what}"))
        .spawn(move || {
            let _ = done_tx.send(catch_unwind(AssertUnwindSafe(f)));
        })
        .expect("spawn the watched thread");
    match done_rx.recv_timeout(WATCHDOG) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => resume_unwind(payload),
        Err(RecvTimeoutError::Timeout) => {
            panic!("`{what}` did not finish within {WATCHDOG:?}: it hangs")
        }
        Err(RecvTimeoutError::Disconnected) => unreachable!("the watched thread always sends"),
    }
}

/// Holds the worker that runs it: submits a task that reports (through a
/// channel) that it started, then waits on `gate`. Returns once the task is
/// running, so on return the worker is busy and the task no longer counts
/// against the bound.
pub fn hold_one_worker(pool: &corepool::Pool, gate: &Arc<Gate>) {
    let (started_tx, started_rx) = mpsc::channel();
    let gate = gate.clone();
    pool.submit(move || {
        started_tx.send(()).expect("the test is waiting");
        gate.wait();
    })
    .expect("the pool is running");
    started_rx
        .recv_timeout(WATCHDOG)
        .expect("the holding task started");
}

/// Waits until `done()` holds, yielding meanwhile; fails the test if it
/// still does not after [`WATCHDOG`] (a hang, not a timing assertion).
pub fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "waited {WATCHDOG:?} for {what}: it hangs"
        );
        thread::yield_now();
    }
}
