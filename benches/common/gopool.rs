//! The Go idiom as a Rust pool: `W` threads ranging over one bounded channel
//! of capacity `W × 10`. A full channel blocks the sender, so it has
//! backpressure like corepool; but a task that submits to its own full pool
//! blocks a worker, and once every worker does, the pool deadlocks.

use std::thread::{self, JoinHandle};

use crossbeam_channel::{bounded, Sender};

/// One boxed closure: the only allocation per task, as in corepool.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// The Go folklore channel size: ten slots per worker.
pub const SLOTS_PER_WORKER: usize = 10;

/// `W` threads receiving from one bounded channel.
pub struct GoPool {
    sender: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl GoPool {
    /// Starts `workers` threads on a channel of `workers × 10` slots.
    pub fn new(workers: usize) -> Self {
        let (sender, receiver) = bounded::<Job>(workers * SLOTS_PER_WORKER);
        let threads = (0..workers)
            .map(|i| {
                let receiver = receiver.clone();
                thread::Builder::new()
                    .name(format!("gopool-{i}"))
                    .spawn(move || {
                        for job in receiver {
                            job();
                        }
                    })
                    .expect("spawn a gopool worker")
            })
            .collect();
        GoPool {
            sender: Some(sender),
            threads,
        }
    }

    /// A sender, for submitting from elsewhere (including from a task).
    pub fn sender(&self) -> Sender<Job> {
        self.sender.clone().expect("the pool is running")
    }

    /// Blocks while the channel is full.
    pub fn submit<F: FnOnce() + Send + 'static>(&self, f: F) {
        submit(self.sender.as_ref().expect("the pool is running"), f);
    }
}

/// Sends one job, blocking while the channel is full.
pub fn submit<F: FnOnce() + Send + 'static>(sender: &Sender<Job>, f: F) {
    if sender.send(Box::new(f)).is_err() {
        panic!("gopool: every worker is gone");
    }
}

impl Drop for GoPool {
    /// Closes the channel; the workers drain it and exit.
    fn drop(&mut self) {
        self.sender.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
