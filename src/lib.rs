//! # corepool
//!
//! A thread pool for services that take a flood of small jobs and must
//! neither drown in threads nor let memory run away.
//!
//! * **Pinned workers**: a fixed set of long-lived threads, by default one
//!   per core the process may use, each pinned to its core.
//! * **Local deques, stealing neighbours**: each worker owns a deque; a task
//!   submitted from inside a worker goes onto it and never blocks; idle
//!   workers steal in batches, nearest cores first.
//! * **A bounded injector**: at most `queue_capacity` tasks submitted from
//!   outside are accepted and not yet started. When the pool is full,
//!   [`Pool::submit`] blocks, [`Pool::try_submit`] hands the closure back at
//!   once, [`Pool::submit_timeout`] waits at most a given time. Memory stays
//!   bounded however hard producers push.
//! * **Nothing lost**: every accepted task runs exactly once; a panicking
//!   task never kills a worker; dropping the pool drains it.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//!
//! let pool = corepool::Pool::builder().queue_capacity(1024).build()?;
//! let total = Arc::new(AtomicU64::new(0));
//! for i in 0..10_000u64 {
//!     let total = total.clone();
//!     // Blocks while 1024 tasks are waiting: the producer slows to the
//!     // workers' pace instead of queueing without limit.
//!     pool.submit(move || {
//!         total.fetch_add(i, Ordering::Relaxed);
//!     })
//!     .expect("pool is running");
//! }
//! drop(pool); // runs everything accepted, then joins the workers
//! assert_eq!(total.load(Ordering::Relaxed), (0..10_000).sum::<u64>());
//! # Ok::<(), corepool::BuildError>(())
//! ```
//!
//! How a task travels, from `submit` to the closure running: `handle.rs`
//! (entry), `admission.rs` (the bound), `worker/` (finding and running),
//! with the pool's shared state in `registry/`; the sleep protocol is in
//! `sleep.rs`, the wait protocol in `wait.rs`. `docs/design.md` tells the
//! story on one page.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod admission;
mod autoscale;
mod broadcast;
mod budget;
mod builder;
mod current;
mod entry;
mod error;
mod fifo;
mod global;
mod handle;
mod job;
mod join;
mod metrics;
mod monitor;
mod permit;
mod pool;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod registry;
mod scope;
mod sleep;
mod spawn;
mod submit_async;
mod sync;
mod sync_wrapper;
mod task;
mod topology;
mod wait;
mod waiters;
mod worker;

pub use autoscale::{AutoscalePolicy, Autoscaler, LoadSample};
pub use broadcast::BroadcastContext;
pub use builder::{Builder, DEFAULT_CAPACITY_PER_WORKER, MIN_STACK_SIZE};
pub use current::{
    block_in_place, current_num_threads, current_thread_index, join, scope, spawn, spawn_fifo,
    submit, yield_now, Yield,
};
pub use error::{BuildError, ResizeError, SubmitError, SubmitTimeoutError, TrySubmitError};
pub use handle::Handle;
pub use metrics::{LatencySummary, MetricsSnapshot, WorkerMetrics};
pub use monitor::{FillEvent, FILL_HYSTERESIS, FILL_SAMPLE_INTERVAL};
pub use permit::Permit;
pub use pool::{Pool, ShutdownReport, ShutdownTimedOut};
pub use scope::{Scope, ScopeFifo};
pub use spawn::{JoinError, JoinHandle};
pub use submit_async::{ReserveAsync, SpawnAsync, SubmitAsync};
pub use task::Task;
