//! CPU a waiting worker burns while it waits about a second for another
//! worker: once through `JoinHandle::join` on a running task, once through
//! `join` whose second half a thief took. Prints the process's CPU time
//! (user + system, `getrusage`) over the wait as a share of one core; the
//! task waited for sleeps, so nearly all of it is the waiter's.
//!
//!     cargo bench --bench wait_cpu            # 1 s waits
//!     COREPOOL_WAIT_MS=100 cargo bench --bench wait_cpu
//!
//! Results: docs/benchmarks.md, "Waiting inside a task".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cpu_time() -> Duration {
    // SAFETY: `getrusage` writes into the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn measure(label: &str, wait: impl FnOnce()) {
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    wait();
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    println!(
        "{label:<34} wall {:>7.1} ms   cpu {:>7.1} ms   {:>5.1} % of a core",
        wall.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3,
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench --no-run` / test listing
    }
    let millis: u64 = std::env::var("COREPOOL_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let nap = Duration::from_millis(millis);
    let pool = corepool::Pool::builder()
        .workers(2)
        .build()
        .expect("build the pool");

    for _ in 0..3 {
        // JoinHandle::join from a worker on a task running on the other one.
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let sleeper = pool
            .spawn(move || {
                started_tx.send(()).unwrap();
                std::thread::sleep(nap);
            })
            .unwrap();
        started_rx.recv().unwrap();
        measure("JoinHandle::join (running task)", || {
            pool.install(|| sleeper.join().unwrap())
        });

        // join whose `b` a thief took: `a` returns once `b` has started.
        let stolen = Arc::new(AtomicBool::new(false));
        measure("join, b stolen", || {
            pool.install(|| {
                let flag = stolen.clone();
                corepool::join(
                    || {
                        let deadline = Instant::now() + Duration::from_millis(200);
                        while !stolen.load(Ordering::Acquire) && Instant::now() < deadline {
                            std::hint::spin_loop();
                        }
                    },
                    move || {
                        flag.store(true, Ordering::Release);
                        std::thread::sleep(nap);
                    },
                );
            })
        });
        if !stolen.load(Ordering::Acquire) {
            println!("  (b was not stolen in this round: ran inline)");
        }
    }
}
