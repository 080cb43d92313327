//! The comparison: a text table, the raw figures as JSON, and an SVG chart.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use crate::cli::Config;
use crate::engines::EngineResult;

/// An engine whose child process failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The engine's name.
    pub engine: String,
    /// What went wrong.
    pub message: String,
}

/// Everything one invocation of the demo measured; written by `--json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Seconds since the Unix epoch when the run started.
    pub started_unix_s: u64,
    /// Cores the process could use.
    pub cores: usize,
    /// Busy-loop iterations per µs measured on this machine.
    pub iters_per_us: f64,
    /// The validated configuration.
    pub config: Config,
    /// One entry per engine that ran.
    pub results: Vec<EngineResult>,
    /// Engines that failed to run.
    pub failures: Vec<Failure>,
}

/// A latency in µs, with a unit that keeps it readable.
pub fn fmt_latency(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// An integer with thousands separators.
pub fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// KiB as MiB with one decimal.
pub fn fmt_mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The comparison table, one row per engine.
pub fn table(results: &[EngineResult]) -> String {
    let header = [
        "engine", "req/s", "p50", "p99", "p99.9", "max", "peak RSS", "RSS-base", "CPU s",
        "threads", "rejected", "unsent",
    ];
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let at_least = if r.latency_lower_bound_samples > 0 {
                "≥"
            } else {
                ""
            };
            let lat = |us: f64| format!("{at_least}{}", fmt_latency(us));
            vec![
                r.engine.clone(),
                fmt_count(r.achieved_rps.round() as u64),
                lat(r.p50_us),
                lat(r.p99_us),
                lat(r.p999_us),
                lat(r.max_us),
                fmt_mib(r.peak_rss_kib),
                fmt_mib(r.peak_rss_kib.saturating_sub(r.baseline_rss_kib)),
                format!("{:.2}", r.cpu_user_s + r.cpu_sys_s),
                r.peak_threads.to_string(),
                fmt_count(r.rejected),
                fmt_count(r.unsent),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i == 0 {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str("  ");
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header.map(String::from));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&rule));
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

/// Notes under the table: what the columns mean.
pub const TABLE_NOTES: &str = "\
req/s: completed requests / time to the last completion. Latency: scheduled arrival to completion
(open loop; includes time the generator was held up). RSS-base: peak RSS minus the child's RSS before
the engine was built. CPU s: user+sys of the child during the run. threads: peak threads in the child
(sampled every 2 ms, exact for thread-per-request). rejected: refused by the engine. unsent: not issued
before --engine-timeout; those count in the latencies with the wait they had reached (marked ≥).";

/// Each engine's figures as ratios to corepool's (blocking submit, or the
/// first engine if corepool did not run): ratios within one run are what
/// a noisy machine can compare.
pub fn ratios(results: &[EngineResult]) -> String {
    let Some(base) = results
        .iter()
        .find(|r| r.engine == "corepool")
        .or(results.first())
    else {
        return String::new();
    };
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}x", a / b)
        } else {
            "n/a".to_owned()
        }
    };
    let mut out = format!(
        "relative to {} (throughput, p99, peak RSS, CPU time):\n",
        base.engine
    );
    for r in results.iter().filter(|r| r.engine != base.engine) {
        out.push_str(&format!(
            "  {:<13} throughput {:>7}  p99 {:>9}  peak RSS {:>7}  CPU {:>7}\n",
            r.engine,
            ratio(r.achieved_rps, base.achieved_rps),
            ratio(r.p99_us, base.p99_us),
            ratio(r.peak_rss_kib as f64, base.peak_rss_kib as f64),
            ratio(r.cpu_user_s + r.cpu_sys_s, base.cpu_user_s + base.cpu_sys_s),
        ));
    }
    out
}

/// Writes `report` as pretty JSON to `path`.
pub fn write_json(report: &Report, path: &Path) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| format!("cannot encode the report: {e}"))?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

const PALETTE: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(44, 160, 44),
];

fn engine_color(name: &str) -> RGBColor {
    let index = crate::engines::EngineKind::ALL
        .iter()
        .position(|e| e.name() == name)
        .unwrap_or(0);
    PALETTE[index % PALETTE.len()]
}

/// Draws throughput, p99 latency (log scale) and peak RSS per engine as
/// three bar charts into an SVG file at `path`.
pub fn write_svg(report: &Report, path: &Path) -> Result<(), String> {
    let results = &report.results;
    if results.is_empty() {
        return Err("no engine produced figures to plot".into());
    }
    let root = SVGBackend::new(path, (1000, 1150)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let spec = &report.config.spec;
    let load = match spec.rate {
        Some(rate) => format!("{} req/s", fmt_count(rate)),
        None => "burst".to_owned(),
    };
    let title = format!(
        "corepool loadtest: {} profile, {} requests at {}, {} workers, {} cores",
        report.config.profile.name(),
        fmt_count(spec.requests),
        load,
        spec.workers,
        report.cores
    );
    let root = root
        .titled(&title, ("sans-serif", 22))
        .map_err(|e| err(&e))?;
    let panels = root.split_evenly((3, 1));
    let names: Vec<String> = results.iter().map(|r| r.engine.clone()).collect();

    let throughput: Vec<f64> = results.iter().map(|r| r.achieved_rps).collect();
    let labels: Vec<String> = results
        .iter()
        .map(|r| {
            let rps = fmt_count(r.achieved_rps.round() as u64);
            let pct = |n: u64| 100.0 * n as f64 / r.requests.max(1) as f64;
            let mut notes = Vec::new();
            if r.rejected > 0 {
                notes.push(format!("{:.0}% rejected", pct(r.rejected)));
            }
            if r.unsent > 0 {
                notes.push(format!("{:.0}% unsent", pct(r.unsent)));
            }
            if notes.is_empty() {
                rps
            } else {
                format!("{rps} ({})", notes.join(", "))
            }
        })
        .collect();
    bar_panel(
        &panels[0],
        "Throughput, completed req/s (higher is better)",
        &names,
        &throughput,
        &labels,
        false,
        &|v| fmt_count(v.round() as u64),
    )
    .map_err(|e| err(&e))?;
    let p99: Vec<f64> = results.iter().map(|r| r.p99_us / 1e3).collect();
    let labels: Vec<String> = results
        .iter()
        .map(|r| {
            let at_least = if r.latency_lower_bound_samples > 0 {
                "≥"
            } else {
                ""
            };
            format!("{at_least}{}", fmt_latency(r.p99_us))
        })
        .collect();
    bar_panel(
        &panels[1],
        "p99 latency from scheduled arrival, log scale (lower is better)",
        &names,
        &p99,
        &labels,
        true,
        &|v| fmt_latency(v * 1e3),
    )
    .map_err(|e| err(&e))?;
    let rss: Vec<f64> = results
        .iter()
        .map(|r| r.peak_rss_kib as f64 / 1024.0)
        .collect();
    let labels: Vec<String> = rss.iter().map(|v| format!("{v:.1} MiB")).collect();
    let rss_max = rss.iter().copied().fold(0.0, f64::max);
    bar_panel(
        &panels[2],
        "Peak RSS of the engine's process, MiB (lower is better)",
        &names,
        &rss,
        &labels,
        false,
        &|v| {
            if rss_max < 20.0 {
                format!("{v:.1} MiB")
            } else {
                format!("{v:.0} MiB")
            }
        },
    )
    .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// One bar chart: a bar per engine, `labels[i]` written above bar `i`;
/// `axis` formats the y axis.
fn bar_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    caption: &str,
    names: &[String],
    values: &[f64],
    labels: &[String],
    log: bool,
    axis: &dyn Fn(f64) -> String,
) -> DrawResult {
    let n = names.len();
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let x_labels = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(80);
    if log {
        let positive = values.iter().copied().filter(|v| *v > 0.0);
        let min = positive.fold(f64::MAX, f64::min);
        let lo = if min == f64::MAX {
            0.001
        } else {
            10f64.powf((min.log10() - 0.3).floor())
        };
        let hi = 10f64.powf((max.max(lo * 10.0).log10() + 0.4).ceil());
        let mut chart = builder.build_cartesian_2d(
            (0..n.saturating_sub(1)).into_segmented(),
            (lo..hi).log_scale(),
        )?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&x_labels)
            .y_label_formatter(&|v| axis(*v))
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .margin(25)
                .baseline(lo)
                .style_func(|x, _| match x {
                    SegmentValue::Exact(i) | SegmentValue::CenterOf(i) => {
                        engine_color(&names[(*i).min(n - 1)]).filled()
                    }
                    SegmentValue::Last => BLACK.filled(),
                })
                .data(values.iter().enumerate().map(|(i, v)| (i, v.max(lo)))),
        )?;
        chart.draw_series(values.iter().enumerate().map(|(i, v)| {
            Text::new(
                labels.get(i).cloned().unwrap_or_default(),
                (SegmentValue::CenterOf(i), v.max(lo)),
                ("sans-serif", 14)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))?;
    } else {
        let hi = if max > 0.0 { max * 1.18 } else { 1.0 };
        let mut chart =
            builder.build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), 0.0..hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&x_labels)
            .y_label_formatter(&|v| axis(*v))
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .margin(25)
                .style_func(|x, _| match x {
                    SegmentValue::Exact(i) | SegmentValue::CenterOf(i) => {
                        engine_color(&names[(*i).min(n - 1)]).filled()
                    }
                    SegmentValue::Last => BLACK.filled(),
                })
                .data(values.iter().enumerate().map(|(i, v)| (i, *v))),
        )?;
        chart.draw_series(values.iter().enumerate().map(|(i, v)| {
            Text::new(
                labels.get(i).cloned().unwrap_or_default(),
                (SegmentValue::CenterOf(i), *v),
                ("sans-serif", 14)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))?;
    }
    Ok(())
}
