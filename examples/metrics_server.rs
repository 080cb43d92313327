//! A pool under synthetic load, with its metrics served for Prometheus.
//!
//! A producer thread submits small tasks at a steady rate (and, every few
//! seconds, a burst through `try_submit` that overflows the queue, so the
//! rejection counters move too); `/metrics` serves the pool's metrics via
//! `corepool::prometheus`. The server stops by itself after `--seconds`.
//!
//! ```text
//! cargo run --example metrics_server --features prometheus -- --port 9898 --seconds 60
//! curl -s http://127.0.0.1:9898/metrics
//! ```
//!
//! `--port 0` binds a free port; the bound address is printed on the first
//! line of stdout (`listening on http://127.0.0.1:PORT/metrics`). The port
//! can also come from `COREPOOL_METRICS_PORT`.
//!
//! Content negotiation: a scraper that accepts
//! `application/openmetrics-text` (Prometheus does) gets OpenMetrics text;
//! anything else (curl, `promtool check metrics` fed by curl) gets the
//! classic text format 0.0.4.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use corepool::prometheus::prometheus_client::encoding::{prometheus_text, text};
use corepool::prometheus::prometheus_client::registry::Registry;
use corepool::{Handle, Pool};
use tiny_http::{Header, Request, Response, Server};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Parser, Debug)]
#[command(about = "A corepool pool under synthetic load, serving /metrics for Prometheus")]
struct Args {
    /// Port on 127.0.0.1 to serve /metrics on; 0 picks a free one
    /// [default: $COREPOOL_METRICS_PORT, else 9898].
    #[arg(long)]
    port: Option<u16>,
    /// Run this long, then shut down cleanly.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Tasks per second the producer submits.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Microseconds of busy work per task.
    #[arg(long, default_value_t = 50)]
    work_us: u64,
    /// Worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let port = match args.port {
        Some(port) => port,
        None => match std::env::var("COREPOOL_METRICS_PORT") {
            Ok(value) => value
                .parse()
                .map_err(|e| format!("COREPOOL_METRICS_PORT={value:?}: {e}"))?,
            Err(_) => 9898,
        },
    };

    let mut builder = Pool::builder().queue_capacity(256).track_latency(true);
    if let Some(workers) = args.workers {
        builder = builder.workers(workers);
    }
    let pool = builder.build()?;
    let mut registry = Registry::default();
    corepool::prometheus::register(&mut registry, pool.handle());

    let server =
        Server::http(("127.0.0.1", port)).map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or("server is not on an IP socket")?;
    println!("listening on http://{addr}/metrics for {} s", args.seconds);

    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let handle = pool.handle();
        let stop = stop.clone();
        let (rate, work) = (args.rate, Duration::from_micros(args.work_us));
        thread::spawn(move || produce(&handle, &stop, rate, work))
    };

    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut scrapes = 0u64;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(request) = server.recv_timeout(left.min(Duration::from_millis(200)))? else {
            continue;
        };
        if request.url() == "/metrics" {
            scrapes += 1;
        }
        if let Err(e) = respond(request, &registry) {
            eprintln!("metrics_server: responding: {e}");
        }
    }

    stop.store(true, Ordering::Relaxed);
    let (submitted, rejected) = producer.join().map_err(|_| "producer thread panicked")?;
    let report = pool.shutdown();
    println!(
        "done: {scrapes} scrapes; producer submitted {submitted}, {rejected} refused as full; \
         pool executed {} tasks ({} panicked)",
        report.executed, report.panicked
    );
    Ok(())
}

/// Submits `rate` tasks per second until `stop`; every five seconds adds a
/// burst of `try_submit`s larger than the queue. Returns (accepted,
/// refused as full).
fn produce(handle: &Handle, stop: &AtomicBool, rate: u64, work: Duration) -> (u64, u64) {
    let task = move || {
        let start = Instant::now();
        while start.elapsed() < work {
            std::hint::spin_loop();
        }
    };
    let started = Instant::now();
    let (mut submitted, mut rejected, mut next_burst) = (0u64, 0u64, 5u64);
    while !stop.load(Ordering::Relaxed) {
        let elapsed = started.elapsed();
        let due = (elapsed.as_secs_f64() * rate as f64) as u64;
        while submitted < due && !stop.load(Ordering::Relaxed) {
            match handle.submit_timeout(task, Duration::from_millis(100)) {
                Ok(()) => submitted += 1,
                Err(e) if e.is_shutdown() => return (submitted, rejected),
                Err(_) => {} // timed out: try again (or stop)
            }
        }
        if elapsed.as_secs() >= next_burst {
            next_burst += 5;
            for _ in 0..2 * handle.capacity() {
                match handle.try_submit(task) {
                    Ok(()) => submitted += 1,
                    Err(e) if e.is_full() => rejected += 1,
                    Err(_) => return (submitted, rejected),
                }
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
    (submitted, rejected)
}

fn respond(request: Request, registry: &Registry) -> std::io::Result<()> {
    if request.url() != "/metrics" {
        return request
            .respond(Response::from_string("not found; try /metrics\n").with_status_code(404));
    }
    let openmetrics = request
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Accept"))
        .any(|h| h.value.as_str().contains("application/openmetrics-text"));
    let mut body = String::new();
    let (encoded, content_type) = if openmetrics {
        (text::encode(&mut body, registry), OPENMETRICS)
    } else {
        (
            prometheus_text::encode(&mut body, registry),
            prometheus_text::CONTENT_TYPE,
        )
    };
    if encoded.is_err() {
        return request.respond(Response::from_string("encoding failed\n").with_status_code(500));
    }
    let response = Response::from_string(body);
    match Header::from_bytes("Content-Type", content_type) {
        Ok(header) => request.respond(response.with_header(header)),
        Err(()) => request.respond(response),
    }
}
