//! Component models of `Admission` (`crate::admission`), without a pool:
//! run first by `loom-tests/run.sh`.

use super::{Admission, Refused, Released};
use crate::sync::{thread, Arc, AtomicBool, AtomicUsize, Ordering};

/// Runs `f` under `loom::model` and prints how many executions loom
/// explored, as the whole-pool models do.
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = executions.clone();
    let start = std::time::Instant::now();
    loom::model(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    eprintln!(
        "loom model {name}: {} executions in {:.2?}",
        executions.load(std::sync::atomic::Ordering::Relaxed),
        start.elapsed()
    );
}

/// The bound is exact: two producers race for the one slot, each
/// starting its task (a `release(1)`) once it got it. Never are both
/// inside at once, the first to try always gets it, and after both the
/// slot is free again.
#[test]
fn loom_admission_bound_exact() {
    model("loom_admission_bound_exact", || {
        let admission = Arc::new(Admission::new(1, 1));
        // Producers holding a slot right now: a loom atomic, so that
        // loom may switch threads while one is inside.
        let inside = Arc::new(AtomicUsize::new(0));
        let produce = {
            let (admission, inside) = (admission.clone(), inside.clone());
            move || match admission.try_acquire() {
                Ok(()) => {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    assert_eq!(now, 1, "{now} slots taken with capacity 1");
                    inside.fetch_sub(1, Ordering::SeqCst);
                    assert_eq!(admission.release(1), Released::Open);
                    true
                }
                Err(refused) => {
                    assert_eq!(refused, Refused::Full);
                    false
                }
            }
        };
        let other = thread::spawn(produce.clone());
        let mine = produce();
        let theirs = other.join().expect("the producer does not panic");
        assert!(mine || theirs, "the one free slot was refused to both");
        assert_eq!(admission.admitted_and_held(), 0);
        assert_eq!(admission.try_acquire(), Ok(()));
        assert_eq!(admission.try_acquire(), Err(Refused::Full));
    });
}

/// A slot a worker holds back counts against the bound only while no
/// producer needs it: with capacity 2 (under loom a worker holds back
/// up to 2 slots), a producer that finds the word full after a task
/// started takes that task's held-back slot over, and the word minus
/// the held-back slots stays the exact count of admitted tasks.
#[test]
fn loom_admission_held_slot_taken_over() {
    model("loom_admission_held_slot_taken_over", || {
        let admission = Arc::new(Admission::new(2, 1));
        assert_eq!(admission.try_acquire(), Ok(()));
        assert_eq!(admission.try_acquire(), Ok(()));
        let started = Arc::new(AtomicBool::new(false));
        let worker = {
            let (admission, started) = (admission.clone(), started.clone());
            thread::spawn(move || {
                assert_eq!(admission.start(0), Released::Open);
                started.store(true, Ordering::SeqCst);
            })
        };
        let after_start = started.load(Ordering::SeqCst);
        let acquired = admission.try_acquire();
        if after_start {
            assert_eq!(acquired, Ok(()), "a started task's slot was not taken over");
        }
        worker.join().expect("the worker does not panic");
        // Held back or taken over, the started task's slot stays in the
        // word; `admitted` leaves held-back slots out.
        assert_eq!(admission.admitted_and_held(), 2);
        match acquired {
            Ok(()) => {
                assert_eq!(admission.admitted(), 2);
                assert_eq!(admission.return_held(0), Released::Open);
                assert_eq!(admission.admitted_and_held(), 2);
            }
            Err(refused) => {
                assert_eq!(refused, Refused::Full);
                assert_eq!(admission.admitted(), 1);
                assert_eq!(admission.return_held(0), Released::Open);
                assert_eq!(admission.admitted_and_held(), 1);
            }
        }
    });
}

/// No lost wake-up: the one slot is taken, a producer blocks in
/// `acquire(None)` while another thread starts the task holding it.
/// The producer gets that slot whichever side comes first (queued,
/// then granted; or its re-try after queueing sees the freed slot).
#[test]
fn loom_admission_blocked_producer_woken() {
    model("loom_admission_blocked_producer_woken", || {
        let admission = Arc::new(Admission::new(1, 1));
        assert_eq!(admission.try_acquire(), Ok(()));
        let worker = {
            let admission = admission.clone();
            thread::spawn(move || admission.start(0))
        };
        assert_eq!(admission.acquire(None), Ok(()));
        let released = worker.join().expect("the worker does not panic");
        assert_eq!(released, Released::Open);
        // The producer's slot, and only it, is counted.
        assert_eq!(admission.admitted_and_held(), 1);
        assert_eq!(admission.try_acquire(), Err(Refused::Full));
    });
}

/// An acquire is ordered before or after the close, never beside it:
/// a producer that got its slot is counted in the word the close saw
/// (so shutdown waits for its task), one refused saw `Closed`, and the
/// close reports "nothing left to start" exactly when no slot was taken.
#[test]
fn loom_admission_try_acquire_vs_close() {
    model("loom_admission_try_acquire_vs_close", || {
        let admission = Arc::new(Admission::new(1, 1));
        let producer = {
            let admission = admission.clone();
            thread::spawn(move || admission.try_acquire())
        };
        let drained = admission.close();
        let acquired = producer.join().expect("the producer does not panic");
        match acquired {
            Ok(()) => {
                assert!(!drained, "the close missed an acquired slot");
                assert_eq!(admission.admitted_and_held(), 1);
                assert_eq!(admission.start(0), Released::LastAfterClose);
            }
            Err(refused) => {
                assert_eq!(refused, Refused::Closed);
                assert!(drained, "the close saw a slot nobody acquired");
                assert_eq!(admission.admitted_and_held(), 0);
            }
        }
        assert!(admission.is_closed_and_drained());
    });
}

/// A blocked producer races the close and the release of the one slot:
/// it either got the slot before the close (granted, or taken after
/// the release) and the word counts it, or it sees `Closed` and the
/// slot is free. Exactly one of the close and the release reports the
/// drain when the producer was refused, neither when it got the slot.
#[test]
fn loom_admission_blocked_producer_vs_close() {
    model("loom_admission_blocked_producer_vs_close", || {
        let admission = Arc::new(Admission::new(1, 1));
        assert_eq!(admission.try_acquire(), Ok(()));
        let producer = {
            let admission = admission.clone();
            thread::spawn(move || admission.acquire(None))
        };
        let closer = {
            let admission = admission.clone();
            thread::spawn(move || admission.close())
        };
        let released = admission.start(0);
        let acquired = producer.join().expect("the producer does not panic");
        let drained = closer.join().expect("the closer does not panic");
        let last = released == Released::LastAfterClose;
        match acquired {
            Ok(()) => {
                assert!(!drained && !last, "a drain reported beside a taken slot");
                assert_eq!(admission.admitted_and_held(), 1);
            }
            Err(refused) => {
                assert_eq!(refused, Refused::Closed);
                assert!(drained != last, "drained {drained}, last {last}");
                assert_eq!(admission.admitted_and_held(), 0);
            }
        }
        assert!(admission.is_closed());
    });
}
