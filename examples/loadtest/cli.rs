//! The load test's command-line flags, their defaults per profile, the
//! worker-count rule of thumb, and the validation that turns flags into a
//! [`Config`] or a message for the user (exit code 2), before any engine
//! runs.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::engines::{EngineKind, RunSpec};

/// The most requests one run may generate (each costs 8 bytes of
/// bookkeeping plus its body while in flight).
pub const MAX_REQUESTS: u64 = 100_000_000;

/// The most worker threads a pool engine may be given.
pub const MAX_WORKERS: usize = 32_768;

/// Threads the demo keeps for itself (generator, sampler, runtimes) when
/// comparing a thread cap with the OS's limits.
pub const THREAD_HEADROOM: u64 = 64;

/// What each request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Profile {
    /// A few µs of busy work per request (`--cpu-us`).
    Cpu,
    /// Some CPU (`--io-cpu-us`) then a blocking wait standing for a
    /// downstream call (`--io-wait-us`).
    Io,
    /// Mostly `cpu` requests; a share (`--io-share`) of `io` requests.
    Mixed,
}

impl Profile {
    /// The profile's name.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Cpu => "cpu",
            Profile::Io => "io",
            Profile::Mixed => "mixed",
        }
    }

    /// Default number of requests: sized so that all seven engines finish in
    /// well under a minute on a 2-core machine.
    pub fn default_requests(self) -> u64 {
        match self {
            Profile::Cpu => 1_000_000,
            Profile::Io => 20_000,
            Profile::Mixed => 200_000,
        }
    }

    /// Default target rate, requests per second.
    pub fn default_rps(self) -> u64 {
        match self {
            Profile::Cpu => 250_000,
            Profile::Io => 10_000,
            Profile::Mixed => 100_000,
        }
    }
}

/// Replays the payment-service story: N requests through six ways of
/// running handlers concurrently, each engine in its own child process.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "loadtest",
    about = "Open-loop load test: corepool against thread-per-request, a channel pool, tokio spawn_blocking and rayon",
    long_about = "Open-loop load test: corepool against thread-per-request, a channel pool, \
tokio spawn_blocking and rayon.\n\n\
Each engine runs in its own child process (peak RSS and CPU time are per process). \
Latency is measured from each request's scheduled arrival (start + i/rps) to its \
completion, so a generator held up by backpressure does not hide queueing delay."
)]
pub struct Args {
    /// Workload profile.
    #[arg(long, value_enum, default_value_t = Profile::Cpu)]
    pub profile: Profile,

    /// Requests to generate [default: cpu 1000000, io 20000, mixed 200000].
    #[arg(long, short = 'n')]
    pub requests: Option<u64>,

    /// Target arrival rate, requests/s [default: cpu 250000, io 10000, mixed 100000].
    #[arg(long, conflicts_with = "burst")]
    pub rps: Option<u64>,

    /// Schedule every request at time zero instead of at a rate.
    #[arg(long)]
    pub burst: bool,

    /// Engines to run, comma-separated [default: all]:
    /// corepool, corepool-shed, corepool-managed, threads, channel, tokio, rayon.
    #[arg(long, value_delimiter = ',')]
    pub engines: Option<Vec<String>>,

    /// Worker threads of corepool, the channel pool and rayon
    /// [default: the rule of thumb printed at start].
    #[arg(long)]
    pub workers: Option<usize>,

    /// corepool's queue capacity [default: workers × 256].
    #[arg(long)]
    pub capacity: Option<usize>,

    /// The channel pool's bound [default: workers × 10].
    #[arg(long)]
    pub channel_capacity: Option<usize>,

    /// Most threads alive at once in the thread-per-request engine.
    #[arg(long, default_value_t = 2_000)]
    pub max_threads: usize,

    /// tokio's max_blocking_threads.
    #[arg(long, default_value_t = 512)]
    pub tokio_blocking: usize,

    /// Busy work of a CPU request, µs.
    #[arg(long, default_value_t = 2.0)]
    pub cpu_us: f64,

    /// Busy work of an I/O request before its downstream call, µs.
    #[arg(long, default_value_t = 20.0)]
    pub io_cpu_us: f64,

    /// The downstream call of an I/O request (a blocking sleep), µs.
    #[arg(long, default_value_t = 1_000)]
    pub io_wait_us: u64,

    /// Fraction of I/O requests in the mixed profile [default: 0.1].
    #[arg(long)]
    pub io_share: Option<f64>,

    /// Bytes of request body allocated at arrival, freed at completion.
    #[arg(long, default_value_t = 512)]
    pub payload_bytes: usize,

    /// Per engine: stop issuing after this many seconds (the rest is
    /// reported as unsent).
    #[arg(long, default_value_t = 5.0)]
    pub engine_timeout: f64,

    /// Do not pin corepool's workers to cores.
    #[arg(long)]
    pub no_pin: bool,

    /// No progress bars (they are also off when stdout is not a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Draw the comparison as an SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// Write the raw figures as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Internal: run one engine and print its result as JSON.
    #[arg(long, hide = true, requires = "child_spec")]
    pub engine_child: Option<String>,

    /// Internal: the child's workload, as JSON.
    #[arg(long, hide = true)]
    pub child_spec: Option<String>,
}

/// What the OS allows, read once; tests make their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SystemLimits {
    /// Cores the process may use.
    pub cores: usize,
    /// `/proc/sys/kernel/threads-max`, if readable.
    pub threads_max: Option<u64>,
    /// The soft `RLIMIT_NPROC`, if finite.
    pub nproc: Option<u64>,
    /// `/proc/sys/vm/max_map_count`, if readable: each thread takes
    /// [`MAPS_PER_THREAD`] memory mappings, so this caps threads too.
    pub max_map_count: Option<u64>,
}

/// Memory mappings a Rust thread takes: its stack, the stack's guard page,
/// its signal stack and that one's guard page (measured on Linux). Past
/// `vm.max_map_count / 4` threads, spawning fails, and a thread that
/// cannot map its signal stack aborts the whole process.
pub const MAPS_PER_THREAD: u64 = 4;

impl SystemLimits {
    /// Reads the limits of this machine and process.
    pub fn read() -> SystemLimits {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads_max = std::fs::read_to_string("/proc/sys/kernel/threads-max")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid, writable rlimit; getrlimit only writes it.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut limit) };
        let nproc = (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur);
        let max_map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        SystemLimits {
            cores,
            threads_max,
            nproc,
            max_map_count,
        }
    }

    /// The most threads this process may hope to create, if known.
    pub fn thread_limit(&self) -> Option<u64> {
        [
            self.threads_max,
            self.nproc,
            self.max_map_count.map(|m| m / MAPS_PER_THREAD),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The limits, spelled out for a message.
    pub fn describe(&self) -> String {
        let show = |v: Option<u64>, none: &str| v.map_or(none.to_owned(), |v| v.to_string());
        format!(
            "kernel.threads-max = {}, RLIMIT_NPROC = {}, vm.max_map_count = {} \
             (÷ {MAPS_PER_THREAD} mappings per thread)",
            show(self.threads_max, "unknown"),
            show(self.nproc, "unlimited"),
            show(self.max_map_count, "unknown"),
        )
    }
}

/// The worker count and how it was derived.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerRule {
    /// The rule's worker count.
    pub workers: usize,
    /// The rule, spelled out with this run's numbers.
    pub explanation: String,
}

/// The story's rule of thumb for the number of workers.
///
/// * `cpu`: one worker per core.
/// * `io` and `mixed`: `cores × 2 + I/O-bound share`, where the I/O-bound
///   share is `⌈cores × mean blocked time / mean CPU time⌉` per request:
///   the extra threads needed so that every core still has a runnable
///   thread while the others wait on their downstream calls.
pub fn worker_rule(
    profile: Profile,
    cores: usize,
    cpu_us: f64,
    io_cpu_us: f64,
    io_wait_us: u64,
    io_share: f64,
) -> WorkerRule {
    if profile == Profile::Cpu {
        return WorkerRule {
            workers: cores,
            explanation: format!("workers = cores = {cores} (cpu profile: one per core)"),
        };
    }
    let mean_cpu = (1.0 - io_share) * cpu_us + io_share * io_cpu_us;
    let mean_wait = io_share * io_wait_us as f64;
    let share_f = cores as f64 * mean_wait / mean_cpu.max(0.1);
    let share = (share_f.ceil() as usize).min(MAX_WORKERS);
    let workers = (cores * 2 + share).min(4_096);
    WorkerRule {
        workers,
        explanation: format!(
            "workers = cores × 2 + I/O-bound share = {cores} × 2 + ⌈{cores} × {mean_wait:.1} µs blocked / \
             {mean_cpu:.1} µs CPU⌉ = {} + {share} = {workers}{} \
             (I/O-bound share: extra threads that keep every core busy while others wait on I/O)",
            cores * 2,
            if workers == 4_096 { " (capped)" } else { "" },
        ),
    }
}

/// A validated configuration: everything the parent needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The workload profile.
    pub profile: Profile,
    /// Engines to run, in order.
    pub engines: Vec<EngineKind>,
    /// The worker-count rule and its result (even if `--workers` overrode it).
    pub rule: WorkerRule,
    /// Busy work of a CPU request, µs.
    pub cpu_us: f64,
    /// Busy work of an I/O request, µs.
    pub io_cpu_us: f64,
    /// The workload and engine parameters, with the CPU work still in µs
    /// (`cpu_iters`, `io_cpu_iters` are filled by [`Config::run_spec`]).
    pub spec: RunSpec,
    /// SVG output.
    pub plot: Option<PathBuf>,
    /// JSON output.
    pub json: Option<PathBuf>,
    /// No progress bars.
    pub quiet: bool,
}

impl Config {
    /// The spec to hand to the engines, with the CPU work converted to
    /// busy-loop iterations at `iters_per_us` (see
    /// [`crate::engines::calibrate_iters_per_us`]).
    pub fn run_spec(&self, iters_per_us: f64) -> RunSpec {
        RunSpec {
            cpu_iters: (self.cpu_us * iters_per_us).round() as u64,
            io_cpu_iters: (self.io_cpu_us * iters_per_us).round() as u64,
            ..self.spec.clone()
        }
    }
}

/// Checks the flags against each other and against `limits`, and checks
/// that the output files can be written. Returns the message to show the
/// user on the first problem found.
pub fn validate(args: &Args, limits: &SystemLimits) -> Result<Config, String> {
    let profile = args.profile;
    let requests = args.requests.unwrap_or(profile.default_requests());
    if requests == 0 {
        return Err("--requests must be at least 1".into());
    }
    if requests > MAX_REQUESTS {
        return Err(format!(
            "--requests {requests} is more than this demo handles ({MAX_REQUESTS})"
        ));
    }
    let rate = if args.burst {
        None
    } else {
        match args.rps {
            Some(0) => {
                return Err(
                    "--rps must be at least 1 request per second (got 0); use --burst to \
                     schedule every request at once"
                        .into(),
                )
            }
            Some(r) => Some(r),
            None => Some(profile.default_rps()),
        }
    };

    let engines = match &args.engines {
        None => EngineKind::ALL.to_vec(),
        Some(names) => {
            let mut engines = Vec::new();
            for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                let engine = EngineKind::parse(name).ok_or_else(|| {
                    format!(
                        "unknown engine {name:?} in --engines; choose from {}",
                        EngineKind::ALL.map(EngineKind::name).join(", ")
                    )
                })?;
                if engines.contains(&engine) {
                    return Err(format!("engine {name:?} is listed twice in --engines"));
                }
                engines.push(engine);
            }
            if engines.is_empty() {
                return Err("--engines needs at least one engine".into());
            }
            engines
        }
    };

    for (flag, value) in [("--cpu-us", args.cpu_us), ("--io-cpu-us", args.io_cpu_us)] {
        if !value.is_finite() || !(0.0..=1_000_000.0).contains(&value) {
            return Err(format!(
                "{flag} must be between 0 and 1000000 µs (got {value})"
            ));
        }
    }
    if args.io_wait_us > 10_000_000 {
        return Err(format!(
            "--io-wait-us must be at most 10000000 (10 s); got {}",
            args.io_wait_us
        ));
    }
    let io_share = match (profile, args.io_share) {
        (Profile::Mixed, share) => {
            let share = share.unwrap_or(0.1);
            if !share.is_finite() || !(0.0..=1.0).contains(&share) {
                return Err(format!("--io-share must be between 0 and 1 (got {share})"));
            }
            share
        }
        (_, Some(_)) => {
            return Err("--io-share applies to --profile mixed only".into());
        }
        (Profile::Cpu, None) => 0.0,
        (Profile::Io, None) => 1.0,
    };
    if args.payload_bytes > 1 << 20 {
        return Err(format!(
            "--payload-bytes must be at most 1048576 (got {})",
            args.payload_bytes
        ));
    }
    if !args.engine_timeout.is_finite() || args.engine_timeout <= 0.0 {
        return Err(format!(
            "--engine-timeout must be a positive number of seconds (got {})",
            args.engine_timeout
        ));
    }

    let cores = limits.cores.max(1);
    let rule = worker_rule(
        profile,
        cores,
        args.cpu_us,
        args.io_cpu_us,
        args.io_wait_us,
        io_share,
    );
    let workers = args.workers.unwrap_or(rule.workers);
    if workers == 0 || workers > MAX_WORKERS {
        return Err(format!(
            "--workers must be between 1 and {MAX_WORKERS} (got {workers})"
        ));
    }
    let capacity = args
        .capacity
        .unwrap_or(workers * corepool::DEFAULT_CAPACITY_PER_WORKER);
    if capacity == 0 {
        return Err("--capacity must be at least 1".into());
    }
    let channel_capacity = args.channel_capacity.unwrap_or(workers * 10);
    if channel_capacity == 0 {
        return Err("--channel-capacity must be at least 1".into());
    }
    if args.max_threads == 0 {
        return Err("--max-threads must be at least 1".into());
    }
    if args.tokio_blocking == 0 {
        return Err("--tokio-blocking must be at least 1".into());
    }
    if let Some(limit) = limits.thread_limit() {
        for (flag, value) in [
            ("--max-threads", args.max_threads),
            ("--workers", workers),
            ("--tokio-blocking", args.tokio_blocking),
        ] {
            if value as u64 + THREAD_HEADROOM > limit {
                return Err(format!(
                    "{flag} {value} is above what the OS allows this process: at most {} \
                     threads, less {THREAD_HEADROOM} kept for the demo itself ({})",
                    limit,
                    limits.describe()
                ));
            }
        }
    }

    if let Some(plot) = &args.plot {
        if plot.extension().and_then(|e| e.to_str()) != Some("svg") {
            return Err(format!(
                "--plot {}: only SVG output is supported; name the file *.svg",
                plot.display()
            ));
        }
        check_writable(plot, "--plot")?;
    }
    if let Some(json) = &args.json {
        check_writable(json, "--json")?;
    }

    Ok(Config {
        profile,
        engines,
        rule,
        cpu_us: args.cpu_us,
        io_cpu_us: args.io_cpu_us,
        spec: RunSpec {
            requests,
            rate,
            cpu_iters: 0,
            io_cpu_iters: 0,
            io_wait_us: args.io_wait_us,
            io_share,
            payload_bytes: args.payload_bytes,
            deadline_s: args.engine_timeout,
            cores,
            workers,
            capacity,
            channel_capacity,
            max_threads: args.max_threads,
            tokio_blocking: args.tokio_blocking,
            pin: !args.no_pin,
        },
        plot: args.plot.clone(),
        json: args.json.clone(),
        quiet: args.quiet,
    })
}

/// Checks that `path` can be written, without truncating an existing file
/// (a file created for the check is removed again).
pub fn check_writable(path: &Path, flag: &str) -> Result<(), String> {
    let fail = |why: String| Err(format!("{flag} {}: {why}", path.display()));
    if path.as_os_str().is_empty() {
        return fail("empty path".into());
    }
    if path.is_dir() {
        return fail("is a directory".into());
    }
    if path.exists() {
        return match OpenOptions::new().append(true).open(path) {
            Ok(_) => Ok(()),
            Err(e) => fail(format!("cannot write: {e}")),
        };
    }
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => {
            drop(file);
            let _ = std::fs::remove_file(path);
            Ok(())
        }
        Err(e) => fail(format!("cannot create: {e}")),
    }
}
