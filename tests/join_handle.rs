//! Results: `spawn`/`try_spawn` deliver a value, a panic or `Cancelled`
//! through a `JoinHandle`, exactly once; the handle joins (blocking, with a
//! timeout that hands it back, or `.await` under any executor) or cancels
//! a task that has not started. Joining inside a worker keeps the worker
//! busy with other tasks, so a task can wait for its own children.
//!
//! See `docs/lifecycle.md` for the full story.

mod support;

use std::any::Any;
use std::panic::panic_any;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use corepool::{Handle, JoinHandle, Pool};
use futures::FutureExt;
use support::{hold_one_worker, wait_until, within, Gate, WATCHDOG};

fn one_worker(capacity: usize) -> Pool {
    Pool::builder()
        .workers(1)
        .queue_capacity(capacity)
        .pin_workers(false)
        .build()
        .expect("build a pool")
}

fn payload_str(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

#[test]
fn spawn_and_try_spawn_deliver_results_on_pool_and_handle() {
    within("results round trip", || {
        let pool = Pool::builder()
            .workers(2)
            .queue_capacity(256)
            .pin_workers(false)
            .build()
            .unwrap();

        // Pool::spawn, various result types.
        let number = pool.spawn(|| 6u64 * 7).unwrap();
        let text = pool.spawn(|| String::from("forty-two")).unwrap();
        let vector = pool.spawn(|| (0..5).collect::<Vec<u32>>()).unwrap();
        let unit = pool.spawn(|| ()).unwrap();
        // Joined in another order than spawned.
        assert_eq!(vector.join().unwrap(), [0, 1, 2, 3, 4]);
        assert_eq!(text.join().unwrap(), "forty-two");
        assert_eq!(number.join().unwrap(), 42);
        unit.join().unwrap();

        // Pool::try_spawn (capacity 256 is plenty: it is accepted).
        let tried = pool.try_spawn(|| "tried").expect("room in the queue");
        assert_eq!(tried.join().unwrap(), "tried");

        // Handle::spawn and Handle::try_spawn, from other threads.
        let handle = pool.handle();
        let producers: Vec<_> = (0..4u64)
            .map(|p| {
                let handle = handle.clone();
                thread::spawn(move || {
                    let spawned: Vec<JoinHandle<u64>> = (0..50u64)
                        .map(|i| handle.spawn(move || p * 1000 + i).unwrap())
                        .collect();
                    let tried = handle
                        .try_spawn(move || p * 1000 + 999)
                        .expect("room in the queue");
                    let mut values: Vec<u64> =
                        spawned.into_iter().map(|h| h.join().unwrap()).collect();
                    values.push(tried.join().unwrap());
                    values
                })
            })
            .collect();
        for (p, producer) in producers.into_iter().enumerate() {
            let p = p as u64;
            let mut expected: Vec<u64> = (0..50).map(|i| p * 1000 + i).collect();
            expected.push(p * 1000 + 999);
            assert_eq!(producer.join().unwrap(), expected);
        }
        pool.shutdown();
    });
}

#[test]
fn try_spawn_when_full_and_spawn_after_shutdown_hand_the_closure_back() {
    within("refused spawns", || {
        let pool = one_worker(1);
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        hold_one_worker(&pool, &gate);
        let queued = pool.spawn(|| 1).unwrap(); // takes the only slot
        assert_eq!(pool.queued(), 1);

        match pool.try_spawn(|| 2) {
            Err(err) if err.is_full() => {
                assert_eq!(err.into_inner()(), 2, "the closure came back intact")
            }
            other => panic!("expected Full, got {:?}", other.map(|_| ())),
        }
        match pool.handle().try_spawn(|| 3) {
            Err(err) if err.is_full() => assert_eq!(err.into_inner()(), 3),
            other => panic!("expected Full, got {:?}", other.map(|_| ())),
        }

        gate.open();
        assert_eq!(queued.join().unwrap(), 1);

        let handle: Handle = pool.handle();
        drop(pool);
        match handle.spawn(|| 4) {
            Err(err) => assert_eq!(err.into_inner()(), 4),
            Ok(_) => panic!("spawn accepted after shutdown"),
        }
        match handle.try_spawn(|| 5) {
            Err(err) if err.is_shutdown() => assert_eq!(err.into_inner()(), 5),
            other => panic!("expected Shutdown, got {:?}", other.map(|_| ())),
        }
    });
}

#[test]
fn a_panic_becomes_join_error_panicked_with_its_payload() {
    within("panics", || {
        let handler_calls = Arc::new(AtomicUsize::new(0));
        let seen = handler_calls.clone();
        let pool = Pool::builder()
            .workers(2)
            .pin_workers(false)
            .panic_handler(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();

        let literal = pool.spawn(|| -> u32 { panic!("boom") }).unwrap();
        let n = std::hint::black_box(7); // a runtime value: the payload is a String
        let formatted = pool.spawn(move || -> u32 { panic!("boom {n}") }).unwrap();
        let custom = pool.spawn(|| -> u32 { panic_any(1234u64) }).unwrap();
        let fine = pool.spawn(|| 5u32).unwrap();

        let err = literal.join().unwrap_err();
        assert!(err.is_panic() && !err.is_cancelled());
        assert_eq!(format!("{err:?}"), "Panicked(\"boom\")");
        assert_eq!(err.to_string(), "task panicked: boom");
        let payload = err.into_panic().expect("a panic payload");
        assert_eq!(*payload.downcast::<&str>().unwrap(), "boom");

        match formatted.join() {
            Err(err) if err.is_panic() => {
                assert_eq!(err.panic_message(), Some("boom 7"));
                let payload = err.into_panic().expect("a panic payload");
                assert_eq!(*payload.downcast::<String>().unwrap(), "boom 7")
            }
            other => panic!("expected Panicked, got {other:?}"),
        }

        let err = custom.join().unwrap_err();
        assert_eq!(err.to_string(), "task panicked");
        let payload = err.into_panic().unwrap();
        assert_eq!(payload_str(&*payload), None);
        assert_eq!(*payload.downcast::<u64>().unwrap(), 1234);

        assert_eq!(fine.join().unwrap(), 5, "the worker survived the panics");

        // A spawned task's panic goes to its JoinHandle, not to the panic
        // handler; a submitted task's panic goes to the handler. Both are
        // counted in the report.
        assert_eq!(handler_calls.load(Ordering::SeqCst), 0);
        pool.submit(|| panic!("submitted")).unwrap();
        let report = pool.shutdown();
        assert_eq!(handler_calls.load(Ordering::SeqCst), 1);
        assert_eq!(report.panicked, 4);
        assert_eq!(report.executed, 5);
    });
}

#[test]
fn cancel_before_start_prevents_the_run_and_join_gives_cancelled() {
    within("cancel before start", || {
        let pool = one_worker(8);
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        // The only worker is inside this task: nothing queued can start.
        hold_one_worker(&pool, &gate);

        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let victim = pool
            .spawn(move || {
                flag.store(true, Ordering::SeqCst);
                "ran"
            })
            .unwrap();
        assert!(!victim.is_finished());
        assert!(victim.cancel(), "cancelled before it started");
        assert!(victim.is_finished(), "a cancelled task is finished");
        assert!(!victim.cancel(), "a second cancel finds it finished");

        let err = victim.join().unwrap_err();
        assert!(err.is_cancelled() && !err.is_panic());
        assert_eq!(format!("{err:?}"), "Cancelled");
        assert!(err.into_panic().is_none());

        // Let the pool reach the cancelled task and drain: the closure
        // still never runs.
        gate.open();
        pool.shutdown();
        assert!(
            !ran.load(Ordering::SeqCst),
            "a cancelled closure never runs"
        );
    });
}

#[test]
fn cancel_while_running_or_after_finish_returns_false_and_the_result_is_delivered() {
    within("cancel too late", || {
        let pool = one_worker(8);
        let gate = Gate::new();
        let _open = gate.open_on_drop();

        // Running: cancel refuses, the result still arrives.
        let (started_tx, started_rx) = mpsc::channel();
        let held = gate.clone();
        let running = pool
            .spawn(move || {
                started_tx.send(()).unwrap();
                held.wait();
                "finished anyway"
            })
            .unwrap();
        started_rx.recv_timeout(WATCHDOG).unwrap();
        assert!(!running.cancel(), "it already started");
        gate.open();
        assert_eq!(running.join().unwrap(), "finished anyway");

        // Finished: cancel refuses, the result is still there to join.
        let done = pool.spawn(|| 99).unwrap();
        wait_until("the task to finish", || done.is_finished());
        assert!(!done.cancel());
        assert!(done.is_finished());
        assert_eq!(done.join().unwrap(), 99);
    });
}

#[test]
fn join_timeout_hands_the_handle_back_then_join_succeeds() {
    within("join_timeout", || {
        let pool = one_worker(8);
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        let (started_tx, started_rx) = mpsc::channel();
        let held = gate.clone();
        let handle = pool
            .spawn(move || {
                started_tx.send(()).unwrap();
                held.wait();
                String::from("late")
            })
            .unwrap();
        started_rx.recv_timeout(WATCHDOG).unwrap();

        // Held on the gate: every timed join times out and gives it back.
        let handle = handle
            .join_timeout(Duration::ZERO)
            .expect_err("cannot have finished: it is held");
        let handle = handle
            .join_timeout(Duration::from_millis(20))
            .expect_err("cannot have finished: it is held");
        assert!(!handle.is_finished());
        assert!(format!("{handle:?}").contains("finished: false"));

        gate.open();
        assert_eq!(handle.join().unwrap(), "late");

        // Once finished, even a zero timeout returns the result.
        let quick = pool.spawn(|| 7).unwrap();
        wait_until("the task to finish", || quick.is_finished());
        match quick.join_timeout(Duration::ZERO) {
            Ok(result) => assert_eq!(result.unwrap(), 7),
            Err(_) => panic!("a finished task's join_timeout must not time out"),
        }
    });
}

#[test]
fn is_finished_turns_true_once_the_task_has_run() {
    within("is_finished", || {
        let pool = one_worker(8);
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        let (started_tx, started_rx) = mpsc::channel();
        let held = gate.clone();
        let handle = pool
            .spawn(move || {
                started_tx.send(()).unwrap();
                held.wait();
                1
            })
            .unwrap();
        started_rx.recv_timeout(WATCHDOG).unwrap();
        assert!(!handle.is_finished(), "held on the gate");
        gate.open();
        wait_until("is_finished", || handle.is_finished());
        assert!(format!("{handle:?}").contains("finished: true"));
        assert_eq!(handle.join().unwrap(), 1);

        // A panic also finishes the task.
        let panicked = pool.spawn(|| -> () { panic!("done badly") }).unwrap();
        wait_until("is_finished after a panic", || panicked.is_finished());
        assert!(panicked.join().unwrap_err().is_panic());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn await_under_tokio() {
    let pool = Pool::builder()
        .workers(2)
        .pin_workers(false)
        .build()
        .unwrap();
    let work = async {
        // A task that cannot finish until we open the gate: the future
        // must return Pending first, and be woken by the pool's worker.
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        let held = gate.clone();
        let mut gated = pool
            .spawn(move || {
                held.wait();
                "woken"
            })
            .unwrap();
        assert!((&mut gated).now_or_never().is_none(), "held: still pending");
        gate.open();
        assert_eq!(gated.await.unwrap(), "woken");

        assert_eq!(pool.spawn(|| 40 + 2).unwrap().await.unwrap(), 42);
        let err = pool
            .spawn(|| -> u8 { panic!("async boom") })
            .unwrap()
            .await
            .unwrap_err();
        assert_eq!(
            *err.into_panic().unwrap().downcast::<&str>().unwrap(),
            "async boom"
        );

        // Many handles awaited at once, from several tokio tasks.
        let handles: Vec<JoinHandle<u64>> = (0..200u64)
            .map(|i| pool.spawn(move || i * i).unwrap())
            .collect();
        let results = futures::future::join_all(handles).await;
        let values: Vec<u64> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(values, (0..200u64).map(|i| i * i).collect::<Vec<_>>());

        let tokio_tasks: Vec<_> = (0..8u64)
            .map(|t| {
                let handle = pool.spawn(move || t + 100).unwrap();
                tokio::spawn(handle)
            })
            .collect();
        for (t, task) in tokio_tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().unwrap(), t as u64 + 100);
        }
    };
    tokio::time::timeout(WATCHDOG, work)
        .await
        .expect("awaiting the pool's handles under tokio hangs");
    pool.shutdown();
}

#[test]
fn await_under_futures_block_on() {
    within("await under block_on", || {
        let pool = Pool::builder()
            .workers(2)
            .pin_workers(false)
            .build()
            .unwrap();
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        let held = gate.clone();
        let mut gated = pool
            .spawn(move || {
                held.wait();
                vec![1, 2, 3]
            })
            .unwrap();
        assert!((&mut gated).now_or_never().is_none(), "held: still pending");
        let opener = {
            let gate = gate.clone();
            thread::spawn(move || gate.open())
        };
        assert_eq!(futures::executor::block_on(gated).unwrap(), [1, 2, 3]);
        opener.join().unwrap();

        // A cancelled handle resolves to Cancelled when awaited.
        let hold = Gate::new();
        let _open_hold = hold.open_on_drop();
        let solo = one_worker(8);
        hold_one_worker(&solo, &hold);
        let cancelled = solo.spawn(|| 1).unwrap();
        assert!(cancelled.cancel());
        assert!(futures::executor::block_on(cancelled)
            .unwrap_err()
            .is_cancelled());
        hold.open();
        solo.shutdown();

        // Many handles awaited concurrently.
        let handles: Vec<JoinHandle<usize>> = (0..500usize)
            .map(|i| pool.spawn(move || i + 1).unwrap())
            .collect();
        let results = futures::executor::block_on(futures::future::join_all(handles));
        let sum: usize = results.into_iter().map(Result::unwrap).sum();
        assert_eq!(sum, (1..=500).sum::<usize>());
        pool.shutdown();
    });
}

/// Depth-first chain: each task spawns its child (through a captured
/// handle, so onto this worker's own deque) and joins it.
fn spawn_chain(handle: Handle, depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    let inner = handle.clone();
    let child = handle
        .spawn(move || spawn_chain(inner, depth - 1))
        .expect("a submission from inside is always accepted");
    child.join().expect("the child ran") + 1
}

#[test]
fn joining_inside_a_one_worker_pool_runs_the_child_instead_of_idling() {
    within("join inside the only worker", || {
        let pool = one_worker(1);
        let handle = pool.handle();
        let parent = pool
            .spawn(move || {
                let inner = handle.clone();
                let child = handle.spawn(move || {
                    // The child may itself spawn and join.
                    let grandchild = inner.spawn(|| 20).unwrap();
                    grandchild.join().unwrap() + 1
                });
                child.expect("accepted from inside").join().unwrap() * 2
            })
            .unwrap();
        assert_eq!(parent.join().unwrap(), 42);

        // A deeper chain, still on the one worker.
        let handle = pool.handle();
        let chain = pool.spawn(move || spawn_chain(handle, 50)).unwrap();
        assert_eq!(chain.join().unwrap(), 50);

        // A child that panics: the parent's join reports it, the worker lives.
        let handle = pool.handle();
        let parent = pool
            .spawn(move || {
                let child = handle.spawn(|| -> u8 { panic!("child") }).unwrap();
                child.join().unwrap_err().is_panic()
            })
            .unwrap();
        assert!(parent.join().unwrap());
        pool.shutdown();
    });
}
