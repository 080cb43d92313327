//! Where results go: `<target dir>/corepool-bench/*.json`, next to
//! criterion's own `<target dir>/criterion/`.

use std::path::PathBuf;

/// The cargo target directory: `CARGO_TARGET_DIR`, else the directory three
/// levels above this executable (`<target>/release/deps/<bench>-<hash>`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            // Relative to the workspace root, where cargo runs benches from
            // the package root: the same place for this single-package use.
            std::env::current_dir().expect("current dir").join(dir)
        };
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// `<target dir>/corepool-bench`, created on demand.
pub fn results_dir() -> PathBuf {
    let dir = target_dir().join("corepool-bench");
    std::fs::create_dir_all(&dir).expect("create the results directory");
    dir
}

/// Writes `value` as pretty JSON to `<results dir>/<name>.json` (not in
/// quick mode, so a smoke test never overwrites measurements) and says where.
pub fn write_json(name: &str, value: &serde_json::Value) {
    if crate::common::quick() {
        return;
    }
    let path = results_dir().join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(value).expect("serialize results");
    std::fs::write(&path, text).expect("write results");
    println!("wrote {}", path.display());
}

/// Percentile summary of `values` (sorted in place): median, min, max,
/// and the interquartile range.
pub fn summary(values: &mut [f64]) -> serde_json::Value {
    values.sort_by(f64::total_cmp);
    let q = |p: f64| -> f64 {
        if values.is_empty() {
            return f64::NAN;
        }
        let pos = p * (values.len() - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = pos.ceil() as usize;
        values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
    };
    serde_json::json!({
        "median": q(0.5),
        "min": q(0.0),
        "max": q(1.0),
        "q1": q(0.25),
        "q3": q(0.75),
        "n": values.len(),
    })
}
