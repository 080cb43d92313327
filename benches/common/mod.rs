//! Shared by every bench binary: the runtimes under test (one trait, an
//! implementation per runtime), the Go-style pool, calibrated busy work, the
//! completion latch, quick mode, and where results are written.
//!
//! Each bench binary includes this module with `mod common;` and uses the
//! part it needs; the rest is dead code in that binary, hence the allow.
#![allow(dead_code)]

pub mod crit;
pub mod gopool;
pub mod output;
pub mod process;
pub mod runtimes;
pub mod sync;
pub mod work;

use std::sync::atomic::{AtomicBool, Ordering};

static QUICK: AtomicBool = AtomicBool::new(false);

/// Quick mode (a smoke test that finishes in seconds): set by the `--test`
/// argument (`cargo bench -- --test`) or by `COREPOOL_BENCH_QUICK=1`.
pub fn init_quick_mode() -> bool {
    let quick = std::env::args().any(|arg| arg == "--test")
        || std::env::var("COREPOOL_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    QUICK.store(quick, Ordering::Relaxed);
    quick
}

/// Whether this run is a smoke test.
pub fn quick() -> bool {
    QUICK.load(Ordering::Relaxed)
}

/// `full` in a measuring run, `quick` in a smoke test.
pub fn size(full: usize, quick: usize) -> usize {
    if self::quick() {
        quick
    } else {
        full
    }
}

/// The worker count every runtime gets: `COREPOOL_BENCH_WORKERS`, else the
/// number of cores this process may run on.
pub fn workers() -> usize {
    std::env::var("COREPOOL_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&w| w > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
