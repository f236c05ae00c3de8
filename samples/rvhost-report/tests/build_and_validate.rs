//! Runs the rvhost-report binary on the fixture (virtio-net and e1000 runs,
//! two repetitions each, and one request/response run per virtio-net
//! backend) and checks what it writes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_rvhost-report");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

fn report(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn build(runs: &Path, out: &Path, extra: &[&str]) -> Output {
    let meta = fixture("meta.json");
    let mut args = vec![
        "build",
        "--runs",
        runs.to_str().unwrap(),
        "--meta",
        meta.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    report(&args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn builds_everything_and_the_output_validates() {
    let out = scratch("full").join("report");
    let built = build(&fixture("runs.jsonl"), &out, &[]);
    assert!(built.status.success(), "{}", text(&built.stderr));

    for file in [
        "results.json",
        "report.md",
        "pps-virtio-net.svg",
        "exits-per-packet-virtio-net.svg",
        "exits-per-packet-e1000.svg",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    for svg in [
        "pps-virtio-net.svg",
        "exits-per-packet-virtio-net.svg",
        "exits-per-packet-e1000.svg",
    ] {
        let body = fs::read_to_string(out.join(svg)).unwrap();
        let body = body.trim_start();
        assert!(
            body.starts_with("<svg") || body.starts_with("<?xml"),
            "{svg}"
        );
        assert!(body.trim_end().ends_with("</svg>"), "{svg}");
        assert!(body.contains("<text"), "{svg} has no text");
        assert!(
            !body.contains("rr 64B"),
            "{svg} plots request/response runs"
        );
    }

    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(text(&built.stdout), md, "stdout is the report");
    for needle in [
        "- **kernel**: 6.19.0-rvhost",
        "### tx 64B, event-idx",
        "### rx 64B, event-idx",
        "| rvhost | ",
        "### tx 64B\n",
        "| mitigation+coalesced+tdt-deferral | ",
        "| virtio-net/rvhost (event-idx) | ",
        "![",
        "27 runs: 21 virtio-net (3 request/response), 6 e1000.",
        "## Latency: virtio-net request/response\n",
        "### rr 64B event-idx, 1 in flight\n",
        "| rvhost | 6000 (6000–6000, n=1) | 20000 (20000–20000, n=1) | 152 | — | — | 0.92× | 1.20× |",
        "| user | 5000 (5000–5000, n=1) | 30000 (30000–30000, n=1) | 182 | — | — |  |  |",
        "| virtio-net/rvhost/event-idx rr 64B #1 | 1750 | 1752 |",
        "26 ok, 0 DISAGREE, 1 n/a.",
    ] {
        assert!(md.contains(needle), "report lacks {needle:?}:\n{md}");
    }

    let results: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["runs"].as_array().unwrap().len(), 27);
    assert_eq!(results["runs"][26]["latency"]["p99_us"], 30000.0);
    assert_eq!(results["runs"][0]["status"], 0, "extra fields are kept");
    assert_eq!(results["meta"]["perf"], "6.19", "extra meta keys are kept");

    let validated = report(&["validate", out.join("results.json").to_str().unwrap()]);
    assert!(validated.status.success(), "{}", text(&validated.stderr));
    assert!(text(&validated.stdout).contains("results.json: 27 runs valid"));
}

#[test]
fn strict_perf_fails_on_runs_without_perf_counts() {
    let out = scratch("strict");
    let built = build(&fixture("runs.jsonl"), &out, &["--strict-perf"]);
    assert_eq!(built.status.code(), Some(3));
    let err = text(&built.stderr);
    assert!(err.contains("--strict-perf"), "{err}");
    assert!(err.contains("e1000/user/coalesced tx 64B #2: n/a"), "{err}");
    assert!(
        out.join("report.md").is_file(),
        "the report is still written"
    );
}

#[test]
fn refuses_runs_that_would_not_validate() {
    let dir = scratch("invalid");
    let good = fs::read_to_string(fixture("runs.jsonl")).unwrap();
    let mut lines: Vec<String> = good.lines().map(String::from).collect();
    lines[1] = lines[1].replace("\"event-idx\"", "\"sometimes\"");
    lines[3] = lines[3].replace("\"total\": ", "\"all\": ");
    let runs = dir.join("runs.jsonl");
    fs::write(&runs, lines.join("\n")).unwrap();
    let out = dir.join("out");
    let built = build(&runs, &out, &[]);
    assert_eq!(built.status.code(), Some(1));
    let err = text(&built.stderr);
    assert!(err.contains("runs[1].mode"), "{err}");
    assert!(err.contains("runs[3].exits.total"), "{err}");
    assert!(!out.join("results.json").exists());
}

#[test]
fn validate_lists_every_violation() {
    let dir = scratch("validate");
    let path = dir.join("results.json");
    let doc = serde_json::json!({
        "meta": {"kernel": "k", "module_version": "m", "git_commit": "g", "machine": "x"},
        "runs": [{"device": "virtio-net", "backend": "rvhost", "mode": "event-idx",
                  "direction": "tx", "size": 64, "packets": 100, "seconds": 1.0,
                  "pps": 50.0, "exits": {"total": 1}, "exits_per_packet": 0.01,
                  "interrupts_per_packet": 0.0, "kicks_per_packet": 0.0,
                  "perf": {}}]
    });
    fs::write(&path, doc.to_string()).unwrap();
    let validated = report(&["validate", path.to_str().unwrap()]);
    assert_eq!(validated.status.code(), Some(1));
    let err = text(&validated.stderr);
    for needle in [
        "meta.date: missing",
        "runs[0].repetition: missing",
        "runs[0].pps: ",
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
}

#[test]
fn skips_plots_of_a_device_without_runs() {
    let dir = scratch("e1000-only");
    let all = fs::read_to_string(fixture("runs.jsonl")).unwrap();
    let e1000: Vec<&str> = all.lines().filter(|l| l.contains("\"e1000\"")).collect();
    let runs = dir.join("runs.jsonl");
    fs::write(&runs, e1000.join("\n")).unwrap();
    let out = dir.join("out");
    let built = build(&runs, &out, &[]);
    assert!(built.status.success(), "{}", text(&built.stderr));
    assert!(out.join("exits-per-packet-e1000.svg").is_file());
    assert!(!out.join("pps-virtio-net.svg").exists());
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("pps-virtio-net.svg not drawn: no virtio-net TX or RX runs"),
        "{md}"
    );
}

#[test]
fn bench_adds_the_device_level_section_and_bench_net() {
    let dir = scratch("bench");
    let bench = dir.join("bench.jsonl");
    let lines = [
        r#"{"device":"/dev/rvhost-net","direction":"tx","size":64,"pps":200,"kicks_per_packet":0.5,"interrupts_per_packet":0.25,"worker_ns_per_packet":10}"#,
        r#"{"device":"/dev/vhost-net","direction":"tx","size":64,"pps":100,"kicks_per_packet":0.5,"interrupts_per_packet":0.25,"worker_ns_per_packet":20}"#,
    ];
    fs::write(&bench, lines.join("\n")).unwrap();
    let out = dir.join("out");
    let built = build(
        &fixture("runs.jsonl"),
        &out,
        &["--bench", bench.to_str().unwrap()],
    );
    assert!(built.status.success(), "{}", text(&built.stderr));
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains(
            "## Device level: rvhost-traffic against both devices (CPU per packet, latency)\n"
        ),
        "{md}"
    );
    let results: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["bench_net"]["summary"][0]["pps_ratio"], 2.0);
    let validated = report(&["validate", out.join("results.json").to_str().unwrap()]);
    assert!(validated.status.success(), "{}", text(&validated.stderr));
}
