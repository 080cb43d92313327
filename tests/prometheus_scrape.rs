//! Scraping a pool's Prometheus registry while a producer keeps it busy
//! (feature `prometheus`; run with `cargo test --features prometheus`).
#![cfg(feature = "prometheus")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use corepool::prometheus::prometheus_client::encoding::{prometheus_text, text};
use corepool::prometheus::prometheus_client::registry::Registry;
use corepool::Pool;

/// Every series name the collector exports (with the default prefix).
const SAMPLE_NAMES: &[&str] = &[
    "corepool_accepted_total",
    "corepool_rejected_full_total",
    "corepool_rejected_budget_total",
    "corepool_rejected_shutdown_total",
    "corepool_timed_out_total",
    "corepool_handed_back_total",
    "corepool_executed_total",
    "corepool_stolen_total",
    "corepool_steal_attempts_total",
    "corepool_panicked_total",
    "corepool_workers",
    "corepool_max_workers",
    "corepool_queue_depth",
    "corepool_queue_capacity",
    "corepool_queue_fill_ratio",
    "corepool_in_flight",
    "corepool_queue_wait_seconds_bucket",
    "corepool_queue_wait_seconds_sum",
    "corepool_queue_wait_seconds_count",
    "corepool_worker_executed_total",
    "corepool_worker_stolen_total",
    "corepool_worker_parks_total",
    "corepool_worker_busy_seconds_total",
    "corepool_worker_active",
    "corepool_worker_local_queue_depth",
];

fn scrape(registry: &Registry) -> String {
    let mut out = String::new();
    text::encode(&mut out, registry).expect("encoding into a String cannot fail");
    out
}

/// The value of the series `name` (exactly, labels included).
fn value(scrape: &str, series: &str) -> f64 {
    let found = scrape.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse::<f64>().ok())?
    });
    found.unwrap_or_else(|| panic!("no sample {series} in:\n{scrape}"))
}

fn has_sample(scrape: &str, name: &str) -> bool {
    scrape.lines().any(|line| {
        line.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
    })
}

#[test]
fn counters_move_between_scrapes_under_load() {
    const WORKERS: usize = 2;
    const MARKED: u64 = 200;

    let pool = Pool::builder()
        .workers(WORKERS)
        .pin_workers(false)
        .queue_capacity(64)
        .track_latency(true)
        .build()
        .expect("build");
    let mut registry = Registry::default();
    corepool::prometheus::register(&mut registry, pool.handle());

    // Background load: a producer submitting small tasks until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let (warm_tx, warm_rx) = mpsc::channel();
    let producer = {
        let handle = pool.handle();
        let stop = stop.clone();
        thread::spawn(move || {
            let mut submitted = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let work = || {
                    std::hint::black_box((0..100u64).sum::<u64>());
                };
                if handle.submit(work).is_err() {
                    break;
                }
                submitted += 1;
                if submitted == 100 {
                    warm_tx.send(()).expect("test is waiting");
                }
            }
            submitted
        })
    };
    warm_rx.recv().expect("producer started");

    let first = scrape(&registry);
    for name in SAMPLE_NAMES {
        assert!(has_sample(&first, name), "{name} missing from:\n{first}");
    }
    assert!(first.contains("# TYPE corepool_executed counter\n"));
    assert!(first.contains("# TYPE corepool_queue_wait_seconds histogram\n"));
    assert!(first.contains("# UNIT corepool_queue_wait_seconds seconds\n"));
    assert!(first.contains("corepool_worker_executed_total{worker=\"1\"}"));
    assert!(first.ends_with("# EOF\n"));
    assert_eq!(value(&first, "corepool_workers"), WORKERS as f64);
    assert_eq!(value(&first, "corepool_queue_capacity"), 64.0);

    // Between the scrapes, MARKED tasks of ours run among the producer's;
    // each reports from its body, so once all have reported they all ran.
    let (done_tx, done_rx) = mpsc::channel();
    for _ in 0..MARKED {
        let done_tx = done_tx.clone();
        pool.submit(move || done_tx.send(()).expect("test is waiting"))
            .expect("pool is running");
    }
    for _ in 0..MARKED {
        done_rx.recv().expect("marked task ran");
    }

    let second = scrape(&registry);
    // A worker counts a task as executed just after running it, so the last
    // marked task of each worker may be uncounted yet; every earlier one is
    // (the worker's next task reported after it). Queue waits are recorded
    // before the task runs, so all MARKED are in.
    let executed = |s: &str| value(s, "corepool_executed_total");
    assert!(
        executed(&second) >= executed(&first) + (MARKED - WORKERS as u64) as f64,
        "executed {} -> {}",
        executed(&first),
        executed(&second)
    );
    let waits = |s: &str| value(s, "corepool_queue_wait_seconds_count");
    assert!(waits(&second) >= waits(&first) + MARKED as f64);
    // `accepted` is derived from two counters read one after the other, so
    // it is only approximately current; the collector keeps it monotonic.
    let accepted = |s: &str| value(s, "corepool_accepted_total");
    assert!(accepted(&second) >= accepted(&first));
    let per_worker: f64 = (0..WORKERS)
        .map(|w| {
            value(
                &second,
                &format!("corepool_worker_executed_total{{worker=\"{w}\"}}"),
            )
        })
        .sum();
    assert!(per_worker >= executed(&first) + (MARKED - WORKERS as u64) as f64);

    // Once the pool is gone, the collector exports the final counts.
    stop.store(true, Ordering::Relaxed);
    let produced = producer.join().expect("producer");
    let handle = pool.handle();
    drop(pool);
    let last = scrape(&registry);
    let total = (produced + MARKED) as f64;
    assert_eq!(executed(&last), total);
    assert!(accepted(&last) >= total);
    let mut fresh = Registry::default();
    corepool::prometheus::register(&mut fresh, handle);
    assert_eq!(accepted(&scrape(&fresh)), total);
    assert_eq!(waits(&last), total);
    assert_eq!(
        value(&last, "corepool_queue_wait_seconds_bucket{le=\"+Inf\"}"),
        total
    );
    assert_eq!(value(&last, "corepool_queue_depth"), 0.0);
    assert_eq!(value(&last, "corepool_in_flight"), 0.0);
}

#[test]
fn classic_text_format_names_counters_with_total() {
    let pool = Pool::builder()
        .workers(1)
        .pin_workers(false)
        .build()
        .expect("build");
    let mut registry = Registry::default();
    corepool::prometheus::register(&mut registry, pool.handle());
    let mut out = String::new();
    prometheus_text::encode(&mut out, &registry).expect("encode");
    assert!(
        out.contains("# TYPE corepool_executed_total counter\n"),
        "{out}"
    );
    assert!(out.contains("# TYPE corepool_queue_wait_seconds histogram\n"));
    assert!(!out.contains("# EOF"));
    for name in SAMPLE_NAMES {
        assert!(has_sample(&out, name), "{name} missing from:\n{out}");
    }
}

#[test]
fn every_worker_slot_is_exported() {
    let pool = Pool::builder()
        .workers(1)
        .max_workers(3)
        .pin_workers(false)
        .build()
        .expect("build");
    let mut registry = Registry::default();
    corepool::prometheus::register_with(&mut registry, pool.handle(), "svc", &[("pool", "io")])
        .expect("valid names");
    let out = scrape(&registry);
    assert_eq!(value(&out, "svc_max_workers{pool=\"io\"}"), 3.0);
    assert_eq!(value(&out, "svc_workers{pool=\"io\"}"), 1.0);
    assert_eq!(
        value(&out, "svc_worker_active{pool=\"io\",worker=\"0\"}"),
        1.0
    );
    assert_eq!(
        value(&out, "svc_worker_active{pool=\"io\",worker=\"2\"}"),
        0.0
    );
    pool.set_workers(3).expect("within max_workers");
    let out = scrape(&registry);
    assert_eq!(value(&out, "svc_workers{pool=\"io\"}"), 3.0);
    assert_eq!(
        value(&out, "svc_worker_active{pool=\"io\",worker=\"2\"}"),
        1.0
    );
}
