//! What awaiting a slot costs when there is room: `submit_async` polled
//! once (a noop waker, and `futures::executor::block_on`) against
//! `try_submit`, and a permit (`try_reserve` then `Permit::submit`), in
//! the same run; and `try_submit` into a pool with a delay budget. The
//! issue's target: `submit_async` adds at most 100 ns per task over
//! `try_submit` when there is room.
//!
//! Each measured batch submits 1,024 empty tasks into a pool of capacity
//! 4,096 (so there is always room), then, outside the timing, waits for the
//! pool to go idle. Only the submissions are timed.
//!
//! Run: `cargo bench --bench submit_async` (smoke test: `cargo bench
//! --bench submit_async -- --test`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: u64 = 1024;

/// Times `submit_one` over `iters` submissions, in batches that always fit.
fn timed(pool: &corepool::Pool, iters: u64, mut submit_one: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        let start = Instant::now();
        for _ in 0..n {
            submit_one();
        }
        total += start.elapsed();
        pool.wait_idle();
        left -= n;
    }
    total
}

fn bench(c: &mut Criterion) {
    let pool = corepool::Pool::builder()
        .queue_capacity(4 * BATCH as usize)
        .build()
        .expect("build the pool");
    let mut group = c.benchmark_group("submit_with_room");
    group.bench_function("try_submit", |b| {
        b.iter_custom(|iters| {
            timed(&pool, iters, || {
                if pool.try_submit(|| {}).is_err() {
                    panic!("room by construction");
                }
            })
        })
    });
    group.bench_function("submit_async_poll_once", |b| {
        let mut cx = Context::from_waker(Waker::noop());
        b.iter_custom(|iters| {
            timed(&pool, iters, || {
                let mut future = pool.submit_async(|| {});
                match Pin::new(&mut future).poll(&mut cx) {
                    Poll::Ready(Ok(())) => {}
                    _ => panic!("room by construction"),
                }
            })
        })
    });
    group.bench_function("submit_async_block_on", |b| {
        b.iter_custom(|iters| {
            timed(&pool, iters, || {
                if futures::executor::block_on(pool.submit_async(|| {})).is_err() {
                    panic!("room by construction");
                }
            })
        })
    });
    group.bench_function("try_reserve_then_submit", |b| {
        b.iter_custom(|iters| {
            timed(&pool, iters, || match pool.try_reserve() {
                Ok(permit) => permit.submit(|| {}),
                Err(_) => panic!("room by construction"),
            })
        })
    });
    // The same with a delay budget: what its check costs a producer. An
    // hour, so that no task is refused (nor judged) even if a preempted
    // worker makes the estimate jump: the check does the same work.
    let budgeted = corepool::Pool::builder()
        .queue_capacity(4 * BATCH as usize)
        .queue_delay_budget(Duration::from_secs(3600))
        .build()
        .expect("build the pool");
    group.bench_function("try_submit_with_budget", |b| {
        b.iter_custom(|iters| {
            timed(&budgeted, iters, || {
                if budgeted.try_submit(|| {}).is_err() {
                    panic!("room by construction, and within the budget");
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
