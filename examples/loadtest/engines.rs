//! The engines under test and the open-loop measurement harness.
//!
//! One call to [`run_engine`] replays one workload ([`RunSpec`]) through one
//! engine and returns its figures ([`EngineResult`]). The parent process of
//! the demo calls it in a fresh child process per engine, so that the memory
//! and CPU figures, which are per process, belong to that engine alone; the
//! integration tests call it in-process on tiny sizes.
//!
//! The generator is open-loop: request `i` is *scheduled* to arrive at
//! `start + i / rate` (or at `start` for a burst), whatever happened to the
//! requests before it. Its latency is measured from that scheduled arrival
//! to its completion, so time a request spent waiting because the generator
//! itself was held up (a blocking `submit`, a full channel, a thread cap) is
//! counted, not hidden: the figures are free of coordinated omission.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// An engine: a way of running request handlers concurrently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EngineKind {
    /// corepool, blocking `submit`: backpressure slows the producer.
    Corepool,
    /// corepool, `try_submit`: a full queue sheds the request (rejected).
    CorepoolShed,
    /// corepool with one worker per core, the downstream call inside
    /// `corepool::block_in_place` (a spare runs the queue meanwhile, up to
    /// the rule's worker count of spares), blocking `submit`.
    CorepoolManaged,
    /// One OS thread per request, at most `max_threads` alive at once.
    Threads,
    /// W threads reading a bounded crossbeam channel (the "Go-style" pool).
    Channel,
    /// tokio's `spawn_blocking` on a multi-thread runtime.
    Tokio,
    /// `rayon::ThreadPool::spawn` on a pool of W threads.
    Rayon,
}

impl EngineKind {
    /// Every engine, in the order the demo runs them by default.
    pub const ALL: [EngineKind; 7] = [
        EngineKind::Corepool,
        EngineKind::CorepoolShed,
        EngineKind::CorepoolManaged,
        EngineKind::Threads,
        EngineKind::Channel,
        EngineKind::Tokio,
        EngineKind::Rayon,
    ];

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Corepool => "corepool",
            EngineKind::CorepoolShed => "corepool-shed",
            EngineKind::CorepoolManaged => "corepool-managed",
            EngineKind::Threads => "threads",
            EngineKind::Channel => "channel",
            EngineKind::Tokio => "tokio",
            EngineKind::Rayon => "rayon",
        }
    }

    /// The engine called `name`, if any.
    pub fn parse(name: &str) -> Option<EngineKind> {
        EngineKind::ALL.into_iter().find(|e| e.name() == name)
    }

    /// One line on what the engine is, given the workload's parameters.
    pub fn describe(self, spec: &RunSpec) -> String {
        match self {
            EngineKind::Corepool => format!(
                "corepool, {} workers, queue capacity {}, blocking submit",
                spec.workers, spec.capacity
            ),
            EngineKind::CorepoolShed => format!(
                "corepool, {} workers, queue capacity {}, try_submit (full => rejected)",
                spec.workers, spec.capacity
            ),
            EngineKind::CorepoolManaged => format!(
                "corepool, {} workers (one per core), up to {} spares, queue capacity {}, \
                 downstream call in block_in_place",
                spec.cores, spec.workers, spec.capacity
            ),
            EngineKind::Threads => format!(
                "one OS thread per request, at most {} alive (the generator waits at the cap)",
                spec.max_threads
            ),
            EngineKind::Channel => format!(
                "{} threads reading a crossbeam bounded({}) channel",
                spec.workers, spec.channel_capacity
            ),
            EngineKind::Tokio => format!(
                "tokio spawn_blocking, {} runtime workers, max_blocking_threads {}",
                spec.cores, spec.tokio_blocking
            ),
            EngineKind::Rayon => format!(
                "rayon ThreadPool::spawn, {} threads, unbounded queue",
                spec.workers
            ),
        }
    }
}

/// Everything one engine run needs: the workload and the engines'
/// parameters. The parent hands it to the child as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Requests to generate.
    pub requests: u64,
    /// Target arrival rate in requests per second; `None` is a burst (every
    /// request scheduled at time zero).
    pub rate: Option<u64>,
    /// Busy-loop iterations of a CPU request (see [`burn`]).
    pub cpu_iters: u64,
    /// Busy-loop iterations of an I/O request before its blocking wait.
    pub io_cpu_iters: u64,
    /// The blocking wait of an I/O request (the downstream call), in µs.
    pub io_wait_us: u64,
    /// Fraction of requests that are I/O requests (0 = all CPU, 1 = all I/O).
    pub io_share: f64,
    /// Bytes of request body allocated at arrival and freed at completion.
    pub payload_bytes: usize,
    /// The generator stops issuing after this many seconds; requests not
    /// issued by then are counted as `unsent`.
    pub deadline_s: f64,
    /// Cores available to the process.
    pub cores: usize,
    /// Worker threads of the pool engines (corepool, channel, rayon).
    pub workers: usize,
    /// corepool's queue capacity.
    pub capacity: usize,
    /// The channel engine's bound.
    pub channel_capacity: usize,
    /// The most threads the thread-per-request engine keeps alive.
    pub max_threads: usize,
    /// tokio's `max_blocking_threads`.
    pub tokio_blocking: usize,
    /// Whether corepool pins its workers.
    pub pin: bool,
}

impl RunSpec {
    /// When request `i` is scheduled to arrive, in ns after the start.
    pub fn scheduled_ns(&self, i: u64) -> u64 {
        match self.rate {
            Some(rate) => (u128::from(i) * 1_000_000_000 / u128::from(rate.max(1))) as u64,
            None => 0,
        }
    }

    /// Whether request `i` is an I/O request. I/O requests are spread
    /// evenly: request `i` is one when `floor((i+1)·share)` steps up.
    pub fn is_io(&self, i: u64) -> bool {
        let ppm = (self.io_share.clamp(0.0, 1.0) * 1e6).round() as u128;
        let i = u128::from(i);
        (i + 1) * ppm / 1_000_000 != i * ppm / 1_000_000
    }
}

/// The figures of one engine run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineResult {
    /// The engine's name.
    pub engine: String,
    /// What the engine was configured as.
    pub description: String,
    /// Requests generated (scheduled).
    pub requests: u64,
    /// Requests whose handler ran to completion.
    pub completed: u64,
    /// Requests the engine refused (corepool-shed's full queue, a thread
    /// that could not be spawned).
    pub rejected: u64,
    /// Requests never issued because the run hit its deadline.
    pub unsent: u64,
    /// Seconds from the start to the last completion.
    pub elapsed_s: f64,
    /// Completed requests per second over `elapsed_s`.
    pub achieved_rps: f64,
    /// The target rate; `None` for a burst.
    pub offered_rps: Option<u64>,
    /// Latency (scheduled arrival to completion) percentiles, µs.
    pub p50_us: f64,
    /// 90th percentile, µs.
    pub p90_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Largest latency, µs.
    pub max_us: f64,
    /// Mean latency, µs.
    pub mean_us: f64,
    /// Unsent requests that were due before the generator stopped: each
    /// counts in the latency figures with the time it had waited by then,
    /// which makes the figures lower bounds when this is not zero.
    pub latency_lower_bound_samples: u64,
    /// The completed request with the largest latency (its index).
    pub worst_request: u64,
    /// When that request was scheduled to arrive, ms after the start.
    pub worst_request_scheduled_ms: f64,
    /// When it completed, ms after the start.
    pub worst_request_done_ms: f64,
    /// How far behind its schedule the generator fell at worst, ms.
    pub max_generator_lag_ms: f64,
    /// Resident set size just before the engine was built, KiB.
    pub baseline_rss_kib: u64,
    /// Peak resident set size of the process (`ru_maxrss`), KiB.
    pub peak_rss_kib: u64,
    /// User CPU seconds spent during the run.
    pub cpu_user_s: f64,
    /// System CPU seconds spent during the run.
    pub cpu_sys_s: f64,
    /// Most threads seen in the process at once (sampled every 2 ms, and
    /// exact for the thread-per-request engine's own threads).
    pub peak_threads: u64,
    /// Threads in the process before the engine was built.
    pub baseline_threads: u64,
}

/// A snapshot of a run in progress, for a progress bar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Requests issued (handed to the engine or refused by it).
    pub issued: u64,
    /// Requests completed.
    pub completed: u64,
    /// Requests refused.
    pub rejected: u64,
}

/// A request: its index and a body allocated when it arrives.
pub struct Request {
    id: u64,
    io: bool,
    body: Vec<u8>,
}

/// `iters` rounds of a cheap mixing function: the CPU work of a request.
/// A fixed count (not "spin until N µs passed") so that an engine whose
/// threads get preempted does not get away with less work.
pub fn burn(iters: u64, seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..iters {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x ^= x >> 29;
    }
    black_box(x)
}

/// How many [`burn`] iterations take one microsecond on this machine (best
/// of a few tries, so that noise makes the work longer, never shorter).
pub fn calibrate_iters_per_us() -> f64 {
    let iters = 200_000;
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = Instant::now();
        black_box(burn(black_box(iters), 7));
        best = best.min(t.elapsed().as_secs_f64());
    }
    (iters as f64 / (best * 1e6)).max(1.0)
}

/// State shared by the generator, the handlers and the sampler.
struct Tracker {
    start: Instant,
    /// Completion time per request, ns after `start`; `u64::MAX` if none.
    done_ns: Vec<AtomicU64>,
    completed: AtomicU64,
    issued: AtomicU64,
    rejected: AtomicU64,
    /// Requests accepted by the engine, known once generation ends;
    /// `u64::MAX` until then.
    target: AtomicU64,
    lock: Mutex<()>,
    all_done: Condvar,
    cpu_iters: u64,
    io_cpu_iters: u64,
    io_wait: Duration,
}

/// Locks `m`, ignoring poisoning (a panicking handler must not stop the
/// harness from reporting).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tracker {
    fn new(spec: &RunSpec) -> Tracker {
        let n = spec.requests as usize;
        let mut done_ns = Vec::with_capacity(n);
        // Written now, so these pages are resident before the baseline RSS
        // is read and count the same for every engine.
        done_ns.resize_with(n, || AtomicU64::new(u64::MAX));
        Tracker {
            start: Instant::now(),
            done_ns,
            completed: AtomicU64::new(0),
            issued: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            lock: Mutex::new(()),
            all_done: Condvar::new(),
            cpu_iters: spec.cpu_iters,
            io_cpu_iters: spec.io_cpu_iters,
            io_wait: Duration::from_micros(spec.io_wait_us),
        }
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// The request handler: read the body, do the CPU work, make the
    /// downstream call if it is an I/O request, record the completion.
    fn serve(&self, req: Request) {
        self.serve_with(req, false);
    }

    /// [`serve`](Tracker::serve); with `managed`, the downstream call runs
    /// in `corepool::block_in_place`.
    fn serve_with(&self, req: Request, managed: bool) {
        let mut acc = req.id;
        for chunk in req.body.chunks(64) {
            acc = acc.wrapping_add(u64::from(chunk[0]));
        }
        if req.io {
            acc = burn(self.io_cpu_iters, acc);
            if managed {
                corepool::block_in_place(|| thread::sleep(self.io_wait));
            } else {
                thread::sleep(self.io_wait);
            }
        } else {
            acc = burn(self.cpu_iters, acc);
        }
        black_box(acc);
        drop(req.body);
        self.complete(req.id);
    }

    fn complete(&self, id: u64) {
        if let Some(slot) = self.done_ns.get(id as usize) {
            slot.store(self.now_ns(), Ordering::Relaxed);
        }
        let done = self.completed.fetch_add(1, Ordering::SeqCst) + 1;
        if done == self.target.load(Ordering::SeqCst) {
            let _guard = lock(&self.lock);
            self.all_done.notify_all();
        }
    }

    /// Blocks until every one of the `accepted` requests has completed.
    fn wait_for(&self, accepted: u64) {
        self.target.store(accepted, Ordering::SeqCst);
        let mut guard = lock(&self.lock);
        while self.completed.load(Ordering::SeqCst) < accepted {
            guard = self.all_done.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn progress(&self) -> Progress {
        Progress {
            issued: self.issued.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

/// What the generator saw.
struct Generated {
    accepted: u64,
    unsent: u64,
    /// When the generator stopped early (the deadline), ns after the start.
    stopped_ns: Option<u64>,
    max_lag_ns: u64,
}

/// The open-loop generator: issues request `i` at its scheduled time (or
/// as soon as it can, if behind) through `submit`, which returns whether
/// the engine accepted it. Stops issuing at the deadline.
fn generate(
    spec: &RunSpec,
    tracker: &Tracker,
    submit: &mut dyn FnMut(Request) -> bool,
) -> Generated {
    let deadline_ns = (spec.deadline_s * 1e9) as u64;
    let mut accepted = 0;
    let mut max_lag_ns = 0;
    let _slack = FineTimerSlack::set();
    for i in 0..spec.requests {
        let due = spec.scheduled_ns(i);
        let mut now = tracker.now_ns();
        // Wait for the request's arrival time by sleeping, not spinning: a
        // spinning generator would take a whole core from the engine on a
        // small machine. Requests that fall due while it sleeps go out
        // together when it wakes (each still timed from its own schedule).
        while now < due {
            let ahead = due - now;
            if ahead > 2_000 {
                thread::sleep(Duration::from_nanos(ahead));
            } else {
                std::hint::spin_loop();
            }
            now = tracker.now_ns();
        }
        if now > deadline_ns {
            return Generated {
                accepted,
                unsent: spec.requests - i,
                stopped_ns: Some(now),
                max_lag_ns,
            };
        }
        max_lag_ns = max_lag_ns.max(now - due);
        let req = Request {
            id: i,
            io: spec.is_io(i),
            body: vec![(i as u8) | 1; spec.payload_bytes],
        };
        if submit(req) {
            accepted += 1;
        } else {
            tracker.rejected.fetch_add(1, Ordering::Relaxed);
        }
        tracker.issued.fetch_add(1, Ordering::Relaxed);
    }
    Generated {
        accepted,
        unsent: 0,
        stopped_ns: None,
        max_lag_ns,
    }
}

/// Sets this thread's timer slack to 1 µs while alive (Linux), so that
/// the generator's short sleeps end close to when they should; restores
/// the previous slack on drop.
struct FineTimerSlack {
    #[cfg(target_os = "linux")]
    previous: Option<libc::c_ulong>,
}

impl FineTimerSlack {
    fn set() -> FineTimerSlack {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: PR_GET_TIMERSLACK takes no pointer arguments and only
            // returns the calling thread's slack.
            let previous = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
            // SAFETY: PR_SET_TIMERSLACK takes the new slack by value and
            // only affects the calling thread.
            let set =
                unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong, 0, 0, 0) };
            FineTimerSlack {
                previous: (previous > 0 && set == 0).then_some(previous as libc::c_ulong),
            }
        }
        #[cfg(not(target_os = "linux"))]
        FineTimerSlack {}
    }
}

impl Drop for FineTimerSlack {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(previous) = self.previous {
            // SAFETY: as in `set`: by value, the calling thread only.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, previous, 0, 0, 0) };
        }
    }
}

/// The thread-per-request engine's cap: a counting gate.
struct Gate {
    alive: Mutex<usize>,
    changed: Condvar,
    peak: AtomicUsize,
}

impl Gate {
    fn enter(&self, max: usize) {
        let mut alive = lock(&self.alive);
        while *alive >= max {
            alive = self.changed.wait(alive).unwrap_or_else(|e| e.into_inner());
        }
        *alive += 1;
        self.peak.fetch_max(*alive, Ordering::Relaxed);
    }

    fn leave(&self) {
        let mut alive = lock(&self.alive);
        *alive -= 1;
        self.changed.notify_all();
    }

    fn wait_empty(&self) {
        let mut alive = lock(&self.alive);
        while *alive > 0 {
            alive = self.changed.wait(alive).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Runs the workload `spec` through `engine` in this process and measures
/// it. `on_progress` is called about every 100 ms from another thread.
///
/// Errors only if the engine cannot be built (e.g. threads refused).
pub fn run_engine(
    engine: EngineKind,
    spec: &RunSpec,
    on_progress: &(dyn Fn(Progress) + Sync),
) -> Result<EngineResult, String> {
    let tracker = Arc::new(Tracker::new(spec));
    let baseline_rss_kib = current_rss_kib();
    let baseline_threads = process_threads();
    let usage_before = cpu_usage();
    let peak_sampled = AtomicU64::new(baseline_threads);
    let exact_extra_threads = AtomicU64::new(0);
    let (stop_tx, stop_rx) = mpsc::channel::<()>();

    let outcome = thread::scope(|scope| {
        // The sampler: thread count every 2 ms, progress every ~100 ms.
        let sampler_tracker = &tracker;
        let peak = &peak_sampled;
        scope.spawn(move || {
            let mut last_report = Instant::now();
            loop {
                peak.fetch_max(process_threads(), Ordering::Relaxed);
                if last_report.elapsed() >= Duration::from_millis(100) {
                    on_progress(sampler_tracker.progress());
                    last_report = Instant::now();
                }
                match stop_rx.recv_timeout(Duration::from_millis(2)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
        });

        let result = drive(engine, spec, &tracker, &exact_extra_threads);
        // The sampler exits when the sender is dropped.
        drop(stop_tx);
        result
    });
    let generated = outcome?;
    on_progress(tracker.progress());

    let usage_after = cpu_usage();
    // Linux updates the RSS counters lazily, per thread: take the larger
    // of the recorded peak and the current figure.
    let peak_rss_kib = peak_rss_kib().max(current_rss_kib());
    let peak_threads = peak_sampled
        .load(Ordering::Relaxed)
        .max(baseline_threads + exact_extra_threads.load(Ordering::Relaxed));

    // Latencies: completion minus scheduled arrival.
    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)
        .map_err(|e| format!("cannot create a histogram: {e}"))?;
    let mut last_done = 0u64;
    let mut completed = 0u64;
    let mut worst = (0u64, 0u64, 0u64); // (latency, request, completion)
    for (i, slot) in tracker.done_ns.iter().enumerate() {
        let done = slot.load(Ordering::Relaxed);
        if done == u64::MAX {
            continue;
        }
        completed += 1;
        last_done = last_done.max(done);
        let latency = done.saturating_sub(spec.scheduled_ns(i as u64)).max(1);
        if latency > worst.0 {
            worst = (latency, i as u64, done);
        }
        hist.saturating_record(latency);
    }
    // Requests never issued, but due before the generator gave up, waited
    // at least until then: they count with that lower bound, so that an
    // engine cannot look fast by not taking the requests it was too slow
    // for. The percentiles are then lower bounds too.
    let mut lower_bound_samples = 0;
    if let Some(stopped) = generated.stopped_ns {
        for i in spec.requests - generated.unsent..spec.requests {
            let due = spec.scheduled_ns(i);
            if due >= stopped {
                break;
            }
            hist.saturating_record((stopped - due).max(1));
            lower_bound_samples += 1;
        }
    }
    let elapsed_s = last_done as f64 / 1e9;
    let rejected = tracker.rejected.load(Ordering::Relaxed);
    let samples = completed + lower_bound_samples;
    let q = |quantile: f64| {
        if samples == 0 {
            0.0
        } else {
            hist.value_at_quantile(quantile) as f64 / 1e3
        }
    };
    debug_assert_eq!(completed, generated.accepted);
    Ok(EngineResult {
        engine: engine.name().to_owned(),
        description: engine.describe(spec),
        requests: spec.requests,
        completed,
        rejected,
        unsent: generated.unsent,
        elapsed_s,
        achieved_rps: if elapsed_s > 0.0 {
            completed as f64 / elapsed_s
        } else {
            0.0
        },
        offered_rps: spec.rate,
        p50_us: q(0.50),
        p90_us: q(0.90),
        p99_us: q(0.99),
        p999_us: q(0.999),
        max_us: if samples == 0 {
            0.0
        } else {
            hist.max() as f64 / 1e3
        },
        mean_us: if samples == 0 { 0.0 } else { hist.mean() / 1e3 },
        latency_lower_bound_samples: lower_bound_samples,
        worst_request: worst.1,
        worst_request_scheduled_ms: spec.scheduled_ns(worst.1) as f64 / 1e6,
        worst_request_done_ms: worst.2 as f64 / 1e6,
        max_generator_lag_ms: generated.max_lag_ns as f64 / 1e6,
        baseline_rss_kib,
        peak_rss_kib,
        cpu_user_s: usage_after.0 - usage_before.0,
        cpu_sys_s: usage_after.1 - usage_before.1,
        peak_threads,
        baseline_threads,
    })
}

/// Builds `engine`, feeds it the workload, waits for every accepted
/// request and tears the engine down.
fn drive(
    engine: EngineKind,
    spec: &RunSpec,
    tracker: &Arc<Tracker>,
    exact_extra_threads: &AtomicU64,
) -> Result<Generated, String> {
    let generated = match engine {
        EngineKind::Corepool | EngineKind::CorepoolShed | EngineKind::CorepoolManaged => {
            let managed = engine == EngineKind::CorepoolManaged;
            // Managed: one worker per core, and spares for the blocked ones
            // instead of the rule's extra workers.
            let (workers, spares) = if managed {
                (spec.cores, spec.workers)
            } else {
                (spec.workers, spec.workers)
            };
            let pool = corepool::Pool::builder()
                .workers(workers)
                .max_spare_threads(spares)
                .queue_capacity(spec.capacity)
                .pin_workers(spec.pin)
                .build()
                .map_err(|e| format!("cannot build the corepool pool: {e}"))?;
            let shed = engine == EngineKind::CorepoolShed;
            let generated = generate(spec, tracker, &mut |req| {
                let t = Arc::clone(tracker);
                let job = move || t.serve_with(req, managed);
                if shed {
                    pool.try_submit(job).is_ok()
                } else {
                    pool.submit(job).is_ok()
                }
            });
            tracker.wait_for(generated.accepted);
            drop(pool);
            generated
        }
        EngineKind::Threads => {
            let gate = Arc::new(Gate {
                alive: Mutex::new(0),
                changed: Condvar::new(),
                peak: AtomicUsize::new(0),
            });
            let generated = generate(spec, tracker, &mut |req| {
                gate.enter(spec.max_threads);
                let t = Arc::clone(tracker);
                let g = Arc::clone(&gate);
                match thread::Builder::new().spawn(move || {
                    t.serve(req);
                    g.leave();
                }) {
                    Ok(_detached) => true,
                    Err(_) => {
                        gate.leave();
                        false
                    }
                }
            });
            tracker.wait_for(generated.accepted);
            gate.wait_empty();
            exact_extra_threads.store(gate.peak.load(Ordering::Relaxed) as u64, Ordering::Relaxed);
            generated
        }
        EngineKind::Channel => {
            let (tx, rx) = crossbeam_channel::bounded::<Request>(spec.channel_capacity);
            let mut workers = Vec::with_capacity(spec.workers);
            for i in 0..spec.workers {
                let rx = rx.clone();
                let t = Arc::clone(tracker);
                let worker = thread::Builder::new()
                    .name(format!("chan-{i}"))
                    .spawn(move || {
                        for req in rx {
                            t.serve(req);
                        }
                    })
                    .map_err(|e| format!("cannot start a channel worker: {e}"))?;
                workers.push(worker);
            }
            drop(rx);
            let generated = generate(spec, tracker, &mut |req| tx.send(req).is_ok());
            tracker.wait_for(generated.accepted);
            drop(tx);
            for worker in workers {
                let _ = worker.join();
            }
            generated
        }
        EngineKind::Tokio => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(spec.cores.max(1))
                .max_blocking_threads(spec.tokio_blocking)
                .build()
                .map_err(|e| format!("cannot build the tokio runtime: {e}"))?;
            let generated = generate(spec, tracker, &mut |req| {
                let t = Arc::clone(tracker);
                drop(runtime.spawn_blocking(move || t.serve(req)));
                true
            });
            tracker.wait_for(generated.accepted);
            runtime.shutdown_timeout(Duration::from_secs(10));
            generated
        }
        EngineKind::Rayon => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(spec.workers)
                .build()
                .map_err(|e| format!("cannot build the rayon pool: {e}"))?;
            let generated = generate(spec, tracker, &mut |req| {
                let t = Arc::clone(tracker);
                pool.spawn(move || t.serve(req));
                true
            });
            tracker.wait_for(generated.accepted);
            drop(pool);
            generated
        }
    };
    Ok(generated)
}

/// Peak resident set size of this process (`getrusage` `ru_maxrss`), KiB.
pub fn peak_rss_kib() -> u64 {
    rusage().map_or(0, |u| u.ru_maxrss.max(0) as u64)
}

/// (user, system) CPU seconds this process has used so far.
pub fn cpu_usage() -> (f64, f64) {
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    rusage().map_or((0.0, 0.0), |u| (secs(u.ru_utime), secs(u.ru_stime)))
}

fn rusage() -> Option<libc::rusage> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; getrusage only writes it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    // SAFETY: getrusage returned 0, so it initialised `usage` (and it was
    // zeroed before, which is a valid `rusage` anyway).
    (rc == 0).then(|| unsafe { usage.assume_init() })
}

/// The current resident set size (`VmRSS` of `/proc/self/status`), KiB;
/// 0 where unavailable.
pub fn current_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Threads in this process now (field 20 of `/proc/self/stat`); 0 where
/// unavailable.
pub fn process_threads() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The command name may hold spaces: count fields after its ')'.
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().nth(17)?.parse().ok()
        })
        .unwrap_or(0)
}
