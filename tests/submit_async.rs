//! `submit_async`, `spawn_async`, `reserve_async`: waiting for a slot
//! without blocking the thread. Futures are polled by hand with a waker
//! that records its wake-ups, so that every step (queued, granted, woken)
//! is observed in order, without sleeps.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use support::{small_pool as pool, DropFlag, Watchdog, WATCHDOG};

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Flag(AtomicUsize);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Flag {
    fn woken(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn waker() -> (Arc<Flag>, Waker) {
    let flag = Arc::new(Flag::default());
    (flag.clone(), Waker::from(flag))
}

fn poll<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

#[test]
fn futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let pool = pool(1, 1);
    send(&pool.submit_async(|| {}));
    send(&pool.spawn_async(|| 1));
    send(&pool.reserve_async());
}

#[test]
fn with_room_they_are_ready_at_the_first_poll() {
    let _watchdog = Watchdog::new("with_room_they_are_ready_at_the_first_poll");
    let pool = pool(1, 4);
    let (flag, waker) = waker();
    let (tx, rx) = mpsc::channel();
    let mut submit = pool.submit_async(move || tx.send(1).expect("the test waits"));
    assert!(matches!(poll(&mut submit, &waker), Poll::Ready(Ok(()))));
    assert_eq!(rx.recv_timeout(WATCHDOG), Ok(1));
    let mut spawn = pool.spawn_async(|| 2);
    let Poll::Ready(Ok(join)) = poll(&mut spawn, &waker) else {
        panic!("room: ready at once");
    };
    assert_eq!(join.join().expect("ran"), 2);
    let mut reserve = pool.reserve_async();
    let Poll::Ready(Ok(permit)) = poll(&mut reserve, &waker) else {
        panic!("room: ready at once");
    };
    drop(permit);
    assert_eq!(flag.woken(), 0);
}

#[test]
fn a_full_pool_makes_them_wait_and_a_freed_slot_wakes_them() {
    let _watchdog = Watchdog::new("a_full_pool_makes_them_wait_and_a_freed_slot_wakes_them");
    let pool = pool(1, 1);
    let permit = pool.reserve().expect("room");
    let (flag, waker) = waker();
    let (tx, rx) = mpsc::channel();
    let mut submit = pool.submit_async(move || tx.send("ran").expect("the test waits"));
    assert!(poll(&mut submit, &waker).is_pending());
    assert!(
        poll(&mut submit, &waker).is_pending(),
        "polled again: still waiting"
    );
    assert_eq!(flag.woken(), 0);
    drop(permit);
    // The freed slot went straight to the waiting future, which was woken.
    assert_eq!(flag.woken(), 1);
    assert!(matches!(poll(&mut submit, &waker), Poll::Ready(Ok(()))));
    assert_eq!(rx.recv_timeout(WATCHDOG), Ok("ran"));
}

#[test]
fn waiters_are_served_first_come_first_served_across_kinds() {
    let _watchdog = Watchdog::new("waiters_are_served_first_come_first_served_across_kinds");
    let pool = pool(1, 1);
    let first_permit = pool.reserve().expect("room");
    let (flag_a, waker_a) = waker();
    let (flag_b, waker_b) = waker();
    let mut a = pool.reserve_async();
    let mut b = pool.reserve_async();
    assert!(poll(&mut a, &waker_a).is_pending());
    assert!(poll(&mut b, &waker_b).is_pending());
    // A blocking producer queues behind both futures.
    let handle = pool.handle();
    let (p_tx, p_rx) = mpsc::channel();
    let producer = thread::spawn(move || {
        let permit = handle.reserve().expect("the pool is running");
        p_tx.send(()).expect("the test waits");
        drop(permit);
    });
    drop(first_permit);
    assert_eq!(
        (flag_a.woken(), flag_b.woken()),
        (1, 0),
        "the first in line first"
    );
    let Poll::Ready(Ok(permit_a)) = poll(&mut a, &waker_a) else {
        panic!("a was granted the slot");
    };
    assert!(poll(&mut b, &waker_b).is_pending());
    assert!(p_rx.try_recv().is_err(), "the producer is behind a and b");
    drop(permit_a);
    assert_eq!(flag_b.woken(), 1, "then the second");
    let Poll::Ready(Ok(permit_b)) = poll(&mut b, &waker_b) else {
        panic!("b was granted the slot");
    };
    assert!(p_rx.try_recv().is_err(), "the producer is behind b");
    drop(permit_b);
    assert_eq!(
        p_rx.recv_timeout(WATCHDOG),
        Ok(()),
        "then the blocked producer"
    );
    producer.join().expect("the producer");
}

#[test]
fn a_dropped_waiting_future_drops_its_closure_and_keeps_no_place() {
    let _watchdog = Watchdog::new("a_dropped_waiting_future_drops_its_closure_and_keeps_no_place");
    let pool = pool(1, 1);
    let permit = pool.reserve().expect("room");
    let (_, waker_1) = waker();
    let (flag_2, waker_2) = waker();
    let ran = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = DropFlag(dropped.clone());
    let ran_in = ran.clone();
    let mut first = pool.submit_async(move || {
        let _guard = guard;
        ran_in.store(true, Ordering::SeqCst);
    });
    let (tx, rx) = mpsc::channel();
    let mut second = pool.submit_async(move || tx.send("second").expect("the test waits"));
    assert!(poll(&mut first, &waker_1).is_pending());
    assert!(poll(&mut second, &waker_2).is_pending());
    drop(first);
    assert!(
        dropped.load(Ordering::SeqCst),
        "its closure is dropped with it"
    );
    drop(permit);
    assert_eq!(flag_2.woken(), 1, "the slot goes to the next in line");
    assert!(matches!(poll(&mut second, &waker_2), Poll::Ready(Ok(()))));
    assert_eq!(rx.recv_timeout(WATCHDOG), Ok("second"));
    assert!(!ran.load(Ordering::SeqCst), "the dropped closure never ran");
    pool.wait_idle();
    // No slot leaked: the whole capacity is free again.
    drop(pool.try_reserve().expect("the slot is free"));
    assert_eq!(pool.queued(), 0);
}

#[test]
fn a_future_dropped_after_its_grant_hands_the_slot_on() {
    let _watchdog = Watchdog::new("a_future_dropped_after_its_grant_hands_the_slot_on");
    let pool = pool(1, 1);
    let permit = pool.reserve().expect("room");
    let (flag_1, waker_1) = waker();
    let (flag_2, waker_2) = waker();
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = DropFlag(dropped.clone());
    let mut first = pool.spawn_async(move || drop(guard));
    let mut second = pool.reserve_async();
    assert!(poll(&mut first, &waker_1).is_pending());
    assert!(poll(&mut second, &waker_2).is_pending());
    drop(permit);
    assert_eq!(flag_1.woken(), 1, "the slot was granted to the first");
    // Dropped before it used the slot: the wake-up and the slot go on.
    drop(first);
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(flag_2.woken(), 1, "the grant was handed on");
    let Poll::Ready(Ok(permit)) = poll(&mut second, &waker_2) else {
        panic!("the second got the slot");
    };
    assert!(pool.try_reserve().expect_err("its slot is held").is_full());
    drop(permit);
    drop(pool.try_reserve().expect("no slot leaked"));
}

#[test]
fn shutdown_wakes_a_waiting_future_with_its_closure_back() {
    let _watchdog = Watchdog::new("shutdown_wakes_a_waiting_future_with_its_closure_back");
    let pool = pool(1, 1);
    let handle = pool.handle();
    let permit = pool.reserve().expect("room");
    let (flag, waker) = waker();
    let mut submit = handle.spawn_async(|| 7);
    assert!(poll(&mut submit, &waker).is_pending());
    let closer = thread::spawn(move || pool.shutdown());
    while !handle.is_shutdown() {
        thread::yield_now();
    }
    // Woken by the close (the pool's close runs before its wait).
    while flag.woken() == 0 {
        thread::yield_now();
    }
    let Poll::Ready(Err(err)) = poll(&mut submit, &waker) else {
        panic!("closed: refused");
    };
    assert_eq!(err.into_inner()(), 7);
    assert!(futures::executor::block_on(handle.reserve_async()).is_err());
    // The permit is honoured: shutdown waits for it.
    permit.submit(|| {});
    let report = closer.join().expect("the closer");
    assert_eq!(report.executed, 1);
}

#[test]
fn from_inside_the_pool_they_never_wait() {
    let _watchdog = Watchdog::new("from_inside_the_pool_they_never_wait");
    let pool = pool(1, 1);
    let handle = pool.handle();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (out_tx, out_rx) = mpsc::channel();
    pool.submit(move || {
        go_rx.recv().expect("the test says go");
        let (_, waker) = waker();
        let (tx, rx) = mpsc::channel();
        let mut submit = handle.submit_async(move || tx.send(()).expect("the task waits"));
        let submitted = matches!(poll(&mut submit, &waker), Poll::Ready(Ok(())));
        let mut spawn = handle.spawn_async(|| 3);
        let spawned = match poll(&mut spawn, &waker) {
            Poll::Ready(Ok(join)) => Some(join),
            _ => None,
        };
        out_tx
            .send((submitted, spawned, rx))
            .expect("the test waits");
    })
    .expect("room");
    // The task has started (it waits for go); a permit now fills the pool.
    let outside = pool.reserve().expect("room once the task started");
    go_tx.send(()).expect("the task waits");
    let (submitted, spawned, rx) = out_rx.recv_timeout(WATCHDOG).expect("the task finished");
    assert!(submitted, "submit_async inside is ready at the first poll");
    let join = spawned.expect("spawn_async inside is ready at the first poll");
    assert_eq!(join.join().expect("ran"), 3);
    assert_eq!(rx.recv_timeout(WATCHDOG), Ok(()));
    drop(outside);
}

#[test]
fn a_tokio_runtime_thread_is_never_blocked_by_a_full_pool() {
    let _watchdog = Watchdog::new("a_tokio_runtime_thread_is_never_blocked_by_a_full_pool");
    let pool = Arc::new(pool(2, 2));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let done = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..64u64 {
            let pool = pool.clone();
            let done = done.clone();
            // One runtime thread drives 64 submitters on a pool of 2 slots:
            // blocking it in any of them would stall the rest.
            tasks.push(tokio::spawn(async move {
                let join = pool.spawn_async(move || i * 2).await.expect("running");
                let value = join.await.expect("ran");
                done.fetch_add(1, Ordering::SeqCst);
                value
            }));
        }
        let mut sum = 0;
        for task in tasks {
            sum += task.await.expect("the task");
        }
        assert_eq!(sum, (0..64u64).map(|i| i * 2).sum::<u64>());
    });
    assert_eq!(done.load(Ordering::SeqCst), 64);
}

#[test]
fn many_async_and_blocking_producers_lose_nothing() {
    let _watchdog = Watchdog::new("many_async_and_blocking_producers_lose_nothing");
    let pool = Arc::new(pool(2, 4));
    let ran = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let pool = pool.clone();
            let ran = ran.clone();
            thread::spawn(move || {
                for _ in 0..500 {
                    let ran = ran.clone();
                    let task = move || {
                        ran.fetch_add(1, Ordering::Relaxed);
                    };
                    if p % 2 == 0 {
                        futures::executor::block_on(pool.submit_async(task)).expect("running");
                    } else {
                        pool.submit(task).expect("running");
                    }
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().expect("a producer");
    }
    let pool = Arc::into_inner(pool).expect("the only owner");
    let report = pool.shutdown();
    assert_eq!(report.executed, 2000);
    assert_eq!(ran.load(Ordering::SeqCst), 2000);
}

/// Counts its drops: every closure is dropped exactly once, run or not.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn futures_cancelled_by_timeouts_leak_no_slot_and_lose_nothing() {
    let _watchdog = Watchdog::new("futures_cancelled_by_timeouts_leak_no_slot_and_lose_nothing");
    let pool = Arc::new(pool(2, 2));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a runtime");
    let ran = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    const TASKS: usize = 400;
    let accepted = runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let pool = pool.clone();
                let ran = ran.clone();
                let guard = Counted(dropped.clone());
                tokio::spawn(async move {
                    let job = move || {
                        let _guard = guard;
                        // Some work, so that the pool stays full for a while.
                        std::hint::black_box((0..2_000u64).sum::<u64>());
                        ran.fetch_add(1, Ordering::SeqCst);
                    };
                    // Timeouts from 0 to 2 ms cancel futures at every stage:
                    // before a slot, queued, and queued with a grant.
                    let limit = std::time::Duration::from_micros((i % 50) as u64 * 40);
                    match tokio::time::timeout(limit, pool.submit_async(job)).await {
                        Ok(result) => {
                            result.expect("the pool is running");
                            1
                        }
                        Err(_elapsed) => 0,
                    }
                })
            })
            .collect();
        let mut accepted = 0;
        for task in tasks {
            accepted += task.await.expect("the task");
        }
        accepted
    });
    pool.wait_idle();
    // No slot leaked: the whole capacity can be reserved again.
    let permits: Vec<_> = (0..pool.capacity())
        .map(|_| pool.try_reserve().expect("every slot is free again"))
        .collect();
    drop(permits);
    assert_eq!(pool.queued(), 0);
    let pool = Arc::into_inner(pool).expect("the only owner");
    let report = pool.shutdown();
    assert_eq!(
        report.executed as usize, accepted,
        "every accepted task ran"
    );
    assert_eq!(ran.load(Ordering::SeqCst), accepted);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        TASKS,
        "every closure dropped once"
    );
}
