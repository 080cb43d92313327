//! Model 14: the waiter queue with a pending future, a cancelled one, and
//! the grant of a freed slot.
//!
//! One worker, capacity 1, the slot held by a permit (no task runs, so the
//! model stays small). Thread W awaits `reserve_async` (driven by loom's
//! `block_on`, whose waker parks the thread: a lost wake-up is a loom
//! deadlock). Thread C polls `reserve_async` once and drops the future:
//! it may be queued, queued and already granted the slot, or served at
//! once. The main thread drops the permit at any point. Whatever the
//! interleaving, W must get the slot (a cancelled waiter that was granted
//! it hands it on), and once every permit is gone the slot is free again
//! (nothing leaked).
#![cfg(corepool_loom)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use loom_tests::{model, pool};

#[test]
fn a_cancelled_waiter_hands_its_grant_on() {
    model("async_waiters", || {
        let pool = pool(1, 1);
        let first = pool.try_reserve().expect("the slot is free");

        let waiting = pool.handle();
        let waiter = loom::thread::spawn(move || {
            let permit =
                loom::future::block_on(waiting.reserve_async()).expect("the pool is running");
            drop(permit);
        });
        let cancelling = pool.handle();
        let canceller = loom::thread::spawn(move || {
            let mut future = pin!(cancelling.reserve_async());
            let mut cx = Context::from_waker(Waker::noop());
            if let Poll::Ready(permit) = future.as_mut().poll(&mut cx) {
                drop(permit.expect("the pool is running"));
            }
            // Dropped here, pending or not.
        });
        drop(first);
        waiter.join().expect("the waiter got a permit");
        canceller.join().expect("the canceller");
        // No slot leaked: the only one is free again.
        let last = pool.try_reserve().expect("the slot is free again");
        drop(last);
        drop(pool);
    });
}
