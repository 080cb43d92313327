//! Workload 6 of `docs/benchmarks.md`: `latency`, submit-to-start under an
//! open-loop load.
//!
//! One outside thread submits ~1 µs tasks at a fixed rate (200,000/s by
//! default) on an absolute schedule: task `i` is due at `t0 + i × period`,
//! whatever happened to task `i − 1`. Each task records, as the first thing
//! it does, `now − due`: its latency is measured from when it *should* have
//! been submitted, so a producer that is held up (a blocking `submit`, a
//! preemption) makes every task behind it late, and no coordinated omission
//! hides that. Between submissions the producer yields its core
//! (`sched_yield`; `COREPOOL_LATENCY_WAIT=spin` busy-waits instead).
//!
//! Each runtime: a warm-up, then 3 runs (`COREPOOL_LATENCY_RUNS`) of 2 s each; each run's
//! p50/p99/p99.9/max come from an HDR histogram of every task's latency.
//! The table gives the median over the runs, with the min and max.
//! Also measured: corepool with other capacities (the default-capacity
//! question) and with unpinned workers; and a baseline that is no pool at
//! all, `inline`: the producer runs each task itself when it is due, so
//! its latency is only how late the producer thread itself runs, alone
//! on the machine. That is the floor no pool can go under here: a pool's
//! task starts on another thread, after the producer's `spawn` returned.
//!
//! A **paired pass** (`COREPOOL_LATENCY_PAIRS=<rounds>`, off by default)
//! runs the main contenders round by round instead: inline, corepool and
//! every peer, all built up front and warmed once, then each runs once
//! per round in an order rotated by one every round, so a noisy spell of
//! this machine (its millisecond stalls set every p99.9 here) falls on
//! all of them alike. It prints each one's median p99 and p99.9 over the
//! rounds, and in how many rounds corepool's was at or below the best
//! peer's in the same round. `COREPOOL_LATENCY_PAIRED_ONLY=1` runs only
//! that pass.
//!
//! Run: `cargo bench --bench latency` (smoke test: `-- --test` or
//! `COREPOOL_BENCH_QUICK=1`). Options through the environment:
//! `COREPOOL_LATENCY_RATE` (tasks/s), `COREPOOL_LATENCY_SECS` (per run),
//! `COREPOOL_LATENCY_RUNS` (runs per runtime, default 3: on a noisy
//! machine the p99.9 of one run moves by 10x, and more runs give its
//! median a chance).
//! Results: a table on stdout and `target/corepool-bench/latency.json`.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use common::runtimes::{Corepool, Executors, Go, Rayon, Runtime, Threadpool, Tokio};
use common::sync::Latch;
use common::work;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs per runtime, unless `COREPOOL_LATENCY_RUNS` says otherwise.
const REPEATS: usize = 3;

fn runs() -> usize {
    if common::quick() {
        return 1;
    }
    std::env::var("COREPOOL_LATENCY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(REPEATS)
}

static EPOCH: OnceLock<Instant> = OnceLock::new();
/// Per task: nanoseconds from its due time to its start.
static SLOTS: OnceLock<Box<[AtomicU64]>> = OnceLock::new();
static T0_NS: AtomicU64 = AtomicU64::new(0);
static PERIOD_NS: AtomicU64 = AtomicU64::new(0);
static TASK_ITERS: AtomicU64 = AtomicU64::new(0);

fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn due_ns(i: usize) -> u64 {
    T0_NS.load(Ordering::Relaxed) + i as u64 * PERIOD_NS.load(Ordering::Relaxed)
}

/// Task `i`: record the latency first, then ~1 µs of work.
fn task(i: usize, latch: &'static Latch) -> impl FnOnce() + Send + 'static {
    move || {
        let late = now_ns().saturating_sub(due_ns(i));
        SLOTS.get().expect("slots")[i].store(late, Ordering::Relaxed);
        work::spin(TASK_ITERS.load(Ordering::Relaxed));
        latch.count_down();
    }
}

struct RunResult {
    latency: Histogram<u64>,
    /// How late the producer's `spawn` calls *returned*, against the schedule.
    submit_lag: Histogram<u64>,
}

/// One open-loop run of `tasks` tasks.
fn run<R: Runtime>(rt: &R, latch: &'static Latch, tasks: usize) -> RunResult {
    let slots = SLOTS.get().expect("slots");
    for slot in &slots[..tasks] {
        slot.store(u64::MAX, Ordering::Relaxed);
    }
    latch.reset(tasks);
    let mut submit_lag =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    // Start 1 ms from now, so the first tasks are not already late.
    T0_NS.store(now_ns() + 1_000_000, Ordering::Relaxed);
    let spin = wait_by_spinning();
    for i in 0..tasks {
        let due = due_ns(i);
        while now_ns() < due {
            if spin {
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        rt.spawn(task(i, latch));
        submit_lag.saturating_record(now_ns().saturating_sub(due));
    }
    latch.wait();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    for slot in &slots[..tasks] {
        let late = slot.load(Ordering::Relaxed);
        assert_ne!(late, u64::MAX, "a task did not run");
        latency.saturating_record(late);
    }
    RunResult {
        latency,
        submit_lag,
    }
}

/// How the producer waits for the next due time: `yield` (the default:
/// `sched_yield`, so that on a machine with as many cores as workers the
/// producer hands its core to a woken worker at once) or `spin`
/// (`COREPOOL_LATENCY_WAIT=spin`: a busy loop, which on 2 cores holds one
/// of them against the workers until the scheduler preempts it).
fn wait_by_spinning() -> bool {
    std::env::var("COREPOOL_LATENCY_WAIT").is_ok_and(|v| v == "spin")
}

fn micros(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

fn measure<R: Runtime>(rt: &R, tasks: usize, warmup_tasks: usize) -> (String, Value) {
    let latch = Latch::leaked();
    run(rt, latch, warmup_tasks);
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut p999 = Vec::new();
    let mut max = Vec::new();
    let mut lag99 = Vec::new();
    let mut lag_max = Vec::new();
    for _ in 0..runs() {
        let result = run(rt, latch, tasks);
        let h = &result.latency;
        p50.push(micros(h.value_at_quantile(0.5)));
        p99.push(micros(h.value_at_quantile(0.99)));
        p999.push(micros(h.value_at_quantile(0.999)));
        max.push(micros(h.max()));
        lag99.push(micros(result.submit_lag.value_at_quantile(0.99)));
        lag_max.push(micros(result.submit_lag.max()));
    }
    let summary = common::output::summary;
    let value = json!({
        "p50_us": summary(&mut p50),
        "p99_us": summary(&mut p99),
        "p999_us": summary(&mut p999),
        "max_us": summary(&mut max),
        "submit_lag_p99_us": summary(&mut lag99),
        "submit_lag_max_us": summary(&mut lag_max),
    });
    (rt.name(), value)
}

/// The `inline` baseline: no pool, the producer runs each task in its
/// `spawn` call (see the module documentation).
struct Inline;

impl Runtime for Inline {
    type Spawner = ();

    fn name(&self) -> String {
        "inline".to_owned()
    }

    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        f();
    }

    fn spawner(&self) {}

    fn spawn_inside<F: FnOnce() + Send + 'static>(_: &(), f: F) {
        f();
    }
}

/// A contender of the paired pass: its label and one run.
type Contender<'a> = (String, Box<dyn Fn(&'static Latch, usize) -> RunResult + 'a>);

fn contender<R: Runtime>(rt: &R) -> Contender<'_> {
    (
        rt.name(),
        Box::new(move |latch, tasks| run(rt, latch, tasks)),
    )
}

/// The paired pass (module docs): `pairs` rounds, each running every
/// contender once, the order rotated by one per round, after one
/// unmeasured warm-up run each.
fn paired_pass(workers: usize, pairs: usize, tasks: usize, warmup_tasks: usize) {
    let corepool = Corepool::new(workers);
    let rayon = Rayon::new(workers);
    let tokio = Tokio::new(workers);
    let threadpool = Threadpool::new(workers);
    let executors = Executors::new(workers);
    let go = Go::new(workers);
    let contenders: Vec<Contender> = vec![
        contender(&Inline),
        contender(&corepool),
        contender(&rayon),
        contender(&tokio),
        contender(&threadpool),
        contender(&executors),
        contender(&go),
    ];
    let n = contenders.len();
    let latch = Latch::leaked();
    for (_, run_once) in &contenders {
        run_once(latch, warmup_tasks);
    }
    // [round][contender]: (p99, p99.9) in µs.
    let mut tails = vec![vec![(0.0f64, 0.0f64); n]; pairs];
    for (round, row) in tails.iter_mut().enumerate() {
        for k in 0..n {
            let which = (round + k) % n;
            let h = (contenders[which].1)(latch, tasks).latency;
            row[which] = (
                micros(h.value_at_quantile(0.99)),
                micros(h.value_at_quantile(0.999)),
            );
        }
    }
    let names: Vec<&str> = contenders.iter().map(|c| c.0.as_str()).collect();
    let Some(core) = names.iter().position(|&name| name == "corepool") else {
        return;
    };
    let peers: Vec<usize> = (0..n)
        .filter(|&c| c != core && names[c] != "inline")
        .collect();
    // Rounds where corepool's tail was at or below every peer's.
    let at_or_below = |pick: fn(&(f64, f64)) -> f64| {
        tails
            .iter()
            .filter(|row| peers.iter().all(|&p| pick(&row[core]) <= pick(&row[p])))
            .count()
    };
    let (p99_rounds, p999_rounds) = (at_or_below(|t| t.0), at_or_below(|t| t.1));
    println!(
        "\n**latency, paired: {pairs} rounds, each runtime once per round; corepool at or below \
         the best peer's p99 in {p99_rounds} of {pairs} rounds, p99.9 in {p999_rounds} of {pairs}**\n"
    );
    println!("| runtime | p99 µs: median | min – max | p99.9 µs: median | min – max |");
    println!("|---|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for (c, name) in names.iter().enumerate() {
        let mut p99: Vec<f64> = tails.iter().map(|row| row[c].0).collect();
        let mut p999: Vec<f64> = tails.iter().map(|row| row[c].1).collect();
        rows.push(json!({"runtime": name, "p99_us": p99, "p999_us": p999}));
        let (a, b) = (
            common::output::summary(&mut p99),
            common::output::summary(&mut p999),
        );
        let f = |v: &Value, key: &str| v[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {name} | {:.1} | {:.1} – {:.1} | {:.1} | {:.1} – {:.1} |",
            f(&a, "median"),
            f(&a, "min"),
            f(&a, "max"),
            f(&b, "median"),
            f(&b, "min"),
            f(&b, "max")
        );
    }
    common::output::write_json(
        "latency-paired",
        &json!({
            "machine": common::process::machine(),
            "rounds": pairs,
            "tasks_per_run": tasks,
            "corepool_p99_at_or_below_best_peer_rounds": p99_rounds,
            "corepool_p999_at_or_below_best_peer_rounds": p999_rounds,
            "rows": rows,
        }),
    );
}

fn env_f64(key: &str) -> Option<f64> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

fn main() {
    let quick = common::init_quick_mode();
    let workers = common::workers();
    let rate = env_f64("COREPOOL_LATENCY_RATE").unwrap_or(200_000.0);
    let secs = env_f64("COREPOOL_LATENCY_SECS").unwrap_or(if quick { 0.02 } else { 2.0 });
    let tasks = (rate * secs) as usize;
    let warmup_tasks = (tasks / 8).max(1);
    let period_ns = (1e9 / rate).round() as u64;
    let task_iters = work::iters_for_ns(1_000.0);
    PERIOD_NS.store(period_ns, Ordering::Relaxed);
    TASK_ITERS.store(task_iters, Ordering::Relaxed);
    SLOTS.get_or_init(|| (0..tasks).map(|_| AtomicU64::new(0)).collect());
    now_ns();
    println!(
        "latency: {workers} workers, {rate} tasks/s ({period_ns} ns apart), {secs} s per run, \
         {} runs, task = {task_iters} iterations (~1 µs), producer waits by {}, quick = {quick}",
        runs(),
        if wait_by_spinning() {
            "spinning"
        } else {
            "yielding"
        }
    );

    let pairs = std::env::var("COREPOOL_LATENCY_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if pairs > 0 {
        paired_pass(workers, pairs, tasks, warmup_tasks);
    }
    if std::env::var("COREPOOL_LATENCY_PAIRED_ONLY").is_ok_and(|v| !v.is_empty() && v != "0") {
        return;
    }

    let mut results = vec![measure(&Inline, tasks, warmup_tasks)];
    for_each_runtime!(workers, |rt| results.push(measure(
        &rt,
        tasks,
        warmup_tasks
    )));
    for per_worker in [10, 64, 1024] {
        let rt = Corepool::with_capacity_per_worker(workers, per_worker);
        results.push(measure(&rt, tasks, warmup_tasks));
    }
    results.push(measure(&Corepool::unpinned(workers), tasks, warmup_tasks));

    println!(
        "\n{:<22} {:>24} {:>24} {:>24} {:>12} {:>14}",
        "runtime",
        "p50 µs [min, max]",
        "p99 µs [min, max]",
        "p99.9 µs [min, max]",
        "max µs",
        "submit lag p99"
    );
    let cell = |v: &Value| {
        format!(
            "{:.1} [{:.1}, {:.1}]",
            v["median"].as_f64().unwrap_or(f64::NAN),
            v["min"].as_f64().unwrap_or(f64::NAN),
            v["max"].as_f64().unwrap_or(f64::NAN)
        )
    };
    for (name, v) in &results {
        println!(
            "{:<22} {:>24} {:>24} {:>24} {:>12.1} {:>14.1}",
            name,
            cell(&v["p50_us"]),
            cell(&v["p99_us"]),
            cell(&v["p999_us"]),
            v["max_us"]["median"].as_f64().unwrap_or(f64::NAN),
            v["submit_lag_p99_us"]["median"]
                .as_f64()
                .unwrap_or(f64::NAN),
        );
    }
    let runtimes: serde_json::Map<String, Value> = results.into_iter().collect();
    common::output::write_json(
        "latency",
        &json!({
            "machine": common::process::machine(),
            "rate_per_s": rate,
            "seconds_per_run": secs,
            "runs": runs(),
            "task_iters": task_iters,
            "task_ns": task_iters as f64 / work::iters_per_ns(),
            "producer_wait": if wait_by_spinning() { "spin" } else { "yield" },
            "runtimes": runtimes,
        }),
    );
}
