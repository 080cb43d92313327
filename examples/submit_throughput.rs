//! One producer thread submits N tiny tasks (an atomic increment) through
//! the bounded queue and waits for them all: the cost of `submit` when the
//! producer outruns the workers, as a function of the queue capacity.
//!
//! `cargo run --release --example submit_throughput -- CAPACITY TASKS`
//! (defaults: the default capacity, 500000 tasks). Prints ns per task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let capacity: Option<usize> = args.next().map(|a| a.parse()).transpose()?;
    let tasks: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(500_000);
    let mut builder = corepool::Pool::builder();
    if let Some(capacity) = capacity {
        builder = builder.queue_capacity(capacity);
    }
    let pool = builder.build()?;
    let capacity = pool.capacity();
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    for _ in 0..tasks {
        let done = done.clone();
        pool.submit(move || {
            done.fetch_add(1, Ordering::Relaxed);
        })?;
    }
    drop(pool); // waits for every task
    let elapsed = started.elapsed();
    assert_eq!(done.load(Ordering::Relaxed), tasks);
    println!(
        "capacity {capacity}: {:.0} ns/task over {tasks} tasks",
        elapsed.as_nanos() as f64 / tasks as f64
    );
    Ok(())
}
