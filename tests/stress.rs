//! Stress tests against the real crossbeam deques (the loom models in
//! `loom-tests/` replace them with a stand-in; see docs/verification.md).
//!
//! Many rounds of a mixed workload: producers that `submit`, `try_submit`
//! and `submit_timeout`; tasks that spawn tasks from inside the pool through
//! a captured `Handle`; tasks that panic; and the pool shut down (dropped, or
//! `Pool::shutdown`) while the producers are still pushing. The accounting
//! is exact: every task is accepted or refused exactly once; an accepted
//! task ran exactly once; a refused task never ran and its closure came back
//! to the producer; every closure was dropped exactly once; every panic
//! reached the panic handler.
//!
//! Meant for release builds with many rounds
//! (`COREPOOL_STRESS_ROUNDS=2000 cargo test --release --test stress`); the
//! default is small so that `cargo test --workspace` stays quick in debug.
//! No sleeps synchronize anything and nothing is timed: a watchdog thread
//! aborts the process if no task runs and no call returns for
//! `COREPOOL_STRESS_WATCHDOG_SECS` (default 60) seconds, so a lost wake-up
//! or a stuck producer fails loudly instead of hanging the suite.

mod support;

use std::panic;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

use corepool::{Handle, Pool};
use support::Gate;

/// Rounds per test when `COREPOOL_STRESS_ROUNDS` is not set.
const DEFAULT_ROUNDS: usize = 100;
/// Operations per producer per round.
const OPS_PER_PRODUCER: usize = 300;
/// At most this many tasks are created per producer operation (a task, up
/// to 3 children, up to 2 grandchildren each).
const TASKS_PER_OP: usize = 1 + 3 + 3 * 2;
/// The payload of the deliberate panics; the panic hook stays quiet on it.
const DELIBERATE: &str = "corepool stress: deliberate panic";

fn rounds() -> usize {
    std::env::var("COREPOOL_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS)
}

// ---------------------------------------------------------------------------
// Watchdog

/// Bumped by every task that runs and every submission call that returns.
static PROGRESS: AtomicU64 = AtomicU64::new(0);

fn progress() {
    PROGRESS.fetch_add(1, Ordering::Relaxed);
}

/// Aborts the process if `PROGRESS` stands still for too long while alive.
struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    fn new(what: &'static str, seed: u64) -> Self {
        let limit = Duration::from_secs(
            std::env::var("COREPOOL_STRESS_WATCHDOG_SECS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(60),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let mut seen = PROGRESS.load(Ordering::Relaxed);
            let mut since = Instant::now();
            while !stopped.load(Ordering::Relaxed) {
                // Polling, not synchronization: the watchdog only measures.
                thread::park_timeout(Duration::from_millis(100));
                let now = PROGRESS.load(Ordering::Relaxed);
                if now != seen {
                    seen = now;
                    since = Instant::now();
                } else if since.elapsed() >= limit {
                    eprintln!(
                        "watchdog: {what} (seed {seed:#x}) made no progress for {limit:?}: \
                         a blocking call is stuck; aborting"
                    );
                    std::process::abort();
                }
            }
        });
        Watchdog {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Keeps the deliberate panics out of the test output; any other panic is
/// reported by the default hook.
fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&DELIBERATE) {
                default(info);
            }
        }));
    });
}

// ---------------------------------------------------------------------------
// Accounting

const PENDING: u8 = 0;
const ACCEPTED: u8 = 1;
const REFUSED: u8 = 2;

/// What happened to every task of one round, by task id.
struct Ledger {
    next: AtomicUsize,
    outcome: Vec<AtomicU8>,
    runs: Vec<AtomicU8>,
    drops: Vec<AtomicU8>,
    panicked: Vec<AtomicBool>,
    /// Calls of the pool's panic handler.
    handled_panics: AtomicUsize,
}

impl Ledger {
    fn new(capacity: usize) -> Arc<Self> {
        let zeros = || (0..capacity).map(|_| AtomicU8::new(0)).collect();
        Arc::new(Ledger {
            next: AtomicUsize::new(0),
            outcome: zeros(),
            runs: zeros(),
            drops: zeros(),
            panicked: (0..capacity).map(|_| AtomicBool::new(false)).collect(),
            handled_panics: AtomicUsize::new(0),
        })
    }

    fn record(&self, id: usize, outcome: u8) {
        let before = self.outcome[id].swap(outcome, Ordering::SeqCst);
        assert_eq!(before, PENDING, "task {id} got two outcomes");
    }

    /// Checks the round once the pool is gone and every producer returned.
    fn check(&self, seed: u64) {
        let created = self.next.load(Ordering::SeqCst);
        let mut panics = 0;
        for id in 0..created {
            let outcome = self.outcome[id].load(Ordering::SeqCst);
            let runs = self.runs[id].load(Ordering::SeqCst);
            let drops = self.drops[id].load(Ordering::SeqCst);
            match outcome {
                ACCEPTED => assert_eq!(
                    runs, 1,
                    "seed {seed:#x}: accepted task {id} ran {runs} times"
                ),
                REFUSED => assert_eq!(runs, 0, "seed {seed:#x}: refused task {id} ran"),
                _ => panic!("seed {seed:#x}: task {id} was neither accepted nor refused"),
            }
            assert_eq!(drops, 1, "seed {seed:#x}: task {id} dropped {drops} times");
            if self.panicked[id].load(Ordering::SeqCst) {
                panics += 1;
            }
        }
        assert_eq!(
            self.handled_panics.load(Ordering::SeqCst),
            panics,
            "seed {seed:#x}: every panic reaches the handler"
        );
    }
}

/// Owned by a task's closure: counts the closure's drop, wherever it happens
/// (after running, while unwinding, or back in the producer's hands).
struct Token {
    id: usize,
    ledger: Arc<Ledger>,
}

impl Drop for Token {
    fn drop(&mut self) {
        self.ledger.drops[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

/// A small deterministic generator (xorshift64*), so a failing round can be
/// replayed from its seed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a task does when it runs, besides counting its run.
#[derive(Clone, Copy)]
enum Body {
    Plain,
    Panic,
    /// Submits `n` children from inside the pool; `depth` more levels below.
    Spawn {
        n: u8,
        depth: u8,
    },
}

/// A task with a fresh id. `handle` is captured for the spawning bodies.
fn make_task(
    ledger: &Arc<Ledger>,
    handle: &Handle,
    body: Body,
    rng: &mut Rng,
) -> (usize, impl FnOnce() + Send + 'static) {
    let id = ledger.next.fetch_add(1, Ordering::SeqCst);
    assert!(id < ledger.runs.len(), "the ledger is too small");
    let token = Token {
        id,
        ledger: ledger.clone(),
    };
    let handle = handle.clone();
    let mut rng = Rng::new(rng.next());
    let task = move || {
        let token = token;
        let ledger = &token.ledger;
        ledger.runs[token.id].fetch_add(1, Ordering::SeqCst);
        progress();
        match body {
            Body::Plain => {}
            Body::Panic => {
                ledger.panicked[token.id].store(true, Ordering::SeqCst);
                panic::panic_any(DELIBERATE);
            }
            Body::Spawn { n, depth } => {
                for _ in 0..n {
                    let child_body = if depth > 0 && rng.below(2) == 0 {
                        Body::Spawn {
                            n: 2,
                            depth: depth - 1,
                        }
                    } else if rng.below(8) == 0 {
                        Body::Panic
                    } else {
                        Body::Plain
                    };
                    let (child, f) = make_task(ledger, &handle, child_body, &mut rng);
                    // From inside the pool: straight onto this worker's deque,
                    // whichever entry point is used.
                    let outcome = match rng.below(3) {
                        0 => handle.submit(f).map_err(|e| drop(e.into_inner())),
                        1 => handle.try_submit(f).map_err(|e| drop(e.into_inner())),
                        _ => handle
                            .submit_timeout(f, Duration::ZERO)
                            .map_err(|e| drop(e.into_inner())),
                    };
                    ledger.record(child, if outcome.is_ok() { ACCEPTED } else { REFUSED });
                }
            }
        }
    };
    (id, task)
}

/// A closure handed back by a refusal, and whether the pool said it is
/// shutting down.
type Refusal = (Box<dyn FnOnce() + Send>, bool);

/// One producer: `ops` submissions of random kinds through `handle`. Stops
/// early once the pool has refused it a few times for shutting down.
fn produce(handle: Handle, ledger: Arc<Ledger>, ops: usize, mut rng: Rng) {
    let mut shutdown_refusals = 0;
    for _ in 0..ops {
        let body = match rng.below(10) {
            0 => Body::Panic,
            1 | 2 => Body::Spawn {
                n: 1 + rng.below(3) as u8,
                depth: 1,
            },
            _ => Body::Plain,
        };
        let (id, task) = make_task(&ledger, &handle, body, &mut rng);
        let result: Result<(), Refusal> = match rng.below(4) {
            0 => handle
                .submit(task)
                .map_err(|e| (Box::new(e.into_inner()) as Box<dyn FnOnce() + Send>, true)),
            1 => handle.try_submit(task).map_err(|e| {
                let shutdown = e.is_shutdown();
                (
                    Box::new(e.into_inner()) as Box<dyn FnOnce() + Send>,
                    shutdown,
                )
            }),
            2 => {
                let timeout = Duration::from_micros(rng.below(200));
                handle.submit_timeout(task, timeout).map_err(|e| {
                    let shutdown = e.is_shutdown();
                    (
                        Box::new(e.into_inner()) as Box<dyn FnOnce() + Send>,
                        shutdown,
                    )
                })
            }
            _ => handle.submit_timeout(task, Duration::ZERO).map_err(|e| {
                let shutdown = e.is_shutdown();
                (
                    Box::new(e.into_inner()) as Box<dyn FnOnce() + Send>,
                    shutdown,
                )
            }),
        };
        progress();
        match result {
            Ok(()) => ledger.record(id, ACCEPTED),
            Err((closure, shutdown)) => {
                // Refused: it has not run, and it is ours again.
                assert_eq!(
                    ledger.runs[id].load(Ordering::SeqCst),
                    0,
                    "refused task {id} ran"
                );
                ledger.record(id, REFUSED);
                drop(closure);
                if shutdown {
                    shutdown_refusals += 1;
                    if shutdown_refusals >= 3 {
                        return;
                    }
                }
            }
        }
    }
}

/// A pool whose panic handler counts into `ledger`.
fn build(workers: usize, capacity: usize, pin: bool, ledger: &Arc<Ledger>) -> Pool {
    let panics = ledger.clone();
    Pool::builder()
        .workers(workers)
        .queue_capacity(capacity)
        .pin_workers(pin)
        .panic_handler(move |_| {
            panics.handled_panics.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .expect("the pool starts")
}

/// One round: a pool of random shape, `producers` producer threads, and the
/// main thread shutting the pool down after a random share of its own work.
fn mixed_round(seed: u64) {
    let mut rng = Rng::new(seed);
    let workers = 1 + rng.below(4) as usize;
    let capacity = [1, 2, 4, 16][rng.below(4) as usize];
    let producers = 2 + rng.below(2) as usize;
    let main_ops = rng.below(OPS_PER_PRODUCER as u64) as usize;
    let ledger = Ledger::new((producers * OPS_PER_PRODUCER + main_ops) * TASKS_PER_OP);

    let pool = build(workers, capacity, rng.below(2) == 0, &ledger);

    let threads: Vec<_> = (0..producers)
        .map(|_| {
            let (handle, ledger, rng) = (pool.handle(), ledger.clone(), Rng::new(rng.next()));
            thread::spawn(move || produce(handle, ledger, OPS_PER_PRODUCER, rng))
        })
        .collect();
    // The main thread produces too, then shuts the pool down while the
    // producers are (usually) still pushing, some of them blocked.
    produce(
        pool.handle(),
        ledger.clone(),
        main_ops,
        Rng::new(rng.next()),
    );
    if rng.below(2) == 0 {
        pool.shutdown();
    } else {
        drop(pool);
    }
    progress();
    for thread in threads {
        thread.join().expect("a producer panicked");
        progress();
    }
    ledger.check(seed);
}

#[test]
fn mixed_workload_exactly_once() {
    quiet_deliberate_panics();
    let base = 0x5eed_0000_u64;
    let _watchdog = Watchdog::new("mixed_workload_exactly_once", base);
    for round in 0..rounds() as u64 {
        mixed_round(base + round);
    }
}

/// Blocked producers woken by shutdown: capacity 1, the only worker held by
/// a task while the producers start (so most of them find the pool full and
/// block), then released and the pool shut down at once. Every submission is
/// either accepted (and ran once) or refused (and came back); no producer
/// stays blocked.
fn blocked_round(seed: u64) {
    let mut rng = Rng::new(seed);
    let producers = 2 + rng.below(4) as usize;
    const OPS: usize = 4;
    let ledger = Ledger::new(1 + producers * OPS * TASKS_PER_OP);
    let pool = build(1, 1, false, &ledger);
    let handle = pool.handle();

    // Hold the only worker while the producers start.
    let hold = Gate::new();
    let held = hold.clone();
    let id = ledger.next.fetch_add(1, Ordering::SeqCst);
    let token = Token {
        id,
        ledger: ledger.clone(),
    };
    pool.submit(move || {
        let token = token;
        token.ledger.runs[token.id].fetch_add(1, Ordering::SeqCst);
        held.wait();
    })
    .expect("the pool is running");
    ledger.record(id, ACCEPTED);

    let threads: Vec<_> = (0..producers)
        .map(|_| {
            let (handle, ledger, rng) = (handle.clone(), ledger.clone(), Rng::new(rng.next()));
            thread::spawn(move || produce(handle, ledger, OPS, rng))
        })
        .collect();
    hold.open();
    if rng.below(2) == 0 {
        pool.shutdown();
    } else {
        drop(pool);
    }
    progress();
    for thread in threads {
        thread.join().expect("a producer panicked");
        progress();
    }
    ledger.check(seed);
}

#[test]
fn shutdown_releases_blocked_producers() {
    quiet_deliberate_panics();
    let base = 0xb10c_0000_u64;
    let _watchdog = Watchdog::new("shutdown_releases_blocked_producers", base);
    for round in 0..4 * rounds() as u64 {
        blocked_round(base + round);
    }
}
