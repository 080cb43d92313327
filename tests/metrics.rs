//! `Pool::metrics` / `Handle::metrics`: every counter moves when, and only
//! when, the event it counts happens.
//!
//! Each event is driven deterministically: workers are held on a gate so
//! the queue fills to a known depth, `try_submit` on the full queue gives
//! `Full`, `submit_timeout` on it times out, submissions after shutdown go
//! through a `Handle`. Figures are compared at quiescent points (workers
//! held, or the pool dropped and the counters final), never under way.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use corepool::{MetricsSnapshot, Pool};
use support::{hold_workers, recv_all, Gate, Watchdog};

/// Cross-counter checks that hold in any snapshot taken while the pool is
/// quiescent (no task starting or finishing).
fn assert_consistent(m: &MetricsSnapshot) {
    assert_eq!(m.per_worker.len(), m.max_workers, "one entry per slot");
    let sum = |f: fn(&corepool::WorkerMetrics) -> u64| m.per_worker.iter().map(f).sum::<u64>();
    assert_eq!(sum(|w| w.executed), m.executed, "per-worker executed sums");
    assert_eq!(sum(|w| w.stolen), m.stolen, "per-worker stolen sums");
    assert_eq!(
        sum(|w| w.steal_attempts),
        m.steal_attempts,
        "per-worker steal attempts sum"
    );
    assert_eq!(sum(|w| w.panicked), m.panicked, "per-worker panicked sums");
    assert_eq!(
        m.per_worker.iter().filter(|w| w.running).count(),
        m.in_flight,
        "in_flight counts running workers"
    );
    assert!(m.stolen <= m.steal_attempts);
    assert!(m.panicked <= m.executed);
    assert!(m.queue_depth <= m.capacity);
    assert_eq!(m.fill_ratio, m.queue_depth as f64 / m.capacity as f64);
    for (index, w) in m.per_worker.iter().enumerate() {
        assert_eq!(w.index, index);
        assert_eq!(w.active, index < m.workers);
    }
}

#[test]
fn a_fresh_pool_reports_its_shape_and_zero_counts() {
    let _watchdog = Watchdog::new("a_fresh_pool_reports_its_shape_and_zero_counts");
    let pool = Pool::builder()
        .workers(2)
        .max_workers(3)
        .queue_capacity(16)
        .pin_workers(false)
        .build()
        .unwrap();
    let m = pool.metrics();
    assert_consistent(&m);
    assert_eq!((m.workers, m.max_workers), (2, 3));
    assert_eq!((m.queue_depth, m.capacity, m.fill_ratio), (0, 16, 0.0));
    assert_eq!(
        (
            m.accepted,
            m.executed,
            m.rejected_full,
            m.rejected_shutdown,
            m.timed_out,
            m.panicked,
            m.in_flight
        ),
        (0, 0, 0, 0, 0, 0, 0)
    );
    assert_eq!(
        m.per_worker.iter().map(|w| w.active).collect::<Vec<_>>(),
        [true, true, false]
    );
    assert!(m.per_worker.iter().all(|w| w.core.is_none()), "unpinned");
    assert_eq!(m.queue_wait.count, 0);
}

#[test]
fn every_counter_moves_with_its_event() {
    let _watchdog = Watchdog::new("every_counter_moves_with_its_event");
    const WORKERS: usize = 2;
    const CAPACITY: usize = 4;
    let pool = Pool::builder()
        .workers(WORKERS)
        .queue_capacity(CAPACITY)
        .pin_workers(false)
        // Keep the expected panic's message out of the test output.
        .panic_handler(|_| {})
        .build()
        .unwrap();
    let handle = pool.handle();
    let gate = Gate::new();
    let _open = gate.open_on_drop();

    // Both workers busy: two tasks accepted, started, running.
    hold_workers(&pool, &gate);
    let m = pool.metrics();
    assert_consistent(&m);
    assert_eq!(m.accepted, 2);
    assert_eq!(m.in_flight, WORKERS);
    assert!(m.per_worker.iter().all(|w| w.running));
    assert_eq!((m.queue_depth, m.executed), (0, 0));

    // Fill the queue: CAPACITY accepted and not started, one of which will
    // panic.
    let ran = Arc::new(AtomicUsize::new(0));
    for i in 0..CAPACITY {
        let ran = ran.clone();
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
            if i == 0 {
                panic!("an expected panic, counted by the metrics test");
            }
        })
        .unwrap();
        let m = pool.metrics();
        assert_eq!(m.queue_depth, i + 1, "each accepted task is queued");
        assert_eq!(m.accepted, 2 + i as u64 + 1);
    }
    let m = pool.metrics();
    assert_consistent(&m);
    assert_eq!((m.queue_depth, m.capacity), (CAPACITY, CAPACITY));
    assert_eq!(m.fill_ratio, 1.0);
    assert_eq!(m.in_flight, WORKERS);
    assert_eq!(
        (m.rejected_full, m.timed_out, m.rejected_shutdown),
        (0, 0, 0)
    );

    // Full: try_submit and try_spawn are refused and counted, each once.
    assert!(matches!(
        pool.try_submit(|| {}),
        Err(e) if e.is_full()
    ));
    assert_eq!(pool.metrics().rejected_full, 1);
    assert!(matches!(
        handle.try_spawn(|| 1),
        Err(e) if e.is_full()
    ));
    assert_eq!(pool.metrics().rejected_full, 2);

    // Full: submit_timeout waits, then times out, counted once; it is not
    // also counted as a "full" rejection.
    let timed_out = pool.submit_timeout(|| {}, Duration::from_millis(1));
    assert!(matches!(timed_out, Err(e) if e.is_timeout()));
    let m = pool.metrics();
    assert_consistent(&m);
    assert_eq!((m.timed_out, m.rejected_full), (1, 2));
    // Refused submissions were never accepted.
    assert_eq!(m.accepted, (WORKERS + CAPACITY) as u64);
    assert_eq!(m.queue_depth, CAPACITY);

    // Let everything run, then shut down: the counters are final.
    gate.open();
    drop(pool);
    let m = handle.metrics();
    assert_consistent(&m);
    let total = (WORKERS + CAPACITY) as u64;
    assert_eq!(ran.load(Ordering::SeqCst), CAPACITY);
    assert_eq!(m.accepted, total);
    assert_eq!(m.executed, total, "a panicked task counts as executed");
    assert_eq!(m.panicked, 1);
    assert_eq!((m.queue_depth, m.fill_ratio, m.in_flight), (0, 0.0, 0));
    assert_eq!(
        (m.searching_workers, m.idle_workers),
        (0, 0),
        "every worker has left the sleep protocol"
    );
    assert_eq!(
        (m.rejected_full, m.timed_out, m.rejected_shutdown),
        (2, 1, 0)
    );

    // After shutdown every kind of submission through a handle is refused
    // as "shutdown", and counted as such, not as full or timed out.
    assert!(handle.submit(|| {}).is_err());
    assert!(matches!(
        handle.try_submit(|| {}),
        Err(e) if e.is_shutdown()
    ));
    assert!(matches!(
        handle.submit_timeout(|| {}, Duration::from_secs(1)),
        Err(e) if e.is_shutdown()
    ));
    assert!(handle.spawn(|| 1).is_err());
    let m = handle.metrics();
    assert_eq!(m.rejected_shutdown, 4);
    assert_eq!((m.rejected_full, m.timed_out), (2, 1));
    assert_eq!((m.accepted, m.executed), (total, total));
}

#[test]
fn submissions_from_inside_count_as_executed_but_not_accepted() {
    let _watchdog = Watchdog::new("submissions_from_inside_count_as_executed_but_not_accepted");
    const OUTER: usize = 50;
    const CHILDREN: usize = 3;
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity(8)
        .pin_workers(false)
        .build()
        .unwrap();
    let handle = pool.handle();
    for _ in 0..OUTER {
        let inner = handle.clone();
        pool.submit(move || {
            for _ in 0..CHILDREN {
                inner.submit(|| {}).expect("from inside: never refused");
            }
        })
        .unwrap();
    }
    drop(pool);
    let m = handle.metrics();
    assert_consistent(&m);
    assert_eq!(m.accepted, OUTER as u64, "only external submissions");
    assert_eq!(m.executed, (OUTER * (1 + CHILDREN)) as u64);
    assert_eq!(m.rejected_full + m.timed_out + m.rejected_shutdown, 0);
}

#[test]
fn stolen_counts_children_run_by_another_worker() {
    let _watchdog = Watchdog::new("stolen_counts_children_run_by_another_worker");
    const WORKERS: usize = 2;
    const ROUNDS: usize = 20;
    let pool = Pool::builder()
        .workers(WORKERS)
        .queue_capacity(4)
        .pin_workers(false)
        .build()
        .unwrap();
    let handle = pool.handle();
    let (tx, rx) = mpsc::channel();
    // One outer task pushes every child onto its own worker's deque. Each
    // child waits on a barrier sized to the worker count, so a round can
    // only complete with a child on every worker at once: the other worker
    // must have stolen.
    pool.submit(move || {
        let round = Arc::new(Barrier::new(WORKERS));
        for _ in 0..ROUNDS * WORKERS {
            let (round, tx) = (round.clone(), tx.clone());
            handle
                .submit(move || {
                    round.wait();
                    tx.send(std::thread::current().id()).unwrap();
                })
                .unwrap();
        }
    })
    .unwrap();
    let (pool, threads) = recv_all(
        pool,
        &rx,
        ROUNDS * WORKERS,
        "children of one worker: the other never stole them",
    );
    let handle = pool.handle();
    drop(pool);
    let m = handle.metrics();
    assert_consistent(&m);
    assert_eq!(threads.iter().collect::<HashSet<_>>().len(), WORKERS);
    assert!(m.stolen > 0, "children ran on another worker: {m:#?}");
    assert!(m.steal_attempts >= m.stolen);
    assert_eq!(m.executed, 1 + (ROUNDS * WORKERS) as u64);
    assert!(
        m.per_worker.iter().all(|w| w.executed > 0),
        "every worker ran children: {:?}",
        m.per_worker
    );
}

#[test]
fn queue_wait_counts_every_external_task_run() {
    let _watchdog = Watchdog::new("queue_wait_counts_every_external_task_run");
    const EXTERNAL: usize = 2_000;
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity(64)
        .pin_workers(false)
        .track_latency(true)
        .build()
        .unwrap();
    let handle = pool.handle();
    let spawned: Vec<_> = (0..100u64)
        .map(|i| pool.spawn(move || i).unwrap())
        .collect();
    for i in 0..EXTERNAL - 100 {
        let inner = handle.clone();
        pool.submit(move || {
            if i % 10 == 0 {
                // Internal children are not queue-waits of the bound.
                inner.submit(|| {}).unwrap();
            }
        })
        .unwrap();
    }
    for (i, task) in spawned.into_iter().enumerate() {
        assert_eq!(task.join().unwrap(), i as u64);
    }
    drop(pool);
    let m = handle.metrics();
    assert_consistent(&m);
    let wait = &m.queue_wait;
    assert_eq!(wait.count, EXTERNAL as u64, "one wait per external task");
    assert_eq!(m.accepted, EXTERNAL as u64);
    assert_eq!(m.executed, (EXTERNAL + (EXTERNAL - 100) / 10) as u64);
    assert!(wait.p50 <= wait.p90, "{wait:?}");
    assert!(wait.p90 <= wait.p99, "{wait:?}");
    assert!(wait.p99 <= wait.p999, "{wait:?}");
    assert!(wait.sum >= wait.p50, "{wait:?}");
    // The exporter buckets: cumulative, so non-decreasing, never above the
    // count, with increasing bounds.
    assert!(!wait.buckets.is_empty());
    for pair in wait.buckets.windows(2) {
        assert!(pair[0].0 < pair[1].0, "bounds increase: {:?}", wait.buckets);
        assert!(pair[0].1 <= pair[1].1, "cumulative: {:?}", wait.buckets);
    }
    assert!(wait.buckets.last().unwrap().1 <= wait.count);
}

#[test]
fn without_track_latency_nothing_is_measured() {
    let _watchdog = Watchdog::new("without_track_latency_nothing_is_measured");
    let pool = Pool::builder()
        .workers(2)
        .pin_workers(false)
        .build()
        .unwrap();
    let handle = pool.handle();
    for _ in 0..500 {
        pool.submit(|| {}).unwrap();
    }
    drop(pool);
    let m = handle.metrics();
    assert_eq!(m.executed, 500);
    let wait = &m.queue_wait;
    assert_eq!(wait.count, 0);
    assert_eq!(wait.sum, Duration::ZERO);
    assert_eq!(
        (wait.p50, wait.p90, wait.p99, wait.p999),
        (
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO
        )
    );
    assert!(wait.buckets.iter().all(|&(_, count)| count == 0));
}

#[test]
fn a_long_queue_wait_shows_in_the_high_percentiles() {
    // One task is held in the queue behind a gated worker while the others
    // go straight through: its wait is at least as long as the hold, which
    // the gate makes observable without timing the test itself.
    let _watchdog = Watchdog::new("a_long_queue_wait_shows_in_the_high_percentiles");
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(4)
        .pin_workers(false)
        .track_latency(true)
        .build()
        .unwrap();
    let handle = pool.handle();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    pool.submit(|| {}).unwrap();
    // The task was stamped before `submit` returned.
    let queued_at = std::time::Instant::now();
    // Hold it until at least 20 ms have passed (a condition, not a sleep).
    support::wait_until("20 ms pass", || {
        queued_at.elapsed() >= Duration::from_millis(20)
    });
    gate.open();
    drop(pool);
    let wait = handle.metrics().queue_wait;
    assert_eq!(wait.count, 2, "the gate task and the held one");
    assert!(
        wait.p999 >= Duration::from_millis(20),
        "the held task's wait is the largest: {wait:?}"
    );
    assert!(wait.sum >= Duration::from_millis(20), "{wait:?}");
}
