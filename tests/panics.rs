//! A panicking task never kills its worker, never stops the other tasks,
//! and reaches the panic handler exactly once.

mod support;

use std::any::Any;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once};

use corepool::Pool;
use support::{visit_every_worker, Watchdog, WATCHDOG};

/// Worker names in this file start with this; their panics are expected
/// and kept off stderr. Any other thread's panic (a failing assertion)
/// still goes to the default hook.
const PREFIX: &str = "panicky";

fn quiet_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_worker = std::thread::current()
                .name()
                .is_some_and(|name| name.starts_with(PREFIX));
            if !on_worker {
                default(info);
            }
        }));
    });
}

#[test]
fn a_tenth_of_the_tasks_panic_and_the_rest_run() {
    const WORKERS: usize = 2;
    const TASKS: usize = 10_000;
    quiet_expected_panics();
    let _watchdog = Watchdog::new("a_tenth_of_the_tasks_panic_and_the_rest_run");

    let runs: Arc<Vec<AtomicU8>> = Arc::new((0..TASKS).map(|_| AtomicU8::new(0)).collect());
    let handled: Arc<Vec<AtomicU8>> = Arc::new((0..TASKS).map(|_| AtomicU8::new(0)).collect());
    let foreign_payloads = Arc::new(AtomicUsize::new(0));
    // One message per finished task, whether it returned or panicked.
    let (finished_tx, finished) = mpsc::channel::<()>();
    let pool = {
        let handled = handled.clone();
        let foreign_payloads = foreign_payloads.clone();
        let finished_tx = finished_tx.clone();
        Pool::builder()
            .workers(WORKERS)
            .queue_capacity(64)
            .thread_name(PREFIX)
            .panic_handler(
                move |payload: Box<dyn Any + Send>| match payload.downcast::<usize>() {
                    Ok(i) => {
                        handled[*i].fetch_add(1, Ordering::SeqCst);
                        finished_tx.send(()).unwrap();
                    }
                    Err(_) => {
                        foreign_payloads.fetch_add(1, Ordering::SeqCst);
                    }
                },
            )
            .build()
            .unwrap()
    };
    let before = visit_every_worker(&pool);
    assert_eq!(before.len(), WORKERS);

    for i in 0..TASKS {
        let runs = runs.clone();
        let finished_tx = finished_tx.clone();
        pool.submit(move || {
            if i % 10 == 0 {
                std::panic::panic_any(i);
            }
            runs[i].fetch_add(1, Ordering::SeqCst);
            finished_tx.send(()).unwrap();
        })
        .unwrap();
    }
    for _ in 0..TASKS {
        finished
            .recv_timeout(WATCHDOG)
            .expect("every task returns or reaches the handler");
    }

    // After all the panics: still every worker, on the very same threads (none died, none replaced).
    let after = visit_every_worker(&pool);
    assert_eq!(after, before);
    assert_eq!(pool.workers(), WORKERS);
    drop(pool);

    assert_eq!(foreign_payloads.load(Ordering::SeqCst), 0);
    for i in 0..TASKS {
        let (runs, handled) = (
            runs[i].load(Ordering::SeqCst),
            handled[i].load(Ordering::SeqCst),
        );
        if i % 10 == 0 {
            assert_eq!(
                (runs, handled),
                (0, 1),
                "panicking task {i}: (runs, handler calls)"
            );
        } else {
            assert_eq!((runs, handled), (1, 0), "task {i}: (runs, handler calls)");
        }
    }
}

#[test]
fn a_panicking_handler_does_not_kill_the_worker_either() {
    const TASKS: usize = 100;
    quiet_expected_panics();
    let _watchdog = Watchdog::new("a_panicking_handler_does_not_kill_the_worker_either");
    let handler_calls = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let pool = {
        let handler_calls = handler_calls.clone();
        Pool::builder()
            .workers(1)
            .thread_name(format!("{PREFIX}-handler"))
            .panic_handler(move |_| {
                handler_calls.fetch_add(1, Ordering::SeqCst);
                panic!("the handler panics too");
            })
            .build()
            .unwrap()
    };
    let before = visit_every_worker(&pool);
    for i in 0..TASKS {
        let ran = ran.clone();
        pool.submit(move || {
            if i % 2 == 0 {
                panic!("task {i}");
            }
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    assert_eq!(visit_every_worker(&pool), before);
    drop(pool);
    assert_eq!(handler_calls.load(Ordering::SeqCst), TASKS / 2);
    assert_eq!(ran.load(Ordering::SeqCst), TASKS / 2);
}

#[test]
fn panics_without_a_handler_are_survived() {
    const TASKS: usize = 200;
    quiet_expected_panics();
    let _watchdog = Watchdog::new("panics_without_a_handler_are_survived");
    let ran = Arc::new(AtomicUsize::new(0));
    let pool = Pool::builder()
        .workers(2)
        .thread_name(format!("{PREFIX}-nohandler"))
        .build()
        .unwrap();
    let before = visit_every_worker(&pool);
    for i in 0..TASKS {
        let ran = ran.clone();
        pool.submit(move || {
            if i % 3 == 0 {
                panic!("task {i}");
            }
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    assert_eq!(visit_every_worker(&pool), before);
    drop(pool);
    assert_eq!(ran.load(Ordering::SeqCst), TASKS - TASKS.div_ceil(3));
}
