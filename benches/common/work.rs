//! Busy work of a calibrated length. Work is counted in loop iterations,
//! not in elapsed time, so a task that is preempted takes longer (a
//! time-based spin would hide the preemption).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// A dependent multiply-add chain: a few cycles per iteration, never
/// vectorized or folded away.
#[inline(never)]
pub fn spin(iters: u64) -> u64 {
    let mut x = black_box(iters);
    for _ in 0..iters {
        x = black_box(
            x.wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407),
        );
    }
    x
}

/// Iterations of [`spin`] per nanosecond on this machine, measured once
/// (best of several runs, so a preempted run does not count).
pub fn iters_per_ns() -> f64 {
    static RATE: OnceLock<f64> = OnceLock::new();
    *RATE.get_or_init(|| {
        const ITERS: u64 = 2_000_000;
        spin(ITERS / 10);
        let best = (0..7)
            .map(|_| {
                let start = Instant::now();
                black_box(spin(ITERS));
                start.elapsed().as_nanos() as f64
            })
            .fold(f64::INFINITY, f64::min);
        ITERS as f64 / best
    })
}

/// The iteration count that takes about `ns` nanoseconds.
pub fn iters_for_ns(ns: f64) -> u64 {
    ((ns * iters_per_ns()).round() as u64).max(1)
}

static TINY_ITERS: AtomicU64 = AtomicU64::new(0);

/// The "~20 ns of work" of a tiny task. [`calibrate`] must run first.
#[inline]
pub fn tiny() {
    black_box(spin(TINY_ITERS.load(Ordering::Relaxed)));
}

/// Calibrates; returns the iterations of a tiny task.
pub fn calibrate() -> u64 {
    let iters = iters_for_ns(20.0);
    TINY_ITERS.store(iters, Ordering::Relaxed);
    iters
}
