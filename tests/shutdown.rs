//! Shutdown: dropping the pool (or `shutdown()`) refuses later work and
//! hands each refused closure back, yet runs everything already accepted
//! (`refuse_and_drain`). `shutdown()` drains and reports,
//! `shutdown_timeout` gives the still-draining pool back when time runs
//! out, `shutdown_now` stops at once and hands the unstarted tasks back as
//! `Task` values to run or drop. Worker hooks bracket each worker's life.
//! The stress test races four producers against `shutdown_now` and checks
//! that every accepted task was run exactly once, handed back, or
//! cancelled by its owner.
//!
//! See `docs/lifecycle.md` for the full story.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use corepool::{Handle, JoinHandle, Pool};
use support::{hold_one_worker, wait_until, within, Gate, WATCHDOG};

fn one_worker(capacity: usize) -> Pool {
    Pool::builder()
        .workers(1)
        .queue_capacity(capacity)
        .pin_workers(false)
        .build()
        .expect("build a pool")
}

/// Per-task bookkeeping: how often each task's closure ran, and whether it
/// was dropped without running. A closure carries a [`Probe`]; running the
/// closure consumes the probe (counted as a run), dropping the closure
/// unrun drops the probe (counted as a drop).
struct Tracker {
    runs: Vec<AtomicU8>,
    drops: Vec<AtomicU8>,
}

impl Tracker {
    fn new(tasks: usize) -> Arc<Tracker> {
        Arc::new(Tracker {
            runs: (0..tasks).map(|_| AtomicU8::new(0)).collect(),
            drops: (0..tasks).map(|_| AtomicU8::new(0)).collect(),
        })
    }

    fn probe(self: &Arc<Tracker>, id: usize) -> Probe {
        Probe {
            id,
            tracker: self.clone(),
            ran: false,
        }
    }

    fn runs(&self, id: usize) -> u8 {
        self.runs[id].load(Ordering::SeqCst)
    }

    fn drops(&self, id: usize) -> u8 {
        self.drops[id].load(Ordering::SeqCst)
    }
}

struct Probe {
    id: usize,
    tracker: Arc<Tracker>,
    ran: bool,
}

impl Probe {
    fn run(mut self) -> usize {
        self.ran = true;
        self.tracker.runs[self.id].fetch_add(1, Ordering::SeqCst);
        self.id
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if !self.ran {
            self.tracker.drops[self.id].fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Holds the only worker of `pool` until `shutdown_now` (or any shutdown)
/// has begun, then lets it finish: the task spins (yielding) on
/// `is_shutdown`, which becomes true only after `shutdown_now` has told
/// the workers to stop taking tasks. Returns once the task is running.
fn hold_until_shutdown(pool: &Pool, probe: Probe) -> JoinHandle<usize> {
    let (started_tx, started_rx) = mpsc::channel();
    let handle = pool.handle();
    let held = pool
        .spawn(move || {
            started_tx.send(()).unwrap();
            while !handle.is_shutdown() {
                thread::yield_now();
            }
            probe.run()
        })
        .unwrap();
    started_rx.recv_timeout(WATCHDOG).unwrap();
    held
}

#[test]
fn shutdown_drains_everything_accepted_and_reports_it() {
    within("graceful shutdown", || {
        let handler_calls = Arc::new(AtomicUsize::new(0));
        let seen = handler_calls.clone();
        let pool = Pool::builder()
            .workers(1)
            .queue_capacity(64)
            .pin_workers(false)
            .panic_handler(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        let tracker = Tracker::new(100);
        let handle = pool.handle();
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        hold_one_worker(&pool, &gate);

        // Queued behind the held worker: 10 submits (2 panic), 10 spawns
        // (2 panic), and a task that submits 5 children while draining.
        for id in 0..10 {
            let probe = tracker.probe(id);
            pool.submit(move || {
                probe.run();
                if id.is_multiple_of(5) {
                    panic!("submitted task {id}");
                }
            })
            .unwrap();
        }
        let spawned: Vec<JoinHandle<usize>> = (10..20)
            .map(|id| {
                let probe = tracker.probe(id);
                pool.spawn(move || {
                    let id = probe.run();
                    if id.is_multiple_of(4) {
                        panic!("spawned task {id}");
                    }
                    id
                })
                .unwrap()
            })
            .collect();
        let parent_probe = tracker.probe(20);
        let inner = handle.clone();
        let children = tracker.clone();
        pool.submit(move || {
            parent_probe.run();
            for id in 21..26 {
                let probe = children.probe(id);
                // From inside, during the drain: accepted.
                inner
                    .submit(move || {
                        probe.run();
                    })
                    .expect("internal submissions are accepted while draining");
            }
        })
        .unwrap();
        assert_eq!(pool.queued(), 21);

        // Once shutdown has begun, external submissions are refused (the
        // closure comes back) and the held worker may go on.
        let opener = {
            let handle = handle.clone();
            let gate = gate.clone();
            thread::spawn(move || {
                wait_until("shutdown to begin", || handle.is_shutdown());
                let came_back = Arc::new(AtomicBool::new(false));
                let flag = came_back.clone();
                match handle.submit(move || flag.store(true, Ordering::SeqCst)) {
                    Err(err) => err.into_inner()(),
                    Ok(()) => panic!("accepted from outside after shutdown began"),
                }
                gate.open();
                came_back.load(Ordering::SeqCst)
            })
        };
        let report = pool.shutdown();
        assert!(opener.join().unwrap(), "refused with the closure back");

        for id in 0..26 {
            assert_eq!(tracker.runs(id), 1, "task {id} ran exactly once");
        }

        // 1 holder + 10 submitted + 10 spawned + 1 parent + 5 children.
        assert_eq!(report.executed, 27);
        assert_eq!(report.panicked, 2 + 2);
        assert!(report.unstarted.is_empty());
        assert_eq!(
            handler_calls.load(Ordering::SeqCst),
            2,
            "submit panics only"
        );
        let mut panicked = 0;
        for (id, h) in (10..20).zip(spawned) {
            assert!(h.is_finished());
            match h.join() {
                Ok(value) => assert_eq!(value, id),
                Err(err) => {
                    assert!(err.is_panic(), "{err:?}");
                    panicked += 1;
                }
            }
        }
        assert_eq!(panicked, 2);
    });
}

#[test]
fn dropping_the_pool_drains_like_shutdown() {
    within("drop drains", || {
        let pool = one_worker(64);
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        hold_one_worker(&pool, &gate);
        let handles: Vec<JoinHandle<u32>> =
            (0..20).map(|i| pool.spawn(move || i).unwrap()).collect();
        let handle = pool.handle();
        let opener = {
            let gate = gate.clone();
            let handle = handle.clone();
            thread::spawn(move || {
                wait_until("shutdown to begin", || handle.is_shutdown());
                gate.open();
            })
        };
        drop(pool);
        opener.join().unwrap();
        for (i, h) in handles.into_iter().enumerate() {
            assert!(h.is_finished(), "drained before drop returned");
            assert_eq!(h.join().unwrap(), i as u32);
        }
        assert!(handle.spawn(|| 0).is_err());
    });
}

#[test]
fn shutdown_timeout_returns_the_report_when_the_pool_drains_in_time() {
    within("shutdown_timeout in time", || {
        let pool = Pool::builder()
            .workers(2)
            .pin_workers(false)
            .build()
            .unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let ran = ran.clone();
            pool.submit(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        let report = pool
            .shutdown_timeout(WATCHDOG)
            .expect("100 empty tasks drain long before the watchdog");
        assert_eq!(report.executed, 100);
        assert_eq!(report.panicked, 0);
        assert!(report.unstarted.is_empty());
        assert_eq!(ran.load(Ordering::SeqCst), 100);
    });
}

/// A one-worker pool whose worker is held on `gate`, with 3 tasks queued
/// behind it, timed out: returns the error and the tracker (ids 0..3).
fn timed_out_pool(
    gate: &Arc<Gate>,
) -> (
    corepool::ShutdownTimedOut,
    Arc<Tracker>,
    Vec<JoinHandle<usize>>,
) {
    let pool = one_worker(8);
    let tracker = Tracker::new(3);
    hold_one_worker(&pool, gate);
    let probe = tracker.probe(0);
    pool.submit(move || {
        probe.run();
    })
    .unwrap();
    let handles = (1..3)
        .map(|id| {
            let probe = tracker.probe(id);
            pool.spawn(move || probe.run()).unwrap()
        })
        .collect();
    let handle = pool.handle();
    let timed_out = pool
        .shutdown_timeout(Duration::from_millis(10))
        .expect_err("the only worker is held on the gate");
    assert!(handle.is_shutdown(), "closed to new work");
    assert!(matches!(
        handle.try_submit(|| {}),
        Err(e) if e.is_shutdown()
    ));
    (timed_out, tracker, handles)
}

#[test]
fn shutdown_timeout_gives_the_pool_back_and_shutdown_then_loses_nothing() {
    within("shutdown_timeout then shutdown", || {
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        let (timed_out, tracker, handles) = timed_out_pool(&gate);
        assert_eq!(timed_out.running_workers(), 1);
        assert_eq!(timed_out.queued(), 3);
        assert_eq!(
            timed_out.to_string(),
            "shutdown timed out with 1 workers still running and 3 tasks not yet started"
        );
        assert!(format!("{timed_out:?}").contains("queued: 3"));

        let pool = timed_out.into_pool();
        gate.open();
        let report = pool.shutdown();
        assert_eq!(report.executed, 4);
        assert!(report.unstarted.is_empty());
        for id in 0..3 {
            assert_eq!(tracker.runs(id), 1, "task {id} ran once");
        }
        for (id, h) in (1..3).zip(handles) {
            assert_eq!(h.join().unwrap(), id);
        }
    });
}

#[test]
fn shutdown_timeout_gives_the_pool_back_and_shutdown_now_loses_nothing() {
    within("shutdown_timeout then shutdown_now", || {
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        let (timed_out, tracker, handles) = timed_out_pool(&gate);
        let pool = timed_out.into_pool();
        // The gate opens while shutdown_now waits for the worker; the
        // queued tasks are either run by it first or handed back.
        let opener = {
            let gate = gate.clone();
            thread::spawn(move || gate.open())
        };
        let report = pool.shutdown_now();
        opener.join().unwrap();
        let ran_in_pool: usize = (0..3).map(|id| tracker.runs(id) as usize).sum();
        assert_eq!(report.executed, 1 + ran_in_pool as u64);
        assert_eq!(
            ran_in_pool + report.unstarted.len(),
            3,
            "run or handed back"
        );
        for task in report.unstarted {
            task.run();
        }
        for id in 0..3 {
            assert_eq!(tracker.runs(id), 1, "task {id} ran exactly once");
            assert_eq!(tracker.drops(id), 0);
        }
        for (id, h) in (1..3).zip(handles) {
            assert_eq!(h.join().unwrap(), id);
        }
    });
}

#[test]
fn shutdown_now_hands_back_unstarted_tasks_to_run_or_drop() {
    within("shutdown_now hands back", || {
        let pool = one_worker(16);
        let tracker = Tracker::new(9);
        // Task 8 is running when shutdown_now starts, and finishes.
        let running = hold_until_shutdown(&pool, tracker.probe(8));

        for id in 0..4 {
            let probe = tracker.probe(id);
            pool.submit(move || {
                probe.run();
            })
            .unwrap();
        }
        let spawned: Vec<JoinHandle<usize>> = (4..8)
            .map(|id| {
                let probe = tracker.probe(id);
                pool.spawn(move || probe.run()).unwrap()
            })
            .collect();
        assert_eq!(pool.queued(), 8);

        let report = pool.shutdown_now();
        assert_eq!(running.join().unwrap(), 8, "the running task finished");
        assert_eq!(report.executed, 1);
        assert_eq!(report.panicked, 0);
        assert_eq!(report.unstarted.len(), 8, "nothing queued started");
        for id in 0..8 {
            assert_eq!(
                (tracker.runs(id), tracker.drops(id)),
                (0, 0),
                "task {id} untouched"
            );
        }
        assert!(spawned.iter().all(|h| !h.is_finished()));

        // Run every other one, drop the rest.
        let mut run_ids = Vec::new();
        for (i, task) in report.unstarted.into_iter().enumerate() {
            assert!(format!("{task:?}").contains("stack_job: false"));
            if i.is_multiple_of(2) {
                let before: Vec<u8> = (0..8).map(|id| tracker.runs(id)).collect();
                task.run();
                let now: Vec<usize> = (0..8)
                    .filter(|&id| tracker.runs(id) != before[id])
                    .collect();
                assert_eq!(now.len(), 1, "Task::run ran exactly one closure");
                run_ids.push(now[0]);
            } else {
                drop(task);
            }
        }
        assert_eq!(run_ids.len(), 4);
        for id in 0..8 {
            let expected = if run_ids.contains(&id) {
                (1, 0)
            } else {
                (0, 1)
            };
            assert_eq!((tracker.runs(id), tracker.drops(id)), expected, "task {id}");
        }
        // Spawned tasks: a run one delivers its value, a dropped one
        // resolves to Cancelled.
        for (id, h) in (4..8).zip(spawned) {
            assert!(h.is_finished(), "resolved once run or dropped");
            match h.join() {
                Ok(value) => {
                    assert_eq!(value, id);
                    assert!(run_ids.contains(&id));
                }
                Err(err) if err.is_cancelled() => assert!(!run_ids.contains(&id)),
                Err(err) => panic!("task {id}: {err:?}"),
            }
        }
    });
}

#[test]
fn shutdown_now_hands_back_one_word_closures_to_run_or_drop() {
    // A closure of one word (here a `Box`) is stored in the task itself,
    // with no allocation; handed back, it must still run or drop once.
    within("shutdown_now hands back one-word closures", || {
        let pool = one_worker(16);
        let tracker = Tracker::new(7);
        let running = hold_until_shutdown(&pool, tracker.probe(6));
        for id in 0..6 {
            let probe = Box::new(tracker.probe(id));
            pool.submit(move || {
                probe.run();
            })
            .unwrap();
        }
        let report = pool.shutdown_now();
        assert_eq!(running.join().unwrap(), 6);
        assert_eq!(report.unstarted.len(), 6, "nothing queued started");
        for (i, task) in report.unstarted.into_iter().enumerate() {
            if i.is_multiple_of(2) {
                task.run();
            } else {
                drop(task);
            }
        }
        let outcomes: Vec<(u8, u8)> = (0..6)
            .map(|id| (tracker.runs(id), tracker.drops(id)))
            .collect();
        assert_eq!(
            outcomes.iter().filter(|&&o| o == (1, 0)).count(),
            3,
            "{outcomes:?}"
        );
        assert_eq!(
            outcomes.iter().filter(|&&o| o == (0, 1)).count(),
            3,
            "{outcomes:?}"
        );
    });
}

#[test]
fn handed_back_tasks_keep_their_panic_and_cancel_behaviour() {
    within("handed-back panics", || {
        let pool = one_worker(16);
        let tracker = Tracker::new(1);
        let running = hold_until_shutdown(&pool, tracker.probe(0));
        pool.submit(|| panic!("submitted, run by hand")).unwrap();
        let spawned_panic = pool
            .spawn(|| -> u8 { panic!("spawned, run by hand") })
            .unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let to_cancel = pool
            .spawn(move || flag.store(true, Ordering::SeqCst))
            .unwrap();

        let report = pool.shutdown_now();
        running.join().unwrap();
        assert_eq!(report.unstarted.len(), 3);
        // Cancelled after it was handed back, before it is run: running the
        // Task then does nothing.
        assert!(to_cancel.cancel());
        let mut submit_panics = 0;
        for task in report.unstarted {
            // A submitted task's panic reaches whoever runs it; a spawned
            // task's panic goes to its JoinHandle.
            if catch_unwind(AssertUnwindSafe(|| task.run())).is_err() {
                submit_panics += 1;
            }
        }
        assert_eq!(submit_panics, 1);
        let payload = spawned_panic.join().unwrap_err().into_panic().unwrap();
        assert_eq!(*payload.downcast::<&str>().unwrap(), "spawned, run by hand");
        assert!(to_cancel.join().unwrap_err().is_cancelled());
        assert!(!ran.load(Ordering::SeqCst));
    });
}

fn tree_sum(values: &[u64]) -> u64 {
    if values.len() <= 4 {
        return values.iter().sum();
    }
    let (left, right) = values.split_at(values.len() / 2);
    let (a, b) = corepool::join(|| tree_sum(left), || tree_sum(right));
    a + b
}

#[test]
fn shutdown_now_lets_a_running_join_finish_its_pieces_and_hands_back_the_rest() {
    within("shutdown_now during a join", || {
        let pool = Pool::builder()
            .workers(2)
            .queue_capacity(16)
            .pin_workers(false)
            .build()
            .unwrap();
        let handle = pool.handle();
        // Both workers held (a barrier of 3 can only complete with the two
        // tasks on different workers) until shutdown_now has begun.
        let entered = Arc::new(Barrier::new(3));
        let values: Arc<Vec<u64>> = Arc::new((0..20_000).collect());
        let forker = {
            let (entered, handle, values) = (entered.clone(), handle.clone(), values.clone());
            pool.spawn(move || {
                entered.wait();
                while !handle.is_shutdown() {
                    thread::yield_now();
                }
                // Started before shutdown_now: its join pieces all run.
                tree_sum(&values)
            })
            .unwrap()
        };
        let other = {
            let (entered, handle) = (entered.clone(), handle.clone());
            pool.spawn(move || {
                entered.wait();
                while !handle.is_shutdown() {
                    thread::yield_now();
                }
            })
            .unwrap()
        };
        entered.wait();
        let extras = Arc::new(AtomicUsize::new(0));
        for _ in 0..5 {
            let extras = extras.clone();
            pool.submit(move || {
                extras.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }

        let report = pool.shutdown_now();
        assert_eq!(forker.join().unwrap(), values.iter().sum::<u64>());
        other.join().unwrap();
        assert_eq!(
            report.unstarted.len(),
            5,
            "only the queued extras come back"
        );
        assert_eq!(extras.load(Ordering::SeqCst), 0);
        for task in report.unstarted {
            task.run();
        }
        assert_eq!(extras.load(Ordering::SeqCst), 5);
    });
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Start(usize, String),
    Task(String),
    Stop(usize, String),
}

fn hooked_pool(name: &'static str, workers: usize, log: &Arc<Mutex<Vec<Event>>>) -> Pool {
    let (on_start, on_stop) = (log.clone(), log.clone());
    Pool::builder()
        .workers(workers)
        .thread_name(name)
        .pin_workers(false)
        .on_worker_start(move |index| {
            let me = thread::current().name().unwrap_or("").to_owned();
            on_start.lock().unwrap().push(Event::Start(index, me));
        })
        .on_worker_stop(move |index| {
            let me = thread::current().name().unwrap_or("").to_owned();
            on_stop.lock().unwrap().push(Event::Stop(index, me));
        })
        .build()
        .unwrap()
}

/// Runs one task on every worker at once (a barrier sized to the worker
/// count can only complete with each task on a different worker), and
/// some more; each task logs the thread it ran on.
fn log_tasks_on_every_worker(pool: &Pool, log: &Arc<Mutex<Vec<Event>>>) {
    let together = Arc::new(Barrier::new(pool.workers()));
    let mut handles = Vec::new();
    for _ in 0..pool.workers() {
        let (together, log) = (together.clone(), log.clone());
        handles.push(
            pool.spawn(move || {
                together.wait();
                let me = thread::current().name().unwrap_or("").to_owned();
                log.lock().unwrap().push(Event::Task(me));
            })
            .unwrap(),
        );
    }
    for _ in 0..50 {
        let log = log.clone();
        handles.push(
            pool.spawn(move || {
                let me = thread::current().name().unwrap_or("").to_owned();
                log.lock().unwrap().push(Event::Task(me));
            })
            .unwrap(),
        );
    }
    for h in handles {
        h.join().unwrap();
    }
}

/// Each worker's start hook ran once, on that worker, with its index,
/// before every task it ran; its stop hook once, after them.
fn check_hook_log(name: &str, workers: usize, log: &[Event]) {
    for index in 0..workers {
        let thread = format!("{name}-{index}");
        let starts: Vec<usize> = positions(log, |e| matches!(e, Event::Start(i, _) if *i == index));
        let stops: Vec<usize> = positions(log, |e| matches!(e, Event::Stop(i, _) if *i == index));
        assert_eq!(
            starts.len(),
            1,
            "one start hook call for worker {index}: {log:?}"
        );
        assert_eq!(
            stops.len(),
            1,
            "one stop hook call for worker {index}: {log:?}"
        );
        assert_eq!(
            log[starts[0]],
            Event::Start(index, thread.clone()),
            "on the worker's thread"
        );
        assert_eq!(
            log[stops[0]],
            Event::Stop(index, thread.clone()),
            "on the worker's thread"
        );
        let tasks = positions(log, |e| *e == Event::Task(thread.clone()));
        for t in tasks {
            assert!(
                starts[0] < t && t < stops[0],
                "worker {index}: a task outside its hooks: {log:?}"
            );
        }
    }
    assert!(log.iter().all(|e| match e {
        Event::Start(i, _) | Event::Stop(i, _) => *i < workers,
        Event::Task(_) => true,
    }));
}

fn positions(log: &[Event], pred: impl Fn(&Event) -> bool) -> Vec<usize> {
    log.iter()
        .enumerate()
        .filter(|(_, e)| pred(e))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn worker_hooks_bracket_each_workers_tasks() {
    within("worker hooks", || {
        let log = Arc::new(Mutex::new(Vec::new()));
        let pool = hooked_pool("hooked", 3, &log);
        log_tasks_on_every_worker(&pool, &log);
        pool.shutdown();
        let log = log.lock().unwrap().clone();
        check_hook_log("hooked", 3, &log);
        for index in 0..3 {
            assert!(
                log.contains(&Event::Task(format!("hooked-{index}"))),
                "every worker ran a task"
            );
        }

        // shutdown_now stops the workers through their stop hooks too.
        let log = Arc::new(Mutex::new(Vec::new()));
        let pool = hooked_pool("abrupt", 2, &log);
        log_tasks_on_every_worker(&pool, &log);
        let report = pool.shutdown_now();
        assert!(report.unstarted.is_empty());
        let log = log.lock().unwrap().clone();
        check_hook_log("abrupt", 2, &log);
    });
}

// ---------------------------------------------------------------------------
// The stress test: producers racing shutdown_now.

const PRODUCERS: usize = 4;
/// Attempts (accepted or refused) per producer per round, at most.
const ATTEMPTS: usize = 2_000;
/// Ids for tasks spawned by tasks, after the producers' ids.
const CHILDREN: usize = 2_000;
const ROUNDS: usize = 1_000;

struct Round {
    tracker: Arc<Tracker>,
    accepted: Vec<AtomicBool>,
    owner_cancelled: Vec<AtomicBool>,
    accepted_total: AtomicUsize,
    next_child: AtomicUsize,
}

impl Round {
    fn new() -> Arc<Round> {
        let ids = PRODUCERS * ATTEMPTS + CHILDREN;
        Arc::new(Round {
            tracker: Tracker::new(ids),
            accepted: (0..ids).map(|_| AtomicBool::new(false)).collect(),
            owner_cancelled: (0..ids).map(|_| AtomicBool::new(false)).collect(),
            accepted_total: AtomicUsize::new(0),
            next_child: AtomicUsize::new(PRODUCERS * ATTEMPTS),
        })
    }

    fn accept(&self, id: usize) {
        assert!(!self.accepted[id].swap(true, Ordering::SeqCst));
        self.accepted_total.fetch_add(1, Ordering::SeqCst);
    }

    /// The closure of task `id`: records its run; every 7th also submits a
    /// child from inside the pool (accepted there even while stopping).
    fn task(
        self: &Arc<Round>,
        id: usize,
        handle: &Handle,
    ) -> impl FnOnce() -> usize + Send + 'static {
        let probe = self.tracker.probe(id);
        let spawner = id.is_multiple_of(7).then(|| (self.clone(), handle.clone()));
        move || {
            let id = probe.run();
            if let Some((round, handle)) = spawner {
                let child = round.next_child.fetch_add(1, Ordering::SeqCst);
                if child < round.accepted.len() {
                    let probe = round.tracker.probe(child);
                    // Refused only when this task is run by hand after the
                    // pool is gone; the closure then comes back, dropped.
                    if handle
                        .submit(move || {
                            probe.run();
                        })
                        .is_ok()
                    {
                        round.accept(child);
                    }
                }
            }
            id
        }
    }
}

/// One producer: keeps submitting until the pool refuses as shut down (or
/// it runs out of ids). `kind` 0: submit, 1: try_submit, 2: spawn (every
/// 5th spawned handle cancelled at once), 3: a mix of the three.
fn produce(
    round: Arc<Round>,
    handle: Handle,
    p: usize,
    start: Arc<Barrier>,
) -> Vec<(usize, JoinHandle<usize>)> {
    let mut spawned = Vec::new();
    start.wait();
    for attempt in 0..ATTEMPTS {
        let id = p * ATTEMPTS + attempt;
        let task = round.task(id, &handle);
        let kind = if p == 3 { attempt % 3 } else { p };
        match kind {
            0 => match handle.submit(move || {
                task();
            }) {
                Ok(()) => round.accept(id),
                Err(_) => break,
            },
            1 => match handle.try_submit(move || {
                task();
            }) {
                Ok(()) => round.accept(id),
                Err(err) if err.is_full() => thread::yield_now(),
                Err(_) => break,
            },
            _ => match handle.spawn(task) {
                Ok(join) => {
                    round.accept(id);
                    if attempt.is_multiple_of(5) && join.cancel() {
                        round.owner_cancelled[id].store(true, Ordering::SeqCst);
                    }
                    spawned.push((id, join));
                }
                Err(_) => break,
            },
        }
    }
    spawned
}

fn stress_round(r: usize) {
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity([8, 1, 64][r % 3])
        .pin_workers(false)
        .build()
        .unwrap();
    let round = Round::new();
    let start = Arc::new(Barrier::new(PRODUCERS + 1));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (round, handle, start) = (round.clone(), pool.handle(), start.clone());
            thread::spawn(move || produce(round, handle, p, start))
        })
        .collect();
    start.wait();
    // Vary how far the producers get before the stop: from "at once" on.
    let threshold = r % 41;
    wait_until("producers to get going", || {
        round.accepted_total.load(Ordering::SeqCst) >= threshold
    });
    let report = pool.shutdown_now();
    let spawned: Vec<(usize, JoinHandle<usize>)> = producers
        .into_iter()
        .flat_map(|p| p.join().expect("a producer panicked"))
        .collect();

    // Every worker has exited and every producer stopped: what ran in the
    // pool, and what the pool dropped (only cancelled spawns), is final.
    let tracker = &round.tracker;
    let ids = round.accepted.len();
    let accepted: Vec<usize> = (0..ids)
        .filter(|&id| round.accepted[id].load(Ordering::SeqCst))
        .collect();
    let ran_in_pool = accepted.iter().filter(|&&id| tracker.runs(id) == 1).count();
    let cancelled_in_pool: Vec<usize> = accepted
        .iter()
        .copied()
        .filter(|&id| tracker.drops(id) == 1)
        .collect();
    for &id in &cancelled_in_pool {
        assert!(
            round.owner_cancelled[id].load(Ordering::SeqCst),
            "round {r}: task {id} was dropped unrun without being cancelled: lost, neither run nor handed back"
        );
    }
    let handed_back = report.unstarted.len();
    assert_eq!(
        report.executed as usize + handed_back,
        accepted.len(),
        "round {r}: every accepted task is executed by a worker or handed back"
    );
    assert_eq!(
        ran_in_pool + handed_back + cancelled_in_pool.len(),
        accepted.len(),
        "round {r}: run + handed back + cancelled == accepted"
    );
    assert_eq!(
        report.executed as usize,
        ran_in_pool + cancelled_in_pool.len(),
        "round {r}"
    );

    // Run half of what came back, drop the other half.
    let mut run_by_hand = 0;
    for (i, task) in report.unstarted.into_iter().enumerate() {
        if (i + r).is_multiple_of(2) {
            task.run();
            run_by_hand += 1;
        } else {
            drop(task);
        }
    }

    // Exactly once, per task: an accepted closure ran once or was dropped
    // unrun, never both, never neither; one cancelled by its owner never
    // ran; a refused one came back to its producer and never ran.
    let (mut ran_total, mut dropped_total) = (0, 0);
    for id in 0..ids {
        let (runs, drops) = (tracker.runs(id), tracker.drops(id));
        assert!(runs <= 1, "round {r}: task {id} ran {runs} times");
        if round.accepted[id].load(Ordering::SeqCst) {
            assert_eq!(
                runs + drops,
                1,
                "round {r}: accepted task {id}: runs {runs}, drops {drops}"
            );
            if round.owner_cancelled[id].load(Ordering::SeqCst) {
                assert_eq!(
                    runs, 0,
                    "round {r}: task {id} ran after its owner cancelled it"
                );
            }
            ran_total += runs as usize;
            dropped_total += drops as usize;
        } else {
            assert_eq!(runs, 0, "round {r}: refused task {id} ran");
        }
    }
    // Each handed-back task was then run by hand or dropped, once.
    let ran_by_hand = ran_total - ran_in_pool;
    let dropped_after = dropped_total - cancelled_in_pool.len();
    assert_eq!(ran_by_hand + dropped_after, handed_back, "round {r}");
    assert!(ran_by_hand <= run_by_hand, "round {r}");

    // Spawned handles: all resolved by now; a value iff the closure ran.
    let mut cancelled = 0;
    for (id, join) in spawned {
        assert!(
            join.is_finished(),
            "round {r}: spawned task {id} never resolved"
        );
        match join.join() {
            Ok(value) => {
                assert_eq!(value, id);
                assert_eq!(tracker.runs(id), 1, "round {r}: task {id}");
            }
            Err(err) if err.is_cancelled() => {
                assert_eq!(tracker.runs(id), 0, "round {r}: task {id}");
                cancelled += 1;
            }
            Err(err) => panic!("round {r}: task {id}: {err:?}"),
        }
    }
    let spawned_unrun = accepted
        .iter()
        .filter(|&&id| tracker.runs(id) == 0 && is_spawned(id))
        .count();
    assert_eq!(cancelled, spawned_unrun, "round {r}");
    if std::env::var_os("LIFECYCLE_STATS").is_some() {
        eprintln!(
            "round {r}: accepted {} ran in pool {ran_in_pool} handed back {handed_back} cancelled in pool {} cancelled handles {cancelled}",
            accepted.len(),
            cancelled_in_pool.len()
        );
    }
}

/// Whether producer id `id` went through `spawn` (see [`produce`]).
fn is_spawned(id: usize) -> bool {
    if id >= PRODUCERS * ATTEMPTS {
        return false; // children are submitted
    }
    let (p, attempt) = (id / ATTEMPTS, id % ATTEMPTS);
    p == 2 || (p == 3 && attempt % 3 == 2)
}

#[test]
fn stress_producers_racing_shutdown_now_lose_and_duplicate_nothing() {
    within("producers racing shutdown_now", || {
        // LIFECYCLE_ROUNDS=n runs more (or fewer) rounds, to hunt races.
        let rounds = std::env::var("LIFECYCLE_ROUNDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(ROUNDS);
        for r in 0..rounds {
            stress_round(r);
        }
    });
}

// ---------------------------------------------------------------------------
// An accepted submission that has taken its slot but is not yet queued.
//
// A global allocator with a per-thread trigger: the first allocation of a
// chosen range of sizes on a thread that armed it runs an action. `submit`
// takes its slot of the bound first and boxes the closure after (behind a
// header of at most 16 bytes), so stalling that box holds a producer
// exactly between "accepted" and "queued".

struct TriggeringAlloc;

/// Trigger actions.
const STALL: u8 = 1;
const RELEASE_AFTER_DRAIN: u8 = 2;

static STALLED: AtomicBool = AtomicBool::new(false);
static RESUME: AtomicBool = AtomicBool::new(false);
static PRODUCER_RETURNED: AtomicBool = AtomicBool::new(false);
static WORKER_EXITED: AtomicBool = AtomicBool::new(false);
static RELEASED_AFTER_EXIT: AtomicBool = AtomicBool::new(false);
static TRIGGER_TESTS: Mutex<()> = Mutex::new(());

thread_local! {
    /// (smallest size, largest size, action) armed on this thread; an
    /// empty range when disarmed.
    static TRIGGER: Cell<(usize, usize, u8)> = const { Cell::new(DISARMED) };
}

const DISARMED: (usize, usize, u8) = (usize::MAX, 0, 0);

fn arm(sizes: std::ops::RangeInclusive<usize>, action: u8) {
    TRIGGER.with(|trigger| trigger.set((*sizes.start(), *sizes.end(), action)));
}

fn disarm() {
    TRIGGER.with(|trigger| trigger.set(DISARMED));
}

fn spin_until(flag: &AtomicBool) {
    while !flag.load(Ordering::SeqCst) {
        thread::yield_now();
    }
}

// SAFETY: every call is forwarded to `System` unchanged; a trigger only
// delays it, and touches nothing but atomics and a const thread-local
// `Cell` (no allocation, no destructor).
unsafe impl GlobalAlloc for TriggeringAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let action = TRIGGER
            .try_with(|trigger| {
                let (smallest, largest, action) = trigger.get();
                if (smallest..=largest).contains(&layout.size()) {
                    trigger.set(DISARMED);
                    action
                } else {
                    0
                }
            })
            .unwrap_or(0);
        match action {
            STALL => {
                STALLED.store(true, Ordering::SeqCst);
                spin_until(&RESUME);
            }
            RELEASE_AFTER_DRAIN => {
                RELEASED_AFTER_EXIT.store(WORKER_EXITED.load(Ordering::SeqCst), Ordering::SeqCst);
                RESUME.store(true, Ordering::SeqCst);
                spin_until(&PRODUCER_RETURNED);
            }
            _ => {}
        }
        // SAFETY: the caller's contract is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: TriggeringAlloc = TriggeringAlloc;

fn reset_triggers() {
    for flag in [
        &STALLED,
        &RESUME,
        &PRODUCER_RETURNED,
        &WORKER_EXITED,
        &RELEASED_AFTER_EXIT,
    ] {
        flag.store(false, Ordering::SeqCst);
    }
}

/// Starts a producer that submits a task (tracked as id 0) through
/// `handle` and stalls between taking its slot and queueing the task.
/// Returns once it is stalled there; the thread returns whether the
/// submission was accepted.
fn stalled_submit(handle: Handle, tracker: &Arc<Tracker>) -> thread::JoinHandle<bool> {
    let probe = tracker.probe(0);
    let ballast = [7u8; 3_001]; // gives the boxed closure a size of its own
    let task = move || {
        assert_eq!(ballast[3_000], 7);
        probe.run();
    };
    let size = std::mem::size_of_val(&task);
    let producer = thread::spawn(move || {
        arm(size..=size + 16, STALL);
        let accepted = handle.submit(task).is_ok();
        disarm();
        PRODUCER_RETURNED.store(true, Ordering::SeqCst);
        accepted
    });
    wait_until("the producer to stall", || STALLED.load(Ordering::SeqCst));
    producer
}

#[test]
fn graceful_shutdown_waits_for_a_submission_that_took_its_slot() {
    let _serial = TRIGGER_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    reset_triggers();
    within("shutdown with a stalled submission", || {
        let pool = one_worker(4);
        let handle = pool.handle();
        let tracker = Tracker::new(1);
        let producer = stalled_submit(pool.handle(), &tracker);
        assert_eq!(pool.queued(), 1, "the slot is taken");
        let closer = thread::spawn(move || pool.shutdown());
        wait_until("shutdown to begin", || handle.is_shutdown());
        RESUME.store(true, Ordering::SeqCst);
        assert!(producer.join().unwrap(), "accepted before the close");
        let report = closer.join().unwrap();
        assert_eq!(tracker.runs(0), 1, "the accepted task ran");
        assert_eq!(report.executed, 1);
    });
}

#[test]
fn shutdown_now_hands_back_a_submission_that_took_its_slot() {
    let _serial = TRIGGER_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    reset_triggers();
    within("shutdown_now with a stalled submission", || {
        let pool = Pool::builder()
            .workers(1)
            .queue_capacity(4)
            .pin_workers(false)
            .on_worker_stop(|_| WORKER_EXITED.store(true, Ordering::SeqCst))
            .build()
            .unwrap();
        let tracker = Tracker::new(2);
        // The only worker: once shutdown_now has begun, it leaves a child
        // (id 1) on its own deque and exits, so the drain finds that child
        // in the worker's deque, after it found the injector empty.
        let (started_tx, started_rx) = mpsc::channel();
        let handle = pool.handle();
        let child = tracker.probe(1);
        pool.submit(move || {
            started_tx.send(()).unwrap();
            while !handle.is_shutdown() {
                thread::yield_now();
            }
            handle
                .submit(move || {
                    child.run();
                })
                .expect("accepted from inside");
        })
        .unwrap();
        started_rx.recv_timeout(WATCHDOG).unwrap();

        let producer = stalled_submit(pool.handle(), &tracker);
        assert_eq!(pool.queued(), 1, "the stalled task took its slot");
        // Released from inside shutdown_now, when it collects the child:
        // after the drain looked at the injector. The drain then goes on
        // once the stalled task is in the injector.
        arm(
            {
                let tasks = 4 * std::mem::size_of::<corepool::Task>();
                tasks..=tasks
            },
            RELEASE_AFTER_DRAIN,
        );
        let report = pool.shutdown_now();
        disarm();
        assert!(producer.join().unwrap(), "accepted before the close");
        assert!(
            RELEASED_AFTER_EXIT.load(Ordering::SeqCst),
            "the release came from the drain (after the worker exited)"
        );
        let handed_back = report.unstarted.len();
        for task in report.unstarted {
            task.run();
        }
        assert_eq!(tracker.runs(1), 1, "the child was handed back and run");
        assert_eq!(
            report.executed as usize + handed_back,
            3,
            "holder + child + stalled task: the stalled task was neither executed nor \
             handed back (runs {}, drops {})",
            tracker.runs(0),
            tracker.drops(0)
        );
        assert_eq!(tracker.runs(0), 1);
    });
}

#[test]
fn shutdown_now_while_a_running_task_joins_a_queued_one_does_not_hang() {
    let pool = one_worker(4);
    let handle = pool.handle();
    let (target_tx, target_rx) = mpsc::channel::<JoinHandle<u32>>();
    let (started_tx, started_rx) = mpsc::channel();
    let waiter = pool
        .spawn(move || {
            started_tx.send(()).unwrap();
            while !handle.is_shutdown() {
                thread::yield_now();
            }
            target_rx.recv().unwrap().join()
        })
        .unwrap();
    started_rx.recv_timeout(WATCHDOG).unwrap();
    let target = pool.spawn(|| 5).unwrap(); // queued: the only worker is busy
    target_tx.send(target).unwrap();
    let report = within("shutdown_now", move || {
        let report = pool.shutdown_now();
        (report.executed, report.unstarted.len())
    });
    // Either the waiter ran the target while waiting, or the target came
    // back and the waiter saw it cancelled; in both cases nothing hangs.
    match waiter.join().unwrap() {
        Ok(value) => assert_eq!((value, report), (5, (2, 0))),
        Err(err) => assert!(err.is_cancelled() && report == (1, 1), "{err:?} {report:?}"),
    }
}

/// Dropping the pool (or `shutdown()`) stops accepting work from outside,
/// hands every later closure back, and still runs everything that was
/// accepted, including what running tasks spawn while it drains.
mod refuse_and_drain {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};
    use std::thread;
    use std::time::Duration;

    use crate::support::{hold_workers, Gate, Watchdog, WATCHDOG};
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
}
