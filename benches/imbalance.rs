//! Workload 5 of `docs/benchmarks.md`: `imbalance`. One outside thread
//! submits a burst of 200,000 tasks of ~1 µs, every hundredth one ~100 µs,
//! and waits for all of them. `sequential` runs the same work on one
//! thread; the report turns the medians into an efficiency,
//! `(sequential / W) / makespan` (1.0 = perfect use of W workers).
//!
//! `corepool unpinned` is corepool with `pin_workers(false)`, to tell
//! pinning's share apart on a machine where other processes take cores;
//! `corepool cap=Wx4096` is corepool with 16 times the default capacity,
//! to show what the bound costs a producer that shares the workers' cores.
//!
//! `corepool caller-runs` is the default pool fed through `try_submit`:
//! when the queue is full the producer runs that task itself instead of
//! waiting (the pattern of `try_submit`'s documentation, Java's
//! `CallerRunsPolicy`), so a producer that shares the workers' cores
//! spends its waits on the work.
//!
//! `static split` is no pool at all: W plain threads, each running one
//! contiguous W-th of the burst (so each gets the same number of long
//! tasks), no producer, no queue. It is the ceiling this machine allows
//! W threads on this work: what is lost there (thread start, the cores'
//! noise) no scheduler can win back.
//!
//! After criterion, a **paired pass** runs the same burst round by round:
//! every round runs `sequential`, `static split`, corepool (through
//! `submit`, through caller-runs, and with 16 times the capacity),
//! threadpool, rayon and executors once each, in an order rotated by one every
//! round, so that a slow spell of this noisy machine falls on all of them
//! alike; it prints each one's efficiency and its makespan over
//! threadpool's in the same round, and then where each burst's CPU time
//! went: the producing thread's, the whole process's, the cores' idle
//! time, and how often the producer gave up its core while runnable.
//! Criterion measures each
//! runtime in its own minutes, and between those the same configuration
//! drifts by ±5 % here, more than the differences between the pools.
//! `COREPOOL_IMBALANCE_PAIRS=<rounds>` (default 15; 1 in quick mode; 0
//! skips it), `COREPOOL_IMBALANCE_PAIRED_ONLY=1` skips criterion.
//!
//! Run: `cargo bench --bench imbalance` (smoke test: `-- --test`).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use serde_json::json;

use common::crit::{configure, rounds};
use common::process::{cpu_time, thread_cpu_time, thread_involuntary_switches};
use common::runtimes::{Corepool, Executors, Rayon, Runtime, Threadpool};
use common::sync::Latch;
use common::work;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Every `LONG_EVERY`th task is long.
const LONG_EVERY: usize = 100;

#[derive(Clone, Copy)]
struct Shape {
    tasks: usize,
    short_iters: u64,
    long_iters: u64,
}

impl Shape {
    fn iters(&self, i: usize) -> u64 {
        if i % LONG_EVERY == LONG_EVERY - 1 {
            self.long_iters
        } else {
            self.short_iters
        }
    }
}

fn burst<R: Runtime>(rt: &R, latch: &'static Latch, shape: Shape) -> Duration {
    latch.reset(shape.tasks);
    let start = Instant::now();
    for i in 0..shape.tasks {
        let iters = shape.iters(i);
        rt.spawn(move || {
            work::spin(iters);
            latch.count_down();
        });
    }
    latch.wait();
    start.elapsed()
}

/// The burst through `try_submit`: a task refused because the queue is
/// full runs on the producer's thread, at once.
fn burst_caller_runs(pool: &corepool::Pool, latch: &'static Latch, shape: Shape) -> Duration {
    latch.reset(shape.tasks);
    let start = Instant::now();
    for i in 0..shape.tasks {
        let iters = shape.iters(i);
        let task = move || {
            work::spin(iters);
            latch.count_down();
        };
        match pool.try_submit(task) {
            Ok(()) => {}
            Err(err) if err.is_full() => err.into_inner()(),
            Err(_) => panic!("corepool shut down"),
        }
    }
    latch.wait();
    start.elapsed()
}

fn sequential(shape: Shape) -> Duration {
    let start = Instant::now();
    for i in 0..shape.tasks {
        black_box(work::spin(shape.iters(i)));
    }
    start.elapsed()
}

/// The `static split` baseline: W scoped threads, one contiguous W-th of
/// the burst each.
fn static_split(shape: Shape, workers: usize) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for k in 0..workers {
            let (from, to) = (k * shape.tasks / workers, (k + 1) * shape.tasks / workers);
            scope.spawn(move || {
                for i in from..to {
                    black_box(work::spin(shape.iters(i)));
                }
            });
        }
    });
    start.elapsed()
}

/// One contender of the paired pass: a label and one burst.
type Contender<'a> = (&'static str, Box<dyn FnMut() -> Duration + 'a>);

/// The paired pass (module docs): `pairs` rounds, each running every
/// contender once, the order rotated by one per round, after one
/// unmeasured round. Prints a table and writes the raw makespans to
/// `imbalance-paired.json`.
fn paired_pass(shape: Shape, workers: usize, pairs: usize) {
    let corepool = Corepool::new(workers);
    let threadpool = Threadpool::new(workers);
    let rayon = Rayon::new(workers);
    let executors = Executors::new(workers);
    let deep = Corepool::with_capacity_per_worker(workers, 4096);
    let latches: Vec<&'static Latch> = (0..6).map(|_| Latch::leaked()).collect();
    let mut contenders: Vec<Contender> = vec![
        ("sequential", Box::new(|| sequential(shape))),
        ("static split", Box::new(|| static_split(shape, workers))),
        ("corepool", Box::new(|| burst(&corepool, latches[0], shape))),
        (
            "corepool caller-runs",
            Box::new(|| burst_caller_runs(corepool.pool(), latches[1], shape)),
        ),
        (
            "threadpool",
            Box::new(|| burst(&threadpool, latches[2], shape)),
        ),
        ("rayon", Box::new(|| burst(&rayon, latches[3], shape))),
        (
            "executors",
            Box::new(|| burst(&executors, latches[5], shape)),
        ),
        (
            "corepool cap=Wx4096",
            Box::new(|| burst(&deep, latches[4], shape)),
        ),
    ];
    let n = contenders.len();
    // bursts[round][contender].
    let mut bursts = vec![vec![Burst::default(); n]; pairs];
    // One unmeasured round: threads started, caches and allocator warm.
    for contender in contenders.iter_mut() {
        (contender.1)();
    }
    for (round, row) in bursts.iter_mut().enumerate() {
        for k in 0..n {
            let which = (round + k) % n;
            row[which] = Burst::measure(&mut contenders[which].1);
        }
    }
    let makespans: Vec<Vec<f64>> = bursts
        .iter()
        .map(|row| row.iter().map(|burst| burst.makespan_ms).collect())
        .collect();
    let index = |name: &str| contenders.iter().position(|c| c.0 == name);
    let (Some(seq), Some(tp)) = (index("sequential"), index("threadpool")) else {
        return;
    };
    println!(
        "\n**imbalance, paired: {pairs} rounds, each runtime once per round (efficiency = (that round's sequential / {workers}) / makespan)**\n"
    );
    println!("| runtime | median efficiency | min – max | makespan ÷ threadpool's in the same round: median | min – max | rounds faster than threadpool |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for (c, (name, _)) in contenders.iter().enumerate() {
        if c == seq {
            continue;
        }
        let efficiency: Vec<f64> = makespans
            .iter()
            .map(|row| row[seq] / workers as f64 / row[c])
            .collect();
        let ratio: Vec<f64> = makespans.iter().map(|row| row[c] / row[tp]).collect();
        let faster = ratio.iter().filter(|&&x| x < 1.0).count();
        let median_min_max = |values: &[f64]| {
            let s = common::output::summary(&mut values.to_vec());
            [s["median"].as_f64(), s["min"].as_f64(), s["max"].as_f64()]
                .map(|x| x.unwrap_or(f64::NAN))
        };
        let (e, r) = (median_min_max(&efficiency), median_min_max(&ratio));
        let versus = if c == tp {
            "–".to_owned()
        } else {
            format!("{faster} of {pairs}")
        };
        println!(
            "| {name} | {:.3} | {:.3} – {:.3} | {:.3} | {:.3} – {:.3} | {versus} |",
            e[0], e[1], e[2], r[0], r[1], r[2]
        );
        rows.push(json!({"runtime": name, "efficiency": efficiency, "ratio_to_threadpool": ratio}));
    }
    print_cpu_table(&contenders, workers, &bursts);
    common::output::write_json(
        "imbalance-paired",
        &json!({
            "machine": common::process::machine(),
            "rounds": pairs,
            "runtimes": contenders.iter().map(|c| c.0).collect::<Vec<_>>(),
            "makespans_ms_by_round": makespans,
            "bursts_by_round": bursts,
            "rows": rows,
        }),
    );
}

/// One burst of the paired pass: its makespan, and the CPU time of the
/// producing (measuring) thread and of the whole process while it ran.
#[derive(Clone, Copy, Default, serde::Serialize)]
struct Burst {
    makespan_ms: f64,
    producer_cpu_ms: f64,
    process_cpu_ms: f64,
    /// Times the producing thread gave up its core while runnable: each
    /// yield that let a worker run, and each preemption.
    producer_switches: u64,
}

impl Burst {
    fn measure(run: &mut dyn FnMut() -> Duration) -> Burst {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (thread0, process0) = (thread_cpu_time(), cpu_time());
        let switches0 = thread_involuntary_switches();
        let makespan = run();
        Burst {
            makespan_ms: ms(makespan),
            producer_cpu_ms: ms(thread_cpu_time().saturating_sub(thread0)),
            process_cpu_ms: ms(cpu_time().saturating_sub(process0)),
            producer_switches: thread_involuntary_switches().saturating_sub(switches0),
        }
    }
}

/// Where each burst's CPU time went, medians over the paired rounds: the
/// producing thread's, the whole process's, and the cores' idle time
/// (W × makespan minus the process's CPU time, so time other processes
/// took counts as idle too). The process's CPU time includes whatever the
/// other contenders' idle threads spend meanwhile (a pool whose threads
/// spin before they sleep). A pool behind threadpool with no idle time
/// lost it to overhead, the producer's or the workers'.
fn print_cpu_table(contenders: &[Contender], workers: usize, bursts: &[Vec<Burst>]) {
    println!("\n**imbalance, paired: CPU time per burst (medians, ms)**\n");
    println!("| runtime | makespan | producing thread's CPU | process's CPU | idle (W × makespan − process's CPU) | producer's involuntary switches |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (c, (name, _)) in contenders.iter().enumerate() {
        let median = |value: &dyn Fn(&Burst) -> f64| {
            let mut values: Vec<f64> = bursts.iter().map(|row| value(&row[c])).collect();
            common::output::summary(&mut values)["median"]
                .as_f64()
                .unwrap_or(f64::NAN)
        };
        let makespan = median(&|b| b.makespan_ms);
        let producer = median(&|b| b.producer_cpu_ms);
        let process = median(&|b| b.process_cpu_ms);
        let idle = median(&|b| workers as f64 * b.makespan_ms - b.process_cpu_ms);
        let switches = median(&|b| b.producer_switches as f64);
        println!(
            "| {name} | {makespan:.1} | {producer:.1} | {process:.1} | {idle:.1} | {switches:.0} |"
        );
    }
}

/// Rounds of the paired pass: `COREPOOL_IMBALANCE_PAIRS`, else 15 (1 in
/// quick mode).
fn paired_rounds(quick: bool) -> usize {
    std::env::var("COREPOOL_IMBALANCE_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1 } else { 15 })
}

fn main() {
    let quick = common::init_quick_mode();
    let workers = common::workers();
    let shape = Shape {
        tasks: common::size(200_000, 2_000),
        short_iters: work::iters_for_ns(1_000.0),
        long_iters: work::iters_for_ns(100_000.0),
    };
    eprintln!(
        "imbalance: {workers} workers, {} tasks, short = {} iterations, long = {} iterations, quick = {quick}",
        shape.tasks, shape.short_iters, shape.long_iters
    );
    let pairs = paired_rounds(quick);
    if std::env::var("COREPOOL_IMBALANCE_PAIRED_ONLY").is_ok_and(|v| !v.is_empty() && v != "0") {
        if pairs > 0 {
            paired_pass(shape, workers, pairs);
        }
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("imbalance");
    configure(&mut group, shape.tasks);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("sequential", |b| {
        b.iter_custom(|iters| rounds(iters, || sequential(shape)))
    });
    group.bench_function("static split", |b| {
        b.iter_custom(|iters| rounds(iters, || static_split(shape, workers)))
    });
    for_each_runtime!(workers, |rt| {
        let latch = Latch::leaked();
        group.bench_function(rt.name(), |b| {
            b.iter_custom(|iters| rounds(iters, || burst(&rt, latch, shape)))
        });
    });
    // The default pool, the producer running what does not fit.
    {
        let rt = Corepool::new(workers);
        let latch = Latch::leaked();
        group.bench_function("corepool caller-runs", |b| {
            b.iter_custom(|iters| rounds(iters, || burst_caller_runs(rt.pool(), latch, shape)))
        });
    }
    // Pinning's share (workers free to migrate), then the bound's (16 times
    // the default capacity); each pool is built when its turn comes.
    let variants: [fn(usize) -> Corepool; 2] = [Corepool::unpinned, |workers| {
        Corepool::with_capacity_per_worker(workers, 4096)
    }];
    for make in variants {
        let rt = make(workers);
        let latch = Latch::leaked();
        group.bench_function(rt.name(), |b| {
            b.iter_custom(|iters| rounds(iters, || burst(&rt, latch, shape)))
        });
    }
    group.finish();
    c.final_summary();
    if pairs > 0 {
        paired_pass(shape, workers, pairs);
    }
    common::output::write_json(
        "imbalance-meta",
        &json!({
            "machine": common::process::machine(),
            "tasks": shape.tasks,
            "long_every": LONG_EVERY,
            "short_iters": shape.short_iters,
            "long_iters": shape.long_iters,
            "iters_per_ns": work::iters_per_ns(),
        }),
    );
}
