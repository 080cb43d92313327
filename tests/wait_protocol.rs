//! The wait protocol (`docs/fork-join.md`, "Waiting inside a task"): a worker
//! that waits runs only work that descends from what it waits for, blocks
//! (with a spare standing in) on anything else, and never deadlocks on a
//! chain of waits, overflows its stack by nesting, or hangs on another
//! pool. Every test runs under the watchdog: a hang is a failure.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use corepool::Pool;
use support::{unpinned_pool as pool, within, Gate};

/// X blocks; A joins X; B, submitted once A waits, joins A; then X is
/// released. A's worker must not run B on top of A (B would wait for A,
/// and A could never return below it).
#[test]
fn a_chain_of_joins_on_handles_completes() {
    within("chain of handle joins", || {
        let pool = pool(2);
        let (release_tx, release_rx) = mpsc::channel::<u32>();
        let (x_started_tx, x_started_rx) = mpsc::channel();
        let x = pool
            .spawn(move || {
                x_started_tx.send(()).unwrap();
                release_rx.recv().unwrap()
            })
            .unwrap();
        x_started_rx.recv().unwrap();
        let (a_waits_tx, a_waits_rx) = mpsc::channel();
        let a = pool
            .spawn(move || {
                a_waits_tx.send(()).unwrap();
                x.join().unwrap() + 1
            })
            .unwrap();
        a_waits_rx.recv().unwrap();
        let b = pool.spawn(move || a.join().unwrap() + 1).unwrap();
        release_tx.send(5).unwrap();
        assert_eq!(b.join().unwrap(), 7);
    });
}

/// 6,000 queued tasks on one worker, each joining a task of another pool
/// that waits behind a gate: the waits block side by side (no nesting on
/// one stack, which overflowed it), and all complete once the gate opens.
#[test]
fn many_waits_on_another_pool_do_not_nest() {
    within("6,000 waits on another pool", || {
        const N: usize = 6_000;
        let a = Pool::builder()
            .workers(1)
            .queue_capacity(N)
            .pin_workers(false)
            .build()
            .unwrap();
        let b = Pool::builder()
            .workers(1)
            .queue_capacity(N + 1)
            .pin_workers(false)
            .build()
            .unwrap();
        let gate = Gate::new();
        let held = gate.clone();
        b.submit(move || held.wait()).unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        for i in 0..N {
            let theirs = b.spawn(move || i).unwrap();
            let done = done.clone();
            a.submit(move || {
                assert_eq!(theirs.join().unwrap(), i);
                done.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        }
        gate.open();
        drop(a);
        assert_eq!(done.load(Ordering::Relaxed), N);
    });
}

/// `a.install(|| b.install(|| a.install(|| 42)))` with one worker each:
/// `a`'s worker blocks in `b`, and a spare of `a` runs the innermost call.
#[test]
fn install_across_pools_and_back_completes() {
    within("a -> b -> a install", || {
        let a = pool(1);
        let b = pool(1);
        assert_eq!(a.install(|| b.install(|| a.install(|| 42))), 42);
        assert_eq!(b.install(|| a.install(|| b.join(|| 1, || 2))), (1, 2));
    });
}

/// With spares turned off, the same nesting still completes when the
/// blocked pool's work can wait: here the innermost call targets `b`.
#[test]
fn install_across_pools_without_spares() {
    within("a -> b install, no spares", || {
        let a = Pool::builder()
            .workers(1)
            .max_spare_threads(0)
            .pin_workers(false)
            .build()
            .unwrap();
        let b = pool(1);
        assert_eq!(a.install(|| b.install(|| 7)), 7);
    });
}

/// A task that spawns a child and joins it runs the child itself if no
/// one has started it: recursion deeper than the spare limit completes on
/// one worker.
#[test]
fn spawn_then_join_recursion_runs_on_one_worker() {
    fn fib(n: u64) -> u64 {
        if n < 2 {
            return n;
        }
        let left = corepool::spawn(move || fib(n - 1));
        let right = fib(n - 2);
        left.join().unwrap() + right
    }
    within("spawn/join recursion", || {
        let pool = Pool::builder()
            .workers(1)
            .max_spare_threads(1)
            .pin_workers(false)
            .build()
            .unwrap();
        assert_eq!(pool.install(|| fib(18)), 2584);
        let pool = pool_at_default_size();
        assert_eq!(pool.install(|| fib(18)), 2584);
    });
}

fn pool_at_default_size() -> Pool {
    Pool::builder().build().expect("build the default pool")
}

/// Joining your own handle from inside the task panics with a clear
/// message instead of hanging; the panic reaches the outer handle.
#[test]
fn joining_your_own_handle_panics() {
    within("self join", || {
        let pool = pool(2);
        let (tx, rx) = mpsc::channel::<corepool::JoinHandle<u32>>();
        let handle = pool
            .spawn(move || -> u32 {
                let me = rx.recv().unwrap();
                me.join().unwrap()
            })
            .unwrap();
        // The task holds its own handle; this one is a second view of it
        // through `is_finished` only.
        let (outer_tx, outer_rx) = mpsc::channel();
        let watcher = pool
            .spawn(move || {
                let result = catch_unwind(AssertUnwindSafe(|| outer_rx.recv().unwrap()));
                result.is_ok()
            })
            .unwrap();
        tx.send(handle).unwrap();
        outer_tx.send(()).unwrap();
        assert!(watcher.join().unwrap());
        drop(pool); // the self-joining task panicked and finished: no hang
    });
}

/// The panic message of a self-join names the mistake.
#[test]
fn self_join_panic_message() {
    within("self join message", || {
        let pool = pool(1);
        let (tx, rx) = mpsc::channel::<corepool::JoinHandle<()>>();
        let (msg_tx, msg_rx) = mpsc::channel::<String>();
        let handle = pool
            .spawn(move || {
                let me = rx.recv().unwrap();
                let err = catch_unwind(AssertUnwindSafe(|| me.join())).unwrap_err();
                let text = err
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| err.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                msg_tx.send(text).unwrap();
            })
            .unwrap();
        tx.send(handle).unwrap();
        let text = msg_rx.recv().unwrap();
        assert!(text.contains("inside the task it joins"), "{text}");
    });
}

/// `join` after the handle was awaited to completion panics with a
/// documented message, not an internal error.
#[test]
fn join_after_await_panics_clearly() {
    within("join after await", || {
        let pool = pool(1);
        let mut handle = pool.spawn(|| 3).unwrap();
        assert_eq!(futures::executor::block_on(&mut handle).unwrap(), 3);
        let err = catch_unwind(AssertUnwindSafe(|| handle.join())).unwrap_err();
        let text = err.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(text.contains("polled to completion"), "{text}");
    });
}

/// A scope whose tasks are stolen: the owner runs what is on its own deque
/// and parks for the rest; everything runs exactly once.
#[test]
fn scope_waiter_parks_and_every_task_runs_once() {
    within("scope", || {
        for workers in [1, 2, 4] {
            let pool = pool(workers);
            let runs: Vec<AtomicUsize> = (0..2_000).map(|_| AtomicUsize::new(0)).collect();
            pool.scope(|s| {
                for (i, run) in runs.iter().enumerate() {
                    s.spawn(move |s| {
                        if i % 10 == 0 {
                            s.spawn(move |_| {
                                corepool::join(|| (), || ());
                            });
                        }
                        run.fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
            assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == 1));
        }
    });
}

/// A join whose second half blocks until a queued task opens a gate: the
/// waiting worker does not take that task (it is not its own), a spare or
/// the other worker does.
#[test]
fn join_waiter_does_not_take_unrelated_queued_tasks() {
    within("join with unrelated queued work", || {
        let pool = pool(2);
        let gate = Gate::new();
        let opener_gate = gate.clone();
        let result = pool.install(|| {
            let (a, b) = corepool::join(
                || {
                    // Queued from inside, on this worker's deque, before the
                    // join's region: not the waiter's to run.
                    let gate = opener_gate.clone();
                    corepool::spawn(move || gate.open())
                },
                || 2,
            );
            a.join().unwrap();
            b
        });
        gate.wait();
        assert_eq!(result, 2);
    });
}

/// The state letter of thread `tid` of this process (`R` running or
/// runnable, `S` sleeping, ...), from `/proc`.
#[cfg(target_os = "linux")]
fn thread_state(tid: i64) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses.
    stat.rsplit_once(") ")?.1.chars().next()
}

#[cfg(target_os = "linux")]
fn gettid() -> i64 {
    // SAFETY: `gettid` takes no argument and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// A worker waiting on a running task sleeps in the kernel (`S`) instead
/// of yielding in a loop (always runnable, `R`): wait until /proc shows it
/// asleep, which never happened while waiters yielded.
#[cfg(target_os = "linux")]
#[test]
fn a_worker_waiting_on_a_handle_sleeps() {
    within("handle waiter sleeps", || {
        let pool = pool(2);
        let gate = Gate::new();
        let held = gate.clone();
        let (started_tx, started_rx) = mpsc::channel();
        let blocker = pool
            .spawn(move || {
                started_tx.send(()).unwrap();
                held.wait();
            })
            .unwrap();
        started_rx.recv().unwrap();
        let (tid_tx, tid_rx) = mpsc::channel();
        let waiter = pool
            .spawn(move || {
                tid_tx.send(gettid()).unwrap();
                blocker.join().unwrap();
            })
            .unwrap();
        let tid = tid_rx.recv().unwrap();
        support::wait_until("the waiting worker to sleep", || {
            thread_state(tid) == Some('S')
        });
        gate.open();
        waiter.join().unwrap();
    });
}

/// The same for a `join` whose second half a thief took and that blocks:
/// the owner parks on the join's latch.
#[cfg(target_os = "linux")]
#[test]
fn a_worker_waiting_on_a_stolen_join_half_sleeps() {
    within("join waiter sleeps", || {
        let pool = pool(2);
        let gate = Gate::new();
        let held = gate.clone();
        let (tid_tx, tid_rx) = mpsc::channel();
        let (stolen_tx, stolen_rx) = mpsc::channel::<()>();
        let opener = std::thread::spawn(move || {
            let tid: i64 = tid_rx.recv().unwrap();
            // Only once `b` runs on the thief can the owner be waiting.
            stolen_rx.recv().unwrap();
            support::wait_until("the joining worker to sleep", || {
                thread_state(tid) == Some('S')
            });
            gate.open();
        });
        let ((), ()) = pool.install(move || {
            tid_tx.send(gettid()).unwrap();
            corepool::join(
                || {
                    // `b` is on offer now. A push that pays the wake-up
                    // fence (the offer skips it) makes sure the other
                    // worker comes; it steals the oldest task, `b`. Keep
                    // `a` running until then, so the owner must wait.
                    corepool::submit(|| {});
                    while !OWNER_MAY_RETURN.load(Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                },
                move || {
                    OWNER_MAY_RETURN.store(true, Ordering::Release);
                    stolen_tx.send(()).unwrap();
                    held.wait();
                },
            )
        });
        opener.join().unwrap();
    });
}

#[cfg(target_os = "linux")]
static OWNER_MAY_RETURN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
