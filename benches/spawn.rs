//! Workloads 1 to 3 of `docs/benchmarks.md`, and the default-capacity
//! question, against rayon, tokio, threadpool, executors and a Go-style
//! pool.
//!
//! * `spawn_many_remote`: one outside thread submits 1M tiny tasks (an
//!   atomic decrement plus ~20 ns of work) and waits for all of them.
//! * `spawn_many_remote_multi`: the same with W producer threads.
//! * `spawn_many_local`: a binary tree of 2^20 leaves, every node a task
//!   spawned from inside the pool (2^21 − 1 tasks).
//! * `chained_spawn`: a chain of 1,000 tasks, each spawning the next.
//! * `ping_pong`: 1,000 pairs of tasks hand a ball back and forth 10 times
//!   each through the pool, every hop a task spawned by the other side.
//! * corepool's tasks submit from inside with `corepool::submit` (as
//!   rayon's call `rayon::spawn`); `chained_spawn` and `ping_pong` also run
//!   `corepool via Handle clone`, tasks capturing a `Handle` clone and
//!   submitting through it, which shows what the reference count costs.
//! * `default_capacity`, `default_capacity_multi`: `spawn_many_remote`
//!   (one and W producers) for corepool with capacity W×10, W×64, W×256
//!   (the default) and W×1024.
//!
//! Run: `cargo bench --bench spawn` (smoke test: `cargo bench --bench spawn
//! -- --test`). Criterion's samples land in `target/criterion/<group>/`,
//! the task counts in `target/corepool-bench/spawn-meta.json`;
//! `cargo bench --bench report` turns them into tables and charts.
//! `COREPOOL_BENCH_PRODUCER_CPU=N` pins the measuring thread, the one
//! producer of the one-producer groups, to CPU `N` while it measures
//! (docs/benchmarks.md, section 1b).

mod common;

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use serde_json::json;

use common::crit::{configure, rounds};
use common::runtimes::{Corepool, CorepoolHandle, Runtime};
use common::sync::Latch;
use common::work;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// ---------------------------------------------------------------------
// 1. spawn_many_remote(_multi)

fn tiny_task(latch: &'static Latch) -> impl FnOnce() + Send + 'static {
    move || {
        work::tiny();
        latch.count_down();
    }
}

/// One round: `tasks` tiny tasks from `producers` outside threads (the
/// measuring thread itself when `producers == 1`), then wait for all.
fn remote_round<R: Runtime>(
    rt: &R,
    latch: &'static Latch,
    tasks: usize,
    producers: usize,
) -> Duration {
    latch.reset(tasks);
    let start = Instant::now();
    if producers == 1 {
        for _ in 0..tasks {
            rt.spawn(tiny_task(latch));
        }
    } else {
        thread::scope(|s| {
            for p in 0..producers {
                let share = tasks / producers + usize::from(p < tasks % producers);
                s.spawn(move || {
                    for _ in 0..share {
                        rt.spawn(tiny_task(latch));
                    }
                });
            }
        });
    }
    latch.wait();
    start.elapsed()
}

fn bench_remote<R: Runtime>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &R,
    tasks: usize,
    producers: usize,
) {
    let latch = Latch::leaked();
    group.bench_function(rt.name(), |b| {
        b.iter_custom(|iters| {
            let measure = || rounds(iters, || remote_round(rt, latch, tasks, producers));
            match producer_cpu().filter(|_| producers == 1) {
                Some(cpu) => pinned_to(cpu, measure),
                None => measure(),
            }
        })
    });
}

/// `COREPOOL_BENCH_PRODUCER_CPU`: the CPU the one-producer groups'
/// producer (the measuring thread) is pinned to while it measures.
fn producer_cpu() -> Option<usize> {
    std::env::var("COREPOOL_BENCH_PRODUCER_CPU")
        .ok()?
        .parse()
        .ok()
}

/// Runs `f` with this thread pinned to `cpu`, then gives the thread its
/// affinity mask back. Pinned only here, after the runtime under test
/// started its threads: threads inherit their creator's mask, and
/// corepool reads it to choose its workers' cores.
#[cfg(target_os = "linux")]
fn pinned_to<T>(cpu: usize, f: impl FnOnce() -> T) -> T {
    // SAFETY: cpu_set_t is plain data, for which all zeroes is the empty
    // set; the calls read and write only the set passed, of the size
    // given; pid 0 is the calling thread.
    unsafe {
        let mut saved: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        assert_eq!(
            libc::sched_getaffinity(0, size, &mut saved),
            0,
            "sched_getaffinity"
        );
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        assert_eq!(
            libc::sched_setaffinity(0, size, &one),
            0,
            "pin to CPU {cpu}"
        );
        let out = f();
        assert_eq!(
            libc::sched_setaffinity(0, size, &saved),
            0,
            "restore the mask"
        );
        out
    }
}

/// Pinning the producer is Linux's `sched_setaffinity`; elsewhere `f` runs as it is.
#[cfg(not(target_os = "linux"))]
fn pinned_to<T>(_cpu: usize, f: impl FnOnce() -> T) -> T {
    f()
}

// ---------------------------------------------------------------------
// 2. spawn_many_local, chained_spawn

fn tree<R: Runtime>(spawner: R::Spawner, depth: u32, latch: &'static Latch) {
    if depth == 0 {
        work::tiny();
        latch.count_down();
        return;
    }
    let left = spawner.clone();
    R::spawn_inside(&spawner, move || tree::<R>(left, depth - 1, latch));
    let right = spawner.clone();
    R::spawn_inside(&spawner, move || tree::<R>(right, depth - 1, latch));
}

fn local_round<R: Runtime>(rt: &R, latch: &'static Latch, depth: u32) -> Duration {
    latch.reset(1 << depth);
    let start = Instant::now();
    let spawner = rt.spawner();
    rt.spawn(move || tree::<R>(spawner, depth, latch));
    latch.wait();
    start.elapsed()
}

fn chain<R: Runtime>(spawner: R::Spawner, left: u32, latch: &'static Latch) {
    if left == 0 {
        latch.count_down();
        return;
    }
    let next = spawner.clone();
    R::spawn_inside(&next, move || chain::<R>(spawner, left - 1, latch));
}

fn chain_round<R: Runtime>(rt: &R, latch: &'static Latch, length: u32) -> Duration {
    latch.reset(1);
    let start = Instant::now();
    let spawner = rt.spawner();
    // The first link is submitted from outside; the other `length − 1`
    // are spawned by their predecessor.
    rt.spawn(move || chain::<R>(spawner, length - 1, latch));
    latch.wait();
    start.elapsed()
}

// ---------------------------------------------------------------------
// 3. ping_pong

/// The ball: 32 bytes that travel with every hop and are checked at the end.
#[derive(Clone, Copy)]
struct Ball {
    hops: u64,
    payload: [u64; 3],
}

fn ping<R: Runtime>(spawner: R::Spawner, ball: Ball, rounds_left: u32, latch: &'static Latch) {
    if rounds_left == 0 {
        assert_eq!(black_box(ball).payload[0], ball.hops);
        latch.count_down();
        return;
    }
    let via = spawner.clone();
    let ball = Ball {
        hops: ball.hops + 1,
        payload: [ball.payload[0] + 1, ball.payload[1], ball.payload[2]],
    };
    R::spawn_inside(&via, move || pong::<R>(spawner, ball, rounds_left, latch));
}

fn pong<R: Runtime>(spawner: R::Spawner, ball: Ball, rounds_left: u32, latch: &'static Latch) {
    let via = spawner.clone();
    let ball = Ball {
        hops: ball.hops + 1,
        payload: [ball.payload[0] + 1, ball.payload[1], ball.payload[2]],
    };
    R::spawn_inside(&via, move || {
        ping::<R>(spawner, ball, rounds_left - 1, latch)
    });
}

fn ping_pong_round<R: Runtime>(
    rt: &R,
    latch: &'static Latch,
    pairs: usize,
    trips: u32,
) -> Duration {
    latch.reset(pairs);
    let start = Instant::now();
    let spawner = rt.spawner();
    rt.spawn(move || {
        for pair in 0..pairs {
            let ball = Ball {
                hops: 0,
                payload: [0, pair as u64, !(pair as u64)],
            };
            let mine = spawner.clone();
            R::spawn_inside(&spawner, move || ping::<R>(mine, ball, trips, latch));
        }
    });
    latch.wait();
    start.elapsed()
}

// ---------------------------------------------------------------------

struct Sizes {
    remote_tasks: usize,
    tree_depth: u32,
    chain_length: u32,
    pairs: usize,
    rounds: u32,
}

fn main() {
    let quick = common::init_quick_mode();
    let tiny_iters = work::calibrate();
    let workers = common::workers();
    let sizes = Sizes {
        remote_tasks: common::size(1_000_000, 10_000),
        tree_depth: common::size(20, 10) as u32,
        chain_length: common::size(1_000, 100) as u32,
        pairs: common::size(1_000, 100),
        rounds: common::size(10, 2) as u32,
    };
    eprintln!(
        "spawn benches: {workers} workers, tiny task = {tiny_iters} spin iterations \
         ({:.1} ns), quick = {quick}",
        tiny_iters as f64 / work::iters_per_ns()
    );
    if let Some(cpu) = producer_cpu() {
        eprintln!("one-producer groups: the producer runs pinned to CPU {cpu}");
    }
    let mut c = Criterion::default().configure_from_args();
    let mut skipped = serde_json::Map::new();

    let mut group = c.benchmark_group("spawn_many_remote");
    configure(&mut group, sizes.remote_tasks);
    for_each_runtime!(workers, |rt| bench_remote(
        &mut group,
        &rt,
        sizes.remote_tasks,
        1
    ));
    group.finish();

    let mut group = c.benchmark_group("spawn_many_remote_multi");
    configure(&mut group, sizes.remote_tasks);
    for_each_runtime!(workers, |rt| bench_remote(
        &mut group,
        &rt,
        sizes.remote_tasks,
        workers
    ));
    group.finish();

    let tree_tasks = (1usize << (sizes.tree_depth + 1)) - 1;
    let mut group = c.benchmark_group("spawn_many_local");
    configure(&mut group, tree_tasks);
    for_each_runtime!(workers, |rt| {
        if let Some(why) = rt.inside_spawn_deadlocks() {
            skipped.insert(format!("spawn_many_local/{}", rt.name()), json!(why));
        } else {
            let latch = Latch::leaked();
            group.bench_function(rt.name(), |b| {
                b.iter_custom(|iters| rounds(iters, || local_round(&rt, latch, sizes.tree_depth)))
            });
        }
    });
    group.finish();

    let mut group = c.benchmark_group("chained_spawn");
    configure(&mut group, sizes.chain_length as usize);
    for_each_runtime!(workers, |rt| {
        let latch = Latch::leaked();
        group.bench_function(rt.name(), |b| {
            b.iter_custom(|iters| rounds(iters, || chain_round(&rt, latch, sizes.chain_length)))
        });
    });
    {
        let rt = CorepoolHandle::new(workers);
        let latch = Latch::leaked();
        group.bench_function(rt.name(), |b| {
            b.iter_custom(|iters| rounds(iters, || chain_round(&rt, latch, sizes.chain_length)))
        });
    }
    group.finish();

    let round_trips = sizes.pairs * sizes.rounds as usize;
    let mut group = c.benchmark_group("ping_pong");
    configure(&mut group, round_trips);
    for_each_runtime!(workers, |rt| {
        if let Some(why) = rt.inside_spawn_deadlocks() {
            skipped.insert(format!("ping_pong/{}", rt.name()), json!(why));
        } else {
            let latch = Latch::leaked();
            group.bench_function(rt.name(), |b| {
                b.iter_custom(|iters| {
                    rounds(iters, || {
                        ping_pong_round(&rt, latch, sizes.pairs, sizes.rounds)
                    })
                })
            });
        }
    });
    {
        let rt = CorepoolHandle::new(workers);
        let latch = Latch::leaked();
        group.bench_function(rt.name(), |b| {
            b.iter_custom(|iters| {
                rounds(iters, || {
                    ping_pong_round(&rt, latch, sizes.pairs, sizes.rounds)
                })
            })
        });
    }
    group.finish();

    for (name, producers) in [("default_capacity", 1), ("default_capacity_multi", workers)] {
        let mut group = c.benchmark_group(name);
        configure(&mut group, sizes.remote_tasks);
        for per_worker in [10, 64, 256, 1024] {
            let rt = Corepool::with_capacity_per_worker(workers, per_worker);
            bench_remote(&mut group, &rt, sizes.remote_tasks, producers);
        }
        group.finish();
    }

    c.final_summary();

    common::output::write_json(
        "spawn-meta",
        &json!({
            "machine": common::process::machine(),
            "tiny_task_iters": tiny_iters,
            "tiny_task_ns": tiny_iters as f64 / work::iters_per_ns(),
            "groups": {
                "spawn_many_remote": { "unit": "ns/task", "per_iteration": sizes.remote_tasks, "producers": 1 },
                "spawn_many_remote_multi": { "unit": "ns/task", "per_iteration": sizes.remote_tasks, "producers": workers },
                "spawn_many_local": { "unit": "ns/task", "per_iteration": tree_tasks, "leaves": 1usize << sizes.tree_depth },
                "chained_spawn": { "unit": "ns/task", "per_iteration": sizes.chain_length },
                "ping_pong": { "unit": "ns/round trip", "per_iteration": round_trips, "pairs": sizes.pairs, "rounds": sizes.rounds },
                "default_capacity": { "unit": "ns/task", "per_iteration": sizes.remote_tasks, "producers": 1 },
                "default_capacity_multi": { "unit": "ns/task", "per_iteration": sizes.remote_tasks, "producers": workers },
            },
            "skipped": skipped,
        }),
    );
}
