//! The `build` command: runs.jsonl + meta.json → results.json, report.md
//! and the SVG plots.

use crate::markdown::Report;
use crate::perf::{self, PerfRow};
use crate::run::Run;
use crate::schema::{self, Violation};
use crate::{plots, summary};
use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use std::fs;
use std::path::Path;

/// What a successful build leaves for the caller.
pub struct Built {
    /// The report, as written to report.md.
    pub markdown: String,
    /// Runs whose perf cross-check is DISAGREE or n/a.
    pub perf_failures: Vec<PerfRow>,
}

/// The runs of a runs.jsonl, with the line each came from.
fn read_runs(path: &Path) -> Result<(Vec<Value>, Vec<usize>)> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut runs = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let run: Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a JSON value", path.display(), i + 1))?;
        runs.push(run);
        lines.push(i + 1);
    }
    Ok((runs, lines))
}

fn read_meta(path: &Path) -> Result<Value> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))
}

/// `runs[3].mode: ...` becomes `runs[3].mode (runs.jsonl line 5): ...`.
fn with_line(v: &Violation, lines: &[usize], runs_path: &Path) -> String {
    let index = v
        .path
        .strip_prefix("runs[")
        .and_then(|rest| rest.split(']').next())
        .and_then(|i| i.parse::<usize>().ok());
    match index.and_then(|i| lines.get(i)) {
        Some(line) => format!("{} ({}:{line}): {}", v.path, runs_path.display(), v.reason),
        None => v.to_string(),
    }
}

/// Builds everything into `out`. Writes nothing when the runs and meta
/// would not make a valid results.json.
pub fn build(runs_path: &Path, meta_path: &Path, out: &Path) -> Result<Built> {
    let (runs, lines) = read_runs(runs_path)?;
    let meta = read_meta(meta_path)?;
    let doc = json!({"meta": meta, "runs": runs});
    let text = serde_json::to_string_pretty(&doc)? + "\n";
    if let Err(violations) = schema::check_results_text(&text) {
        let list: Vec<String> = violations
            .iter()
            .map(|v| format!("  {}", with_line(v, &lines, runs_path)))
            .collect();
        bail!(
            "refusing to write a results.json that would not validate ({} violation(s)):\n{}",
            violations.len(),
            list.join("\n")
        );
    }

    let typed: Vec<Run> = runs
        .iter()
        .map(|r| serde_json::from_value(r.clone()))
        .collect::<Result<_, _>>()
        .context("reading validated runs")?;
    let meta: Map<String, Value> = serde_json::from_value(meta).context("reading meta")?;

    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let results = out.join("results.json");
    fs::write(&results, &text).with_context(|| format!("writing {}", results.display()))?;

    let virtio = summary::virtio_cases(&typed);
    let e1000 = summary::e1000_tables(&typed);
    let perf_rows = perf::check_runs(&typed);
    let plots = plots::draw_all(out, &virtio, &e1000)?;
    let markdown = Report {
        meta: &meta,
        run_count: typed.len(),
        virtio: &virtio,
        e1000: &e1000,
        perf: &perf_rows,
        plots: &plots,
    }
    .render();
    let report = out.join("report.md");
    fs::write(&report, &markdown).with_context(|| format!("writing {}", report.display()))?;

    let perf_failures = perf_rows
        .into_iter()
        .filter(|r| r.agreement.is_failure())
        .collect();
    Ok(Built {
        markdown,
        perf_failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_line_of_a_bad_run() {
        let v = Violation {
            path: "runs[1].mode".into(),
            reason: "bad".into(),
        };
        let p = Path::new("runs.jsonl");
        assert_eq!(
            with_line(&v, &[1, 3], p),
            "runs[1].mode (runs.jsonl:3): bad"
        );
        let m = Violation {
            path: "meta.date".into(),
            reason: "missing".into(),
        };
        assert_eq!(with_line(&m, &[1], p), "meta.date: missing");
    }
}
