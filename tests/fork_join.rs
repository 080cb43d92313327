//! Fork-join: `scope` lets tasks borrow the caller's stack and returns only
//! once all of them finished (re-raising the first panic then); `join`
//! runs two closures, potentially in parallel, from outside the pool, from
//! inside it, or sequentially on a thread of no pool. Work forked from
//! inside the pool never goes through the bound, so it completes however
//! full the injector is.
//!
//! See `docs/lifecycle.md` for the full story.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use corepool::Pool;
use support::{fib_seq, hold_one_worker, unpinned_pool as pool, within, Gate};

/// Fibonacci by `corepool::join`, sequential below a cutoff.
fn fib(n: u64) -> u64 {
    if n < 12 {
        return fib_seq(n);
    }
    let (a, b) = corepool::join(|| fib(n - 1), || fib(n - 2));
    a + b
}

/// Sum of a slice by recursive halving, down to `leaf` elements.
fn tree_sum(values: &[u64], leaf: usize) -> u64 {
    if values.len() <= leaf {
        return values.iter().sum();
    }
    let (left, right) = values.split_at(values.len() / 2);
    let (a, b) = corepool::join(|| tree_sum(left, leaf), || tree_sum(right, leaf));
    a + b
}

/// A join recursion as deep as `depth`: the first side recurses.
fn chain(depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    let (a, b) = corepool::join(|| chain(depth - 1), || 1);
    a + b
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<not a string>")
}

#[test]
fn scope_mutates_disjoint_chunks_of_a_stack_vec() {
    within("scope over chunks_mut", || {
        let pool = pool(2);
        let mut data = vec![0u64; 10_000];
        let offset = 7u64; // borrowed by every task, read-only
        let returned = pool.scope(|s| {
            for (c, chunk) in data.chunks_mut(100).enumerate() {
                let offset = &offset;
                s.spawn(move |_| {
                    for (i, x) in chunk.iter_mut().enumerate() {
                        *x = (c * 100 + i) as u64 + *offset;
                    }
                });
            }
            "the body's value"
        });
        assert_eq!(returned, "the body's value");
        let expected: Vec<u64> = (0..10_000u64).map(|i| i + 7).collect();
        assert_eq!(data, expected, "every chunk written by its task, once");
        pool.shutdown();
    });
}

#[test]
fn nested_scopes_finish_everything_before_returning() {
    within("nested scopes", || {
        let pool = pool(2);
        let mut outer = [0usize; 8];
        let leaves = AtomicUsize::new(0);
        pool.scope(|s| {
            for (i, slot) in outer.iter_mut().enumerate() {
                let pool = &pool;
                let leaves = &leaves;
                s.spawn(move |s| {
                    // A scope nested in a scope task, on the same pool...
                    let mut inner = [0usize; 4];
                    pool.scope(|s2| {
                        for (j, cell) in inner.iter_mut().enumerate() {
                            s2.spawn(move |_| *cell = i * 10 + j);
                        }
                    });
                    *slot = inner.iter().sum();
                    // ...and tasks spawned through the outer scope's handle
                    // from inside one of its tasks.
                    for _ in 0..3 {
                        s.spawn(move |_| {
                            leaves.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        for (i, total) in outer.iter().enumerate() {
            assert_eq!(*total, (0..4).map(|j| i * 10 + j).sum::<usize>());
        }
        assert_eq!(leaves.load(Ordering::Relaxed), 8 * 3);
        pool.shutdown();
    });
}

#[test]
fn a_panicking_scope_task_is_reraised_after_every_other_task_finished() {
    within("scope task panic", || {
        let pool = pool(2);
        let finished = AtomicUsize::new(0);
        let gate = Gate::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                // Held until the panicking task has run.
                let held = gate.clone();
                let finished = &finished;
                s.spawn(move |_| {
                    held.wait();
                    finished.fetch_add(1, Ordering::SeqCst);
                });
                for _ in 0..50 {
                    s.spawn(move |_| {
                        finished.fetch_add(1, Ordering::SeqCst);
                    });
                }
                let opener = gate.clone();
                s.spawn(move |_| {
                    opener.open();
                    panic!("scope task");
                });
            })
        }));
        // Not read until after the unwind: the scope must have waited for
        // the held task, which finishes only after the panic.
        let payload = result.expect_err("the task's panic is re-raised");
        assert_eq!(panic_message(&*payload), "scope task");
        assert_eq!(finished.load(Ordering::SeqCst), 51);

        // The pool is fine afterwards.
        assert_eq!(pool.install(|| 1 + 1), 2);
        pool.shutdown();
    });
}

#[test]
fn a_panicking_scope_body_is_reraised_after_every_task_finished() {
    within("scope body panic", || {
        let pool = pool(2);
        let finished = AtomicUsize::new(0);
        let gate = Gate::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                for _ in 0..20 {
                    let held = gate.clone();
                    let finished = &finished;
                    s.spawn(move |_| {
                        held.wait();
                        finished.fetch_add(1, Ordering::SeqCst);
                    });
                }
                // Every task is still held when the body panics.
                gate.open();
                panic!("scope body");
            })
        }));
        let payload = result.expect_err("the body's panic is re-raised");
        assert_eq!(panic_message(&*payload), "scope body");
        assert_eq!(finished.load(Ordering::SeqCst), 20);
        pool.shutdown();
    });
}

#[test]
fn join_from_outside_gives_the_sequential_results() {
    within("join from outside", || {
        let pool = pool(2);
        let (a, b) = pool.join(|| fib(24), || fib(23));
        assert_eq!((a, b), (fib_seq(24), fib_seq(23)));
        assert_eq!(pool.install(|| fib(25)), fib_seq(25));
        assert_eq!(
            pool.install(|| corepool::join(|| fib(20), || fib(21))),
            (fib_seq(20), fib_seq(21))
        );

        let values: Vec<u64> = (0..100_000u64).map(|i| i * 3 + 1).collect();
        let expected: u64 = values.iter().sum();
        assert_eq!(pool.install(|| tree_sum(&values, 64)), expected);
        let (left, right) = values.split_at(30_000);
        let (l, r) = pool.join(|| tree_sum(left, 16), || tree_sum(right, 16));
        assert_eq!(l + r, expected);
        pool.shutdown();
    });
}

#[test]
fn join_from_inside_a_spawned_task_gives_the_sequential_results() {
    within("join from inside", || {
        let pool = pool(2);
        let fib25 = pool.spawn(|| fib(25)).unwrap();
        let values: Arc<Vec<u64>> = Arc::new((1..=50_000u64).collect());
        let shared = values.clone();
        let sum = pool.spawn(move || tree_sum(&shared, 32)).unwrap();
        assert_eq!(fib25.join().unwrap(), fib_seq(25));
        assert_eq!(sum.join().unwrap(), values.iter().sum::<u64>());

        // Pool::join and install called from inside a task run right there.
        let pool = Arc::new(pool);
        let inner = pool.clone();
        let nested = pool
            .spawn(move || inner.join(|| fib(18), || inner.install(|| fib(17))))
            .unwrap();
        assert_eq!(nested.join().unwrap(), (fib_seq(18), fib_seq(17)));
        let pool = Arc::try_unwrap(pool).expect("the task dropped its clone");
        pool.shutdown();
    });
}

#[test]
fn join_runs_both_sides_at_once_when_a_worker_is_free() {
    // Each side waits for the other at a barrier: this completes only if
    // the second side was taken by the other worker while the first runs.
    within("join in parallel", || {
        let pool = pool(2);
        let together = Barrier::new(2);
        let (a, b) = pool.join(
            || {
                together.wait();
                thread::current().id()
            },
            || {
                together.wait();
                thread::current().id()
            },
        );
        assert_ne!(a, b, "the two sides ran on different workers");
        pool.shutdown();
    });
}

/// Recurses `depth` joins deep along the first closures (each second
/// closure does nothing), then runs `bottom` there.
fn nest<R>(depth: u32, bottom: &(dyn Fn() -> R + Sync)) -> R
where
    R: Send,
{
    if depth == 0 {
        return bottom();
    }
    corepool::join(|| nest(depth - 1, bottom), || ()).0
}

#[test]
fn a_deep_join_offers_its_second_closure_once_the_older_ones_are_taken() {
    // A worker keeps one piece of its joins on offer: when its deque is
    // empty at a join point, it offers its oldest private second closure.
    // At depth 12, `a` keeps opening small joins until `b` has started:
    // that happens only if those joins offer the twelve older frames one
    // by one as the idle worker takes them, down to this `b` (the watchdog
    // fails the test otherwise).
    within("a deep b reaches an idle worker", || {
        let pool = pool(2);
        let (a_thread, b_thread) = pool.install(|| {
            nest(12, &|| {
                let b_started = AtomicUsize::new(0);
                let (a, b) = corepool::join(
                    || {
                        while b_started.load(Ordering::SeqCst) == 0 {
                            corepool::join(|| (), || ());
                        }
                        thread::current().id()
                    },
                    || {
                        b_started.store(1, Ordering::SeqCst);
                        thread::current().id()
                    },
                );
                (a, b)
            })
        });
        assert_ne!(a_thread, b_thread, "b ran on the idle worker");
        pool.shutdown();
    });
}

#[test]
fn deep_joins_stay_correct_after_a_panic_deep_inside() {
    // A panic unwinds through sixteen joins; the worker's frames of the
    // joins it unwound must all be closed, or the joins that follow would
    // run a closure twice or lose one (and trip a debug assertion on the
    // frames).
    within("deep joins after a deep panic", || {
        let pool = pool(2);
        for round in 0..20 {
            let result = pool.install(|| {
                catch_unwind(AssertUnwindSafe(|| {
                    nest(6, &|| {
                        nest(10, &|| -> u64 {
                            let (x, _) = corepool::join(|| fib(14), || -> u64 { panic!("deep") });
                            x
                        })
                    })
                }))
            });
            assert_eq!(
                panic_message(&*result.unwrap_err()),
                "deep",
                "round {round}"
            );
            let values: Vec<u64> = (0..5_000).collect();
            let (sum, f) = pool.install(|| nest(12, &|| (tree_sum(&values, 3), fib(20))));
            assert_eq!(sum, values.iter().sum::<u64>(), "round {round}");
            assert_eq!(f, fib_seq(20), "round {round}");
        }
        pool.shutdown();
    });
}

#[test]
fn join_outside_any_pool_runs_on_the_global_pool() {
    let me = thread::current().id();
    let (a, b) = corepool::join(
        || {
            (
                fib(20),
                thread::current().id(),
                corepool::current_thread_index(),
            )
        },
        || {
            (
                fib(19),
                thread::current().id(),
                corepool::current_thread_index(),
            )
        },
    );
    assert_eq!(a.0, fib_seq(20));
    assert_eq!(b.0, fib_seq(19));
    // Both sides ran on workers of the global pool, not on the caller.
    assert!(a.1 != me && b.1 != me);
    assert!(a.2.is_some() && b.2.is_some());

    let values: Vec<u64> = (0..10_000).collect();
    assert_eq!(tree_sum(&values, 8), values.iter().sum::<u64>());

    // A panic in the second side propagates, after the first ran.
    let ran_a = AtomicUsize::new(0);
    let result = catch_unwind(AssertUnwindSafe(|| {
        corepool::join(
            || ran_a.fetch_add(1, Ordering::SeqCst),
            || -> u8 { panic!("b outside") },
        )
    }));
    assert_eq!(panic_message(&*result.unwrap_err()), "b outside");
    assert_eq!(ran_a.load(Ordering::SeqCst), 1);
}

#[test]
fn join_outside_any_pool_runs_b_even_if_a_panics() {
    let ran_b = AtomicUsize::new(0);
    let result = catch_unwind(AssertUnwindSafe(|| {
        corepool::join(
            || -> u8 { panic!("a outside") },
            || ran_b.fetch_add(1, Ordering::SeqCst),
        )
    }));
    assert_eq!(panic_message(&*result.unwrap_err()), "a outside");
    // "If either closure panics, the panic is re-raised after both have
    // finished": `b` must have run.
    assert_eq!(ran_b.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panic_on_either_side_of_join_propagates_after_both_finished() {
    within("join panics", || {
        let pool = pool(2);

        // `a` panics; `b` is held until then, and must finish before the
        // panic reaches the caller.
        let b_done = AtomicUsize::new(0);
        let gate = Gate::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.join(
                || -> u8 {
                    gate.open();
                    panic!("left side")
                },
                || {
                    gate.wait();
                    b_done.fetch_add(1, Ordering::SeqCst)
                },
            )
        }));
        assert_eq!(panic_message(&*result.unwrap_err()), "left side");
        assert_eq!(b_done.load(Ordering::SeqCst), 1);

        // `b` panics (on the other worker: `a` waits for it to open the
        // gate); `a` finishes first, then the panic propagates.
        let a_done = AtomicUsize::new(0);
        let gate = Gate::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| {
                corepool::join(
                    || {
                        gate.wait();
                        a_done.fetch_add(1, Ordering::SeqCst)
                    },
                    || -> u8 {
                        gate.open();
                        panic!("right side")
                    },
                )
            })
        }));
        assert_eq!(panic_message(&*result.unwrap_err()), "right side");
        assert_eq!(a_done.load(Ordering::SeqCst), 1);

        // Both panic: the first side's payload wins.
        let gate = Gate::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.join(
                || -> u8 {
                    gate.wait();
                    panic!("first")
                },
                || -> u8 {
                    gate.open();
                    panic!("second")
                },
            )
        }));
        assert_eq!(panic_message(&*result.unwrap_err()), "first");

        // Inside a spawned task the panic reaches its JoinHandle.
        let handle = pool
            .spawn(|| corepool::join(|| 1, || -> u8 { panic!("inside") }))
            .unwrap();
        let payload = handle.join().unwrap_err().into_panic().unwrap();
        assert_eq!(panic_message(&*payload), "inside");

        assert_eq!(pool.install(|| fib(15)), fib_seq(15), "the pool is fine");
        pool.shutdown();
    });
}

#[test]
fn fork_join_from_inside_ignores_a_bound_of_one() {
    within("fork-join with queue_capacity(1)", || {
        let pool = Pool::builder()
            .workers(2)
            .queue_capacity(1)
            .stack_size(32 << 20)
            .pin_workers(false)
            .build()
            .unwrap();

        // A scope of 10,000 tasks (and some grandchildren).
        let count = AtomicUsize::new(0);
        pool.scope(|s| {
            for i in 0..10_000 {
                let count = &count;
                s.spawn(move |s| {
                    count.fetch_add(1, Ordering::Relaxed);
                    if i % 10 == 0 {
                        s.spawn(move |_| {
                            count.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(count.load(Ordering::Relaxed), 11_000);

        // Deep and wide join recursions.
        assert_eq!(pool.install(|| chain(2_000)), 2_000);
        let values: Vec<u64> = (0..200_000).collect();
        assert_eq!(
            pool.install(|| tree_sum(&values, 1)),
            values.iter().sum::<u64>()
        );
        assert_eq!(pool.install(|| fib(25)), fib_seq(25));
        pool.shutdown();
    });
}

#[test]
fn fork_join_inside_a_task_proceeds_while_the_bound_is_full() {
    within("fork-join while the injector is full", || {
        let pool = Arc::new(
            Pool::builder()
                .workers(1)
                .queue_capacity(1)
                .stack_size(32 << 20)
                .pin_workers(false)
                .build()
                .unwrap(),
        );
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        let started = Gate::new();

        let inner = pool.clone();
        let (held, started_signal) = (gate.clone(), started.clone());
        let forker = pool
            .spawn(move || {
                started_signal.open();
                held.wait();
                // The one slot is taken by the filler, which only this
                // (busy) worker could start: the bound is full.
                assert_eq!(inner.queued(), inner.capacity());

                let count = AtomicUsize::new(0);
                inner.scope(|s| {
                    for _ in 0..10_000 {
                        s.spawn(|_| {
                            count.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
                let handle = inner.handle();
                let children: Vec<_> = (0..1_000u64)
                    .map(|i| handle.spawn(move || i).expect("accepted from inside"))
                    .collect();
                let spawned: u64 = children.into_iter().map(|c| c.join().unwrap()).sum();
                let values: Vec<u64> = (0..50_000).collect();
                (
                    count.into_inner(),
                    spawned,
                    tree_sum(&values, 1),
                    chain(1_000),
                    fib(22),
                )
            })
            .unwrap();

        // Wait (the only worker runs the forker), then fill the bound.
        started.wait();
        let filled = Arc::new(AtomicUsize::new(0));
        let filler = filled.clone();
        pool.try_submit(move || {
            filler.fetch_add(1, Ordering::SeqCst);
        })
        .expect("one slot free");
        match pool.try_submit(|| {}) {
            Err(err) if err.is_full() => {}
            other => panic!("the bound of one is taken: {:?}", other.map(|_| ())),
        }
        gate.open();

        let (count, spawned, sum, depth, f) = forker.join().expect("the forker finished");
        assert_eq!(count, 10_000);
        assert_eq!(spawned, (0..1_000u64).sum::<u64>());
        assert_eq!(sum, (0..50_000u64).sum::<u64>());
        assert_eq!(depth, 1_000);
        assert_eq!(f, fib_seq(22));

        let pool = Arc::try_unwrap(pool).expect("the forker dropped its clone");
        pool.shutdown();
        assert_eq!(filled.load(Ordering::SeqCst), 1, "the filler ran too");
    });
}

#[test]
fn scope_install_and_join_on_a_closed_pool_run_on_the_caller() {
    // A pool that timed out shutting down comes back closed: fork-join
    // through it still works, on the calling thread.
    within("fork-join on a closed pool", || {
        let pool = Pool::builder()
            .workers(1)
            .thread_name("closed")
            .pin_workers(false)
            .build()
            .unwrap();
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        hold_one_worker(&pool, &gate);
        let closed = pool
            .shutdown_timeout(std::time::Duration::ZERO)
            .expect_err("the worker is held")
            .into_pool();
        assert!(closed.handle().is_shutdown());

        let me = thread::current().id();
        assert_eq!(closed.install(|| thread::current().id()), me);
        let (a, b) = closed.join(|| thread::current().id(), || fib(15));
        assert_eq!((a, b), (me, fib_seq(15)));
        let mut data = vec![0u32; 64];
        closed.scope(|s| {
            for chunk in data.chunks_mut(8) {
                s.spawn(move |_| {
                    assert_eq!(thread::current().id(), me);
                    chunk.fill(3);
                });
            }
        });
        assert!(data.iter().all(|&x| x == 3));

        gate.open();
        let report = closed.shutdown();
        assert_eq!(report.executed, 1, "only the holding task ran on a worker");
    });
}
