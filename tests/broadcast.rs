//! rayon's APIs on corepool: `broadcast` and `spawn_broadcast`,
//! `scope_fifo` and `spawn_fifo`, `yield_now`, and `block_in_place`.
//! Every test that could hang runs under the `within` watchdog; nothing
//! waits by sleeping and nothing asserts a timing.

mod support;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use corepool::{Pool, Yield};
use support::{hold_one_worker, within, Gate};

fn pool(workers: usize) -> Arc<Pool> {
    Arc::new(
        Pool::builder()
            .workers(workers)
            .thread_name("bc")
            .pin_workers(false)
            .build()
            .expect("build"),
    )
}

// ---------------------------------------------------------------- broadcast

#[test]
fn broadcast_runs_once_on_every_worker_in_worker_order() {
    within("broadcast in order", || {
        let pool = pool(4);
        let seen = pool.broadcast(|ctx| {
            (
                ctx.index(),
                ctx.num_threads(),
                std::thread::current().name().map(String::from),
            )
        });
        let expected: Vec<_> = (0..4).map(|i| (i, 4, Some(format!("bc-{i}")))).collect();
        assert_eq!(seen, expected);
    });
}

#[test]
fn broadcast_reaches_every_thread_local() {
    thread_local!(static CACHE: Cell<usize> = const { Cell::new(0) });
    within("thread-locals", || {
        let pool = pool(3);
        // Fill each worker's cache, then flush them all.
        pool.broadcast(|ctx| CACHE.with(|c| c.set(ctx.index() + 10)));
        let flushed = pool.broadcast(|_| CACHE.with(|c| c.replace(0)));
        assert_eq!(flushed, [10, 11, 12]);
        assert_eq!(pool.broadcast(|_| CACHE.with(Cell::get)), [0, 0, 0]);
    });
}

#[test]
fn a_busy_worker_runs_its_share_when_its_task_returns() {
    within("busy worker", || {
        let pool = pool(2);
        let gate = Gate::new();
        hold_one_worker(&pool, &gate);
        let broadcaster = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.broadcast(|ctx| ctx.index()))
        };
        // The broadcast cannot finish while one worker is held; it must
        // once the gate opens, whichever comes first.
        gate.open();
        assert_eq!(broadcaster.join().unwrap(), [0, 1]);
    });
}

#[test]
fn broadcast_is_not_counted_by_the_bound() {
    within("full pool", || {
        let pool = Arc::new(
            Pool::builder()
                .workers(1)
                .queue_capacity(1)
                .build()
                .unwrap(),
        );
        let gate = Gate::new();
        hold_one_worker(&pool, &gate);
        pool.submit(|| {}).unwrap();
        assert!(pool.try_submit(|| {}).unwrap_err().is_full());
        let broadcaster = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.broadcast(|ctx| ctx.index()))
        };
        gate.open();
        assert_eq!(broadcaster.join().unwrap(), [0]);
        assert_eq!(pool.metrics().rejected_full, 1, "only the try_submit above");
    });
}

#[test]
fn broadcast_from_inside_a_worker_runs_its_own_share() {
    within("broadcast inside", || {
        let pool = pool(2);
        let (me, seen) = pool.install(|| {
            let me = std::thread::current().name().map(String::from);
            let seen = pool
                .broadcast(|ctx| (ctx.index(), std::thread::current().name().map(String::from)));
            (me, seen)
        });
        assert_eq!(seen.len(), 2);
        assert!(
            seen.iter().any(|(_, name)| *name == me),
            "the caller ran its share"
        );
        for (i, (index, name)) in seen.iter().enumerate() {
            assert_eq!(*index, i);
            assert_eq!(name.as_deref(), Some(format!("bc-{i}").as_str()));
        }
        // One worker: the caller is the only target.
        let single = self::pool(1);
        assert_eq!(single.install(|| single.broadcast(|ctx| ctx.index())), [0]);
    });
}

#[test]
fn broadcast_from_a_piece_that_a_waiting_worker_waits_for() {
    within("broadcast from a stolen piece", || {
        let pool = pool(2);
        for _ in 0..50 {
            // The scope's owner waits (parked, or helping) while one of its
            // tasks, maybe on the other worker, broadcasts: the owner runs
            // its share from inside its wait.
            let total = AtomicUsize::new(0);
            pool.scope(|s| {
                for _ in 0..2 {
                    s.spawn(|_| {
                        let ones = pool.broadcast(|_| 1usize);
                        total.fetch_add(ones.iter().sum(), Ordering::Relaxed);
                    });
                }
            });
            assert_eq!(total.into_inner(), 4);
            // The same with a join whose second closure broadcasts.
            let (a, b) = pool.join(|| 1, || pool.broadcast(|ctx| ctx.index()));
            assert_eq!((a, b), (1, vec![0, 1]));
        }
    });
}

#[test]
fn concurrent_broadcasts_from_two_workers() {
    within("two broadcasters", || {
        let pool = pool(2);
        for _ in 0..50 {
            let (a, b) = pool.join(
                || pool.broadcast(|ctx| ctx.index()),
                || pool.broadcast(|ctx| ctx.index() * 10),
            );
            assert_eq!(a, [0, 1]);
            assert_eq!(b, [0, 10]);
        }
    });
}

// A worker in a blocking wait runs no share until the wait ends, so a
// broadcast from a task it waits for runs that worker's share on the
// broadcaster instead. Each test hangs (the watchdog fails it) otherwise.

#[test]
fn broadcast_from_a_task_a_worker_joins_by_handle() {
    within("broadcast from a joined task", || {
        let pool = pool(2);
        for _ in 0..50 {
            let inner = pool.clone();
            let outer = pool.spawn(move || {
                let (started_tx, started_rx) = mpsc::channel();
                let broadcaster = inner.clone();
                let handle = inner
                    .spawn(move || {
                        started_tx.send(()).expect("the joiner waits");
                        broadcaster.broadcast(|ctx| ctx.index())
                    })
                    .expect("spawn");
                // The other worker has started it, so `join` blocks
                // rather than running the task here.
                started_rx.recv().expect("the task starts");
                handle.join().expect("no panic")
            });
            assert_eq!(outer.expect("spawn").join().expect("no panic"), [0, 1]);
        }
    });
}

#[test]
fn broadcast_from_a_task_a_worker_waits_for_in_block_in_place() {
    within("broadcast during block_in_place", || {
        let pool = pool(2);
        for _ in 0..50 {
            let inner = pool.clone();
            let outer = pool.spawn(move || {
                let (done_tx, done_rx) = mpsc::channel();
                let broadcaster = inner.clone();
                let submitted = inner.submit(move || {
                    let seen = broadcaster.broadcast(|ctx| ctx.index());
                    done_tx.send(seen).expect("the waiter waits");
                });
                assert!(submitted.is_ok(), "a worker's submit is never refused");
                corepool::block_in_place(|| done_rx.recv().expect("the broadcast ends"))
            });
            assert_eq!(outer.expect("spawn").join().expect("no panic"), [0, 1]);
        }
    });
}

#[test]
fn broadcast_from_another_pool_that_a_worker_installs_into() {
    within("broadcast from an installed pool", || {
        let other = pool(1);
        let pool = pool(2);
        for _ in 0..50 {
            let target = pool.clone();
            let via = other.clone();
            let seen =
                pool.install(move || via.install(move || target.broadcast(|ctx| ctx.index())));
            assert_eq!(seen, [0, 1]);
        }
    });
}

#[test]
fn broadcast_re_raises_a_panic_after_every_share_ended() {
    within("panicking share", || {
        let pool = pool(3);
        let ran = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.broadcast(|ctx| {
                ran.fetch_add(1, Ordering::SeqCst);
                if ctx.index() == 1 {
                    panic!("share 1");
                }
            })
        }));
        let payload = result.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"share 1"));
        assert_eq!(ran.load(Ordering::SeqCst), 3);
        // The pool carries on.
        assert_eq!(pool.broadcast(|ctx| ctx.index()), [0, 1, 2]);
    });
}

#[test]
fn retired_workers_do_not_take_part() {
    within("retired workers", || {
        let pool = pool(4);
        pool.set_workers(2).unwrap();
        assert_eq!(
            pool.broadcast(|ctx| (ctx.index(), ctx.num_threads())),
            [(0, 2), (1, 2)]
        );
        pool.set_workers(3).unwrap();
        assert_eq!(pool.broadcast(|ctx| ctx.index()), [0, 1, 2]);
    });
}

#[test]
fn broadcast_on_a_draining_pool_completes() {
    within("broadcast while draining", || {
        let pool = Pool::builder().workers(1).build().unwrap();
        let gate = Gate::new();
        hold_one_worker(&pool, &gate);
        let timed_out = pool
            .shutdown_timeout(std::time::Duration::ZERO)
            .unwrap_err();
        gate.open();
        let pool = timed_out.into_pool();
        // The worker may still be draining or may have exited: either way
        // the share runs (on the worker, or here once it has exited).
        assert_eq!(pool.broadcast(|ctx| ctx.index()), [0]);
        pool.spawn_broadcast(|_| {});
        assert_eq!(pool.shutdown().executed, 1);
    });
}

#[test]
fn spawn_broadcast_runs_on_every_worker_without_waiting() {
    within("spawn_broadcast", || {
        let pool = pool(3);
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        pool.spawn_broadcast(move |ctx| tx.lock().unwrap().send(ctx.index()).unwrap());
        let mut seen: Vec<usize> = rx.iter().take(3).collect();
        seen.sort();
        assert_eq!(seen, [0, 1, 2]);

        // From inside a worker: the caller's share runs after its task.
        let (tx, rx) = mpsc::channel();
        let inner = pool.clone();
        pool.submit(move || {
            let tx = Mutex::new(tx);
            inner.spawn_broadcast(move |ctx| tx.lock().unwrap().send(ctx.index()).unwrap());
        })
        .unwrap();
        let mut seen: Vec<usize> = rx.iter().take(3).collect();
        seen.sort();
        assert_eq!(seen, [0, 1, 2]);
    });
}

#[test]
fn spawn_broadcast_panics_go_to_the_panic_handler() {
    within("spawn_broadcast panic", || {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let pool = Pool::builder()
            .workers(2)
            .panic_handler(move |_| tx.lock().unwrap().send(()).unwrap())
            .build()
            .unwrap();
        pool.spawn_broadcast(|_| panic!("share"));
        rx.recv().unwrap();
        rx.recv().unwrap();
        assert_eq!(pool.broadcast(|ctx| ctx.index()), [0, 1]);
    });
}

// --------------------------------------------------------------------- FIFO

#[test]
fn spawn_fifo_starts_children_in_the_order_spawned() {
    within("spawn_fifo order", || {
        let pool = pool(1);
        let (tx, rx) = mpsc::channel();
        pool.submit(move || {
            for i in 0..100 {
                let tx = tx.clone();
                corepool::spawn_fifo(move || tx.send(i).unwrap());
            }
        })
        .unwrap();
        let order: Vec<i32> = rx.iter().take(100).collect();
        assert_eq!(order, (0..100).collect::<Vec<_>>());
    });
}

#[test]
fn spawn_stays_lifo() {
    within("spawn order", || {
        let pool = pool(1);
        let (tx, rx) = mpsc::channel();
        pool.submit(move || {
            for i in 0..10 {
                let tx = tx.clone();
                corepool::spawn(move || tx.send(i).unwrap());
            }
        })
        .unwrap();
        let order: Vec<i32> = rx.iter().take(10).collect();
        assert_eq!(order, (0..10).rev().collect::<Vec<_>>());
    });
}

#[test]
fn spawn_fifo_returns_a_handle_and_uses_the_global_pool_off_a_worker() {
    within("spawn_fifo handle", || {
        let pool = pool(2);
        let sum = pool
            .spawn(|| {
                let handles: Vec<_> = (0..10u64)
                    .map(|i| corepool::spawn_fifo(move || i))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(sum, 45);
        assert_eq!(corepool::spawn_fifo(|| 3).join().unwrap(), 3);
    });
}

#[test]
fn scope_fifo_starts_tasks_in_the_order_spawned() {
    within("scope_fifo order", || {
        let pool = pool(1);
        let order = Mutex::new(Vec::new());
        pool.scope_fifo(|s| {
            for i in 0..50 {
                let order = &order;
                s.spawn_fifo(move |_| order.lock().unwrap().push(i));
            }
        });
        assert_eq!(order.into_inner().unwrap(), (0..50).collect::<Vec<_>>());

        // Plain scope tasks stay LIFO.
        let order = Mutex::new(Vec::new());
        pool.scope(|s| {
            for i in 0..5 {
                let order = &order;
                s.spawn(move |_| order.lock().unwrap().push(i));
            }
        });
        assert_eq!(order.into_inner().unwrap(), [4, 3, 2, 1, 0]);
    });
}

#[test]
fn scope_fifo_nested_spawns_all_finish() {
    within("scope_fifo nested", || {
        let pool = pool(2);
        for _ in 0..20 {
            let count = AtomicUsize::new(0);
            pool.scope_fifo(|s| {
                for _ in 0..20 {
                    s.spawn_fifo(|s| {
                        count.fetch_add(1, Ordering::Relaxed);
                        for _ in 0..20 {
                            s.spawn_fifo(|_| {
                                count.fetch_add(1, Ordering::Relaxed);
                            });
                        }
                        // A fork-join wait inside a FIFO task.
                        let (a, b) = corepool::join(|| 1, || 2);
                        assert_eq!(a + b, 3);
                    });
                }
            });
            assert_eq!(count.into_inner(), 20 + 20 * 20);
        }
    });
}

#[test]
fn scope_fifo_inside_a_worker_leaves_older_fifo_tasks_alone() {
    within("scope_fifo inside", || {
        let pool = pool(1);
        let log = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = mpsc::channel();
        let inside_scope = pool.install(|| {
            // Spawned before the scope: not part of what the scope waits
            // for, so the scope's wait must not start it (the wait
            // protocol); it starts after this task returns.
            let early = log.clone();
            corepool::spawn_fifo(move || {
                early.lock().unwrap().push(-1);
                done_tx.send(()).unwrap();
            });
            pool.scope_fifo(|s| {
                for i in 0..3 {
                    let log = &log;
                    s.spawn_fifo(move |_| log.lock().unwrap().push(i));
                }
            });
            log.lock().unwrap().clone()
        });
        assert_eq!(inside_scope, [0, 1, 2]);
        done_rx.recv().unwrap();
        assert_eq!(*log.lock().unwrap(), [0, 1, 2, -1]);
    });
}

// ----------------------------------------------------------------- yielding

#[test]
fn yield_now_off_a_worker_is_none() {
    assert_eq!(corepool::yield_now(), None);
}

#[test]
fn yield_now_runs_a_pending_task_then_reports_idle() {
    within("yield_now", || {
        let pool = pool(1);
        let (first, ran, second) = pool.install(|| {
            let ran = Arc::new(AtomicBool::new(false));
            let flag = ran.clone();
            corepool::submit(move || flag.store(true, Ordering::SeqCst));
            let first = corepool::yield_now();
            let ran = ran.load(Ordering::SeqCst);
            (first, ran, corepool::yield_now())
        });
        assert_eq!(first, Some(Yield::Executed));
        assert!(ran);
        assert_eq!(second, Some(Yield::Idle));
    });
}

#[test]
fn yield_now_inside_a_scope_runs_only_the_scopes_tasks() {
    within("yield_now in a region", || {
        let pool = pool(1);
        let outcome = pool.install(|| {
            let outside = Arc::new(AtomicBool::new(false));
            let flag = outside.clone();
            // Pushed before the scope: the scope's body may not run it.
            corepool::submit(move || flag.store(true, Ordering::SeqCst));
            let inside = AtomicBool::new(false);
            pool.scope(|s| {
                let before = corepool::yield_now();
                s.spawn(|_| inside.store(true, Ordering::SeqCst));
                let after = corepool::yield_now();
                (
                    before,
                    after,
                    inside.load(Ordering::SeqCst),
                    outside.load(Ordering::SeqCst),
                )
            })
        });
        assert_eq!(
            outcome,
            (Some(Yield::Idle), Some(Yield::Executed), true, false)
        );
    });
}

// ----------------------------------------------------------- block_in_place

#[test]
fn block_in_place_lets_a_later_task_of_the_same_pool_run() {
    within("block_in_place", || {
        let pool = pool(1);
        let (tx, rx) = mpsc::channel();
        let waiter = pool
            .spawn(move || corepool::block_in_place(|| rx.recv().unwrap()))
            .unwrap();
        // Queued behind the blocked task, on a one-worker pool.
        pool.submit(move || tx.send(7).unwrap()).unwrap();
        assert_eq!(waiter.join().unwrap(), 7);

        // The same with the sender on the blocked worker's own deque.
        let got = pool
            .spawn(|| {
                let (tx, rx) = mpsc::channel();
                corepool::submit(move || tx.send(8).unwrap());
                corepool::block_in_place(|| rx.recv().unwrap())
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(got, 8);
    });
}

#[test]
fn block_in_place_off_a_worker_just_runs() {
    assert_eq!(corepool::block_in_place(|| 5), 5);
}

#[test]
fn block_in_place_past_the_spare_limit_runs_one_thread_short() {
    within("block_in_place without spares", || {
        // No spare: the blocked worker is not replaced, the other worker
        // runs the sender.
        let pool = Pool::builder()
            .workers(2)
            .max_spare_threads(0)
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let waiter = pool
            .spawn(move || corepool::block_in_place(|| rx.recv().unwrap()))
            .unwrap();
        pool.submit(move || tx.send(9).unwrap()).unwrap();
        assert_eq!(waiter.join().unwrap(), 9);
    });
}
