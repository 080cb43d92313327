//! Exactly once: every accepted task runs exactly once, every rejected task
//! never runs and comes back intact, under four producers that mix
//! `submit`, `try_submit` and `submit_timeout` against a small bound.

mod support;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use corepool::Pool;
use support::{hold_workers, Gate, Watchdog, WATCHDOG};

const TASKS: usize = 1_000_000;
const PRODUCERS: usize = 4;
const PER_PRODUCER: usize = TASKS / PRODUCERS;
const WORKERS: usize = 2;
/// Small, so that producers often find the pool full.
const CAPACITY: usize = 64;

/// How many times task `i` ran. Only `million_tasks_run_exactly_once` uses it.
static RUNS: [AtomicU8; TASKS] = [const { AtomicU8::new(0) }; TASKS];

fn task(i: usize) -> impl FnOnce() + Send + 'static {
    move || {
        RUNS[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// What one producer did.
struct Produced<F> {
    accepted: usize,
    /// Rejected tasks: their index and the closure handed back.
    rejected: Vec<(usize, F)>,
    full: usize,
    timed_out: usize,
}

#[test]
fn million_tasks_run_exactly_once() {
    let _watchdog = Watchdog::new("million_tasks_run_exactly_once");
    let pool = Pool::builder()
        .workers(WORKERS)
        .queue_capacity(CAPACITY)
        .build()
        .unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();

    // Start full, so that every producer deterministically sees both kinds
    // of rejection at least once: every worker held, the bound filled.
    hold_workers(&pool, &gate);
    let fillers = Arc::new(AtomicUsize::new(0));
    for _ in 0..CAPACITY {
        let fillers = fillers.clone();
        pool.try_submit(move || {
            fillers.fetch_add(1, Ordering::Relaxed);
        })
        .expect("room for `capacity` tasks");
    }
    assert_eq!(pool.queued(), CAPACITY);

    let (refused_while_full, full_reports) = mpsc::channel();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let handle = pool.handle();
            let refused_while_full = refused_while_full.clone();
            thread::spawn(move || {
                let start = p * PER_PRODUCER;
                let mut out = Produced {
                    accepted: 0,
                    rejected: Vec::new(),
                    full: 0,
                    timed_out: 0,
                };
                // The pool is full and held: both of these must be refused.
                // Reported, not asserted here: a panic on this thread would
                // leave the main thread waiting for the report.
                let try_refused = match handle.try_submit(task(start)) {
                    Ok(()) => {
                        out.accepted += 1;
                        false
                    }
                    Err(err) if err.is_full() => {
                        let f = err.into_inner();
                        out.full += 1;
                        out.rejected.push((start, f));
                        true
                    }
                    Err(_) => panic!("shut down while running"),
                };
                let timeout = Duration::from_millis(1);
                let timeout_refused = match handle.submit_timeout(task(start + 1), timeout) {
                    Ok(()) => {
                        out.accepted += 1;
                        false
                    }
                    Err(err) if err.is_timeout() => {
                        let f = err.into_inner();
                        out.timed_out += 1;
                        out.rejected.push((start + 1, f));
                        true
                    }
                    Err(_) => panic!("shut down while running"),
                };
                refused_while_full
                    .send((p, try_refused, timeout_refused))
                    .unwrap();

                for i in start + 2..start + PER_PRODUCER {
                    match i % 4 {
                        0 => {
                            handle.submit(task(i)).expect("the pool is running");
                            out.accepted += 1;
                        }
                        1 => match handle.try_submit(task(i)) {
                            Ok(()) => out.accepted += 1,
                            Err(err) if err.is_full() => {
                                let f = err.into_inner();
                                out.full += 1;
                                out.rejected.push((i, f));
                            }
                            Err(_) => panic!("shut down while running"),
                        },
                        _ => {
                            // Zero and a short timeout: both paths of the wait.
                            let timeout = if i % 4 == 2 {
                                Duration::ZERO
                            } else {
                                Duration::from_micros(50)
                            };
                            match handle.submit_timeout(task(i), timeout) {
                                Ok(()) => out.accepted += 1,
                                Err(err) if err.is_timeout() => {
                                    let f = err.into_inner();
                                    out.timed_out += 1;
                                    out.rejected.push((i, f));
                                }
                                Err(_) => {
                                    panic!("shut down while running")
                                }
                            }
                        }
                    }
                }
                out
            })
        })
        .collect();

    for _ in 0..PRODUCERS {
        let (p, try_refused, timeout_refused) = full_reports
            .recv_timeout(WATCHDOG)
            .expect("every producer reports");
        assert!(
            try_refused,
            "producer {p}: try_submit accepted into a full pool"
        );
        assert!(
            timeout_refused,
            "producer {p}: submit_timeout accepted into a full pool"
        );
    }
    gate.open();
    let results: Vec<_> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    drop(pool); // drains: every accepted task has run when this returns

    assert_eq!(fillers.load(Ordering::Relaxed), CAPACITY);
    let accepted: usize = results.iter().map(|r| r.accepted).sum();
    let full: usize = results.iter().map(|r| r.full).sum();
    let timed_out: usize = results.iter().map(|r| r.timed_out).sum();
    let mut rejected: Vec<(usize, _)> = results.into_iter().flat_map(|r| r.rejected).collect();
    assert_eq!(accepted + rejected.len(), TASKS);
    assert_eq!(full + timed_out, rejected.len());
    assert!(full >= PRODUCERS && timed_out >= PRODUCERS);

    let mut is_rejected = vec![false; TASKS];
    for (i, _) in &rejected {
        assert!(!is_rejected[*i], "task {i} rejected twice");
        is_rejected[*i] = true;
    }
    for (i, runs) in RUNS.iter().enumerate() {
        let runs = runs.load(Ordering::Relaxed);
        if is_rejected[i] {
            assert_eq!(runs, 0, "rejected task {i} ran {runs} times");
        } else {
            assert_eq!(runs, 1, "accepted task {i} ran {runs} times");
        }
    }

    // The closures handed back are the very tasks that were refused.
    rejected.sort_unstable_by_key(|(i, _)| *i);
    for (_, f) in rejected {
        f();
    }
    for (i, runs) in RUNS.iter().enumerate() {
        assert_eq!(runs.load(Ordering::Relaxed), 1, "task {i}");
    }
    eprintln!("accepted {accepted}, refused full {full}, timed out {timed_out}");
}

#[test]
fn every_submit_variant_runs_its_task() {
    let _watchdog = Watchdog::new("every_submit_variant_runs_its_task");
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity(4)
        .build()
        .unwrap();
    let handle = pool.handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let send = |tag: &'static str| {
        let tx = tx.clone();
        move || tx.send(tag).unwrap()
    };
    pool.submit(send("pool.submit")).unwrap();
    pool.try_submit(send("pool.try_submit")).unwrap();
    pool.submit_timeout(send("pool.submit_timeout"), Duration::from_secs(60))
        .unwrap();
    handle.submit(send("handle.submit")).unwrap();
    // The queue may be momentarily full (capacity 4): retry with the closure
    // handed back until it is accepted.
    let mut f = send("handle.try_submit");
    while let Err(err) = handle.try_submit(f) {
        assert!(err.is_full(), "the pool is running");
        f = err.into_inner();
        thread::yield_now();
    }
    handle
        .submit_timeout(send("handle.submit_timeout"), Duration::from_secs(60))
        .unwrap();
    drop(tx);
    drop(pool);
    let mut got: Vec<_> = rx.iter().collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "handle.submit",
            "handle.submit_timeout",
            "handle.try_submit",
            "pool.submit",
            "pool.submit_timeout",
            "pool.try_submit",
        ]
    );
}
