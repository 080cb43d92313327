//! The load-test demo: replays the payment-service story (a flood of
//! request handlers) through corepool and the usual alternatives, and shows
//! throughput, latency from scheduled arrival, peak memory, CPU time and
//! threads side by side.
//!
//! ```text
//! cargo run --release --example loadtest                       # cpu profile, all engines
//! cargo run --release --example loadtest -- --profile io --burst -n 50000 --plot out.svg
//! cargo run --release --example loadtest -- --help
//! ```
//!
//! Each engine runs in a child process (this binary, re-executed with a
//! hidden `--engine-child NAME` flag) that prints its figures as JSON on
//! stdout and progress lines on stderr; the parent draws the progress bars
//! and the comparison. Bad flags exit with code 2 and a message, before any
//! engine runs.

mod cli;
mod engines;
mod report;

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use cli::{Args, Config, SystemLimits};
use engines::{EngineKind, EngineResult, RunSpec};
use report::{Failure, Report};

/// Prefix of the progress lines a child writes to stderr.
const PROGRESS_TAG: &str = "@@loadtest-progress";

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // clap: usage errors exit with 2, --help and --version with 0.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    if let Some(name) = &args.engine_child {
        return child_main(name, args.child_spec.as_deref().unwrap_or(""));
    }
    let limits = SystemLimits::read();
    match cli::validate(&args, &limits) {
        Ok(config) => parent_main(&config, &limits),
        Err(message) => {
            eprintln!("loadtest: error: {message}");
            ExitCode::from(2)
        }
    }
}

/// The child: runs one engine and prints its figures as JSON on stdout.
fn child_main(name: &str, spec_json: &str) -> ExitCode {
    let Some(engine) = EngineKind::parse(name) else {
        eprintln!("loadtest: error: unknown engine {name:?}");
        return ExitCode::from(2);
    };
    let spec: RunSpec = match serde_json::from_str(spec_json) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("loadtest: error: bad --child-spec: {e}");
            return ExitCode::from(2);
        }
    };
    let progress = |p: engines::Progress| {
        eprintln!("{PROGRESS_TAG} {} {} {}", p.issued, p.completed, p.rejected);
    };
    match engines::run_engine(engine, &spec, &progress) {
        Ok(result) => match serde_json::to_string(&result) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("loadtest: error: cannot encode the result: {e}");
                ExitCode::FAILURE
            }
        },
        Err(message) => {
            eprintln!("loadtest: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The parent: prints the setup, runs each engine in a child, then prints
/// the table and writes the JSON and SVG files.
fn parent_main(config: &Config, limits: &SystemLimits) -> ExitCode {
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let bars = !config.quiet && std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let iters_per_us = engines::calibrate_iters_per_us();
    let spec = config.run_spec(iters_per_us);
    print_header(config, limits, &spec, iters_per_us);

    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("loadtest: error: cannot find this program to re-run it: {e}");
            return ExitCode::FAILURE;
        }
    };
    let spec_json = match serde_json::to_string(&spec) {
        Ok(json) => json,
        Err(e) => {
            eprintln!("loadtest: error: cannot encode the workload: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut results = Vec::new();
    let mut failures = Vec::new();
    let total = config.engines.len();
    for (i, &engine) in config.engines.iter().enumerate() {
        let started = Instant::now();
        match run_child(&exe, engine, &spec, &spec_json, bars) {
            Ok(result) => {
                if !config.quiet && !bars {
                    eprintln!(
                        "[{}/{total}] {:<13} done in {:.1} s: {} req/s",
                        i + 1,
                        engine.name(),
                        started.elapsed().as_secs_f64(),
                        report::fmt_count(result.achieved_rps.round() as u64)
                    );
                }
                results.push(result);
            }
            Err(message) => {
                eprintln!("loadtest: engine {} failed: {message}", engine.name());
                failures.push(Failure {
                    engine: engine.name().to_owned(),
                    message,
                });
            }
        }
    }

    println!();
    print!("{}", report::table(&results));
    println!();
    println!("{}", report::TABLE_NOTES);
    let ratios = report::ratios(&results);
    if !ratios.is_empty() {
        println!();
        print!("{ratios}");
    }

    let report = Report {
        started_unix_s,
        cores: limits.cores,
        iters_per_us,
        config: config.clone(),
        results,
        failures,
    };
    let mut code = if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if let Some(path) = &config.json {
        match report::write_json(&report, path) {
            Ok(()) => println!("\nfigures written to {}", path.display()),
            Err(message) => {
                eprintln!("loadtest: error: {message}");
                code = ExitCode::FAILURE;
            }
        }
    }
    if let Some(path) = &config.plot {
        match report::write_svg(&report, path) {
            Ok(()) => println!("chart written to {}", path.display()),
            Err(message) => {
                eprintln!("loadtest: error: {message}");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}

fn print_header(config: &Config, limits: &SystemLimits, spec: &RunSpec, iters_per_us: f64) {
    let load = match spec.rate {
        Some(rate) => format!("at {} req/s (open loop)", report::fmt_count(rate)),
        None => "as one burst (all scheduled at t=0)".to_owned(),
    };
    println!(
        "corepool loadtest: {} profile, {} requests {load}, {}-byte request bodies",
        config.profile.name(),
        report::fmt_count(spec.requests),
        spec.payload_bytes
    );
    println!(
        "  machine: {} cores; thread limits: {}",
        limits.cores,
        limits.describe()
    );
    let work = match config.profile {
        cli::Profile::Cpu => format!("cpu request = {:.1} µs busy work", config.cpu_us),
        cli::Profile::Io => format!(
            "io request = {:.1} µs busy work + {} µs blocking call",
            config.io_cpu_us, spec.io_wait_us
        ),
        cli::Profile::Mixed => format!(
            "{:.0}% io requests ({:.1} µs + {} µs blocking), the rest {:.1} µs busy work",
            spec.io_share * 100.0,
            config.io_cpu_us,
            spec.io_wait_us,
            config.cpu_us
        ),
    };
    println!("  work: {work} (busy loop calibrated at {iters_per_us:.0} iterations/µs)");
    println!("  rule of thumb: {}", config.rule.explanation);
    if spec.workers != config.rule.workers {
        println!("  workers: {} (set by --workers)", spec.workers);
    }
    println!(
        "  per-engine deadline {:.0} s (requests not issued by then are reported as unsent)",
        spec.deadline_s
    );
    println!("  engines, one child process each:");
    for engine in &config.engines {
        println!("    {:<13} {}", engine.name(), engine.describe(spec));
    }
    println!();
}

/// Runs `engine` in a child process, drawing its progress bar, and returns
/// the child's figures.
fn run_child(
    exe: &Path,
    engine: EngineKind,
    spec: &RunSpec,
    spec_json: &str,
    bars: bool,
) -> Result<EngineResult, String> {
    let mut child = Command::new(exe)
        .arg("--engine-child")
        .arg(engine.name())
        .arg("--child-spec")
        .arg(spec_json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the child process: {e}"))?;

    let bar = if bars {
        let bar = ProgressBar::new(spec.requests);
        let style = ProgressStyle::with_template(
            "{prefix:>13} [{elapsed_precise}] [{bar:30}] {pos:>10}/{len} {msg}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(engine.name());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };

    // The child's stderr: progress lines drive the bar; anything else is
    // passed through and kept for the error message.
    let stderr = child.stderr.take();
    let reader_bar = bar.clone();
    let reader = thread::spawn(move || {
        let mut other = Vec::new();
        let Some(stderr) = stderr else {
            return other;
        };
        let mut last = (Instant::now(), 0u64);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix(PROGRESS_TAG) {
                let nums: Vec<u64> = rest
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                if let [_issued, completed, rejected] = nums[..] {
                    let dt = last.0.elapsed().as_secs_f64();
                    let rps = if dt > 0.0 {
                        completed.saturating_sub(last.1) as f64 / dt
                    } else {
                        0.0
                    };
                    last = (Instant::now(), completed);
                    reader_bar.set_position(completed + rejected);
                    reader_bar.set_message(format!(
                        "{} req/s, {} rejected",
                        report::fmt_count(rps.round() as u64),
                        report::fmt_count(rejected)
                    ));
                }
            } else {
                reader_bar.suspend(|| eprintln!("  [child] {line}"));
                other.push(line);
            }
        }
        other
    });

    // A watchdog, so that a wedged child cannot hang the demo.
    let limit = Duration::from_secs_f64(spec.deadline_s * 2.0 + 120.0);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let pid = child.id();
    let watchdog = thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(limit) {
            let pid = libc::pid_t::try_from(pid).unwrap_or(0);
            if pid > 0 {
                // SAFETY: plain syscall on the pid of our own child, which
                // has not been reaped yet (we are still waiting on it).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            true
        } else {
            false
        }
    });

    let mut stdout = String::new();
    let read = match child.stdout.take() {
        Some(mut out) => out.read_to_string(&mut stdout).map(|_| ()),
        None => Ok(()),
    };
    let status = child.wait();
    let _ = done_tx.send(());
    let killed = watchdog.join().unwrap_or(false);
    let other = reader.join().unwrap_or_default();
    bar.finish_and_clear();
    if bars {
        // Leave a one-line summary where the bar was.
        eprintln!(
            "{:>13} finished: {}",
            engine.name(),
            match serde_json::from_str::<EngineResult>(stdout.trim()) {
                Ok(r) => format!(
                    "{} req/s, p99 {}",
                    report::fmt_count(r.achieved_rps.round() as u64),
                    report::fmt_latency(r.p99_us)
                ),
                Err(_) => "failed".to_owned(),
            }
        );
    }

    if killed {
        return Err(format!(
            "killed after {:.0} s without finishing",
            limit.as_secs_f64()
        ));
    }
    let status = status.map_err(|e| format!("cannot wait for the child: {e}"))?;
    read.map_err(|e| format!("cannot read the child's output: {e}"))?;
    if !status.success() {
        let tail = other
            .iter()
            .rev()
            .take(5)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ");
        return Err(format!("child exited with {status}: {tail}"));
    }
    serde_json::from_str(stdout.trim())
        .map_err(|e| format!("cannot parse the child's figures: {e}"))
}
