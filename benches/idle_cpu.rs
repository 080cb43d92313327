//! Workload 8 of `docs/benchmarks.md`: `idle_cpu`, what a pool burns when
//! there is (almost) nothing to do.
//!
//! Each measurement is a fresh child process (this binary, re-run with
//! `COREPOOL_IDLE_CHILD=<runtime>`), which:
//!
//! 1. builds the runtime (W workers), runs a few tasks so every worker has
//!    started, and lets it settle for 200 ms;
//! 2. **idle**: sleeps one second and reads the process's CPU time
//!    (`getrusage(RUSAGE_SELF)`: user + system, every thread);
//! 3. **tick**: submits one tiny task every millisecond, on an absolute
//!    schedule, for one second, and reads the CPU time again.
//!
//! `baseline` is the same process with no runtime, running the tick's
//! tasks inline; its CPU time (the sleeping main thread's own) is
//! subtracted ("net"). Also reported: the CPU time of every thread but the
//! main one (`getrusage(RUSAGE_THREAD)` on the main thread, subtracted
//! from the process's), that is, the pool's own threads, which is less
//! noisy than a difference of two processes. Results are in % of one
//! core: CPU time / wall time × 100.
//!
//! Run: `cargo bench --bench idle_cpu` (smoke test: `-- --test` or
//! `COREPOOL_BENCH_QUICK=1`). Results: a table on stdout and
//! `target/corepool-bench/idle_cpu.json`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::process::{cpu_time, run_child, thread_cpu_time};
use common::runtimes::{Corepool, Go, Rayon, Runtime, Threadpool, Tokio};
use common::work;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHILD_ENV: &str = "COREPOOL_IDLE_CHILD";

const RUNTIMES: &[&str] = &[
    "baseline",
    "corepool",
    "rayon",
    "tokio",
    "threadpool",
    "go-style",
];

static RAN: AtomicUsize = AtomicUsize::new(0);

fn tick_task() {
    work::tiny();
    RAN.fetch_add(1, Ordering::Relaxed);
}

fn wait_ran(count: usize) {
    let start = Instant::now();
    while RAN.load(Ordering::Relaxed) < count {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "tasks did not run"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// `Some(rt)` submits to the runtime; `None` runs the task inline.
fn measure<R: Runtime>(rt: Option<&R>, phase: Duration, period: Duration) -> Value {
    let spawn = |f: fn()| match rt {
        Some(rt) => rt.spawn(f),
        None => f(),
    };
    // Warm up: every worker has started and run something.
    for _ in 0..1_000 {
        spawn(tick_task);
    }
    wait_ran(1_000);
    thread::sleep(Duration::from_millis(200));

    // Idle.
    let cpu0 = cpu_time();
    let main0 = thread_cpu_time();
    let wall0 = Instant::now();
    thread::sleep(phase);
    let idle_cpu = cpu_time() - cpu0;
    let idle_main = thread_cpu_time() - main0;
    let idle_wall = wall0.elapsed();

    // One tiny task per period, on an absolute schedule.
    let before = RAN.load(Ordering::Relaxed);
    let ticks = (phase.as_nanos() / period.as_nanos()) as usize;
    let cpu1 = cpu_time();
    let main1 = thread_cpu_time();
    let wall1 = Instant::now();
    for k in 0..ticks {
        let due = wall1 + period * k as u32;
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        spawn(tick_task);
    }
    let end = wall1 + phase;
    let now = Instant::now();
    if end > now {
        thread::sleep(end - now);
    }
    wait_ran(before + ticks);
    let tick_cpu = cpu_time() - cpu1;
    let tick_main = thread_cpu_time() - main1;
    let tick_wall = wall1.elapsed();
    let pct = |cpu: Duration, wall: Duration| 100.0 * cpu.as_secs_f64() / wall.as_secs_f64();
    json!({
        "idle_pct": pct(idle_cpu, idle_wall),
        "tick_pct": pct(tick_cpu, tick_wall),
        "idle_pool_threads_pct": pct(idle_cpu.saturating_sub(idle_main), idle_wall),
        "tick_pool_threads_pct": pct(tick_cpu.saturating_sub(tick_main), tick_wall),
        "idle_cpu_ms": idle_cpu.as_secs_f64() * 1e3,
        "tick_cpu_ms": tick_cpu.as_secs_f64() * 1e3,
        "ticks": ticks,
    })
}

/// How long each phase lasts: one second, 50 ms in quick mode.
fn phase_ms() -> u64 {
    if common::quick() {
        50
    } else {
        1_000
    }
}

fn run_as_child(name: &str) {
    work::calibrate();
    let workers = common::workers();
    let phase = Duration::from_millis(phase_ms());
    let period = Duration::from_millis(1);
    let result = match name {
        "baseline" => measure::<Corepool>(None, phase, period),
        "corepool" => measure(Some(&Corepool::new(workers)), phase, period),
        "rayon" => measure(Some(&Rayon::new(workers)), phase, period),
        "tokio" => measure(Some(&Tokio::new(workers)), phase, period),
        "threadpool" => measure(Some(&Threadpool::new(workers)), phase, period),
        "go-style" => measure(Some(&Go::new(workers)), phase, period),
        other => panic!("unknown runtime {other:?}"),
    };
    println!("{result}");
}

fn main() {
    let quick = common::init_quick_mode();
    if let Ok(name) = std::env::var(CHILD_ENV) {
        run_as_child(&name);
        return;
    }
    let workers = common::workers();
    let repeats = if quick { 1 } else { 5 };
    let phase = phase_ms();
    println!(
        "idle_cpu: {workers} workers, {phase} ms idle then {phase} ms of one tiny task per ms, \
         {repeats} child processes per runtime, quick = {quick}"
    );
    let mut rows = serde_json::Map::new();
    let mut baseline = (0.0, 0.0);
    for &name in RUNTIMES {
        let runs: Vec<Value> = (0..repeats)
            .map(|_| run_child(&[(CHILD_ENV, name.to_owned())]))
            .collect();
        let field = |key: &str| -> Value {
            let mut values: Vec<f64> = runs.iter().filter_map(|r| r[key].as_f64()).collect();
            common::output::summary(&mut values)
        };
        let idle = field("idle_pct");
        let tick = field("tick_pct");
        let idle_pool = field("idle_pool_threads_pct");
        let tick_pool = field("tick_pool_threads_pct");
        let idle_med = idle["median"].as_f64().unwrap_or(f64::NAN);
        let tick_med = tick["median"].as_f64().unwrap_or(f64::NAN);
        if name == "baseline" {
            baseline = (idle_med, tick_med);
        }
        println!(
            "{:<12} idle {:>6.2}% of a core [{:.2}, {:.2}] (net {:>6.2}%, pool threads {:>5.2}%)   \
             1 task/ms {:>6.2}% [{:.2}, {:.2}] (net {:>6.2}%, pool threads {:>5.2}%)",
            name,
            idle_med,
            idle["min"].as_f64().unwrap_or(f64::NAN),
            idle["max"].as_f64().unwrap_or(f64::NAN),
            idle_med - baseline.0,
            idle_pool["median"].as_f64().unwrap_or(f64::NAN),
            tick_med,
            tick["min"].as_f64().unwrap_or(f64::NAN),
            tick["max"].as_f64().unwrap_or(f64::NAN),
            tick_med - baseline.1,
            tick_pool["median"].as_f64().unwrap_or(f64::NAN),
        );
        rows.insert(
            name.to_owned(),
            json!({
                "idle_pct": idle,
                "tick_pct": tick,
                "idle_net_pct": idle_med - baseline.0,
                "tick_net_pct": tick_med - baseline.1,
                "idle_pool_threads_pct": idle_pool,
                "tick_pool_threads_pct": tick_pool,
                "runs": runs,
            }),
        );
    }
    common::output::write_json(
        "idle_cpu",
        &json!({
            "machine": common::process::machine(),
            "repeats": repeats,
            "period_ms": 1,
            "phase_s": phase_ms() as f64 / 1e3,
            "runtimes": rows,
        }),
    );
}
