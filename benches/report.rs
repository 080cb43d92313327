//! Turns the measurements into tables and charts: reads criterion's
//! samples (`<target>/criterion/<group>/<runtime>/new/sample.json`) and the
//! harnesses' JSON (`<target>/corepool-bench/*.json`), and writes
//!
//! * `tables.md`: one markdown table per workload (median, spread, ratio
//!   to the best peer): `docs/benchmarks/tables.md`, which `docs/benchmarks.md` reads from;
//! * `summary.json`: the same numbers, machine-readable;
//! * one SVG bar chart per workload.
//!
//! `--baselines run1,run2,run3` pools the samples of criterion runs saved
//! with `--save-baseline` (the default reads the latest run, `new`).
//!
//! Run after the other benches: `cargo bench --bench report` writes to
//! `target/corepool-bench/report/`; `cargo bench --bench report -- --out
//! docs/benchmarks` writes the charts there (and `tables.md` beside them).
//! With `--test` (or `COREPOOL_BENCH_QUICK=1`) it only checks that it can
//! draw, into `target/corepool-bench/report-smoke/`. Each table says when
//! its samples were written; the header says on which machine and
//! toolchain the report ran, which must be the measuring one.
//!
//! `--scaling DIR` instead puts the reports of `benches/scaling.sh` (one
//! per worker count, `DIR/w<W>/report/summary.json`) side by side:
//! `DIR/scaling.md` and `DIR/scaling.json`, a column per W.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use plotters::prelude::*;
use serde_json::{json, Value};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The peers, in table order; corepool rows come first.
const PEERS: &[&str] = &[
    "rayon",
    "chili",
    "tokio",
    "threadpool",
    "executors",
    "go-style",
];

/// A measured value: median and spread.
#[derive(Clone, Copy, Debug)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

impl Stat {
    fn from_values(values: &mut [f64]) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let s = common::output::summary(values);
        Some(Stat {
            median: s["median"].as_f64()?,
            min: s["min"].as_f64()?,
            max: s["max"].as_f64()?,
        })
    }

    fn from_json(v: &Value) -> Option<Stat> {
        Some(Stat {
            median: v["median"].as_f64()?,
            min: v["min"].as_f64()?,
            max: v["max"].as_f64()?,
        })
    }

    fn scale(self, k: f64) -> Stat {
        Stat {
            median: self.median * k,
            min: self.min * k,
            max: self.max * k,
        }
    }

    fn json(&self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Which criterion baselines to read: `--baselines run1,run2,run3` (runs
/// saved with `cargo bench -- --save-baseline runN`), else `new` (the
/// latest run). Samples of every listed run are pooled.
fn baselines() -> Vec<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--baselines")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').map(str::to_owned).collect())
        .unwrap_or_else(|| vec!["new".to_owned()])
}

/// Criterion's samples of one benchmark, as time per iteration in ns,
/// pooled over the baselines read.
fn criterion_samples(target: &Path, group: &str, id: &str) -> Option<Vec<f64>> {
    let mut all = Vec::new();
    for baseline in baselines() {
        let path = target
            .join("criterion")
            .join(group)
            .join(id)
            .join(&baseline)
            .join("sample.json");
        let Some(v) = read_json(&path) else {
            continue;
        };
        let (Some(iters), Some(times)) = (v["iters"].as_array(), v["times"].as_array()) else {
            continue;
        };
        all.extend(
            iters
                .iter()
                .zip(times)
                .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()?)),
        );
    }
    (!all.is_empty()).then_some(all)
}

/// Every benchmark id criterion holds for `group`, in table order.
fn criterion_ids(target: &Path, group: &str) -> Vec<String> {
    let runs = baselines();
    let mut ids: Vec<String> = std::fs::read_dir(target.join("criterion").join(group))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| {
                    runs.iter()
                        .any(|b| e.path().join(b).join("sample.json").exists())
                })
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort_by_key(|id| (order_key(id), id.clone()));
    ids
}

fn order_key(name: &str) -> usize {
    if let Some(k) = name.strip_prefix("corepool cap=Wx") {
        // Capacity variants in numeric order, after the other corepool rows.
        return 100 + k.parse::<usize>().unwrap_or(0);
    }
    match name {
        "sequential" | "inline" | "static split" => 0,
        "corepool" => 1,
        n if n.starts_with("corepool") => 2,
        "rayon" => 3,
        n if n.starts_with("rayon") => 4,
        "chili" => 4,
        "tokio" => 5,
        n if n.starts_with("tokio") => 6,
        "threadpool" => 7,
        "executors" => 8,
        "go-style" => 9,
        _ => 10,
    }
}

fn is_peer(name: &str) -> bool {
    PEERS
        .iter()
        .any(|p| name == *p || name.starts_with(&format!("{p} ")))
}

/// One table: rows of (runtime, stat), and which way is better.
struct Table {
    key: String,
    title: String,
    unit: String,
    lower_is_better: bool,
    rows: Vec<(String, Stat)>,
    notes: Vec<String>,
}

impl Table {
    fn best_peer(&self) -> Option<(&str, Stat)> {
        let peers = self.rows.iter().filter(|(n, _)| is_peer(n));
        let best = if self.lower_is_better {
            peers.min_by(|a, b| a.1.median.total_cmp(&b.1.median))
        } else {
            peers.max_by(|a, b| a.1.median.total_cmp(&b.1.median))
        };
        best.map(|(n, s)| (n.as_str(), *s))
    }

    fn markdown(&self, out: &mut String) {
        let best = self.best_peer();
        let _ = writeln!(out, "#### {}\n", self.title);
        let _ = writeln!(
            out,
            "| runtime | median {u} | min – max {u} | ratio to best peer |",
            u = self.unit
        );
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for (name, s) in &self.rows {
            let ratio = match best {
                Some((b, _)) if b == name => "best peer".to_owned(),
                Some((_, bs)) if name != "sequential" => format!("{:.2}×", s.median / bs.median),
                _ => "–".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} – {} | {ratio} |",
                fmt(s.median),
                fmt(s.min),
                fmt(s.max)
            );
        }
        if let Some((b, _)) = best {
            let _ = writeln!(
                out,
                "\nBest peer: {b} ({} is better).",
                if self.lower_is_better {
                    "lower"
                } else {
                    "higher"
                }
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "\n{note}");
        }
        out.push('\n');
    }

    fn json(&self) -> Value {
        let best = self.best_peer();
        json!({
            "title": self.title,
            "unit": self.unit,
            "lower_is_better": self.lower_is_better,
            "best_peer": best.map(|(n, _)| n),
            "rows": self.rows.iter().map(|(n, s)| json!({
                "runtime": n,
                "stat": s.json(),
                "ratio_to_best_peer": best.map(|(_, b)| s.median / b.median),
            })).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }
}

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "–".to_owned()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

// ---------------------------------------------------------------------
// Charts

const COLORS: &[RGBColor] = &[
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// A horizontal bar chart: one band per label, one bar per series in each
/// band, whiskers from min to max. `log` plots log10 of the values.
fn bar_chart(
    path: &Path,
    title: &str,
    axis: &str,
    series: &[&str],
    bands: &[(String, Vec<Option<Stat>>)],
    log: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let per_band = series.len().max(1);
    let legend = series.len() > 1;
    let height =
        90 + bands.len() as u32 * (14 + 18 * per_band as u32) + if legend { 26 } else { 0 };
    let height = height.max(220);
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let t = |v: f64| if log { v.max(1e-3).log10() } else { v };
    let all = bands
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .flat_map(|s| [s.min, s.median, s.max]);
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !hi.is_finite() {
        return Ok(());
    }
    let (x0, x1) = if log {
        (t(lo).floor(), t(hi).ceil().max(t(lo).floor() + 1.0))
    } else {
        (0.0, hi * 1.18)
    };
    let n = bands.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .margin_bottom(if legend { 38 } else { 12 })
        .x_label_area_size(40)
        .y_label_area_size(180)
        .build_cartesian_2d(x0..x1, 0f64..n)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .y_label_formatter(&|_| String::new())
        .x_labels(if log { (x1 - x0) as usize + 1 } else { 8 })
        .x_label_formatter(&|x| {
            if log {
                let v = 10f64.powf(*x);
                fmt(v)
            } else {
                fmt(*x)
            }
        })
        .x_desc(axis)
        .draw()?;
    let slot = 0.8 / per_band as f64;
    for (b, (label, stats)) in bands.iter().enumerate() {
        // Band b is drawn top-down.
        let top = n - b as f64 - 0.1;
        for (k, stat) in stats.iter().enumerate() {
            let Some(s) = stat else { continue };
            let color = COLORS[k % COLORS.len()];
            let y1 = top - k as f64 * slot;
            let y0 = y1 - slot * 0.9;
            let ym = (y0 + y1) / 2.0;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, y0), (t(s.median), y1)],
                color.mix(0.85).filled(),
            )))?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(t(s.min), ym), (t(s.max), ym)],
                BLACK.stroke_width(1),
            )))?;
            for x in [s.min, s.max] {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(t(x), ym - slot * 0.25), (t(x), ym + slot * 0.25)],
                    BLACK.stroke_width(1),
                )))?;
            }
            let (px, py) = chart.backend_coord(&(t(s.max), ym));
            root.draw(&Text::new(
                fmt(s.median),
                (px + 4, py - 6),
                ("sans-serif", 12).into_font(),
            ))?;
        }
        let (px, py) = chart.backend_coord(&(x0, top - 0.4));
        root.draw(&Text::new(
            label.clone(),
            (px.saturating_sub(172), py - 7),
            ("sans-serif", 13).into_font(),
        ))?;
    }
    if legend {
        for (k, name) in series.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let x = 200 + 150 * k as i32;
            root.draw(&Rectangle::new(
                [(x, height as i32 - 22), (x + 12, height as i32 - 10)],
                color.filled(),
            ))?;
            root.draw(&Text::new(
                name.to_string(),
                (x + 16, height as i32 - 23),
                ("sans-serif", 12).into_font(),
            ))?;
        }
    }
    root.present()?;
    Ok(())
}

fn table_chart(dir: &Path, table: &Table) {
    let bands: Vec<(String, Vec<Option<Stat>>)> = table
        .rows
        .iter()
        .map(|(n, s)| (n.clone(), vec![Some(*s)]))
        .collect();
    let path = dir.join(format!("{}.svg", table.key));
    let axis = format!(
        "{} ({} is better)",
        table.unit,
        if table.lower_is_better {
            "lower"
        } else {
            "higher"
        }
    );
    if let Err(e) = bar_chart(&path, &table.title, &axis, &["median"], &bands, false) {
        eprintln!("chart {}: {e}", path.display());
    }
}

// ---------------------------------------------------------------------
// Workloads

/// Criterion groups measured in ns per element (`per_iteration` elements
/// in one iteration, from the bench's meta file).
fn per_element_table(
    target: &Path,
    meta: &Value,
    group: &str,
    title: &str,
    scale: f64,
    unit: &str,
) -> Option<Table> {
    let info = &meta["groups"][group];
    let per_iteration = info["per_iteration"].as_f64()?;
    let mut rows = Vec::new();
    for id in criterion_ids(target, group) {
        let mut samples = criterion_samples(target, group, &id)?;
        let stat = Stat::from_values(&mut samples)?.scale(scale / per_iteration);
        rows.push((id, stat));
    }
    if rows.is_empty() {
        return None;
    }
    let mut notes = Vec::new();
    if let Some(skipped) = meta["skipped"].as_object() {
        for (k, why) in skipped {
            if let Some(rt) = k.strip_prefix(&format!("{group}/")) {
                notes.push(format!("{rt}: not run, {}.", why.as_str().unwrap_or("")));
            }
        }
    }
    Some(Table {
        key: group.to_owned(),
        title: title.to_owned(),
        unit: unit.to_owned(),
        lower_is_better: true,
        rows,
        notes,
    })
}

fn imbalance_tables(target: &Path, meta: &Value) -> Vec<Table> {
    let workers = meta["machine"]["workers"].as_f64().unwrap_or(1.0);
    let ids = criterion_ids(target, "imbalance");
    let Some(mut seq) = criterion_samples(target, "imbalance", "sequential") else {
        return Vec::new();
    };
    let Some(seq) = Stat::from_values(&mut seq) else {
        return Vec::new();
    };
    let mut makespan = Vec::new();
    let mut efficiency = Vec::new();
    for id in ids {
        let Some(mut samples) = criterion_samples(target, "imbalance", &id) else {
            continue;
        };
        let Some(s) = Stat::from_values(&mut samples) else {
            continue;
        };
        makespan.push((id.clone(), s.scale(1e-6)));
        if id != "sequential" {
            let ideal = seq.median / workers;
            efficiency.push((
                id,
                Stat {
                    median: ideal / s.median,
                    min: ideal / s.max,
                    max: ideal / s.min,
                },
            ));
        }
    }
    vec![
        Table {
            key: "imbalance_makespan".into(),
            title: "imbalance: makespan of the burst".into(),
            unit: "ms".into(),
            lower_is_better: true,
            rows: makespan,
            notes: vec![],
        },
        Table {
            key: "imbalance".into(),
            title: format!(
                "imbalance: efficiency = (sequential / {workers}) / makespan (sequential median {} ms)",
                fmt(seq.median / 1e6)
            ),
            unit: "efficiency".into(),
            lower_is_better: false,
            rows: efficiency,
            notes: vec![],
        },
    ]
}

fn fork_join_tables(target: &Path, meta: &Value) -> Vec<Table> {
    let mut tables = Vec::new();
    let nodes = meta["tree_nodes"].as_u64().map_or_else(
        || "2^22 − 1".to_owned(),
        |n| {
            // Thousands separated by commas, as the other titles write them.
            let digits = n.to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(c);
            }
            out
        },
    );
    for (group, title) in [
        (
            "fib_join",
            "fib_join: fib(32) by join, plain recursion below n = 12".to_owned(),
        ),
        (
            "fib_join_fine",
            "fib_join_fine: fib(32) by join down to n < 2 (join overhead)".to_owned(),
        ),
        (
            "tree_sum",
            format!("tree_sum: sum over a binary tree of {nodes} heap nodes, a join at every node, W threads"),
        ),
        (
            "tree_sum_1thread",
            "tree_sum_1thread: the same sum, one thread per pool".to_owned(),
        ),
        (
            "join_chain",
            "join_chain: a chain of 1,000 joins, each second closure ~10 µs of work".to_owned(),
        ),
    ] {
        let mut rows = Vec::new();
        let mut speedup = Vec::new();
        let seq = criterion_samples(target, group, "sequential")
            .and_then(|mut v| Stat::from_values(&mut v));
        for id in criterion_ids(target, group) {
            let Some(mut samples) = criterion_samples(target, group, &id) else {
                continue;
            };
            let Some(s) = Stat::from_values(&mut samples) else {
                continue;
            };
            rows.push((id.clone(), s.scale(1e-6)));
            if let Some(seq) = seq {
                speedup.push((
                    id,
                    Stat {
                        median: seq.median / s.median,
                        min: seq.median / s.max,
                        max: seq.median / s.min,
                    },
                ));
            }
        }
        if rows.is_empty() {
            continue;
        }
        tables.push(Table {
            key: group.into(),
            title,
            unit: "ms".into(),
            lower_is_better: true,
            rows,
            notes: vec![],
        });
        tables.push(Table {
            key: format!("{group}_speedup"),
            title: format!("{group}: speedup over plain recursion (sequential median / median)"),
            unit: "speedup".into(),
            lower_is_better: false,
            rows: speedup,
            notes: vec![],
        });
    }
    tables
}

fn latency_section(results: &Path, dir: &Path, md: &mut String, summary: &mut Value) {
    let Some(v) = read_json(&results.join("latency.json")) else {
        return;
    };
    let mut names: Vec<String> = v["runtimes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    names.sort_by_key(|n| (order_key(n), n.clone()));
    let stat = |name: &str, key: &str| Stat::from_json(&v["runtimes"][name][key]);
    let best = |key: &str| {
        names
            .iter()
            .filter(|n| is_peer(n))
            .filter_map(|n| Some((n.clone(), stat(n, key)?)))
            .min_by(|a, b| a.1.median.total_cmp(&b.1.median))
    };
    let best99 = best("p99_us");
    let best999 = best("p99.9_us").or_else(|| best("p999_us"));
    let _ = writeln!(
        md,
        "#### latency: submit-to-start at {} tasks/s, open loop, ~{:.1} µs tasks ({} runs of {} s)\n",
        v["rate_per_s"],
        v["task_ns"].as_f64().unwrap_or(0.0) / 1e3,
        v["runs"],
        v["seconds_per_run"]
    );
    let _ = writeln!(
        md,
        "| runtime | p50 µs | p99 µs [min – max] | p99.9 µs [min – max] | max µs | p99 / best peer | p99.9 / best peer | producer lag p99 µs |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut bands = Vec::new();
    let mut rows = Vec::new();
    for name in &names {
        let (Some(p50), Some(p99), Some(p999)) = (
            stat(name, "p50_us"),
            stat(name, "p99_us"),
            stat(name, "p999_us"),
        ) else {
            continue;
        };
        let max = stat(name, "max_us");
        let lag = stat(name, "submit_lag_p99_us");
        let r99 = best99.as_ref().map(|(_, b)| p99.median / b.median);
        let r999 = best999.as_ref().map(|(_, b)| p999.median / b.median);
        let _ = writeln!(
            md,
            "| {name} | {} | {} [{} – {}] | {} [{} – {}] | {} | {} | {} | {} |",
            fmt(p50.median),
            fmt(p99.median),
            fmt(p99.min),
            fmt(p99.max),
            fmt(p999.median),
            fmt(p999.min),
            fmt(p999.max),
            max.map_or("–".into(), |m| fmt(m.median)),
            r99.map_or("–".into(), |r| format!("{r:.2}×")),
            r999.map_or("–".into(), |r| format!("{r:.2}×")),
            lag.map_or("–".into(), |m| fmt(m.median)),
        );
        rows.push(json!({
            "runtime": name, "p50_us": p50.json(), "p99_us": p99.json(), "p999_us": p999.json(),
            "p99_ratio_to_best_peer": r99, "p999_ratio_to_best_peer": r999,
        }));
        bands.push((name.clone(), vec![Some(p50), Some(p99), Some(p999)]));
    }
    if let (Some((b99, _)), Some((b999, _))) = (&best99, &best999) {
        let _ = writeln!(
            md,
            "\nBest peer: {b99} at p99, {b999} at p99.9 (lower is better).\n"
        );
    }
    summary["latency"] = json!({ "rows": rows, "best_peer_p99": best99.map(|b| b.0), "best_peer_p999": best999.map(|b| b.0) });
    if let Err(e) = bar_chart(
        &dir.join("latency.svg"),
        "latency: submit-to-start, open loop (log scale)",
        "µs (lower is better)",
        &["p50", "p99", "p99.9"],
        &bands,
        true,
    ) {
        eprintln!("latency chart: {e}");
    }
}

fn memory_section(results: &Path, dir: &Path, md: &mut String, summary: &mut Value) {
    let Some(v) = read_json(&results.join("memory.json")) else {
        return;
    };
    let all_rows = v["rows"].as_array().cloned().unwrap_or_default();
    let sizes: Vec<u64> = v["sizes"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_u64()).collect())
        .unwrap_or_default();
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let configs: Vec<String> = v["configs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut summary_rows = Vec::new();
    for (c, config) in configs.iter().enumerate() {
        let rows: Vec<&Value> = all_rows
            .iter()
            .filter(|r| r["config"] == config.as_str())
            .collect();
        let find = |name: &str, size: u64| {
            rows.iter()
                .find(|r| r["runtime"] == name && r["tasks"].as_u64() == Some(size))
                .copied()
        };
        let median = |r: &Value, key: &str| r[key]["median"].as_f64().unwrap_or(f64::NAN);
        let rayon_peak = find("rayon", largest).map(|r| median(r, "peak_total_mib"));
        let rayon_growth = find("rayon", largest)
            .map(|r| median(r, "peak_total_mib") - median(r, "peak_before_push_mib"));
        let baseline = v["baselines"][c]["baseline"]["peak_total_mib"]
            .as_f64()
            .unwrap_or(f64::NAN);
        let _ = writeln!(
            md,
            "#### memory [{config}]: 64-byte tasks pushed while every worker is held (a process without a runtime peaks at {} MiB)\n",
            fmt(baseline)
        );
        let _ = writeln!(
            md,
            "| runtime | tasks | accepted while held | producer blocked | peak RSS while held MiB [min – max] | peak RSS whole run MiB | ÷ rayon's peak ({largest} tasks) | growth over the pre-push peak MiB | ÷ rayon's growth |"
        );
        let _ = writeln!(md, "|---|---:|---:|:---:|---:|---:|---:|---:|---:|");
        let mut names: Vec<String> = Vec::new();
        for r in &rows {
            let name = r["runtime"].as_str().unwrap_or("").to_owned();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names.sort_by_key(|n| (order_key(n), n.clone()));
        let mut bands = Vec::new();
        for name in &names {
            let mut band = Vec::new();
            for &size in &sizes {
                let Some(r) = find(name, size) else {
                    band.push(None);
                    continue;
                };
                let held = Stat::from_json(&r["peak_while_held_mib"]);
                let total = Stat::from_json(&r["peak_total_mib"]);
                let growth = median(r, "peak_total_mib") - median(r, "peak_before_push_mib");
                let ratio = |num: f64, den: Option<f64>| match den {
                    Some(d) if num > d => format!("{:.1}×", num / d),
                    Some(d) if num > 0.0 => format!("1/{:.0}", d / num),
                    Some(_) => "≈0".into(),
                    None => "–".into(),
                };
                let _ = writeln!(
                    md,
                    "| {name} | {size} | {} | {} | {} [{} – {}] | {} | {} | {} | {} |",
                    fmt(median(r, "accepted_while_held")),
                    if r["producer_blocked"] == json!(true) {
                        "yes"
                    } else {
                        "no"
                    },
                    held.map_or("–".into(), |s| fmt(s.median)),
                    held.map_or("–".into(), |s| fmt(s.min)),
                    held.map_or("–".into(), |s| fmt(s.max)),
                    total.map_or("–".into(), |s| fmt(s.median)),
                    ratio(total.map_or(f64::NAN, |s| s.median), rayon_peak),
                    fmt(growth),
                    ratio(growth, rayon_growth),
                );
                summary_rows.push(json!({
                    "config": config, "runtime": name, "tasks": size,
                    "peak_total_mib": r["peak_total_mib"], "peak_while_held_mib": r["peak_while_held_mib"],
                    "growth_mib": growth, "producer_blocked": r["producer_blocked"],
                    "accepted_while_held": r["accepted_while_held"],
                    "peak_ratio_to_rayon": rayon_peak.map(|p| total.map_or(f64::NAN, |s| s.median) / p),
                    "growth_ratio_to_rayon": rayon_growth.map(|g| growth / g),
                }));
                band.push(total);
            }
            bands.push((name.clone(), band));
        }
        md.push('\n');
        let labels: Vec<String> = sizes.iter().map(|s| format!("{s} tasks")).collect();
        let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
        let file = if c == 0 {
            "memory.svg".to_owned()
        } else {
            format!("memory_{c}.svg")
        };
        if let Err(e) = bar_chart(
            &dir.join(file),
            &format!("memory: peak RSS with every worker held, 64-byte tasks [{config}]"),
            "MiB (lower is better)",
            &label_refs,
            &bands,
            false,
        ) {
            eprintln!("memory chart: {e}");
        }
    }
    summary["memory"] = json!({ "rows": summary_rows });
}

fn idle_section(results: &Path, dir: &Path, md: &mut String, summary: &mut Value) {
    let Some(v) = read_json(&results.join("idle_cpu.json")) else {
        return;
    };
    let Some(map) = v["runtimes"].as_object() else {
        return;
    };
    let mut names: Vec<String> = map.keys().cloned().collect();
    names.sort_by_key(|n| (order_key(n), n.clone()));
    if let Some(i) = names.iter().position(|n| n == "baseline") {
        let b = names.remove(i);
        names.insert(0, b);
    }
    let base_idle = Stat::from_json(&map["baseline"]["idle_pct"]).map_or(0.0, |s| s.median);
    let base_tick = Stat::from_json(&map["baseline"]["tick_pct"]).map_or(0.0, |s| s.median);
    let pool_tick = |name: &str| Stat::from_json(&map[name]["tick_pool_threads_pct"]);
    let rayon_tick = pool_tick("rayon");
    let best_tick = names
        .iter()
        .filter(|n| is_peer(n))
        .filter_map(|n| Some((n.clone(), pool_tick(n)?)))
        .min_by(|a, b| a.1.median.total_cmp(&b.1.median));
    let _ = writeln!(
        md,
        "#### idle_cpu: % of one core, median of {} processes [min – max]; net = minus the baseline process\n",
        v["repeats"]
    );
    let _ = writeln!(
        md,
        "| runtime | idle % | idle net % | idle, pool threads % | 1 task/ms % | 1 task/ms net % | 1 task/ms, pool threads % | pool threads ÷ rayon's | pool threads ÷ best peer's |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut bands = Vec::new();
    for name in &names {
        let (Some(idle), Some(tick)) = (
            Stat::from_json(&map[name.as_str()]["idle_pct"]),
            Stat::from_json(&map[name.as_str()]["tick_pct"]),
        ) else {
            continue;
        };
        let mine = pool_tick(name);
        let ratio = match (&best_tick, mine) {
            (Some((b, _)), _) if b == name => "best peer".to_owned(),
            (Some((_, b)), Some(m)) if name != "baseline" => {
                format!("{:.2}×", m.median / b.median)
            }
            _ => "–".into(),
        };
        let vs_rayon = match (rayon_tick, mine) {
            (Some(r), Some(m)) if name != "baseline" => format!("{:.2}×", m.median / r.median),
            _ => "–".into(),
        };
        let pool = |key: &str| {
            Stat::from_json(&map[name.as_str()][key]).map_or("–".to_owned(), |s| {
                format!("{} [{} – {}]", fmt(s.median), fmt(s.min), fmt(s.max))
            })
        };
        let _ = writeln!(
            md,
            "| {name} | {} [{} – {}] | {} | {} | {} [{} – {}] | {} | {} | {vs_rayon} | {ratio} |",
            fmt(idle.median),
            fmt(idle.min),
            fmt(idle.max),
            fmt(idle.median - base_idle),
            pool("idle_pool_threads_pct"),
            fmt(tick.median),
            fmt(tick.min),
            fmt(tick.max),
            fmt(tick.median - base_tick),
            pool("tick_pool_threads_pct"),
        );
        bands.push((name.clone(), vec![Some(idle), Some(tick)]));
    }
    md.push('\n');
    summary["idle_cpu"] = json!({
        "baseline_idle_pct": base_idle, "baseline_tick_pct": base_tick,
        "best_peer_tick": best_tick.map(|b| b.0),
        "runtimes": map,
    });
    if let Err(e) = bar_chart(
        &dir.join("idle_cpu.svg"),
        "idle_cpu: CPU of the whole process, % of one core",
        "% of one core (lower is better)",
        &["idle", "one tiny task per ms"],
        &bands,
        false,
    ) {
        eprintln!("idle chart: {e}");
    }
}

/// `t` as `YYYY-MM-DD HH:MM UTC` (civil date from days since 1970).
fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60
    )
}

/// When `paths` were last written, as one time or a range: the time a
/// measurement was taken, which the report (run later) cannot know
/// otherwise.
fn measured_range(paths: &[PathBuf]) -> Option<String> {
    let times: Vec<SystemTime> = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok()?.modified().ok())
        .collect();
    let (first, last) = (utc(*times.iter().min()?), utc(*times.iter().max()?));
    Some(if first == last {
        first
    } else if first[..10] == last[..10] {
        format!("{}–{}", &first[..16], &last[11..])
    } else {
        format!("{first} – {last}")
    })
}

/// When criterion's samples of `group` (every runtime, every baseline
/// read) were written.
fn criterion_measured(target: &Path, group: &str) -> Option<String> {
    let dir = target.join("criterion").join(group);
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(&dir).ok()?.filter_map(|e| e.ok()) {
        for baseline in baselines() {
            paths.push(entry.path().join(&baseline).join("sample.json"));
        }
    }
    measured_range(&paths)
}

fn command_output(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// `--scaling DIR`: the tables of `DIR/w<W>/report/summary.json` (one
/// report per worker count, as `benches/scaling.sh` lays them out) side by
/// side, one table per workload with a column per W, written to
/// `DIR/scaling.md` and `DIR/scaling.json`.
fn scaling(dir: &Path) {
    let mut runs: Vec<(usize, Value)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let w = e.file_name().to_str()?.strip_prefix('w')?.parse().ok()?;
                    Some((w, read_json(&e.path().join("report").join("summary.json"))?))
                })
                .collect()
        })
        .unwrap_or_default();
    runs.sort_by_key(|(w, _)| *w);
    let mut md = String::new();
    if let Ok(machine) = std::fs::read_to_string(dir.join("machine.txt")) {
        let _ = writeln!(md, "```text\n{}```\n", machine);
    }
    let mut keys: Vec<String> = Vec::new();
    for (_, summary) in &runs {
        if let Some(tables) = summary["tables"].as_object() {
            for key in tables.keys() {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
        }
    }
    keys.sort_by_key(|k| {
        (
            !k.starts_with("spawn") && !k.starts_with("chained") && !k.starts_with("ping"),
            k.clone(),
        )
    });
    let mut out =
        json!({ "workers": runs.iter().map(|(w, _)| *w).collect::<Vec<_>>(), "tables": {} });
    for key in &keys {
        let first = runs
            .iter()
            .map(|(_, s)| &s["tables"][key])
            .find(|t| t.is_object())
            .cloned()
            .unwrap_or(Value::Null);
        let unit = first["unit"].as_str().unwrap_or("");
        let _ = writeln!(
            md,
            "#### {} (median {unit} by W)\n",
            first["title"].as_str().unwrap_or(key)
        );
        let _ = write!(md, "| runtime |");
        for (w, _) in &runs {
            let _ = write!(md, " W = {w} |");
        }
        let _ = write!(md, "\n|---|");
        for _ in &runs {
            let _ = write!(md, "---:|");
        }
        let _ = writeln!(md);
        let mut names: Vec<String> = Vec::new();
        for (_, s) in &runs {
            for row in s["tables"][key]["rows"].as_array().into_iter().flatten() {
                if let Some(n) = row["runtime"].as_str() {
                    if !names.iter().any(|x| x == n) {
                        names.push(n.to_owned());
                    }
                }
            }
        }
        names.sort_by_key(|n| (order_key(n), n.clone()));
        for name in &names {
            let _ = write!(md, "| {name} |");
            for (w, s) in &runs {
                let median = s["tables"][key]["rows"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|r| r["runtime"].as_str() == Some(name))
                    .and_then(|r| r["stat"]["median"].as_f64());
                let _ = write!(md, " {} |", median.map_or_else(|| "–".to_owned(), fmt));
                out["tables"][key][name][w.to_string()] = json!(median);
            }
            let _ = writeln!(md);
        }
        let _ = writeln!(md);
    }
    std::fs::write(dir.join("scaling.md"), &md).expect("write scaling.md");
    std::fs::write(
        dir.join("scaling.json"),
        serde_json::to_string_pretty(&out).expect("serialize"),
    )
    .expect("write scaling.json");
    println!("{md}");
    println!(
        "report: wrote scaling.md and scaling.json to {}",
        dir.display()
    );
}

fn main() {
    let quick = common::init_quick_mode();
    let args: Vec<String> = std::env::args().collect();
    if let Some(dir) = args
        .iter()
        .position(|a| a == "--scaling")
        .and_then(|i| args.get(i + 1))
    {
        scaling(Path::new(dir));
        return;
    }
    let target = common::output::target_dir();
    let results = target.join("corepool-bench");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let dir = if quick {
        results.join("report-smoke")
    } else {
        out.unwrap_or_else(|| results.join("report"))
    };
    std::fs::create_dir_all(&dir).expect("create the report directory");

    let mut md = String::new();
    let machine = common::process::machine();
    let _ = writeln!(
        md,
        "Written by `cargo bench --bench report` (`benches/report.rs`); criterion runs pooled: {}; \
         what each table measures: `docs/benchmarks.md`.\n",
        baselines().join(", ")
    );
    let _ = writeln!(
        md,
        "Machine: {} cores, {}; {}; {}; report generated {}.\n",
        machine["cores"],
        machine["cpu_model"].as_str().unwrap_or("?"),
        command_output("rustc", &["--version"]),
        command_output("uname", &["-sr"]),
        command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    );
    let mut summary = json!({ "machine": machine, "tables": {} });
    let mut tables = Vec::new();

    let spawn_meta = read_json(&results.join("spawn-meta.json")).unwrap_or(Value::Null);
    for (group, title, unit) in [
        (
            "spawn_many_remote",
            "spawn_many_remote: 1M tiny tasks from one outside thread",
            "ns/task",
        ),
        (
            "spawn_many_remote_multi",
            "spawn_many_remote_multi: 1M tiny tasks from W outside threads",
            "ns/task",
        ),
        (
            "spawn_many_local",
            "spawn_many_local: a binary tree of 2^20 leaves spawned inside the pool",
            "ns/task",
        ),
        (
            "chained_spawn",
            "chained_spawn: a chain of 1,000 tasks, each spawning the next",
            "ns/task",
        ),
        (
            "ping_pong",
            "ping_pong: 1,000 pairs × 10 round trips through the pool",
            "ns/round trip",
        ),
        (
            "default_capacity",
            "default capacity: spawn_many_remote (one producer) by queue capacity",
            "ns/task",
        ),
        (
            "default_capacity_multi",
            "default capacity: spawn_many_remote_multi (W producers) by queue capacity",
            "ns/task",
        ),
    ] {
        if let Some(t) = per_element_table(&target, &spawn_meta, group, title, 1.0, unit) {
            tables.push(t);
        }
    }
    let imbalance_meta = read_json(&results.join("imbalance-meta.json")).unwrap_or(Value::Null);
    tables.extend(imbalance_tables(&target, &imbalance_meta));
    let fork_join_meta = read_json(&results.join("fork_join-meta.json")).unwrap_or(Value::Null);
    tables.extend(fork_join_tables(&target, &fork_join_meta));

    for table in &mut tables {
        let group = match table.key.as_str() {
            "imbalance" | "imbalance_makespan" => "imbalance",
            key => key.strip_suffix("_speedup").unwrap_or(key),
        };
        if let Some(when) = criterion_measured(&target, group) {
            table.notes.push(format!("Measured {when}."));
        }
    }
    for table in &tables {
        table.markdown(&mut md);
        table_chart(&dir, table);
        summary["tables"][&table.key] = table.json();
    }
    for (file, section) in [
        (
            "latency.json",
            latency_section as fn(&Path, &Path, &mut String, &mut Value),
        ),
        ("memory.json", memory_section),
        ("idle_cpu.json", idle_section),
    ] {
        let before = md.len();
        section(&results, &dir, &mut md, &mut summary);
        if md.len() > before {
            if let Some(when) = measured_range(&[results.join(file)]) {
                let _ = writeln!(md, "\nMeasured {when}.\n");
            }
        }
    }

    if quick && tables.is_empty() {
        // Nothing measured yet: still prove that drawing works.
        let demo = Table {
            key: "smoke".into(),
            title: "smoke test".into(),
            unit: "ns".into(),
            lower_is_better: true,
            rows: vec![(
                "corepool".into(),
                Stat {
                    median: 1.0,
                    min: 0.5,
                    max: 2.0,
                },
            )],
            notes: vec![],
        };
        table_chart(&dir, &demo);
    }
    std::fs::write(dir.join("tables.md"), &md).expect("write tables.md");
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&summary).expect("serialize"),
    )
    .expect("write summary.json");
    println!("{md}");
    println!(
        "report: wrote tables.md, summary.json and charts to {}",
        dir.display()
    );
}
