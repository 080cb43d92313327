//! `JoinContext`: joins through a context handed to each closure. Results
//! match the sequential ones in pools of one to three workers and off any
//! worker; a panic on either side is re-raised after both sides ran, on
//! the plain path (no frame) and on the framed one; an idle worker keeps
//! getting pieces of a recursion of context joins; and context joins nest
//! inside free joins, scopes, another pool, and the other way round.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;

use corepool::{JoinContext, Pool};
use support::{fib_seq, unpinned_pool as pool, within};

/// Fibonacci by context joins all the way down.
fn fib(n: u64, ctx: &mut JoinContext<'_>) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = ctx.join(|ctx| fib(n - 1, ctx), |ctx| fib(n - 2, ctx));
    a + b
}

/// The sum of `values` by halving, a context join at every split.
fn sum(values: &[u64], ctx: &mut JoinContext<'_>) -> u64 {
    if values.len() <= 1 {
        return values.iter().sum();
    }
    let (left, right) = values.split_at(values.len() / 2);
    let (l, r) = ctx.join(|ctx| sum(left, ctx), |ctx| sum(right, ctx));
    l + r
}

/// Recurses `depth` context joins deep along the first closures (each
/// second closure runs `side`), then runs `bottom` there.
fn nest<R>(
    depth: u32,
    ctx: &mut JoinContext<'_>,
    side: &(dyn Fn() + Sync),
    bottom: &(dyn Fn(&mut JoinContext<'_>) -> R + Sync),
) -> R
where
    R: Send,
{
    if depth == 0 {
        return bottom(ctx);
    }
    ctx.join(|ctx| nest(depth - 1, ctx, side, bottom), |_| side())
        .0
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<not a string>")
}

#[test]
fn context_joins_give_the_sequential_results() {
    within("context joins", || {
        let values: Vec<u64> = (0..20_000).collect();
        let expected_sum: u64 = values.iter().sum();
        for workers in 1..=3 {
            let pool = pool(workers);
            for _ in 0..5 {
                let (f, s) = pool.install(|| {
                    corepool::join_context(|ctx| fib(22, ctx), |ctx| sum(&values, ctx))
                });
                assert_eq!(f, fib_seq(22), "{workers} workers");
                assert_eq!(s, expected_sum, "{workers} workers");
            }
            pool.shutdown();
        }
    });
}

#[test]
fn join_context_off_any_worker_runs_on_the_global_pool() {
    within("join_context off a worker", || {
        let me = thread::current().id();
        let (a, b) = corepool::join_context(
            |ctx| (fib(18, ctx), thread::current().id()),
            |ctx| (fib(17, ctx), corepool::current_thread_index()),
        );
        assert_eq!(a.0, fib_seq(18));
        assert_eq!(b.0, fib_seq(17));
        assert_ne!(a.1, me, "the first side ran on a worker of the global pool");
        assert!(b.1.is_some(), "the second side ran on a worker");
    });
}

#[test]
fn the_second_side_runs_on_an_idle_worker() {
    // Each side waits for the other at a barrier: this completes only if
    // the second side was taken by the other worker while the first runs.
    within("join_context in parallel", || {
        let pool = pool(2);
        let together = Barrier::new(2);
        let (a, b) = pool.install(|| {
            corepool::join_context(
                |_| {
                    together.wait();
                    thread::current().id()
                },
                |_| {
                    together.wait();
                    thread::current().id()
                },
            )
        });
        assert_ne!(a, b, "the two sides ran on different workers");
        pool.shutdown();
    });
}

#[test]
fn an_idle_worker_keeps_getting_pieces_of_a_context_recursion() {
    // Twelve context joins deep, the first side joins nothing-closures in
    // a loop until three second sides have run on the other worker. The
    // first is offered at the root; each later one only if the framed
    // joins among the loop's plain ones offer the owner's next-oldest
    // frame once the previous piece was taken (the watchdog fails the test
    // otherwise).
    within("pieces of a context recursion reach an idle worker", || {
        let pool = pool(2);
        let owner = std::sync::OnceLock::new();
        let taken = AtomicUsize::new(0);
        let side = || {
            if owner.get() != Some(&thread::current().id()) {
                taken.fetch_add(1, Ordering::SeqCst);
            }
        };
        pool.install(|| {
            owner.set(thread::current().id()).expect("set once");
            corepool::join_context(
                |ctx| {
                    nest(12, ctx, &side, &|ctx| {
                        while taken.load(Ordering::SeqCst) < 3 {
                            ctx.join(|_| (), |_| ());
                        }
                    })
                },
                |_| side(),
            )
        });
        assert!(taken.load(Ordering::SeqCst) >= 3);
        pool.shutdown();
    });
}

/// Joins `a` and `b` through a context `depth` joins deep, where the
/// join at the bottom is plain (no frame) once `depth` reaches past the
/// few framed joins nearest the root, and framed at depth 0.
fn join_at_depth<RA: Send, RB: Send>(
    pool: &Pool,
    depth: u32,
    a: &(dyn Fn() -> RA + Sync),
    b: &(dyn Fn() -> RB + Sync),
) -> std::thread::Result<(RA, RB)> {
    pool.install(|| {
        catch_unwind(AssertUnwindSafe(|| {
            corepool::join_context(
                |ctx| nest(depth, ctx, &|| (), &|ctx| ctx.join(|_| a(), |_| b())),
                |_| (),
            )
            .0
        }))
    })
}

#[test]
fn a_panic_on_either_side_is_reraised_after_both_ran() {
    within("context join panics", || {
        for workers in [1, 2] {
            let pool = pool(workers);
            // Depth 0: a framed join; depth 10: a plain one.
            for depth in [0, 10] {
                let ran_b = AtomicUsize::new(0);
                let result =
                    join_at_depth(&pool, depth, &|| -> u8 { panic!("first side") }, &|| {
                        ran_b.fetch_add(1, Ordering::SeqCst)
                    });
                let payload = result.expect_err("the first side panicked");
                assert_eq!(panic_message(&*payload), "first side", "depth {depth}");
                assert_eq!(ran_b.load(Ordering::SeqCst), 1, "b ran, depth {depth}");

                let ran_a = AtomicUsize::new(0);
                let result = join_at_depth(
                    &pool,
                    depth,
                    &|| ran_a.fetch_add(1, Ordering::SeqCst),
                    &|| -> u8 { panic!("second side") },
                );
                let payload = result.expect_err("the second side panicked");
                assert_eq!(panic_message(&*payload), "second side", "depth {depth}");
                assert_eq!(ran_a.load(Ordering::SeqCst), 1, "a ran, depth {depth}");

                let result =
                    join_at_depth(&pool, depth, &|| -> u8 { panic!("first") }, &|| -> u8 {
                        panic!("second")
                    });
                let payload = result.expect_err("both sides panicked");
                assert_eq!(panic_message(&*payload), "first", "depth {depth}");
            }
            // The pool and its workers' frames are fine afterwards.
            let values: Vec<u64> = (0..5_000).collect();
            let (s, f) = pool
                .install(|| corepool::join_context(|ctx| sum(&values, ctx), |ctx| fib(18, ctx)));
            assert_eq!(s, values.iter().sum::<u64>());
            assert_eq!(f, fib_seq(18));
            pool.shutdown();
        }
    });
}

#[test]
fn deep_context_joins_stay_correct_after_panics_deep_inside() {
    // Panics unwind through plain and framed context joins and free joins
    // mixed; the frames of every join unwound must be closed, or later
    // joins would run a closure twice or lose one.
    within("context joins after deep panics", || {
        let pool = pool(2);
        let values: Vec<u64> = (0..10_000).collect();
        for round in 0..20 {
            let result = pool.install(|| {
                catch_unwind(AssertUnwindSafe(|| {
                    corepool::join_context(
                        |ctx| {
                            nest(8, ctx, &|| (), &|_| {
                                corepool::join(
                                    || {
                                        corepool::join_context(
                                            |ctx| fib(12, ctx),
                                            |ctx| -> u64 {
                                                nest(6, ctx, &|| (), &|_| -> u64 { panic!("deep") })
                                            },
                                        )
                                    },
                                    || corepool::join_context(|ctx| sum(&values, ctx), |_| 0).0,
                                )
                            })
                        },
                        |ctx| sum(&values, ctx),
                    )
                }))
            });
            let payload = result.expect_err("the deep panic propagates");
            assert_eq!(panic_message(&*payload), "deep", "round {round}");
            let (s, f) = pool
                .install(|| corepool::join_context(|ctx| sum(&values, ctx), |ctx| fib(20, ctx)));
            assert_eq!(s, values.iter().sum::<u64>(), "round {round}");
            assert_eq!(f, fib_seq(20), "round {round}");
        }
        pool.shutdown();
    });
}

#[test]
fn context_joins_nest_with_free_joins_scopes_and_other_pools() {
    within("context joins nested", || {
        let other = pool(2);
        let pool = pool(2);
        let values: Vec<u64> = (0..4_096).collect();
        let expected: u64 = values.iter().sum();
        let results = pool.install(|| {
            corepool::join_context(
                // A free join inside a context join, and a context join
                // inside that.
                |ctx| {
                    let (x, y) = ctx.join(
                        |_| {
                            corepool::join(
                                || corepool::join_context(|ctx| fib(15, ctx), |_| 0).0,
                                || 1,
                            )
                        },
                        |ctx| sum(&values, ctx),
                    );
                    x.0 + x.1 + y
                },
                // A scope inside a context join, and another pool's
                // context joins inside that.
                |ctx| {
                    let mut parts = [0u64; 4];
                    corepool::scope(|s| {
                        for (i, part) in parts.iter_mut().enumerate() {
                            let values = &values;
                            s.spawn(move |_| {
                                *part = corepool::join_context(
                                    |ctx| sum(&values[i * 1024..(i + 1) * 1024], ctx),
                                    |_| 0,
                                )
                                .0;
                            });
                        }
                    });
                    let across =
                        other.install(|| corepool::join_context(|ctx| fib(16, ctx), |_| ()).0);
                    let (f, ()) = ctx.join(|ctx| fib(14, ctx), |_| ());
                    parts.iter().sum::<u64>() + across + f
                },
            )
        });
        assert_eq!(results.0, fib_seq(15) + 1 + expected);
        assert_eq!(results.1, expected + fib_seq(16) + fib_seq(14));
        pool.shutdown();
        other.shutdown();
    });
}
