//! Regression tests for lifecycle defects: closing a pool from inside its
//! own tasks and callbacks, a pool kept in a `thread_local!`,
//! `shutdown_background`, panic payloads whose `Drop` panics, submissions
//! from `on_worker_stop`, autoscaling with a huge step, the `accepted`
//! counter after `shutdown_now`, and stacks too small to run a worker.
//!
//! Every body that could hang runs under the `within` watchdog. See
//! `docs/lifecycle.md` for the behaviour each test pins down.

mod support;

use std::panic::panic_any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use support::WATCHDOG;

/// A panic payload whose `Drop` panics: with a depth above zero, with
/// another `DropBomb` (one level less deep) as the new payload.
struct DropBomb(u32);

impl Drop for DropBomb {
    fn drop(&mut self) {
        if self.0 == 0 {
            panic!("DropBomb exploded while being dropped");
        }
        panic_any(DropBomb(self.0 - 1));
    }
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// Receives `n` messages, failing (not hanging) if the senders are gone.
fn recv_n<T>(rx: &mpsc::Receiver<T>, n: usize, what: &str) -> Vec<T> {
    (0..n)
        .map(|i| {
            rx.recv_timeout(WATCHDOG)
                .unwrap_or_else(|err| panic!("{what}: message {i} of {n} missing ({err:?})"))
        })
        .collect()
}

/// 1. Closing a pool from inside one of its own tasks.
mod close_from_inside {
    use super::*;
    use crate::support::within;
    use corepool::{Pool, DEFAULT_CAPACITY_PER_WORKER};
    use std::sync::Mutex;
    use std::time::Duration;

    #[derive(Clone, Copy, Debug)]
    enum CloseFromInside {
        Drop,
        Shutdown,
        ShutdownTimeoutThenDrop,
    }

    /// A pool at the default capacity (so each worker holds back started
    /// slots), some ordinary tasks, and one task that closes the pool it runs
    /// on. The close returns, every accepted task runs, every worker stops.
    fn close_from_inside(workers: usize, how: CloseFromInside) {
        within(
            &format!("{how:?} from inside, {workers} workers"),
            move || {
                const TASKS: usize = 40;
                let (stopped_tx, stopped_rx) = mpsc::channel();
                let pool = Pool::builder()
                    .workers(workers)
                    .pin_workers(false)
                    .on_worker_stop(move |index| {
                        let _ = stopped_tx.send(index);
                    })
                    .build()
                    .expect("build a pool");
                assert_eq!(pool.capacity(), workers * DEFAULT_CAPACITY_PER_WORKER);
                assert!(pool.capacity() >= 16 * workers, "slots are held back");
                let handle = pool.handle();
                let cell = Arc::new(Mutex::new(Some(pool)));
                let ran = counter();
                for _ in 0..TASKS {
                    let ran = ran.clone();
                    handle
                        .submit(move || {
                            ran.fetch_add(1, Ordering::SeqCst);
                        })
                        .expect("the pool is running");
                }
                let (closed_tx, closed_rx) = mpsc::channel();
                let closer = cell.clone();
                handle
                    .submit(move || {
                        let pool = closer
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .take()
                            .expect("the pool is in the cell");
                        let outcome = match how {
                            CloseFromInside::Drop => {
                                drop(pool);
                                "dropped".to_owned()
                            }
                            CloseFromInside::Shutdown => {
                                let report = pool.shutdown();
                                format!("shut down, {} unstarted", report.unstarted.len())
                            }
                            CloseFromInside::ShutdownTimeoutThenDrop => {
                                match pool.shutdown_timeout(Duration::from_secs(1)) {
                                    Ok(_) => "shutdown_timeout returned Ok from inside".to_owned(),
                                    Err(timed_out) => {
                                        assert!(timed_out.running_workers() >= 1);
                                        drop(timed_out.into_pool());
                                        "timed out, then dropped".to_owned()
                                    }
                                }
                            }
                        };
                        let _ = closed_tx.send(outcome);
                    })
                    .expect("the pool is running");
                let outcome = recv_n(&closed_rx, 1, "the closing task returned").remove(0);
                let expected = match how {
                    CloseFromInside::Drop => "dropped",
                    CloseFromInside::Shutdown => "shut down, 0 unstarted",
                    CloseFromInside::ShutdownTimeoutThenDrop => "timed out, then dropped",
                };
                assert_eq!(outcome, expected);
                let mut stopped = recv_n(&stopped_rx, workers, "every worker stopped");
                stopped.sort_unstable();
                assert_eq!(stopped, (0..workers).collect::<Vec<_>>());
                assert!(handle.is_shutdown());
                assert_eq!(ran.load(Ordering::SeqCst), TASKS, "every task ran");
                let m = handle.metrics();
                assert_eq!(m.executed, TASKS as u64 + 1);
                assert_eq!((m.accepted, m.queue_depth), (TASKS as u64 + 1, 0));
            },
        );
    }

    #[test]
    fn dropping_the_pool_from_inside_a_task_returns_at_default_capacity() {
        for workers in [1, 2, 4] {
            close_from_inside(workers, CloseFromInside::Drop);
        }
    }

    #[test]
    fn shutdown_from_inside_a_task_returns_at_default_capacity() {
        for workers in [1, 2, 4] {
            close_from_inside(workers, CloseFromInside::Shutdown);
        }
    }

    #[test]
    fn shutdown_timeout_then_drop_from_inside_a_task_returns_at_default_capacity() {
        for workers in [1, 2, 4] {
            close_from_inside(workers, CloseFromInside::ShutdownTimeoutThenDrop);
        }
    }
}

/// 2. Dropping the pool inside the `on_queue_fill` callback.
mod drop_in_fill_callback {
    use super::*;
    use crate::support::{hold_one_worker, within, Gate};
    use corepool::{FillEvent, Pool};
    use std::sync::Mutex;

    #[test]
    fn dropping_the_pool_inside_the_fill_callback_does_not_join_the_monitor() {
        within("drop inside on_queue_fill", || {
            let cell: Arc<Mutex<Option<Pool>>> = Arc::new(Mutex::new(None));
            let in_callback = cell.clone();
            let (events_tx, events_rx) = mpsc::channel::<&'static str>();
            let events_tx = Mutex::new(events_tx);
            let pool = Pool::builder()
                .workers(1)
                .queue_capacity(4)
                .pin_workers(false)
                .on_queue_fill(0.5, move |event| {
                    let send = |what| {
                        let _ = events_tx
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .send(what);
                    };
                    if let FillEvent::Above { .. } = event {
                        let pool = in_callback.lock().unwrap_or_else(|e| e.into_inner()).take();
                        send("dropping");
                        drop(pool);
                        send("dropped");
                    }
                })
                .build()
                .expect("build a pool");
            let handle = pool.handle();
            let gate = Gate::new();
            let _open = gate.open_on_drop();
            hold_one_worker(&pool, &gate);
            *cell.lock().unwrap_or_else(|e| e.into_inner()) = Some(pool);
            let ran = counter();
            for _ in 0..2 {
                let ran = ran.clone();
                handle
                    .submit(move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                    })
                    .expect("the pool is running");
            }
            // Two of four queued: the alert fires, and the callback drops the
            // pool, which waits for the held worker.
            assert_eq!(recv_n(&events_rx, 1, "the callback began"), ["dropping"]);
            gate.open();
            assert_eq!(
                recv_n(&events_rx, 1, "the drop inside the callback returned"),
                ["dropped"]
            );
            assert!(handle.is_shutdown());
            assert_eq!(ran.load(Ordering::SeqCst), 2, "the queued tasks ran");
            assert_eq!(handle.metrics().executed, 3);
        });
    }
}

/// 3. A pool kept in a `thread_local!`.
mod pool_in_thread_local {
    use super::*;
    use crate::support::within;
    use corepool::Pool;
    use std::cell::RefCell;
    use std::thread;

    thread_local! {
        static KEPT: RefCell<Option<Pool>> = const { RefCell::new(None) };
    }

    /// A thread keeps a pool in a thread-local and exits; the pool is dropped
    /// while the thread's locals are destroyed. `touch_corepool_first` decides
    /// whether corepool's own thread-local (registered on its first use, by a
    /// submission from outside) is registered before the user's or after it,
    /// so destroyed after it or before it.
    fn pool_in_thread_local(touch_corepool_first: bool) {
        within("a pool in a thread_local", move || {
            const TASKS: usize = 10;
            let ran = counter();
            let (stopped_tx, stopped_rx) = mpsc::channel();
            let in_thread = ran.clone();
            let thread = thread::spawn(move || {
                if touch_corepool_first {
                    let other = Pool::builder().workers(1).pin_workers(false).build();
                    let other = other.expect("build a pool");
                    other.submit(|| {}).expect("the pool is running");
                }
                let pool = Pool::builder()
                    .workers(2)
                    .pin_workers(false)
                    .on_worker_stop(move |index| {
                        let _ = stopped_tx.send(index);
                    })
                    .build()
                    .expect("build a pool");
                // The user's thread-local is registered here...
                KEPT.with(|kept| *kept.borrow_mut() = Some(pool));
                // ... and corepool's, if not yet, by this external submission.
                KEPT.with(|kept| {
                    let kept = kept.borrow();
                    let pool = kept.as_ref().expect("just stored");
                    for _ in 0..TASKS {
                        let ran = in_thread.clone();
                        pool.submit(move || {
                            ran.fetch_add(1, Ordering::SeqCst);
                        })
                        .expect("the pool is running");
                    }
                });
                // Exits: the pool is dropped with the thread's locals.
            });
            assert!(thread.join().is_ok(), "the thread exited cleanly");
            assert_eq!(recv_n(&stopped_rx, 2, "both workers stopped").len(), 2);
            assert_eq!(ran.load(Ordering::SeqCst), TASKS, "every accepted task ran");
        });
    }

    #[test]
    fn a_pool_in_a_thread_local_registered_before_corepools_drains_at_thread_exit() {
        pool_in_thread_local(false);
    }

    #[test]
    fn a_pool_in_a_thread_local_registered_after_corepools_drains_at_thread_exit() {
        pool_in_thread_local(true);
    }
}

/// 4. `shutdown_background`.
mod shutdown_background {
    use super::*;
    use crate::support::{hold_one_worker, within, Gate};
    use corepool::Pool;

    #[test]
    fn shutdown_background_returns_at_once_and_the_accepted_tasks_still_run_once() {
        within("shutdown_background", || {
            const QUEUED: usize = 6;
            let (stopped_tx, stopped_rx) = mpsc::channel();
            let pool = Pool::builder()
                .workers(1)
                .queue_capacity(16)
                .pin_workers(false)
                .on_worker_stop(move |index| {
                    let _ = stopped_tx.send(index);
                })
                .build()
                .expect("build a pool");
            let handle = pool.handle();
            let gate = Gate::new();
            let _open = gate.open_on_drop();
            hold_one_worker(&pool, &gate);
            let runs: Arc<Vec<AtomicUsize>> =
                Arc::new((0..QUEUED).map(|_| AtomicUsize::new(0)).collect());
            for id in 0..QUEUED {
                let runs = runs.clone();
                pool.submit(move || {
                    runs[id].fetch_add(1, Ordering::SeqCst);
                })
                .expect("the pool is running");
            }
            // The only worker is held at the gate: a call that waited for the
            // drain would never return (the watchdog would fire).
            pool.shutdown_background();
            assert!(handle.is_shutdown());
            assert!(handle.submit(|| {}).is_err(), "closed to new work");
            assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 0));
            gate.open();
            assert_eq!(recv_n(&stopped_rx, 1, "the worker stopped"), [0]);
            let counts: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
            assert_eq!(counts, vec![1; QUEUED], "each queued task ran exactly once");
            let m = handle.metrics();
            assert_eq!(m.executed, QUEUED as u64 + 1, "the held task finished too");
            assert_eq!((m.accepted, m.queue_depth), (QUEUED as u64 + 1, 0));
        });
    }
}

/// 5. Panic payloads whose `Drop` panics.
mod panic_payloads {
    use super::*;
    use crate::support::within;
    use corepool::Pool;
    use std::panic::panic_any;

    fn one_worker_pool() -> Pool {
        Pool::builder()
            .workers(1)
            .queue_capacity(64)
            .pin_workers(false)
            .build()
            .expect("build a pool")
    }

    /// Submits a task that must run after the bomb: the worker survived.
    fn assert_worker_survives(pool: &Pool, what: &str) {
        let (tx, rx) = mpsc::channel();
        pool.submit(move || {
            let _ = tx.send(());
        })
        .expect("the pool is running");
        recv_n(&rx, 1, what);
    }

    #[test]
    fn a_panic_payload_whose_drop_panics_does_not_kill_the_worker() {
        within("DropBomb payload of a submitted task", || {
            let pool = one_worker_pool();
            pool.submit(|| panic_any(DropBomb(0)))
                .expect("the pool is running");
            assert_worker_survives(&pool, "a task after a DropBomb");
            // A chain: each drop panics with another bomb; the last resort
            // (leaking the payload) keeps the worker alive.
            pool.submit(|| panic_any(DropBomb(5)))
                .expect("the pool is running");
            assert_worker_survives(&pool, "a task after a chain of DropBombs");
            let report = pool.shutdown();
            assert_eq!((report.executed, report.panicked), (4, 2));
        });
    }

    #[test]
    fn a_spawned_task_panicking_with_a_drop_bomb_does_not_kill_the_worker() {
        within("DropBomb payload of a spawned task", || {
            let pool = one_worker_pool();
            // Joined: the payload comes back to us, and dropping it is our
            // business (we leak it).
            let joined = pool.spawn(|| panic_any(DropBomb(0))).expect("running");
            let err = joined.join().expect_err("the task panicked");
            std::mem::forget(err);
            assert_worker_survives(&pool, "a task after a joined DropBomb");
            // Detached: whichever side drops the result last, the worker lives.
            for _ in 0..8 {
                drop(pool.spawn(|| panic_any(DropBomb(1))).expect("running"));
            }
            assert_worker_survives(&pool, "a task after detached DropBombs");
            let report = pool.shutdown();
            assert_eq!(report.executed, 11);
        });
    }

    #[test]
    fn a_panic_handler_that_repanics_with_a_drop_bomb_does_not_kill_the_worker() {
        within("panic handler re-panicking with a DropBomb", || {
            let handled = counter();
            let seen = handled.clone();
            let pool = Pool::builder()
                .workers(1)
                .pin_workers(false)
                .panic_handler(move |_payload| {
                    seen.fetch_add(1, Ordering::SeqCst);
                    panic_any(DropBomb(1));
                })
                .build()
                .expect("build a pool");
            pool.submit(|| panic!("boom")).expect("running");
            assert_worker_survives(&pool, "a task after the handler's DropBomb");
            pool.submit(|| panic!("boom again")).expect("running");
            assert_worker_survives(&pool, "a task after the second DropBomb");
            assert_eq!(handled.load(Ordering::SeqCst), 2);
            let report = pool.shutdown();
            assert_eq!((report.executed, report.panicked), (4, 2));
        });
    }

    #[test]
    fn worker_hooks_panicking_with_a_drop_bomb_do_not_kill_the_worker() {
        within("hooks panicking with a DropBomb", || {
            let stopped = counter();
            let seen = stopped.clone();
            let pool = Pool::builder()
                .workers(2)
                .pin_workers(false)
                .on_worker_start(|_| panic_any(DropBomb(0)))
                .on_worker_stop(move |_| {
                    seen.fetch_add(1, Ordering::SeqCst);
                    panic_any(DropBomb(0));
                })
                .build()
                .expect("build a pool");
            assert_worker_survives(&pool, "a task after the start hooks' DropBombs");
            let handle = pool.handle();
            drop(pool);
            assert_eq!(stopped.load(Ordering::SeqCst), 2, "both stop hooks ran");
            assert_eq!(handle.metrics().executed, 1);
        });
    }
}

/// 6. Submitting from `on_worker_stop`.
mod stop_hook_submissions {
    use super::*;
    use crate::support::within;
    use corepool::{Handle, Pool};
    use std::sync::OnceLock;

    #[test]
    fn submissions_from_the_stop_hook_are_refused_never_accepted_and_lost() {
        within("submit from on_worker_stop", || {
            const WORKERS: usize = 2;
            const ATTEMPTS_PER_HOOK: usize = 3;
            let handle_cell: Arc<OnceLock<Handle>> = Arc::new(OnceLock::new());
            let accepted = counter();
            let refused = counter();
            let runs = counter();
            let global_runs = counter();
            let (cell, acc, refs, ran, global_ran) = (
                handle_cell.clone(),
                accepted.clone(),
                refused.clone(),
                runs.clone(),
                global_runs.clone(),
            );
            let pool = Pool::builder()
                .workers(WORKERS)
                .pin_workers(false)
                .on_worker_stop(move |_| {
                    let handle = cell.get().expect("set before shutdown");
                    let tally = |ok: bool| {
                        if ok { &acc } else { &refs }.fetch_add(1, Ordering::SeqCst);
                    };
                    let run = || {
                        let ran = ran.clone();
                        move || {
                            ran.fetch_add(1, Ordering::SeqCst);
                        }
                    };
                    tally(handle.submit(run()).is_ok());
                    tally(handle.try_submit(run()).is_ok());
                    tally(handle.spawn(run()).is_ok());
                    // The stop hook runs on a thread that is no worker any
                    // more: the free functions use the global pool.
                    let on_global = global_ran.clone();
                    corepool::spawn(move || {
                        assert!(corepool::current_thread_index().is_some());
                        on_global.fetch_add(1, Ordering::SeqCst);
                    })
                    .join()
                    .expect("ran on the global pool");
                })
                .build()
                .expect("build a pool");
            let _ = handle_cell.set(pool.handle());
            for _ in 0..4 {
                pool.submit(|| {}).expect("the pool is running");
            }
            let report = pool.shutdown();
            assert_eq!(report.executed, 4, "nothing the hooks submitted ran");
            let (accepted, refused) = (
                accepted.load(Ordering::SeqCst),
                refused.load(Ordering::SeqCst),
            );
            assert_eq!(accepted + refused, WORKERS * ATTEMPTS_PER_HOOK);
            assert_eq!(
                accepted,
                runs.load(Ordering::SeqCst),
                "every accepted submission ran"
            );
            assert_eq!(refused, WORKERS * ATTEMPTS_PER_HOOK, "the pool was closed");
            assert_eq!(global_runs.load(Ordering::SeqCst), WORKERS);
        });
    }
}

/// 7. Autoscaling with a huge step; the monitor survives panics.
mod autoscale_and_monitor {
    use super::*;
    use crate::support::{hold_one_worker, within, Gate};
    use corepool::{AutoscalePolicy, Autoscaler, FillEvent, LoadSample, Pool};
    use std::panic::panic_any;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    #[test]
    fn a_step_of_usize_max_grows_straight_to_max() {
        let mut policy = AutoscalePolicy::new(1, 3);
        policy.step = usize::MAX;
        let mut scaler = Autoscaler::new(policy.clone());
        let t0 = Instant::now();
        let busy = LoadSample {
            fill: 1.0,
            active: 1,
            idle: 0,
        };
        assert_eq!(scaler.observe(t0, busy), None);
        assert_eq!(scaler.observe(t0 + Duration::from_secs(1), busy), Some(3));
        let idle = LoadSample {
            fill: 0.0,
            active: 3,
            idle: 2,
        };
        assert_eq!(scaler.observe(t0, idle), None);
        assert_eq!(scaler.observe(t0 + Duration::from_secs(10), idle), Some(1));

        within("autoscale_tick with step usize::MAX", move || {
            policy.tick = None;
            let pool = Pool::builder()
                .queue_capacity(4)
                .pin_workers(false)
                .autoscale_policy(policy)
                .build()
                .expect("build a pool");
            assert_eq!(pool.workers(), 1);
            let gate = Gate::new();
            let _open = gate.open_on_drop();
            hold_one_worker(&pool, &gate);
            for _ in 0..4 {
                pool.try_submit(|| {}).expect("room for four");
            }
            let t0 = Instant::now();
            assert_eq!(pool.autoscale_tick(t0), None, "pressure starts");
            assert_eq!(pool.autoscale_tick(t0 + Duration::from_secs(1)), Some(3));
            assert_eq!(pool.workers(), 3);
        });
    }

    #[test]
    fn the_monitor_survives_a_fill_callback_panicking_with_a_drop_bomb() {
        within("fill callback panicking with a DropBomb", || {
            let (events_tx, events_rx) = mpsc::channel::<FillEvent>();
            let events_tx = Mutex::new(events_tx);
            let pool = Pool::builder()
                .workers(1)
                .queue_capacity(4)
                .pin_workers(false)
                .on_queue_fill(0.5, move |event| {
                    let _ = events_tx
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .send(event);
                    panic_any(DropBomb(1));
                })
                .build()
                .expect("build a pool");
            let gate = Gate::new();
            let _open = gate.open_on_drop();
            hold_one_worker(&pool, &gate);
            pool.submit(|| {}).expect("running");
            pool.submit(|| {}).expect("running");
            let first = recv_n(&events_rx, 1, "the Above event").remove(0);
            assert!(matches!(first, FillEvent::Above { .. }), "{first:?}");
            // The queue drains: the monitor, still alive, reports it.
            gate.open();
            let second = recv_n(&events_rx, 1, "the Below event after the bomb").remove(0);
            assert!(matches!(second, FillEvent::Below { .. }), "{second:?}");
        });
    }
}

/// 8. `accepted` after `shutdown_now`.
mod handed_back {
    use crate::support::{hold_one_worker, wait_until, within, Gate};
    use corepool::Pool;
    use std::thread;

    #[test]
    fn accepted_stays_put_after_shutdown_now_and_counts_the_handed_back_tasks() {
        within("accepted after shutdown_now", || {
            const QUEUED: usize = 5;
            let pool = Pool::builder()
                .workers(1)
                .queue_capacity(16)
                .pin_workers(false)
                .build()
                .expect("build a pool");
            let handle = pool.handle();
            let gate = Gate::new();
            let _open = gate.open_on_drop();
            hold_one_worker(&pool, &gate);
            for _ in 0..QUEUED {
                pool.submit(|| {}).expect("the pool is running");
            }
            let before = pool.metrics();
            assert_eq!(before.accepted, QUEUED as u64 + 1);
            assert_eq!(before.handed_back, 0);
            // Open the gate once the stop has begun (shutdown_now marks the
            // workers stopping before it closes the pool), so the held task
            // finishes and none of the queued ones starts.
            let opener = {
                let (gate, handle) = (gate.clone(), handle.clone());
                thread::spawn(move || {
                    wait_until("shutdown_now closed the pool", || handle.is_shutdown());
                    gate.open();
                })
            };
            let report = pool.shutdown_now();
            opener.join().expect("the opener");
            assert_eq!(report.unstarted.len(), QUEUED);
            let m = handle.metrics();
            assert_eq!(m.accepted, QUEUED as u64 + 1, "accepted never decreases");
            assert_eq!(m.handed_back, QUEUED as u64);
            assert_eq!(m.queue_depth, 0);
            let started: u64 = m.executed; // only external tasks ran here
            assert_eq!(m.accepted, started + m.handed_back + m.queue_depth as u64);
        });
    }
}

/// 9. Stacks too small for a worker.
mod stack_size {
    use crate::support::within;
    use corepool::{BuildError, Pool, MIN_STACK_SIZE};

    #[test]
    fn stacks_below_the_minimum_are_refused() {
        for size in [0, 16 * 1024, MIN_STACK_SIZE - 1] {
            let err = Pool::builder()
                .workers(1)
                .stack_size(size)
                .build()
                .expect_err("too small a stack");
            let BuildError::StackTooSmall { requested, min } = err else {
                panic!("expected StackTooSmall, got {err:?}");
            };
            assert_eq!((requested, min), (size, MIN_STACK_SIZE));
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("stack_size({size})"))
                    && msg.contains(&MIN_STACK_SIZE.to_string()),
                "{msg}"
            );
        }
    }

    #[test]
    fn the_minimum_stack_runs_tasks_and_survives_a_panic() {
        within("a pool with the minimum stack", || {
            let pool = Pool::builder()
                .workers(1)
                .stack_size(MIN_STACK_SIZE)
                .pin_workers(false)
                .build()
                .expect("the minimum is accepted");
            pool.submit(|| {
                // A modest frame of the task's own.
                let buffer = std::hint::black_box([7u8; 8 * 1024]);
                assert_eq!(
                    buffer.iter().map(|&b| b as usize).sum::<usize>(),
                    7 * 8 * 1024
                );
            })
            .expect("running");
            pool.submit(|| panic!("a panic on a small stack"))
                .expect("running");
            let report = pool.shutdown();
            assert_eq!((report.executed, report.panicked), (2, 1));
        });
    }
}
