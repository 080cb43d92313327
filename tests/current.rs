//! `corepool::submit` and `corepool::spawn`: submitting from a running
//! task to its own pool without a `Handle` (and, off a worker, to the
//! global pool).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use corepool::Pool;
use support::{Watchdog, WATCHDOG};

#[test]
fn outside_a_worker_the_global_pool_runs_it() {
    let _watchdog = Watchdog::new("outside_a_worker_the_global_pool_runs_it");
    let (tx, rx) = mpsc::channel();
    corepool::submit(move || tx.send(corepool::current_thread_index()).unwrap());
    let index = rx.recv_timeout(WATCHDOG).unwrap();
    assert!(index.is_some(), "ran on a worker of the global pool");

    let handle = corepool::spawn(|| (7, corepool::current_thread_index()));
    let (value, index) = handle.join().unwrap();
    assert_eq!(value, 7);
    assert!(index.is_some(), "ran on a worker of the global pool");
}

#[test]
fn children_bypass_the_bound_and_all_run() {
    let _watchdog = Watchdog::new("children_bypass_the_bound_and_all_run");
    // One worker and one slot: if the children went through the bound, the
    // parent would block on its second child forever (the only worker is
    // busy running the parent).
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    pool.submit(move || {
        for i in 0..100 {
            let tx = tx.clone();
            corepool::submit(move || tx.send(i).unwrap());
        }
    })
    .unwrap();
    let mut got: Vec<i32> = (0..100)
        .map(|_| rx.recv_timeout(WATCHDOG).unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert_eq!(pool.metrics().rejected_full, 0);
}

#[test]
fn children_run_on_the_submitting_pool() {
    let _watchdog = Watchdog::new("children_run_on_the_submitting_pool");
    let a = Pool::builder()
        .workers(1)
        .thread_name("pool-a")
        .build()
        .unwrap();
    let _b = Pool::builder()
        .workers(1)
        .thread_name("pool-b")
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    a.submit(move || {
        corepool::submit(move || {
            let name = std::thread::current().name().map(str::to_owned);
            tx.send(name).unwrap();
        });
    })
    .unwrap();
    let name = rx.recv_timeout(WATCHDOG).unwrap().unwrap_or_default();
    assert!(name.starts_with("pool-a"), "child ran on {name:?}");
}

#[test]
fn spawned_children_deliver_results_and_panics() {
    let _watchdog = Watchdog::new("spawned_children_deliver_results_and_panics");
    let pool = Pool::builder().workers(2).build().unwrap();
    let outer = pool
        .spawn(|| {
            let ok = corepool::spawn(|| 40 + 2);
            let bad = corepool::spawn(|| -> u32 { panic!("child panics") });
            (ok.join(), bad.join())
        })
        .unwrap();
    let (ok, bad) = outer.join().unwrap();
    assert_eq!(ok.unwrap(), 42);
    assert!(bad.unwrap_err().is_panic());
}

#[test]
fn accepted_while_the_pool_drains() {
    let _watchdog = Watchdog::new("accepted_while_the_pool_drains");
    let pool = Pool::builder().workers(1).build().unwrap();
    let handle = pool.handle();
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    pool.submit(move || {
        started_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        // The pool is closed by now: a `Handle` from outside is refused,
        // but a child of a running task is accepted and drained.
        corepool::submit(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
    })
    .unwrap();
    started_rx.recv_timeout(WATCHDOG).unwrap();
    let closer = std::thread::spawn(move || pool.shutdown());
    // Wait until the close is visible before letting the task go on.
    while !handle.is_shutdown() {
        std::thread::yield_now();
    }
    assert!(handle.submit(|| {}).is_err());
    go_tx.send(()).unwrap();
    let report = closer.join().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(report.executed, 2);
}
