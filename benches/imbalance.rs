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
//! Run: `cargo bench --bench imbalance` (smoke test: `-- --test`).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use corepool::TrySubmitError;
use criterion::Criterion;
use serde_json::json;

use common::crit::{configure, rounds};
use common::runtimes::{Corepool, Runtime};
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
            Err(TrySubmitError::Full(task)) => task(),
            Err(TrySubmitError::Shutdown(_)) => panic!("corepool shut down"),
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
