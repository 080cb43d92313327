//! The exposition's shape checked through the public API (feature
//! `prometheus`): histogram buckets, and the checks on prefixes and labels.
#![cfg(feature = "prometheus")]

mod support;

use corepool::prometheus::prometheus_client::encoding::text::encode;
use corepool::prometheus::prometheus_client::registry::Registry;
use corepool::prometheus::{register, register_with};
use support::Watchdog;

fn scrape(registry: &Registry) -> String {
    let mut text = String::new();
    encode(&mut text, registry).expect("encoding into a String cannot fail");
    text
}

#[test]
fn histogram_buckets_are_cumulative_and_end_in_inf() {
    let _watchdog = Watchdog::new("histogram_buckets_are_cumulative_and_end_in_inf");
    let pool = corepool::Pool::builder()
        .workers(1)
        .track_latency(true)
        .build()
        .expect("build");
    for _ in 0..50 {
        pool.submit(|| {}).expect("running");
    }
    let handle = pool.handle();
    drop(pool);
    let mut registry = Registry::default();
    register(&mut registry, handle);
    let text = scrape(&registry);
    let buckets: Vec<(String, u64)> = text
        .lines()
        .filter(|l| l.starts_with("corepool_queue_wait_seconds_bucket{le=\""))
        .map(|l| {
            let le = l.split('"').nth(1).expect("le").to_string();
            let n = l.rsplit(' ').next().expect("value").parse().expect("u64");
            (le, n)
        })
        .collect();
    assert_eq!(buckets.len(), 26, "{text}");
    assert_eq!(buckets[0].0.parse::<f64>().ok(), Some(1.024e-6));
    assert_eq!(buckets[24].0.parse::<f64>().ok(), Some(17.179869184));
    assert_eq!(
        buckets.last().map(|b| (b.0.as_str(), b.1)),
        Some(("+Inf", 50))
    );
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{text}");
    assert!(text.contains("corepool_queue_wait_seconds_count 50\n"));
}

#[test]
fn names_are_checked() {
    let _watchdog = Watchdog::new("names_are_checked");
    let pool = corepool::Pool::builder().workers(1).build().expect("build");
    let mut registry = Registry::default();
    for (prefix, labels) in [
        ("a-b", &[][..]),
        ("1a", &[]),
        ("ok", &[("worker", "x")]),
        ("ok", &[("__x", "x")]),
        ("ok", &[("a b", "x")]),
        ("ok", &[("p", "x"), ("p", "y")]),
    ] {
        assert!(register_with(&mut registry, pool.handle(), prefix, labels).is_err());
    }
    assert_eq!(scrape(&registry), "# EOF\n");
    register_with(
        &mut registry,
        pool.handle(),
        "",
        &[("pool", "a \"quoted\" name")],
    )
    .expect("valid");
    let text = scrape(&registry);
    assert!(
        text.contains("workers{pool=\"a \\\"quoted\\\" name\"} 1\n"),
        "{text}"
    );
}
