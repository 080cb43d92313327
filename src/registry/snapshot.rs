//! `Shared::metrics`: assembling a `MetricsSnapshot` from the pool's
//! counters.

use std::time::Duration;

use super::Shared;
use crate::budget::DelayBudget;
use crate::metrics::{LatencySummary, MetricsSnapshot, WorkerMetrics};
use crate::sync::Ordering;

impl Shared {
    /// A snapshot of every counter.
    pub(crate) fn metrics(&self) -> MetricsSnapshot {
        let load = |c: &crate::sync::stats::AtomicU64| c.load(Ordering::Relaxed);
        let active = self.active_workers();
        // Each counter is read once, so that the totals are the sums of the
        // per-worker figures even while workers count; `stolen` before
        // `steal_attempts`, which a steal bumps first, so stolen <= attempts.
        let slots: Vec<WorkerMetrics> = self
            .counters
            .iter()
            .enumerate()
            .map(|(index, c)| {
                let stolen = load(&c.stolen);
                WorkerMetrics {
                    index,
                    core: self.cores.get(index).copied().flatten(),
                    active: index < active,
                    executed: load(&c.executed),
                    stolen,
                    steal_attempts: load(&c.steal_attempts),
                    parks: load(&c.parks),
                    panicked: load(&c.panicked),
                    busy: Duration::from_nanos(load(&c.busy_ns)),
                    local_queue_depth: self.stealers[index].len(),
                    running: load(&c.running) > 0,
                }
            })
            .collect();
        let total = |f: fn(&WorkerMetrics) -> u64| slots.iter().map(f).sum::<u64>();
        let (executed, stolen, steal_attempts, panicked) = (
            total(|w| w.executed),
            total(|w| w.stolen),
            total(|w| w.steal_attempts),
            total(|w| w.panicked),
        );
        let in_flight = slots.iter().filter(|w| w.running).count();
        let mut per_worker = slots;
        per_worker.truncate(self.core_slots);
        let queue_depth = self.admission.admitted();
        let capacity = self.admission.capacity();
        let started: u64 = self
            .counters
            .iter()
            .map(|c| load(&c.admitted_started))
            .sum();
        let handed_back = self.handed_back.sum();
        MetricsSnapshot {
            workers: active,
            max_workers: self.num_workers(),
            queue_depth,
            capacity,
            fill_ratio: queue_depth as f64 / capacity as f64,
            accepted: started + handed_back + queue_depth as u64,
            handed_back,
            rejected_full: self.rejected_full.sum(),
            rejected_budget: self.rejected_budget.sum(),
            rejected_shutdown: self.rejected_shutdown.sum(),
            timed_out: self.timed_out.sum(),
            executed,
            stolen,
            steal_attempts,
            panicked,
            in_flight,
            idle_workers: self.sleep.sleeping(),
            searching_workers: self.sleep.searching(),
            queue_wait: LatencySummary::from_workers(self.counters.iter().map(|c| &**c)),
            expected_queue_delay: self.expected_queue_delay(),
            queue_delay_budget: self.delay_budget.as_ref().map(DelayBudget::budget),
            queue_delay_limit: self.delay_budget.as_ref().map(DelayBudget::limit),
            per_worker,
        }
    }
}
