//! What `Builder::track_latency(true)` costs: nanoseconds per task for a
//! stream of tiny externally submitted tasks, with queue-wait tracking on
//! and off, in alternating runs (off, on, off, on, ...) so that drift in
//! the machine's speed hits both alike. Reports each run, the medians, and
//! the ratio on/off. The figures in `docs/operations.md` come from it.
//!
//! ```sh
//! cargo bench --bench observe_overhead                 # 1M tasks, 7 runs each
//! cargo bench --bench observe_overhead -- 200000 3     # tasks, runs
//! ```
//!
//! One producer thread submits (blocking while the bound is full) to a pool
//! with the default workers and capacity; the clock runs from the first
//! submission until the pool has run every task (its drop drains it).
//! Tracking adds one clock read at submit and one at start per task, plus a
//! histogram update on the worker.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use corepool::Pool;

fn one_run(tasks: u64, track: bool) -> f64 {
    let pool = Pool::builder().track_latency(track).build().unwrap();
    let handle = pool.handle();
    let sum = Arc::new(AtomicU64::new(0));
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
    assert_eq!(sum.load(Ordering::Relaxed), tasks * (tasks - 1) / 2);
    let m = handle.metrics();
    assert_eq!(m.executed, tasks);
    assert_eq!(m.queue_wait.count, if track { tasks } else { 0 });
    elapsed.as_nanos() as f64 / tasks as f64
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

fn main() {
    // `cargo bench` passes `--bench`; the numbers are ours.
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    let tasks = numbers.first().copied().unwrap_or(1_000_000).max(1);
    let runs = numbers.get(1).copied().unwrap_or(7).max(1) as usize;
    let workers = Pool::builder().build().unwrap().workers();
    println!(
        "observe_overhead: {tasks} tiny tasks per run, {runs} runs each, alternating; \
         {workers} workers, default capacity, one producer"
    );
    // One unmeasured run of each warms the allocator and the page cache.
    one_run(tasks.min(100_000), false);
    one_run(tasks.min(100_000), true);
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let a = one_run(tasks, false);
        let b = one_run(tasks, true);
        println!("run {run}: track_latency(false) {a:7.1} ns/task   track_latency(true) {b:7.1} ns/task");
        off.push(a);
        on.push(b);
    }
    let (off, on) = (median(&mut off), median(&mut on));
    println!("median: track_latency(false) {off:.1} ns/task, track_latency(true) {on:.1} ns/task");
    println!(
        "ratio on/off: {:.3} ({:+.1} ns/task)",
        on / off,
        on - off
    );
}
