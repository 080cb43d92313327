//! Model 7: `try_submit` and `spawn` racing `shutdown_now`.
//!
//! One worker, capacity 1. A producer thread calls `try_submit(S)` and then
//! `spawn(J)` (which blocks while S holds the only slot) through a `Handle`,
//! while the main thread calls `shutdown_now`. For each task: accepted
//! implies it ran in the pool exactly once *or* came back in the report's
//! `unstarted`, never both, never neither (a task accepted just before the
//! stop, whose producer has not pushed it yet, included); refused implies it
//! never ran and the closure came back. The handed-back tasks are then run
//! by hand, after which every accepted task has run exactly once and the
//! `JoinHandle` of J gives J's value. `executed + unstarted` must equal the
//! number of accepted tasks.
#![cfg(corepool_loom)]

use loom_tests::{model, pool, Runs};

const S: usize = 0;
const J: usize = 1;

#[test]
fn submissions_racing_shutdown_now_run_once_or_come_back() {
    model("shutdown_now", || {
        let pool = pool(1, 1);
        let runs = Runs::new(2);
        let handle = pool.handle();
        let producer = {
            let runs = runs.clone();
            loom::thread::spawn(move || {
                let s = match handle.try_submit(runs.task(S)) {
                    Ok(()) => None,
                    Err(err) => Some(err.into_inner()),
                };
                let j = handle.spawn({
                    let runs = runs.clone();
                    move || {
                        runs.hit(J);
                        7
                    }
                });
                (s, j)
            })
        };
        let report = pool.shutdown_now();
        let (s, j) = producer.join().expect("the producer does not panic");

        let accepted = usize::from(s.is_none()) + usize::from(j.is_ok());
        assert_eq!(
            report.executed as usize + report.unstarted.len(),
            accepted,
            "every accepted task either ran or came back"
        );
        // Ran in the pool, or handed back: not both.
        let ran_in_pool = runs.count(S) + runs.count(J);
        assert_eq!(ran_in_pool as u64, report.executed);
        for task in report.unstarted {
            task.run();
        }
        match s {
            None => runs.assert_once(S),
            Some(closure) => {
                runs.assert_never(S);
                closure();
                runs.assert_once(S);
            }
        }
        match j {
            Ok(join) => {
                assert_eq!(join.join().expect("J ran"), 7);
                runs.assert_once(J);
            }
            Err(err) => {
                runs.assert_never(J);
                assert_eq!(err.into_inner()(), 7);
                runs.assert_once(J);
            }
        }
    });
}
