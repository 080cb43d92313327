//! Criterion settings shared by the criterion bench binaries.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, SamplingMode, Throughput};

/// Sample size 10, flat sampling (each sample the same iteration count:
/// the right mode for iterations of milliseconds), 1 s warm-up, 3 s
/// measurement; throughput in `elements` per iteration.
pub fn configure(group: &mut BenchmarkGroup<'_, WallTime>, elements: usize) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(elements as u64));
}

/// Runs `round` `iters` times and sums the durations it measured.
pub fn rounds(iters: u64, mut round: impl FnMut() -> Duration) -> Duration {
    (0..iters).map(|_| round()).sum()
}
