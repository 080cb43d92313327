//! Shutdown: dropping the pool (or `shutdown()`) stops accepting work from
//! outside, hands every later closure back, and still runs everything that
//! was accepted, including what running tasks spawn while it drains.

mod core_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use core_support::{hold_workers, Gate, Watchdog, WATCHDOG};
use corepool::{Handle, Pool, SubmitError};

fn flag_task(flag: &Arc<AtomicBool>) -> impl FnOnce() + Send + 'static {
    let flag = flag.clone();
    move || flag.store(true, Ordering::SeqCst)
}

/// Every kind of submission through `handle` is refused as `Shutdown`, and
/// each refused closure comes back intact (calling it sets its flag).
fn assert_refuses_with_closure_back(handle: &Handle) {
    let flag = Arc::new(AtomicBool::new(false));
    match handle.submit(flag_task(&flag)) {
        Err(err) => err.into_inner()(),
        Ok(()) => panic!("submit accepted after shutdown"),
    }
    assert!(
        flag.swap(false, Ordering::SeqCst),
        "submit handed back our closure"
    );
    let err = handle.submit(|| {}).unwrap_err();
    assert!(err.to_string().contains("shutting down"), "{err}");

    match handle.try_submit(flag_task(&flag)) {
        Err(err) if err.is_shutdown() => err.into_inner()(),
        other => panic!("try_submit after shutdown: {other:?}"),
    }
    assert!(
        flag.swap(false, Ordering::SeqCst),
        "try_submit handed back our closure"
    );
    let err = handle.try_submit(|| {}).unwrap_err();
    assert!(err.is_shutdown() && !err.is_full());
    assert!(err.to_string().contains("shutting down"), "{err}");

    // Even a long timeout is refused at once, not waited out.
    match handle.submit_timeout(flag_task(&flag), WATCHDOG * 10) {
        Err(err) if err.is_shutdown() => err.into_inner()(),
        other => panic!("submit_timeout after shutdown: {other:?}"),
    }
    assert!(
        flag.swap(false, Ordering::SeqCst),
        "submit_timeout handed back our closure"
    );
    let err = handle.submit_timeout(|| {}, Duration::ZERO).unwrap_err();
    assert!(err.is_shutdown() && !err.is_timeout());
    assert!(err.to_string().contains("shutting down"), "{err}");
}

#[test]
fn dropping_the_pool_drains_every_accepted_task() {
    const WORKERS: usize = 2;
    const QUEUED: usize = 50;
    let _watchdog = Watchdog::new("dropping_the_pool_drains_every_accepted_task");
    let pool = Pool::builder()
        .workers(WORKERS)
        .queue_capacity(QUEUED)
        .build()
        .unwrap();
    let handle = pool.handle();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    // Workers held on the gate with QUEUED tasks behind them, each of which
    // also waits on the gate and then spawns a child from inside the pool.
    hold_workers(&pool, &gate);
    let ran = Arc::new(AtomicUsize::new(0));
    let children_ran = Arc::new(AtomicUsize::new(0));
    let children_refused = Arc::new(AtomicUsize::new(0));
    for _ in 0..QUEUED {
        let (ran, children_ran, refused) =
            (ran.clone(), children_ran.clone(), children_refused.clone());
        let (gate, inner) = (gate.clone(), handle.clone());
        pool.try_submit(move || {
            gate.wait();
            ran.fetch_add(1, Ordering::SeqCst);
            // Submitted while the pool drains, from inside: still accepted.
            let child = move || {
                children_ran.fetch_add(1, Ordering::SeqCst);
            };
            if inner.submit(child).is_err() {
                refused.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    }
    assert_eq!(pool.queued(), QUEUED);
    assert!(!handle.is_shutdown());

    let (dropped_tx, dropped) = mpsc::channel();
    let dropper = thread::spawn(move || {
        drop(pool);
        dropped_tx.send(()).unwrap();
    });
    // Shutdown has begun once the handle says so; the drop is then waiting
    // for the held tasks.
    while !handle.is_shutdown() {
        thread::yield_now();
    }
    assert_refuses_with_closure_back(&handle);
    assert_eq!(
        dropped.recv_timeout(Duration::from_millis(200)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "the drop returned while accepted tasks were still held"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);

    gate.open();
    dropper.join().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), QUEUED);
    assert_eq!(children_refused.load(Ordering::SeqCst), 0);
    assert_eq!(children_ran.load(Ordering::SeqCst), QUEUED);
    assert_eq!(handle.queued(), 0);
    // The pool is gone; the handle still refuses cleanly.
    assert_refuses_with_closure_back(&handle);
}

#[test]
fn explicit_shutdown_drains_and_then_refuses() {
    const TASKS: usize = 1_000;
    let _watchdog = Watchdog::new("explicit_shutdown_drains_and_then_refuses");
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity(16)
        .build()
        .unwrap();
    let handle = pool.handle();
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..TASKS {
        let ran = ran.clone();
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    pool.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), TASKS);
    assert!(handle.is_shutdown());
    assert_refuses_with_closure_back(&handle);
}

#[test]
fn shutdown_wakes_a_producer_blocked_on_a_full_pool() {
    let _watchdog = Watchdog::new("shutdown_wakes_a_producer_blocked_on_a_full_pool");
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    let queued_ran = Arc::new(AtomicBool::new(false));
    pool.try_submit(flag_task(&queued_ran)).unwrap();

    // Two producers block on the full pool, one without and one with a limit.
    let (outcome_tx, outcome) = mpsc::channel();
    let blocked_ran = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let handle = pool.handle();
            let outcome_tx = outcome_tx.clone();
            let blocked_ran = blocked_ran.clone();
            thread::spawn(move || {
                let task = move || {
                    blocked_ran.fetch_add(1, Ordering::SeqCst);
                };
                let refused_with_closure = if p == 0 {
                    handle.submit(task).map_err(SubmitError::into_inner)
                } else {
                    match handle.submit_timeout(task, WATCHDOG * 10) {
                        Err(err) if err.is_shutdown() => Err(err.into_inner()),
                        Err(_) => panic!("timed out"),
                        Ok(()) => Ok(()),
                    }
                };
                outcome_tx.send(refused_with_closure.is_err()).unwrap();
            })
        })
        .collect();
    assert_eq!(
        outcome.recv_timeout(Duration::from_millis(200)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "a producer got into a full pool"
    );

    // Shut down while the pool is still full and held: both producers must
    // wake up refused (the queue never gets room before the close).
    let handle = pool.handle();
    let dropper = thread::spawn(move || drop(pool));
    for _ in 0..2 {
        assert_eq!(
            outcome.recv_timeout(WATCHDOG),
            Ok(true),
            "a blocked producer is refused by the shutdown"
        );
    }
    assert!(handle.is_shutdown());
    gate.open();
    dropper.join().unwrap();
    for producer in producers {
        producer.join().unwrap();
    }
    assert!(
        queued_ran.load(Ordering::SeqCst),
        "the accepted task was drained"
    );
    assert_eq!(blocked_ran.load(Ordering::SeqCst), 0);
}

#[test]
fn a_task_may_drop_its_own_pool() {
    const TASKS: usize = 100;
    let _watchdog = Watchdog::new("a_task_may_drop_its_own_pool");
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity(8)
        .build()
        .unwrap();
    let handle = pool.handle();
    let ran = Arc::new(AtomicUsize::new(0));
    let (done_tx, done) = mpsc::channel();
    for _ in 0..TASKS {
        let (ran, done_tx) = (ran.clone(), done_tx.clone());
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
            done_tx.send(()).unwrap();
        })
        .unwrap();
    }
    let (dropped_tx, dropped) = mpsc::channel();
    handle
        .submit(move || {
            // Shutting the pool down from one of its own workers must not
            // wait on itself.
            drop(pool);
            dropped_tx.send(()).unwrap();
        })
        .unwrap();
    dropped
        .recv_timeout(WATCHDOG)
        .expect("a task dropping its own pool returns");
    for _ in 0..TASKS {
        done.recv_timeout(WATCHDOG)
            .expect("every accepted task ran");
    }
    assert_eq!(ran.load(Ordering::SeqCst), TASKS);
    assert!(handle.is_shutdown());
    assert_refuses_with_closure_back(&handle);
}

#[test]
fn tasks_accepted_while_the_pool_is_dropped_all_run() {
    // Producers race the drop: a task whose submission returned `Ok` must
    // run, even when shutdown began between taking its slot and queueing it.
    const ROUNDS: usize = 1_000;
    const PRODUCERS: usize = 3;
    let _watchdog = Watchdog::new("tasks_accepted_while_the_pool_is_dropped_all_run");
    for round in 0..ROUNDS {
        let pool = Pool::builder()
            .workers(2)
            .queue_capacity(8)
            .build()
            .unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(std::sync::Barrier::new(PRODUCERS + 1));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (handle, ran, started) = (pool.handle(), ran.clone(), started.clone());
                thread::spawn(move || {
                    let mut accepted = 0usize;
                    let mut announced = false;
                    for i in 0.. {
                        let ran = ran.clone();
                        let task = move || {
                            ran.fetch_add(1, Ordering::SeqCst);
                        };
                        let ok = match (p + i) % 3 {
                            0 => handle.submit(task).is_ok(),
                            1 => match handle.try_submit(task) {
                                Ok(()) => true,
                                Err(e) if e.is_full() => continue,
                                Err(_) => false,
                            },
                            _ => match handle.submit_timeout(task, Duration::ZERO) {
                                Ok(()) => true,
                                Err(e) if e.is_timeout() => continue,
                                Err(_) => false,
                            },
                        };
                        if !announced {
                            announced = true;
                            started.wait();
                        }
                        if !ok {
                            break;
                        }
                        accepted += 1;
                    }
                    accepted
                })
            })
            .collect();
        started.wait(); // every producer is submitting
        drop(pool);
        let accepted: usize = producers.into_iter().map(|p| p.join().unwrap()).sum();
        assert_eq!(
            ran.load(Ordering::SeqCst),
            accepted,
            "round {round}: accepted tasks lost (or extra runs) across the drop"
        );
    }
}
