//! Workload 4 of `docs/benchmarks.md`: fork-join, corepool's `join`
//! against rayon's and, on the tree sum, chili's (the peers with a
//! fork-join primitive whose second closure stays on the stack; tokio,
//! threadpool and the Go-style pool would need a heap task and a blocking
//! wait per fork).
//!
//! * `fib_join`: fib(32) by `join`, plain recursion below n = 12
//!   (about 29,000 joins over leaves of ~0.3 µs).
//! * `fib_join_fine`: fib(32) by `join` all the way down to n < 2
//!   (rayon-demo's shape: 3.5M joins of nothing, join overhead only).
//!   Both fib groups also run `corepool_ctx`: `JoinContext::join`.
//! * `tree_sum`: the sum of a balanced binary tree of 2^22 − 1 =
//!   4,194,303 heap nodes, a `join` at every node and no cutoff (Spice's
//!   benchmark shape), on W threads; `tree_sum_1thread` is the same sum
//!   with one thread per pool, where the whole difference is a join's
//!   cost. chili (a port of Spice, heartbeat scheduling) is the reference
//!   here: its join touches no shared memory until a heartbeat asks it to.
//!   corepool runs twice: `corepool` with the free `join`, `corepool_ctx`
//!   with `JoinContext::join`, the context-passing join (chili's shape).
//!
//!   Every row visits the right subtree before the left one. chili's
//!   `join(a, b)` runs `b` first on the calling thread (and offers `a`),
//!   while corepool's and rayon's run `a` first; and the tree is allocated
//!   children first, so the right-first order reads the nodes downwards
//!   through memory, which the prefetcher follows, while the left-first
//!   order jumps. On the 2-core VM the left-first plain recursion takes
//!   about three times as long as the right-first one: letting each pool
//!   keep its natural order would measure the memory layout, not the
//!   join. So chili gets `join(left, right)`, the others
//!   `join(right, left)`.
//! * `join_chain`: a chain of 1,000 joins, each first closure recursing
//!   and each second doing ~10 µs of work: the shape where a pool that
//!   offers second closures lazily must keep offering on the way back up
//!   (`src/join.rs`).
//!
//! Each group also measures `sequential`, the plain recursion on the
//! measuring thread; the report gives the speedup over it. A pool of W
//! threads: corepool and rayon run W workers while the measuring thread
//! waits in `install`; chili runs W − 1 workers and the measuring thread
//! (its `Scope` lives on the thread that creates it).
//!
//! Run: `cargo bench --bench fork_join` (smoke test: `-- --test`; W from
//! `COREPOOL_BENCH_WORKERS`, default the cores available). On a loaded
//! machine, `COREPOOL_FORK_JOIN_ROUNDS=21` runs each group's rows in
//! alternating rounds instead of criterion's consecutive samples and
//! prints medians (`COREPOOL_FORK_JOIN_GROUPS=tree_sum,tree_sum_1thread`
//! picks groups).

mod common;

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Instant;

use criterion::Criterion;
use serde_json::json;

use common::crit::{configure, rounds};
use common::work;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fib_seq(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib_seq(n - 1) + fib_seq(n - 2)
    }
}

fn fib_corepool(n: u64, cutoff: u64) -> u64 {
    if n < cutoff.max(2) {
        return fib_seq(n);
    }
    let (a, b) = corepool::join(
        || fib_corepool(n - 1, cutoff),
        || fib_corepool(n - 2, cutoff),
    );
    a + b
}

fn fib_corepool_ctx(n: u64, cutoff: u64, ctx: &mut corepool::JoinContext<'_>) -> u64 {
    if n < cutoff.max(2) {
        return fib_seq(n);
    }
    let (a, b) = ctx.join(
        |ctx| fib_corepool_ctx(n - 1, cutoff, ctx),
        |ctx| fib_corepool_ctx(n - 2, cutoff, ctx),
    );
    a + b
}

fn fib_rayon(n: u64, cutoff: u64) -> u64 {
    if n < cutoff.max(2) {
        return fib_seq(n);
    }
    let (a, b) = rayon::join(|| fib_rayon(n - 1, cutoff), || fib_rayon(n - 2, cutoff));
    a + b
}

/// A chain of `n` joins: the first closure recurses, the second spins
/// `leaf` iterations.
fn chain_seq(n: u32, leaf: u64) -> u64 {
    (0..n).fold(0, |acc, _| acc.wrapping_add(work::spin(leaf)))
}

fn chain_corepool(n: u32, leaf: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let (a, b) = corepool::join(|| chain_corepool(n - 1, leaf), || work::spin(leaf));
    a.wrapping_add(b)
}

fn chain_rayon(n: u32, leaf: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let (a, b) = rayon::join(|| chain_rayon(n - 1, leaf), || work::spin(leaf));
    a.wrapping_add(b)
}

/// A heap-allocated binary tree node.
struct Node {
    value: i64,
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

/// A balanced tree of `2^depth − 1` nodes.
fn build(depth: u32, next: &mut i64) -> Option<Box<Node>> {
    if depth == 0 {
        return None;
    }
    let left = build(depth - 1, next);
    *next += 1;
    let value = *next;
    let right = build(depth - 1, next);
    Some(Box::new(Node { value, left, right }))
}

fn sum_seq(node: &Option<Box<Node>>) -> i64 {
    match node {
        None => 0,
        Some(n) => {
            let r = sum_seq(&n.right);
            let l = sum_seq(&n.left);
            n.value + l + r
        }
    }
}

fn sum_corepool(node: &Option<Box<Node>>) -> i64 {
    match node {
        None => 0,
        Some(n) => {
            let (r, l) = corepool::join(|| sum_corepool(&n.right), || sum_corepool(&n.left));
            n.value + l + r
        }
    }
}

fn sum_corepool_ctx(node: &Option<Box<Node>>, ctx: &mut corepool::JoinContext<'_>) -> i64 {
    match node {
        None => 0,
        Some(n) => {
            let (r, l) = ctx.join(
                |ctx| sum_corepool_ctx(&n.right, ctx),
                |ctx| sum_corepool_ctx(&n.left, ctx),
            );
            n.value + l + r
        }
    }
}

/// `sum_corepool_ctx` from the pool's worker: the root's join is
/// `join_context`, which hands each side its context.
fn sum_corepool_ctx_root(tree: &Option<Box<Node>>) -> i64 {
    match tree {
        None => 0,
        Some(n) => {
            let (r, l) = corepool::join_context(
                |ctx| sum_corepool_ctx(&n.right, ctx),
                |ctx| sum_corepool_ctx(&n.left, ctx),
            );
            n.value + l + r
        }
    }
}

fn sum_chili(node: &Option<Box<Node>>, scope: &mut chili::Scope<'_>) -> i64 {
    match node {
        None => 0,
        Some(n) => {
            let (l, r) = scope.join(|s| sum_chili(&n.left, s), |s| sum_chili(&n.right, s));
            n.value + l + r
        }
    }
}

fn sum_rayon(node: &Option<Box<Node>>) -> i64 {
    match node {
        None => 0,
        Some(n) => {
            let (r, l) = rayon::join(|| sum_rayon(&n.right), || sum_rayon(&n.left));
            n.value + l + r
        }
    }
}

/// One criterion group: each row runs the workload once and checks its
/// result; a round's time is that call's. `sequential` (the plain
/// recursion on the measuring thread) comes first by convention, so the
/// report can give each row's speedup over it.
fn bench_rows(c: &mut Criterion, group_name: &str, elements: usize, rows: &[(&str, &dyn Fn())]) {
    if let Some(alternate) = alternate_rounds() {
        if alternate.runs(group_name) {
            alternate_rows(group_name, alternate.rounds, rows);
        }
        return;
    }
    let mut group = c.benchmark_group(group_name);
    configure(&mut group, elements);
    for (id, run) in rows {
        group.bench_function(*id, |b| {
            b.iter_custom(|iters| {
                rounds(iters, || {
                    let start = Instant::now();
                    run();
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

/// The alternating mode: `COREPOOL_FORK_JOIN_ROUNDS=N` replaces criterion
/// with N rounds per group, each running every row once in turn, so that
/// a burst of load from elsewhere on the machine hits every row alike;
/// `COREPOOL_FORK_JOIN_GROUPS` (comma-separated group names) limits it to
/// those groups.
struct Alternate {
    rounds: usize,
    groups: Option<Vec<String>>,
}

impl Alternate {
    fn runs(&self, group_name: &str) -> bool {
        self.groups
            .as_ref()
            .is_none_or(|groups| groups.iter().any(|g| g == group_name))
    }
}

fn alternate_rounds() -> Option<Alternate> {
    let rounds = std::env::var("COREPOOL_FORK_JOIN_ROUNDS")
        .ok()?
        .parse()
        .ok()
        .filter(|&r| r > 0)?;
    let groups = std::env::var("COREPOOL_FORK_JOIN_GROUPS")
        .ok()
        .map(|g| g.split(',').map(str::to_owned).collect());
    Some(Alternate { rounds, groups })
}

/// One group in the alternating mode: a warm-up round, then `rounds`
/// rounds of every row in turn; prints each row's median, min and max in
/// milliseconds.
fn alternate_rows(group_name: &str, rounds: usize, rows: &[(&str, &dyn Fn())]) {
    let mut times = vec![Vec::with_capacity(rounds); rows.len()];
    for round in 0..=rounds {
        for ((_, run), times) in rows.iter().zip(&mut times) {
            let start = Instant::now();
            run();
            if round > 0 {
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    for ((id, _), times) in rows.iter().zip(&mut times) {
        times.sort_by(f64::total_cmp);
        println!(
            "{group_name}/{id}: median {:.2} ms (min {:.2}, max {:.2}; {rounds} alternating rounds)",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
        );
    }
}

/// A chili pool of `threads` threads in all: `threads − 1` workers and the
/// thread that opens a scope on it.
fn chili_pool(threads: usize) -> chili::ThreadPool {
    chili::ThreadPool::with_config(chili::Config {
        thread_count: NonZeroUsize::new(threads),
        ..chili::Config::default()
    })
}

fn main() {
    let quick = common::init_quick_mode();
    let workers = common::workers();
    let fib_n: u64 = common::size(32, 20) as u64;
    let cutoff: u64 = 12;
    let depth: u32 = common::size(22, 10) as u32;
    eprintln!("fork_join: {workers} workers, fib({fib_n}), tree depth {depth}, quick = {quick}");
    let expected_fib = fib_seq(fib_n);
    let mut next = 0;
    let tree = build(depth, &mut next);
    let expected_sum = sum_seq(&tree);
    let tree_nodes = (1usize << depth) - 1;

    let corepool = corepool::Pool::builder()
        .workers(workers)
        .build()
        .expect("build corepool");
    let rayon = common::runtimes::Rayon::new(workers);
    let rayon = rayon.pool();

    let mut c = Criterion::default().configure_from_args();
    for (group_name, cut) in [("fib_join", cutoff), ("fib_join_fine", 2)] {
        bench_rows(
            &mut c,
            group_name,
            1,
            &[
                ("sequential", &|| {
                    assert_eq!(black_box(fib_seq(black_box(fib_n))), expected_fib)
                }),
                ("corepool", &|| {
                    let r = corepool.install(|| fib_corepool(black_box(fib_n), cut));
                    assert_eq!(r, expected_fib);
                }),
                ("corepool_ctx", &|| {
                    let n = black_box(fib_n);
                    let r = corepool.install(|| {
                        let (a, b) = corepool::join_context(
                            |ctx| fib_corepool_ctx(n - 1, cut, ctx),
                            |ctx| fib_corepool_ctx(n - 2, cut, ctx),
                        );
                        a + b
                    });
                    assert_eq!(r, expected_fib);
                }),
                ("rayon", &|| {
                    let r = rayon.install(|| fib_rayon(black_box(fib_n), cut));
                    assert_eq!(r, expected_fib);
                }),
            ],
        );
    }

    // The tree sum on W threads, then on one thread per pool. Each chili
    // pool lives only for its group, so that no extra pool's threads
    // stand beside the others' measurements.
    let seq_sum = || assert_eq!(black_box(sum_seq(black_box(&tree))), expected_sum);
    {
        let chili = chili_pool(workers);
        bench_rows(
            &mut c,
            "tree_sum",
            tree_nodes,
            &[
                ("sequential", &seq_sum),
                ("corepool", &|| {
                    assert_eq!(corepool.install(|| sum_corepool(&tree)), expected_sum)
                }),
                ("corepool_ctx", &|| {
                    assert_eq!(
                        corepool.install(|| sum_corepool_ctx_root(&tree)),
                        expected_sum
                    )
                }),
                ("rayon", &|| {
                    assert_eq!(rayon.install(|| sum_rayon(&tree)), expected_sum)
                }),
                ("chili", &|| {
                    assert_eq!(sum_chili(&tree, &mut chili.scope()), expected_sum)
                }),
            ],
        );
    }
    {
        let corepool1 = corepool::Pool::builder()
            .workers(1)
            .build()
            .expect("build corepool");
        let rayon1 = common::runtimes::Rayon::new(1);
        let rayon1 = rayon1.pool();
        let chili1 = chili_pool(1);
        bench_rows(
            &mut c,
            "tree_sum_1thread",
            tree_nodes,
            &[
                ("sequential", &seq_sum),
                ("corepool", &|| {
                    assert_eq!(corepool1.install(|| sum_corepool(&tree)), expected_sum)
                }),
                ("corepool_ctx", &|| {
                    assert_eq!(
                        corepool1.install(|| sum_corepool_ctx_root(&tree)),
                        expected_sum
                    )
                }),
                ("rayon", &|| {
                    assert_eq!(rayon1.install(|| sum_rayon(&tree)), expected_sum)
                }),
                ("chili", &|| {
                    assert_eq!(sum_chili(&tree, &mut chili1.scope()), expected_sum)
                }),
            ],
        );
    }

    let links = common::size(1_000, 100) as u32;
    let leaf = work::iters_for_ns(10_000.0);
    let expected_chain = chain_seq(links, leaf);
    bench_rows(
        &mut c,
        "join_chain",
        links as usize,
        &[
            ("sequential", &|| {
                assert_eq!(black_box(chain_seq(black_box(links), leaf)), expected_chain)
            }),
            ("corepool", &|| {
                let r = corepool.install(|| chain_corepool(black_box(links), leaf));
                assert_eq!(r, expected_chain);
            }),
            ("rayon", &|| {
                let r = rayon.install(|| chain_rayon(black_box(links), leaf));
                assert_eq!(r, expected_chain);
            }),
        ],
    );
    c.final_summary();
    common::output::write_json(
        "fork_join-meta",
        &json!({
            "machine": common::process::machine(),
            "fib_n": fib_n,
            "fib_cutoff": cutoff,
            "tree_nodes": tree_nodes,
            "chain_links": links,
            "chain_leaf_iters": leaf,
        }),
    );
}
