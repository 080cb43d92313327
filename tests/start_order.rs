//! Tasks submitted from outside start in the order they were submitted, up
//! to the window `docs/design.md` documents ("Finding work"): exactly in
//! order on one worker; overtaken by at most one batch (32 tasks) when a
//! worker takes over the batch of a worker stuck in a long task; within
//! `workers × 32` positions on idle workers that take a burst together.
//!
//! Each test holds the workers at a gate while it submits, so the queue is
//! full before any worker looks at it, and runs under the watchdog.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use support::{hold_one_worker, hold_workers, small_pool, Gate, Watchdog, WATCHDOG};

/// Most tasks a worker takes from the queue in one batch (documented in
/// `docs/design.md`, "Finding work").
const BATCH: usize = 32;

/// One test at a time: the tests compare start orders, and another test's
/// workers competing for the two cores would only add noise.
static SERIAL: Mutex<()> = Mutex::new(());

/// Submits `count` tasks that each record, in submission order, the rank
/// at which they started; returns the ranks once all have run.
fn record_start_ranks(pool: &corepool::Pool, count: usize, gate: &Arc<Gate>) -> Vec<usize> {
    let next_rank = Arc::new(AtomicUsize::new(0));
    let (ran_tx, ran) = mpsc::channel();
    for index in 0..count {
        let (next_rank, ran_tx) = (next_rank.clone(), ran_tx.clone());
        pool.submit(move || {
            let rank = next_rank.fetch_add(1, Ordering::SeqCst);
            ran_tx.send((index, rank)).expect("the test is waiting");
        })
        .expect("the pool is running");
    }
    gate.open();
    let mut ranks = vec![usize::MAX; count];
    for _ in 0..count {
        let (index, rank) = ran.recv_timeout(WATCHDOG).expect("every task runs");
        ranks[index] = rank;
    }
    ranks
}

#[test]
fn one_worker_starts_outside_tasks_in_submission_order() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _watchdog = Watchdog::new("one_worker_starts_outside_tasks_in_submission_order");
    // At the default capacity, so the queue holds many batches.
    let pool = corepool::Pool::builder()
        .workers(1)
        .pin_workers(false)
        .build()
        .expect("build a pool");
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    let count = pool.capacity();
    let ranks = record_start_ranks(&pool, count, &gate);
    let expected: Vec<usize> = (0..count).collect();
    assert_eq!(ranks, expected, "a task started before an older one");
}

#[test]
fn a_stuck_workers_batch_runs_before_newer_tasks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _watchdog = Watchdog::new("a_stuck_workers_batch_runs_before_newer_tasks");
    let pool = small_pool(2, 1024);
    // Both workers held, each on its own gate.
    let (first, second) = (Gate::new(), Gate::new());
    let (_open_first, _open_second) = (first.open_on_drop(), second.open_on_drop());
    hold_one_worker(&pool, &first);
    hold_one_worker(&pool, &second);

    // The oldest task blocks its worker until the newest has started; the
    // rest record the order they start in.
    let count = 200;
    let last_started = Gate::new();
    let _open_last = last_started.open_on_drop();
    let (stuck_tx, stuck) = mpsc::channel();
    {
        let last_started = last_started.clone();
        pool.submit(move || {
            stuck_tx.send(()).expect("the test is waiting");
            last_started.wait();
        })
        .expect("the pool is running");
    }
    let order = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let (done_tx, done) = mpsc::channel();
    for index in 1..=count {
        let (order, last_started, done_tx) = (order.clone(), last_started.clone(), done_tx.clone());
        pool.submit(move || {
            order.lock().unwrap_or_else(|e| e.into_inner()).push(index);
            if index == count {
                last_started.open();
            }
            done_tx.send(()).expect("the test is waiting");
        })
        .expect("the pool is running");
    }

    // One worker takes the stuck task with a batch behind it, and is stuck;
    // only then is the other let go, and it alone runs every other task.
    first.open();
    stuck
        .recv_timeout(WATCHDOG)
        .expect("the stuck task started");
    second.open();
    for _ in 0..count {
        done.recv_timeout(WATCHDOG).expect("every task runs");
    }
    // The free worker runs the batch it took itself (at most `BATCH`
    // tasks, newer than the stuck worker's), then takes over the stuck
    // worker's batch, oldest first, before any newer task.
    let order = order.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(order.len(), count);
    for (position, &task) in order.iter().enumerate() {
        let overtaken_by = order[..position].iter().filter(|&&t| t > task).count();
        assert!(
            overtaken_by <= BATCH,
            "task {task} started after {overtaken_by} newer ones: {order:?}"
        );
    }
    // Taking the stuck worker's batch is a steal.
    let metrics = pool.metrics();
    assert!(metrics.stolen >= 1, "no steal counted: {metrics:#?}");
}

#[test]
fn idle_workers_start_a_burst_within_the_documented_window() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _watchdog = Watchdog::new("idle_workers_start_a_burst_within_the_documented_window");
    for workers in [2, 4] {
        let pool = small_pool(workers, 4096);
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        hold_workers(&pool, &gate);
        let count = 2000;
        let ranks = record_start_ranks(&pool, count, &gate);
        // A task that started at rank r after i older ones were submitted
        // was overtaken by at least r − i newer ones. The window holds but
        // for what a worker had in hand when the operating system
        // descheduled it: one task, or one batch it was taking (at most
        // `BATCH` consecutive tasks; `docs/design.md`). Allow one such run
        // per worker.
        let outside: Vec<usize> = ranks
            .iter()
            .enumerate()
            .filter(|&(task, &rank)| rank.saturating_sub(task) > workers * BATCH)
            .map(|(task, _)| task)
            .collect();
        let mut runs: Vec<(usize, usize)> = Vec::new(); // (first task, length)
        for &task in &outside {
            match runs.last_mut() {
                Some((first, len)) if *first + *len == task => *len += 1,
                _ => runs.push((task, 1)),
            }
        }
        assert!(
            runs.len() <= workers && runs.iter().all(|&(_, len)| len <= BATCH),
            "with {workers} workers, these runs of tasks (first, how many) \
             were overtaken by more than {} newer ones: {runs:?}",
            workers * BATCH
        );
    }
}
