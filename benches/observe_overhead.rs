//! What `Builder::track_latency(true)` costs: nanoseconds per task for a
//! stream of tiny externally submitted tasks, with queue-wait tracking on
//! and off, in alternating runs (off, on, off, on, ...) so that drift in
//! the machine's speed hits both alike. Reports each run, the medians, and
//! the ratio on/off. The figures in `docs/monitoring.md` come from it.
//!
//! ```sh
//! cargo bench --bench observe_overhead                 # 1M tasks, 7 runs each
//! cargo bench --bench observe_overhead -- 200000 3     # tasks, runs
//! cargo bench --bench observe_overhead -- 1000000 9 1  # tasks, runs, workers
//! ```
//!
//! One producer thread submits tiny tasks (an atomic add each) to a pool
//! with the default workers (or the number given); the clock runs from the
//! first submission until the pool has run every task (its drop drains
//! it). Two regimes, because they behave differently:
//!
//! * **bound never full**: capacity = the number of tasks, so `submit`
//!   never blocks; this is the cost of the work itself.
//! * **default capacity**: workers × 256; a producer that outruns the
//!   workers fills the bound and then blocks on every slot, and anything
//!   that slows the producer (a clock read, for one) can change how often.
//!
//! Per run it also prints worker parks and the process's voluntary context
//! switches (threads blocking: parked workers, producers waiting for a
//! slot) per 1000 tasks.
//!
//! Tracking adds one clock read at submit (producer) and one at start
//! (worker) per task, plus a histogram update on the worker; the program
//! also times `Instant::now()` alone, the floor of that cost.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use corepool::Pool;

/// Voluntary context switches of the whole process so far (Linux): each
/// is a thread blocking (a parked worker, a producer waiting for a slot).
fn voluntary_switches() -> u64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage, and a valid `who`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0;
    }
    usage.ru_nvcsw as u64
}

/// Nanoseconds per task, worker parks per 1000 tasks, and voluntary
/// context switches (of every thread) per 1000 tasks.
fn one_run(tasks: u64, track: bool, workers: usize, capacity: Option<usize>) -> (f64, f64, f64) {
    let mut builder = Pool::builder().workers(workers).track_latency(track);
    if let Some(capacity) = capacity {
        builder = builder.queue_capacity(capacity);
    }
    let pool = builder.build().unwrap();
    let handle = pool.handle();
    let sum = Arc::new(AtomicU64::new(0));
    let switches = voluntary_switches();
    let start = Instant::now();
    for i in 0..tasks {
        let sum = sum.clone();
        pool.submit(move || {
            sum.fetch_add(black_box(i), Ordering::Relaxed);
        })
        .unwrap();
    }
    drop(pool); // drains: every task has run when this returns
    let elapsed = start.elapsed();
    let switches = voluntary_switches() - switches;
    assert_eq!(sum.load(Ordering::Relaxed), tasks * (tasks - 1) / 2);
    let m = handle.metrics();
    assert_eq!(m.executed, tasks);
    assert_eq!(m.queue_wait.count, if track { tasks } else { 0 });
    let parks: u64 = m.per_worker.iter().map(|w| w.parks).sum();
    (
        elapsed.as_nanos() as f64 / tasks as f64,
        parks as f64 * 1000.0 / tasks as f64,
        switches as f64 * 1000.0 / tasks as f64,
    )
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn regime(name: &str, tasks: u64, runs: usize, workers: usize, capacity: Option<usize>) {
    println!("\n[{name}]");
    // One unmeasured run of each warms the allocator.
    one_run(tasks.min(100_000), false, workers, capacity);
    one_run(tasks.min(100_000), true, workers, capacity);
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (a, parks_a, cs_a) = one_run(tasks, false, workers, capacity);
        let (b, parks_b, cs_b) = one_run(tasks, true, workers, capacity);
        println!(
            "run {run:2}: off {a:6.1} ns/task ({parks_a:4.1} parks, {cs_a:6.1} ctx switches /1k)   \
             on {b:6.1} ns/task ({parks_b:4.1} parks, {cs_b:6.1} ctx switches /1k)"
        );
        off.push(a);
        on.push(b);
    }
    let (off, on) = (median(&mut off), median(&mut on));
    println!(
        "median: off {off:.1} ns/task, on {on:.1} ns/task; ratio on/off {:.3} ({:+.1} ns/task)",
        on / off,
        on - off
    );
}

fn clock_read_ns() -> f64 {
    const READS: u32 = 10_000_000;
    let start = Instant::now();
    let mut last = start;
    for _ in 0..READS {
        last = black_box(Instant::now());
    }
    (last - start).as_nanos() as f64 / READS as f64
}

fn main() {
    // `cargo bench` passes `--bench`; the numbers are ours.
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    let tasks = numbers.first().copied().unwrap_or(1_000_000).max(2);
    let runs = numbers.get(1).copied().unwrap_or(7).max(1) as usize;
    let workers = match numbers.get(2) {
        Some(&n) => n.max(1) as usize,
        None => Pool::builder().build().unwrap().workers(),
    };
    let loadavg = || {
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "n/a".into())
    };
    println!(
        "observe_overhead: {tasks} tiny tasks per run, {runs} runs each, alternating off/on; \
         {workers} workers, one producer; loadavg before: {}",
        loadavg()
    );
    let mut clock = [clock_read_ns(), clock_read_ns(), clock_read_ns()];
    println!("Instant::now(): {:.1} ns per read", median(&mut clock));
    regime(
        "bound never full (capacity = tasks)",
        tasks,
        runs,
        workers,
        Some(tasks as usize),
    );
    regime(
        "default capacity (workers x 256)",
        tasks,
        runs,
        workers,
        None,
    );
    println!("\nloadavg after: {}", loadavg());
}
