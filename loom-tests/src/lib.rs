//! Loom models of corepool live in `tests/`; see docs/verification.md.
//!
//! This library holds the models' shared helpers. It is empty unless built
//! with `RUSTFLAGS="--cfg corepool_loom"`, so a plain `cargo test --workspace`
//! compiles nothing from here.

#![cfg(corepool_loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};

/// A one-shot gate: [`Latch::wait`] blocks until [`Latch::open`] was called.
///
/// Built on loom's `Mutex` and `Condvar`, so a waiter is not runnable until
/// the latch opens: a wake-up that never comes shows up as a loom deadlock,
/// not as an endless spin.
#[derive(Clone, Default)]
pub struct Latch {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl Latch {
    /// A closed latch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens the latch and wakes every waiter.
    pub fn open(&self) {
        let (open, cvar) = &*self.inner;
        *open.lock().unwrap() = true;
        cvar.notify_all();
    }

    /// Blocks until the latch is open.
    pub fn wait(&self) {
        let (open, cvar) = &*self.inner;
        let mut guard = open.lock().unwrap();
        while !*guard {
            guard = cvar.wait(guard).unwrap();
        }
    }
}

/// How many times each of a model's tasks ran.
///
/// Every closure made by [`Runs::task`] holds a clone of a loom `Arc`, so a
/// task that the pool loses (neither runs nor drops) is reported by loom's
/// leak check at the end of the execution.
#[derive(Clone)]
pub struct Runs {
    counts: Arc<Vec<AtomicUsize>>,
}

impl Runs {
    /// Counters for `n` tasks, all zero.
    pub fn new(n: usize) -> Self {
        Runs {
            counts: Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect()),
        }
    }

    /// A task that counts one run of task `i`.
    pub fn task(&self, i: usize) -> impl FnOnce() + Send + 'static {
        let runs = self.clone();
        move || runs.hit(i)
    }

    /// A task that counts one run of task `i`, then does `then`.
    pub fn task_then<F>(&self, i: usize, then: F) -> impl FnOnce() + Send + 'static
    where
        F: FnOnce() + Send + 'static,
    {
        let runs = self.clone();
        move || {
            runs.hit(i);
            then();
        }
    }

    /// Counts one run of task `i`.
    pub fn hit(&self, i: usize) {
        self.counts[i].fetch_add(1, Ordering::SeqCst);
    }

    /// How many times task `i` ran so far.
    pub fn count(&self, i: usize) -> usize {
        self.counts[i].load(Ordering::SeqCst)
    }

    /// Asserts that task `i` ran exactly once.
    #[track_caller]
    pub fn assert_once(&self, i: usize) {
        assert_eq!(self.count(i), 1, "task {i} must run exactly once");
    }

    /// Asserts that task `i` never ran.
    #[track_caller]
    pub fn assert_never(&self, i: usize) {
        assert_eq!(self.count(i), 0, "task {i} must never run");
    }
}

/// The pool every model uses: `workers` unpinned workers, `capacity` slots.
pub fn pool(workers: usize, capacity: usize) -> corepool::Pool {
    corepool::Pool::builder()
        .workers(workers)
        .queue_capacity(capacity)
        .pin_workers(false)
        .build()
        .expect("the pool starts")
}

/// Runs `f` under [`loom::model`] (bounded by `LOOM_MAX_PREEMPTIONS` and the
/// other `LOOM_*` variables) and prints how many executions loom explored.
pub fn model<F>(name: &str, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    static EXECUTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let start = std::time::Instant::now();
    let before = EXECUTIONS.load(std::sync::atomic::Ordering::Relaxed);
    loom::model(move || {
        EXECUTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    let executions = EXECUTIONS.load(std::sync::atomic::Ordering::Relaxed) - before;
    eprintln!(
        "loom model {name}: {executions} executions in {:.2?}",
        start.elapsed()
    );
}
