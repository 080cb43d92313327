//! The queue-delay budget ([`Builder::queue_delay_budget`]): `try_submit`,
//! `try_spawn` (and `try_reserve`) refuse a task unless the pool expects
//! it to *start* within the budget, even when the count bound has room.
//!
//! [`Builder::queue_delay_budget`]: crate::Builder::queue_delay_budget
//!
//! # What the budget bounds
//!
//! The wait of an admitted task from its `try_*` call to its start, at a
//! percentile: the rule steers itself so that about one admitted task in
//! [`LATE_ONE_IN`] (100) waits longer than the budget, that is, so that
//! the 99th percentile of the admitted tasks' wait sits at the budget
//! while the load holds steady. Not the mean: a mean at the budget leaves
//! a large share of the tasks over it. Not the task's own run time, nor
//! anything the caller does around the pool (an HTTP service's parsing
//! and writing): a latency target for a whole request is that target
//! minus those.
//!
//! # The rule
//!
//! ```text
//! expected wait = queued × S / W        admitted iff expected wait <= L
//! ```
//!
//! * `queued`: externally submitted tasks admitted and not yet started,
//!   the tasks ahead of a new one (`Admission::admitted`).
//! * `W`: the active workers.
//! * `S`: the worker time one admitted task costs, a moving average. With
//!   `W` workers busy the queue drains at `W / S` tasks per unit of time,
//!   so a task behind `queued` others starts after about `queued × S / W`
//!   on average. With nothing queued the expected wait is zero and the
//!   task is admitted whatever `L` is.
//! * `L`, the *limit*, between zero and the budget: how long an expected
//!   wait may be for the actual wait to stay within the budget.
//!
//! Actual waits scatter around the expected one: the tasks running now
//! have some time left (up to `S`), task costs vary, the workers are
//! preempted, workers take batches of outside tasks (so a task may start
//! after a later one taken by another worker), and `S` lags when costs
//! change. Rather than model each of these, the pool measures the result
//! and steers `L` by it, a stochastic approximation of a quantile (the
//! rule Robbins and Monro's method gives for one):
//!
//! * a task admitted with an expected wait of at least half of `L` (near
//!   the limit, where lateness is decided) is stamped when it enters the
//!   queue, and when it starts its worker compares the wait with the
//!   budget: *late* or *on time*;
//! * a late task lowers `L` by `budget / STEP_DIVISOR` (a 64th), an
//!   on-time task raises it by that step over `LATE_ONE_IN - 1` (99);
//! * `L` starts at the budget and stays between zero and the budget.
//!
//! `L` stops moving when one task in `LATE_ONE_IN` is late. If the actual
//! waits scatter more (a busier machine, a spread of task costs), more
//! tasks are late and `L` falls, so the queue admitted is shorter; if
//! they scatter less, it rises back toward the budget. A lower `L` costs
//! no throughput under overload, as long as the queue still holds enough
//! work to keep every worker busy until the next arrival; it does refuse
//! more at loads near capacity, where a longer queue would have absorbed
//! a burst.
//!
//! Tasks admitted far below the limit are not judged: they are the least
//! likely to be late, so leaving them out errs on the safe side (as long
//! as they are late no more often than those judged, the share of all
//! admitted tasks that are late is at most the share among those judged),
//! and they cost nothing extra. With `track_latency`
//! every injected task carries a stamp, and every stamped task is judged,
//! also those of blocking submissions and permits, which the budget never
//! refuses: their waits are those of the queue the budget shapes.
//!
//! # What is observed, and how cheaply
//!
//! Workers measure `S` and the verdicts; producers read the results.
//!
//! * `S`: a worker reads the clock when it starts an admitted task. The
//!   time from one admitted start to the next, on the same worker, *back
//!   to back*, is one sample: the task itself plus whatever else the
//!   worker ran in between (tasks it spawned from inside, stolen halves of
//!   joins), which is what the queue really waits for. When the worker
//!   runs out of work nearby (it then searches or parks) or retires, its
//!   open interval is dropped, not measured: idle time is no one's
//!   service time. So samples come only from a backlog, which is when the
//!   estimate matters.
//! * The verdicts: a task to be judged carries its submission time, the
//!   same stamp as `track_latency`'s: its producer reads the clock once
//!   after the task is admitted, and a closure small enough to sit inline
//!   in the task is boxed to have room for the stamp. That is only for
//!   tasks admitted near the limit, that is, when the queue is already
//!   long enough to matter; a `try_*` submission into a short queue pays
//!   neither. The worker's clock read at the start serves the sample, the
//!   verdict and the histogram alike.
//!
//! Samples and verdicts are summed per worker in plain `Cell`s and folded
//! into the pool-wide words (`S` and `L`; one relaxed load and store each,
//! no read-modify-write: a lost update between two workers loses a batch,
//! nothing else) once per [`PUBLISH_TASKS`] samples or verdicts, or
//! [`PUBLISH_NS`] of samples. So the shared words are written rarely
//! under a stream of small tasks.
//!
//! A producer's check (`DelayBudget::check`) reads `S`, `L`, the admission
//! word (which counts, besides the queued tasks, slots that workers hold
//! back) and the number of active workers: no lock, no clock, no write.
//! Only if that upper bound is over `L` does it read the exact queue
//! length (one load per worker) before refusing. Without a budget the
//! pool pays one never-taken branch per `try_*` submission and per
//! admitted start.
//!
//! # Adapting
//!
//! Each published batch of samples moves `S` a sixteenth of the way to
//! the batch's mean ([`WEIGHT_SHIFT`]). Tasks of a millisecond or more
//! publish at every task, so when tasks get ten times slower `S` is
//! within 10 % of the new cost after about 36 of them (across all
//! workers); smaller tasks publish every 32 tasks or 1 ms of samples. A
//! faster average is a noisier one: the tasks admitted are those that
//! came while the estimate was low, so they wait longer than it said.
//!
//! `L` follows the verdicts, which arrive one queue wait after the
//! admissions they judge. Down, it moves fast: a late task takes a 64th of
//! the budget off, so a run of late tasks (a burst, or a slower machine)
//! halves `L` in 32 of them. Up, it moves 99 times slower: back from half
//! the budget to all of it takes some 3,200 on-time tasks (about a second
//! at 3,000 tasks/s). Between those, at a steady load, `L` wobbles by
//! about a 64th of the budget.
//!
//! Cold start: until the first sample of `S` every task is admitted (the
//! count bound still applies); `L` is the budget until the first verdict.
//!
//! The budget itself may be replaced while the pool runs
//! (`Handle::set_queue_delay_budget`): `L` is scaled with it, keeping its
//! ratio to the budget, which is what the verdicts taught it; verdicts
//! from then on are judged against the new budget.
//!
//! # Known failure modes
//!
//! * The samples come from tasks that *finished* an interval and the
//!   verdicts from tasks that *started*: if every worker is stuck in a
//!   task far longer than usual (blocked on I/O, a lock), neither sees it
//!   until one of them moves on, and the queue can fill up to the count
//!   bound meanwhile. The count bound is then what limits the damage;
//!   size it too.
//! * Mixed task sizes: `S` is a mean. A few huge tasks among small ones
//!   make every expected wait large, and the spread of actual waits wide,
//!   so `L` falls and small tasks that would have started soon are
//!   refused. Use one pool per class of task when their costs differ by
//!   orders of magnitude.
//! * Tasks that wait on each other (a task that blocks until another
//!   submitted task ends) inflate `S` by the wait.
//! * Tasks longer than `W ×` budget: even the first queued task may wait
//!   longer than the budget. `L` then falls to zero, and only a task that
//!   finds the queue empty is admitted.
//! * Producers racing past the check together may all be admitted, so
//!   the queue can exceed `L` by the number of producers that check at
//!   once.
//! * The percentile holds at a steady load. After a change (a burst, a
//!   slower phase) the late share is higher until enough verdicts came
//!   back; after a long quiet spell `L` is back at the budget, and the
//!   first overload starts from there.
//! * Blocking submissions (`submit`, `spawn`, `submit_timeout`) never
//!   consult the budget, and tasks submitted from inside the pool are not
//!   queued behind the bound: neither is refused, and both add to the
//!   wait of the tasks behind them.

use std::cell::Cell;
use std::time::Duration;

use crate::admission::Admission;
use crate::sync::stats::AtomicU64;
use crate::sync::{Instant, Ordering};

/// A worker folds its samples (or verdicts) into the shared words once it
/// has this many.
pub(crate) const PUBLISH_TASKS: u32 = 32;
/// ... or once its samples add up to this much time (1 ms).
pub(crate) const PUBLISH_NS: u64 = 1_000_000;
/// Each published batch moves `S` by 1/2^WEIGHT_SHIFT of the gap (see the
/// module docs, "Adapting").
pub(crate) const WEIGHT_SHIFT: u32 = 4;
/// One admitted task in this many may wait longer than the budget: the
/// limit settles where that many are late (see the module docs).
pub(crate) const LATE_ONE_IN: u64 = 100;
/// A late task lowers the limit by the budget over this; an on-time task
/// raises it by that step over `LATE_ONE_IN - 1`.
pub(crate) const STEP_DIVISOR: u64 = 64;

/// A task is judged if its expected wait is at least the limit over
/// 2^JUDGE_FROM_SHIFT (see the module docs, "What is observed").
pub(crate) const JUDGE_FROM_SHIFT: u32 = 1;

/// What the budget says to a task submitted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Its expected wait is over the limit.
    Refuse,
    /// Admitted, far enough below the limit not to be judged.
    Admit,
    /// Admitted near the limit: stamped, and judged when it starts.
    AdmitAndJudge,
}

/// The budget, the pool-wide service-time average and the limit (see the
/// module docs).
pub(crate) struct DelayBudget {
    /// The budget, in nanoseconds (saturated at `u64::MAX`), never 0.
    /// A setting: changed only by `set_budget`, read relaxed.
    budget_ns: AtomicU64,
    /// Average worker time per admitted task, in nanoseconds; 0 until the
    /// first sample. A statistic: no protocol depends on its ordering.
    service_ns: AtomicU64,
    /// The longest expected wait admitted, in nanoseconds: between 0 and
    /// `budget_ns`, steered by the verdicts. A statistic, like `service_ns`.
    limit_ns: AtomicU64,
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
    /// Verdicts not yet published.
    late: Cell<u32>,
    on_time: Cell<u32>,
}

impl DelayBudget {
    pub(crate) fn new(budget: Duration) -> Self {
        let budget_ns = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX);
        DelayBudget {
            budget_ns: AtomicU64::new(budget_ns),
            service_ns: AtomicU64::new(0),
            limit_ns: AtomicU64::new(budget_ns),
        }
    }

    /// The budget in force.
    pub(crate) fn budget(&self) -> Duration {
        Duration::from_nanos(self.budget_ns.load(Ordering::Relaxed))
    }

    /// Replaces the budget (not zero: the caller checks). The limit keeps
    /// its ratio to the budget, which is what the verdicts taught it (how
    /// far actual waits scatter above expected ones).
    pub(crate) fn set_budget(&self, budget: Duration) {
        let new = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX).max(1);
        let old = self.budget_ns.swap(new, Ordering::Relaxed);
        let limit = u128::from(self.limit_ns.load(Ordering::Relaxed));
        let scaled = (limit * u128::from(new) / u128::from(old.max(1))).min(u128::from(new));
        // `scaled <= new`, which is a u64.
        self.limit_ns
            .store(u64::try_from(scaled).unwrap_or(new), Ordering::Relaxed);
    }

    /// The average worker time per admitted task, if any was observed.
    #[cfg(test)]
    fn service_time(&self) -> Option<Duration> {
        match self.service_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// The longest expected wait admitted now.
    pub(crate) fn limit(&self) -> Duration {
        Duration::from_nanos(self.limit_ns())
    }

    /// The limit, in nanoseconds, capped by the budget: a limit steered
    /// against a budget just lowered may still be above it.
    fn limit_ns(&self) -> u64 {
        self.limit_ns
            .load(Ordering::Relaxed)
            .min(self.budget_ns.load(Ordering::Relaxed))
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

    /// The verdict on a task submitted now: refused if its expected wait
    /// is over the limit; judged if it is at least half the limit.
    pub(crate) fn check(&self, admission: &Admission, workers: usize) -> Check {
        let service = self.service_ns.load(Ordering::Relaxed);
        if service == 0 {
            return Check::Admit; // cold start
        }
        let limit = u128::from(self.limit_ns());
        // An upper bound first: the word also counts held-back slots of
        // tasks already started, and reading it costs nothing extra (the
        // acquire that follows reads the same line).
        let upper = wait_ns(admission.admitted_and_held(), service, workers);
        if upper <= limit || wait_ns(admission.admitted(), service, workers) <= limit {
            if upper >= limit >> JUDGE_FROM_SHIFT {
                Check::AdmitAndJudge
            } else {
                Check::Admit
            }
        } else {
            Check::Refuse
        }
    }

    /// A worker starts an admitted task at `now`, `waited_ns` after it was
    /// submitted (if it was stamped): the wait is judged against the
    /// budget, the interval since the worker's previous admitted start (if
    /// still open) is a sample, and a new interval opens.
    pub(crate) fn on_admitted_start(&self, probe: &Probe, now: Instant, waited_ns: Option<u64>) {
        if let Some(waited) = waited_ns {
            self.judge(probe, waited);
        }
        if let Some(since) = probe.since.replace(Some(now)) {
            sample(probe, nanos(since, now));
        }
        self.publish_if_due(probe);
    }

    /// A worker ran out of work nearby, or retires: its open interval is
    /// dropped (what follows is looking for work or idling).
    pub(crate) fn on_idle(probe: &Probe) {
        probe.since.set(None);
    }

    /// Counts one verdict: late if the task waited longer than the budget.
    fn judge(&self, probe: &Probe, waited_ns: u64) {
        let verdict = if waited_ns > self.budget_ns.load(Ordering::Relaxed) {
            &probe.late
        } else {
            &probe.on_time
        };
        verdict.set(verdict.get() + 1);
    }

    fn publish_if_due(&self, probe: &Probe) {
        let count = probe.count.get();
        let verdicts = probe.late.get() + probe.on_time.get();
        if count < PUBLISH_TASKS && verdicts < PUBLISH_TASKS && probe.sum_ns.get() < PUBLISH_NS {
            return;
        }
        if count > 0 {
            self.publish_service(probe.sum_ns.get() / u64::from(count));
            probe.sum_ns.set(0);
            probe.count.set(0);
        }
        if verdicts > 0 {
            self.steer(probe.late.get(), probe.on_time.get());
            probe.late.set(0);
            probe.on_time.set(0);
        }
    }

    fn publish_service(&self, mean_ns: u64) {
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

    /// Moves the limit by a batch of verdicts (see the module docs).
    fn steer(&self, late: u32, on_time: u32) {
        let budget_ns = self.budget_ns.load(Ordering::Relaxed);
        let budget = u128::from(budget_ns);
        let down = budget * u128::from(late) / u128::from(STEP_DIVISOR);
        let up = budget * u128::from(on_time) / u128::from(STEP_DIVISOR * (LATE_ONE_IN - 1));
        let old = u128::from(self.limit_ns.load(Ordering::Relaxed));
        let new = (old + up).saturating_sub(down).min(budget);
        // `new <= budget`, which is a u64.
        self.limit_ns
            .store(u64::try_from(new).unwrap_or(budget_ns), Ordering::Relaxed);
    }
}

/// Adds one interval to the worker's unpublished samples. A zero-length
/// interval still counts: 0 means "no sample yet" only for the shared
/// average, so samples are at least 1 ns.
fn sample(probe: &Probe, ns: u64) {
    probe
        .sum_ns
        .set(probe.sum_ns.get().saturating_add(ns.max(1)));
    probe.count.set(probe.count.get() + 1);
}

/// `queued × service / workers`, in nanoseconds, without overflow.
fn wait_ns(queued: usize, service_ns: u64, workers: usize) -> u128 {
    queued as u128 * u128::from(service_ns) / workers.max(1) as u128
}

fn nanos(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
