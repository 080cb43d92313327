//! End-to-end tests of `examples/http_service.rs` over loopback: the built
//! example runs as a child process and a small HTTP/1.1 client (below)
//! talks to it. No load generator, no sleeps for synchronisation (the
//! tests wait for the child's "listening on" line, for a response, or poll
//! `/metrics` for a state the server must reach), no timing asserts.
//!
//! `cargo test` builds the example (it needs the `prometheus` feature, as
//! this test does) into `target/<profile>/examples/`, next to this test's
//! `target/<profile>/deps/`.
#![cfg(feature = "prometheus")]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};
use support::Watchdog;

/// A whole test, child processes included, may take this long before the
/// watchdog aborts it: only a hang gets there.
const TEST_LIMIT: Duration = Duration::from_secs(180);

fn watchdog(what: &'static str) -> Watchdog {
    Watchdog::with_limit(what, TEST_LIMIT)
}

/// The reference: SHA-256 of `body`, then of the digest, `rounds` times.
fn expected_hash(body: &[u8], rounds: u32) -> String {
    let mut digest = Sha256::digest(body);
    for _ in 1..rounds {
        digest = Sha256::digest(digest);
    }
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------

fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| {
            profile
                .join("examples")
                .join(format!("http_service{}", std::env::consts::EXE_SUFFIX))
        })
        .expect("the test binary sits in target/<profile>/deps/");
    assert!(
        bin.is_file(),
        "{} is missing: `cargo test --features prometheus` builds it (a run \
         limited to `--test http_service` does not; build it first with \
         `cargo build --features prometheus --example http_service`)",
        bin.display()
    );
    bin
}

/// The example, running. Killed on drop, so a failed assertion leaves no
/// process behind.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

impl Server {
    /// Starts the example on a free port with `args` and waits for its
    /// "listening on" line (a blocking read of its stdout, no polling).
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(example_binary())
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the example");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let read = stdout
            .read_line(&mut line)
            .expect("read the child's stdout");
        if read == 0 {
            let status = child.wait().expect("wait for the child");
            panic!("http_service {args:?} exited ({status}) before listening");
        }
        let addr = line
            .trim_end()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("first line is not `listening on ...`: {line:?}"))
            .parse()
            .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
        Server {
            child,
            stdout,
            addr,
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) takes plain integers and touches no memory of
        // ours; the child is not reaped yet, so the pid is still ours.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits for the process to exit after a signal and returns its exit
    /// status and its `shutdown:` line.
    fn wait_for_exit(mut self) -> (ExitStatus, String) {
        let mut rest = String::new();
        self.stdout
            .read_to_string(&mut rest)
            .expect("read the child's stdout to its end");
        let status = self.child.wait().expect("wait for the child");
        let summary = rest
            .lines()
            .find(|line| line.starts_with("shutdown: "))
            .unwrap_or_else(|| panic!("no `shutdown:` line in {rest:?}"))
            .to_owned();
        (status, summary)
    }

    fn has_exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `key=value` from a `shutdown:` line.
fn summary_field(summary: &str, key: &str) -> u64 {
    summary
        .split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {key}=N in {summary:?}"))
}

// ---------------------------------------------------------------------------
// A small HTTP/1.1 client: one request per connection
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The request's bytes: head (with `Connection: close`, so the response
/// ends at EOF) and body.
fn request_bytes(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn read_reply(mut stream: TcpStream) -> Reply {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect to the example");
    stream
        .write_all(&request_bytes(method, target, headers, body))
        .expect("send the request");
    read_reply(stream)
}

fn post_hash(addr: SocketAddr, body: &[u8], rounds: Option<u32>) -> Reply {
    let target = match rounds {
        Some(rounds) => format!("/hash?rounds={rounds}"),
        None => "/hash".to_owned(),
    };
    send(addr, "POST", &target, &[], body)
}

fn scrape(addr: SocketAddr) -> String {
    let reply = send(addr, "GET", "/metrics", &[("Accept", "text/plain")], b"");
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

/// The value of the sample `series` (name with labels, exactly as written).
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no sample {series} in:\n{scrape}"))
}

/// Polls `/metrics` until `done` holds for a scrape; only a hang (caught
/// by the watchdog) keeps it from returning. The pause between scrapes
/// only keeps the poll from spinning; nothing depends on its length.
fn poll_metrics(addr: SocketAddr, mut done: impl FnMut(&str) -> bool) -> (String, u64) {
    let mut scrapes = 0;
    loop {
        let text = scrape(addr);
        scrapes += 1;
        if done(&text) {
            return (text, scrapes);
        }
        // A polling interval across a process boundary, not a wait for an
        // event: the verdict is `done`, and the watchdog bounds the loop.
        thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn every_engine_hashes_like_sha2_and_exits_cleanly_on_a_signal() {
    let _watchdog = watchdog("every_engine_hashes_like_sha2");
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let cases: [(&[u8], Option<u32>); 5] = [
        (b"", Some(1)),
        (b"hello", Some(1)),
        (b"hello", Some(2)),
        (b"hello", None), // the default, 1000 rounds
        (&big, Some(7)),
    ];
    for (engine, signal) in [
        ("corepool", libc::SIGTERM),
        ("spawn-blocking", libc::SIGINT),
        ("rayon", libc::SIGTERM),
        ("inline", libc::SIGINT),
    ] {
        // Default workers and capacity: the sizes a user starts with.
        let server = Server::start(&["--engine", engine]);
        let health = send(server.addr, "GET", "/healthz", &[], b"");
        assert_eq!(
            (health.status, health.body.as_str()),
            (200, "ok\n"),
            "{engine}"
        );
        for (body, rounds) in cases {
            let reply = post_hash(server.addr, body, rounds);
            assert_eq!(reply.status, 200, "{engine}: {reply:?}");
            let expected = expected_hash(body, rounds.unwrap_or(1000));
            assert_eq!(
                reply.body.trim_end(),
                expected,
                "{engine}, rounds {rounds:?}"
            );
        }
        server.signal(signal);
        let (status, summary) = server.wait_for_exit();
        assert!(status.success(), "{engine}: exit {status}, {summary}");
        assert!(summary.contains(&format!("engine={engine} ")), "{summary}");
        assert_eq!(
            summary_field(&summary, "200"),
            1 + cases.len() as u64,
            "{summary}"
        );
        assert_eq!(summary_field(&summary, "responses"), 1 + cases.len() as u64);
    }
}

#[test]
fn bad_requests_get_a_4xx_with_a_message() {
    let _watchdog = watchdog("bad_requests_get_a_4xx");
    let server = Server::start(&["--workers", "1"]);
    for rounds in ["0", "100001", "abc", "-1", "", "1.5", "99999999999"] {
        let reply = send(
            server.addr,
            "POST",
            &format!("/hash?rounds={rounds}"),
            &[],
            b"x",
        );
        assert_eq!(reply.status, 400, "rounds={rounds:?}: {reply:?}");
        assert!(reply.body.contains("rounds"), "no message: {reply:?}");
    }
    // The limits themselves are accepted.
    for rounds in [1, 100_000] {
        let reply = post_hash(server.addr, b"", Some(rounds));
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body.trim_end(), expected_hash(b"", rounds));
    }
    assert_eq!(send(server.addr, "GET", "/hash", &[], b"").status, 405);
    assert_eq!(send(server.addr, "GET", "/nothing", &[], b"").status, 404);

    let text = scrape(server.addr);
    assert_eq!(sample(&text, "http_responses_total{code=\"400\"}"), 7.0);
    assert_eq!(sample(&text, "http_responses_total{code=\"405\"}"), 1.0);
    assert_eq!(sample(&text, "http_responses_total{code=\"404\"}"), 1.0);
    assert_eq!(sample(&text, "http_responses_total{code=\"200\"}"), 2.0);
    // A bad request never reaches the pool.
    assert_eq!(sample(&text, "corepool_accepted_total"), 2.0);
}

#[test]
fn a_full_pool_answers_503_with_retry_after_and_never_below_capacity() {
    let _watchdog = watchdog("a_full_pool_answers_503");
    const CAPACITY: usize = 4;
    const ROUNDS: u32 = 20_000;
    let capacity = CAPACITY.to_string();
    let server = Server::start(&[
        "--engine",
        "corepool",
        "--workers",
        "1",
        "--capacity",
        &capacity,
    ]);
    let addr = server.addr;
    let body = b"load";
    let expected = expected_hash(body, ROUNDS);

    // Below capacity: at most CAPACITY requests outstanding at once, so at
    // most CAPACITY tasks are queued: the bound is never hit.
    for _ in 0..3 {
        let replies: Vec<Reply> = thread::scope(|s| {
            let tasks: Vec<_> = (0..CAPACITY)
                .map(|_| s.spawn(|| post_hash(addr, body, Some(ROUNDS))))
                .collect();
            tasks
                .into_iter()
                .map(|t| t.join().expect("client"))
                .collect()
        });
        for reply in replies {
            assert_eq!(reply.status, 200, "below capacity: {reply:?}");
            assert_eq!(reply.body.trim_end(), expected);
        }
    }
    let text = scrape(addr);
    assert_eq!(sample(&text, "http_responses_total{code=\"503\"}"), 0.0);
    assert_eq!(sample(&text, "corepool_rejected_full_total"), 0.0);

    // Overload: bursts of 4 × (CAPACITY + 1) slow requests sent at once,
    // until one is refused. Every answer is a correct 200 or a 503 that
    // says when to come back.
    const BURST: usize = 4 * (CAPACITY + 1);
    let (mut ok, mut refused) = (0u64, 0u64);
    while refused == 0 {
        for reply in burst(addr, BURST, body, ROUNDS) {
            match reply.status {
                200 => {
                    assert_eq!(reply.body.trim_end(), expected);
                    ok += 1;
                }
                503 => {
                    assert_eq!(reply.header("Retry-After"), Some("1"), "{reply:?}");
                    refused += 1;
                }
                _ => panic!("neither 200 nor 503: {reply:?}"),
            }
        }
    }
    let text = scrape(addr);
    assert_eq!(
        sample(&text, "http_responses_total{code=\"503\"}"),
        refused as f64
    );
    assert_eq!(
        sample(&text, "corepool_rejected_full_total"),
        refused as f64
    );
    assert_eq!(
        sample(&text, "corepool_accepted_total"),
        (3 * CAPACITY) as f64 + ok as f64
    );
}

/// Sends `burst` copies of a request at once (every connection written
/// before any response is read) and returns the replies.
fn burst(addr: SocketAddr, burst: usize, body: &[u8], rounds: u32) -> Vec<Reply> {
    let streams: Vec<TcpStream> = (0..burst)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).expect("connect");
            let target = format!("/hash?rounds={rounds}");
            stream
                .write_all(&request_bytes("POST", &target, &[], body))
                .expect("send");
            stream
        })
        .collect();
    streams.into_iter().map(read_reply).collect()
}

#[test]
fn a_delay_budget_refuses_with_503_before_the_queue_is_full() {
    let _watchdog = watchdog("a_delay_budget_refuses_with_503");
    const ROUNDS: u32 = 20_000;
    // The default capacity (256) is far above any burst here: every
    // refusal must come from the budget.
    let server = Server::start(&[
        "--engine",
        "corepool",
        "--workers",
        "1",
        "--budget-ms",
        "1",
        "--report-waits",
    ]);
    let body = b"budget";
    let expected = expected_hash(body, ROUNDS);
    let (mut ok, mut refused) = (0u64, 0u64);
    // The estimate needs an observed task first, and then a task queued
    // behind a running one is expected to wait a whole task time (far over
    // 1 ms in any build): bursts until one is refused.
    while refused == 0 {
        for reply in burst(server.addr, 6, body, ROUNDS) {
            match reply.status {
                200 => {
                    assert_eq!(reply.body.trim_end(), expected);
                    ok += 1;
                }
                503 => {
                    assert_eq!(reply.header("Retry-After"), Some("1"), "{reply:?}");
                    refused += 1;
                }
                _ => panic!("neither 200 nor 503: {reply:?}"),
            }
        }
    }
    let text = scrape(server.addr);
    assert_eq!(
        sample(&text, "corepool_rejected_budget_total"),
        refused as f64
    );
    assert_eq!(sample(&text, "corepool_rejected_full_total"), 0.0);
    assert_eq!(sample(&text, "corepool_accepted_total"), ok as f64);
    server.signal(libc::SIGTERM);
    let (status, summary) = server.wait_for_exit();
    assert!(status.success(), "exit {status}: {summary}");
    assert_eq!(summary_field(&summary, "503"), refused, "{summary}");
    // --report-waits: p50/p99/p99.9 of each served request's wait in the
    // queue and of its whole time in the pool, which includes the wait.
    let waits = summary_percentiles(&summary, "pool_wait_ms");
    let times = summary_percentiles(&summary, "pool_time_ms");
    for (wait, time) in waits.iter().zip(&times) {
        assert!(wait <= time, "{summary}");
    }
    assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{summary}");
    // The pool's share of the 1 ms request budget: all of it until the
    // rest of the requests was measured, never under a quarter.
    let share: f64 = summary
        .split_whitespace()
        .find_map(|word| word.strip_prefix("queue_budget_ms=")?.parse().ok())
        .unwrap_or_else(|| panic!("no queue_budget_ms= in {summary:?}"));
    assert!((0.25..=1.0).contains(&share), "{summary}");
}

/// The nice value of each thread of process `pid`, by thread name.
#[cfg(target_os = "linux")]
fn thread_nice_values(pid: u32) -> Vec<(String, i64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("read /proc/PID/task");
    tasks
        .map(|task| {
            let dir = task.expect("a task entry").path();
            let comm = std::fs::read_to_string(dir.join("comm")).expect("read comm");
            let stat = std::fs::read_to_string(dir.join("stat")).expect("read stat");
            // Fields after the name in parentheses start at field 3
            // (state); nice is field 19.
            let after_name = &stat[stat.rfind(')').expect("stat has a name") + 1..];
            let nice = after_name
                .split_whitespace()
                .nth(19 - 3)
                .and_then(|field| field.parse().ok())
                .unwrap_or_else(|| panic!("no nice field in {stat:?}"));
            (comm.trim_end().to_owned(), nice)
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn hash_nice_lowers_the_hashing_threads_only() {
    let _watchdog = watchdog("hash_nice_lowers_the_hashing_threads_only");
    for engine in ["corepool", "rayon", "spawn-blocking"] {
        let server = Server::start(&["--engine", engine, "--workers", "1", "--hash-nice", "7"]);
        // One request ran on the one hashing thread, after its start hook.
        let reply = post_hash(server.addr, b"nice", Some(3));
        assert_eq!(reply.body.trim_end(), expected_hash(b"nice", 3), "{engine}");
        let threads = thread_nice_values(server.child.id());
        // The main thread's nice (this test may run niced), and 7 below it.
        let (_, base) = *threads
            .iter()
            .find(|(name, _)| name == "http_service")
            .unwrap_or_else(|| panic!("no main thread in {threads:?}"));
        let lowered = (base + 7).min(19);
        let io: Vec<_> = threads
            .iter()
            .filter(|(name, _)| name == "http-io")
            .collect();
        assert!(!io.is_empty(), "{engine}: {threads:?}");
        if engine == "spawn-blocking" {
            // tokio names its blocking threads like its I/O thread: one
            // of them hashed, lowered; the I/O thread stayed as it was.
            assert!(io.iter().any(|(_, nice)| *nice == lowered), "{threads:?}");
            assert!(io.iter().any(|(_, nice)| *nice == base), "{threads:?}");
        } else {
            assert!(
                io.iter().all(|(_, nice)| *nice == base),
                "{engine}: {threads:?}"
            );
            let hashing: Vec<_> = threads
                .iter()
                .filter(|(name, _)| name.starts_with("hash"))
                .collect();
            assert_eq!(hashing.len(), 1, "{engine}: {threads:?}");
            assert_eq!(hashing[0].1, lowered, "{engine}: {threads:?}");
        }
        server.signal(libc::SIGTERM);
        let (status, summary) = server.wait_for_exit();
        assert!(status.success(), "{engine}: exit {status}, {summary}");
    }
}

#[test]
fn the_budget_split_gives_the_pool_what_the_rest_of_a_request_leaves() {
    let _watchdog = watchdog("the_budget_split_gives_the_pool_what_the_rest_leaves");
    let server = Server::start(&[
        "--engine",
        "corepool",
        "--workers",
        "1",
        "--budget-ms",
        "1000",
    ]);
    let budget = |text: &str| sample(text, "corepool_queue_delay_budget_seconds");
    // Before the rest of any request was measured the pool has it all.
    assert_eq!(budget(&scrape(server.addr)), 1.0);
    // One at a time, so none is refused: more than the split needs
    // (100) to take the rest's 99th percentile.
    for _ in 0..120 {
        let reply = post_hash(server.addr, b"split", None);
        assert_eq!(reply.body.trim_end(), expected_hash(b"split", 1000));
    }
    // Every request's rest (its hashing, at least) is above zero, so at
    // the next recomputation the pool's share drops below the whole
    // budget; far below it only if the rest took most of a second.
    let (text, _) = poll_metrics(server.addr, |text| budget(text) < 1.0);
    let share = budget(&text);
    assert!((0.25..1.0).contains(&share), "{share}");
    server.signal(libc::SIGTERM);
    let (status, summary) = server.wait_for_exit();
    assert!(status.success(), "exit {status}: {summary}");
    assert!(summary.contains("queue_budget_ms="), "{summary}");
}

/// `key=P50/P99/P99.9` from a `shutdown:` line.
fn summary_percentiles(summary: &str, key: &str) -> Vec<f64> {
    let value = summary
        .split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {summary:?}"));
    let percentiles: Vec<f64> = value
        .split('/')
        .map(|p| p.parse().unwrap_or_else(|e| panic!("{key}={value}: {e}")))
        .collect();
    assert_eq!(percentiles.len(), 3, "{summary}");
    percentiles
}

#[test]
fn flags_that_do_not_apply_are_refused_at_startup() {
    let _watchdog = watchdog("flags_that_do_not_apply_are_refused");
    for (args, needle) in [
        (
            &["--engine", "rayon", "--budget-ms", "10"][..],
            "--budget-ms",
        ),
        (&["--engine", "inline", "--capacity", "8"][..], "--capacity"),
        (&["--engine", "spawn-blocking", "--no-pin"][..], "--no-pin"),
        (
            &["--engine", "rayon", "--report-waits"][..],
            "--report-waits",
        ),
        (&["--workers", "0"][..], "--workers"),
        (&["--budget-ms", "0"][..], "budget"),
        (
            &["--engine", "inline", "--hash-nice", "5"][..],
            "--hash-nice",
        ),
        (&["--hash-nice", "20"][..], "--hash-nice"),
    ] {
        let output = Command::new(example_binary())
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run the example");
        assert!(!output.status.success(), "{args:?} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?} listened");
    }
}

#[test]
fn metrics_are_well_formed_in_both_formats() {
    let _watchdog = watchdog("metrics_are_well_formed");
    let server = Server::start(&["--workers", "2"]);
    assert_eq!(post_hash(server.addr, b"m", Some(3)).status, 200);

    let text = scrape(server.addr);
    let mut families = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.push(
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            );
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        // `name{labels} value`: the value parses, the name is a known family.
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        value
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("value of {line:?}: {e}"));
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            families.iter().any(|f| name.starts_with(f.as_str())),
            "{name} has no # TYPE line before it"
        );
    }
    for family in [
        "http_responses_total",
        "http_hash_in_flight",
        "corepool_queue_depth",
    ] {
        assert!(
            families.iter().any(|f| f == family),
            "no # TYPE {family} in:\n{text}"
        );
    }
    assert_eq!(sample(&text, "http_responses_total{code=\"200\"}"), 1.0);
    assert_eq!(sample(&text, "http_hash_in_flight"), 0.0);
    // The worker counts a task after handing its result over, so the
    // counter may trail the response for a moment.
    poll_metrics(server.addr, |text| {
        sample(text, "corepool_executed_total") == 1.0
    });

    let reply = send(
        server.addr,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text;version=1.0.0")],
        b"",
    );
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{reply:?}"
    );
    assert!(reply.body.ends_with("# EOF\n"), "{}", reply.body);
}

#[test]
fn sigterm_drains_every_accepted_request() {
    let _watchdog = watchdog("sigterm_drains_every_accepted_request");
    const REQUESTS: usize = 4;
    const ROUNDS: u32 = 5_000;
    let mut server = Server::start(&["--engine", "corepool", "--workers", "1"]);
    let addr = server.addr;
    let body = b"the body of a request caught by a shutdown";
    let second = &body[10..];

    // Each request sends its head and part of its body: the server has
    // accepted it (the in-flight gauge counts it) but cannot answer yet.
    let mut streams: Vec<TcpStream> = (0..REQUESTS)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).expect("connect");
            let bytes = request_bytes("POST", &format!("/hash?rounds={ROUNDS}"), &[], body);
            stream
                .write_all(&bytes[..bytes.len() - second.len()])
                .expect("send the head and the first part of the body");
            stream
        })
        .collect();
    let (_, scrapes) = poll_metrics(addr, |text| {
        sample(text, "http_hash_in_flight") == REQUESTS as f64
    });

    server.signal(libc::SIGTERM);
    // It stops accepting: connecting fails once the listener is closed,
    // while the process stays up for the requests in flight (whose bodies
    // are not all sent, so they cannot have finished).
    loop {
        match TcpStream::connect(addr) {
            Err(_) => break,
            Ok(stream) => drop(stream),
        }
        assert!(!server.has_exited(), "exited with requests in flight");
        // A polling interval (the listener's closing has no event to wait
        // on from here), bounded by the watchdog.
        thread::sleep(Duration::from_millis(5));
    }
    assert!(!server.has_exited(), "exited with requests in flight");

    // The rest of each body goes in; every accepted request gets its 200.
    let expected = expected_hash(body, ROUNDS);
    for stream in &mut streams {
        stream.write_all(second).expect("send the rest of the body");
    }
    for stream in streams {
        let reply = read_reply(stream);
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body.trim_end(), expected);
    }
    let (status, summary) = server.wait_for_exit();
    assert!(status.success(), "exit {status}: {summary}");
    assert_eq!(
        summary_field(&summary, "200"),
        REQUESTS as u64 + scrapes,
        "{summary}"
    );
    assert_eq!(summary_field(&summary, "503"), 0, "{summary}");
    assert_eq!(
        summary_field(&summary, "pool_executed"),
        REQUESTS as u64,
        "{summary}"
    );
}
