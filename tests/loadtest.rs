//! Tests of the load-test demo (`examples/loadtest`): every engine on tiny
//! sizes in-process, the flag validation, the report writers, and one run
//! of the built example binary. No sleeps for synchronisation and no timing
//! asserts: only the accounting and the ordering of the figures.

#[allow(dead_code)]
#[path = "../examples/loadtest/cli.rs"]
mod cli;
#[allow(dead_code)]
#[path = "../examples/loadtest/engines.rs"]
mod engines;
#[allow(dead_code)]
#[path = "../examples/loadtest/report.rs"]
mod report;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use clap::Parser;

use cli::{Args, Profile, SystemLimits};
use engines::{EngineKind, EngineResult, Progress, RunSpec};

/// A workload small enough for a debug build: a mix of CPU requests and
/// short I/O requests.
fn tiny_spec(rate: Option<u64>) -> RunSpec {
    RunSpec {
        requests: 300,
        rate,
        cpu_iters: 50,
        io_cpu_iters: 50,
        io_wait_us: 50,
        io_share: 0.2,
        payload_bytes: 64,
        deadline_s: 3_600.0,
        cores: 2,
        workers: 3,
        capacity: 8,
        channel_capacity: 8,
        max_threads: 16,
        tokio_blocking: 8,
        pin: false,
    }
}

/// The invariants every result must satisfy.
fn check_consistent(r: &EngineResult, spec: &RunSpec) {
    let who = &r.engine;
    assert_eq!(r.requests, spec.requests, "{who}");
    assert_eq!(
        r.completed + r.rejected + r.unsent,
        spec.requests,
        "{who}: every request is completed, rejected or unsent"
    );
    for (name, v) in [
        ("p50", r.p50_us),
        ("p90", r.p90_us),
        ("p99", r.p99_us),
        ("p99.9", r.p999_us),
        ("max", r.max_us),
        ("mean", r.mean_us),
    ] {
        assert!(v.is_finite() && v >= 0.0, "{who}: {name} = {v}");
    }
    assert!(r.p50_us <= r.p90_us, "{who}: p50 <= p90");
    assert!(r.p90_us <= r.p99_us, "{who}: p90 <= p99");
    assert!(r.p99_us <= r.p999_us, "{who}: p99 <= p99.9");
    assert!(r.p999_us <= r.max_us, "{who}: p99.9 <= max");
    assert!(r.elapsed_s >= 0.0 && r.achieved_rps >= 0.0, "{who}");
    assert!(r.cpu_user_s >= 0.0 && r.cpu_sys_s >= 0.0, "{who}");
    assert!(r.peak_threads >= 1, "{who}");
    assert!(r.peak_rss_kib > 0, "{who}");
    if r.completed > 0 {
        assert!(r.p50_us > 0.0 && r.elapsed_s > 0.0, "{who}");
    }
}

fn run(engine: EngineKind, spec: &RunSpec) -> (EngineResult, Progress) {
    let last = Mutex::new(Progress::default());
    let result = engines::run_engine(engine, spec, &|p| {
        *last.lock().unwrap() = p;
    })
    .unwrap_or_else(|e| panic!("{}: {e}", engine.name()));
    let last = *last.lock().unwrap();
    (result, last)
}

#[test]
fn every_engine_accounts_for_every_request() {
    for rate in [Some(50_000), None] {
        let spec = tiny_spec(rate);
        for engine in EngineKind::ALL {
            let (r, progress) = run(engine, &spec);
            check_consistent(&r, &spec);
            assert_eq!(r.engine, engine.name());
            assert_eq!(r.unsent, 0, "{}: no deadline was hit", r.engine);
            assert_eq!(r.latency_lower_bound_samples, 0);
            // Only shedding (and a refused thread spawn) may reject.
            if !matches!(engine, EngineKind::CorepoolShed | EngineKind::Threads) {
                assert_eq!(r.rejected, 0, "{}", r.engine);
                assert_eq!(r.completed, spec.requests, "{}", r.engine);
            }
            // The last progress report is the final tally.
            assert_eq!(progress.completed, r.completed, "{}", r.engine);
            assert_eq!(progress.rejected, r.rejected, "{}", r.engine);
            assert_eq!(progress.issued, r.completed + r.rejected, "{}", r.engine);
        }
    }
}

#[test]
fn shedding_counts_every_refused_request() {
    let spec = RunSpec {
        requests: 500,
        rate: None,
        workers: 1,
        capacity: 1,
        io_share: 1.0,
        io_wait_us: 100,
        ..tiny_spec(None)
    };
    let (r, _) = run(EngineKind::CorepoolShed, &spec);
    check_consistent(&r, &spec);
    assert_eq!(r.unsent, 0);
    assert!(r.completed >= 1, "the first request always finds room");
}

#[test]
fn the_deadline_reports_unsent_requests_with_a_latency_lower_bound() {
    // A deadline already past when the first request is due: nothing is
    // issued, and request 0 (due at t=0) counts with the wait it reached.
    let spec = RunSpec {
        requests: 5,
        rate: Some(1),
        deadline_s: 1e-12,
        ..tiny_spec(None)
    };
    for engine in [EngineKind::Corepool, EngineKind::Threads] {
        let (r, _) = run(engine, &spec);
        check_consistent(&r, &spec);
        assert_eq!(r.unsent, 5);
        assert_eq!(r.completed, 0);
        assert_eq!(r.latency_lower_bound_samples, 1);
    }
}

#[test]
fn schedule_and_request_mix() {
    let spec = tiny_spec(Some(1_000));
    assert_eq!(spec.scheduled_ns(0), 0);
    assert_eq!(spec.scheduled_ns(5), 5_000_000);
    assert_eq!(spec.scheduled_ns(1_000), 1_000_000_000);
    let burst = tiny_spec(None);
    assert_eq!(burst.scheduled_ns(12_345), 0);

    let count_io = |share: f64| {
        let spec = RunSpec {
            io_share: share,
            ..tiny_spec(None)
        };
        (0..1_000).filter(|i| spec.is_io(*i)).count()
    };
    assert_eq!(count_io(0.0), 0);
    assert_eq!(count_io(0.25), 250);
    assert_eq!(count_io(0.1), 100);
    assert_eq!(count_io(1.0), 1_000);
}

#[test]
fn burn_and_calibration_are_sane() {
    assert_ne!(engines::burn(10, 1), engines::burn(11, 1));
    assert!(engines::calibrate_iters_per_us() >= 1.0);
}

#[test]
fn engine_names_round_trip() {
    for engine in EngineKind::ALL {
        assert_eq!(EngineKind::parse(engine.name()), Some(engine));
        assert!(!engine.describe(&tiny_spec(None)).is_empty());
    }
    assert_eq!(EngineKind::parse("goroutines"), None);
}

// ---- flags ----------------------------------------------------------------

const LIMITS: SystemLimits = SystemLimits {
    cores: 2,
    threads_max: Some(100_000),
    nproc: Some(50_000),
    max_map_count: None,
};

fn parse(flags: &[&str]) -> Args {
    let mut argv = vec!["loadtest"];
    argv.extend_from_slice(flags);
    Args::try_parse_from(argv).expect("flags parse")
}

fn validate(flags: &[&str]) -> Result<cli::Config, String> {
    cli::validate(&parse(flags), &LIMITS)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("corepool-loadtest-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn defaults_follow_the_rule_of_thumb() {
    let cpu = validate(&[]).expect("defaults are valid");
    assert_eq!(cpu.profile, Profile::Cpu);
    assert_eq!(cpu.spec.requests, 1_000_000);
    assert_eq!(cpu.spec.workers, 2, "cpu: one worker per core");
    assert_eq!(cpu.spec.capacity, 2 * corepool::DEFAULT_CAPACITY_PER_WORKER);
    assert_eq!(cpu.spec.channel_capacity, 20);
    assert_eq!(cpu.engines, EngineKind::ALL.to_vec());

    // io: 2 cores × 2 + ⌈2 × 1000 µs / 20 µs⌉ = 4 + 100.
    let io = validate(&["--profile", "io"]).expect("valid");
    assert_eq!(io.spec.workers, 104);
    assert_eq!(io.spec.io_share, 1.0);
    assert!(
        io.rule.explanation.contains("= 104"),
        "{}",
        io.rule.explanation
    );

    // mixed, 10% io: mean CPU 0.9×2 + 0.1×20 = 3.8 µs, mean wait 100 µs:
    // 4 + ⌈2 × 100 / 3.8⌉ = 4 + 53.
    let mixed = validate(&["--profile", "mixed"]).expect("valid");
    assert_eq!(mixed.spec.workers, 57);

    let set = validate(&["--profile", "io", "--workers", "8", "--capacity", "3"]).expect("valid");
    assert_eq!((set.spec.workers, set.spec.capacity), (8, 3));
    assert_eq!(set.rule.workers, 104, "the rule is still reported");

    let spec = cpu.run_spec(100.0);
    assert_eq!(spec.cpu_iters, 200);
    assert_eq!(spec.io_cpu_iters, 2_000);
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    let refused = |flags: &[&str], needle: &str| {
        let err = validate(flags).expect_err("must be refused");
        assert!(err.contains(needle), "{flags:?}: {err:?} lacks {needle:?}");
    };
    refused(&["--rps", "0"], "--rps");
    refused(&["--requests", "0"], "--requests");
    refused(&["--workers", "0"], "--workers");
    refused(&["--capacity", "0"], "--capacity");
    refused(&["--max-threads", "0"], "--max-threads");
    refused(&["--tokio-blocking", "0"], "--tokio-blocking");
    refused(&["--engines", "corepool,goroutines"], "goroutines");
    refused(&["--engines", "rayon,rayon"], "twice");
    refused(&["--io-share", "0.5"], "mixed only");
    refused(&["--profile", "mixed", "--io-share", "1.5"], "--io-share");
    refused(&["--cpu-us=-1"], "--cpu-us");
    refused(&["--cpu-us", "NaN"], "--cpu-us");
    refused(&["--engine-timeout", "0"], "--engine-timeout");
    refused(&["--plot", "chart.png"], "SVG");

    // Thread caps above what the OS allows.
    refused(&["--max-threads", "60000"], "RLIMIT_NPROC = 50000");
    let err = cli::validate(
        &parse(&["--max-threads", "5000"]),
        &SystemLimits {
            cores: 2,
            threads_max: Some(1_000),
            nproc: None,
            max_map_count: None,
        },
    )
    .expect_err("above threads-max");
    assert!(err.contains("threads-max = 1000"), "{err}");
    // vm.max_map_count: 4 mappings per thread, so 65530 allows 16382.
    let maps = SystemLimits {
        cores: 2,
        threads_max: None,
        nproc: None,
        max_map_count: Some(65_530),
    };
    assert_eq!(maps.thread_limit(), Some(16_382));
    let err = cli::validate(&parse(&["--max-threads", "20000"]), &maps).expect_err("maps");
    assert!(err.contains("vm.max_map_count = 65530"), "{err}");
    cli::validate(&parse(&["--max-threads", "16000"]), &maps).expect("within the limit");
    let none = SystemLimits {
        max_map_count: None,
        ..maps
    };
    assert_eq!(none.thread_limit(), None);
    cli::validate(&parse(&["--max-threads", "1000000"]), &none).expect("no known limit");
    refused(&["--workers", "49990"], "--workers");

    // Clap's own checks.
    for flags in [
        &["--rps", "10", "--burst"][..],
        &["--profile", "gpu"],
        &["--rps", "-5"],
    ] {
        let mut argv = vec!["loadtest"];
        argv.extend_from_slice(flags);
        let err = Args::try_parse_from(argv).expect_err("clap refuses");
        assert_eq!(err.exit_code(), 2, "{flags:?}");
    }
}

#[test]
fn unwritable_outputs_are_refused_before_running() {
    let dir = temp_dir("outputs");
    let missing = dir.join("no-such-dir").join("figures.json");
    let err = validate(&["--json", missing.to_str().unwrap()]).expect_err("missing dir");
    assert!(err.contains("--json"), "{err}");
    let err = validate(&["--json", dir.to_str().unwrap()]).expect_err("a directory");
    assert!(err.contains("is a directory"), "{err}");
    let svg = dir.join("nope").join("chart.svg");
    let err = validate(&["--plot", svg.to_str().unwrap()]).expect_err("missing dir");
    assert!(err.contains("--plot"), "{err}");

    // A writable path passes, and the check neither leaves a file behind
    // nor truncates an existing one.
    let fresh = dir.join("fresh.json");
    validate(&["--json", fresh.to_str().unwrap()]).expect("writable");
    assert!(!fresh.exists());
    let existing = dir.join("existing.json");
    std::fs::write(&existing, "keep").unwrap();
    validate(&["--json", existing.to_str().unwrap()]).expect("writable");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- report ---------------------------------------------------------------

fn sample_report() -> report::Report {
    let config = validate(&["--requests", "300"]).expect("valid");
    let spec = tiny_spec(Some(50_000));
    let results = [EngineKind::Corepool, EngineKind::Rayon]
        .map(|e| run(e, &spec).0)
        .to_vec();
    report::Report {
        started_unix_s: 0,
        cores: 2,
        iters_per_us: 100.0,
        config,
        results,
        failures: Vec::new(),
    }
}

#[test]
fn report_table_json_and_svg() {
    let report = sample_report();
    let table = report::table(&report.results);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2 + report.results.len());
    assert!(lines[0].starts_with("engine"));
    assert!(lines[2].starts_with("corepool"));
    assert!(lines[3].starts_with("rayon"));
    let ratios = report::ratios(&report.results);
    assert!(ratios.contains("relative to corepool") && ratios.contains("rayon"));

    let dir = temp_dir("report");
    let json = dir.join("figures.json");
    report::write_json(&report, &json).expect("json written");
    let back: report::Report =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("json parses");
    // Floats may lose their last bit in JSON: compare the exact fields.
    assert_eq!(back.config, report.config);
    assert_eq!(back.results.len(), report.results.len());
    for (a, b) in back.results.iter().zip(&report.results) {
        assert_eq!(
            (&a.engine, a.completed, a.rejected, a.unsent, a.peak_rss_kib),
            (&b.engine, b.completed, b.rejected, b.unsent, b.peak_rss_kib)
        );
        assert!((a.p99_us - b.p99_us).abs() <= 1e-6 * b.p99_us.max(1.0));
    }

    let svg = dir.join("chart.svg");
    report::write_svg(&report, &svg).expect("svg written");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..text.len().min(80)]);
    for needle in ["corepool", "rayon", "Throughput", "p99", "Peak RSS"] {
        assert!(text.contains(needle), "the chart lacks {needle:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn formatting_helpers() {
    assert_eq!(report::fmt_count(0), "0");
    assert_eq!(report::fmt_count(999), "999");
    assert_eq!(report::fmt_count(1_000), "1,000");
    assert_eq!(report::fmt_count(1_234_567), "1,234,567");
    assert_eq!(report::fmt_latency(12.34), "12.3 µs");
    assert_eq!(report::fmt_latency(1_500.0), "1.50 ms");
    assert_eq!(report::fmt_latency(2_500_000.0), "2.50 s");
    assert_eq!(report::fmt_mib(1_536), "1.5 MiB");
}

// ---- the example binary ---------------------------------------------------

/// `target/<profile>/examples/loadtest`, which `cargo test` builds next to
/// this test's own `target/<profile>/deps/` directory.
fn example_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let bin = profile_dir
        .join("examples")
        .join(format!("loadtest{}", std::env::consts::EXE_SUFFIX));
    bin.is_file().then_some(bin)
}

#[test]
fn the_example_binary_refuses_bad_flags_and_runs_end_to_end() {
    let Some(bin) = example_binary() else {
        eprintln!("skipped: examples/loadtest is not built next to this test");
        return;
    };
    let dir = temp_dir("binary");
    for (flags, needle) in [
        (vec!["--rps", "0"], "--rps"),
        (vec!["--max-threads", "4000000000"], "--max-threads"),
        (
            vec!["--json", "/nonexistent-corepool-dir/figures.json"],
            "--json",
        ),
        (vec!["--rps", "5", "--burst"], "cannot be used with"),
    ] {
        let out = Command::new(&bin).args(&flags).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(needle), "{flags:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{flags:?}: {stderr}");
    }

    // A tiny real run: two engines, each in its child process.
    let json = dir.join("figures.json");
    let out = Command::new(&bin)
        .args(["-n", "200", "--rps", "20000", "--quiet", "--no-pin"])
        .args(["--engines", "corepool,threads", "--json"])
        .arg(&json)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rule of thumb"), "{stdout}");
    let report: report::Report =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("json parses");
    assert!(report.failures.is_empty());
    assert_eq!(report.results.len(), 2);
    for r in &report.results {
        check_consistent(r, &report.config.spec);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
