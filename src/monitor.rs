//! The pool's monitor thread: queue-fill alerts and the autoscaler, both
//! kept off the hot path.
//!
//! # Fill alerts
//!
//! Every [`FILL_SAMPLE_INTERVAL`] the monitor reads the bound's count of
//! queued tasks (one load; the bound's code knows nothing of alerts) and
//! runs the edge state machine: `Above` once when the count reaches the
//! threshold's mark, `Below` once when it falls to the bottom of the
//! hysteresis band. The user's callback runs on the monitor thread, never
//! on a producer's or a worker's. A sampler sees only what lasts: a
//! crossing and its way back within one interval may go unreported, and
//! an alert comes up to one interval late.
//!
//! # Autoscaling
//!
//! With a tick interval set, the monitor samples the pool every tick and
//! applies what the [`Autoscaler`] decides.

use crate::autoscale::Autoscaler;
use crate::registry::{call_guarded, Shared};
use std::time::Duration;

use crate::sync::{lock, thread, Arc, Instant, Mutex, Parker};

/// A queue-fill alert, passed to the callback of
/// [`Builder::on_queue_fill`](crate::Builder::on_queue_fill).
///
/// ```
/// let event = corepool::FillEvent::Above { fill: 0.75 };
/// assert!(matches!(event, corepool::FillEvent::Above { .. }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FillEvent {
    /// Fill reached the threshold (it was below the band before).
    Above {
        /// The fill when the monitor looked.
        fill: f64,
    },
    /// Fill fell to the bottom of the hysteresis band.
    Below {
        /// The fill when the monitor looked.
        fill: f64,
    },
}

pub(crate) type FillCallback = dyn Fn(FillEvent) + Send + Sync + 'static;

/// Width of the hysteresis band under the threshold, as a fill ratio: an
/// alert at 0.7 fires [`FillEvent::Above`] when the fill reaches 0.7, and
/// [`FillEvent::Below`] once it has fallen to 0.6.
///
/// ```
/// let threshold = 0.7;
/// let rearmed_at = threshold - corepool::FILL_HYSTERESIS;
/// assert!((rearmed_at - 0.6).abs() < 1e-9);
/// ```
pub const FILL_HYSTERESIS: f64 = 0.1;

/// How often the monitor samples the queue's fill when
/// [`Builder::on_queue_fill`](crate::Builder::on_queue_fill) is set. An
/// alert is for operators and autoscalers, for whom 10 ms late is on
/// time; the sampling costs an idle pool about 0.3 % of a core (1 ms cost
/// 1.8 %: `docs/monitoring.md`, "Fill alerts").
///
/// ```
/// assert_eq!(corepool::FILL_SAMPLE_INTERVAL, std::time::Duration::from_millis(10));
/// ```
pub const FILL_SAMPLE_INTERVAL: Duration = Duration::from_millis(10);

/// A fill alert: the two marks on the count of queued tasks, and the
/// user's callback.
pub(crate) struct FillAlert {
    /// Count at which fill reaches the threshold.
    high: usize,
    /// Count at the bottom of the band.
    low: usize,
    callback: Box<FillCallback>,
}

impl FillAlert {
    pub(crate) fn new(threshold: f64, capacity: usize, callback: Box<FillCallback>) -> Self {
        let high = ((threshold * capacity as f64).ceil() as usize).clamp(1, capacity);
        let low_ratio = (threshold - FILL_HYSTERESIS).max(0.0);
        let low = ((low_ratio * capacity as f64).floor() as usize).min(high - 1);
        FillAlert {
            high,
            low,
            callback,
        }
    }
}

/// What the monitor thread owns.
pub(crate) struct Monitor {
    pub(crate) parker: Arc<Parker>,
    pub(crate) fill_alert: Option<FillAlert>,
    pub(crate) autoscaler: Option<Arc<Mutex<Autoscaler>>>,
}

/// Starts the monitor thread. It exits once the pool is closed.
pub(crate) fn start(
    shared: Arc<Shared>,
    monitor: Monitor,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("corepool-monitor".to_owned())
        .spawn(move || run(&shared, monitor))
}

fn run(shared: &Shared, monitor: Monitor) {
    let tick = monitor
        .autoscaler
        .as_ref()
        .and_then(|scaler| lock(scaler).policy().tick);
    let mut above = false;
    let now = Instant::now();
    let mut next_tick = tick.and_then(|tick| now.checked_add(tick));
    let mut next_sample = monitor
        .fill_alert
        .as_ref()
        .and_then(|_| now.checked_add(FILL_SAMPLE_INTERVAL));
    loop {
        match next_tick.into_iter().chain(next_sample).min() {
            Some(deadline) => {
                monitor.parker.park_until(deadline);
            }
            None => monitor.parker.park(),
        }
        if shared.admission.is_closed() {
            return;
        }
        let now = Instant::now();
        if let Some(alert) = &monitor.fill_alert {
            if next_sample.is_some_and(|deadline| now >= deadline) {
                let queued = shared.admission.admitted();
                let fill = queued as f64 / shared.admission.capacity() as f64;
                let event = if !above && queued >= alert.high {
                    above = true;
                    Some(FillEvent::Above { fill })
                } else if above && queued <= alert.low {
                    above = false;
                    Some(FillEvent::Below { fill })
                } else {
                    None
                };
                if let Some(event) = event {
                    // A panicking callback (even one whose payload panics
                    // when dropped) must not stop the monitor.
                    call_guarded(|| (alert.callback)(event));
                }
                next_sample = now.checked_add(FILL_SAMPLE_INTERVAL);
            }
        }
        if let (Some(scaler), Some(tick)) = (&monitor.autoscaler, tick) {
            if next_tick.is_some_and(|deadline| now >= deadline) {
                // Nor a panic while deciding (the policy is the user's).
                call_guarded(|| {
                    shared.autoscale_step(&mut lock(scaler), now);
                });
                next_tick = now.checked_add(tick);
            }
        }
    }
}
