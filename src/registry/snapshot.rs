//! `Shared::metrics`: assembling a `MetricsSnapshot` from the pool's
//! counters.

use std::time::Duration;

use super::Shared;
use crate::metrics::{LatencySummary, MetricsSnapshot, WorkerMetrics};
use crate::sync::Ordering;

impl Shared {
    /// A snapshot of every counter.
    pub(crate) fn metrics(&self) -> MetricsSnapshot {
        let load = |c: &crate::sync::stats::AtomicU64| c.load(Ordering::Relaxed);
        let active = self.active_workers();
        let per_worker: Vec<WorkerMetrics> = self.counters[..self.core_slots]
            .iter()
            .enumerate()
            .map(|(index, c)| WorkerMetrics {
                index,
                core: self.cores[index],
                active: index < active,
                executed: load(&c.executed),
                stolen: load(&c.stolen),
                steal_attempts: load(&c.steal_attempts),
                parks: load(&c.parks),
                panicked: load(&c.panicked),
                busy: Duration::from_nanos(load(&c.busy_ns)),
                local_queue_depth: self.stealers[index].len(),
                running: load(&c.running) > 0,
            })
            .collect();
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
            executed: self.counters.iter().map(|c| load(&c.executed)).sum(),
            stolen: self.counters.iter().map(|c| load(&c.stolen)).sum(),
            steal_attempts: self.counters.iter().map(|c| load(&c.steal_attempts)).sum(),
            panicked: self.counters.iter().map(|c| load(&c.panicked)).sum(),
            in_flight: self
                .counters
                .iter()
                .filter(|c| load(&c.running) > 0)
                .count(),
            idle_workers: self.sleep.sleeping(),
            searching_workers: self.sleep.searching(),
            queue_wait: LatencySummary::from_workers(self.counters.iter().map(|c| &**c)),
            expected_queue_delay: self.expected_queue_delay(),
            per_worker,
        }
    }
}
