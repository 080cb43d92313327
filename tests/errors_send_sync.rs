//! The error types are `Send + Sync` for any closure that is `Send`, even
//! one that is not `Sync`, so that `?` converts them into
//! `Box<dyn Error + Send + Sync>` (and `anyhow::Error`).
//!
//! Most of this file is compile-time: if a type loses `Send` or `Sync`, the
//! file stops compiling.

use std::cell::Cell;
use std::error::Error;
use std::time::Duration;

use corepool::{JoinError, Pool, SubmitError, SubmitTimeoutError, TrySubmitError};

type BoxError = Box<dyn Error + Send + Sync + 'static>;

fn assert_send_sync<T: Send + Sync>() {}

/// The type of a closure that is `Send` but not `Sync`: it owns a `Cell`.
fn not_sync_closure() -> impl FnOnce() -> u32 + Send + 'static {
    let cell = Cell::new(1u32);
    move || {
        cell.set(cell.get() + 1);
        cell.get()
    }
}

/// Names the type of `f` for the assertions below.
fn assert_send_sync_for<F: Send>(_: &F)
where
    SubmitError<F>: Send + Sync,
    TrySubmitError<F>: Send + Sync,
    SubmitTimeoutError<F>: Send + Sync,
{
}

#[test]
fn error_types_are_send_and_sync_for_a_send_but_not_sync_closure() {
    let f = not_sync_closure();
    assert_send(&f);
    assert_send_sync_for(&f);

    // The same with named types: `Cell<u32>` is `Send` and not `Sync`.
    assert_send_sync::<JoinError>();
    assert_send_sync::<SubmitError<Cell<u32>>>();
    assert_send_sync::<TrySubmitError<Cell<u32>>>();
    assert_send_sync::<SubmitTimeoutError<Cell<u32>>>();
    assert_send_sync::<SubmitError<Box<dyn FnOnce() + Send>>>();
    assert_send_sync::<TrySubmitError<Box<dyn FnOnce() + Send>>>();

    // And each converts into the boxed error of `?`.
    let _: BoxError = SubmitError::new(Cell::new(0u32)).into();
    let _: BoxError = TrySubmitError::full(Cell::new(0u32)).into();
    let _: BoxError = SubmitTimeoutError::timeout(Cell::new(0u32)).into();
}

fn assert_send<T: Send>(_: &T) {}

/// `pool.spawn(..)?.join()?` with a closure that is not `Sync`.
fn spawn_and_join(pool: &Pool) -> Result<u32, BoxError> {
    let value = pool.spawn(not_sync_closure())?.join()?;
    Ok(value)
}

/// `try_submit(..)?`, `submit(..)?` and `submit_timeout(..)?` with closures
/// that are not `Sync`.
fn submit_all(pool: &Pool) -> Result<(), BoxError> {
    let cell = Cell::new(0u8);
    pool.try_submit(move || cell.set(1))?;
    let cell = Cell::new(0u8);
    pool.submit(move || cell.set(2))?;
    let cell = Cell::new(0u8);
    pool.submit_timeout(move || cell.set(3), Duration::from_secs(10))?;
    Ok(())
}

fn join_panicked(pool: &Pool) -> Result<u32, BoxError> {
    let value = pool.spawn(|| -> u32 { panic!("boom") })?.join()?;
    Ok(value)
}

#[test]
fn question_mark_converts_into_a_boxed_send_sync_error() -> Result<(), BoxError> {
    let pool = Pool::builder().workers(1).queue_capacity(4).build()?;
    assert_eq!(spawn_and_join(&pool)?, 2);
    submit_all(&pool)?;

    // A panic travels through `?` with its message.
    let err = join_panicked(&pool).expect_err("the task panicked");
    assert_eq!(err.to_string(), "task panicked: boom");
    let join_err = err.downcast::<JoinError>().expect("a JoinError");
    assert!(join_err.is_panic());
    assert_eq!(join_err.panic_message(), Some("boom"));
    let payload = join_err.into_panic().expect("a payload");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));

    // After shutdown the refusals go through `?` too, and the closure can
    // still be recovered from the concrete error before boxing.
    let handle = pool.handle();
    drop(pool);
    let cell = Cell::new(5u32);
    let err = handle
        .try_submit(move || cell.set(6))
        .expect_err("shut down");
    assert!(err.is_shutdown());
    let _closure = err.into_inner();
    let boxed: BoxError = handle
        .spawn(not_sync_closure())
        .map(|_| ())
        .unwrap_err()
        .into();
    assert_eq!(
        boxed.to_string(),
        "submitting to a pool that is shutting down"
    );
    Ok(())
}

#[test]
fn a_join_error_can_be_shared_between_threads() {
    let pool = Pool::builder().workers(1).build().expect("pool");
    let err = pool
        .spawn(|| -> u32 { panic!("shared {}", 1) })
        .expect("pool is running")
        .join()
        .expect_err("it panicked");
    let err = &err;
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(move || {
                assert!(err.is_panic());
                assert_eq!(err.to_string(), "task panicked: shared 1");
                assert_eq!(format!("{err:?}"), "Panicked(\"shared 1\")");
            });
        }
    });
}
