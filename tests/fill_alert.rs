//! Queue-fill alerts (`Builder::on_queue_fill`): edge-triggered, once per
//! crossing, with a hysteresis band of `FILL_HYSTERESIS` under the
//! threshold, delivered on the pool's monitor thread.
//!
//! The queue is moved one task at a time: workers are held on a gate, so
//! the depth is exactly what the test submitted; to let it fall by one,
//! a worker takes one "stepped" task, which reports that it started (its
//! slot is freed before it runs) and then waits for a permit.
//!
//! "Exactly once" is checked deterministically at the end: the callback's
//! sender lives on the monitor thread, which the pool's drop joins, so
//! after the drop the channel holds every event ever delivered, and then
//! disconnects. (Checks in between with a short `recv_timeout` can only
//! fail on an event that should not exist.)

mod support;

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corepool::{FillEvent, Pool, FILL_HYSTERESIS};
use support::{hold_workers, wait_until, Gate, Watchdog, WATCHDOG};

/// What the callback saw: the event and the thread it ran on.
type Seen = (FillEvent, Option<String>);

fn alerting_pool(workers: usize, capacity: usize, threshold: f64) -> (Pool, Receiver<Seen>) {
    let (tx, rx) = mpsc::channel::<Seen>();
    let pool = Pool::builder()
        .workers(workers)
        .queue_capacity(capacity)
        .pin_workers(false)
        .on_queue_fill(threshold, move |event| {
            let thread = std::thread::current().name().map(String::from);
            tx.send((event, thread)).unwrap();
        })
        .build()
        .unwrap();
    (pool, rx)
}

fn next_event(rx: &Receiver<Seen>, what: &str) -> FillEvent {
    let (event, thread) = rx
        .recv_timeout(WATCHDOG)
        .unwrap_or_else(|err| panic!("{what}: no event within {WATCHDOG:?} ({err:?})"));
    assert_eq!(
        thread.as_deref(),
        Some("corepool-monitor"),
        "the callback runs on the monitor thread"
    );
    event
}

/// A short look for an event that must not come. Can only fail when one
/// does; the final count after the drop is the deterministic check.
fn assert_no_event_yet(rx: &Receiver<Seen>, what: &str) {
    match rx.recv_timeout(Duration::from_millis(50)) {
        Err(RecvTimeoutError::Timeout) => {}
        other => panic!("{what}: unexpected {other:?}"),
    }
}

/// After the pool is dropped (monitor joined, callback dropped): every
/// event that was ever delivered.
fn all_remaining(rx: &Receiver<Seen>) -> Vec<FillEvent> {
    let mut events = Vec::new();
    loop {
        match rx.recv_timeout(WATCHDOG) {
            Ok((event, _)) => events.push(event),
            Err(RecvTimeoutError::Disconnected) => return events,
            Err(RecvTimeoutError::Timeout) => panic!("the callback outlived the pool"),
        }
    }
}

/// Tasks that, once started, report it and wait for a permit: the queue
/// then falls by exactly one per task a worker takes.
struct Stepper {
    started_tx: mpsc::Sender<()>,
    started: Receiver<()>,
    permits_tx: mpsc::Sender<()>,
    permits: Arc<Mutex<Receiver<()>>>,
}

impl Stepper {
    fn new() -> Stepper {
        let (started_tx, started) = mpsc::channel();
        let (permits_tx, permits) = mpsc::channel();
        Stepper {
            started_tx,
            started,
            permits_tx,
            permits: Arc::new(Mutex::new(permits)),
        }
    }

    fn submit(&self, pool: &Pool) {
        let (started, permits) = (self.started_tx.clone(), self.permits.clone());
        pool.submit(move || {
            started.send(()).unwrap();
            // Err: the test is over (its permits sender is gone).
            let _ = permits.lock().unwrap().recv();
        })
        .unwrap();
    }

    /// Waits until one more stepped task has started.
    fn one_started(&self) {
        self.started
            .recv_timeout(WATCHDOG)
            .expect("a worker takes the next stepped task");
    }

    /// Lets one running stepped task finish.
    fn release_one(&self) {
        self.permits_tx.send(()).unwrap();
    }
}

#[test]
fn one_above_when_the_threshold_is_reached_one_below_when_drained() {
    let _watchdog = Watchdog::new("one_above_when_the_threshold_is_reached_one_below_when_drained");
    let (pool, rx) = alerting_pool(2, 10, 0.7);
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    assert_eq!(pool.queued(), 0);

    for _ in 0..6 {
        pool.submit(|| {}).unwrap();
    }
    assert_no_event_yet(&rx, "60% is below the threshold");
    pool.submit(|| {}).unwrap(); // 7 of 10: 70%
    match next_event(&rx, "the queue reached 70%") {
        FillEvent::Above { fill } => assert!(fill >= 0.7, "{fill}"),
        other => panic!("expected Above, got {other:?}"),
    }
    for _ in 0..3 {
        pool.submit(|| {}).unwrap(); // up to 100%
    }
    assert_eq!(pool.metrics().fill_ratio, 1.0);
    assert_no_event_yet(&rx, "still above: no second Above");

    gate.open(); // the queue drains to empty
    match next_event(&rx, "the queue drained") {
        FillEvent::Below { fill } => assert!(fill <= 0.7 - FILL_HYSTERESIS + 1e-9, "{fill}"),
        other => panic!("expected Below, got {other:?}"),
    }
    drop(pool);
    assert_eq!(all_remaining(&rx), [], "exactly one Above and one Below");
}

#[test]
fn hysteresis_no_event_inside_the_band() {
    // Capacity 20, threshold 0.7: Above at 14 queued, Below at 12 (0.6).
    let _watchdog = Watchdog::new("hysteresis_no_event_inside_the_band");
    let (pool, rx) = alerting_pool(1, 20, 0.7);
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    let stepper = Stepper::new();
    for _ in 0..13 {
        stepper.submit(&pool);
    }
    assert_no_event_yet(&rx, "65%");
    stepper.submit(&pool); // 14: 70%
    assert!(matches!(next_event(&rx, "70%"), FillEvent::Above { .. }));

    // The worker takes one stepped task: 13 queued, inside the band.
    gate.open();
    stepper.one_started();
    assert_eq!(pool.queued(), 13);
    assert_no_event_yet(&rx, "65% after Above: inside the band");
    // Back to the threshold: already above, no second Above.
    stepper.submit(&pool);
    assert_eq!(pool.queued(), 14);
    assert_no_event_yet(&rx, "70% again without leaving the band");
    // Down to 13, then 12 = 60%, the bottom of the band: Below.
    stepper.release_one();
    stepper.one_started();
    assert_eq!(pool.queued(), 13);
    assert_no_event_yet(&rx, "65% on the way down");
    stepper.release_one();
    stepper.one_started();
    assert_eq!(pool.queued(), 12);
    match next_event(&rx, "60%") {
        FillEvent::Below { fill } => assert!(fill <= 0.6 + 1e-9, "{fill}"),
        other => panic!("expected Below, got {other:?}"),
    }
    // Back up to 13 (inside the band, from below): no Above.
    stepper.submit(&pool);
    assert_eq!(pool.queued(), 13);
    assert_no_event_yet(&rx, "65% from below");
    // And to 14: a new crossing, a new Above.
    stepper.submit(&pool);
    assert!(matches!(
        next_event(&rx, "70% again"),
        FillEvent::Above { .. }
    ));
    // Let everything finish: one final Below on the way down.
    for _ in 0..16 {
        stepper.release_one();
    }
    assert!(matches!(
        next_event(&rx, "drained"),
        FillEvent::Below { .. }
    ));
    drop(pool);
    assert_eq!(all_remaining(&rx), []);
}

#[test]
fn every_crossing_is_reported_once_over_many_cycles() {
    let _watchdog = Watchdog::new("every_crossing_is_reported_once_over_many_cycles");
    const CYCLES: usize = 30;
    let (pool, rx) = alerting_pool(2, 10, 0.7);
    let mut seen = Vec::new();
    for cycle in 0..CYCLES {
        let gate = Gate::new();
        let open_on_failure = gate.open_on_drop();
        hold_workers(&pool, &gate);
        for _ in 0..10 {
            pool.submit(|| {}).unwrap();
        }
        seen.push(next_event(&rx, &format!("cycle {cycle}: full")));
        gate.open();
        seen.push(next_event(&rx, &format!("cycle {cycle}: drained")));
        // Below comes at 60%: let the rest start before the next cycle, or
        // its submissions would race the drain and really cross again.
        wait_until("the queue empties", || pool.queued() == 0);
        drop(open_on_failure);
    }
    drop(pool);
    seen.extend(all_remaining(&rx));
    assert_eq!(seen.len(), 2 * CYCLES, "{seen:?}");
    for (i, event) in seen.iter().enumerate() {
        match (i % 2, event) {
            (0, FillEvent::Above { fill }) => assert!(*fill >= 0.7),
            (1, FillEvent::Below { fill }) => assert!(*fill <= 0.6 + 1e-9),
            _ => panic!("event {i} out of order: {seen:?}"),
        }
    }
}

#[test]
fn threshold_one_alerts_when_full_and_below_one_task_later() {
    let _watchdog = Watchdog::new("threshold_one_alerts_when_full_and_below_one_task_later");
    let (pool, rx) = alerting_pool(1, 10, 1.0);
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    let stepper = Stepper::new();
    for _ in 0..9 {
        stepper.submit(&pool);
    }
    assert_no_event_yet(&rx, "90%");
    stepper.submit(&pool);
    assert!(matches!(
        next_event(&rx, "full"),
        FillEvent::Above { fill } if fill == 1.0
    ));
    gate.open();
    stepper.one_started(); // 9 queued: 90%, the bottom of the band
    match next_event(&rx, "90%") {
        FillEvent::Below { fill } => assert!(fill <= 0.9 + 1e-9, "{fill}"),
        other => panic!("expected Below, got {other:?}"),
    }
    for _ in 0..10 {
        stepper.release_one();
    }
    drop(pool);
    assert_eq!(all_remaining(&rx), []);
}

#[test]
fn a_panicking_callback_does_not_stop_the_alerts() {
    let _watchdog = Watchdog::new("a_panicking_callback_does_not_stop_the_alerts");
    let (tx, rx) = mpsc::channel::<FillEvent>();
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(4)
        .pin_workers(false)
        .on_queue_fill(0.5, move |event| {
            tx.send(event).unwrap();
            if matches!(event, FillEvent::Above { .. }) {
                panic!("an expected panic in a fill callback");
            }
        })
        .build()
        .unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    for _ in 0..4 {
        pool.submit(|| {}).unwrap();
    }
    let above = rx.recv_timeout(WATCHDOG).expect("Above");
    assert!(matches!(above, FillEvent::Above { .. }));
    gate.open();
    let below = rx
        .recv_timeout(WATCHDOG)
        .expect("Below, after the callback panicked on Above");
    assert!(matches!(below, FillEvent::Below { .. }));
    let handle = pool.handle();
    drop(pool);
    assert_eq!(handle.metrics().executed, 5, "the pool itself carried on");
}

#[test]
fn internal_submissions_do_not_count_toward_the_fill() {
    let _watchdog = Watchdog::new("internal_submissions_do_not_count_toward_the_fill");
    let (pool, rx) = alerting_pool(1, 10, 0.5);
    let handle = pool.handle();
    let (done_tx, done) = mpsc::channel();
    // One external task spawns 100 children onto its worker's own deque:
    // the bound (and so the fill) never sees them.
    pool.submit(move || {
        for _ in 0..100 {
            let done_tx = done_tx.clone();
            handle.submit(move || done_tx.send(()).unwrap()).unwrap();
        }
    })
    .unwrap();
    for _ in 0..100 {
        done.recv_timeout(WATCHDOG).expect("every child runs");
    }
    drop(pool);
    assert_eq!(all_remaining(&rx), [], "no alert: the queue never filled");
}
