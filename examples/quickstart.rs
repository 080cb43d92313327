//! A first look at corepool: submit a million tiny tasks through a bounded
//! queue, shed load with `try_submit`, and shut down cleanly.
//!
//! Run with `cargo run --release --example quickstart`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use corepool::Pool;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::builder().build()?;
    println!(
        "corepool: {} workers pinned to cores {:?}, queue capacity {}",
        pool.workers(),
        pool.worker_cores(),
        pool.capacity()
    );

    // 1. Blocking submit: the producer is slowed to the workers' pace.
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks = 1_000_000u64;
    for _ in 0..tasks {
        let done = done.clone();
        pool.submit(move || {
            done.fetch_add(1, Ordering::Relaxed);
        })?;
    }
    while done.load(Ordering::Relaxed) < tasks {
        std::thread::yield_now();
    }
    let elapsed = started.elapsed();
    println!(
        "submit: {tasks} tasks in {:.1} ms ({:.0} ns/task), never more than {} queued",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / tasks as f64,
        pool.capacity()
    );

    // 2. try_submit: when the queue is full the closure comes straight
    //    back, and the caller decides (here: shed it and count it).
    let (accepted, shed) = (Arc::new(AtomicU64::new(0)), AtomicU64::new(0));
    for _ in 0..200_000 {
        let accepted = accepted.clone();
        match pool.try_submit(move || {
            let spin = Instant::now();
            while spin.elapsed().as_micros() < 2 {}
            accepted.fetch_add(1, Ordering::Relaxed);
        }) {
            Ok(()) => {}
            Err(err) if err.is_full() => {
                drop(err.into_inner()); // shed: the closure is dropped unrun
                shed.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => unreachable!("the pool is running"),
        }
    }

    // 3. Dropping the pool drains every accepted task, then joins.
    drop(pool);
    println!(
        "try_submit: {} accepted and run, {} shed because the queue was full",
        accepted.load(Ordering::Relaxed),
        shed.load(Ordering::Relaxed)
    );
    Ok(())
}
