//! Work spawned inside one worker reaches the others: children pushed onto
//! one worker's own deque are stolen and run by the rest of the pool.
//!
//! Each child waits on a barrier sized to the worker count, so a round of
//! children can only complete with one child on every worker at once: the
//! test cannot pass unless the idle workers were woken and stole. If they
//! are not, it hangs, and the watchdog turns the hang into a failure.

mod support;

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::{mpsc, Arc, Barrier};

use corepool::Pool;
use support::{visit_every_worker, Watchdog, WATCHDOG};

fn little_work(seed: u64) -> u64 {
    (0..1_000u64).fold(seed, |acc, x| {
        black_box(acc.wrapping_mul(31).wrapping_add(x))
    })
}

fn children_spread_over_every_worker(workers: usize, children: usize, pin: bool) {
    assert_eq!(children % workers, 0, "whole barrier rounds only");
    let pool = Pool::builder()
        .workers(workers)
        .pin_workers(pin)
        .queue_capacity(4)
        .build()
        .unwrap();
    let worker_threads: HashSet<_> = visit_every_worker(&pool).into_values().collect();

    let (ran_on_tx, ran_on) = mpsc::channel();
    let (outer_tx, outer) = mpsc::channel();
    let handle = pool.handle();
    pool.submit(move || {
        let round = Arc::new(Barrier::new(workers));
        for child in 0..children {
            let (round, ran_on_tx) = (round.clone(), ran_on_tx.clone());
            handle
                .submit(move || {
                    black_box(little_work(child as u64));
                    ran_on_tx.send(std::thread::current().id()).unwrap();
                    round.wait();
                })
                .expect("a submission from inside the pool is accepted");
        }
        outer_tx.send(std::thread::current().id()).unwrap();
    })
    .unwrap();

    let outer_thread = outer.recv_timeout(WATCHDOG).expect("the outer task ran");
    let mut threads = HashSet::new();
    for _ in 0..children {
        let id = ran_on
            .recv_timeout(WATCHDOG)
            .expect("every child ran: the other workers stole the children");
        threads.insert(id);
    }
    drop(pool);
    assert!(worker_threads.contains(&outer_thread));
    assert!(
        threads.is_subset(&worker_threads),
        "children ran on the pool's workers"
    );
    assert_eq!(threads.len(), workers, "children ran on every worker");
}

#[test]
fn children_of_one_worker_are_stolen_by_the_other() {
    let _watchdog = Watchdog::new("children_of_one_worker_are_stolen_by_the_other");
    children_spread_over_every_worker(2, 200, true);
}

#[test]
fn children_reach_every_worker_when_oversubscribed() {
    // More workers than the machine's cores: each idle worker must be woken
    // in turn (the last searcher hands the wake-up on) for a round of four
    // to complete.
    let _watchdog = Watchdog::new("children_reach_every_worker_when_oversubscribed");
    children_spread_over_every_worker(4, 200, false);
}

#[test]
fn repeated_spawn_bursts_wake_the_idle_workers_every_time() {
    // The pool goes idle (workers park) between bursts; each burst must
    // wake them again.
    let _watchdog = Watchdog::new("repeated_spawn_bursts_wake_the_idle_workers_every_time");
    for _ in 0..50 {
        children_spread_over_every_worker(2, 4, true);
    }
}

#[test]
fn workers_park_once_a_stream_from_outside_ends() {
    // A worker that has been catching a stream of tasks from outside
    // searches for a while longer before it parks (`STREAM_WINDOW` in
    // worker.rs). Once the stream ends, every worker must still park: if
    // one kept searching, `idle_workers` would never reach the worker
    // count and the watchdog would fail the test.
    let _watchdog = Watchdog::new("workers_park_once_a_stream_from_outside_ends");
    const WORKERS: usize = 2;
    let pool = Pool::builder()
        .workers(WORKERS)
        .build()
        .expect("build the pool");
    let (done_tx, done_rx) = mpsc::channel();
    // One task at a time, each submitted as soon as the last one ran: a
    // steady stream that the idle workers catch while searching.
    for i in 0..2_000u64 {
        let done_tx = done_tx.clone();
        pool.submit(move || done_tx.send(little_work(i)).expect("send"))
            .expect("submit");
        done_rx.recv().expect("the task ran");
    }
    let parked = loop {
        let metrics = pool.metrics();
        if metrics.idle_workers == WORKERS {
            break metrics;
        }
        std::thread::yield_now();
    };
    assert_eq!(parked.searching_workers, 0);
    assert_eq!(parked.executed, 2_000);
}
