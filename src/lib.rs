//! # corepool
//!
//! A thread pool for services that take a flood of small jobs and must
//! neither drown in threads nor let memory run away.
//!
//! * **Pinned workers**: a fixed set of long-lived threads, by default one
//!   per core the process may use, each pinned to its core.
//! * **Local deques, stealing neighbours**: each worker owns a deque; a task
//!   submitted from inside a worker goes onto it and never blocks. An idle
//!   worker takes the oldest task submitted from outside (a batch of them
//!   at a time, from the injector or from another worker's batch), or
//!   steals one task at a time (the oldest) from another worker's deque,
//!   nearest cores first.
//! * **First in, first out from outside**: tasks submitted from outside
//!   start in the order they were submitted, up to a bounded window of
//!   reordering between workers (`docs/design.md`, "Finding work"); tasks
//!   spawned inside keep their LIFO locality.
//! * **A bounded injector**: at most `queue_capacity` tasks submitted from
//!   outside are accepted and not yet started. When the pool is full,
//!   [`Pool::submit`] blocks, [`Pool::try_submit`] hands the closure back at
//!   once, [`Pool::submit_timeout`] waits at most a given time. Memory stays
//!   bounded however hard producers push.
//! * **Nothing lost**: every accepted task runs exactly once, except a
//!   task cancelled before it started ([`JoinHandle::cancel`]) and the
//!   tasks [`Pool::shutdown_now`] hands back unstarted (you run or drop
//!   each [`Task`]); a closure given to a [`Permit`] after `shutdown_now`
//!   began is dropped unrun and counted as handed back. A panicking task
//!   never kills a worker; dropping the pool drains it.
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
//! ## When to choose corepool
//!
//! * **corepool**: CPU work inside a service, under load you do not
//!   control. What waits for the workers is bounded (by count, and with
//!   [`Builder::queue_delay_budget`] by expected wait), so overload becomes
//!   a fast refusal you can answer, not a queue that grows memory and
//!   latency.
//! * **rayon**: data parallelism over data you already hold (`par_iter`,
//!   which corepool does not have), with nobody outside pushing work. Its
//!   `spawn` queues without bound. corepool has rayon's `join`, `scope` and
//!   `spawn` for fork-join inside tasks.
//! * **tokio's `spawn_blocking`**: blocking calls made from async code. Up
//!   to 512 threads and an unbounded queue; for CPU work on a few cores
//!   those threads only time-slice. From async code, use corepool's
//!   [`Handle::try_spawn`] and `.await` the [`JoinHandle`].
//! * **threadpool**: a few coarse jobs on a fixed set of threads around one
//!   channel; no results, no bound, no stealing, no metrics.
//! * **Not corepool**: async I/O (tokio), or work that mostly blocks
//!   ([`block_in_place`] covers the occasional blocking call in a task).
//!
//! ## Where the code is
//!
//! From `submit` to the closure running, a task crosses six modules:
//! `pool` and `handle` (the public calls), `entry` (routing: the worker's own deque, or
//! a slot of the bound and the injector), `admission` (the bound), `task`
//! (the two-word task; a closure that fits in a word is stored inline, a
//! larger one boxed), `registry` (the pool's shared state: queues,
//! counters, resizing, the shutdown drain) and `worker` (the thread-local,
//! the main loop, finding and running tasks). The sleep protocol is in
//! `sleep`, waiting inside a task in `wait`, joins in `join` and `job`.
//! The module map at the top of the repository's `docs/design.md` lists
//! every module by layer, and `docs/lifecycle.md` says what happens to a
//! task in every case.

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
mod handoff;
mod job;
mod join;
mod join_context;
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

/// The README's code blocks, compiled and run as doctests so they cannot
/// drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use autoscale::{AutoscalePolicy, Autoscaler, LoadSample};
pub use broadcast::BroadcastContext;
pub use builder::{Builder, DEFAULT_CAPACITY_PER_WORKER, MIN_STACK_SIZE};
pub use current::{
    block_in_place, current_num_threads, current_thread_index, join, scope, spawn, spawn_fifo,
    submit, yield_now, Yield,
};
pub use error::{
    BudgetError, BuildError, ResizeError, SubmitError, SubmitTimeoutError, TrySubmitError,
};
pub use handle::Handle;
pub use join_context::{join_context, JoinContext};
pub use metrics::{LatencySummary, MetricsSnapshot, WorkerMetrics};
pub use monitor::{FillEvent, FILL_HYSTERESIS, FILL_SAMPLE_INTERVAL};
pub use permit::Permit;
pub use pool::{Pool, ShutdownReport, ShutdownTimedOut};
pub use scope::{Scope, ScopeFifo};
pub use spawn::{JoinError, JoinHandle};
pub use submit_async::{ReserveAsync, SpawnAsync, SubmitAsync};
pub use task::Task;
