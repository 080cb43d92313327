//! The bound: exactly `queue_capacity` tasks accepted and not yet started;
//! what `try_submit`, `submit` and `submit_timeout` do when it is reached;
//! that a slot frees when a task starts; that tasks submitting from inside
//! their own pool never block on it, while a worker of another pool is
//! bound like anyone else.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use corepool::{Handle, Pool};
use support::{hold_workers, Gate, Watchdog, WATCHDOG};

/// How long a negative check waits for something that must NOT happen.
/// Only ever used to show that an event has not happened (yet); a slow
/// machine can make such a check pass vacuously, never fail spuriously.
const QUIET: Duration = Duration::from_millis(200);

fn counter_task(counter: &Arc<AtomicUsize>) -> impl FnOnce() + Send + 'static {
    let counter = counter.clone();
    move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

fn flag_task(flag: &Arc<AtomicBool>) -> impl FnOnce() + Send + 'static {
    let flag = flag.clone();
    move || flag.store(true, Ordering::SeqCst)
}

#[test]
fn full_pool_refuses_blocks_and_times_out() {
    const WORKERS: usize = 2;
    const CAPACITY: usize = 8;
    let _watchdog = Watchdog::new("full_pool_refuses_blocks_and_times_out");
    let pool = Pool::builder()
        .workers(WORKERS)
        .queue_capacity(CAPACITY)
        .build()
        .unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    // The gate tasks have started, so they no longer count.
    assert_eq!(pool.queued(), 0);

    let ran = Arc::new(AtomicUsize::new(0));
    for n in 0..CAPACITY {
        pool.try_submit(counter_task(&ran))
            .unwrap_or_else(|e| panic!("task {n} of {CAPACITY} refused: {e}"));
    }
    assert_eq!(pool.queued(), CAPACITY);

    // try_submit: Full, with the closure handed back intact.
    let shed = Arc::new(AtomicBool::new(false));
    match pool.try_submit(flag_task(&shed)) {
        Err(err) if err.is_full() => {
            let f = err.into_inner();
            assert!(!shed.load(Ordering::SeqCst));
            f();
            assert!(
                shed.load(Ordering::SeqCst),
                "the closure handed back is ours"
            );
        }
        other => panic!("expected Full, got {other:?}"),
    }
    let err = pool.try_submit(|| {}).unwrap_err();
    assert!(err.is_full() && !err.is_shutdown());
    assert_eq!(err.to_string(), "the pool's queue is full");

    // submit_timeout: Timeout after its deadline, closure intact.
    let timed_out = Arc::new(AtomicBool::new(false));
    match pool.submit_timeout(flag_task(&timed_out), Duration::from_millis(20)) {
        Err(err) if err.is_timeout() => {
            let f = err.into_inner();
            assert!(!timed_out.load(Ordering::SeqCst));
            f();
            assert!(timed_out.load(Ordering::SeqCst));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    match pool.submit_timeout(|| {}, Duration::ZERO) {
        Err(e) => assert!(e.is_timeout() && e.to_string().contains("timed out")),
        Ok(()) => panic!("accepted into a full pool"),
    }

    // submit from another thread blocks while the pool is full...
    let blocked_ran = Arc::new(AtomicBool::new(false));
    let (returned_tx, returned) = mpsc::channel();
    let handle = pool.handle();
    let task = flag_task(&blocked_ran);
    let producer = thread::spawn(move || {
        let outcome = handle.submit(task).is_ok();
        returned_tx.send(outcome).unwrap();
    });
    assert_eq!(
        returned.recv_timeout(QUIET),
        Err(RecvTimeoutError::Timeout),
        "submit returned while the pool was full"
    );
    assert_eq!(pool.queued(), CAPACITY, "nothing slipped past the bound");
    assert_eq!(ran.load(Ordering::SeqCst), 0);

    // ...and succeeds once the workers move on.
    gate.open();
    assert_eq!(
        returned.recv_timeout(WATCHDOG),
        Ok(true),
        "blocked submit succeeds"
    );
    producer.join().unwrap();
    drop(pool);
    assert_eq!(ran.load(Ordering::SeqCst), CAPACITY);
    assert!(blocked_ran.load(Ordering::SeqCst));
}

#[test]
fn a_slot_frees_when_its_task_starts_not_when_it_ends() {
    let _watchdog = Watchdog::new("a_slot_frees_when_its_task_starts_not_when_it_ends");
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let first_gate = Gate::new();
    let second_gate = Gate::new();
    let _open_first = first_gate.open_on_drop();
    let _open_second = second_gate.open_on_drop();
    hold_workers(&pool, &first_gate);

    // One queued task fills the pool; it will start and then hold the worker.
    let (started_tx, started) = mpsc::channel();
    let long = {
        let second_gate = second_gate.clone();
        move || {
            started_tx.send(()).unwrap();
            second_gate.wait();
        }
    };
    pool.try_submit(long).expect("room for one");
    assert!(pool.try_submit(|| {}).unwrap_err().is_full());

    first_gate.open();
    // The queued task has started, and has not finished.
    started
        .recv_timeout(WATCHDOG)
        .expect("the queued task started");
    assert_eq!(pool.queued(), 0);
    let ran = Arc::new(AtomicUsize::new(0));
    pool.try_submit(counter_task(&ran))
        .expect("a started task no longer counts against the bound");
    assert!(pool.try_submit(|| {}).unwrap_err().is_full());
    second_gate.open();
    drop(pool);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn exactly_capacity_accepted_under_racing_producers() {
    // Producers race for the last slots, round after round: however their
    // attempts interleave, the pool never accepts more than `capacity`
    // unstarted tasks, and it accepts exactly as many as there was room for.
    const CAPACITY: usize = 4;
    // More producers than cores: a producer preempted in the middle of its
    // attempt is exactly what a bound checked and bumped in two steps loses to.
    const PRODUCERS: usize = 4;
    const TRIES: usize = 4;
    const ROUNDS: usize = 10_000;
    let _watchdog = Watchdog::new("exactly_capacity_accepted_under_racing_producers");
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity(CAPACITY)
        .build()
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let go = Arc::new(Barrier::new(PRODUCERS + 1));
    let (accepted_tx, accepted_rx) = mpsc::channel();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let (handle, go, ran, accepted_tx) =
                (pool.handle(), go.clone(), ran.clone(), accepted_tx.clone());
            thread::spawn(move || {
                for _ in 0..ROUNDS {
                    go.wait();
                    let mut accepted = 0;
                    for _ in 0..TRIES {
                        match handle.try_submit(counter_task(&ran)) {
                            Ok(()) => accepted += 1,
                            Err(e) => assert!(e.is_full()),
                        }
                    }
                    accepted_tx.send(accepted).unwrap();
                }
            })
        })
        .collect();

    let mut total = 0;
    for round in 0..ROUNDS {
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        hold_workers(&pool, &gate);
        // Tasks of the last round may still wait behind the gate tasks.
        let room = CAPACITY - pool.queued();
        go.wait();
        let accepted: usize = (0..PRODUCERS)
            .map(|_| {
                accepted_rx
                    .recv_timeout(WATCHDOG)
                    .expect("producer reports")
            })
            .sum();
        assert_eq!(
            accepted, room,
            "round {round}: accepted {accepted} with room for {room}"
        );
        assert_eq!(pool.queued(), CAPACITY, "round {round}");
        total += accepted;
        gate.open();
    }
    for producer in producers {
        producer.join().unwrap();
    }
    drop(pool);
    assert_eq!(ran.load(Ordering::SeqCst), total);
}

#[test]
fn every_blocked_producer_gets_in_once_room_frees() {
    const PRODUCERS: usize = 8;
    let _watchdog = Watchdog::new("every_blocked_producer_gets_in_once_room_frees");
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(2)
        .build()
        .unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        pool.try_submit(counter_task(&ran)).unwrap();
    }

    let (returned_tx, returned) = mpsc::channel();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let handle = pool.handle();
            let returned_tx = returned_tx.clone();
            let task = counter_task(&ran);
            thread::spawn(move || {
                // Half wait without limit, half with a limit far beyond the test.
                let ok = if p % 2 == 0 {
                    handle.submit(task).is_ok()
                } else {
                    handle.submit_timeout(task, WATCHDOG * 10).is_ok()
                };
                returned_tx.send(ok).unwrap();
            })
        })
        .collect();
    drop(returned_tx);
    assert_eq!(
        returned.recv_timeout(QUIET),
        Err(RecvTimeoutError::Timeout),
        "a producer got into a full pool"
    );
    gate.open();
    for _ in 0..PRODUCERS {
        assert_eq!(returned.recv_timeout(WATCHDOG), Ok(true));
    }
    for producer in producers {
        producer.join().unwrap();
    }
    drop(pool);
    assert_eq!(ran.load(Ordering::SeqCst), 2 + PRODUCERS);
}

/// Spawns a tree of `fanout`-ary children `depth` levels deep through
/// `handle` from inside the pool, rotating over the three submission
/// methods. Every submission from inside must succeed at once, full pool or
/// not; a refusal is counted in `refused`.
fn spawn_tree(
    handle: &Handle,
    depth: u32,
    fanout: usize,
    ran: &Arc<AtomicUsize>,
    refused: &Arc<AtomicUsize>,
) {
    ran.fetch_add(1, Ordering::SeqCst);
    if depth == 0 {
        return;
    }
    for k in 0..fanout {
        let child = {
            let handle = handle.clone();
            let ran = ran.clone();
            let refused = refused.clone();
            move || spawn_tree(&handle, depth - 1, fanout, &ran, &refused)
        };
        let ok = match k % 3 {
            0 => handle.submit(child).is_ok(),
            1 => handle.try_submit(child).is_ok(),
            _ => handle.submit_timeout(child, Duration::ZERO).is_ok(),
        };
        if !ok {
            refused.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Nodes in a tree of the given depth and fanout.
fn tree_size(depth: u32, fanout: usize) -> usize {
    (0..=depth).map(|d| fanout.pow(d)).sum()
}

#[test]
fn tasks_spawning_into_a_full_pool_do_not_deadlock() {
    const WORKERS: usize = 2;
    const CAPACITY: usize = 4;
    const PARENTS: usize = 200;
    const DEPTH: u32 = 3;
    const FANOUT: usize = 3;
    let _watchdog = Watchdog::new("tasks_spawning_into_a_full_pool_do_not_deadlock");
    let pool = Pool::builder()
        .workers(WORKERS)
        .queue_capacity(CAPACITY)
        .build()
        .unwrap();
    let handle = pool.handle();
    let ran = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));

    // Phase 1: every worker spawns a tree while the pool is provably full.
    let entered = Arc::new(Barrier::new(WORKERS + 1));
    let pool_is_full = Gate::new();
    let _open = pool_is_full.open_on_drop();
    let both_spawned = Arc::new(Barrier::new(WORKERS));
    let queued_while_spawning = Arc::new(AtomicUsize::new(usize::MAX));
    for _ in 0..WORKERS {
        let (handle, ran, refused) = (handle.clone(), ran.clone(), refused.clone());
        let (entered, pool_is_full) = (entered.clone(), pool_is_full.clone());
        let (both_spawned, queued) = (both_spawned.clone(), queued_while_spawning.clone());
        pool.submit(move || {
            entered.wait();
            pool_is_full.wait();
            spawn_tree(&handle, DEPTH, FANOUT, &ran, &refused);
            // Both workers are still here, so no queued task has started:
            // the children did not take (or need) slots of the bound.
            queued.fetch_min(handle.queued(), Ordering::SeqCst);
            both_spawned.wait();
        })
        .unwrap();
    }
    entered.wait();
    for _ in 0..CAPACITY {
        let (handle, ran, refused) = (handle.clone(), ran.clone(), refused.clone());
        pool.try_submit(move || spawn_tree(&handle, DEPTH, FANOUT, &ran, &refused))
            .expect("room for `capacity` tasks");
    }
    assert!(pool.try_submit(|| {}).unwrap_err().is_full());
    pool_is_full.open();

    // Phase 2: a producer keeps the pool full while every task spawns more.
    let producer = {
        let (handle, ran, refused) = (handle.clone(), ran.clone(), refused.clone());
        thread::spawn(move || {
            for _ in 0..PARENTS {
                let (inner, ran, refused) = (handle.clone(), ran.clone(), refused.clone());
                handle
                    .submit(move || spawn_tree(&inner, DEPTH, FANOUT, &ran, &refused))
                    .expect("the pool is running");
            }
        })
    };
    producer.join().unwrap();
    drop(handle);
    drop(pool); // returns once every task, children included, has run

    let trees = WORKERS + CAPACITY + PARENTS;
    assert_eq!(
        refused.load(Ordering::SeqCst),
        0,
        "an inside submission was refused"
    );
    assert_eq!(ran.load(Ordering::SeqCst), trees * tree_size(DEPTH, FANOUT));
    assert_eq!(queued_while_spawning.load(Ordering::SeqCst), CAPACITY);
}

#[test]
fn pools_are_told_apart_when_submitting_from_a_worker() {
    let _watchdog = Watchdog::new("pools_are_told_apart_when_submitting_from_a_worker");
    let a = Pool::builder()
        .workers(1)
        .queue_capacity(1)
        .thread_name("pool-a")
        .build()
        .unwrap();
    let b = Pool::builder()
        .workers(1)
        .queue_capacity(1)
        .thread_name("pool-b")
        .build()
        .unwrap();
    let b_gate = Gate::new();
    let _open_b = b_gate.open_on_drop();
    hold_workers(&b, &b_gate);
    let b_ran = Arc::new(AtomicUsize::new(0));
    b.try_submit(counter_task(&b_ran)).unwrap();
    assert!(b.try_submit(|| {}).unwrap_err().is_full());

    // A probe task runs on A's only worker; A is then filled as well.
    let probe_started = Arc::new(Barrier::new(2));
    let a_is_full = Gate::new();
    let _open_a = a_is_full.open_on_drop();
    let a_ran = Arc::new(AtomicUsize::new(0));
    let (report_tx, report) = mpsc::channel();
    let probe = {
        let (a_handle, b_handle) = (a.handle(), b.handle());
        let (probe_started, a_is_full) = (probe_started.clone(), a_is_full.clone());
        let a_ran = a_ran.clone();
        move || {
            probe_started.wait();
            a_is_full.wait();
            let mut report: Vec<(&str, bool)> = Vec::new();
            // B is full and this thread is not one of B's workers.
            let flag = Arc::new(AtomicBool::new(false));
            let full = match b_handle.try_submit(flag_task(&flag)) {
                Err(err) if err.is_full() => {
                    let f = err.into_inner();
                    f();
                    flag.load(Ordering::SeqCst)
                }
                _ => false,
            };
            report.push(("b.try_submit is Full, closure intact", full));
            let timed_out = matches!(
                b_handle.submit_timeout(|| {}, Duration::from_millis(20)),
                Err(e) if e.is_timeout()
            );
            report.push(("b.submit_timeout times out", timed_out));
            // A is just as full, but this is A's own worker: never blocks.
            let ok = a_handle.try_submit(counter_task(&a_ran)).is_ok();
            report.push(("a.try_submit from inside", ok));
            let ok = a_handle.submit(counter_task(&a_ran)).is_ok();
            report.push(("a.submit from inside", ok));
            let ok = a_handle
                .submit_timeout(counter_task(&a_ran), Duration::ZERO)
                .is_ok();
            report.push(("a.submit_timeout(0) from inside", ok));
            let unchanged = a_handle.queued() == 1;
            report.push(("inside submissions take no slot of a's bound", unchanged));
            report_tx.send(report).unwrap();
        }
    };
    a.submit(probe).unwrap();
    probe_started.wait(); // A's only worker is in the probe
    a.try_submit(counter_task(&a_ran)).expect("room for one");
    assert!(a.try_submit(|| {}).unwrap_err().is_full());
    a_is_full.open();

    let report = report.recv_timeout(WATCHDOG).expect("the probe finished");
    for (what, ok) in &report {
        assert!(ok, "{what}: failed ({report:?})");
    }
    b_gate.open();
    drop(a);
    drop(b);
    assert_eq!(a_ran.load(Ordering::SeqCst), 4);
    assert_eq!(b_ran.load(Ordering::SeqCst), 1);
}

/// A worker returns the slots of the tasks it starts a few at a time
/// (8 here: capacity 64 on one worker), not one by one. While it runs a
/// long task with slots still held back, the bound must stay exact: a
/// producer that finds the pool full takes a held-back slot over.
#[test]
fn the_bound_stays_exact_while_a_worker_holds_back_freed_slots() {
    const CAPACITY: usize = 64;
    let _watchdog = Watchdog::new("the_bound_stays_exact_while_a_worker_holds_back_freed_slots");
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(CAPACITY)
        .build()
        .unwrap();
    let first_gate = Gate::new();
    let second_gate = Gate::new();
    let _open_first = first_gate.open_on_drop();
    let _open_second = second_gate.open_on_drop();
    let (entered_tx, entered) = mpsc::channel();
    let gate_task = |gate: &Arc<Gate>| {
        let (gate, entered) = (gate.clone(), entered_tx.clone());
        move || {
            entered.send(()).unwrap();
            gate.wait();
        }
    };
    // Started back to back, with no idle moment in between (where a worker
    // returns what it holds): the first gate task, 5 quick tasks, the
    // second gate task. 7 started admitted tasks, fewer than the 8 that
    // make the worker return its slots.
    pool.submit(gate_task(&first_gate)).unwrap();
    entered.recv_timeout(WATCHDOG).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        pool.submit(counter_task(&ran)).unwrap();
    }
    pool.submit(gate_task(&second_gate)).unwrap();
    first_gate.open();
    entered.recv_timeout(WATCHDOG).unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 5);
    assert_eq!(pool.queued(), 0, "held-back slots are not queued tasks");

    let mut accepted = 0;
    while accepted <= CAPACITY && pool.try_submit(counter_task(&ran)).is_ok() {
        accepted += 1;
    }
    assert_eq!(accepted, CAPACITY, "exactly `capacity` tasks fit");
    assert_eq!(pool.queued(), CAPACITY);
    assert!(pool.try_submit(|| {}).unwrap_err().is_full());

    second_gate.open();
    let report = pool.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 5 + CAPACITY);
    assert_eq!(report.executed as usize, 2 + 5 + CAPACITY);
}

/// At 64 slots per worker and more, a producer that finds the pool full
/// waits by yielding its core (so the worker sharing it runs) before it
/// parks; below that it spins. Four producers blocking in `submit` on the
/// yielding side of that line: every task gets in, and runs exactly once.
#[test]
fn producers_blocked_on_a_deep_queue_get_every_task_in_exactly_once() {
    const CAPACITY: usize = 64; // one worker: exactly the yielding threshold
    const PRODUCERS: usize = 4;
    const PER_PRODUCER: usize = 50_000;
    let _watchdog =
        Watchdog::new("producers_blocked_on_a_deep_queue_get_every_task_in_exactly_once");
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(CAPACITY)
        .build()
        .unwrap();
    let runs: Arc<Vec<AtomicUsize>> = Arc::new(
        (0..PRODUCERS * PER_PRODUCER)
            .map(|_| AtomicUsize::new(0))
            .collect(),
    );
    // The worker held and the queue full before the producers start, so
    // that their first submissions, and with four producers against one
    // worker most later ones, find the pool full.
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    let filler = Arc::new(AtomicUsize::new(0));
    for _ in 0..CAPACITY {
        pool.try_submit(counter_task(&filler))
            .expect("room for `capacity` tasks");
    }
    let start = Arc::new(Barrier::new(PRODUCERS + 1));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (handle, runs, start) = (pool.handle(), runs.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for i in p * PER_PRODUCER..(p + 1) * PER_PRODUCER {
                    let runs = runs.clone();
                    handle
                        .submit(move || {
                            runs[i].fetch_add(1, Ordering::Relaxed);
                        })
                        .expect("the pool is running");
                }
            })
        })
        .collect();
    start.wait();
    gate.open();
    for producer in producers {
        producer.join().unwrap();
    }
    let report = pool.shutdown();
    assert_eq!(filler.load(Ordering::SeqCst), CAPACITY);
    let wrong: Vec<usize> = (0..runs.len())
        .filter(|&i| runs[i].load(Ordering::Relaxed) != 1)
        .collect();
    assert!(
        wrong.is_empty(),
        "tasks run other than once: {:?}",
        &wrong[..wrong.len().min(10)]
    );
    assert_eq!(
        report.executed as usize,
        1 + CAPACITY + PRODUCERS * PER_PRODUCER
    );
}
