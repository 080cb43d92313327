//! Every bad configuration is refused with the right `BuildError`, a
//! message that names what was wrong, and no worker thread left behind.

mod support;

use std::error::Error;

use corepool::{BuildError, Pool};

#[test]
fn zero_workers() {
    let err = Pool::builder().workers(0).build().unwrap_err();
    assert!(matches!(err, BuildError::ZeroWorkers), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("at least one worker") && msg.contains("workers(0)"),
        "{msg}"
    );
    assert!(err.source().is_none());
}

#[test]
fn too_many_workers() {
    let err = Pool::builder().workers(usize::MAX).build().unwrap_err();
    let BuildError::TooManyWorkers { requested, max } = err else {
        panic!("expected TooManyWorkers, got {err:?}");
    };
    assert_eq!(requested, usize::MAX);
    assert!((1..usize::MAX).contains(&max));
    let msg = err.to_string();
    assert!(
        msg.contains(&requested.to_string()) && msg.contains(&max.to_string()),
        "{msg}"
    );
    assert!(msg.contains("workers"), "{msg}");

    // The limit is exact: one more than the maximum is refused too (checked
    // before any thread is started, so this spawns nothing).
    let err = Pool::builder().workers(max + 1).build().unwrap_err();
    assert!(matches!(err, BuildError::TooManyWorkers { requested, .. } if requested == max + 1));
}

#[test]
fn zero_capacity() {
    let err = Pool::builder().queue_capacity(0).build().unwrap_err();
    assert!(matches!(err, BuildError::ZeroCapacity), "{err:?}");
    assert!(err.to_string().contains("queue_capacity(0)"), "{err}");
}

#[test]
fn capacity_too_large() {
    let err = Pool::builder()
        .queue_capacity(usize::MAX)
        .build()
        .unwrap_err();
    let BuildError::CapacityTooLarge { requested, max } = err else {
        panic!("expected CapacityTooLarge, got {err:?}");
    };
    assert_eq!(requested, usize::MAX);
    let msg = err.to_string();
    assert!(msg.contains("too large"), "{msg}");
    assert!(
        msg.contains(&requested.to_string()) && msg.contains(&max.to_string()),
        "{msg}"
    );

    // The boundary: `max` is accepted, `max + 1` is not.
    let err = Pool::builder().queue_capacity(max + 1).build().unwrap_err();
    assert!(matches!(err, BuildError::CapacityTooLarge { requested, .. } if requested == max + 1));
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(max)
        .build()
        .unwrap();
    assert_eq!(pool.capacity(), max);
    pool.submit(|| {}).unwrap();
}

#[test]
fn thread_name_with_a_nul_byte() {
    let err = Pool::builder()
        .workers(1)
        .thread_name("bad\0name")
        .build()
        .unwrap_err();
    let BuildError::InvalidThreadName(name) = &err else {
        panic!("expected InvalidThreadName, got {err:?}");
    };
    assert_eq!(name, "bad\0name");
    let msg = err.to_string();
    assert!(msg.contains("NUL") && msg.contains("thread name"), "{msg}");
}

/// A stack no machine can map: std's spawn returns an error for it (it does
/// not panic), so the very first worker cannot start.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
#[test]
fn stack_size_the_os_refuses() {
    const PREFIX: &str = "hugestack";
    const STACK: usize = usize::MAX / 2;
    let err = Pool::builder()
        .workers(2)
        .thread_name(PREFIX)
        .stack_size(STACK)
        .build()
        .unwrap_err();
    let BuildError::Spawn {
        worker, stack_size, ..
    } = &err
    else {
        panic!("expected Spawn, got {err:?}");
    };
    assert_eq!(*worker, 0);
    assert_eq!(*stack_size, Some(STACK));
    let msg = err.to_string();
    assert!(msg.contains("could not start worker thread 0"), "{msg}");
    assert!(
        msg.contains(&format!("with a stack of {STACK} bytes")),
        "{msg}"
    );
    assert!(err.source().is_some(), "the OS error is the source");
    support::assert_no_threads_named(PREFIX);
}

#[test]
fn a_good_configuration_still_builds() {
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity(3)
        .thread_name("good")
        .stack_size(256 * 1024)
        .build()
        .unwrap();
    assert_eq!((pool.workers(), pool.capacity()), (2, 3));
}
