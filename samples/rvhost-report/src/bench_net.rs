//! The net suite's summary (`scripts/run --suites net`): rvhost beside upstream vhost-net per case
//! (direction, size), medians with min–max over the repetitions and the
//! ratios of medians — packets/s, the worker's CPU time per packet (the
//! efficiency figure that survives TCG's noise best), kicks and interrupts
//! per packet — then request/response latency.

use crate::summary::{median, Stats};
use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// The two devices a bench-net boot compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Device {
    Rvhost,
    Vhost,
}

/// One line of `scripts/in-vm-bench`'s output (`rvhost-traffic --json`):
/// a stream run, or a request/response run (`kind` "rr").
#[derive(Deserialize)]
struct BenchRun {
    device: String,
    #[serde(default)]
    kind: Option<String>,
    // Streams.
    direction: Option<String>,
    size: Option<u64>,
    pps: Option<f64>,
    worker_ns_per_packet: Option<f64>,
    kicks_per_packet: Option<f64>,
    interrupts_per_packet: Option<f64>,
    // Request/response.
    depth: Option<u64>,
    #[serde(default)]
    busyloop_us: u64,
    /// The guest slept until the RX interrupt (`--rr-interrupts`).
    #[serde(default)]
    interrupts: bool,
    /// rvhost's interrupt coalescing (`--coalesce`), "off" if none.
    #[serde(default)]
    coalesce: Option<String>,
    per_second: Option<f64>,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    worker_ns_per_transaction: Option<f64>,
}

/// A latency case: in flight, busy poll µs, interrupt-driven guest, rvhost's
/// coalescing.
type LatencyCase = (u64, u64, bool, String);

impl BenchRun {
    fn latency_case(&self) -> LatencyCase {
        let coalesce = self.coalesce.clone().unwrap_or_else(|| "off".into());
        (
            self.depth.unwrap_or(0),
            self.busyloop_us,
            self.interrupts,
            coalesce,
        )
    }

    fn device(&self) -> Device {
        if self.device.contains("rvhost") {
            Device::Rvhost
        } else {
            Device::Vhost
        }
    }
}

/// Median and spread of `field` over `runs` (0 where a run lacks it).
fn stats(runs: &[&BenchRun], field: impl Fn(&BenchRun) -> Option<f64>) -> Stats {
    let values: Vec<f64> = runs.iter().map(|r| field(r).unwrap_or(0.0)).collect();
    Stats::of(&values).unwrap_or(Stats {
        median: 0.0,
        min: 0.0,
        max: 0.0,
        n: 0,
    })
}

fn med(runs: &[&BenchRun], field: impl Fn(&BenchRun) -> Option<f64>) -> f64 {
    let values: Vec<f64> = runs.iter().map(|r| field(r).unwrap_or(0.0)).collect();
    median(&values)
}

/// "median (min–max)", whole numbers.
fn spread(s: Stats) -> String {
    format!("{:.0} ({:.0}–{:.0})", s.median, s.min, s.max)
}

/// The Markdown tables and the JSON (`{"runs": [...], "summary": [...]}`)
/// of the runs in `jsonl`.
pub fn report(jsonl: &str) -> Result<(String, Value)> {
    let mut raw = Vec::new();
    let mut runs = Vec::new();
    for (n, line) in jsonl
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let value: Value = serde_json::from_str(line).with_context(|| format!("line {}", n + 1))?;
        runs.push(BenchRun::deserialize(&value).with_context(|| format!("line {}", n + 1))?);
        raw.push(value);
    }
    let mut streams: BTreeMap<(String, u64, Device), Vec<&BenchRun>> = BTreeMap::new();
    let mut latency: BTreeMap<(LatencyCase, Device), Vec<&BenchRun>> = BTreeMap::new();
    for r in &runs {
        if r.kind.as_deref() == Some("rr") {
            let key = (r.latency_case(), r.device());
            latency.entry(key).or_default().push(r);
        } else {
            let key = (
                r.direction.clone().unwrap_or_default(),
                r.size.unwrap_or(0),
                r.device(),
            );
            streams.entry(key).or_default().push(r);
        }
    }
    let mut md = String::new();
    let mut summary = Vec::new();
    md.push_str("| dir | size | rvhost pps (median, min–max) | vhost pps | pps rvhost/vhost | rvhost worker ns/pkt | vhost worker ns/pkt | CPU/pkt rvhost/vhost | kicks/pkt rv, vh | irqs/pkt rv, vh |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    let sizes: BTreeSet<u64> = streams.keys().map(|k| k.1).collect();
    // rx-drain: RX with the socket full and buffers posted at once (--rx-burst).
    for direction in ["tx", "rx", "rx-drain"] {
        for &size in &sizes {
            let key = |d| (direction.to_string(), size, d);
            let (Some(rv), Some(vh)) = (
                streams.get(&key(Device::Rvhost)),
                streams.get(&key(Device::Vhost)),
            ) else {
                continue;
            };
            let (rp, vp) = (stats(rv, |r| r.pps), stats(vh, |r| r.pps));
            let has_cpu = rv
                .iter()
                .chain(vh)
                .all(|r| r.worker_ns_per_packet.is_some());
            let (rc, vc) = (
                stats(rv, |r| r.worker_ns_per_packet),
                stats(vh, |r| r.worker_ns_per_packet),
            );
            let cpu_cells = if has_cpu {
                format!(
                    "{} | {} | {:.2}",
                    spread(rc),
                    spread(vc),
                    rc.median / vc.median
                )
            } else {
                "n/a | n/a | n/a".to_string()
            };
            let _ = writeln!(
                md,
                "| {direction} | {size} | {} | {} | {:.2} | {cpu_cells} | {:.3}, {:.3} | {:.3}, {:.3} |",
                spread(rp),
                spread(vp),
                rp.median / vp.median,
                med(rv, |r| r.kicks_per_packet),
                med(vh, |r| r.kicks_per_packet),
                med(rv, |r| r.interrupts_per_packet),
                med(vh, |r| r.interrupts_per_packet),
            );
            summary.push(json!({
                "direction": direction, "size": size,
                "rvhost_pps_median": rp.median, "vhost_pps_median": vp.median,
                "pps_ratio": rp.median / vp.median,
                "rvhost_worker_ns_per_packet": has_cpu.then_some(rc.median),
                "vhost_worker_ns_per_packet": has_cpu.then_some(vc.median),
                "cpu_ratio": has_cpu.then(|| rc.median / vc.median),
                "repetitions": rv.len(),
            }));
        }
    }
    let cases: BTreeSet<LatencyCase> = latency
        .keys()
        .filter(|(_, device)| *device == Device::Rvhost)
        .map(|(case, _)| case.clone())
        .collect();
    if !cases.is_empty() {
        md.push_str("\n| in flight | busy poll µs | guest | rvhost coalescing | rvhost round trips/s | vhost round trips/s | rvhost p50 / p99 µs | vhost p50 / p99 µs | p50 rvhost/vhost | rvhost worker ns/trip | vhost worker ns/trip |\n");
        md.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    }
    for case in cases {
        // Upstream has no coalescing: its row is the same case without.
        let (depth, busy, interrupts, coalesce) = case.clone();
        let upstream = (depth, busy, interrupts, "off".to_string());
        let (Some(rv), Some(vh)) = (
            latency.get(&(case, Device::Rvhost)),
            latency.get(&(upstream, Device::Vhost)),
        ) else {
            continue;
        };
        let guest = if interrupts { "interrupts" } else { "polls" };
        let p50 = |rs: &[&BenchRun]| med(rs, |r| r.p50_us);
        let p99 = |rs: &[&BenchRun]| med(rs, |r| r.p99_us);
        let _ = writeln!(
            md,
            "| {depth} | {busy} | {guest} | {coalesce} | {} | {} | {:.0} / {:.0} | {:.0} / {:.0} | {:.2} | {:.0} | {:.0} |",
            spread(stats(rv, |r| r.per_second)),
            spread(stats(vh, |r| r.per_second)),
            p50(rv),
            p99(rv),
            p50(vh),
            p99(vh),
            p50(rv) / p50(vh),
            med(rv, |r| r.worker_ns_per_transaction),
            med(vh, |r| r.worker_ns_per_transaction),
        );
        summary.push(json!({
            "latency_depth": depth, "busyloop_us": busy,
            "interrupts": interrupts, "rvhost_coalesce": coalesce,
            "rvhost_p50_us": p50(rv), "vhost_p50_us": p50(vh),
            "rvhost_p99_us": p99(rv), "vhost_p99_us": p99(vh),
            "rvhost_per_second": med(rv, |r| r.per_second),
            "vhost_per_second": med(vh, |r| r.per_second),
        }));
    }
    Ok((md, json!({"runs": raw, "summary": summary})))
}

/// The tables and the JSON of the runs in the file `jsonl`.
pub fn read(jsonl: &Path) -> Result<(String, Value)> {
    let text =
        std::fs::read_to_string(jsonl).with_context(|| format!("reading {}", jsonl.display()))?;
    report(&text).with_context(|| format!("{}", jsonl.display()))
}

/// Reads `jsonl`, writes the JSON to `out` and returns the tables with a
/// closing line.
pub fn write(jsonl: &Path, out: &Path) -> Result<String> {
    let (mut md, json) = read(jsonl)?;
    let runs = json["runs"].as_array().map_or(0, Vec::len);
    std::fs::write(out, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", out.display()))?;
    let _ = write!(md, "\n{runs} runs; JSON: {}\n", out.display());
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(device: &str, direction: &str, pps: f64, cpu: f64) -> String {
        format!(
            r#"{{"device":"/dev/{device}","direction":"{direction}","size":64,"pps":{pps},"kicks_per_packet":0.5,"interrupts_per_packet":0.25,"worker_ns_per_packet":{cpu}}}"#
        )
    }

    #[test]
    fn medians_spreads_and_ratios_per_case() {
        let lines = [
            stream("rvhost-net", "tx", 100.0, 10.0),
            stream("vhost-net", "tx", 50.0, 20.0),
            stream("rvhost-net", "tx", 300.0, 30.0),
            stream("vhost-net", "tx", 150.0, 40.0),
            r#"{"device":"/dev/rvhost-net","kind":"rr","depth":1,"busyloop_us":0,"per_second":10,"p50_us":100,"p99_us":300,"worker_ns_per_transaction":7}"#.into(),
            r#"{"device":"/dev/vhost-net","kind":"rr","depth":1,"busyloop_us":0,"per_second":20,"p50_us":50,"p99_us":200,"worker_ns_per_transaction":9}"#.into(),
        ];
        let (md, json) = report(&lines.join("\n")).unwrap();
        assert!(
            md.contains("| tx | 64 | 200 (100–300) | 100 (50–150) | 2.00 | 20 (10–30) | 30 (20–40) | 0.67 | 0.500, 0.500 | 0.250, 0.250 |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| 1 | 0 | polls | off | 10 (10–10) | 20 (20–20) | 100 / 300 | 50 / 200 | 2.00 | 7 | 9 |"
            ),
            "{md}"
        );
        assert_eq!(json["runs"].as_array().unwrap().len(), 6);
        assert_eq!(json["summary"][0]["cpu_ratio"], json!(20.0 / 30.0));
        assert_eq!(json["summary"][1]["rvhost_p50_us"], json!(100.0));
    }

    #[test]
    fn coalesced_rvhost_is_compared_with_upstream_without() {
        let rr = |device: &str, coalesce: &str, p50: u32| {
            format!(
                r#"{{"device":"/dev/{device}","kind":"rr","depth":1,"busyloop_us":0,"interrupts":true,"coalesce":"{coalesce}","per_second":10,"p50_us":{p50},"p99_us":400,"worker_ns_per_transaction":7}}"#
            )
        };
        let lines = [
            rr("rvhost-net", "off", 100),
            rr("rvhost-net", "64:50:adaptive", 120),
            rr("vhost-net", "off", 200),
        ];
        let (md, _) = report(&lines.join("\n")).unwrap();
        assert!(
            md.contains("| 1 | 0 | interrupts | off | 10 (10–10) | 10 (10–10) | 100 / 400 | 200 / 400 | 0.50 |"),
            "{md}"
        );
        assert!(
            md.contains("| 1 | 0 | interrupts | 64:50:adaptive | 10 (10–10) | 10 (10–10) | 120 / 400 | 200 / 400 | 0.60 |"),
            "{md}"
        );
    }

    #[test]
    fn drains_get_their_own_row_after_rx() {
        let lines = [
            stream("rvhost-net", "rx-drain", 100.0, 8.0),
            stream("vhost-net", "rx-drain", 100.0, 10.0),
            stream("rvhost-net", "rx", 10.0, 20.0),
            stream("vhost-net", "rx", 10.0, 20.0),
        ];
        let (md, json) = report(&lines.join("\n")).unwrap();
        let rx = md.find("| rx | 64 |").expect("rx row");
        let drain = md.find("| rx-drain | 64 |").expect("rx-drain row");
        assert!(rx < drain, "{md}");
        assert_eq!(json["summary"][1]["direction"], json!("rx-drain"));
        assert_eq!(json["summary"][1]["cpu_ratio"], json!(0.8));
    }

    #[test]
    fn a_case_without_both_devices_or_cpu_figures() {
        let only_rvhost = stream("rvhost-net", "rx", 1.0, 1.0);
        let (md, json) = report(&only_rvhost).unwrap();
        assert!(!md.contains("| rx |"));
        assert!(json["summary"].as_array().unwrap().is_empty());
        let no_cpu = r#"{"device":"/dev/rvhost-net","direction":"tx","size":64,"pps":1,"kicks_per_packet":0,"interrupts_per_packet":0}
{"device":"/dev/vhost-net","direction":"tx","size":64,"pps":1,"kicks_per_packet":0,"interrupts_per_packet":0}"#;
        let (md, json) = report(no_cpu).unwrap();
        assert!(md.contains("| n/a | n/a | n/a |"), "{md}");
        assert_eq!(json["summary"][0]["cpu_ratio"], Value::Null);
    }
}
