//! Process-level measurements: CPU time and peak RSS from `getrusage`,
//! current RSS from `/proc/self/statm`, and re-running this bench binary
//! as a child so that each runtime is measured in a fresh process.

use std::process::Command;
use std::time::Duration;

fn rusage() -> libc::rusage {
    rusage_of(libc::RUSAGE_SELF)
}

fn rusage_of(who: libc::c_int) -> libc::rusage {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes a `rusage` into the pointer it is given,
    // which points at a properly sized, writable, zeroed buffer.
    let rc = unsafe { libc::getrusage(who, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage failed");
    // SAFETY: `getrusage` returned 0, so it filled the buffer (and a zeroed
    // `rusage` is a valid value anyway: it is plain integers).
    unsafe { usage.assume_init() }
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}

/// User plus system CPU time of every thread of this process so far.
pub fn cpu_time() -> Duration {
    let usage = rusage();
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

/// User plus system CPU time of the calling thread so far.
pub fn thread_cpu_time() -> Duration {
    let usage = rusage_of(libc::RUSAGE_THREAD);
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

/// Context switches of the calling thread so far in which it gave up the
/// core while still runnable (preempted, or a `sched_yield` that let
/// another thread run): `ru_nivcsw`.
pub fn thread_involuntary_switches() -> u64 {
    rusage_of(libc::RUSAGE_THREAD).ru_nivcsw as u64
}

/// Peak resident set size of this process image so far, in bytes:
/// `VmHWM` from `/proc/self/status`.
///
/// Not `getrusage`'s `ru_maxrss`: Linux carries the peak of the address
/// space replaced by `execve` over into `ru_maxrss`, so a child re-run by
/// [`run_child`] would report at least its parent's footprint (see
/// [`ru_maxrss_bytes`]).
pub fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(ru_maxrss_bytes, |kb| kb * 1024)
}

/// `getrusage(RUSAGE_SELF)`'s `ru_maxrss`, in bytes (Linux counts it in
/// kilobytes). Includes the peak of the pre-`execve` image.
pub fn ru_maxrss_bytes() -> u64 {
    rusage().ru_maxrss as u64 * 1024
}

/// Resident set size now, in bytes.
pub fn current_rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: `sysconf` only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(1) as u64
}

/// The RSS lines of `/proc/self/status` (`VmHWM`, `VmRSS`, `RssAnon`,
/// `RssFile`, `RssShmem`), in MiB: which part of the footprint is the heap
/// and which is the mapped binary.
pub fn rss_breakdown_mib() -> serde_json::Value {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut map = serde_json::Map::new();
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if matches!(key, "VmHWM" | "VmRSS" | "RssAnon" | "RssFile" | "RssShmem") {
            let kb: f64 = value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(f64::NAN);
            map.insert(key.to_owned(), serde_json::json!(kb / 1024.0));
        }
    }
    serde_json::Value::Object(map)
}

/// Runs this executable again with `env` set (and the same arguments) and
/// returns the last line of its standard output, which the child prints
/// as JSON. Panics, with the child's stderr, if the child fails.
pub fn run_child(env: &[(&str, String)]) -> serde_json::Value {
    let exe = std::env::current_exe().expect("current exe");
    let mut command = Command::new(exe);
    command.args(std::env::args().skip(1));
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run the child process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        panic!(
            "child {env:?} failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("child {env:?} printed {line:?}: {e}"))
}

/// The machine, for the record: cores, CPU model, kernel.
pub fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    serde_json::json!({
        "cores": cores,
        "cpu_model": model,
        "workers": crate::common::workers(),
    })
}
