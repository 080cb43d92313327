//! Permits: a reserved slot of the bound. It holds its slot (the bound
//! refuses others while permits fill it, at the default capacity too),
//! frees it when dropped unused (waking a blocked producer), is honoured
//! across a graceful shutdown, and after `shutdown_now` drops its closure
//! unrun, counted as handed back.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use corepool::{Permit, Pool};
use support::{small_pool as pool, DropFlag, Watchdog, WATCHDOG};

#[test]
fn permits_are_send_and_static() {
    fn send_static<T: Send + 'static>() {}
    send_static::<Permit>();
}

#[test]
fn permits_fill_the_bound_and_free_it_when_dropped() {
    let _watchdog = Watchdog::new("permits_fill_the_bound_and_free_it_when_dropped");
    let pool = pool(1, 3);
    let permits: Vec<Permit> = (0..3)
        .map(|_| pool.try_reserve().expect("room for three"))
        .collect();
    let refused = pool
        .try_submit(|| {})
        .expect_err("three permits fill a capacity of 3");
    assert!(refused.is_full());
    assert!(pool.try_reserve().expect_err("full").is_full());
    assert!(pool
        .reserve_timeout(Duration::from_millis(1))
        .expect_err("full")
        .is_timeout());
    // Reserved is not queued: no task waits yet.
    assert_eq!(pool.queued(), 0);
    drop(permits);
    for _ in 0..3 {
        pool.try_reserve()
            .expect("every dropped permit freed its slot");
    }
}

#[test]
fn permits_fill_the_default_capacity() {
    let _watchdog = Watchdog::new("permits_fill_the_default_capacity");
    let pool = Pool::builder()
        .workers(2)
        .pin_workers(false)
        .build()
        .expect("build");
    assert_eq!(pool.capacity(), 2 * corepool::DEFAULT_CAPACITY_PER_WORKER);
    let permits: Vec<Permit> = (0..pool.capacity())
        .map(|_| pool.try_reserve().expect("room up to the capacity"))
        .collect();
    assert!(pool.try_submit(|| {}).expect_err("full").is_full());
    assert!(pool.try_spawn(|| 1).expect_err("full").is_full());
    let (tx, rx) = mpsc::channel();
    for permit in permits {
        let tx = tx.clone();
        permit.submit(move || tx.send(()).expect("the test waits"));
    }
    drop(tx);
    assert_eq!(rx.iter().count(), pool.capacity());
    let report = pool.shutdown();
    assert_eq!(
        report.executed,
        2 * corepool::DEFAULT_CAPACITY_PER_WORKER as u64
    );
}

#[test]
fn dropping_a_permit_wakes_a_blocked_producer() {
    let _watchdog = Watchdog::new("dropping_a_permit_wakes_a_blocked_producer");
    let pool = pool(1, 1);
    let permit = pool.reserve().expect("room");
    let handle = pool.handle();
    let (tx, rx) = mpsc::channel();
    let producer = thread::spawn(move || {
        // Blocks: the permit holds the only slot.
        let result = handle.submit(|| {});
        tx.send(result.is_ok()).expect("the test waits");
    });
    drop(permit);
    assert_eq!(
        rx.recv_timeout(WATCHDOG),
        Ok(true),
        "the producer got the slot"
    );
    producer.join().expect("the producer");
}

#[test]
fn permit_spawn_returns_the_result_and_reports_a_panic() {
    let _watchdog = Watchdog::new("permit_spawn_returns_the_result_and_reports_a_panic");
    let pool = pool(2, 4);
    let answer = pool.reserve().expect("room").spawn(|| 6 * 7);
    assert_eq!(answer.join().expect("ran"), 42);
    let awaited = futures::executor::block_on(pool.reserve().expect("room").spawn(|| "async"));
    assert_eq!(awaited.expect("ran"), "async");
    let panicked = pool
        .reserve()
        .expect("room")
        .spawn(|| -> u8 { panic!("in a permit's task") });
    assert!(panicked.join().expect_err("it panicked").is_panic());
    // The pool still works after the panic.
    assert_eq!(
        pool.reserve()
            .expect("room")
            .spawn(|| 1)
            .join()
            .expect("ran"),
        1
    );
}

#[test]
fn a_permit_is_honoured_across_graceful_shutdown() {
    let _watchdog = Watchdog::new("a_permit_is_honoured_across_graceful_shutdown");
    let pool = pool(1, 2);
    let handle = pool.handle();
    let permit = pool.reserve().expect("room");
    let (done_tx, done_rx) = mpsc::channel();
    let closer = thread::spawn(move || {
        let report = pool.shutdown();
        done_tx.send(()).expect("the test waits");
        report
    });
    // Closed to new work, yet waiting for the permit.
    while !handle.is_shutdown() {
        thread::yield_now();
    }
    assert!(handle.try_submit(|| {}).expect_err("closed").is_shutdown());
    assert!(handle.try_reserve().expect_err("closed").is_shutdown());
    assert!(
        done_rx.try_recv().is_err(),
        "shutdown must wait for the permit"
    );
    let answer = permit.spawn(|| "honoured");
    assert_eq!(answer.join().expect("ran"), "honoured");
    let report = closer.join().expect("the closer");
    assert_eq!(report.executed, 1);
    assert!(report.unstarted.is_empty());
}

#[test]
fn a_permit_dropped_after_close_lets_shutdown_finish() {
    let _watchdog = Watchdog::new("a_permit_dropped_after_close_lets_shutdown_finish");
    let pool = pool(2, 2);
    let handle = pool.handle();
    let permit = pool.reserve().expect("room");
    let closer = thread::spawn(move || pool.shutdown());
    while !handle.is_shutdown() {
        thread::yield_now();
    }
    drop(permit);
    let report = closer.join().expect("the closer");
    assert_eq!(report.executed, 0);
}

#[test]
fn after_shutdown_now_a_permit_drops_its_closure_unrun() {
    let _watchdog = Watchdog::new("after_shutdown_now_a_permit_drops_its_closure_unrun");
    let pool = pool(1, 4);
    let handle = pool.handle();
    let for_submit = pool.reserve().expect("room");
    let for_spawn = pool.reserve().expect("room");
    // shutdown_now does not wait for outstanding permits.
    let report = pool.shutdown_now();
    assert!(report.unstarted.is_empty());

    let ran = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = DropFlag(dropped.clone());
    let ran_in = ran.clone();
    for_submit.submit(move || {
        let _guard = guard;
        ran_in.store(true, Ordering::SeqCst);
    });
    assert!(dropped.load(Ordering::SeqCst), "dropped at once");
    assert!(!ran.load(Ordering::SeqCst), "never run");

    let join = for_spawn.spawn(|| 1);
    assert!(join.join().expect_err("dropped").is_cancelled());
    let metrics = handle.metrics();
    assert_eq!(metrics.handed_back, 2);
    assert_eq!(metrics.queue_depth, 0);
    assert_eq!(metrics.accepted, 2);
}

#[test]
fn shutdown_now_hands_back_a_task_submitted_through_a_permit() {
    let _watchdog = Watchdog::new("shutdown_now_hands_back_a_task_submitted_through_a_permit");
    let pool = pool(1, 4);
    let gate = support::Gate::new();
    let _open = gate.open_on_drop();
    let (started_tx, started_rx) = mpsc::channel();
    let held = gate.clone();
    pool.submit(move || {
        started_tx.send(()).expect("the test waits");
        held.wait();
    })
    .expect("room");
    started_rx
        .recv_timeout(WATCHDOG)
        .expect("the worker is busy");
    let join = pool.reserve().expect("room").spawn(|| 5);
    let opener = {
        let gate = gate.clone();
        thread::spawn(move || gate.open())
    };
    let report = pool.shutdown_now();
    opener.join().expect("the opener");
    // Either it ran before the stop, or it was handed back: never lost.
    assert_eq!(report.executed + report.unstarted.len() as u64, 2);
    drop(report);
    match join.join() {
        Ok(value) => assert_eq!(value, 5),
        Err(err) => assert!(err.is_cancelled()),
    }
}

#[test]
fn reserve_from_inside_the_pool_never_waits() {
    let _watchdog = Watchdog::new("reserve_from_inside_the_pool_never_waits");
    let pool = pool(1, 1);
    let handle = pool.handle();
    let handle_after = pool.handle();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (out_tx, out_rx) = mpsc::channel();
    pool.submit(move || {
        go_rx.recv().expect("the test says go");
        // The pool is full (a permit outside holds the only slot).
        let tried = handle.try_reserve().map(drop).map_err(|e| e.is_full());
        let permit = handle
            .reserve()
            .expect("never waits inside, never refused for full");
        let permit_async =
            futures::executor::block_on(handle.reserve_async()).expect("ready at once inside");
        let (inner_tx, inner_rx) = mpsc::channel();
        let tx = inner_tx.clone();
        permit.submit(move || tx.send(1).expect("the task waits"));
        permit_async.submit(move || inner_tx.send(2).expect("the task waits"));
        out_tx.send((tried, inner_rx)).expect("the test waits");
    })
    .expect("room");
    // The worker has started the task (it waits for go): its slot is free.
    let outside = pool.reserve().expect("room once the task started");
    go_tx.send(()).expect("the task waits");
    let (tried, inner_rx) = out_rx.recv_timeout(WATCHDOG).expect("the task finished");
    // As `try_submit` inside the pool, never refused for a full pool.
    assert_eq!(
        tried,
        Ok(()),
        "try_reserve inside takes a slot above the capacity"
    );
    let mut ran: Vec<i32> = inner_rx.iter().take(2).collect();
    ran.sort();
    assert_eq!(ran, [1, 2]);
    drop(outside);
    let report = pool.shutdown();
    assert_eq!(report.executed, 3);
    assert_eq!(handle_after.metrics().rejected_full, 0);
}

#[test]
fn wait_idle_counts_an_outstanding_permit() {
    let _watchdog = Watchdog::new("wait_idle_counts_an_outstanding_permit");
    let pool = pool(1, 2);
    let permit = pool.reserve().expect("room");
    // Work was promised: not idle while the permit is out (cannot turn
    // true however slow the machine).
    assert!(!pool.wait_idle_timeout(Duration::from_millis(1)));
    permit.submit(|| {});
    assert!(pool.wait_idle_timeout(WATCHDOG));
    let unused = pool.reserve().expect("room");
    drop(unused);
    assert!(
        pool.wait_idle_timeout(WATCHDOG),
        "a dropped permit promises nothing"
    );
}
