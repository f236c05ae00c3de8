//! The `build` command: runs.jsonl + meta.json → results.json, report.md
//! and the SVG plots.

use crate::markdown::Report;
use crate::perf::{self, PerfRow};
use crate::run::Run;
use crate::schema::{self, Violation};
use crate::{bench_net, plots, summary};
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

/// Builds everything into `out`; with `bench` (bench-net's runs, JSONL)
/// the device-level tables and results.json's `bench_net` too. Writes
/// nothing when the inputs would not make a valid results.json.
pub fn build(
    runs_path: &Path,
    meta_path: &Path,
    bench: Option<&Path>,
    out: &Path,
) -> Result<Built> {
    let (runs, lines) = read_runs(runs_path)?;
    let meta = read_meta(meta_path)?;
    let bench = bench.map(bench_net::read).transpose()?;
    let mut doc = json!({"meta": meta, "runs": runs});
    if let Some((_, summary)) = &bench {
        doc["bench_net"] = summary.clone();
    }
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
        .map(|r| serde_json::from_value(r.clone()).map(Run::coalesced_as_backend))
        .collect::<Result<_, _>>()
        .context("reading validated runs")?;
    let meta: Map<String, Value> = serde_json::from_value(meta).context("reading meta")?;

    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let results = out.join("results.json");
    fs::write(&results, &text).with_context(|| format!("writing {}", results.display()))?;

    let virtio = summary::virtio_cases(&typed);
    let latency = summary::latency_cases(&typed);
    let e1000 = summary::e1000_tables(&typed);
    let perf_rows = perf::check_runs(&typed);
    let plots = plots::draw_all(out, &virtio, &e1000)?;
    let markdown = Report {
        meta: &meta,
        run_count: typed.len(),
        virtio: &virtio,
        latency: &latency,
        e1000: &e1000,
        perf: &perf_rows,
        plots: &plots,
        bench_net: bench.as_ref().map(|(tables, _)| tables.as_str()),
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
    use std::path::PathBuf;

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

    /// A fresh, empty directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rvhost-report-build-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A virtio-net tx 64B event-idx run of 1000 packets at `pps`, with a
    /// steady-state window of 800 packets at 1.25 × `pps` when `device_ns`
    /// (its device CPU ns/packet) is given.
    fn virtio_run(backend: &str, pps: f64, device_ns: Option<f64>) -> Value {
        let mut run = json!({
            "device": "virtio-net", "backend": backend, "mode": "event-idx",
            "direction": "tx", "size": 64, "packets": 1000, "seconds": 1000.0 / pps,
            "pps": pps, "exits": {"total": 50, "mmio": 20},
            "exits_per_packet": 0.05, "interrupts_per_packet": 0.01,
            "kicks_per_packet": 0.01, "perf": {"kvm:kvm_exit": 50}, "repetition": 1
        });
        if let Some(ns) = device_ns {
            let steady_pps = pps * 1.25;
            run["steady_state"] = json!({
                "packets": 800, "seconds": 800.0 / steady_pps, "pps": steady_pps,
                "exits": {"total": 8, "mmio": 4, "hlt": 4},
                "exits_per_packet": 0.01, "interrupts_per_packet": 0.02,
                "guest_interrupts_per_packet": 0.02, "kicks_per_packet": 0.005,
                "device_cpu_ns_per_packet": ns, "vcpu_cpu_ns_per_packet": 2.0 * ns
            });
        }
        run
    }

    /// runs.jsonl (rvhost and vhost with windows, user without) and
    /// meta.json in `dir`.
    fn inputs(dir: &Path, steady: bool) -> (PathBuf, PathBuf) {
        let ns = |n: f64| steady.then_some(n);
        let runs: Vec<String> = [
            virtio_run("rvhost", 2000.0, ns(400.0)),
            virtio_run("vhost", 1000.0, ns(800.0)),
            virtio_run("user", 500.0, None),
        ]
        .iter()
        .map(Value::to_string)
        .collect();
        let (runs_path, meta_path) = (dir.join("runs.jsonl"), dir.join("meta.json"));
        fs::write(&runs_path, runs.join("\n")).unwrap();
        let meta = json!({"kernel": "k", "module_version": "m", "git_commit": "g",
                          "machine": "x", "date": "d"});
        fs::write(&meta_path, meta.to_string()).unwrap();
        (runs_path, meta_path)
    }

    fn results(out: &Path) -> Value {
        let text = fs::read_to_string(out.join("results.json")).unwrap();
        assert_eq!(schema::check_results_text(&text), Ok(3));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn builds_the_steady_state_section_without_bench() {
        let dir = scratch("steady");
        let (runs, meta) = inputs(&dir, true);
        let out = dir.join("out");
        let built = build(&runs, &meta, None, &out).unwrap();
        let md = fs::read_to_string(out.join("report.md")).unwrap();
        assert_eq!(built.markdown, md);
        for needle in [
            crate::markdown::STEADY_HEADING,
            "| tx | 64 | event-idx | rvhost | 2500 (2500–2500, n=1) | 400 (400–400, n=1) | 800 | 0.010 | 0.020 | 0.005 | 0.50× | — | 2.00× | — |",
            "- tx 64B event-idx, rvhost: exits/pkt 0.010 ≤ 1/64: met; irqs/pkt 0.020 > 1/64: not met.",
            "](cpu-per-packet-virtio-net.svg)",
        ] {
            assert!(md.contains(needle), "{needle:?} not in\n{md}");
        }
        assert!(!md.contains(crate::markdown::BENCH_HEADING));
        assert!(out.join(plots::CPU_VIRTIO).is_file());
        let results = results(&out);
        assert!(results.get("bench_net").is_none());
        assert_eq!(results["runs"][0]["steady_state"]["packets"], 800);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn builds_the_device_level_section_with_bench() {
        let dir = scratch("bench");
        let (runs, meta) = inputs(&dir, false);
        let bench = dir.join("bench.jsonl");
        let stream = |device: &str, pps: f64, ns: f64| {
            json!({"device": device, "direction": "tx", "size": 64, "pps": pps,
                   "kicks_per_packet": 0.5, "interrupts_per_packet": 0.25,
                   "worker_ns_per_packet": ns})
            .to_string()
        };
        let lines = [
            stream("/dev/rvhost-net", 300.0, 10.0),
            stream("/dev/vhost-net", 100.0, 20.0),
        ];
        fs::write(&bench, lines.join("\n")).unwrap();
        let out = dir.join("out");
        let built = build(&runs, &meta, Some(&bench), &out).unwrap();
        let md = &built.markdown;
        let device = md.find(crate::markdown::BENCH_HEADING).expect("section");
        assert!(md.find(crate::markdown::STEADY_HEADING).unwrap() < device);
        assert!(
            md.contains("| tx | 64 | 300 (300–300) | 100 (100–100) | 3.00 | 10 (10–10) | 20 (20–20) | 0.50 |"),
            "{md}"
        );
        // No windows in these runs: the steady-state section is a note.
        assert!(
            md.contains("No TX or RX run carries a steady-state window"),
            "{md}"
        );
        assert!(!out.join(plots::CPU_VIRTIO).exists());
        let results = results(&out);
        assert_eq!(results["bench_net"]["runs"].as_array().unwrap().len(), 2);
        assert_eq!(results["bench_net"]["summary"][0]["cpu_ratio"], json!(0.5));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_bench_file_writes_nothing() {
        let dir = scratch("bad-bench");
        let (runs, meta) = inputs(&dir, true);
        let bench = dir.join("bench.jsonl");
        fs::write(&bench, "{not json").unwrap();
        let out = dir.join("out");
        let Err(err) = build(&runs, &meta, Some(&bench), &out) else {
            panic!("built with a bench file that is not JSON");
        };
        assert!(format!("{err:#}").contains("bench.jsonl"), "{err:#}");
        assert!(!out.exists());
        let missing = build(&runs, &meta, Some(&dir.join("none.jsonl")), &out);
        assert!(missing.is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
