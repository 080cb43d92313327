//! `Builder::build`: validating the configuration and starting the workers.
//!
//! Each worker pins itself first, then allocates its deque (so the deque's
//! memory is first touched on its own core), reports its stealer and its
//! core, and waits until every worker has reported. Only then is the shared
//! state, which holds every stealer, published to all of them. If a thread
//! cannot be started, the workers already started are told to exit and are
//! joined before `build` returns the error.

use std::time::Duration;

use super::{Builder, DEFAULT_CAPACITY_PER_WORKER, DEFAULT_SPARES_PER_WORKER, MIN_STACK_SIZE};
use crate::admission::MAX_CAPACITY;
use crate::autoscale::Autoscaler;
use crate::error::BuildError;
use crate::monitor::{self, FillAlert, Monitor};
use crate::pool::Pool;
use crate::registry::{Hooks, Queues, Shared, SharedConfig, Stealers, ThreadName};
use crate::sleep::MAX_WORKERS;
use crate::sync::{lock, thread, wait, Arc, Condvar, Instant, Mutex, Parker};
use crate::topology;
use crate::worker::WorkerContext;

impl Builder {
    /// Validates the configuration and starts the workers. On error no
    /// worker thread is left running.
    ///
    /// ```
    /// let err = corepool::Pool::builder().queue_capacity(0).build().unwrap_err();
    /// assert!(matches!(err, corepool::BuildError::ZeroCapacity));
    /// ```
    pub fn build(self) -> Result<Pool, BuildError> {
        if let Some(policy) = &self.autoscale {
            policy.validate().map_err(BuildError::InvalidAutoscale)?;
        }
        let workers = match (self.workers, &self.autoscale) {
            (Some(0), _) => return Err(BuildError::ZeroWorkers),
            (Some(n), Some(policy)) if n < policy.min || n > policy.max => {
                return Err(BuildError::InvalidAutoscale(format!(
                    "workers({n}) is outside the autoscale range {}..={}",
                    policy.min, policy.max
                )))
            }
            (Some(n), _) => n,
            (None, Some(policy)) => policy.min,
            (None, None) => topology::default_workers(),
        };
        let slots = match self.max_workers {
            Some(max) if max < workers => {
                return Err(BuildError::MaxWorkersTooSmall {
                    workers,
                    max_workers: max,
                })
            }
            Some(max) => max,
            None => workers,
        }
        .max(self.autoscale.as_ref().map_or(0, |policy| policy.max));
        if slots > MAX_WORKERS {
            return Err(BuildError::TooManyWorkers {
                requested: slots,
                max: MAX_WORKERS,
            });
        }
        let capacity = match self.capacity {
            Some(0) => return Err(BuildError::ZeroCapacity),
            Some(c) if c > MAX_CAPACITY => {
                return Err(BuildError::CapacityTooLarge {
                    requested: c,
                    max: MAX_CAPACITY,
                })
            }
            Some(c) => c,
            None => workers
                .saturating_mul(DEFAULT_CAPACITY_PER_WORKER)
                .min(MAX_CAPACITY),
        };
        if let Some((threshold, _)) = &self.fill_alert {
            if !(*threshold > 0.0 && *threshold <= 1.0) {
                return Err(BuildError::InvalidFillThreshold(*threshold));
            }
        }
        if self.queue_delay_budget == Some(Duration::ZERO) {
            return Err(BuildError::ZeroDelayBudget);
        }
        if let Some(size) = self.stack_size.filter(|&size| size < MIN_STACK_SIZE) {
            return Err(BuildError::StackTooSmall {
                requested: size,
                min: MIN_STACK_SIZE,
            });
        }
        if let ThreadName::Prefix(prefix) = &self.thread_name {
            if prefix.contains('\0') {
                return Err(BuildError::InvalidThreadName(prefix.clone()));
            }
        }
        // Every worker's name, before any thread starts: a name with a NUL
        // byte, or a panicking `thread_name_fn`, leaves nothing running.
        let names: Vec<String> = (0..slots).map(|i| self.thread_name.worker(i)).collect();
        if let Some(bad) = names.iter().find(|name| name.contains('\0')) {
            return Err(BuildError::InvalidThreadName(bad.clone()));
        }
        let cores = if self.pin {
            topology::allowed_cores()
        } else {
            None
        };
        let startup = Arc::new(Startup::new(slots));
        let mut threads = Vec::with_capacity(slots + 1);
        for (index, name) in names.into_iter().enumerate() {
            let target_core = cores.as_ref().map(|cores| cores[index % cores.len()]);
            let mut builder = thread::Builder::new().name(name);
            if let Some(size) = self.stack_size {
                builder = builder.stack_size(size);
            }
            let startup_for_worker = startup.clone();
            match builder.spawn(move || worker_thread(index, target_core, &startup_for_worker)) {
                Ok(thread) => threads.push(thread),
                Err(source) => {
                    startup.publish(None);
                    for thread in threads {
                        let _ = thread.join();
                    }
                    return Err(BuildError::Spawn {
                        worker: index,
                        stack_size: self.stack_size,
                        source,
                    });
                }
            }
        }
        let (mut stealers, worker_cores) = startup.wait_for_reports();
        let default_spares = workers * DEFAULT_SPARES_PER_WORKER;
        let spare_queues: Vec<Queues> = (0..self.max_spare_threads.unwrap_or(default_spares))
            .map(|_| Queues::new())
            .collect();
        stealers.extend(spare_queues.iter().map(Queues::stealers));

        let autoscaler = self
            .autoscale
            .map(|policy| Arc::new(Mutex::new(Autoscaler::new(policy))));
        let needs_monitor = self.fill_alert.is_some()
            || autoscaler
                .as_ref()
                .is_some_and(|scaler| lock(scaler).policy().tick.is_some());
        let monitor_parker = needs_monitor.then(|| Arc::new(Parker::new()));
        let fill_alert = self
            .fill_alert
            .map(|(threshold, callback)| FillAlert::new(threshold, capacity, callback));
        let shared = Arc::new(Shared::new(SharedConfig {
            capacity,
            stealers,
            cores: worker_cores.clone(),
            active: workers,
            hooks: Hooks {
                panic_handler: self.panic_handler,
                on_start: self.on_start,
                on_stop: self.on_stop,
            },
            // The delay budget learns from admitted tasks' waits: it
            // stamps some of them too.
            latency_epoch: (self.track_latency || self.queue_delay_budget.is_some())
                .then(Instant::now),
            track_latency: self.track_latency,
            delay_budget: self.queue_delay_budget,
            monitor: monitor_parker.clone(),
            autoscaler: autoscaler.clone(),
            spare_queues,
            thread_name: self.thread_name,
            stack_size: self.stack_size,
        }));
        startup.publish(Some(shared.clone()));
        if let Some(parker) = monitor_parker {
            let monitor = Monitor {
                parker,
                fill_alert,
                autoscaler,
            };
            match monitor::start(shared.clone(), monitor) {
                Ok(thread) => threads.push(thread),
                Err(source) => {
                    // Dropping the pool closes it and joins the workers.
                    drop(Pool::from_parts(shared, threads, worker_cores));
                    return Err(BuildError::Spawn {
                        worker: slots,
                        stack_size: None,
                        source,
                    });
                }
            }
        }
        Ok(Pool::from_parts(shared, threads, worker_cores))
    }
}

fn worker_thread(index: usize, target_core: Option<usize>, startup: &Startup) {
    let pinned =
        target_core.filter(|&id| core_affinity::set_for_current(core_affinity::CoreId { id }));
    let queues = Queues::new();
    startup.report(index, queues.stealers(), pinned);
    if let Some(shared) = startup.wait_for_shared() {
        WorkerContext::new(index, shared, queues).run();
    }
}

/// The rendezvous between `build` and the workers it starts.
struct Startup {
    state: Mutex<StartupState>,
    changed: Condvar,
}

struct StartupState {
    reports: Vec<Option<(Stealers, Option<usize>)>>,
    reported: usize,
    /// `None` until `build` decides; then the shared state, or `None` to abort.
    outcome: Option<Option<Arc<Shared>>>,
}

impl Startup {
    fn new(workers: usize) -> Self {
        Startup {
            state: Mutex::new(StartupState {
                reports: (0..workers).map(|_| None).collect(),
                reported: 0,
                outcome: None,
            }),
            changed: Condvar::new(),
        }
    }

    fn report(&self, index: usize, stealer: Stealers, core: Option<usize>) {
        let mut state = lock(&self.state);
        state.reports[index] = Some((stealer, core));
        state.reported += 1;
        self.changed.notify_all();
    }

    fn wait_for_reports(&self) -> (Vec<Stealers>, Vec<Option<usize>>) {
        let mut state = lock(&self.state);
        while state.reported < state.reports.len() {
            state = wait(&self.changed, state);
        }
        state.reports.iter_mut().filter_map(Option::take).unzip()
    }

    fn publish(&self, outcome: Option<Arc<Shared>>) {
        lock(&self.state).outcome = Some(outcome);
        self.changed.notify_all();
    }

    fn wait_for_shared(&self) -> Option<Arc<Shared>> {
        let mut state = lock(&self.state);
        loop {
            if let Some(outcome) = &state.outcome {
                return outcome.clone();
            }
            state = wait(&self.changed, state);
        }
    }
}
