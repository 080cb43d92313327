//! The seed's HTTP service, for real: axum (hyper) on tokio does the I/O,
//! the CPU work runs on an engine chosen at startup, and an engine that
//! refuses work turns into `503 Service Unavailable` instead of a queue
//! that grows without bound.
//!
//! ```text
//! cargo run --release --features prometheus --example http_service -- --addr 127.0.0.1:8080
//! curl -s --data-binary 'hello' 'http://127.0.0.1:8080/hash?rounds=1000'
//! curl -s http://127.0.0.1:8080/metrics
//! ```
//!
//! # Contract (a load generator and `tests/http_service.rs` drive it)
//!
//! * `--addr IP:PORT` (port 0 picks a free one), `--workers N`,
//!   `--engine corepool|spawn-blocking|rayon|inline`; for corepool also
//!   `--capacity N` (the pool's queue bound), `--budget-ms MS` (a served
//!   request's p99 budget, of which the pool's queue-delay budget gets
//!   what the rest of a request leaves: `BudgetSplit`), `--no-pin` and
//!   `--report-waits` (the shutdown line then also gives percentiles of
//!   each hashed request's wait in the pool's queue and its whole time in
//!   the pool); for every engine but inline `--hash-nice N`. Once the
//!   socket accepts, stdout gets one line: `listening on http://IP:PORT`.
//! * `POST /hash?rounds=R`, 1 ≤ R ≤ 100000, default 1000: `200` with the
//!   hex SHA-256 of the body hashed R times (`h1 = sha256(body)`,
//!   `h(i+1) = sha256(h(i))`), computed on the engine. A bad `rounds` is a
//!   `400` with a message.
//! * The corepool engine takes a task with `try_spawn`: when the pool
//!   refuses it (queue full, or shutting down) the answer is `503` with
//!   `Retry-After: 1`. The other engines never refuse; that is the
//!   comparison (their queues grow instead).
//! * `GET /metrics`: Prometheus text, the pool's metrics
//!   (`corepool::prometheus`, corepool engine only) plus
//!   `http_responses_total{code=...}` and `http_hash_in_flight`.
//!   `GET /healthz`: `200 ok`.
//! * SIGTERM or SIGINT: stop accepting, finish every request already
//!   accepted, print one `shutdown: ...` line, exit 0.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use clap::{Parser, ValueEnum};
use corepool::prometheus::prometheus_client::encoding::{prometheus_text, text};
use corepool::prometheus::prometheus_client::metrics::counter::Counter;
use corepool::prometheus::prometheus_client::metrics::family::Family;
use corepool::prometheus::prometheus_client::metrics::gauge::Gauge;
use corepool::prometheus::prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

/// The most rounds one request may ask for: bounds the CPU one request
/// can cost (about 10 ms on one core in a release build).
const MAX_ROUNDS: u32 = 100_000;
const DEFAULT_ROUNDS: u32 = 1_000;

#[derive(Parser, Debug)]
#[command(about = "POST /hash on an HTTP service whose CPU work runs on corepool (or a peer)")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Threads doing the hashing [default: one per core].
    #[arg(long)]
    workers: Option<usize>,
    /// corepool's queue bound: tasks accepted and not yet started
    /// [default: the pool's, workers × 256].
    #[arg(long)]
    capacity: Option<usize>,
    /// corepool only: the latency budget of a served request, from the
    /// moment it has been read to its answer, at the 99th percentile. The pool
    /// gets it as its queue-delay budget (`Builder::queue_delay_budget`),
    /// less what the rest of a request takes, measured as the service runs
    /// (see `BudgetSplit`): requests that would wait longer are refused.
    #[arg(long)]
    budget_ms: Option<u64>,
    /// corepool only: do not pin each worker to a core (corepool pins by
    /// default; rayon and tokio never do). On a machine shared with other
    /// busy processes, a pinned worker cannot move off a contended core.
    #[arg(long)]
    no_pin: bool,
    /// corepool only: time each hashed request's wait in the pool's queue
    /// (`try_spawn` to the start of the hashing) and its time in the pool
    /// (to the end of the hashing), and print their p50/p99/p99.9 in the
    /// shutdown line: what the delay budget bounds, apart from the HTTP
    /// work around it.
    #[arg(long)]
    report_waits: bool,
    /// How many nice values the threads that hash run below the I/O
    /// thread, every engine but inline (Linux, where nice applies per
    /// thread): the scheduler then favours the I/O thread when both are
    /// ready, so a finished hash is answered, and a new request read,
    /// sooner.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=19))]
    hash_nice: i32,
    /// Where the hashing runs.
    #[arg(long, value_enum, default_value_t = EngineKind::Corepool)]
    engine: EngineKind,
    /// Threads of the tokio runtime that does the HTTP I/O, for the engines
    /// that move the hashing off it [default: 1]. The inline engine hashes
    /// on the runtime itself, so it runs `--workers` runtime threads.
    #[arg(long)]
    io_threads: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum EngineKind {
    /// corepool `try_spawn`, awaiting the `JoinHandle`; refuses when full.
    Corepool,
    /// tokio's `spawn_blocking` (up to 512 threads); never refuses.
    SpawnBlocking,
    /// a rayon pool's `spawn`, answered through a oneshot; never refuses.
    Rayon,
    /// hashing on the tokio runtime thread that serves the request.
    Inline,
}

impl EngineKind {
    fn name(self) -> &'static str {
        match self {
            EngineKind::Corepool => "corepool",
            EngineKind::SpawnBlocking => "spawn-blocking",
            EngineKind::Rayon => "rayon",
            EngineKind::Inline => "inline",
        }
    }
}

// ---------------------------------------------------------------------------
// The work
// ---------------------------------------------------------------------------

/// SHA-256 of `body`, then of that digest, `rounds` times in all.
fn hash_rounds(body: &[u8], rounds: u32) -> String {
    let mut digest = Sha256::digest(body);
    for _ in 1..rounds {
        digest = Sha256::digest(digest);
    }
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `rounds` from the query string: absent means the default; anything but
/// a whole number in 1..=MAX_ROUNDS is the client's mistake.
fn parse_rounds(query: Option<&str>) -> Result<u32, String> {
    let value = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("rounds="));
    let Some(value) = value else {
        return Ok(DEFAULT_ROUNDS);
    };
    match value.parse::<u32>() {
        Ok(rounds) if (1..=MAX_ROUNDS).contains(&rounds) => Ok(rounds),
        _ => Err(format!(
            "rounds must be a whole number from 1 to {MAX_ROUNDS}, got {value:?}\n"
        )),
    }
}

// ---------------------------------------------------------------------------
// Engines
// ---------------------------------------------------------------------------

enum Engine {
    Corepool {
        handle: corepool::Handle,
        waits: Option<Arc<Waits>>,
        split: Option<Arc<BudgetSplit>>,
    },
    /// With the `--hash-nice` its threads take on their first task.
    SpawnBlocking(i32),
    Rayon(rayon::ThreadPool),
    Inline,
}

enum Outcome {
    Hashed(String),
    /// The engine turned the task away; the client should come back later.
    Refused,
    /// The task panicked or was cancelled: a bug, not the client's fault.
    Failed(String),
}

impl Engine {
    /// Hashes a request the handler received at `arrived`.
    async fn hash(&self, body: Bytes, rounds: u32, arrived: Instant) -> Outcome {
        let work = move || hash_rounds(&body, rounds);
        match self {
            // try_spawn, never spawn: a blocking spawn on a full pool would
            // stall this runtime thread and every connection it serves.
            Engine::Corepool {
                handle,
                waits,
                split,
            } => {
                let submitted = Instant::now();
                let work = move || (Instant::now(), work());
                // A refusal (full, over the budget, or shutting down)
                // hands the closure back; it is dropped here.
                let spawned = match waits {
                    None => handle.try_spawn(work).map_err(drop),
                    Some(waits) => handle.try_spawn(waits.timed(work)).map_err(drop),
                };
                match spawned {
                    Ok(join) => match CancelOnDrop(join).await {
                        Ok((started, hex)) => {
                            if let Some(split) = split {
                                let wait = started.saturating_duration_since(submitted);
                                split.record(arrived.elapsed().saturating_sub(wait));
                            }
                            Outcome::Hashed(hex)
                        }
                        Err(err) => Outcome::Failed(err.to_string()),
                    },
                    Err(()) => Outcome::Refused,
                }
            }
            Engine::SpawnBlocking(nice) => {
                let nice = *nice;
                let work = move || {
                    thread_local!(static NICED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
                    if !NICED.replace(true) {
                        lower_priority(nice);
                    }
                    work()
                };
                match tokio::task::spawn_blocking(work).await {
                    Ok(hex) => Outcome::Hashed(hex),
                    Err(err) => Outcome::Failed(err.to_string()),
                }
            }
            Engine::Rayon(pool) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                pool.spawn(move || {
                    // The receiver is gone only if the client hung up.
                    let _ = tx.send(work());
                });
                match rx.await {
                    Ok(hex) => Outcome::Hashed(hex),
                    Err(_) => Outcome::Failed("the rayon task was dropped".into()),
                }
            }
            Engine::Inline => Outcome::Hashed(work()),
        }
    }
}

/// `--budget-ms` with the corepool engine: a served request's budget,
/// split between its wait in the pool's queue and the rest of it (the
/// handler, the hashing, the answer's way back to the I/O thread). The
/// rest is measured per hashed request, as its time from the handler
/// receiving it, read, to its answer, minus its queue wait; from there,
/// not from the head, so that a client sending its body slowly cannot
/// shrink everyone's share. Every `SPLIT_EVERY` the pool's budget
/// is set to the total minus the rest's 99th percentile over the last
/// `SPLIT_SAMPLES` requests (`Handle::set_queue_delay_budget`). The sum of
/// two 99th percentiles is exceeded by at most 2 % of the requests, and
/// less often when few requests meet both tails. What happens
/// before the request is read (the connection waiting for the I/O thread)
/// is not seen.
struct BudgetSplit {
    total: Duration,
    handle: corepool::Handle,
    /// The rest of recent hashed requests, in microseconds: a ring.
    rest: std::sync::Mutex<(Vec<u32>, usize)>,
}

/// How often the pool's share of the budget is recomputed.
const SPLIT_EVERY: Duration = Duration::from_millis(100);
/// The rest's 99th percentile is taken over this many latest requests.
const SPLIT_SAMPLES: usize = 1024;
/// Fewer samples than this leave the pool's budget as it is.
const SPLIT_MIN_SAMPLES: usize = 100;

impl BudgetSplit {
    fn new(total: Duration, handle: corepool::Handle) -> BudgetSplit {
        BudgetSplit {
            total,
            handle,
            rest: std::sync::Mutex::new((Vec::with_capacity(SPLIT_SAMPLES), 0)),
        }
    }

    fn record(&self, rest: Duration) {
        let micros = u32::try_from(rest.as_micros()).unwrap_or(u32::MAX);
        // A poisoned lock only means a panic mid-push: the ring is intact.
        let mut ring = self.rest.lock().unwrap_or_else(|p| p.into_inner());
        let (samples, next) = &mut *ring;
        if samples.len() < SPLIT_SAMPLES {
            samples.push(micros);
        } else {
            samples[*next] = micros;
        }
        *next = (*next + 1) % SPLIT_SAMPLES;
    }

    /// Sets the pool's budget to the total minus the rest's 99th
    /// percentile, and at least a quarter of the total (a request whose
    /// hashing alone takes most of the budget cannot be helped by
    /// refusing more).
    fn adjust(&self) {
        let mut rest = self
            .rest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone();
        if rest.len() < SPLIT_MIN_SAMPLES {
            return;
        }
        rest.sort_unstable();
        let p99 = Duration::from_micros(u64::from(rest[(rest.len() * 99).div_ceil(100) - 1]));
        let queue = self.total.saturating_sub(p99).max(self.total / 4);
        // The pool was built with a budget, and `queue` is not zero.
        let _ = self.handle.set_queue_delay_budget(queue);
    }

    /// ` queue_budget_ms=B`: the pool's share at the end.
    fn summary(&self) -> String {
        self.handle
            .queue_delay_budget()
            .map_or_else(String::new, |b| {
                format!(" queue_budget_ms={:.2}", b.as_secs_f64() * 1000.0)
            })
    }
}

/// `--hash-nice`: lowers the calling thread's priority by `steps` nice
/// values (to 19 at most), from the process's (the I/O thread's).
#[cfg(target_os = "linux")]
fn lower_priority(steps: i32) {
    if steps == 0 {
        return;
    }
    // SAFETY: getpriority and setpriority read no memory of ours; on
    // Linux, PRIO_PROCESS with `who == 0` names the calling thread alone.
    let failed = unsafe {
        let base = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, (base + steps).min(19)) != 0
    };
    if failed {
        eprintln!(
            "http_service: --hash-nice {steps}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// `--hash-nice`: per-thread nice values are Linux's; elsewhere, a warning.
#[cfg(not(target_os = "linux"))]
fn lower_priority(nice: i32) {
    if nice != 0 {
        eprintln!("http_service: --hash-nice applies on Linux only");
    }
}

/// `--report-waits`: per hashed request, (wait in the queue, time in the
/// pool), in microseconds, in the order the hashing ended.
#[derive(Default)]
struct Waits(std::sync::Mutex<Vec<(u32, u32)>>);

impl Waits {
    /// `work`, recording its wait and its time in the pool, counted from
    /// now (just before `try_spawn`).
    fn timed<T>(self: &Arc<Self>, work: impl FnOnce() -> T) -> impl FnOnce() -> T {
        let waits = self.clone();
        let submitted = Instant::now();
        move || {
            let started = Instant::now();
            let out = work();
            let micros = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
            let sample = (micros(started - submitted), micros(submitted.elapsed()));
            // A poisoned lock only means another task panicked mid-push.
            waits
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(sample);
            out
        }
    }

    /// ` pool_wait_ms=P50/P99/P99.9 pool_time_ms=P50/P99/P99.9`, or nothing
    /// if no request was hashed.
    fn summary(&self) -> String {
        let samples = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if samples.is_empty() {
            return String::new();
        }
        let percentiles = |pick: fn(&(u32, u32)) -> u32| {
            let mut values: Vec<u32> = samples.iter().map(pick).collect();
            values.sort_unstable();
            let at = |q: f64| {
                let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
                f64::from(values[rank - 1]) / 1000.0
            };
            format!("{:.2}/{:.2}/{:.2}", at(0.5), at(0.99), at(0.999))
        };
        format!(
            " pool_wait_ms={} pool_time_ms={}",
            percentiles(|s| s.0),
            percentiles(|s| s.1)
        )
    }
}

/// Awaits a corepool `JoinHandle`, and cancels the task if the request is
/// dropped first (the client hung up): a task nobody will read should not
/// take a worker. Dropping a bare `JoinHandle` detaches, as in tokio.
struct CancelOnDrop<T>(corepool::JoinHandle<T>);

impl<T> Future for CancelOnDrop<T> {
    type Output = Result<T, corepool::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        // A no-op once the task has started or finished.
        self.0.cancel();
    }
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// The status codes counted by name; anything else counts as "other".
const CODES: [&str; 6] = ["200", "400", "404", "405", "500", "503"];

struct App {
    engine: Engine,
    registry: Registry,
    /// One counter per entry of `CODES`, then "other".
    responses: Vec<Counter>,
    /// POST /hash requests whose head has been read and that have no
    /// response yet: the test uses it to know a request is accepted.
    in_flight: Gauge,
}

impl App {
    fn new(engine: Engine, pool: Option<&corepool::Pool>) -> App {
        let mut registry = Registry::default();
        if let Some(pool) = pool {
            corepool::prometheus::register(&mut registry, pool.handle());
        }
        let family = Family::<Vec<(String, String)>, Counter>::default();
        // Created up front so that every series exists from the first
        // scrape: `rate()` over a series that appears late misses its start.
        let responses = CODES
            .iter()
            .chain(&["other"])
            .map(|code| {
                family
                    .get_or_create(&vec![("code".to_owned(), (*code).to_owned())])
                    .clone()
            })
            .collect();
        registry.register(
            "http_responses",
            "HTTP responses sent, by status code",
            family,
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_hash_in_flight",
            "POST /hash requests received and not yet answered",
            in_flight.clone(),
        );
        App {
            engine,
            registry,
            responses,
            in_flight,
        }
    }

    fn count(&self, status: StatusCode) {
        let index = CODES
            .iter()
            .position(|code| *code == status.as_str())
            .unwrap_or(CODES.len());
        self.responses[index].inc();
    }

    fn summary(&self) -> String {
        let counts: Vec<String> = CODES
            .iter()
            .chain(&["other"])
            .zip(&self.responses)
            .map(|(code, counter)| format!("{code}={}", counter.get()))
            .collect();
        let total: u64 = self.responses.iter().map(Counter::get).sum();
        format!("responses={total} {}", counts.join(" "))
    }
}

fn router(app: Arc<App>) -> Router {
    let hash = post(hash).route_layer(middleware::from_fn_with_state(app.clone(), in_flight));
    Router::new()
        .route("/hash", hash)
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found; try POST /hash\n") })
        // Outermost, so that it sees every response, 404 and 405 included.
        .layer(middleware::from_fn_with_state(app.clone(), count_status))
        .with_state(app)
}

async fn count_status(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    app.count(response.status());
    response
}

/// Runs when the request head is in, before the body is read.
async fn in_flight(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    app.in_flight.inc();
    // A guard, not a decrement after the await: a client that hangs up
    // drops this future mid-await.
    struct Leave(Gauge);
    impl Drop for Leave {
        fn drop(&mut self) {
            self.0.dec();
        }
    }
    let _leave = Leave(app.in_flight.clone());
    next.run(request).await
}

async fn hash(State(app): State<Arc<App>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    // Where `--budget-ms` counts from: the request is read, body included.
    let arrived = Instant::now();
    let rounds = match parse_rounds(query.as_deref()) {
        Ok(rounds) => rounds,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    match app.engine.hash(body, rounds, arrived).await {
        Outcome::Hashed(hex) => (StatusCode::OK, hex + "\n").into_response(),
        Outcome::Refused => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "overloaded, retry later\n",
        )
            .into_response(),
        Outcome::Failed(message) => {
            (StatusCode::INTERNAL_SERVER_ERROR, message + "\n").into_response()
        }
    }
}

/// OpenMetrics for a scraper that asks for it (Prometheus does), the
/// classic text format 0.0.4 for everyone else (curl, promtool).
async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/openmetrics-text"));
    let mut body = String::new();
    let (encoded, content_type) = if openmetrics {
        (text::encode(&mut body, &app.registry), OPENMETRICS)
    } else {
        (
            prometheus_text::encode(&mut body, &app.registry),
            prometheus_text::CONTENT_TYPE,
        )
    };
    match encoded {
        Ok(()) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response(),
    }
}

// ---------------------------------------------------------------------------
// Startup and shutdown
// ---------------------------------------------------------------------------

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Display, not the Debug that returning the error would print.
            eprintln!("http_service: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    if args.engine != EngineKind::Corepool
        && (args.capacity.is_some() || args.budget_ms.is_some() || args.no_pin || args.report_waits)
    {
        return Err(format!(
            "--capacity, --budget-ms, --no-pin and --report-waits apply to the corepool engine only, not {}",
            args.engine.name()
        )
        .into());
    }
    if args.engine == EngineKind::Inline && args.hash_nice != 0 {
        return Err(
            "--hash-nice applies to the threads that hash apart from the I/O thread; \
                    the inline engine hashes on the I/O thread"
                .into(),
        );
    }

    // The pool lives here, outside the server, so that it is shut down
    // (drained) only after the server has answered every request.
    let pool = match args.engine {
        EngineKind::Corepool => {
            let mut builder = corepool::Pool::builder()
                .workers(workers)
                .track_latency(true)
                .pin_workers(!args.no_pin)
                .thread_name("hash");
            let nice = args.hash_nice;
            if nice != 0 {
                builder = builder.on_worker_start(move |_| lower_priority(nice));
            }
            if let Some(capacity) = args.capacity {
                builder = builder.queue_capacity(capacity);
            }
            if let Some(ms) = args.budget_ms {
                // try_spawn then also refuses what would make the queue
                // wait's p99 exceed this: the knob that keeps served
                // latency bounded under overload (a count bound cannot).
                // The answer's time adds the hashing and the HTTP work.
                builder = builder.queue_delay_budget(Duration::from_millis(ms));
            }
            Some(builder.build()?)
        }
        _ => None,
    };
    let waits = args.report_waits.then(|| Arc::new(Waits::default()));
    let nice = args.hash_nice;
    let engine = match (&pool, args.engine) {
        (Some(pool), _) => Engine::Corepool {
            handle: pool.handle(),
            waits: waits.clone(),
            split: args
                .budget_ms
                .map(|ms| Arc::new(BudgetSplit::new(Duration::from_millis(ms), pool.handle()))),
        },
        (None, EngineKind::Rayon) => Engine::Rayon(
            rayon::ThreadPoolBuilder::new()
                .num_threads(workers)
                .thread_name(|i| format!("hash-{i}"))
                .start_handler(move |_| lower_priority(nice))
                .build()?,
        ),
        (None, EngineKind::Inline) => Engine::Inline,
        (None, _) => Engine::SpawnBlocking(nice),
    };
    let split = match &engine {
        Engine::Corepool { split, .. } => split.clone(),
        _ => None,
    };
    let app = Arc::new(App::new(engine, pool.as_ref()));

    let runtime_threads = match args.engine {
        EngineKind::Inline => workers,
        _ => args.io_threads.unwrap_or(1).max(1),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(runtime_threads)
        .thread_name("http-io")
        .enable_all()
        .build()?;
    let started = Instant::now();
    runtime.block_on(async {
        if let Some(split) = split.clone() {
            // Ends with the runtime.
            tokio::spawn(async move {
                let mut every = tokio::time::interval(SPLIT_EVERY);
                loop {
                    every.tick().await;
                    split.adjust();
                }
            });
        }
        serve(args.addr, app.clone()).await
    })?;
    // Every connection is closed: nothing can submit any more.
    drop(runtime);

    let pool_line = match pool {
        Some(pool) => {
            let report = pool.shutdown();
            format!(
                " pool_executed={} pool_panicked={}{}{}",
                report.executed,
                report.panicked,
                split.map_or_else(String::new, |split| split.summary()),
                waits.map_or_else(String::new, |waits| waits.summary())
            )
        }
        None => String::new(),
    };
    println!(
        "shutdown: engine={} {}{pool_line} uptime_s={:.1}",
        args.engine.name(),
        app.summary(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn serve(addr: SocketAddr, app: Arc<App>) -> std::io::Result<()> {
    // Listen for the signals before announcing the address: a SIGTERM
    // sent right after "listening on" must not kill the process unhandled.
    let stop = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // Graceful shutdown: on the signal axum stops accepting, lets hyper
    // finish each connection's request in progress (idle keep-alive
    // connections close at once), and returns when all are closed.
    axum::serve(listener, router(app))
        .with_graceful_shutdown(stop)
        .await
}

/// A future that completes on SIGTERM or SIGINT. The handlers are
/// installed when this is called, not when the future is first polled.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            // Without a handler, Ctrl-C ends the process unhandled.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}
