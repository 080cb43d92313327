//! Helpers shared by the integration tests: a gate to hold workers, two
//! watchdogs that turn a hang into a failure (`Watchdog` aborts the process,
//! for a hang that cannot be unwound; `within` fails the test), bounded
//! condition polling, and a few Linux `/proc` readers. Each test binary
//! uses a subset of them.
//!
//! Nothing here sleeps to synchronize: waits are on channels, barriers,
//! gates, or a polled condition with a generous deadline that only a hang
//! can reach.

#![allow(dead_code)]

use std::collections::HashMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Barrier};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use corepool::Pool;

mod gate;
// Each test binary uses a subset of these.
#[allow(unused_imports)]
pub use gate::{hold_workers, Gate, Watchdog};

/// How long a test waits for something that must happen (a task to run, a
/// blocked call to return) before failing. Generous: it only runs out on a
/// hang, never on a slow machine doing real work. No test asserts anything
/// about timing.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// How long a whole test may run before the [`Watchdog`] aborts the process.
pub const TEST_LIMIT: Duration = Duration::from_secs(180);

impl Watchdog {
    pub fn new(what: &'static str) -> Watchdog {
        Watchdog::with_limit(what, TEST_LIMIT)
    }
}

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
        .name(format!("within: {what}"))
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

/// Polls `condition` (yielding between looks, never sleeping) until it
/// holds; fails the test naming `what` if it does not within [`WATCHDOG`]
/// (a hang, not a timing assertion).
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "waited {WATCHDOG:?} for {what}: it hangs"
        );
        thread::yield_now();
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

/// Receives `count` messages, each within [`WATCHDOG`]; fails the test
/// (via [`fail_stuck`]) when one does not come.
pub fn recv_all<T>(pool: Pool, rx: &Receiver<T>, count: usize, what: &str) -> (Pool, Vec<T>) {
    let mut got = Vec::with_capacity(count);
    for i in 0..count {
        match rx.recv_timeout(WATCHDOG) {
            Ok(value) => got.push(value),
            Err(err) => fail_stuck(
                pool,
                &format!("{what}: only {i} of {count} arrived within {WATCHDOG:?} ({err:?})"),
            ),
        }
    }
    (pool, got)
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

/// Runs one task on every worker at once (a barrier sized to the worker
/// count, so the tasks must be on distinct workers) and returns each
/// worker's thread name and id. Fails with a panic, not a hang, if a worker
/// is missing: waits at most `WATCHDOG` for the answers.
pub fn visit_every_worker(pool: &corepool::Pool) -> HashMap<String, ThreadId> {
    let workers = pool.workers();
    let together = Arc::new(Barrier::new(workers));
    let (tx, rx) = mpsc::channel();
    for _ in 0..workers {
        let together = together.clone();
        let tx = tx.clone();
        pool.submit(move || {
            together.wait();
            let me = thread::current();
            tx.send((me.name().unwrap_or("<unnamed>").to_owned(), me.id()))
                .unwrap();
        })
        .expect("the pool is running");
    }
    drop(tx);
    let mut seen = HashMap::new();
    for _ in 0..workers {
        let (name, id) = rx
            .recv_timeout(WATCHDOG)
            .expect("a task on every worker at once: some worker is missing");
        assert!(
            seen.insert(name.clone(), id).is_none(),
            "two tasks of one barrier round ran on the same worker {name}"
        );
    }
    seen
}

/// Parses a Linux CPU list such as `0-3,8,10-11`.
pub fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((lo, hi)) => {
                let lo: usize = lo.parse().expect("cpu list");
                let hi: usize = hi.parse().expect("cpu list");
                cpus.extend(lo..=hi);
            }
            None => cpus.push(part.parse().expect("cpu list")),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// The `Cpus_allowed_list` of a `/proc/.../status` file.
pub fn cpus_allowed(status_path: &str) -> Vec<usize> {
    let status = std::fs::read_to_string(status_path).expect("read a /proc status file");
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list in /proc status");
    parse_cpu_list(line)
}

/// Names (`comm`) of this process's threads that start with `prefix`.
pub fn threads_named(prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return names;
    };
    for task in tasks.flatten() {
        // A thread may exit between listing and reading: skip it.
        if let Ok(comm) = std::fs::read_to_string(task.path().join("comm")) {
            let comm = comm.trim_end().to_owned();
            if comm.starts_with(prefix) {
                names.push(comm);
            }
        }
    }
    names
}

/// Waits until no thread of this process is named with `prefix`. A joined
/// thread can linger in `/proc` for a moment while the kernel finishes its
/// exit, so this polls; it fails (with the names) only if such threads are
/// still there after `WATCHDOG`, which means they are really alive.
pub fn assert_no_threads_named(prefix: &str) {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        let left = threads_named(prefix);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "threads still running: {left:?}");
        thread::yield_now();
    }
}

/// The number of threads in this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .count()
}

/// Waits until this process has at most `expected` threads. Like
/// [`assert_no_threads_named`], it polls because a joined thread can linger
/// in `/proc` for a moment, and fails only after `WATCHDOG`. Only
/// meaningful in a test binary with a single test, where no other test's
/// threads come and go.
pub fn assert_thread_count_returns_to(expected: usize) {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        let now = thread_count();
        if now <= expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} threads still running, expected {expected}"
        );
        thread::yield_now();
    }
}

/// Sets its flag when dropped: shows a closure was dropped (run or not).
pub struct DropFlag(pub Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// An unpinned pool of `workers` with room for `capacity` queued tasks.
pub fn small_pool(workers: usize, capacity: usize) -> Pool {
    Pool::builder()
        .workers(workers)
        .queue_capacity(capacity)
        .pin_workers(false)
        .build()
        .expect("build a pool")
}

/// An unpinned pool of `workers` with the default capacity.
pub fn unpinned_pool(workers: usize) -> Pool {
    Pool::builder()
        .workers(workers)
        .pin_workers(false)
        .build()
        .expect("build a pool")
}

/// Fibonacci by plain recursion: the sequential answer fork-join tests
/// compare with.
pub fn fib_seq(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib_seq(n - 1) + fib_seq(n - 2)
    }
}
