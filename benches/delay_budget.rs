//! How accurate is the queue-delay budget's estimate, and what does it buy?
//! (`Builder::queue_delay_budget`, `src/budget.rs`.)
//!
//! A pool of 2 workers (the default capacity, 512) runs tasks that each
//! spin for `COST` (0.3 ms). Before each run the capacity is measured:
//! tasks/s run in 1 s with the queue kept full, the better of two tries. Then one
//! outside thread offers tasks open-loop,
//! Poisson arrivals at 0.5×, 1× and 2× that capacity, through `try_submit`
//! with a budget of 10 ms (and, for contrast, without a budget at 2×).
//! Just before each `try_submit` it reads `Handle::expected_queue_delay`,
//! the figure the budget check compares (the *predicted* wait); each
//! admitted task records when it starts, so its *actual* wait is start
//! minus the `try_submit` call. The first tenth of each run is warm-up and
//! not reported. Between arrivals the producer sleeps (`thread::sleep`
//! overshoots by tens of µs, so arrivals come in small bursts; the offered
//! rate holds on average).
//!
//! Then the cost: 200,000 empty tasks through `submit` with and without a
//! budget (the budget adds one clock read per started task on the worker),
//! alternated seven times; ns per task, median; and the cost of one
//! `Instant::now()` (10 million calls).
//!
//! Run: `nice -n 19 cargo bench --bench delay_budget` (smoke test:
//! `-- --test`). `COREPOOL_BUDGET_SECS` sets the seconds per run (default 4).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use corepool::Pool;

const WORKERS: usize = 2;
const COST: Duration = Duration::from_micros(300);
const BUDGET: Duration = Duration::from_millis(10);

fn spin(cost: Duration) {
    let start = Instant::now();
    while start.elapsed() < cost {
        std::hint::spin_loop();
    }
}

fn pool(budget: Option<Duration>) -> Pool {
    let mut builder = Pool::builder().workers(WORKERS);
    if let Some(budget) = budget {
        builder = builder.queue_delay_budget(budget);
    }
    builder.build().expect("build the pool")
}

/// Tasks/s the pool sustains with its queue never empty: the producer
/// tops the queue up with `try_submit` and sleeps 200 µs between top-ups
/// (a producer blocked in `submit` would yield its core in a loop and take
/// CPU from the workers it measures); tasks run during `window`, after a
/// warm-up of a fifth of it.
fn capacity(window: Duration) -> f64 {
    let pool = pool(None);
    let warm_up = window / 5;
    let start = Instant::now();
    let mut mark: Option<(Instant, u64)> = None;
    loop {
        while pool.try_submit(|| spin(COST)).is_ok() {}
        thread::sleep(Duration::from_micros(200));
        let elapsed = start.elapsed();
        if mark.is_none() && elapsed >= warm_up {
            mark = Some((Instant::now(), pool.metrics().executed));
        }
        if elapsed >= warm_up + window {
            break;
        }
    }
    let executed = pool.metrics().executed;
    let (since, before) = mark.expect("marked after the warm-up");
    let rate = (executed - before) as f64 / since.elapsed().as_secs_f64();
    // Hand the queued tasks back rather than run them.
    drop(pool.shutdown_now());
    rate
}

/// A small xorshift generator: reproducible arrivals, no dependency.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// An exponential inter-arrival time at `rate` per second.
    fn exp(&mut self, rate: f64) -> Duration {
        Duration::from_secs_f64(-self.next_f64().ln() / rate)
    }
}

struct Run {
    label: String,
    offered: usize,
    admitted: usize,
    served_per_s: f64,
    refused_budget: u64,
    refused_full: u64,
    /// Admitted tasks after warm-up: (predicted, actual) waits in ns.
    pairs: Vec<(u64, u64)>,
}

fn open_loop(label: &str, rate: f64, secs: f64, budget: Option<Duration>) -> Run {
    let pool = pool(budget);
    let handle = pool.handle();
    let slots = (rate * secs * 1.2) as usize + 1000;
    let epoch = Instant::now();
    // Per arrival: start time of its task (ns after epoch, 0 = not started).
    let starts: Arc<Vec<AtomicU64>> = Arc::new((0..slots).map(|_| AtomicU64::new(0)).collect());
    // Per admitted arrival: (index, submit ns, predicted ns).
    let mut admitted: Vec<(usize, u64, u64)> = Vec::with_capacity(slots);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let end = Duration::from_secs_f64(secs);
    let mut due = Duration::ZERO;
    let mut offered = 0;
    while due < end && offered < slots {
        let now = epoch.elapsed();
        if due > now {
            thread::sleep(due - now);
        }
        let predicted = handle
            .expected_queue_delay()
            .map_or(0, |d| d.as_nanos() as u64);
        let submit = epoch.elapsed().as_nanos() as u64;
        let index = offered;
        let starts_for_task = starts.clone();
        let task = move || {
            let started = epoch.elapsed().as_nanos() as u64;
            starts_for_task[index].store(started.max(1), Ordering::Relaxed);
            spin(COST);
        };
        if handle.try_submit(task).is_ok() {
            admitted.push((index, submit, predicted));
        }
        offered += 1;
        due += rng.exp(rate);
    }
    let elapsed = epoch.elapsed().as_secs_f64();
    pool.wait_idle();
    let m = pool.metrics();
    let warm_up = offered / 10;
    let pairs = admitted
        .iter()
        .filter(|&&(index, _, _)| index >= warm_up)
        .map(|&(index, submit, predicted)| {
            let started = starts[index].load(Ordering::Relaxed);
            (predicted, started.saturating_sub(submit))
        })
        .collect();
    Run {
        label: label.to_owned(),
        offered,
        admitted: admitted.len(),
        served_per_s: admitted.len() as f64 / elapsed,
        refused_budget: m.rejected_budget,
        refused_full: m.rejected_full,
        pairs,
    }
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn report(run: &Run, capacity: f64) {
    let mut actual: Vec<u64> = run.pairs.iter().map(|&(_, a)| a).collect();
    actual.sort_unstable();
    let mut predicted: Vec<u64> = run.pairs.iter().map(|&(p, _)| p).collect();
    predicted.sort_unstable();
    // Signed error actual - predicted, per task.
    let mut error: Vec<i64> = run
        .pairs
        .iter()
        .map(|&(p, a)| a as i64 - p as i64)
        .collect();
    error.sort_unstable();
    let error_q = |q: f64| -> f64 {
        if error.is_empty() {
            return 0.0;
        }
        let rank = ((q * error.len() as f64).ceil() as usize).clamp(1, error.len());
        error[rank - 1] as f64 / 1e6
    };
    let over = actual
        .iter()
        .filter(|&&a| a > BUDGET.as_nanos() as u64)
        .count();
    let mean = |v: &[u64]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64 / 1e6;
    println!(
        "| {} | {:.0} | {} | {:.0} | {:.1} % | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:+.2} / {:+.2} / {:+.2} | {:.2} % |",
        run.label,
        capacity,
        run.offered,
        run.served_per_s,
        100.0 * (run.offered - run.admitted) as f64 / run.offered.max(1) as f64,
        mean(&predicted),
        mean(&actual),
        ms(quantile(&actual, 0.50)),
        ms(quantile(&actual, 0.99)),
        ms(quantile(&actual, 0.999)),
        ms(*actual.last().unwrap_or(&0)),
        error_q(0.01),
        error_q(0.50),
        error_q(0.99),
        100.0 * over as f64 / actual.len().max(1) as f64,
    );
    eprintln!(
        "  ({}: refused by budget {}, by the count bound {})",
        run.label, run.refused_budget, run.refused_full
    );
}

/// ns per empty task through `submit`, 200,000 tasks.
fn cost_per_task(budget: Option<Duration>, tasks: usize) -> f64 {
    let pool = pool(budget);
    let start = Instant::now();
    for _ in 0..tasks {
        pool.submit(|| {}).expect("running");
    }
    pool.wait_idle();
    start.elapsed().as_nanos() as f64 / tasks as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let secs: f64 = if quick {
        0.2
    } else {
        std::env::var("COREPOOL_BUDGET_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4.0)
    };
    // On a shared machine the capacity moves within a minute, so it is
    // measured again right before each run (the better of two tries: one
    // that ran while something else held a core would make the load
    // factor too low).
    let calibration = Duration::from_secs_f64(if quick { 0.1 } else { 1.0 });
    println!(
        "delay_budget: {WORKERS} workers, tasks spin {COST:?}, budget {BUDGET:?}, default capacity \
         ({nominal:.0} tasks/s if both workers had a core to themselves); {secs} s per run",
        nominal = WORKERS as f64 / COST.as_secs_f64()
    );
    println!();
    println!(
        "| load | capacity (tasks/s) | offered | served/s | refused | predicted mean (ms) | actual mean (ms) | \
         actual p50 (ms) | actual p99 (ms) | actual p99.9 (ms) | actual max (ms) | actual - predicted p1 / p50 / p99 (ms) | \
         admitted over budget |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (label, factor, budget) in [
        ("0.5x, budget", 0.5, Some(BUDGET)),
        ("1x, budget", 1.0, Some(BUDGET)),
        ("2x, budget", 2.0, Some(BUDGET)),
        ("2x, no budget", 2.0, None),
    ] {
        let capacity = (0..2).map(|_| capacity(calibration)).fold(0.0, f64::max);
        let run = open_loop(label, capacity * factor, secs, budget);
        report(&run, capacity);
    }
    let tasks = if quick { 2_000 } else { 200_000 };
    let mut without = Vec::new();
    let mut with = Vec::new();
    for _ in 0..7 {
        without.push(cost_per_task(None, tasks));
        with.push(cost_per_task(Some(BUDGET), tasks));
    }
    let calls = if quick { 10_000 } else { 10_000_000 };
    let start = Instant::now();
    let mut last = start;
    for _ in 0..calls {
        last = std::hint::black_box(Instant::now());
    }
    let clock_ns = last.duration_since(start).as_nanos() as f64 / calls as f64;
    println!();
    println!("Instant::now(): {clock_ns:.1} ns per call ({calls} calls)");
    println!(
        "empty tasks through submit, {tasks} per run, median of 7, alternating: {:.0} ns/task without a budget, \
         {:.0} ns/task with one (runs: {:?} / {:?})",
        median(without.clone()),
        median(with.clone()),
        without.iter().map(|x| x.round()).collect::<Vec<_>>(),
        with.iter().map(|x| x.round()).collect::<Vec<_>>(),
    );
}
