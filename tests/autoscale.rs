//! Autoscaling: the pure policy (`Autoscaler::observe`, driven with
//! synthetic samples and times) and the pool applying it
//! (`Pool::autoscale_tick`, driven with a synthetic clock; `tick: None`
//! starts no monitor thread, so nothing else decides).
//!
//! No test sleeps: pressure is made by holding workers on a gate and
//! filling the queue; idleness by letting a worker run out of work, with
//! the synthetic clock advanced until the policy's interval has passed.
//! Two tests let the monitor thread drive with real time; they wait for
//! the outcome (polling, with a deadline only a hang reaches), never for a
//! duration.

mod support;

use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use corepool::{AutoscalePolicy, Autoscaler, BuildError, LoadSample, Pool};
use support::{fail_stuck, hold_workers, recv_all, wait_until, Gate, Watchdog, WATCHDOG};

/// `AutoscalePolicy::new(min, max)` adjusted by `adjust` (the struct is
/// non-exhaustive: built by `new`, then fields set).
fn policy(min: usize, max: usize, adjust: impl FnOnce(&mut AutoscalePolicy)) -> AutoscalePolicy {
    let mut policy = AutoscalePolicy::new(min, max);
    adjust(&mut policy);
    policy
}

fn sample(fill: f64, active: usize, idle: usize) -> LoadSample {
    LoadSample { fill, active, idle }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

// ---- The pure policy -------------------------------------------------------

#[test]
fn the_default_policy() {
    let policy = AutoscalePolicy::new(2, 8);
    assert_eq!((policy.min, policy.max), (2, 8));
    assert_eq!(policy.grow_above, 0.8);
    assert_eq!(policy.grow_after, secs(1));
    assert_eq!(policy.shrink_after, secs(10));
    assert_eq!(policy.step, 1);
    assert_eq!(policy.tick, Some(ms(100)));
    let scaler = Autoscaler::new(policy.clone());
    assert_eq!(scaler.policy(), &policy);
}

#[test]
fn growth_needs_pressure_for_the_whole_interval() {
    let mut scaler = Autoscaler::new(AutoscalePolicy::new(1, 4));
    let t0 = Instant::now();
    assert_eq!(
        scaler.observe(t0, sample(0.9, 1, 0)),
        None,
        "pressure starts"
    );
    assert_eq!(scaler.observe(t0 + ms(999), sample(0.9, 1, 0)), None);
    // A dip below grow_above resets the timer.
    assert_eq!(scaler.observe(t0 + ms(999), sample(0.79, 1, 0)), None);
    assert_eq!(scaler.observe(t0 + secs(1), sample(0.9, 1, 0)), None);
    assert_eq!(scaler.observe(t0 + ms(1999), sample(0.9, 1, 0)), None);
    // Exactly grow_after after the new start: grow by one.
    assert_eq!(scaler.observe(t0 + secs(2), sample(0.9, 1, 0)), Some(2));
    // The timer restarts after a decision: the next growth needs another
    // full interval of pressure.
    assert_eq!(scaler.observe(t0 + secs(2), sample(1.0, 2, 0)), None);
    assert_eq!(scaler.observe(t0 + ms(2999), sample(1.0, 2, 0)), None);
    assert_eq!(scaler.observe(t0 + secs(3), sample(1.0, 2, 0)), Some(3));
}

#[test]
fn fill_exactly_at_grow_above_is_pressure() {
    let mut policy = AutoscalePolicy::new(1, 4);
    policy.grow_above = 0.5;
    policy.grow_after = Duration::ZERO;
    let mut scaler = Autoscaler::new(policy);
    let t0 = Instant::now();
    assert_eq!(scaler.observe(t0, sample(0.4999, 1, 0)), None);
    assert_eq!(scaler.observe(t0, sample(0.5, 1, 0)), Some(2));
}

#[test]
fn growth_stops_at_max_and_steps_are_clamped() {
    let mut policy = AutoscalePolicy::new(1, 5);
    policy.step = 3;
    let mut scaler = Autoscaler::new(policy);
    let t0 = Instant::now();
    assert_eq!(scaler.observe(t0, sample(1.0, 1, 0)), None);
    assert_eq!(scaler.observe(t0 + secs(1), sample(1.0, 1, 0)), Some(4));
    assert_eq!(scaler.observe(t0 + secs(1), sample(1.0, 4, 0)), None);
    assert_eq!(
        scaler.observe(t0 + secs(2), sample(1.0, 4, 0)),
        Some(5),
        "a step of 3 from 4 is clamped to max"
    );
    // At max, pressure however long changes nothing.
    for s in 2..100 {
        assert_eq!(scaler.observe(t0 + secs(s), sample(1.0, 5, 0)), None);
    }
}

#[test]
fn shrinking_needs_an_idle_worker_for_the_whole_interval() {
    let mut scaler = Autoscaler::new(AutoscalePolicy::new(1, 4));
    let t0 = Instant::now();
    assert_eq!(
        scaler.observe(t0, sample(0.0, 3, 1)),
        None,
        "idleness starts"
    );
    assert_eq!(scaler.observe(t0 + secs(9), sample(0.0, 3, 2)), None);
    // A sample with no idle worker resets the timer...
    assert_eq!(scaler.observe(t0 + secs(9), sample(0.3, 3, 0)), None);
    assert_eq!(scaler.observe(t0 + secs(10), sample(0.0, 3, 1)), None);
    assert_eq!(scaler.observe(t0 + secs(19), sample(0.0, 3, 1)), None);
    // ... and so does pressure, even with an idle worker.
    assert_eq!(scaler.observe(t0 + secs(19), sample(0.9, 3, 1)), None);
    assert_eq!(scaler.observe(t0 + secs(20), sample(0.0, 3, 1)), None);
    assert_eq!(scaler.observe(t0 + secs(30), sample(0.0, 3, 1)), Some(2));
    // The timer restarts after a decision.
    assert_eq!(scaler.observe(t0 + secs(30), sample(0.0, 2, 1)), None);
    assert_eq!(scaler.observe(t0 + secs(40), sample(0.0, 2, 1)), Some(1));
    // At min, idleness however long changes nothing.
    for s in 40..200 {
        assert_eq!(scaler.observe(t0 + secs(s), sample(0.0, 1, 1)), None);
    }
}

#[test]
fn pressure_wins_over_an_idle_worker() {
    // A parked worker with a full queue (for example while a waker is on
    // its way) is pressure, not idleness.
    let mut policy = AutoscalePolicy::new(1, 4);
    policy.grow_after = Duration::ZERO;
    policy.shrink_after = Duration::ZERO;
    let mut scaler = Autoscaler::new(policy);
    assert_eq!(scaler.observe(Instant::now(), sample(0.95, 2, 1)), Some(3));
}

#[test]
fn shrink_steps_are_clamped_to_min() {
    let mut policy = AutoscalePolicy::new(2, 8);
    policy.step = 4;
    policy.shrink_after = secs(1);
    let mut scaler = Autoscaler::new(policy);
    let t0 = Instant::now();
    assert_eq!(scaler.observe(t0, sample(0.0, 7, 3)), None);
    assert_eq!(scaler.observe(t0 + secs(1), sample(0.0, 7, 3)), Some(3));
    assert_eq!(scaler.observe(t0 + secs(1), sample(0.0, 3, 1)), None);
    assert_eq!(
        scaler.observe(t0 + secs(2), sample(0.0, 3, 1)),
        Some(2),
        "a step of 4 from 3 is clamped to min"
    );
}

#[test]
fn a_count_outside_the_bounds_is_corrected_at_once() {
    let mut scaler = Autoscaler::new(AutoscalePolicy::new(2, 4));
    let t0 = Instant::now();
    assert_eq!(scaler.observe(t0, sample(0.0, 7, 0)), Some(4));
    assert_eq!(scaler.observe(t0, sample(1.0, 1, 0)), Some(2));
    // Correcting resets the timers: pressure that started before counts
    // from scratch.
    assert_eq!(scaler.observe(t0, sample(1.0, 2, 0)), None);
    assert_eq!(scaler.observe(t0 + ms(500), sample(1.0, 9, 0)), Some(4));
    assert_eq!(scaler.observe(t0 + secs(1), sample(1.0, 3, 0)), None);
    assert_eq!(scaler.observe(t0 + secs(2), sample(1.0, 3, 0)), Some(4));
}

#[test]
fn a_clock_that_goes_backwards_decides_nothing() {
    let mut scaler = Autoscaler::new(AutoscalePolicy::new(1, 4));
    let t0 = Instant::now() + secs(100);
    assert_eq!(scaler.observe(t0, sample(1.0, 1, 0)), None);
    assert_eq!(scaler.observe(t0 - secs(50), sample(1.0, 1, 0)), None);
    assert_eq!(scaler.observe(t0 + secs(1), sample(1.0, 1, 0)), Some(2));
}

#[test]
fn invalid_policies_are_refused_by_the_builder() {
    let cases: Vec<(AutoscalePolicy, &str)> = vec![
        (AutoscalePolicy::new(0, 2), "min must be at least 1"),
        (
            AutoscalePolicy::new(3, 2),
            "min (3) is greater than max (2)",
        ),
        (
            policy(1, 2, |p| p.grow_above = 0.0),
            "grow_above must be in (0, 1]",
        ),
        (
            policy(1, 2, |p| p.grow_above = 1.01),
            "grow_above must be in (0, 1]",
        ),
        (
            policy(1, 2, |p| p.grow_above = f64::NAN),
            "grow_above must be in (0, 1]",
        ),
        (policy(1, 2, |p| p.step = 0), "step must be at least 1"),
        (
            policy(1, 2, |p| p.tick = Some(Duration::ZERO)),
            "tick must be longer than zero",
        ),
    ];
    for (policy, why) in cases {
        match Pool::builder()
            .pin_workers(false)
            .autoscale_policy(policy.clone())
            .build()
        {
            Err(BuildError::InvalidAutoscale(message)) => {
                assert!(message.contains(why), "{policy:?}: {message}")
            }
            other => panic!("{policy:?}: expected InvalidAutoscale, got {other:?}"),
        }
    }
}

// ---- The pool applying the policy -----------------------------------------

/// No monitor thread: the test drives `autoscale_tick` itself.
fn manual_policy(min: usize, max: usize) -> AutoscalePolicy {
    policy(min, max, |p| p.tick = None)
}

#[test]
fn a_pool_without_a_policy_never_autoscales() {
    let pool = Pool::builder()
        .workers(2)
        .pin_workers(false)
        .build()
        .unwrap();
    let t0 = Instant::now();
    for s in 0..20 {
        assert_eq!(pool.autoscale_tick(t0 + secs(s)), None);
    }
    assert_eq!(pool.workers(), 2);
}

#[test]
fn a_full_queue_grows_the_pool_one_worker_per_interval_up_to_max() {
    let _watchdog = Watchdog::new("a_full_queue_grows_the_pool_one_worker_per_interval_up_to_max");
    const CAPACITY: usize = 10;
    let pool = Pool::builder()
        .autoscale_policy(manual_policy(1, 3))
        .queue_capacity(CAPACITY)
        .pin_workers(false)
        .build()
        .unwrap();
    assert_eq!((pool.workers(), pool.metrics().max_workers), (1, 3));
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    // Queued tasks report that they started, then wait on the gate too: a
    // reactivated worker takes exactly one and is held by it.
    let (started_tx, started) = mpsc::channel();
    let submit_held = |pool: &Pool| {
        let (gate, started_tx) = (gate.clone(), started_tx.clone());
        pool.submit(move || {
            started_tx.send(()).unwrap();
            gate.wait();
        })
        .unwrap();
    };
    for _ in 0..7 {
        submit_held(&pool);
    }
    let t0 = Instant::now();
    // 70% full: no pressure, however long.
    assert_eq!(pool.autoscale_tick(t0), None);
    assert_eq!(pool.autoscale_tick(t0 + secs(5)), None);
    submit_held(&pool); // 80%: pressure from now on
    assert_eq!(pool.metrics().fill_ratio, 0.8);
    let t1 = t0 + secs(10);
    assert_eq!(pool.autoscale_tick(t1), None, "pressure starts");
    assert_eq!(pool.autoscale_tick(t1 + ms(999)), None);
    assert_eq!(
        pool.autoscale_tick(t1 + secs(1)),
        Some(2),
        "lasted grow_after"
    );
    assert_eq!((pool.workers(), pool.metrics().workers), (2, 2));

    // The new worker takes one queued task (and is held by it): 70% again.
    let (pool, _) = recv_all(pool, &started, 1, "the new worker runs a task");
    assert_eq!(pool.queued(), 7);
    let t2 = t1 + secs(2);
    assert_eq!(pool.autoscale_tick(t2), None, "the timer restarted");
    assert_eq!(pool.autoscale_tick(t2 + secs(5)), None, "70%: no pressure");
    submit_held(&pool);
    let t3 = t2 + secs(6);
    assert_eq!(pool.autoscale_tick(t3), None);
    assert_eq!(pool.autoscale_tick(t3 + secs(1)), Some(3));
    assert_eq!(pool.workers(), 3);
    let (pool, _) = recv_all(pool, &started, 1, "the third worker runs a task");

    // At max: full pressure changes nothing.
    while pool.queued() < CAPACITY {
        submit_held(&pool);
    }
    let t4 = t3 + secs(2);
    for s in 0..30 {
        assert_eq!(pool.autoscale_tick(t4 + secs(s)), None);
    }
    assert_eq!(pool.workers(), 3);
    gate.open();
    let handle = pool.handle();
    drop(pool);
    let m = handle.metrics();
    assert_eq!(m.executed, 1 + CAPACITY as u64 + 2);
    assert!(
        m.per_worker.iter().all(|w| w.executed >= 1),
        "the added workers ran tasks: {:?}",
        m.per_worker
    );
}

#[test]
fn an_idle_worker_is_retired_after_the_interval_and_never_below_min() {
    let _watchdog =
        Watchdog::new("an_idle_worker_is_retired_after_the_interval_and_never_below_min");
    let pool = Pool::builder()
        .workers(2)
        .autoscale_policy(manual_policy(1, 2))
        .queue_capacity(8)
        .pin_workers(false)
        .thread_name("idle")
        .build()
        .unwrap();
    // Hold worker 1 in a task, let worker 0 run out of work: the barrier
    // puts one task on each; only the one on worker 1 waits on the gate.
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    let both = Arc::new(Barrier::new(3));
    for _ in 0..2 {
        let (both, gate) = (both.clone(), gate.clone());
        pool.submit(move || {
            both.wait();
            if thread::current().name() == Some("idle-1") {
                gate.wait();
            }
        })
        .unwrap();
    }
    both.wait();

    // Worker 0 parks by itself, at some moment; advance the synthetic clock
    // a second per tick until the policy has seen it idle for the whole
    // shrink_after (10 s): at least 11 ticks.
    let t0 = Instant::now();
    let deadline = Instant::now() + WATCHDOG;
    let mut ticks = 0u64;
    let decision = loop {
        if let Some(workers) = pool.autoscale_tick(t0 + secs(ticks)) {
            break workers;
        }
        ticks += 1;
        if Instant::now() > deadline {
            fail_stuck(pool, "an idle worker was never retired");
        }
        thread::yield_now();
    };
    assert_eq!(decision, 1);
    assert!(ticks >= 10, "decided after {ticks} synthetic seconds");
    assert_eq!(pool.workers(), 1);
    gate.open();

    // At min: however long idle, no further change.
    for s in 0..60 {
        assert_eq!(pool.autoscale_tick(t0 + secs(ticks + 1 + s)), None);
    }
    // The remaining worker still runs everything.
    let (tx, rx) = mpsc::channel();
    for _ in 0..50 {
        let tx = tx.clone();
        pool.submit(move || tx.send(thread::current().name().map(String::from)).unwrap())
            .unwrap();
    }
    let (pool, names) = recv_all(pool, &rx, 50, "tasks after the shrink");
    assert!(
        names.iter().all(|n| n.as_deref() == Some("idle-0")),
        "only the active worker runs tasks: {names:?}"
    );
    drop(pool);
}

#[test]
fn a_manual_resize_outside_the_bounds_is_corrected_on_the_next_tick() {
    let _watchdog =
        Watchdog::new("a_manual_resize_outside_the_bounds_is_corrected_on_the_next_tick");
    let pool = Pool::builder()
        .autoscale_policy(manual_policy(2, 4))
        .max_workers(6)
        .pin_workers(false)
        .build()
        .unwrap();
    assert_eq!((pool.workers(), pool.metrics().max_workers), (2, 6));
    let t0 = Instant::now();
    pool.set_workers(6).unwrap();
    assert_eq!(pool.autoscale_tick(t0), Some(4));
    assert_eq!(pool.workers(), 4);
    pool.set_workers(1).unwrap();
    assert_eq!(pool.autoscale_tick(t0), Some(2));
    assert_eq!(pool.workers(), 2);
    pool.set_workers(3).unwrap();
    assert_eq!(pool.autoscale_tick(t0), None, "within bounds: left alone");
    assert_eq!(pool.workers(), 3);
}

#[test]
fn a_closed_pool_does_not_autoscale() {
    let _watchdog = Watchdog::new("a_closed_pool_does_not_autoscale");
    let pool = Pool::builder()
        .autoscale_policy(manual_policy(1, 3))
        .queue_capacity(4)
        .pin_workers(false)
        .build()
        .unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    for _ in 0..4 {
        pool.submit(|| {}).unwrap();
    }
    let timed_out = pool
        .shutdown_timeout(Duration::ZERO)
        .expect_err("a held worker cannot have exited");
    let pool = timed_out.into_pool();
    let t0 = Instant::now();
    for s in 0..10 {
        assert_eq!(
            pool.autoscale_tick(t0 + secs(s)),
            None,
            "closed: full but no growth"
        );
    }
    assert_eq!(pool.workers(), 1);
    gate.open();
    assert_eq!(pool.shutdown().executed, 5);
}

// ---- The monitor thread driving it with real time --------------------------

#[test]
fn the_monitor_thread_grows_a_pool_under_pressure() {
    let _watchdog = Watchdog::new("the_monitor_thread_grows_a_pool_under_pressure");
    let scaling = policy(1, 2, |p| {
        p.tick = Some(ms(2));
        p.grow_after = ms(10);
    });
    let pool = Pool::builder()
        .autoscale_policy(scaling)
        .queue_capacity(10)
        .pin_workers(false)
        .build()
        .unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    for _ in 0..9 {
        pool.submit(|| {}).unwrap();
    }
    // The pressure lasts until a second worker drains the queue, so the
    // monitor must grow the pool.
    wait_until("the monitor adds a worker", || pool.workers() == 2);
    gate.open();
    let handle = pool.handle();
    drop(pool);
    assert_eq!(handle.metrics().executed, 10);
}

#[test]
fn the_monitor_thread_shrinks_an_idle_pool_to_min() {
    let _watchdog = Watchdog::new("the_monitor_thread_shrinks_an_idle_pool_to_min");
    let scaling = policy(1, 3, |p| {
        p.tick = Some(ms(2));
        p.shrink_after = ms(10);
    });
    let pool = Pool::builder()
        .workers(3)
        .autoscale_policy(scaling)
        .pin_workers(false)
        .build()
        .unwrap();
    wait_until("the monitor retires idle workers", || pool.workers() == 1);
    // Still serving.
    let (tx, rx) = mpsc::channel();
    for _ in 0..10 {
        let tx = tx.clone();
        pool.submit(move || tx.send(()).unwrap()).unwrap();
    }
    let (pool, _) = recv_all(pool, &rx, 10, "tasks after shrinking");
    assert!(pool.workers() >= 1);
}
