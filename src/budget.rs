//! The queue-delay budget ([`Builder::queue_delay_budget`]): `try_submit`,
//! `try_spawn` (and `try_reserve`) refuse a task whose *expected wait*
//! before it starts exceeds the budget, even when the count bound has room.
//!
//! [`Builder::queue_delay_budget`]: crate::Builder::queue_delay_budget
//!
//! # The estimate
//!
//! ```text
//! expected wait = queued × S / W
//! ```
//!
//! * `queued`: externally submitted tasks admitted and not yet started,
//!   i.e. the tasks ahead of a new one (`Admission::admitted`).
//! * `W`: the active workers.
//! * `S`: the worker time one admitted task costs, a moving average. With
//!   `W` workers busy the queue drains at `W / S` tasks per unit of time,
//!   so a task behind `queued` others starts after about `queued × S / W`.
//!   The residual of the tasks running now (up to `S / W` more) is left
//!   out: with nothing queued the estimate is zero and the task is
//!   admitted, which is the point of a queue that is allowed to be short.
//!
//! # What is observed, and how cheaply
//!
//! Workers measure `S`; producers only read it. A worker reads the clock
//! when it starts an admitted task. The time from one admitted start to
//! the next, on the same worker, *back to back*, is one sample: the task
//! itself plus whatever else the worker ran in between (tasks it spawned
//! from inside, stolen halves of joins), which is what the queue really
//! waits for. When the worker runs out of work nearby (it then searches
//! or parks) or retires, its open interval is dropped, not measured: idle
//! time is no one's service time, and dropping it needs no clock read.
//! So samples come only from workers that found their next admitted task
//! at once, that is, from a backlog, which is when the estimate matters;
//! a lightly loaded pool learns nothing, and needs nothing (no queue, no
//! wait).
//!
//! Samples are summed per worker in plain `Cell`s and folded into the
//! pool-wide average (one relaxed load and store of a shared word, no
//! read-modify-write: a lost update between two workers loses a sample,
//! nothing else) once per [`PUBLISH_TASKS`] tasks or [`PUBLISH_NS`] of
//! samples. So the shared word is written rarely under a stream of small
//! tasks, and the cost per admitted task is one clock read (about 20 ns
//! with the vDSO) and a few arithmetic operations on the worker's own
//! cells.
//!
//! A producer's check (`DelayBudget::over`) reads the average, the
//! admission word (which counts, besides the queued tasks, slots that
//! workers hold back) and the number of active workers: no lock, no
//! clock, no write. Only if that upper bound is over the budget does it
//! read the exact queue length (one load per worker) before refusing.
//! Without a budget the pool pays one never-taken branch per `try_*`
//! submission and one per admitted start.
//!
//! # Adapting
//!
//! Each published batch moves the average a sixteenth of the way to the
//! batch's mean ([`WEIGHT_SHIFT`]). Tasks of a millisecond or more publish
//! at every task, so when tasks get ten times slower the estimate is
//! within 10 % of the new cost after about 36 of them (across all
//! workers); smaller tasks publish every 32 tasks or 1 ms of samples, so
//! for them the lag is some 36 ms of the workers' time. A faster average
//! is a noisier one, and noise is worse than lag here: the tasks
//! admitted are those that came while the estimate was low, so they wait
//! longer than it said. At 2x overload on a busy 2-core machine, a weight
//! of a quarter gave admitted tasks a mean wait 1.4x the prediction and
//! 59-60 % of them over the budget; a sixteenth, 0.85-0.87x and 17-19 %
//! (`docs/operations.md`, "Delay budget").
//!
//! Cold start: until the first sample the pool has no idea of `S`, and
//! every task is admitted (the count bound still applies). The first
//! samples arrive as soon as a backlog forms: one task of a millisecond or
//! more, or 32 smaller ones, started back to back.
//!
//! # Known failure modes
//!
//! * The samples come from tasks that *finished* an interval: if every
//!   worker is stuck in a task far longer than usual (blocked on I/O, a
//!   lock), the average does not see it until one of them finishes, and
//!   the queue can fill up to the count bound meanwhile. The count bound
//!   is then what limits the damage; size it too.
//! * Mixed task sizes: the estimate is a mean. A few huge tasks among
//!   small ones make every task's expected wait large and refuse small
//!   tasks that would have started soon; a queue of huge tasks behind a
//!   mean set by small ones is admitted too deep. Use one pool per class
//!   of task when their costs differ by orders of magnitude.
//! * Tasks that wait on each other (a task that blocks until another
//!   submitted task ends) inflate `S` by the wait.
//! * The residual of the running tasks is not counted: with tasks longer
//!   than `W ×` budget, even the first queued task may wait longer than
//!   the budget.
//! * Producers racing past the check together may all be admitted, so
//!   the queue can exceed its budgeted length by the number of producers
//!   that check at once.
//! * Blocking submissions (`submit`, `spawn`, `submit_timeout`) never
//!   consult the budget, and tasks submitted from inside the pool are not
//!   queued behind the bound: neither is refused, and both add to the
//!   wait of the tasks behind them.

use std::cell::Cell;
use std::time::Duration;

use crate::admission::Admission;
use crate::sync::stats::AtomicU64;
use crate::sync::{Instant, Ordering};

/// A worker folds its samples into the shared average once it has this
/// many.
pub(crate) const PUBLISH_TASKS: u32 = 32;
/// ... or once its samples add up to this much time (1 ms).
pub(crate) const PUBLISH_NS: u64 = 1_000_000;
/// Each published batch moves the average by 1/2^WEIGHT_SHIFT of the gap
/// (see the module docs, "Adapting").
pub(crate) const WEIGHT_SHIFT: u32 = 4;

/// The budget and the pool-wide service-time average (see the module docs).
pub(crate) struct DelayBudget {
    /// The budget, in nanoseconds (saturated at `u64::MAX`).
    budget_ns: u64,
    /// Average worker time per admitted task, in nanoseconds; 0 until the
    /// first sample. A statistic: no protocol depends on its ordering.
    service_ns: AtomicU64,
}

/// One worker's side of the estimate: plain cells, only it touches them.
#[derive(Default)]
pub(crate) struct Probe {
    /// When the worker started its last admitted task, while that
    /// interval is open.
    since: Cell<Option<Instant>>,
    /// Samples not yet published: their sum and number.
    sum_ns: Cell<u64>,
    count: Cell<u32>,
}

impl DelayBudget {
    pub(crate) fn new(budget: Duration) -> Self {
        DelayBudget {
            budget_ns: u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX),
            service_ns: AtomicU64::new(0),
        }
    }

    /// The average worker time per admitted task, if any was observed.
    #[cfg(test)]
    fn service_time(&self) -> Option<Duration> {
        match self.service_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// The expected wait of a task submitted now behind `queued` others,
    /// with `workers` active; `None` before the first sample.
    pub(crate) fn expected_wait(&self, queued: usize, workers: usize) -> Option<Duration> {
        let service = self.service_ns.load(Ordering::Relaxed);
        if service == 0 {
            return None;
        }
        let ns = wait_ns(queued, service, workers);
        Some(Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)))
    }

    /// Whether a task submitted now would be expected to wait longer than
    /// the budget.
    pub(crate) fn over(&self, admission: &Admission, workers: usize) -> bool {
        let service = self.service_ns.load(Ordering::Relaxed);
        if service == 0 {
            return false; // cold start: admit
        }
        let budget = u128::from(self.budget_ns);
        // An upper bound first: the word also counts held-back slots of
        // tasks already started, and reading it costs nothing extra (the
        // acquire that follows reads the same line).
        if wait_ns(admission.admitted_and_held(), service, workers) <= budget {
            return false;
        }
        wait_ns(admission.admitted(), service, workers) > budget
    }

    /// A worker starts an admitted task: the interval since its previous
    /// admitted start (if still open) is a sample, and a new one opens.
    pub(crate) fn on_admitted_start(&self, probe: &Probe) {
        let now = Instant::now();
        if let Some(since) = probe.since.replace(Some(now)) {
            self.sample(probe, nanos(since, now));
        }
    }

    /// A worker ran out of work nearby, or retires: its open interval is
    /// dropped (what follows is looking for work or idling).
    pub(crate) fn on_idle(probe: &Probe) {
        probe.since.set(None);
    }

    fn sample(&self, probe: &Probe, ns: u64) {
        // A zero-length interval still counts: 0 means "no sample yet" only
        // for the shared average, so samples are at least 1 ns.
        let sum = probe.sum_ns.get().saturating_add(ns.max(1));
        let count = probe.count.get() + 1;
        if count >= PUBLISH_TASKS || sum >= PUBLISH_NS {
            probe.sum_ns.set(0);
            probe.count.set(0);
            self.publish(sum / u64::from(count));
        } else {
            probe.sum_ns.set(sum);
            probe.count.set(count);
        }
    }

    fn publish(&self, mean_ns: u64) {
        let old = self.service_ns.load(Ordering::Relaxed);
        let new = if old == 0 {
            mean_ns
        } else if mean_ns >= old {
            old + ((mean_ns - old) >> WEIGHT_SHIFT)
        } else {
            old - ((old - mean_ns) >> WEIGHT_SHIFT)
        };
        self.service_ns.store(new.max(1), Ordering::Relaxed);
    }
}

/// `queued × service / workers`, in nanoseconds, without overflow.
fn wait_ns(queued: usize, service_ns: u64, workers: usize) -> u128 {
    queued as u128 * u128::from(service_ns) / workers.max(1) as u128
}

fn nanos(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_batch_sets_the_average_then_it_moves_a_quarter() {
        let budget = DelayBudget::new(Duration::from_millis(10));
        assert_eq!(budget.service_time(), None);
        budget.publish(1_600);
        assert_eq!(budget.service_time(), Some(Duration::from_nanos(1_600)));
        let step = 1_600 >> WEIGHT_SHIFT;
        budget.publish(3_200);
        assert_eq!(
            budget.service_time(),
            Some(Duration::from_nanos(1_600 + step))
        );
        budget.publish(step);
        assert_eq!(budget.service_time(), Some(Duration::from_nanos(1_600)));
    }

    #[test]
    fn adapts_to_ten_times_slower_tasks_within_40_batches() {
        let budget = DelayBudget::new(Duration::from_millis(10));
        budget.publish(300_000);
        let mut batches = 0;
        while budget.service_time() < Some(Duration::from_micros(2_700)) {
            budget.publish(3_000_000);
            batches += 1;
        }
        assert!(batches <= 40, "took {batches} batches");
    }

    #[test]
    fn samples_are_batched_by_count_or_time() {
        let budget = DelayBudget::new(Duration::from_millis(10));
        let probe = Probe::default();
        for _ in 0..PUBLISH_TASKS - 1 {
            budget.sample(&probe, 10);
        }
        assert_eq!(budget.service_time(), None, "not published yet");
        budget.sample(&probe, 10);
        assert_eq!(budget.service_time(), Some(Duration::from_nanos(10)));
        // One sample of a millisecond or more is published at once.
        budget.sample(&probe, 10 + (1_600_000 << WEIGHT_SHIFT));
        assert_eq!(
            budget.service_time(),
            Some(Duration::from_nanos(10 + 1_600_000))
        );
    }

    #[test]
    fn an_idle_gap_is_not_a_sample() {
        let budget = DelayBudget::new(Duration::from_millis(10));
        let probe = Probe::default();
        budget.on_admitted_start(&probe);
        DelayBudget::on_idle(&probe);
        budget.on_admitted_start(&probe);
        assert_eq!(probe.count.get(), 0, "the dropped interval gave no sample");
        budget.on_admitted_start(&probe);
        assert_eq!(probe.count.get(), 1, "back to back: one sample");
    }

    #[test]
    fn expected_wait_is_queue_times_service_over_workers() {
        let budget = DelayBudget::new(Duration::from_millis(10));
        assert_eq!(budget.expected_wait(10, 2), None);
        budget.publish(1_000_000);
        assert_eq!(budget.expected_wait(0, 2), Some(Duration::ZERO));
        assert_eq!(budget.expected_wait(10, 2), Some(Duration::from_millis(5)));
        assert_eq!(
            wait_ns(usize::MAX, u64::MAX, 1),
            usize::MAX as u128 * u64::MAX as u128
        );
    }

    #[test]
    fn an_absurd_budget_saturates() {
        assert_eq!(DelayBudget::new(Duration::MAX).budget_ns, u64::MAX);
    }
}
