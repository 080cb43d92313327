//! Prometheus / OpenMetrics exposition of a pool's metrics (feature
//! `prometheus`).
//!
//! [`register`] adds a [`PoolCollector`] to a
//! [`prometheus_client`] [`Registry`]. The collector holds a [`Handle`] and
//! nothing else: every scrape reads a fresh [`Handle::metrics`] snapshot, so
//! there is no background thread and nothing to keep in sync. A handle does
//! not keep the pool alive; once the pool is gone the collector keeps
//! exporting its final counters.
//!
//! ```
//! use corepool::prometheus::prometheus_client::encoding::text::encode;
//! use corepool::prometheus::prometheus_client::registry::Registry;
//!
//! let pool = corepool::Pool::builder().workers(2).track_latency(true).build()?;
//! let mut registry = Registry::default();
//! corepool::prometheus::register(&mut registry, pool.handle());
//!
//! pool.submit(|| {}).expect("pool is running");
//! let handle = pool.handle();
//! drop(pool); // drains: the task has run
//!
//! let mut text = String::new();
//! encode(&mut text, &registry)?; // what an HTTP `/metrics` handler serves
//! assert!(text.contains("corepool_executed_total 1\n"));
//! assert!(text.contains("corepool_queue_wait_seconds_count 1\n"));
//! assert!(text.contains("corepool_worker_executed_total{worker=\"0\"}"));
//! # let _ = handle;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Serve the output of [`prometheus_client::encoding::text::encode`] (the
//! OpenMetrics text format) with the content type
//! `application/openmetrics-text; version=1.0.0; charset=utf-8`, or the
//! output of [`prometheus_client::encoding::prometheus_text::encode`] (the
//! classic text format 0.0.4) with `text/plain; version=0.0.4;
//! charset=utf-8`. `examples/metrics_server.rs` negotiates between the two
//! from the scraper's `Accept` header.
//!
//! # Metrics
//!
//! Names below use the default prefix `corepool`; [`register_with`] takes
//! another prefix and constant labels (say `pool="io"` to tell two pools
//! apart). Counters carry the `_total` suffix in the exposition.
//!
//! | Metric | Type | Labels | Meaning |
//! |---|---|---|---|
//! | `corepool_accepted_total` | counter | | externally submitted tasks accepted |
//! | `corepool_rejected_full_total` | counter | | `try_submit`/`try_spawn` refused: queue full |
//! | `corepool_rejected_budget_total` | counter | | `try_submit`/`try_spawn` refused: expected wait over the queue-delay budget |
//! | `corepool_rejected_shutdown_total` | counter | | submissions refused: pool shutting down |
//! | `corepool_timed_out_total` | counter | | `submit_timeout` calls that timed out |
//! | `corepool_handed_back_total` | counter | | accepted external tasks `shutdown_now` handed back unstarted |
//! | `corepool_executed_total` | counter | | tasks run (external and internal, panicked included) |
//! | `corepool_stolen_total` | counter | | successful steals between workers |
//! | `corepool_steal_attempts_total` | counter | | steal attempts between workers |
//! | `corepool_panicked_total` | counter | | tasks that panicked |
//! | `corepool_workers` | gauge | | active workers |
//! | `corepool_max_workers` | gauge | | the most workers the pool can run |
//! | `corepool_queue_depth` | gauge | | accepted external tasks not yet started |
//! | `corepool_queue_capacity` | gauge | | the bound on `queue_depth` |
//! | `corepool_queue_fill_ratio` | gauge | | `queue_depth / queue_capacity`, 0 to 1 |
//! | `corepool_in_flight` | gauge | | tasks running right now |
//! | `corepool_expected_queue_delay_seconds` | gauge | | the delay budget's estimated wait for a task submitted now; only with a budget, once a task was observed |
//! | `corepool_queue_delay_budget_seconds` | gauge | | the delay budget in force; only with a budget |
//! | `corepool_queue_delay_limit_seconds` | gauge | | the longest expected wait the budget admits now (its steered limit); only with a budget |
//! | `corepool_queue_wait_seconds` | histogram | `le` | submit-to-start wait of external tasks |
//! | `corepool_worker_executed_total` | counter | `worker` | tasks run by that worker |
//! | `corepool_worker_stolen_total` | counter | `worker` | successful steals by that worker |
//! | `corepool_worker_parks_total` | counter | `worker` | times that worker went to sleep |
//! | `corepool_worker_busy_seconds_total` | counter | `worker` | time awake, up to its last park |
//! | `corepool_worker_active` | gauge | `worker` | 1 if the slot is an active worker |
//! | `corepool_worker_local_queue_depth` | gauge | `worker` | tasks in that worker's own deques (spawned on it, and outside tasks it took and has not started) |
//!
//! Per-worker series exist for every worker slot up to `max_workers`, so a
//! [`Pool::set_workers`](crate::Pool::set_workers) or autoscaling never
//! resets a counter; parked slots show `corepool_worker_active 0`.
//!
//! Two caveats. `corepool_queue_wait_seconds` is filled only when the pool
//! was built with [`Builder::track_latency(true)`](crate::Builder::track_latency);
//! without it the histogram is still exported, with every count at zero. Its
//! buckets are the powers of two of
//! [`LatencySummary::buckets`](crate::LatencySummary::buckets), from
//! 1.024 µs to about 17.2 s, plus `+Inf`. And a worker's busy time is added
//! when it parks, so a worker that never parks (under sustained load)
//! shows its busy counter standing still until it next goes idle: use
//! `rate()` over windows longer than the bursts.
//!
//! # Suggested PromQL
//!
//! ```text
//! # Alerting rule: the queue has stayed at least 70% full for 5 minutes.
//! - alert: CorepoolQueueFilling
//!   expr: corepool_queue_fill_ratio >= 0.7
//!   for: 5m
//!
//! # p99 queue wait over the last 5 minutes (needs track_latency(true));
//! # add labels to `by (le)` to keep pools apart.
//! histogram_quantile(0.99, sum by (le) (rate(corepool_queue_wait_seconds_bucket[5m])))
//!
//! # Refusals per second (queue full), and the share of submissions refused
//! # (add corepool_rejected_budget_total where a delay budget is set).
//! rate(corepool_rejected_full_total[5m])
//! rate(corepool_rejected_full_total[5m])
//!   / (rate(corepool_accepted_total[5m]) + rate(corepool_rejected_full_total[5m]))
//!
//! # Worker utilisation, 0 to 1 per worker.
//! rate(corepool_worker_busy_seconds_total[5m])
//! ```
//!
//! `corepool_accepted_total` is derived from three counters read one after
//! the other (started + handed back + queued), so it can run a few tasks ahead of the truth; the collector
//! never lets it go down (which Prometheus would read as a reset).

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeMetric, NoLabelSet,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::{Handle, MetricsSnapshot, WorkerMetrics};

/// The `prometheus-client` crate this module is built on, re-exported so
/// that callers use the same version (a [`Registry`] from another version
/// is a different type).
///
/// ```
/// let registry = corepool::prometheus::prometheus_client::registry::Registry::default();
/// # let _ = registry;
/// ```
pub use prometheus_client;

/// The prefix [`register`] puts before every metric name.
///
/// ```
/// assert_eq!(corepool::prometheus::DEFAULT_PREFIX, "corepool");
/// ```
pub const DEFAULT_PREFIX: &str = "corepool";

/// Registers a [`PoolCollector`] for the pool behind `handle` in
/// `registry`, with metric names prefixed by [`DEFAULT_PREFIX`]
/// (`corepool_executed_total`, ...) on top of any prefix the registry
/// already has. Every scrape of the registry reads a fresh snapshot.
///
/// Register each pool once per registry; for several pools in one registry
/// use [`register_with`] and a label to tell them apart.
///
/// ```
/// use corepool::prometheus::prometheus_client::{encoding::text::encode, registry::Registry};
///
/// let pool = corepool::Pool::builder().workers(1).queue_capacity(8).build()?;
/// let mut registry = Registry::default();
/// corepool::prometheus::register(&mut registry, pool.handle());
///
/// let mut text = String::new();
/// encode(&mut text, &registry)?;
/// assert!(text.contains("corepool_queue_capacity 8\n"));
/// assert!(text.ends_with("# EOF\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn register(registry: &mut Registry, handle: Handle) {
    registry
        .sub_registry_with_prefix(DEFAULT_PREFIX)
        .register_collector(Box::new(PoolCollector::new(handle)));
}

/// Like [`register`], with a chosen metric-name prefix (empty for none)
/// and constant labels added to every series.
///
/// The prefix must match `[a-zA-Z_:][a-zA-Z0-9_:]*` (or be empty); label
/// names must match `[a-zA-Z_][a-zA-Z0-9_]*`, must not start with `__`,
/// must be distinct, and must not be `worker` or `le`, which the collector
/// uses itself. Label values may be anything. Otherwise nothing is
/// registered and the error says which name is at fault.
///
/// ```
/// use corepool::prometheus::prometheus_client::{encoding::text::encode, registry::Registry};
///
/// let io = corepool::Pool::builder().workers(1).build()?;
/// let cpu = corepool::Pool::builder().workers(1).build()?;
/// let mut registry = Registry::default();
/// corepool::prometheus::register_with(&mut registry, io.handle(), "app_pool", &[("pool", "io")])?;
/// corepool::prometheus::register_with(&mut registry, cpu.handle(), "app_pool", &[("pool", "cpu")])?;
///
/// let mut text = String::new();
/// encode(&mut text, &registry)?;
/// assert!(text.contains("app_pool_workers{pool=\"io\"} 1\n"));
/// assert!(text.contains("app_pool_workers{pool=\"cpu\"} 1\n"));
///
/// // Names that would make the exposition unparseable are refused.
/// let refused = corepool::prometheus::register_with(&mut registry, io.handle(), "app-pool", &[]);
/// assert!(refused.is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn register_with(
    registry: &mut Registry,
    handle: Handle,
    prefix: &str,
    labels: &[(&str, &str)],
) -> Result<(), InvalidNameError> {
    if !prefix.is_empty() && !is_metric_name(prefix) {
        return Err(InvalidNameError::new(NameKind::Prefix, prefix));
    }
    for (i, (name, _)) in labels.iter().enumerate() {
        let reserved = *name == "worker" || *name == "le" || name.starts_with("__");
        let duplicate = labels[..i].iter().any(|(earlier, _)| earlier == name);
        if !is_label_name(name) || reserved || duplicate {
            return Err(InvalidNameError::new(NameKind::Label, name));
        }
    }
    let registry = if prefix.is_empty() {
        registry
    } else {
        registry.sub_registry_with_prefix(prefix)
    };
    let registry = if labels.is_empty() {
        registry
    } else {
        registry.sub_registry_with_labels(
            labels
                .iter()
                .map(|(name, value)| (Cow::Owned(name.to_string()), Cow::Owned(value.to_string()))),
        )
    };
    registry.register_collector(Box::new(PoolCollector::new(handle)));
    Ok(())
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NameKind {
    Prefix,
    Label,
}

/// A prefix or label name that [`register_with`] refused.
///
/// ```
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let mut registry = corepool::prometheus::prometheus_client::registry::Registry::default();
/// let err = corepool::prometheus::register_with(&mut registry, pool.handle(), "", &[("le", "x")])
///     .unwrap_err();
/// assert_eq!(err.name(), "le");
/// assert_eq!(err.to_string(), "invalid or reserved Prometheus label name \"le\"");
/// # Ok::<(), corepool::BuildError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidNameError {
    kind: NameKind,
    name: String,
}

impl InvalidNameError {
    fn new(kind: NameKind, name: &str) -> Self {
        InvalidNameError {
            kind,
            name: name.to_string(),
        }
    }

    /// The refused prefix or label name.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let mut registry = corepool::prometheus::prometheus_client::registry::Registry::default();
    /// let err = corepool::prometheus::register_with(&mut registry, pool.handle(), "9lives", &[])
    ///     .unwrap_err();
    /// assert_eq!(err.name(), "9lives");
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for InvalidNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            NameKind::Prefix => write!(f, "invalid Prometheus metric prefix {:?}", self.name),
            NameKind::Label => write!(
                f,
                "invalid or reserved Prometheus label name {:?}",
                self.name
            ),
        }
    }
}

impl std::error::Error for InvalidNameError {}

/// A [`Collector`] that encodes a fresh [`MetricsSnapshot`] of one pool on
/// every scrape. Metric names carry no prefix of their own (`executed`,
/// `queue_depth`, ...): [`register`] and [`register_with`] put it in a
/// prefixed sub-registry. Register it yourself to control that.
///
/// ```
/// use corepool::prometheus::prometheus_client::{encoding::text::encode, registry::Registry};
/// use corepool::prometheus::PoolCollector;
///
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let mut registry = Registry::with_prefix("svc_pool");
/// registry.register_collector(Box::new(PoolCollector::new(pool.handle())));
///
/// let mut text = String::new();
/// encode(&mut text, &registry)?;
/// assert!(text.contains("svc_pool_workers 1\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PoolCollector {
    handle: Handle,
    /// The highest `accepted` exported so far (see `encode`).
    accepted_high: AtomicU64,
}

impl PoolCollector {
    /// A collector for the pool behind `handle`.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let collector = corepool::prometheus::PoolCollector::new(pool.handle());
    /// # let _ = collector;
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn new(handle: Handle) -> Self {
        PoolCollector {
            handle,
            accepted_high: AtomicU64::new(0),
        }
    }
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let mut snapshot = self.handle.metrics();
        // `accepted` is derived (tasks started + tasks queued, read one
        // after the other), so a snapshot taken as tasks start can count a
        // few twice, and the next one can be lower. Prometheus would read
        // a lower value as a counter reset, and `rate()` would spike; so
        // never export less than before. Every other counter is a sum of
        // per-worker counters that only grow.
        let before = self
            .accepted_high
            .fetch_max(snapshot.accepted, Ordering::Relaxed);
        snapshot.accepted = snapshot.accepted.max(before);
        encode_snapshot(&snapshot, &mut encoder)
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeCounterValue,
) -> Result<(), fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeGaugeValue,
) -> Result<(), fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// One metric family with a series per worker slot.
fn per_worker<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    workers: &[WorkerMetrics],
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric: impl Fn(&WorkerMetrics) -> M,
) -> Result<(), fmt::Error> {
    let Some(first) = workers.first() else {
        return Ok(());
    };
    let metric_type = metric(first).metric_type();
    let mut family = encoder.encode_descriptor(name, help, unit, metric_type)?;
    for worker in workers {
        let labels = [("worker", worker.index)];
        metric(worker).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn encode_snapshot(m: &MetricsSnapshot, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
    counter(
        encoder,
        "accepted",
        "Externally submitted tasks accepted.",
        m.accepted,
    )?;
    counter(
        encoder,
        "rejected_full",
        "try_submit/try_spawn calls refused because the queue was full.",
        m.rejected_full,
    )?;
    counter(
        encoder,
        "rejected_budget",
        "try_submit/try_spawn calls refused because the task was expected to wait \
         longer than the queue-delay budget.",
        m.rejected_budget,
    )?;
    counter(
        encoder,
        "rejected_shutdown",
        "Submissions refused because the pool was shutting down.",
        m.rejected_shutdown,
    )?;
    counter(
        encoder,
        "timed_out",
        "submit_timeout calls that timed out.",
        m.timed_out,
    )?;
    counter(
        encoder,
        "handed_back",
        "Accepted external tasks that shutdown_now handed back unstarted.",
        m.handed_back,
    )?;
    counter(
        encoder,
        "executed",
        "Tasks run, external and internal, including those that panicked.",
        m.executed,
    )?;
    counter(
        encoder,
        "stolen",
        "Successful steals between workers.",
        m.stolen,
    )?;
    counter(
        encoder,
        "steal_attempts",
        "Steal attempts between workers.",
        m.steal_attempts,
    )?;
    counter(encoder, "panicked", "Tasks that panicked.", m.panicked)?;

    gauge(encoder, "workers", "Active workers.", m.workers)?;
    gauge(
        encoder,
        "max_workers",
        "The most workers the pool can run.",
        m.max_workers,
    )?;
    gauge(
        encoder,
        "queue_depth",
        "Externally submitted tasks accepted and not yet started.",
        m.queue_depth,
    )?;
    gauge(
        encoder,
        "queue_capacity",
        "The bound on queue_depth.",
        m.capacity,
    )?;
    gauge(
        encoder,
        "queue_fill_ratio",
        "queue_depth / queue_capacity, from 0 to 1.",
        m.fill_ratio,
    )?;
    gauge(
        encoder,
        "in_flight",
        "Tasks running right now.",
        m.in_flight,
    )?;

    // Only with a delay budget (the estimate: once a task was observed).
    for (name, help, value) in [
        (
            "expected_queue_delay",
            "The queue-delay budget's estimate of how long a task submitted now would wait.",
            m.expected_queue_delay,
        ),
        (
            "queue_delay_budget",
            "The queue-delay budget in force.",
            m.queue_delay_budget,
        ),
        (
            "queue_delay_limit",
            "The longest expected wait the queue-delay budget admits now.",
            m.queue_delay_limit,
        ),
    ] {
        if let Some(value) = value {
            let metric = ConstGauge::new(value.as_secs_f64());
            metric.encode(encoder.encode_descriptor(
                name,
                help,
                Some(&Unit::Seconds),
                metric.metric_type(),
            )?)?;
        }
    }

    // LatencySummary::buckets is cumulative; the encoder wants per-bucket
    // counts and accumulates them itself, with +Inf last.
    let wait = &m.queue_wait;
    let mut buckets = Vec::with_capacity(wait.buckets.len() + 1);
    let mut below = 0u64;
    for &(bound, cumulative) in &wait.buckets {
        buckets.push((bound.as_secs_f64(), cumulative.saturating_sub(below)));
        below = below.max(cumulative);
    }
    buckets.push((f64::INFINITY, wait.count.saturating_sub(below)));
    encoder
        .encode_descriptor(
            "queue_wait",
            "Queue wait (submit to start) of externally submitted tasks; \
             zero unless the pool tracks latency.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(wait.sum.as_secs_f64(), wait.count, &buckets, None)?;

    let workers = &m.per_worker;
    per_worker(
        encoder,
        workers,
        "worker_executed",
        "Tasks run by this worker.",
        None,
        |w| ConstCounter::new(w.executed),
    )?;
    per_worker(
        encoder,
        workers,
        "worker_stolen",
        "Successful steals by this worker.",
        None,
        |w| ConstCounter::new(w.stolen),
    )?;
    per_worker(
        encoder,
        workers,
        "worker_parks",
        "Times this worker went to sleep.",
        None,
        |w| ConstCounter::new(w.parks),
    )?;
    per_worker(
        encoder,
        workers,
        "worker_busy",
        "Time this worker spent awake, added up at each park.",
        Some(&Unit::Seconds),
        |w| ConstCounter::new(w.busy.as_secs_f64()),
    )?;
    per_worker(
        encoder,
        workers,
        "worker_active",
        "1 if this worker slot is one of the pool's active workers.",
        None,
        |w| ConstGauge::new(u32::from(w.active)),
    )?;
    per_worker(
        encoder,
        workers,
        "worker_local_queue_depth",
        "Tasks in this worker's own deque.",
        None,
        |w| ConstGauge::new(w.local_queue_depth),
    )?;
    Ok(())
}
