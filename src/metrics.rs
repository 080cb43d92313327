//! What the pool counts, and how it stays cheap.
//!
//! No shared counter is written per task. Each worker owns a cache-padded
//! block of counters that only it writes (a relaxed load and a relaxed
//! store, no read-modify-write, so no cache line bounces between cores);
//! a snapshot sums the blocks. Events that producers see (rejections,
//! timeouts) are rare by nature and go to a striped counter: eight
//! cache-padded cells, each thread adding to its own. The one shared word
//! touched per external task is the bound itself (`admission.rs`), which
//! the bound cannot do without.
//!
//! Queue-wait latency (submit to start) is opt-in
//! ([`Builder::track_latency`](crate::Builder::track_latency)) because it
//! costs a clock read at submit and one at start. Each worker keeps a
//! log-linear histogram (8 sub-buckets per power of two: at most 12.5%
//! relative error) of atomics that only it writes.

use std::cell::Cell;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::sync::stats::AtomicU64;
use crate::sync::Ordering;

/// Adds to a counter that only the calling worker writes.
pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// Per-worker counters, written only by their worker.
#[derive(Default)]
pub(crate) struct WorkerCounters {
    pub(crate) executed: AtomicU64,
    /// Admitted (externally submitted) tasks started: with the tasks still
    /// queued, this gives the number accepted without a shared counter.
    pub(crate) admitted_started: AtomicU64,
    pub(crate) stolen: AtomicU64,
    pub(crate) steal_attempts: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) panicked: AtomicU64,
    /// Nanoseconds spent out of `park`, summed at each park.
    pub(crate) busy_ns: AtomicU64,
    /// 1 while the worker runs a task.
    pub(crate) running: AtomicU64,
    /// Tasks this worker pushed onto its own deque (`WorkerContext::push`:
    /// spawned from inside, scope tasks), counted before the push. With
    /// `admitted_started` and the admission word, the tasks accepted, for
    /// `Pool::wait_idle`.
    pub(crate) pushed: AtomicU64,
    /// Tasks this worker finished that `pushed` or the bound counted (not
    /// the stolen second closures of `join`s): stored with `Release`
    /// after the task ran, for `Pool::wait_idle`.
    pub(crate) finished: AtomicU64,
    pub(crate) latency: LatencyHistogram,
}

/// A counter many threads add to rarely: eight padded cells, each thread
/// on its own.
#[derive(Default)]
pub(crate) struct StripedCounter {
    cells: [CachePadded<AtomicU64>; 8],
}

impl StripedCounter {
    pub(crate) fn add(&self, by: u64) {
        thread_local! {
            static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
        }
        // During the thread's exit (a submission refused from a
        // thread-local's destructor) any cell will do.
        let stripe = STRIPE
            .try_with(|stripe| {
                if stripe.get() == usize::MAX {
                    // Any spread will do: the address of a thread-local
                    // differs per thread.
                    stripe.set((stripe as *const Cell<usize> as usize >> 6) % 8);
                }
                stripe.get()
            })
            .unwrap_or(0);
        self.cells[stripe].fetch_add(by, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.cells
            .iter()
            .map(|cell| cell.load(Ordering::Relaxed))
            .sum()
    }
}

/// Values below this are their own bucket.
const LINEAR: u64 = 16;
/// Sub-buckets per power of two.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Powers of two covered above `LINEAR` (2^4 ns .. 2^44 ns, about 4.9 hours).
const OCTAVES: usize = 40;
const BUCKETS: usize = LINEAR as usize + OCTAVES * SUB;

fn bucket_of(nanos: u64) -> usize {
    if nanos < LINEAR {
        return nanos as usize;
    }
    let exponent = 63 - nanos.leading_zeros(); // >= 4
    let sub = ((nanos >> (exponent - SUB_BITS)) as usize) & (SUB - 1);
    let index = LINEAR as usize + (exponent as usize - 4) * SUB + sub;
    index.min(BUCKETS - 1)
}

/// The largest value that falls in `bucket`.
fn bucket_upper(bucket: usize) -> u64 {
    if bucket < LINEAR as usize {
        return bucket as u64;
    }
    let octave = (bucket - LINEAR as usize) / SUB;
    let sub = ((bucket - LINEAR as usize) % SUB) as u64;
    let exponent = octave as u32 + 4;
    let base = 1u64 << exponent;
    let width = base >> SUB_BITS;
    base + (sub + 1) * width - 1
}

/// A histogram of queue-wait times, written by one worker.
pub(crate) struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    pub(crate) fn record(&self, nanos: u64) {
        bump(&self.buckets[bucket_of(nanos)], 1);
        bump(&self.sum_ns, nanos);
    }

    fn add_into(&self, counts: &mut [u64], sum: &mut u64) {
        for (total, bucket) in counts.iter_mut().zip(self.buckets.iter()) {
            *total += bucket.load(Ordering::Relaxed);
        }
        *sum += self.sum_ns.load(Ordering::Relaxed);
    }
}

/// Queue-wait (submit-to-start) latency of externally submitted tasks,
/// summed over all workers. Values are upper bounds of log-linear buckets,
/// at most 12.5% above the true value.
///
/// ```
/// let pool = corepool::Pool::builder().workers(1).track_latency(true).build()?;
/// for _ in 0..100 {
///     pool.submit(|| {}).unwrap();
/// }
/// let handle = pool.handle();
/// drop(pool);
/// let latency = handle.metrics().queue_wait;
/// assert_eq!(latency.count, 100);
/// assert!(latency.p50 <= latency.p99);
/// # Ok::<(), corepool::BuildError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Tasks measured.
    pub count: u64,
    /// Sum of all waits.
    pub sum: Duration,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Cumulative counts at bucket bounds, for exporters: `(upper bound,
    /// tasks that waited at most that long)`, at each power of two from
    /// 1.024 µs to about 17 s.
    pub buckets: Vec<(Duration, u64)>,
}

impl LatencySummary {
    pub(crate) fn from_workers<'a>(workers: impl Iterator<Item = &'a WorkerCounters>) -> Self {
        let mut counts = vec![0u64; BUCKETS];
        let mut sum = 0u64;
        for worker in workers {
            worker.latency.add_into(&mut counts, &mut sum);
        }
        let count: u64 = counts.iter().sum();
        let quantile = |q: f64| -> Duration {
            if count == 0 {
                return Duration::ZERO;
            }
            let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (bucket, &n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return Duration::from_nanos(bucket_upper(bucket));
                }
            }
            Duration::from_nanos(bucket_upper(BUCKETS - 1))
        };
        let mut buckets = Vec::new();
        let mut cumulative = 0;
        let mut next_bucket = 0;
        for exponent in 10..=34u32 {
            // Everything strictly below 2^exponent ns.
            let bound = 1u64 << exponent;
            while next_bucket < BUCKETS && bucket_upper(next_bucket) < bound {
                cumulative += counts[next_bucket];
                next_bucket += 1;
            }
            buckets.push((Duration::from_nanos(bound), cumulative));
        }
        LatencySummary {
            count,
            sum: Duration::from_nanos(sum),
            p50: quantile(0.50),
            p90: quantile(0.90),
            p99: quantile(0.99),
            p999: quantile(0.999),
            buckets,
        }
    }
}

/// One worker's figures in a [`MetricsSnapshot`].
///
/// ```
/// let pool = corepool::Pool::builder().workers(2).build()?;
/// let metrics = pool.metrics();
/// assert_eq!(metrics.per_worker.len(), 2);
/// for (i, worker) in metrics.per_worker.iter().enumerate() {
///     assert_eq!(worker.index, i);
///     println!("worker {i}: {} tasks run, {} stolen", worker.executed, worker.stolen);
/// }
/// # Ok::<(), corepool::BuildError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// The worker's index.
    pub index: usize,
    /// The core it is pinned to, if pinned.
    pub core: Option<usize>,
    /// Whether it is one of the pool's active workers (see
    /// [`Pool::set_workers`](crate::Pool::set_workers)).
    pub active: bool,
    /// Tasks it ran.
    pub executed: u64,
    /// Tasks stolen from other workers (one per steal; a batch of outside
    /// tasks taken from another worker's inflow counts as one).
    pub stolen: u64,
    /// Steal attempts, successful or not: looks at another worker's
    /// deques.
    pub steal_attempts: u64,
    /// Times it went to sleep.
    pub parks: u64,
    /// Tasks that panicked on it.
    pub panicked: u64,
    /// Time spent awake (running or looking for work), up to its last park.
    pub busy: Duration,
    /// Tasks in its own two deques right now: those spawned on it, and the
    /// batch of outside tasks it took from the queue and has not started.
    pub local_queue_depth: usize,
    /// Whether it is running a task right now.
    pub running: bool,
}

/// A point-in-time view of a pool's counters, from
/// [`Pool::metrics`](crate::Pool::metrics) or
/// [`Handle::metrics`](crate::Handle::metrics).
///
/// Counters are read without stopping the pool, so a snapshot taken under
/// load is consistent per counter, not across counters.
///
/// ```
/// let pool = corepool::Pool::builder().workers(2).queue_capacity(100).build()?;
/// for _ in 0..10 {
///     pool.submit(|| {}).unwrap();
/// }
/// let handle = pool.handle();
/// drop(pool); // drains
/// let m = handle.metrics();
/// assert_eq!(m.accepted, 10);
/// assert_eq!(m.executed, 10);
/// assert_eq!(m.queue_depth, 0);
/// assert_eq!(m.capacity, 100);
/// # Ok::<(), corepool::BuildError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Active workers.
    pub workers: usize,
    /// The most workers the pool can run (`Builder::max_workers`).
    pub max_workers: usize,
    /// Externally submitted tasks accepted and not yet started.
    pub queue_depth: usize,
    /// The bound on `queue_depth`.
    pub capacity: usize,
    /// `queue_depth / capacity`, from 0.0 to 1.0.
    pub fill_ratio: f64,
    /// Externally submitted tasks accepted, ever: never decreases. Derived
    /// (tasks started + tasks handed back + tasks queued, so
    /// `accepted == started + handed_back + queue_depth` where "started"
    /// is the admitted tasks the workers started) rather than counted, so
    /// that no shared counter is written per task; tasks that start during
    /// the few nanoseconds the snapshot takes to read these may be counted
    /// twice. Exact once the pool is idle.
    pub accepted: u64,
    /// `try_submit`/`try_spawn` refusals because the pool was full.
    pub rejected_full: u64,
    /// `try_submit`/`try_spawn` refusals by the
    /// [queue-delay budget](crate::Builder::queue_delay_budget): the task
    /// was expected to wait longer than the budget. Not counted in
    /// `rejected_full`, though the error is the same `Full`. Zero without a
    /// budget.
    pub rejected_budget: u64,
    /// Submissions refused because the pool was shutting down.
    pub rejected_shutdown: u64,
    /// `submit_timeout` calls that timed out.
    pub timed_out: u64,
    /// Externally submitted tasks that
    /// [`Pool::shutdown_now`](crate::Pool::shutdown_now) took back before
    /// they started (they are in its report's `unstarted`, which also
    /// holds the tasks running tasks submitted from inside the pool; those
    /// are not counted here, as `accepted` does not count them either).
    /// Zero unless `shutdown_now` ran.
    pub handed_back: u64,
    /// Tasks run (external and internal), including those that panicked.
    pub executed: u64,
    /// Successful steals between workers.
    pub stolen: u64,
    /// Steal attempts between workers.
    pub steal_attempts: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Tasks running right now.
    pub in_flight: usize,
    /// Workers parked for lack of work.
    pub idle_workers: usize,
    /// Workers awake and looking for work to steal.
    pub searching_workers: usize,
    /// Queue-wait latency; all zero unless `track_latency(true)`.
    pub queue_wait: LatencySummary,
    /// The delay budget's estimate of how long a task submitted now would
    /// wait before it starts (tasks queued × recent worker time per task ÷
    /// active workers; see
    /// [`Builder::queue_delay_budget`](crate::Builder::queue_delay_budget)).
    /// `None` without a budget, or before any task was observed.
    pub expected_queue_delay: Option<Duration>,
    /// The delay budget in force (as built, or as last set by
    /// [`Handle::set_queue_delay_budget`](crate::Handle::set_queue_delay_budget));
    /// `None` without a budget.
    pub queue_delay_budget: Option<Duration>,
    /// The longest expected wait the budget admits now: its *limit*,
    /// between zero and the budget, steered so that about one admitted
    /// task in 100 waits longer than the budget (`docs/delay-budget.md`).
    /// Well below the budget means that actual waits scatter far above
    /// the estimate (preempted workers, task costs that vary). `None`
    /// without a budget.
    pub queue_delay_limit: Option<Duration>,
    /// Per-worker figures, one per worker slot.
    pub per_worker: Vec<WorkerMetrics>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_their_values() {
        for value in [
            0u64,
            1,
            15,
            16,
            17,
            100,
            1_000,
            65_535,
            1 << 30,
            123_456_789,
        ] {
            let bucket = bucket_of(value);
            assert!(bucket_upper(bucket) >= value, "{value}");
            if bucket > 0 {
                assert!(bucket_upper(bucket - 1) < value, "{value}");
            }
            // At most 12.5% above the value.
            assert!(
                bucket_upper(bucket) as f64 <= value as f64 * 1.125 + 1.0,
                "{value}"
            );
        }
    }

    #[test]
    fn quantiles_from_one_worker() {
        let worker = WorkerCounters::default();
        for nanos in 1..=1000u64 {
            worker.latency.record(nanos * 1000);
        }
        let summary = LatencySummary::from_workers(std::iter::once(&worker));
        assert_eq!(summary.count, 1000);
        let p50 = summary.p50.as_nanos() as f64;
        assert!((500_000.0..=500_000.0 * 1.125).contains(&p50), "{p50}");
        let p99 = summary.p99.as_nanos() as f64;
        assert!((990_000.0..=990_000.0 * 1.125).contains(&p99), "{p99}");
        assert!(summary.p999 >= summary.p99);
        let last = summary.buckets.last().map(|b| b.1);
        assert_eq!(last, Some(1000));
    }
}
