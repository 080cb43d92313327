//! A gate to hold workers (and `hold_workers`, which holds them all on
//! one) and a watchdog that turns a hang into an abort with a message.

#![allow(dead_code)]

use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// A one-shot gate: tasks block in [`Gate::wait`] until [`Gate::open`].
pub struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate {
            open: Mutex::new(false),
            changed: Condvar::new(),
        })
    }

    pub fn wait(&self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        while !*open {
            open = self.changed.wait(open).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn open(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_all();
    }

    /// Opens the gate when dropped. Declare it *after* the pool, so that a
    /// failing assertion opens the gate before the pool's drop joins the
    /// workers (instead of hanging on a worker held at the gate).
    pub fn open_on_drop(self: &Arc<Gate>) -> OpenOnDrop {
        OpenOnDrop(self.clone())
    }
}

pub struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Aborts the whole process, with a message, if it is not dropped within
/// `limit`. A hung pool cannot be unwound (dropping it joins workers that
/// never finish), so a hang must end the process to be reported at all.
pub struct Watchdog {
    done: Option<Sender<()>>,
}

impl Watchdog {
    pub fn with_limit(what: &'static str, limit: Duration) -> Watchdog {
        let (done, rx) = mpsc::channel::<()>();
        thread::Builder::new()
            .name(format!("watchdog: {what}"))
            .spawn(move || {
                if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                    // Straight to stderr: `eprintln!` would be captured by the
                    // test harness, and lost with the abort.
                    let _ = writeln!(
                        std::io::stderr(),
                        "WATCHDOG: `{what}` did not finish within {limit:?}: hang, aborting"
                    );
                    std::process::abort();
                }
            })
            .expect("spawn the watchdog");
        Watchdog { done: Some(done) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Disconnecting the channel tells the watchdog thread to stand down.
        self.done.take();
    }
}

/// Holds every active worker of `pool` on `gate`: submits one task per
/// worker, each waiting on a barrier and then on the gate, and returns once
/// all are inside their task. A task blocks its worker, so the barrier can
/// only complete with one task on each worker: on return every worker is
/// busy and every gate task has started (and no longer counts against the
/// bound).
pub fn hold_workers(pool: &corepool::Pool, gate: &Arc<Gate>) {
    let workers = pool.workers();
    let entered = Arc::new(Barrier::new(workers + 1));
    for _ in 0..workers {
        let entered = entered.clone();
        let gate = gate.clone();
        pool.submit(move || {
            entered.wait();
            gate.wait();
        })
        .expect("the pool is running");
    }
    entered.wait();
}
