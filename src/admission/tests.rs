//! Unit tests of the bound that need no loom model: the hand-off's turn.

use super::*;

#[test]
fn a_worker_takes_the_turn_once_the_bound_drained_to_half() {
    let admission = Admission::new(128, 1);
    for _ in 0..128 {
        admission.try_acquire().expect("room");
    }
    assert!(!admission.hand_over_core(0), "no producer waits");
    // A producer waiting, as `acquire` publishes it.
    let turn = admission.handoff.begin_wait();
    assert!(turn.is_some(), "128 slots for one worker is a deep queue");
    assert_eq!(admission.release(63), Released::Open);
    admission.hand_over_core(0);
    assert!(
        !admission.handoff.turn_taken(0),
        "65 admitted: above the mark"
    );
    assert_eq!(admission.release(1), Released::Open);
    admission.hand_over_core(0);
    assert!(admission.handoff.turn_taken(0), "64 admitted: at the mark");
    drop(turn);
    assert!(!admission.hand_over_core(0), "the producer left");
}

#[test]
fn a_queue_the_producer_spins_on_hands_nothing_over() {
    let admission = Admission::new(63, 1);
    assert!(admission.handoff.begin_wait().is_none());
}
