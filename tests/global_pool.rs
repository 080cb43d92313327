//! The rayon-style API around the pools: the global pool
//! (`Builder::build_global`, and the free `join`, `scope`, `spawn`,
//! `submit` off a worker), `current_thread_index` / `current_num_threads`,
//! `Pool::in_place_scope`, `Pool::wait_idle`, and `Builder::thread_name_fn`.
//!
//! The global pool is one per process, and the tests of this binary run
//! in parallel: every test that may touch it calls [`init_global`] first,
//! which configures it (2 workers named `global-{i}`) exactly once, so
//! none of them builds it with the defaults by accident.

mod support;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::thread;
use std::time::Duration;

use corepool::{BuildError, Pool};
use support::{hold_one_worker, within, Gate, WATCHDOG};

const GLOBAL_WORKERS: usize = 2;

/// Configures the global pool, once per test binary, before any use.
fn init_global() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        corepool::Builder::new()
            .workers(GLOBAL_WORKERS)
            .pin_workers(false)
            .thread_name_fn(|i| format!("global-{i}"))
            .build_global()
            .expect("the first use of the global pool in this binary");
    });
}

fn thread_name() -> String {
    thread::current().name().unwrap_or_default().to_owned()
}

fn is_global_worker() -> bool {
    thread_name().starts_with("global-") && corepool::current_thread_index().is_some()
}

// ---- 1. The global pool ----

#[test]
fn build_global_configures_the_global_pool_once() {
    within("build_global twice", || {
        init_global();
        assert_eq!(corepool::current_num_threads(), GLOBAL_WORKERS);
        let err = corepool::Builder::new()
            .workers(1)
            .build_global()
            .unwrap_err();
        assert!(matches!(err, BuildError::GlobalPoolAlreadyInitialized));
        assert_eq!(
            err.to_string(),
            "the global pool has already been initialized"
        );
        // The pool that exists is kept.
        assert_eq!(corepool::current_num_threads(), GLOBAL_WORKERS);
        // A configuration error is `build`'s, and reported as such.
        let err = corepool::Builder::new()
            .workers(0)
            .build_global()
            .unwrap_err();
        assert!(
            matches!(
                err,
                BuildError::ZeroWorkers | BuildError::GlobalPoolAlreadyInitialized
            ),
            "{err:?}"
        );
    });
}

#[test]
fn join_off_a_worker_runs_on_the_global_pool() {
    within("join off a worker", || {
        init_global();
        let me = thread::current().id();
        let (a, b) = corepool::join(
            || (is_global_worker(), thread::current().id()),
            || (is_global_worker(), thread::current().id()),
        );
        assert!(a.0 && b.0, "both sides ran on global workers");
        assert!(a.1 != me && b.1 != me, "not on the caller");

        // A recursion of joins from outside: the global pool's fork-join.
        fn fib(n: u64) -> u64 {
            if n < 12 {
                return if n < 2 { n } else { fib(n - 1) + fib(n - 2) };
            }
            let (a, b) = corepool::join(|| fib(n - 1), || fib(n - 2));
            a + b
        }
        assert_eq!(fib(24), 46_368);
    });
}

#[test]
fn join_off_a_worker_reraises_a_panic_after_both_sides() {
    within("join panic off a worker", || {
        init_global();
        let ran_b = AtomicUsize::new(0);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            corepool::join(
                || -> u8 { panic!("a on the global pool") },
                || ran_b.fetch_add(1, Ordering::SeqCst),
            )
        }));
        assert!(result.is_err());
        assert_eq!(ran_b.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn scope_off_a_worker_runs_on_the_global_pool() {
    within("scope off a worker", || {
        init_global();
        let mut parts = [0u64; 16];
        let on_global = AtomicUsize::new(0);
        let body_on_global = corepool::scope(|s| {
            for (i, part) in parts.iter_mut().enumerate() {
                let on_global = &on_global;
                s.spawn(move |s| {
                    if is_global_worker() {
                        on_global.fetch_add(1, Ordering::SeqCst);
                    }
                    s.spawn(move |_| *part = i as u64 * 2);
                });
            }
            is_global_worker()
        });
        assert!(body_on_global, "the body ran on a global worker");
        assert_eq!(on_global.load(Ordering::SeqCst), 16);
        assert_eq!(parts.iter().sum::<u64>(), (0..16).map(|i| i * 2).sum());
    });
}

#[test]
fn scope_on_a_worker_uses_that_workers_pool() {
    within("scope on a worker", || {
        init_global();
        let pool = Pool::builder()
            .workers(2)
            .thread_name("mine")
            .build()
            .unwrap();
        let names = std::sync::Mutex::new(Vec::new());
        pool.install(|| {
            corepool::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|_| names.lock().unwrap().push(thread_name()));
                }
            })
        });
        let names = names.into_inner().unwrap();
        assert_eq!(names.len(), 8);
        assert!(names.iter().all(|n| n.starts_with("mine-")), "{names:?}");
    });
}

#[test]
fn spawn_and_submit_off_a_worker_use_the_global_pool() {
    within("spawn and submit off a worker", || {
        init_global();
        let handle = corepool::spawn(|| (6 * 7, is_global_worker()));
        assert_eq!(handle.join().unwrap(), (42, true));

        let (tx, rx) = mpsc::channel();
        for i in 0..20 {
            let tx = tx.clone();
            corepool::submit(move || tx.send((i, is_global_worker())).unwrap());
        }
        let mut got: Vec<(i32, bool)> = (0..20)
            .map(|_| rx.recv_timeout(WATCHDOG).unwrap())
            .collect();
        got.sort();
        assert_eq!(got, (0..20).map(|i| (i, true)).collect::<Vec<_>>());

        // A panic goes to the handle, as with `Pool::spawn`.
        let err = corepool::spawn(|| -> u8 { panic!("on the global pool") })
            .join()
            .unwrap_err();
        assert!(err.is_panic());
    });
}

#[test]
fn spawn_and_submit_on_a_worker_keep_using_its_pool() {
    within("spawn and submit on a worker", || {
        init_global();
        let pool = Pool::builder()
            .workers(1)
            .thread_name("own")
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        pool.submit(move || {
            let child = corepool::spawn(thread_name);
            let tx2 = tx.clone();
            corepool::submit(move || tx2.send(thread_name()).unwrap());
            tx.send(child.join().unwrap()).unwrap();
        })
        .unwrap();
        for _ in 0..2 {
            assert_eq!(rx.recv_timeout(WATCHDOG).unwrap(), "own-0");
        }
    });
}

// ---- 2. Where am I ----

#[test]
fn current_thread_index_and_num_threads() {
    within("where am I", || {
        init_global();
        assert_eq!(corepool::current_thread_index(), None);
        assert_eq!(corepool::current_num_threads(), GLOBAL_WORKERS);

        let pool = Pool::builder()
            .workers(3)
            .max_workers(4)
            .thread_name_fn(|i| format!("idx-{i}"))
            .build()
            .unwrap();
        assert_eq!(pool.install(corepool::current_num_threads), 3);
        // Every worker reports its own index, the one in its name.
        let (tx, rx) = mpsc::channel();
        let together = Arc::new(std::sync::Barrier::new(3));
        for _ in 0..3 {
            let (tx, together) = (tx.clone(), together.clone());
            pool.submit(move || {
                together.wait(); // one task per worker
                tx.send((corepool::current_thread_index(), thread_name()))
                    .unwrap();
            })
            .unwrap();
        }
        let mut seen: Vec<(Option<usize>, String)> =
            (0..3).map(|_| rx.recv_timeout(WATCHDOG).unwrap()).collect();
        seen.sort();
        assert_eq!(
            seen,
            (0..3)
                .map(|i| (Some(i), format!("idx-{i}")))
                .collect::<Vec<_>>()
        );

        pool.set_workers(4).unwrap();
        assert_eq!(pool.install(corepool::current_num_threads), 4);
        // A child spawned on a worker runs on that pool.
        let child = pool.install(|| {
            corepool::spawn(corepool::current_thread_index)
                .join()
                .unwrap()
        });
        assert!(child.is_some_and(|i| i < 4), "{child:?}");
    });
}

#[test]
fn a_spare_reports_its_slot_index_and_is_named_by_the_name_fn() {
    within("spare index and name", || {
        let pool = Pool::builder()
            .workers(1)
            .max_spare_threads(1)
            .pin_workers(false)
            .thread_name_fn(|i| format!("slot-{i}"))
            .build()
            .unwrap();
        let other = Arc::new(Pool::builder().workers(1).build().unwrap());
        let (inside_tx, inside_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        // The only worker blocks in `install` on another pool: the spare,
        // in slot 1, runs the pool's queue meanwhile.
        let blocker = pool
            .spawn(move || {
                other.install(move || {
                    inside_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                });
            })
            .unwrap();
        inside_rx.recv_timeout(WATCHDOG).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.submit(move || {
            tx.send((corepool::current_thread_index(), thread_name()))
                .unwrap()
        })
        .unwrap();
        let (index, name) = rx.recv_timeout(WATCHDOG).unwrap();
        assert_eq!(index, Some(1));
        assert_eq!(name, "slot-1");
        release_tx.send(()).unwrap();
        blocker.join().unwrap();
    });
}

// ---- 3. in_place_scope ----

#[test]
fn in_place_scope_runs_the_body_on_the_caller_and_the_tasks_on_the_pool() {
    within("in_place_scope from outside", || {
        let pool = Pool::builder()
            .workers(2)
            .thread_name("ips")
            .build()
            .unwrap();
        let caller = thread::current().id();
        let not_send = Cell::new(0u32);
        let names = std::sync::Mutex::new(Vec::new());
        let mut out = [0u64; 32];
        let value = pool.in_place_scope(|s| {
            assert_eq!(thread::current().id(), caller);
            assert_eq!(corepool::current_thread_index(), None);
            for (i, slot) in out.iter_mut().enumerate() {
                not_send.set(not_send.get() + 1);
                let names = &names;
                s.spawn(move |s| {
                    names.lock().unwrap().push(thread_name());
                    // Nested spawns from a worker: its own deque.
                    s.spawn(move |_| *slot = i as u64 + 1);
                });
            }
            "body"
        });
        assert_eq!(value, "body");
        assert_eq!(not_send.get(), 32);
        assert_eq!(out.iter().sum::<u64>(), (1..=32).sum());
        let names = names.into_inner().unwrap();
        assert_eq!(names.len(), 32);
        assert!(names.iter().all(|n| n.starts_with("ips-")), "{names:?}");
    });
}

#[test]
fn in_place_scope_through_a_tiny_queue_and_a_panic() {
    within("in_place_scope, capacity 1", || {
        let pool = Pool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap();
        let count = AtomicUsize::new(0);
        pool.in_place_scope(|s| {
            for _ in 0..200 {
                s.spawn(|_| {
                    count.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(count.load(Ordering::SeqCst), 200);

        let ran = AtomicUsize::new(0);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.in_place_scope(|s| {
                s.spawn(|_| panic!("scope task"));
                for _ in 0..10 {
                    s.spawn(|_| {
                        ran.fetch_add(1, Ordering::SeqCst);
                    });
                }
            })
        }));
        assert!(result.is_err(), "the task's panic is re-raised");
        assert_eq!(ran.load(Ordering::SeqCst), 10, "after everything finished");
    });
}

#[test]
fn in_place_scope_on_a_worker_of_the_pool_and_of_another() {
    within("in_place_scope on workers", || {
        let pool = Pool::builder().workers(2).thread_name("p").build().unwrap();
        let other = Pool::builder().workers(1).thread_name("q").build().unwrap();
        // On a worker of the same pool: it is `scope`.
        let sum = pool.install(|| {
            let sum = AtomicUsize::new(0);
            pool.in_place_scope(|s| {
                for i in 0..50 {
                    let sum = &sum;
                    s.spawn(move |_| {
                        sum.fetch_add(i, Ordering::SeqCst);
                    });
                }
            });
            sum.into_inner()
        });
        assert_eq!(sum, (0..50).sum());
        // On a worker of another pool: the body stays on that worker, the
        // tasks run on `pool`.
        let (body, names) = other.install(|| {
            let names = std::sync::Mutex::new(Vec::new());
            let body = pool.in_place_scope(|s| {
                for _ in 0..4 {
                    s.spawn(|_| names.lock().unwrap().push(thread_name()));
                }
                thread_name()
            });
            (body, names.into_inner().unwrap())
        });
        assert_eq!(body, "q-0");
        assert_eq!(names.len(), 4);
        assert!(names.iter().all(|n| n.starts_with("p-")), "{names:?}");
    });
}

// ---- 4. wait_idle ----

#[test]
fn wait_idle_waits_for_queued_running_and_spawned_tasks() {
    within("wait_idle", || {
        let pool = Arc::new(Pool::builder().workers(2).build().unwrap());
        assert!(pool.wait_idle_timeout(Duration::ZERO), "a new pool is idle");
        pool.wait_idle();

        let gate = Gate::new();
        hold_one_worker(&pool, &gate);
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..50 {
            let done = done.clone();
            pool.submit(move || {
                for _ in 0..4 {
                    let done = done.clone();
                    corepool::submit(move || {
                        let done = done.clone();
                        corepool::submit(move || {
                            done.fetch_add(1, Ordering::SeqCst);
                        });
                    });
                }
            })
            .unwrap();
        }
        // The held task is running: not idle, whatever else has finished.
        assert!(!pool.wait_idle_timeout(Duration::ZERO));
        let (tx, rx) = mpsc::channel();
        let waiter = {
            let (done, waiting) = (done.clone(), pool.clone());
            thread::spawn(move || {
                waiting.wait_idle();
                // Everything accepted before the call has finished.
                tx.send(done.load(Ordering::SeqCst)).unwrap();
            })
        };
        gate.open();
        assert_eq!(rx.recv_timeout(WATCHDOG).unwrap(), 200);
        waiter.join().unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 200);
        assert_eq!(pool.metrics().in_flight, 0);

        // Still open: more work, and wait again.
        for _ in 0..10 {
            let done = done.clone();
            pool.submit(move || {
                done.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        assert!(pool.wait_idle_timeout(WATCHDOG));
        assert_eq!(done.load(Ordering::SeqCst), 210);
    });
}

#[test]
fn wait_idle_never_returns_before_the_last_task_finished() {
    within("wait_idle under churn", || {
        let pool = Pool::builder()
            .workers(2)
            .queue_capacity(8)
            .pin_workers(false)
            .build()
            .unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        for round in 1..=300 {
            for _ in 0..8 {
                let done = done.clone();
                pool.submit(move || {
                    for _ in 0..3 {
                        let done = done.clone();
                        corepool::submit(move || {
                            done.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
            pool.wait_idle();
            assert_eq!(done.load(Ordering::SeqCst), round * 32, "round {round}");
        }
    });
}

#[test]
fn wait_idle_counts_scopes_joins_and_installs() {
    within("wait_idle with fork-join", || {
        let pool = Pool::builder()
            .workers(2)
            .queue_capacity(4)
            .build()
            .unwrap();
        let handles: Vec<_> = (0..20u64)
            .map(|i| {
                pool.spawn(move || {
                    let (a, b) = corepool::join(|| i, || i * 2);
                    let mut v = [0u64; 4];
                    corepool::scope(|s| {
                        for x in v.iter_mut() {
                            s.spawn(move |_| *x = a + b);
                        }
                    });
                    v.iter().sum::<u64>()
                })
                .unwrap()
            })
            .collect();
        pool.wait_idle();
        // Every task finished: its result is there already.
        for (i, handle) in handles.into_iter().enumerate() {
            assert!(handle.is_finished());
            assert_eq!(handle.join().unwrap(), 12 * i as u64);
        }
        for _ in 0..3 {
            assert!(pool.wait_idle_timeout(WATCHDOG));
        }
    });
}

#[test]
fn wait_idle_across_a_shrink_of_the_pool() {
    within("wait_idle and set_workers", || {
        let pool = Pool::builder().workers(3).build().unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        for round in 1..=20 {
            for _ in 0..30 {
                let done = done.clone();
                pool.submit(move || {
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
            // Workers above the count retire, moving their queued tasks.
            pool.set_workers(if round % 2 == 0 { 3 } else { 1 })
                .unwrap();
            pool.wait_idle();
            assert_eq!(done.load(Ordering::SeqCst), round * 30, "round {round}");
        }
    });
}

#[test]
fn wait_idle_from_a_task_of_the_pool_returns_at_once() {
    within("wait_idle from inside", || {
        let pool = Arc::new(Pool::builder().workers(1).build().unwrap());
        let inner = pool.clone();
        let (timed, plain) = pool.install(|| {
            let timed = inner.wait_idle_timeout(WATCHDOG);
            inner.wait_idle(); // returns: it would wait for this very task
            (timed, true)
        });
        assert!(!timed, "not idle: the caller's own task runs");
        assert!(plain);
        pool.wait_idle();
    });
}

#[test]
fn wait_idle_from_a_worker_of_another_pool() {
    within("wait_idle from another pool", || {
        let pool = Arc::new(Pool::builder().workers(1).build().unwrap());
        let other = Pool::builder()
            .workers(1)
            .max_spare_threads(1)
            .build()
            .unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let done = done.clone();
            pool.submit(move || {
                done.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        let waiting = pool.clone();
        // Meanwhile `other` keeps running its queue on a spare.
        let blocked = other.spawn(move || waiting.wait_idle()).unwrap();
        assert_eq!(other.install(|| 5), 5);
        blocked.join().unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 10);
    });
}

// ---- 5. thread_name_fn ----

#[test]
fn thread_name_fn_and_thread_name_the_later_call_wins() {
    within("thread names", || {
        let by_fn = Pool::builder()
            .workers(1)
            .thread_name("prefix")
            .thread_name_fn(|i| format!("fn-{i}"))
            .build()
            .unwrap();
        assert_eq!(by_fn.install(thread_name), "fn-0");
        let by_prefix = Pool::builder()
            .workers(1)
            .thread_name_fn(|i| format!("fn-{i}"))
            .thread_name("prefix")
            .build()
            .unwrap();
        assert_eq!(by_prefix.install(thread_name), "prefix-0");

        let err = Pool::builder()
            .workers(2)
            .thread_name_fn(|i| if i == 1 { "bad\0".into() } else { "ok".into() })
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::InvalidThreadName(name) if name == "bad\0"));
    });
}
