//! Model 3: `try_submit` racing shutdown.
//!
//! One worker, capacity 1. A producer thread calls `try_submit` twice
//! through a `Handle` while the main thread shuts the pool down (by drop in
//! one model, by `Pool::shutdown` in the other). For every submission:
//! accepted implies it ran exactly once (shutdown drains what it accepted,
//! even when the acquire beat the close and the push came after it);
//! refused implies it never ran and the very same closure came back, which
//! we prove by running it afterwards and seeing its count go from 0 to 1.
//! The second `try_submit` may also be refused as `Full`, with the same
//! obligation.
#![cfg(corepool_loom)]

use loom_tests::{model, pool, Runs};

fn race(shutdown: fn(corepool::Pool)) {
    let pool = pool(1, 1);
    let runs = Runs::new(2);
    let handle = pool.handle();
    let producer = {
        let runs = runs.clone();
        loom::thread::spawn(move || {
            [0, 1].map(|i| match handle.try_submit(runs.task(i)) {
                Ok(()) => None,
                Err(err) => Some(err.into_inner()),
            })
        })
    };
    shutdown(pool);
    let refused = producer.join().expect("the producer does not panic");
    for (i, came_back) in refused.into_iter().enumerate() {
        match came_back {
            None => runs.assert_once(i),
            Some(closure) => {
                runs.assert_never(i);
                closure();
                runs.assert_once(i);
            }
        }
    }
}

#[test]
fn try_submit_racing_drop() {
    model("try_submit_vs_drop", || race(drop));
}

#[test]
fn try_submit_racing_shutdown() {
    model("try_submit_vs_shutdown", || {
        race(|pool| {
            let report = pool.shutdown();
            assert!(report.unstarted.is_empty(), "shutdown hands nothing back");
        })
    });
}
