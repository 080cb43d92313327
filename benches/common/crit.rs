//! Criterion settings shared by the criterion bench binaries.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, SamplingMode, Throughput};

/// Sample size 10, flat sampling (each sample the same iteration count:
/// the right mode for iterations of milliseconds), 1 s warm-up, 3 s
/// measurement; throughput in `elements` per iteration.
///
/// `COREPOOL_BENCH_WARMUP_SECS` and `COREPOOL_BENCH_MEASURE_SECS` (seconds,
/// fractions allowed) replace the 1 s and 3 s: settings made on a group
/// win over criterion's own `--warm-up-time` and `--measurement-time`, so
/// a short run (`benches/scaling.sh`) needs these instead.
pub fn configure(group: &mut BenchmarkGroup<'_, WallTime>, elements: usize) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(env_secs("COREPOOL_BENCH_WARMUP_SECS").unwrap_or(Duration::from_secs(1)))
        .measurement_time(env_secs("COREPOOL_BENCH_MEASURE_SECS").unwrap_or(Duration::from_secs(3)))
        .throughput(Throughput::Elements(elements as u64));
}

/// A positive number of seconds from the environment variable `name`.
fn env_secs(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()?
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
}

/// Runs `round` `iters` times and sums the durations it measured.
pub fn rounds(iters: u64, mut round: impl FnMut() -> Duration) -> Duration {
    (0..iters).map(|_| round()).sum()
}
