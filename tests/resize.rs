//! `Pool::set_workers` at run time, and the builder's validation of the
//! sizing options (`max_workers`, `autoscale`, `on_queue_fill`).
//!
//! Resizing under load must lose and duplicate nothing: every task counts
//! its own runs, and each count must be exactly one. Hangs are turned into
//! failures by receiving completions with a timeout (the pool is leaked,
//! not dropped, when that fails) and by a process watchdog.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use corepool::{BuildError, Pool, ResizeError};
use support::{
    hold_workers, names_of_workers_running_together, recv_all, wait_until, Gate, Watchdog,
};

/// Sizes the resize tests cycle through, within `1..=6`.
const SIZES: [usize; 8] = [1, 6, 3, 1, 4, 2, 6, 5];

/// Counts, per task, how often it ran, and reports each run on a channel.
struct Runs {
    counts: Vec<AtomicU32>,
    done: Mutex<mpsc::Sender<usize>>,
}

impl Runs {
    fn new(tasks: usize) -> (Arc<Runs>, mpsc::Receiver<usize>) {
        let (tx, rx) = mpsc::channel();
        let runs = Runs {
            counts: (0..tasks).map(|_| AtomicU32::new(0)).collect(),
            done: Mutex::new(tx),
        };
        (Arc::new(runs), rx)
    }

    fn ran(&self, task: usize) {
        self.counts[task].fetch_add(1, Ordering::SeqCst);
        let done = self.done.lock().unwrap().clone();
        done.send(task).unwrap();
    }

    fn assert_each_ran_once(&self, what: &str) {
        for (task, count) in self.counts.iter().enumerate() {
            let count = count.load(Ordering::SeqCst);
            assert_eq!(count, 1, "{what}: task {task} ran {count} times");
        }
    }
}

/// Submits (blocking while full) `tasks` external tasks numbered from
/// `first`; each spawns a child from inside the pool, numbered
/// `first + children_offset`.
fn produce(
    handle: corepool::Handle,
    runs: Arc<Runs>,
    range: std::ops::Range<usize>,
    children_offset: usize,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for task in range {
            let (runs, inner) = (runs.clone(), handle.clone());
            handle
                .submit(move || {
                    runs.ran(task);
                    let runs = runs.clone();
                    inner
                        .submit(move || runs.ran(task + children_offset))
                        .expect("from inside: always accepted");
                })
                .expect("the pool is running");
        }
    })
}

#[test]
fn resizing_under_load_loses_and_duplicates_nothing() {
    // Each step: every active worker is held on a gate, producers fill the
    // queue and block in `submit`, and the pool is resized; then the gate
    // opens and the step's tasks (and the children they spawn) drain with
    // the new number of workers. A worker retired while holding a batch it
    // took from the injector hands the batch back.
    //
    // Resizes land only while no worker is on its way to sleep (the active
    // ones are in gate tasks, the retired ones waiting to come back), so
    // that this test checks the hand-back of tasks deterministically; the
    // races with sleeping workers are `resize_racing_workers_...` and
    // `resizing_continuously_...` below.
    let _watchdog = Watchdog::new("resizing_under_load_loses_and_duplicates_nothing");
    const MAX: usize = 6;
    const CAPACITY: usize = 16;
    const PRODUCERS: usize = 2;
    const PER_PRODUCER: usize = 100;
    const EXTERNAL: usize = PRODUCERS * PER_PRODUCER;
    const STEPS: usize = 48;

    let mut pool = Pool::builder()
        .workers(2)
        .max_workers(MAX)
        .queue_capacity(CAPACITY)
        .pin_workers(false)
        .thread_name("load")
        .build()
        .unwrap();
    let handle = pool.handle();
    for step in 0..STEPS {
        let gate = Gate::new();
        let open_on_failure = gate.open_on_drop();
        hold_workers(&pool, &gate);
        let (runs, done) = Runs::new(2 * EXTERNAL);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let range = p * PER_PRODUCER..(p + 1) * PER_PRODUCER;
                produce(pool.handle(), runs.clone(), range, EXTERNAL)
            })
            .collect();
        wait_until("the producers fill the queue", || pool.queued() == CAPACITY);
        let size = SIZES[step % SIZES.len()];
        pool.set_workers(size).unwrap();
        assert_eq!((pool.workers(), pool.metrics().workers), (size, size));
        gate.open();
        let received;
        (pool, received) = recv_all(pool, &done, 2 * EXTERNAL, &format!("step {step}"));
        for producer in producers {
            producer.join().expect("producer");
        }
        runs.assert_each_ran_once(&format!("step {step}, resized to {size}"));
        assert_eq!(received.iter().collect::<BTreeSet<_>>().len(), 2 * EXTERNAL);
        drop(open_on_failure);
    }
    drop(pool);
    assert_sleep_state_balanced(&handle);
    let m = handle.metrics();
    let gates: usize = (0..STEPS)
        .map(|step| {
            if step == 0 {
                2
            } else {
                SIZES[(step - 1) % SIZES.len()]
            }
        })
        .sum();
    assert_eq!(m.accepted, (STEPS * EXTERNAL + gates) as u64);
    assert_eq!(m.executed, (STEPS * 2 * EXTERNAL + gates) as u64);
}

/// Once every worker has exited, none may still be counted as searching
/// or sleeping: a count off by one (in either direction) wraps or sticks.
fn assert_sleep_state_balanced(handle: &corepool::Handle) {
    let m = handle.metrics();
    assert_eq!(
        (m.searching_workers, m.idle_workers),
        (0, 0),
        "after shutdown no worker is searching or sleeping"
    );
}

#[test]
fn after_shrinking_to_one_tasks_still_complete() {
    let _watchdog = Watchdog::new("after_shrinking_to_one_tasks_still_complete");
    const TASKS: usize = 300;
    let pool = Pool::builder()
        .workers(4)
        .queue_capacity(16)
        .pin_workers(false)
        .thread_name("shrink")
        .build()
        .unwrap();
    // Shrink while all four are held in a task: the three retired ones
    // finish it and retire, taking nothing more.
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    pool.set_workers(1).unwrap();
    assert_eq!(pool.workers(), 1);
    let m = pool.metrics();
    assert_eq!((m.workers, m.max_workers), (1, 4));
    assert_eq!(
        m.per_worker.iter().map(|w| w.active).collect::<Vec<_>>(),
        [true, false, false, false]
    );
    gate.open();

    let (tx, rx) = mpsc::channel();
    for i in 0..TASKS {
        let tx = tx.clone();
        pool.submit(move || {
            tx.send((i, thread::current().name().unwrap().to_owned()))
                .unwrap();
        })
        .unwrap();
    }
    let (pool, ran) = recv_all(pool, &rx, TASKS, "after set_workers(1)");
    let ids: BTreeSet<usize> = ran.iter().map(|(i, _)| *i).collect();
    assert_eq!(ids.len(), TASKS, "every task ran once");
    let elsewhere: Vec<_> = ran.iter().filter(|(_, name)| name != "shrink-0").collect();
    assert!(
        elsewhere.is_empty(),
        "ran on retired workers: {elsewhere:?}"
    );
    let handle = pool.handle();
    drop(pool);
    let m = handle.metrics();
    assert_eq!(m.workers, 1);
    assert_eq!(m.executed, (4 + TASKS) as u64);
    assert_eq!(
        m.per_worker.iter().map(|w| w.executed).collect::<Vec<_>>(),
        [1 + TASKS as u64, 1, 1, 1],
        "after the shrink only worker 0 ran tasks"
    );
}

#[test]
fn growing_makes_the_new_workers_run_tasks() {
    let _watchdog = Watchdog::new("growing_makes_the_new_workers_run_tasks");
    let pool = Pool::builder()
        .workers(1)
        .max_workers(4)
        .queue_capacity(16)
        .pin_workers(false)
        .thread_name("grow")
        .build()
        .unwrap();
    let (pool, names) = names_of_workers_running_together(pool, 1);
    assert_eq!(names, ["grow-0"]);
    assert_eq!(
        pool.metrics()
            .per_worker
            .iter()
            .map(|w| w.active)
            .collect::<Vec<_>>(),
        [true, false, false, false]
    );
    pool.set_workers(4).unwrap();
    assert_eq!(pool.workers(), 4);
    assert!(pool.metrics().per_worker.iter().all(|w| w.active));
    // A barrier of four: completes only with a task on each of the four
    // workers at once, so the three reactivated workers took part.
    let (pool, names) = names_of_workers_running_together(pool, 4);
    assert_eq!(names, ["grow-0", "grow-1", "grow-2", "grow-3"]);
    let handle = pool.handle();
    drop(pool);
    let m = handle.metrics();
    assert!(m.per_worker.iter().all(|w| w.executed >= 1), "{m:#?}");
}

#[test]
fn shrink_and_grow_cycles_keep_every_active_worker_in_service() {
    let _watchdog = Watchdog::new("shrink_and_grow_cycles_keep_every_active_worker_in_service");
    const MAX: usize = 4;
    let mut pool = Pool::builder()
        .workers(MAX)
        .queue_capacity(16)
        .pin_workers(false)
        .thread_name("cycle")
        .build()
        .unwrap();
    for size in [1, 4, 2, 3, 1, 2, 4, 1, 3, 4, 2, 1, 4].repeat(3) {
        // Resize while every active worker is held in a task (see
        // `resizing_under_load_loses_and_duplicates_nothing`).
        let gate = Gate::new();
        let open_on_failure = gate.open_on_drop();
        hold_workers(&pool, &gate);
        pool.set_workers(size).unwrap();
        assert_eq!(pool.metrics().workers, size);
        gate.open();
        drop(open_on_failure);
        let names;
        (pool, names) = names_of_workers_running_together(pool, size);
        let expected: Vec<String> = (0..size).map(|i| format!("cycle-{i}")).collect();
        assert_eq!(names, expected, "exactly the active workers");
    }
}

#[test]
fn resize_racing_workers_going_to_sleep_never_strands_a_task() {
    // Regression test for 487ac30 ("Fix lost wake-ups when a searching
    // worker retires"). Bursts wake the workers; the resize lands while they
    // search or go back to sleep; then single tasks go into a pool going
    // idle, with no resize to wake anyone. Before the fix it failed in
    // every one of 5 runs: a worker retired in its re-check before parking
    // left the searching count one too low (and a debug assertion killed a
    // worker), and a retiring searcher did not hand its wake-up on, so a
    // task sat in the queue with every active worker asleep.
    let _watchdog = Watchdog::new("resize_racing_workers_going_to_sleep_never_strands_a_task");
    const MAX: usize = 6;
    let stopped = Arc::new(AtomicUsize::new(0));
    let stopped_in_hook = stopped.clone();
    let mut pool = Pool::builder()
        .workers(MAX)
        .queue_capacity(64)
        .pin_workers(false)
        .on_worker_stop(move |_| {
            stopped_in_hook.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    for round in 0..10_000usize {
        let size = SIZES[round % SIZES.len()];
        for _ in 0..8 {
            let tx = tx.clone();
            pool.submit(move || tx.send(()).unwrap()).unwrap();
        }
        pool.set_workers(size).unwrap();
        (pool, _) = recv_all(
            pool,
            &rx,
            8,
            &format!("round {round}: a burst after resizes"),
        );
        for _ in 0..3 {
            let tx = tx.clone();
            pool.submit(move || tx.send(()).unwrap()).unwrap();
            (pool, _) = recv_all(pool, &rx, 1, &format!("round {round}: a single task"));
        }
    }
    let handle = pool.handle();
    drop(pool);
    // A worker killed by a panic in the pool's own code never runs its
    // stop hook (debug builds assert on a corrupted count).
    assert_eq!(stopped.load(Ordering::SeqCst), MAX, "a worker died");
    assert_sleep_state_balanced(&handle);
}

#[test]
fn resizing_continuously_while_producers_submit_loses_nothing() {
    // The unconstrained version of `resizing_under_load_...`: resizes land
    // at any moment, including while workers go to sleep (before 487ac30
    // this failed in about one run in five).
    let _watchdog = Watchdog::new("resizing_continuously_while_producers_submit_loses_nothing");
    const PRODUCERS: usize = 2;
    const PER_PRODUCER: usize = 2_000;
    const EXTERNAL: usize = PRODUCERS * PER_PRODUCER;
    let stopped = Arc::new(AtomicUsize::new(0));
    let stopped_in_hook = stopped.clone();
    let mut pool = Pool::builder()
        .workers(2)
        .max_workers(6)
        .queue_capacity(64)
        .pin_workers(false)
        .on_worker_stop(move |_| {
            stopped_in_hook.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    for round in 0..20 {
        let (runs, done) = Runs::new(2 * EXTERNAL);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let range = p * PER_PRODUCER..(p + 1) * PER_PRODUCER;
                produce(pool.handle(), runs.clone(), range, EXTERNAL)
            })
            .collect();
        let mut step = round;
        while !producers.iter().all(|p| p.is_finished()) {
            pool.set_workers(SIZES[step % SIZES.len()]).unwrap();
            step += 1;
            thread::yield_now();
        }
        for producer in producers {
            producer.join().expect("producer");
        }
        (pool, _) = recv_all(pool, &done, 2 * EXTERNAL, &format!("round {round}"));
        runs.assert_each_ran_once(&format!("round {round}"));
    }
    let handle = pool.handle();
    drop(pool);
    assert_eq!(stopped.load(Ordering::SeqCst), 6, "a worker died");
    assert_sleep_state_balanced(&handle);
}

#[test]
fn set_workers_refuses_zero_above_max_and_after_shutdown() {
    let _watchdog = Watchdog::new("set_workers_refuses_zero_above_max_and_after_shutdown");
    let pool = Pool::builder()
        .workers(2)
        .max_workers(3)
        .pin_workers(false)
        .build()
        .unwrap();
    let err = pool.set_workers(0).unwrap_err();
    assert_eq!(err, ResizeError::Zero);
    assert!(err.to_string().contains("at least one worker"), "{err}");
    let err = pool.set_workers(4).unwrap_err();
    assert_eq!(
        err,
        ResizeError::AboveMax {
            requested: 4,
            max: 3
        }
    );
    assert!(err.to_string().contains("max_workers (3)"), "{err}");
    assert_eq!(pool.workers(), 2, "refused resizes change nothing");
    pool.set_workers(3).unwrap();
    assert_eq!(pool.workers(), 3);

    // A pool that is shutting down: hold a worker so that shutdown_timeout
    // gives the still-draining pool back, closed.
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    let timed_out = pool
        .shutdown_timeout(Duration::ZERO)
        .expect_err("held workers cannot have exited");
    let pool = timed_out.into_pool();
    let err = pool.set_workers(2).unwrap_err();
    assert_eq!(err, ResizeError::Shutdown);
    assert!(err.to_string().contains("shutting down"), "{err}");
    assert_eq!(pool.workers(), 3);
    gate.open();
    let report = pool.shutdown();
    assert_eq!(report.executed, 3);
}

fn build_error(builder: corepool::Builder) -> BuildError {
    match builder.pin_workers(false).build() {
        Ok(pool) => panic!("expected a build error, got {pool:?}"),
        Err(err) => err,
    }
}

#[test]
fn builder_refuses_inconsistent_sizing() {
    let _watchdog = Watchdog::new("builder_refuses_inconsistent_sizing");
    let err = build_error(Pool::builder().autoscale(3, 2));
    assert!(
        matches!(&err, BuildError::InvalidAutoscale(why) if why.contains("min (3) is greater than max (2)")),
        "{err:?}"
    );
    assert!(err.to_string().contains("autoscale"), "{err}");

    let err = build_error(Pool::builder().autoscale(0, 4));
    assert!(
        matches!(&err, BuildError::InvalidAutoscale(why) if why.contains("min must be at least 1")),
        "{err:?}"
    );

    for workers in [1, 5] {
        let err = build_error(Pool::builder().workers(workers).autoscale(2, 4));
        assert!(
            matches!(&err, BuildError::InvalidAutoscale(why)
                if why.contains(&format!("workers({workers})")) && why.contains("2..=4")),
            "{err:?}"
        );
    }

    let err = build_error(Pool::builder().workers(4).max_workers(2));
    assert!(
        matches!(
            err,
            BuildError::MaxWorkersTooSmall {
                workers: 4,
                max_workers: 2
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("max_workers(2)") && message.contains('4'),
        "{message}"
    );

    for threshold in [0.0, 1.5, -0.1, f64::NAN] {
        let err = build_error(Pool::builder().on_queue_fill(threshold, |_| {}));
        assert!(
            matches!(err, BuildError::InvalidFillThreshold(t) if t.is_nan() == threshold.is_nan()
                && (t.is_nan() || t == threshold)),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("fill threshold") && message.contains("(0, 1]"),
            "{message}"
        );
    }

    // The edges that are allowed.
    for builder in [
        Pool::builder().on_queue_fill(1.0, |_| {}),
        Pool::builder().workers(2).max_workers(2),
        Pool::builder().workers(4).autoscale(2, 4),
        Pool::builder().autoscale(3, 3),
    ] {
        builder.pin_workers(false).build().expect("a valid edge");
    }
    // With autoscale and no explicit max_workers, the autoscale maximum
    // sets the reserved slots.
    let pool = Pool::builder()
        .autoscale(1, 5)
        .pin_workers(false)
        .build()
        .unwrap();
    assert_eq!((pool.workers(), pool.metrics().max_workers), (1, 5));
    pool.set_workers(5).unwrap();
    assert_eq!(
        pool.set_workers(6),
        Err(ResizeError::AboveMax {
            requested: 6,
            max: 5
        })
    );
}
