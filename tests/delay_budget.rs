//! The queue-delay budget (`Builder::queue_delay_budget`): `try_submit` and
//! `try_spawn` refuse (`Full`, closure handed back) a task whose expected
//! wait exceeds the budget although the count bound has room; blocking
//! calls and submissions from inside the pool are never refused by it.
//!
//! Every verdict here is guaranteed by construction, not by timing: the
//! one task the estimator observes sleeps `OBSERVED` (a lower bound on its
//! cost, whatever the machine) and is followed back to back by a task
//! that holds the pool's one worker, so nothing else starts; one queued
//! task is then expected to wait at least `OBSERVED`, twenty times the
//! `BUDGET`. (One worker: with two, the held task could be stolen after
//! the slow one's worker ran dry, and an interval that ends in a search
//! is not a sample.)

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use corepool::{BuildError, Pool};
use support::{hold_workers, Gate, Watchdog, WATCHDOG};

const WORKERS: usize = 1;
/// The default capacity (one worker): the size users get.
const CAPACITY: usize = corepool::DEFAULT_CAPACITY_PER_WORKER * WORKERS;
const BUDGET: Duration = Duration::from_millis(1);
/// The cost of the one task the estimator observes (work inside a task,
/// not synchronization): at least `20 * BUDGET`.
const OBSERVED: Duration = Duration::from_millis(20);

fn pool(budget: Option<Duration>) -> Pool {
    let mut builder = Pool::builder()
        .workers(WORKERS)
        .pin_workers(false)
        // Panicking tasks below: keep the output clean.
        .panic_handler(|_| {});
    if let Some(budget) = budget {
        builder = builder.queue_delay_budget(budget);
    }
    builder.build().expect("build")
}

/// Runs one task that costs at least `OBSERVED` (with `panic`, panicking
/// after its work) and, back to back after it on the worker, `held`;
/// returns once `held` has started. The slow task waits until `held` is
/// queued behind it, so the worker finds `held` at once: the interval
/// from one start to the other (at least `OBSERVED`, so published at
/// once) is the estimator's sample, taken before `held` runs.
fn observe_then_run(pool: &Pool, panic: bool, held: impl FnOnce() + Send + 'static) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let slow = pool
        .spawn(move || {
            let _ = go_rx.recv();
            thread::sleep(OBSERVED);
            if panic {
                panic!("a slow task that panics");
            }
        })
        .expect("the pool is running");
    let entered = Arc::new(Barrier::new(2));
    let entered_in_task = entered.clone();
    pool.submit(move || {
        entered_in_task.wait();
        held();
    })
    .expect("the pool is running");
    go_tx.send(()).expect("the slow task listens");
    entered.wait();
    assert_eq!(slow.join().is_err(), panic);
}

/// [`observe_then_run`] with a task that holds the worker at `gate`.
fn observe_then_hold(pool: &Pool, gate: &Arc<Gate>, panic: bool) {
    let gate = gate.clone();
    observe_then_run(pool, panic, move || gate.wait());
}

/// A closure that counts its runs, to check that a refused one comes back
/// intact (calling it must run the original).
fn counting(runs: &Arc<AtomicUsize>) -> impl FnOnce() + Send + 'static {
    let runs = runs.clone();
    move || {
        runs.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn try_submit_over_budget_is_refused_full_with_the_closure_back() {
    let _watchdog = Watchdog::new("try_submit_over_budget_is_refused_full_with_the_closure_back");
    let pool = pool(Some(BUDGET));
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    observe_then_hold(&pool, &gate, false);
    let expected = pool.metrics().expected_queue_delay;
    assert_eq!(expected, Some(Duration::ZERO), "nothing queued yet");

    let runs = Arc::new(AtomicUsize::new(0));
    // Nothing queued: expected wait zero, admitted.
    pool.try_submit(counting(&runs))
        .expect("an empty queue is within any budget");
    assert_eq!(pool.queued(), 1);

    // One queued ahead: expected wait >= OBSERVED > BUDGET.
    let err = pool
        .try_submit(counting(&runs))
        .expect_err("over the budget");
    assert!(err.is_full(), "the budget refuses with Full: {err:?}");
    assert!(pool.queued() < pool.capacity(), "the count bound has room");
    let handed_back = err.into_inner();
    handed_back();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the closure came back intact"
    );

    let err = pool.handle().try_spawn(|| 42).expect_err("over the budget");
    assert!(err.is_full());
    assert_eq!(err.into_inner()(), 42);

    let err = pool.try_reserve().expect_err("over the budget");
    assert!(err.is_full(), "try_reserve is refused by the budget too");
    // A blocking reservation is not; its slot comes back when dropped.
    drop(pool.reserve().expect("reserve is not refused"));
    assert_eq!(pool.queued(), 1);

    let m = pool.metrics();
    assert_eq!(m.rejected_budget, 3);
    assert_eq!(m.rejected_full, 0, "budget refusals are counted apart");
    let expected = m.expected_queue_delay.expect("a task was observed");
    assert!(expected > BUDGET, "{expected:?}");
    assert_eq!(pool.handle().expected_queue_delay(), Some(expected));

    // Blocking calls never consult the budget.
    pool.submit(counting(&runs)).expect("submit is not refused");
    pool.submit_timeout(counting(&runs), WATCHDOG)
        .expect("submit_timeout is not refused");
    let spawned = pool.spawn(|| 7).expect("spawn is not refused");
    assert_eq!(pool.queued(), 4);

    // Drained: admitted again.
    gate.open();
    assert_eq!(spawned.join().expect("ran"), 7);
    pool.wait_idle();
    assert_eq!(pool.queued(), 0);
    pool.try_submit(counting(&runs))
        .expect("an empty queue is within the budget again");
    pool.wait_idle();
    pool.handle()
        .try_spawn(|| ())
        .expect("try_spawn too")
        .join()
        .expect("ran");
    pool.wait_idle();
    assert_eq!(runs.load(Ordering::SeqCst), 5);
    assert_eq!(pool.metrics().rejected_budget, 3);
}

#[test]
fn without_a_budget_the_same_sequence_is_accepted() {
    let _watchdog = Watchdog::new("without_a_budget_the_same_sequence_is_accepted");
    let pool = pool(None);
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    observe_then_hold(&pool, &gate, false);
    for _ in 0..CAPACITY {
        pool.try_submit(|| {}).expect("room in the count bound");
    }
    let err = pool.try_submit(|| {}).expect_err("the count bound is full");
    assert!(err.is_full());
    let m = pool.metrics();
    assert_eq!(m.rejected_full, 1);
    assert_eq!(m.rejected_budget, 0);
    assert_eq!(m.expected_queue_delay, None, "no budget, no estimate");
}

#[test]
fn an_absurd_budget_never_refuses_and_the_count_bound_still_holds() {
    let _watchdog = Watchdog::new("an_absurd_budget_never_refuses");
    let pool = pool(Some(Duration::MAX));
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    observe_then_hold(&pool, &gate, false);
    for _ in 0..CAPACITY {
        pool.try_submit(|| {}).expect("within u64::MAX ns");
    }
    assert!(pool.try_submit(|| {}).expect_err("bound").is_full());
    let m = pool.metrics();
    assert_eq!((m.rejected_full, m.rejected_budget), (1, 0));
    assert!(m.expected_queue_delay.is_some_and(|d| d >= OBSERVED));
}

#[test]
fn a_zero_budget_is_a_typed_build_error() {
    let err = Pool::builder()
        .workers(1)
        .queue_delay_budget(Duration::ZERO)
        .build()
        .expect_err("zero budget");
    assert!(matches!(err, BuildError::ZeroDelayBudget), "{err:?}");
    assert!(err.to_string().contains("queue_delay_budget(0)"), "{err}");
    // The smallest non-zero budget is accepted.
    Pool::builder()
        .workers(1)
        .queue_delay_budget(Duration::from_nanos(1))
        .build()
        .expect("1 ns is a budget");
}

#[test]
fn cold_start_admits_up_to_the_count_bound() {
    let _watchdog = Watchdog::new("cold_start_admits_up_to_the_count_bound");
    // A budget as small as it gets, but no task has finished an interval:
    // the estimator knows nothing, and admits.
    let pool = pool(Some(Duration::from_nanos(1)));
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    hold_workers(&pool, &gate);
    assert_eq!(pool.metrics().expected_queue_delay, None);
    for _ in 0..CAPACITY {
        pool.try_submit(|| {}).expect("nothing observed: admitted");
    }
    assert!(pool.try_submit(|| {}).expect_err("bound").is_full());
    let m = pool.metrics();
    assert_eq!((m.rejected_full, m.rejected_budget), (1, 0));
}

#[test]
fn a_panicking_task_is_observed_like_any_other() {
    let _watchdog = Watchdog::new("a_panicking_task_is_observed_like_any_other");
    let pool = pool(Some(BUDGET));
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    observe_then_hold(&pool, &gate, true);
    pool.try_submit(|| {}).expect("empty queue");
    assert!(pool.try_submit(|| {}).expect_err("over budget").is_full());
    assert_eq!(pool.metrics().rejected_budget, 1);
}

#[test]
fn submissions_from_inside_the_pool_are_never_refused_by_the_budget() {
    let _watchdog = Watchdog::new("submissions_from_inside_the_pool_are_never_refused");
    let pool = pool(Some(BUDGET));
    // The held task, on a signal, calls try_submit from inside the pool.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (result_tx, result_rx) = mpsc::channel::<bool>();
    let handle = pool.handle();
    observe_then_run(&pool, false, move || {
        if go_rx.recv().is_ok() {
            let inner = handle.try_submit(|| {});
            let _ = result_tx.send(inner.is_ok());
        }
    });
    pool.try_submit(|| {}).expect("empty queue");
    assert!(
        pool.try_submit(|| {})
            .expect_err("over budget from outside")
            .is_full(),
        "the outside is refused"
    );
    go_tx.send(()).expect("the held task listens");
    let accepted = result_rx
        .recv_timeout(WATCHDOG)
        .expect("the held task answers");
    assert!(
        accepted,
        "a task's own try_submit goes to its deque, never refused"
    );
    pool.wait_idle();
    assert_eq!(pool.metrics().rejected_budget, 1);
}

#[test]
fn a_closed_pool_says_shutdown_not_full() {
    let _watchdog = Watchdog::new("a_closed_pool_says_shutdown_not_full");
    let pool = pool(Some(BUDGET));
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    observe_then_hold(&pool, &gate, false);
    pool.try_submit(|| {}).expect("empty queue");
    assert!(pool.try_submit(|| {}).expect_err("over budget").is_full());
    let handle = pool.handle();
    pool.shutdown_background();
    assert!(handle.is_shutdown());
    let err = handle.try_submit(|| {}).expect_err("closed");
    assert!(
        !err.is_full(),
        "over budget and closed: Shutdown wins ({err:?})"
    );
    let m = handle.metrics();
    assert_eq!(m.rejected_budget, 1);
    assert_eq!(m.rejected_shutdown, 1);
    gate.open();
}

#[test]
fn a_refused_closure_may_resubmit_from_its_drop() {
    // Re-entrancy: the refusal holds no lock while it hands the closure
    // back, so code run by dropping it may call the pool again.
    let _watchdog = Watchdog::new("a_refused_closure_may_resubmit_from_its_drop");
    let pool = pool(Some(BUDGET));
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    observe_then_hold(&pool, &gate, false);
    pool.try_submit(|| {}).expect("empty queue");

    struct OnDrop(corepool::Handle, mpsc::Sender<bool>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            let again = self.0.try_submit(|| {});
            let _ = self.1.send(again.is_err_and(|e| e.is_full()));
        }
    }
    let (tx, rx) = mpsc::channel();
    let guard = OnDrop(pool.handle(), tx);
    let err = pool
        .try_submit(move || drop(guard))
        .expect_err("over budget");
    drop(err); // drops the closure, whose guard submits again
    assert_eq!(
        rx.recv_timeout(WATCHDOG),
        Ok(true),
        "refused again, no deadlock"
    );
    assert_eq!(pool.metrics().rejected_budget, 2);
}

#[test]
fn a_budget_set_while_running_decides_the_next_submissions() {
    let _watchdog = Watchdog::new("a_budget_set_while_running_decides_the_next_submissions");
    const HOUR: Duration = Duration::from_secs(3600);
    let pool = pool(Some(HOUR));
    let handle = pool.handle();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    observe_then_hold(&pool, &gate, false);
    let runs = Arc::new(AtomicUsize::new(0));
    pool.try_submit(counting(&runs)).expect("an empty queue");
    pool.try_submit(counting(&runs))
        .expect("one queued ahead: about OBSERVED, far within an hour");

    // Lowered from a task of another pool (this pool's one worker is held).
    let other = Pool::builder()
        .workers(1)
        .pin_workers(false)
        .build()
        .expect("build");
    let from_task = handle.clone();
    other
        .handle()
        .spawn(move || from_task.set_queue_delay_budget(BUDGET))
        .expect("the other pool is running")
        .join()
        .expect("ran")
        .expect("the pool has a budget");
    assert_eq!(handle.queue_delay_budget(), Some(BUDGET));
    let m = pool.metrics();
    assert_eq!(m.queue_delay_budget, Some(BUDGET));
    // Nothing was judged late: the limit kept its ratio, all of the budget.
    assert_eq!(m.queue_delay_limit, Some(BUDGET));
    let err = pool
        .try_submit(counting(&runs))
        .expect_err("two queued ahead: at least 2 × OBSERVED > BUDGET");
    assert!(err.is_full());
    assert_eq!(pool.metrics().rejected_budget, 1);

    // A refused setting leaves the budget in force.
    assert_eq!(
        handle.set_queue_delay_budget(Duration::ZERO),
        Err(corepool::BudgetError::Zero)
    );
    assert_eq!(handle.queue_delay_budget(), Some(BUDGET));

    handle.set_queue_delay_budget(HOUR).expect("raised again");
    pool.try_submit(counting(&runs))
        .expect("admitted under the raised budget");
    gate.open();
    pool.wait_idle();
    assert_eq!(runs.load(Ordering::SeqCst), 3);

    let plain = self::pool(None);
    assert_eq!(plain.handle().queue_delay_budget(), None);
    let err = plain
        .handle()
        .set_queue_delay_budget(BUDGET)
        .expect_err("no budget to change");
    assert_eq!(err, corepool::BudgetError::NotConfigured);
    assert!(err.to_string().contains("Builder::queue_delay_budget"));
    assert_eq!(plain.handle().queue_delay_budget(), None);
}

/// Fills the queue behind the held worker with `try_submit` until the
/// budget refuses (one second over tasks of at least `OBSERVED`: at most
/// 50 admitted), so that the last ones are admitted near its limit and
/// judged; returns how many were admitted.
fn fill_to_the_limit(pool: &Pool, runs: &Arc<AtomicUsize>) -> usize {
    let mut admitted = 0;
    while pool.try_submit(counting(runs)).is_ok() {
        admitted += 1;
        assert!(admitted < CAPACITY, "the budget refused nothing");
    }
    assert_eq!(pool.metrics().rejected_budget, 1);
    admitted
}

#[test]
fn tasks_the_budget_judges_stay_out_of_the_queue_wait_histogram() {
    // The budget stamps the tasks it admits near its limit, with the
    // stamp `track_latency` uses; without `track_latency` none of them
    // may show up in `queue_wait`.
    let _watchdog = Watchdog::new("tasks_the_budget_judges_stay_out_of_the_queue_wait_histogram");
    let pool = pool(Some(Duration::from_secs(1)));
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    observe_then_hold(&pool, &gate, false);
    let runs = Arc::new(AtomicUsize::new(0));
    let admitted = fill_to_the_limit(&pool, &runs);
    gate.open();
    pool.wait_idle();
    assert_eq!(runs.load(Ordering::SeqCst), admitted);
    assert_eq!(pool.metrics().queue_wait.count, 0);
}

#[test]
fn with_track_latency_and_a_budget_every_task_is_in_the_histogram() {
    let _watchdog = Watchdog::new("with_track_latency_and_a_budget_every_task_is_in_the_histogram");
    let pool = Pool::builder()
        .workers(WORKERS)
        .pin_workers(false)
        .track_latency(true)
        .queue_delay_budget(Duration::from_secs(1))
        .build()
        .expect("build");
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    observe_then_hold(&pool, &gate, false);
    let runs = Arc::new(AtomicUsize::new(0));
    let admitted = fill_to_the_limit(&pool, &runs);
    gate.open();
    pool.wait_idle();
    assert_eq!(runs.load(Ordering::SeqCst), admitted);
    // The slow task, the held one and every admitted one.
    assert_eq!(pool.metrics().queue_wait.count, admitted as u64 + 2);
}

#[test]
fn the_default_configuration_has_no_budget() {
    let pool = Pool::builder().workers(WORKERS).build().expect("build");
    let m = pool.metrics();
    assert_eq!(m.expected_queue_delay, None);
    assert_eq!(m.queue_delay_budget, None);
    assert_eq!(m.queue_delay_limit, None);
    assert_eq!(m.rejected_budget, 0);
    assert_eq!(pool.handle().expected_queue_delay(), None);
}

#[cfg(feature = "prometheus")]
#[test]
fn prometheus_exports_budget_refusals_and_the_estimate() {
    use corepool::prometheus::prometheus_client::encoding::text::encode;
    use corepool::prometheus::prometheus_client::registry::Registry;

    let _watchdog = Watchdog::new("prometheus_exports_budget_refusals_and_the_estimate");
    let pool = pool(Some(BUDGET));
    let mut registry = Registry::default();
    corepool::prometheus::register(&mut registry, pool.handle());
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    observe_then_hold(&pool, &gate, false);
    pool.try_submit(|| {}).expect("empty queue");
    assert!(pool.try_submit(|| {}).expect_err("over budget").is_full());
    let mut text = String::new();
    encode(&mut text, &registry).expect("encode");
    assert!(
        text.contains("corepool_rejected_budget_total 1\n"),
        "{text}"
    );
    assert!(text.contains("corepool_rejected_full_total 0\n"), "{text}");
    assert!(
        text.contains("# UNIT corepool_expected_queue_delay_seconds seconds\n"),
        "{text}"
    );
    let gauge = |name: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{name} is exported: {text}"))
            .parse()
            .expect("a number")
    };
    let estimate = gauge("corepool_expected_queue_delay_seconds");
    assert!(estimate > BUDGET.as_secs_f64(), "{estimate}");
    assert_eq!(
        gauge("corepool_queue_delay_budget_seconds"),
        BUDGET.as_secs_f64()
    );
    // No task was judged late yet: the limit is still the budget.
    assert_eq!(
        gauge("corepool_queue_delay_limit_seconds"),
        BUDGET.as_secs_f64()
    );
}
