//! Workload 7 of `docs/benchmarks.md`: `memory`, the peak RSS of a backlog.
//!
//! Each measurement is a fresh child process (this binary, re-run with
//! `COREPOOL_MEM_CHILD=<runtime>` and `COREPOOL_MEM_TASKS=<n>`), so no
//! runtime inherits another's heap. The child:
//!
//! 1. builds the runtime (W workers) and holds every worker on a gate
//!    (W tasks that block until the gate opens, submitted one at a time,
//!    each confirmed running before the next);
//! 2. starts a producer thread that submits `n` tasks of 64 bytes (the
//!    closure captures `[u64; 8]`, nothing else);
//! 3. watches the producer: once it has pushed all `n`, or has made no
//!    progress for `STALL` (it is blocked: the pool is full), it records the
//!    peak RSS and how many tasks were accepted;
//! 4. opens the gate, waits for the producer and every task, and records
//!    the peak RSS of the whole run.
//!
//! Peak RSS is `VmHWM` of `/proc/self/status`, the high-water mark of the
//! child's own address space. `getrusage`'s `ru_maxrss` is recorded too
//! (`ru_maxrss_total_mib`) but not used: Linux folds the peak of the image
//! that `execve` replaced (the parent's, ~7 MiB) into it, which would put a
//! floor under every measurement.
//!
//! Everything is measured twice: under mimalloc's default settings and
//! with its transparent huge pages off, `MIMALLOC_ALLOW_THP=0` (see
//! [`ALLOCATOR_CONFIGS`]).
//!
//! The bounded pools (corepool, the Go-style pool) must show a blocked
//! producer and a flat RSS from 100k to 1M tasks; the unbounded ones queue
//! everything and grow with `n`.
//!
//! Run: `cargo bench --bench memory` (smoke test: `-- --test` or
//! `COREPOOL_BENCH_QUICK=1`). Results: a table on stdout and
//! `target/corepool-bench/memory.json`.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::process::{
    current_rss_bytes, peak_rss_bytes, rss_breakdown_mib, ru_maxrss_bytes, run_child,
};
use common::runtimes::{Corepool, Go, Rayon, Runtime, Threadpool, Tokio};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHILD_ENV: &str = "COREPOOL_MEM_CHILD";
const TASKS_ENV: &str = "COREPOOL_MEM_TASKS";

/// Every runtime measured, by the name the child understands.
const RUNTIMES: &[&str] = &[
    "corepool",
    "go-style",
    "rayon",
    "tokio",
    "tokio spawn_blocking",
    "threadpool",
];

/// The allocator settings each measurement is repeated under: mimalloc's
/// defaults, and the same with transparent huge pages off. By default
/// mimalloc asks the kernel for transparent huge pages on the arena it
/// commits up front (`madvise(MADV_HUGEPAGE)`, its `allow_thp` option), so
/// RSS moves in 2 MiB steps: a process with no runtime at all peaks near
/// 7 MiB, and a heap that grows by a few KiB may add 2 MiB or nothing.
/// With `MIMALLOC_ALLOW_THP=0` pages are 4 KiB and RSS follows what the
/// runtimes actually touch. Both apply to every runtime alike.
const ALLOCATOR_CONFIGS: &[(&str, &[(&str, &str)])] = &[
    ("mimalloc defaults", &[]),
    ("MIMALLOC_ALLOW_THP=0", &[("MIMALLOC_ALLOW_THP", "0")]),
];

/// Holds workers until opened.
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    held: AtomicUsize,
}

static GATE: Gate = Gate {
    open: Mutex::new(false),
    opened: Condvar::new(),
    held: AtomicUsize::new(0),
};
static PUSHED: AtomicUsize = AtomicUsize::new(0);
static DONE: AtomicUsize = AtomicUsize::new(0);

impl Gate {
    fn hold(&self) {
        self.held.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        while !*open {
            open = self.opened.wait(open).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.opened.notify_all();
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Waits until `done()` or `limit` passes; returns whether `done()`.
fn wait_for(limit: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

/// The child's measurement, for one runtime.
fn child<R: Runtime>(rt: R, workers: usize, tasks: usize, stall: Duration) -> Value {
    let rss_built = current_rss_bytes();
    // Hold every worker, one at a time, so that no gate task is queued
    // behind another on a blocked worker.
    for k in 1..=workers {
        rt.spawn(|| GATE.hold());
        assert!(
            wait_for(Duration::from_secs(10), || GATE.held.load(Ordering::SeqCst)
                >= k),
            "{}: worker {k} was not held",
            rt.name()
        );
    }
    let rss_gated = current_rss_bytes();
    let peak_gated_before = peak_rss_bytes();
    let started = Instant::now();
    let (accepted, breakdown, peak_while_held, rss_while_held, blocked, push_seconds) =
        thread::scope(|s| {
            let rt = &rt;
            s.spawn(move || {
                for i in 0..tasks {
                    let payload = [i as u64; 8];
                    rt.spawn(move || {
                        black_box(&payload);
                        DONE.fetch_add(1, Ordering::Relaxed);
                    });
                    PUSHED.fetch_add(1, Ordering::Relaxed);
                }
            });
            // Watch the producer until it is done or stalls.
            let mut last = 0;
            let mut last_change = Instant::now();
            loop {
                thread::sleep(Duration::from_millis(5));
                let pushed = PUSHED.load(Ordering::Relaxed);
                if pushed == tasks {
                    break;
                }
                if pushed != last {
                    last = pushed;
                    last_change = Instant::now();
                } else if last_change.elapsed() >= stall {
                    break;
                }
                if started.elapsed() > Duration::from_secs(60) {
                    break;
                }
            }
            let accepted = PUSHED.load(Ordering::Relaxed);
            let result = (
                accepted,
                rss_breakdown_mib(),
                peak_rss_bytes(),
                current_rss_bytes(),
                accepted < tasks,
                started.elapsed().as_secs_f64(),
            );
            GATE.open();
            result
        });
    assert!(
        wait_for(Duration::from_secs(120), || DONE.load(Ordering::Relaxed)
            == tasks),
        "not every task ran"
    );
    let peak_total = peak_rss_bytes();
    json!({
        "runtime": rt.name(),
        "tasks": tasks,
        "accepted_while_held": accepted,
        "producer_blocked": blocked,
        "seconds_until_snapshot": push_seconds,
        "rss_after_build_mib": mib(rss_built),
        "rss_workers_held_mib": mib(rss_gated),
        "peak_before_push_mib": mib(peak_gated_before),
        "peak_while_held_mib": mib(peak_while_held),
        "rss_while_held_mib": mib(rss_while_held),
        "peak_total_mib": mib(peak_total),
        "ru_maxrss_total_mib": mib(ru_maxrss_bytes()),
        "status_while_held_mib": breakdown,
    })
}

fn run_as_child(name: &str) {
    let workers = common::workers();
    let tasks: usize = std::env::var(TASKS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("COREPOOL_MEM_TASKS");
    let stall = Duration::from_millis(if common::quick() { 100 } else { 500 });
    let result = match name {
        "corepool" => child(Corepool::new(workers), workers, tasks, stall),
        "go-style" => child(Go::new(workers), workers, tasks, stall),
        "rayon" => child(Rayon::new(workers), workers, tasks, stall),
        "tokio" => child(Tokio::new(workers), workers, tasks, stall),
        "tokio spawn_blocking" => child(Tokio::blocking(workers), workers, tasks, stall),
        "threadpool" => child(Threadpool::new(workers), workers, tasks, stall),
        "baseline" => json!({
            "runtime": "baseline",
            "tasks": 0,
            "peak_total_mib": mib(peak_rss_bytes()),
            "rss_after_build_mib": mib(current_rss_bytes()),
            "status_mib": rss_breakdown_mib(),
        }),
        other => panic!("unknown runtime {other:?}"),
    };
    // The parent reads the last line.
    println!("{result}");
}

fn main() {
    let quick = common::init_quick_mode();
    if let Ok(name) = std::env::var(CHILD_ENV) {
        run_as_child(&name);
        return;
    }
    let workers = common::workers();
    let sizes: &[usize] = if quick {
        &[1_000, 10_000]
    } else {
        &[100_000, 1_000_000]
    };
    let repeats = if quick { 1 } else { 3 };
    println!(
        "memory: {workers} workers, tasks of 64 bytes, sizes {sizes:?}, {repeats} child processes each, quick = {quick}"
    );
    let mut baselines = Vec::new();
    let mut rows = Vec::new();
    for (config, extra_env) in ALLOCATOR_CONFIGS {
        let env = |pairs: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
            let mut env: Vec<(&'static str, String)> = pairs.to_vec();
            env.extend(extra_env.iter().map(|(k, v)| (*k, v.to_string())));
            env
        };
        let baseline = run_child(&env(&[
            (CHILD_ENV, "baseline".to_owned()),
            (TASKS_ENV, "0".to_owned()),
        ]));
        println!(
            "\n[{config}] baseline process (no runtime): peak RSS {:.1} MiB",
            baseline["peak_total_mib"].as_f64().unwrap_or(f64::NAN)
        );
        for &name in RUNTIMES {
            for &tasks in sizes {
                let runs: Vec<Value> = (0..repeats)
                    .map(|_| {
                        run_child(&env(&[
                            (CHILD_ENV, name.to_owned()),
                            (TASKS_ENV, tasks.to_string()),
                        ]))
                    })
                    .collect();
                let field = |key: &str| -> Value {
                    let mut values: Vec<f64> =
                        runs.iter().filter_map(|r| r[key].as_f64()).collect();
                    common::output::summary(&mut values)
                };
                let row = json!({
                    "config": config,
                    "runtime": name,
                    "tasks": tasks,
                    "peak_while_held_mib": field("peak_while_held_mib"),
                    "peak_total_mib": field("peak_total_mib"),
                    "peak_before_push_mib": field("peak_before_push_mib"),
                    "accepted_while_held": field("accepted_while_held"),
                    "producer_blocked": runs.iter().all(|r| r["producer_blocked"] == json!(true)),
                    "runs": runs,
                });
                println!(
                    "{:<22} {:>9} tasks: accepted while held {:>9}, producer blocked {:<5}, peak RSS while held {:>8.1} MiB, whole run {:>8.1} MiB (before pushing {:.1})",
                    name,
                    tasks,
                    row["accepted_while_held"]["median"],
                    row["producer_blocked"],
                    row["peak_while_held_mib"]["median"].as_f64().unwrap_or(f64::NAN),
                    row["peak_total_mib"]["median"].as_f64().unwrap_or(f64::NAN),
                    row["peak_before_push_mib"]["median"].as_f64().unwrap_or(f64::NAN),
                );
                rows.push(row);
            }
        }
        baselines.push(json!({ "config": config, "baseline": baseline }));
    }
    common::output::write_json(
        "memory",
        &json!({
            "machine": common::process::machine(),
            "task_bytes": 64,
            "sizes": sizes,
            "repeats": repeats,
            "configs": ALLOCATOR_CONFIGS.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            "baselines": baselines,
            "rows": rows,
        }),
    );
}
