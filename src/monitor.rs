//! The pool's monitor thread: queue-fill alerts and the autoscaler, both
//! kept off the hot path.
//!
//! # Fill alerts
//!
//! The bound's counter moves one step at a time (one compare-and-swap per
//! acquire, one subtraction per release), so it passes through every value.
//! `admission.rs` compares the new count with two precomputed marks, the
//! alert threshold and the bottom of its hysteresis band, and only when the
//! count lands exactly on one of them does it poke the monitor (at most one
//! poke in flight). The monitor then reads the fill and runs the edge
//! state machine: `Above` once when fill reaches the threshold, `Below`
//! once when it falls to the bottom of the band. The user's callback runs
//! on the monitor thread, never on a producer's or a worker's.
//!
//! # Autoscaling
//!
//! With a tick interval set, the monitor samples the pool every tick and
//! applies what the [`Autoscaler`] decides.

use crate::autoscale::Autoscaler;
use crate::registry::{call_guarded, Shared};
use crate::sync::{lock, thread, Arc, AtomicBool, Instant, Mutex, Ordering, Parker};

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

/// Width of the hysteresis band under the threshold, as a fill ratio.
pub const FILL_HYSTERESIS: f64 = 0.1;

/// The marks the bound's counter is compared with; shared with
/// `admission.rs`.
pub(crate) struct FillTrigger {
    /// Count at which fill reaches the threshold.
    pub(crate) high: usize,
    /// Count at the bottom of the band.
    pub(crate) low: usize,
    poked: AtomicBool,
    monitor: Arc<Parker>,
}

impl FillTrigger {
    pub(crate) fn new(threshold: f64, capacity: usize, monitor: Arc<Parker>) -> Self {
        let high = ((threshold * capacity as f64).ceil() as usize).clamp(1, capacity);
        let low_ratio = (threshold - FILL_HYSTERESIS).max(0.0);
        let low = ((low_ratio * capacity as f64).floor() as usize).min(high - 1);
        FillTrigger {
            high,
            low,
            poked: AtomicBool::new(false),
            monitor,
        }
    }

    /// The counter just landed on a mark: wake the monitor, unless a poke
    /// is already on its way.
    pub(crate) fn poke(&self) {
        if !self.poked.swap(true, Ordering::AcqRel) {
            self.monitor.unpark();
        }
    }

    fn take_poke(&self) -> bool {
        self.poked.swap(false, Ordering::AcqRel)
    }
}

/// What the monitor thread owns.
pub(crate) struct Monitor {
    pub(crate) parker: Arc<Parker>,
    pub(crate) fill_callback: Option<Box<FillCallback>>,
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
    let mut next_tick = tick.and_then(|tick| Instant::now().checked_add(tick));
    loop {
        match next_tick {
            Some(deadline) => {
                monitor.parker.park_until(deadline);
            }
            None => monitor.parker.park(),
        }
        if shared.admission.is_closed() {
            return;
        }
        if let (Some(callback), Some(trigger)) =
            (&monitor.fill_callback, &shared.admission.fill_trigger)
        {
            if trigger.take_poke() {
                let queued = shared.admission.admitted();
                let fill = queued as f64 / shared.admission.capacity() as f64;
                let event = if !above && queued >= trigger.high {
                    above = true;
                    Some(FillEvent::Above { fill })
                } else if above && queued <= trigger.low {
                    above = false;
                    Some(FillEvent::Below { fill })
                } else {
                    None
                };
                if let Some(event) = event {
                    // A panicking callback (even one whose payload panics
                    // when dropped) must not stop the monitor.
                    call_guarded(|| callback(event));
                }
            }
        }
        if let (Some(scaler), Some(tick)) = (&monitor.autoscaler, tick) {
            let now = Instant::now();
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
