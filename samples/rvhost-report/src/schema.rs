//! The results.json schema: the one place that says what a valid run and a
//! valid results file are. `build` checks what it is about to write with it,
//! `validate` checks a file on disk with it.

use serde_json::{Map, Value};
use std::fmt;

/// Fields every run must carry (extra fields are allowed and kept).
pub const RUN_FIELDS: [&str; 14] = [
    "device",
    "backend",
    "mode",
    "direction",
    "size",
    "packets",
    "seconds",
    "pps",
    "exits",
    "exits_per_packet",
    "interrupts_per_packet",
    "kicks_per_packet",
    "perf",
    "repetition",
];

/// What a run and its steady-state window both carry, besides figures per
/// packet: `packets` over `seconds` is `pps`; `exits` by reason.
const RATE_FIELDS: [&str; 4] = ["packets", "seconds", "pps", "exits"];

/// A run's figures per packet (numbers >= 0).
const RUN_PER_PACKET: [&str; 3] = [
    "exits_per_packet",
    "interrupts_per_packet",
    "kicks_per_packet",
];

/// A steady-state window's figures per packet (numbers >= 0); with
/// [`RATE_FIELDS`], the fields a run's optional `steady_state` must carry.
const STEADY_STATE_PER_PACKET: [&str; 6] = [
    "exits_per_packet",
    "interrupts_per_packet",
    "guest_interrupts_per_packet",
    "kicks_per_packet",
    "device_cpu_ns_per_packet",
    "vcpu_cpu_ns_per_packet",
];

/// What a request/response run's `latency` carries: counts (integers > 0)
/// and times and rates (numbers > 0).
const LATENCY_COUNTS: [&str; 2] = ["transactions", "depth"];
const LATENCY_FIGURES: [&str; 4] = ["p50_us", "p99_us", "mean_us", "per_second"];

/// Keys `meta` must carry (extra keys are allowed and kept).
pub const META_KEYS: [&str; 5] = ["kernel", "module_version", "git_commit", "machine", "date"];

pub const DEVICES: [&str; 2] = ["virtio-net", "e1000"];
pub const BACKENDS: [&str; 3] = ["rvhost", "vhost", "user"];
pub const DIRECTIONS: [&str; 3] = ["tx", "rx", REQUEST_RESPONSE];
/// The direction of request/response runs (rvmm's virtio-echo workload),
/// which carry `latency`.
pub const REQUEST_RESPONSE: &str = "rr";
pub const VIRTIO_MODES: [&str; 2] = ["event-idx", "no-event-idx"];
/// The e1000 modes of the run matrix; any other mode starting with
/// "mitigation" is an allowed variant too.
pub const E1000_MODES: [&str; 5] = [
    "baseline",
    "coalesced",
    "mitigation",
    "mitigation+coalesced",
    "mitigation+coalesced+tdt-deferral",
];

/// How far `pps` may be from `packets / seconds`, relatively.
pub const PPS_TOLERANCE: f64 = 0.01;

/// One thing wrong with a document: where (a dotted path such as
/// `runs[2].exits.total`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct Violation {
    pub path: String,
    pub reason: String,
}

impl Violation {
    fn new(path: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// Whether `mode` is an allowed mode for `device`.
pub fn mode_allowed(device: &str, mode: &str) -> bool {
    match device {
        "virtio-net" => VIRTIO_MODES.contains(&mode),
        "e1000" => E1000_MODES.contains(&mode) || mode.starts_with("mitigation"),
        _ => false,
    }
}

/// Checks a whole results document: `{"meta": {...}, "runs": [...]}`,
/// with an optional `"bench_net": {...}` (bench-net's runs and summary).
/// Returns every violation found (empty when the document is valid).
pub fn check_results(doc: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(obj) = doc.as_object() else {
        out.push(Violation::new(
            "$",
            "must be an object with \"meta\" and \"runs\"",
        ));
        return out;
    };
    match obj.get("meta") {
        None => out.push(Violation::new("meta", "missing")),
        Some(meta) => check_meta(meta, &mut out),
    }
    match obj.get("runs") {
        None => out.push(Violation::new("runs", "missing")),
        Some(Value::Array(runs)) => {
            if runs.is_empty() {
                out.push(Violation::new("runs", "must contain at least one run"));
            }
            for (i, run) in runs.iter().enumerate() {
                check_run(run, &format!("runs[{i}]"), &mut out);
            }
        }
        Some(_) => out.push(Violation::new("runs", "must be an array")),
    }
    if obj.get("bench_net").is_some_and(|b| !b.is_object()) {
        out.push(Violation::new("bench_net", "must be an object"));
    }
    out
}

/// Parses and checks the text of a results.json; the number of runs when
/// it is valid, every violation otherwise.
pub fn check_results_text(text: &str) -> Result<usize, Vec<Violation>> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| vec![Violation::new("$", format!("not JSON: {e}"))])?;
    let violations = check_results(&doc);
    if violations.is_empty() {
        Ok(doc["runs"].as_array().map_or(0, Vec::len))
    } else {
        Err(violations)
    }
}

/// Checks the `meta` object: every key of [`META_KEYS`] present, a string.
pub fn check_meta(meta: &Value, out: &mut Vec<Violation>) {
    let Some(obj) = meta.as_object() else {
        out.push(Violation::new("meta", "must be an object"));
        return;
    };
    for key in META_KEYS {
        let path = format!("meta.{key}");
        match obj.get(key) {
            None => out.push(Violation::new(path, "missing")),
            Some(Value::String(_)) => {}
            Some(_) => out.push(Violation::new(path, "must be a string")),
        }
    }
}

/// Checks one run at `path` (e.g. `runs[3]`), appending what is wrong.
pub fn check_run(run: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(obj) = run.as_object() else {
        out.push(Violation::new(path, "must be an object"));
        return;
    };
    require_fields(obj, path, &RUN_FIELDS, out);

    let device = enum_field(obj, path, "device", &DEVICES, out);
    let backend = enum_field(obj, path, "backend", &BACKENDS, out);
    let direction = enum_field(obj, path, "direction", &DIRECTIONS, out);
    if let (Some("e1000"), Some(b)) = (device, backend) {
        if b != "user" {
            out.push(Violation::new(
                format!("{path}.backend"),
                format!("\"{b}\" is not allowed for e1000 (rvmm emulates it: \"user\")"),
            ));
        }
    }
    if let Some(v) = obj.get("mode") {
        match (v.as_str(), device) {
            (None, _) => out.push(Violation::new(format!("{path}.mode"), "must be a string")),
            (Some(mode), Some(device)) if !mode_allowed(device, mode) => {
                let allowed = if device == "e1000" {
                    format!("{} or mitigation*", E1000_MODES.join(", "))
                } else {
                    VIRTIO_MODES.join(", ")
                };
                out.push(Violation::new(
                    format!("{path}.mode"),
                    format!("\"{mode}\" is not a {device} mode (allowed: {allowed})"),
                ));
            }
            _ => {}
        }
    }

    count_field(obj, path, "size", true, out);
    count_field(obj, path, "repetition", false, out);
    check_rates(obj, path, &RUN_PER_PACKET, out);
    counter_map(obj, path, "perf", out);
    if let Some(steady) = obj.get("steady_state") {
        check_steady_state(steady, &format!("{path}.steady_state"), out);
    }
    if let Some(coalesce) = obj.get("coalesce") {
        if !coalesce.is_string() {
            out.push(Violation::new(
                format!("{path}.coalesce"),
                "must be a string",
            ));
        } else if backend != Some("rvhost") {
            out.push(Violation::new(
                format!("{path}.coalesce"),
                "only rvhost coalesces interrupts (RVHOST_SET_VRING_COALESCE)",
            ));
        }
    }
    check_request_response(obj, path, device, direction, out);
}

/// A request/response run is virtio-net's and carries `latency`; no other
/// run does.
fn check_request_response(
    obj: &Map<String, Value>,
    path: &str,
    device: Option<&str>,
    direction: Option<&str>,
    out: &mut Vec<Violation>,
) {
    let rr = direction == Some(REQUEST_RESPONSE);
    if rr && device == Some("e1000") {
        out.push(Violation::new(
            format!("{path}.direction"),
            "request/response (\"rr\") is a virtio-net workload",
        ));
    }
    match (obj.get("latency"), rr) {
        (Some(latency), true) => check_latency(latency, &format!("{path}.latency"), out),
        (None, true) => out.push(Violation::new(
            format!("{path}.latency"),
            "missing (a request/response run carries its round trips)",
        )),
        (Some(_), false) if direction.is_some() => out.push(Violation::new(
            format!("{path}.latency"),
            "only request/response (\"rr\") runs carry one",
        )),
        _ => {}
    }
}

/// Checks a run's `latency` at `path` (e.g. `runs[3].latency`): its counts,
/// its figures, and the median no later than the 99th percentile.
pub fn check_latency(latency: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(obj) = latency.as_object() else {
        out.push(Violation::new(path, "must be an object"));
        return;
    };
    require_fields(obj, path, &LATENCY_COUNTS, out);
    require_fields(obj, path, &LATENCY_FIGURES, out);
    for field in LATENCY_COUNTS {
        count_field(obj, path, field, true, out);
    }
    let mut figure = |field: &str| {
        let x = number_field(obj, path, field, out)?;
        if x <= 0.0 {
            out.push(Violation::new(format!("{path}.{field}"), "must be > 0"));
            return None;
        }
        Some(x)
    };
    let (p50, p99) = (figure("p50_us"), figure("p99_us"));
    figure("mean_us");
    figure("per_second");
    if let (Some(p50), Some(p99)) = (p50, p99) {
        if p50 > p99 {
            out.push(Violation::new(
                format!("{path}.p99_us"),
                format!("{p99} is below the median {p50}"),
            ));
        }
    }
}

/// Checks a run's `steady_state` at `path` (e.g. `runs[3].steady_state`).
pub fn check_steady_state(steady: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(obj) = steady.as_object() else {
        out.push(Violation::new(path, "must be an object"));
        return;
    };
    require_fields(obj, path, &RATE_FIELDS, out);
    require_fields(obj, path, &STEADY_STATE_PER_PACKET, out);
    check_rates(obj, path, &STEADY_STATE_PER_PACKET, out);
}

/// Appends a violation for each of `fields` that `obj` lacks.
fn require_fields(obj: &Map<String, Value>, path: &str, fields: &[&str], out: &mut Vec<Violation>) {
    for field in fields {
        if !obj.contains_key(*field) {
            out.push(Violation::new(format!("{path}.{field}"), "missing"));
        }
    }
}

/// What a run and its steady-state window have in common: `packets` (> 0)
/// over `seconds` (> 0) is `pps`, `exits` by reason with KVM's `total`,
/// and the figures `per_packet` (>= 0).
fn check_rates(
    obj: &Map<String, Value>,
    path: &str,
    per_packet: &[&str],
    out: &mut Vec<Violation>,
) {
    let packets = count_field(obj, path, "packets", true, out);
    let seconds = number_field(obj, path, "seconds", out);
    if let Some(s) = seconds {
        if s <= 0.0 {
            out.push(Violation::new(format!("{path}.seconds"), "must be > 0"));
        }
    }
    let pps = number_field(obj, path, "pps", out);
    for field in per_packet {
        if let Some(x) = number_field(obj, path, field, out) {
            if x < 0.0 {
                out.push(Violation::new(format!("{path}.{field}"), "must be >= 0"));
            }
        }
    }
    if let (Some(pps), Some(packets), Some(seconds)) = (pps, packets, seconds) {
        if seconds > 0.0 && packets > 0 {
            let expected = packets as f64 / seconds;
            if (pps - expected).abs() > PPS_TOLERANCE * expected {
                out.push(Violation::new(
                    format!("{path}.pps"),
                    format!(
                        "{pps} differs from packets/seconds = {expected:.3} by more than {}%",
                        PPS_TOLERANCE * 100.0
                    ),
                ));
            }
        }
    }

    if let Some(exits) = counter_map(obj, path, "exits", out) {
        if !exits.contains_key("total") {
            out.push(Violation::new(
                format!("{path}.exits.total"),
                "missing (KVM's own exit counter is required)",
            ));
        }
    }
}

/// A string field that must be one of `allowed`; returns it when it is.
fn enum_field<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    field: &str,
    allowed: &[&str],
    out: &mut Vec<Violation>,
) -> Option<&'a str> {
    let v = obj.get(field)?;
    let Some(s) = v.as_str() else {
        out.push(Violation::new(
            format!("{path}.{field}"),
            "must be a string",
        ));
        return None;
    };
    if allowed.contains(&s) {
        Some(s)
    } else {
        out.push(Violation::new(
            format!("{path}.{field}"),
            format!("\"{s}\" is not one of {}", allowed.join(", ")),
        ));
        None
    }
}

/// A non-negative integer field (positive when `positive`).
fn count_field(
    obj: &Map<String, Value>,
    path: &str,
    field: &str,
    positive: bool,
    out: &mut Vec<Violation>,
) -> Option<u64> {
    let v = obj.get(field)?;
    let Some(n) = v.as_u64() else {
        out.push(Violation::new(
            format!("{path}.{field}"),
            "must be a non-negative integer",
        ));
        return None;
    };
    if positive && n == 0 {
        out.push(Violation::new(format!("{path}.{field}"), "must be > 0"));
        return None;
    }
    Some(n)
}

/// A finite numeric field.
fn number_field(
    obj: &Map<String, Value>,
    path: &str,
    field: &str,
    out: &mut Vec<Violation>,
) -> Option<f64> {
    let v = obj.get(field)?;
    let n = v.as_f64().filter(|x| x.is_finite());
    if n.is_none() {
        out.push(Violation::new(
            format!("{path}.{field}"),
            "must be a finite number",
        ));
    }
    n
}

/// An object whose values are all non-negative numbers.
fn counter_map<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    field: &str,
    out: &mut Vec<Violation>,
) -> Option<&'a Map<String, Value>> {
    let v = obj.get(field)?;
    let Some(map) = v.as_object() else {
        out.push(Violation::new(
            format!("{path}.{field}"),
            "must be an object of numbers",
        ));
        return None;
    };
    for (key, value) in map {
        match value.as_f64() {
            Some(x) if x >= 0.0 => {}
            Some(_) => out.push(Violation::new(
                format!("{path}.{field}.{key}"),
                "must be >= 0",
            )),
            None => out.push(Violation::new(
                format!("{path}.{field}.{key}"),
                "must be a number",
            )),
        }
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good_run() -> Value {
        json!({
            "device": "virtio-net", "backend": "rvhost", "mode": "event-idx",
            "direction": "tx", "size": 64, "packets": 2000, "seconds": 0.41,
            "pps": 4878.0,
            "exits": {"total": 180, "io": 20, "mmio": 30, "hlt": 12,
                      "irq_window": 0, "userspace": 45},
            "exits_per_packet": 0.09, "interrupts_per_packet": 0.01,
            "kicks_per_packet": 0.02,
            "perf": {"kvm:kvm_exit": 183, "kvm:kvm_userspace_exit": 46},
            "repetition": 1, "status": 0, "console": "extra fields are fine"
        })
    }

    /// 1900 packets in 0.38 s: 5000 pps.
    fn good_steady_state() -> Value {
        json!({
            "packets": 1900, "seconds": 0.38, "pps": 5000.0,
            "exits": {"total": 19, "io": 0, "mmio": 10, "hlt": 5, "irq": 2,
                      "irq_window": 0, "request_irq": 0, "signal": 2},
            "exits_per_packet": 0.01, "interrupts_per_packet": 0.005,
            "guest_interrupts_per_packet": 0.005, "kicks_per_packet": 0.002,
            "device_cpu_ns_per_packet": 850.0, "vcpu_cpu_ns_per_packet": 1200.0
        })
    }

    fn with_steady_state(steady: Value) -> Value {
        let mut run = good_run();
        run["steady_state"] = steady;
        run
    }

    fn good_meta() -> Value {
        json!({"kernel": "6.19", "module_version": "0.1", "git_commit": "abc",
               "machine": "x86_64", "date": "2026-01-01", "extra": 1})
    }

    fn run_violations(run: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        check_run(run, "runs[0]", &mut out);
        out
    }

    fn paths(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|v| v.path.as_str()).collect()
    }

    #[test]
    fn accepts_a_good_run_and_document() {
        assert_eq!(run_violations(&good_run()), vec![]);
        let doc = json!({"meta": good_meta(), "runs": [good_run()]});
        assert_eq!(check_results(&doc), vec![]);
    }

    #[test]
    fn accepts_e1000_modes_and_empty_perf() {
        for mode in E1000_MODES
            .iter()
            .copied()
            .chain(["mitigation-batch+coalesced"])
        {
            let mut run = good_run();
            run["device"] = "e1000".into();
            run["backend"] = "user".into();
            run["mode"] = mode.into();
            run["perf"] = json!({});
            assert_eq!(run_violations(&run), vec![], "{mode}");
        }
    }

    fn without(mut object: Value, field: &str) -> Value {
        object.as_object_mut().unwrap().remove(field);
        object
    }

    /// Each of `fields` that `run_without` leaves out of a run is reported
    /// at `{prefix}.{field}`.
    fn reports_each_missing(fields: &[&str], prefix: &str, run_without: impl Fn(&str) -> Value) {
        for field in fields {
            let v = run_violations(&run_without(field));
            assert!(
                paths(&v).contains(&format!("{prefix}.{field}").as_str()),
                "{field}: {v:?}"
            );
        }
    }

    #[test]
    fn rejects_missing_fields() {
        reports_each_missing(&RUN_FIELDS, "runs[0]", |f| without(good_run(), f));
    }

    #[test]
    fn coalescing_is_a_string_on_rvhost_runs_only() {
        let mut run = good_run();
        run["coalesce"] = "128:100".into();
        assert!(run_violations(&run).is_empty());
        run["coalesce"] = json!(128);
        assert_eq!(paths(&run_violations(&run)), vec!["runs[0].coalesce"]);
        run["coalesce"] = "128:100".into();
        run["backend"] = "vhost".into();
        assert_eq!(paths(&run_violations(&run)), vec!["runs[0].coalesce"]);
    }

    #[test]
    fn rejects_bad_enums() {
        let cases = [
            ("device", json!("rtl8139")),
            ("backend", json!("qemu")),
            ("direction", json!("both")),
            ("mode", json!("baseline")), // an e1000 mode on virtio-net
            ("mode", json!(3)),
        ];
        for (field, value) in cases {
            let mut run = good_run();
            run[field] = value;
            let v = run_violations(&run);
            assert_eq!(paths(&v), vec![format!("runs[0].{field}")], "{v:?}");
        }
        let mut run = good_run();
        run["device"] = "e1000".into();
        run["mode"] = "baseline".into();
        assert_eq!(paths(&run_violations(&run)), vec!["runs[0].backend"]);
        run["backend"] = "user".into();
        run["mode"] = "event-idx".into();
        assert_eq!(paths(&run_violations(&run)), vec!["runs[0].mode"]);
    }

    #[test]
    fn rejects_pps_mismatch() {
        let mut run = good_run();
        // packets / seconds = 4878.05; 1% is about 48.8.
        run["pps"] = json!(4830.0);
        assert_eq!(run_violations(&run), vec![]);
        run["pps"] = json!(4820.0);
        assert_eq!(paths(&run_violations(&run)), vec!["runs[0].pps"]);
        run["pps"] = json!(4940.0);
        assert_eq!(paths(&run_violations(&run)), vec!["runs[0].pps"]);
    }

    #[test]
    fn rejects_exits_without_total() {
        let mut run = good_run();
        run["exits"].as_object_mut().unwrap().remove("total");
        assert_eq!(paths(&run_violations(&run)), vec!["runs[0].exits.total"]);
    }

    #[test]
    fn rejects_bad_types_and_values() {
        let cases = [
            ("packets", json!(0), "runs[0].packets"),
            ("packets", json!(-5), "runs[0].packets"),
            ("packets", json!(1.5), "runs[0].packets"),
            ("size", json!("64"), "runs[0].size"),
            ("seconds", json!(0.0), "runs[0].seconds"),
            ("exits_per_packet", json!("0.1"), "runs[0].exits_per_packet"),
            ("exits", json!([1, 2]), "runs[0].exits"),
            (
                "perf",
                json!({"kvm:kvm_exit": "many"}),
                "runs[0].perf.kvm:kvm_exit",
            ),
            ("repetition", json!(-1), "runs[0].repetition"),
        ];
        for (field, value, path) in cases {
            let mut run = good_run();
            run[field] = value;
            let v = run_violations(&run);
            assert!(paths(&v).contains(&path), "{field}: {v:?}");
        }
    }

    #[test]
    fn accepts_a_good_steady_state() {
        let run = with_steady_state(good_steady_state());
        assert_eq!(run_violations(&run), vec![]);
        let doc = json!({"meta": good_meta(), "runs": [run, good_run()]});
        assert_eq!(check_results(&doc), vec![]);
    }

    #[test]
    fn rejects_a_steady_state_missing_a_field() {
        let fields: Vec<&str> = RATE_FIELDS
            .into_iter()
            .chain(STEADY_STATE_PER_PACKET)
            .collect();
        assert_eq!(fields.len(), 10);
        reports_each_missing(&fields, "runs[0].steady_state", |f| {
            with_steady_state(without(good_steady_state(), f))
        });
    }

    #[test]
    fn rejects_bad_steady_state_values() {
        let cases = [
            ("packets", json!(0), "packets"),
            ("packets", json!(1.5), "packets"),
            ("seconds", json!(0.0), "seconds"),
            ("seconds", json!(-0.38), "seconds"),
            // packets / seconds = 5000; 1% is 50.
            ("pps", json!(4940.0), "pps"),
            ("pps", json!("5000"), "pps"),
            (
                "device_cpu_ns_per_packet",
                json!(-1.0),
                "device_cpu_ns_per_packet",
            ),
            (
                "vcpu_cpu_ns_per_packet",
                json!("fast"),
                "vcpu_cpu_ns_per_packet",
            ),
            (
                "guest_interrupts_per_packet",
                json!(null),
                "guest_interrupts_per_packet",
            ),
            ("exits", json!(19), "exits"),
            ("exits", json!({"io": 1}), "exits.total"),
            ("exits", json!({"total": -1}), "exits.total"),
            ("exits", json!({"total": 19, "hlt": "5"}), "exits.hlt"),
        ];
        for (field, value, path) in cases {
            let mut steady = good_steady_state();
            steady[field] = value;
            let v = run_violations(&with_steady_state(steady));
            assert_eq!(
                paths(&v),
                vec![format!("runs[0].steady_state.{path}")],
                "{field}: {v:?}"
            );
        }
        let mut steady = good_steady_state();
        steady["pps"] = json!(5040.0);
        assert_eq!(run_violations(&with_steady_state(steady)), vec![]);
        let v = run_violations(&with_steady_state(json!([1900, 0.38])));
        assert_eq!(paths(&v), vec!["runs[0].steady_state"]);
    }

    /// A virtio-net request/response run: 500 round trips, 450 of them timed.
    fn good_rr_run() -> Value {
        let mut run = good_run();
        run["direction"] = REQUEST_RESPONSE.into();
        run["packets"] = 500.into();
        run["seconds"] = 5.0.into();
        run["pps"] = 100.0.into();
        run["latency"] = json!({
            "transactions": 450, "depth": 1, "p50_us": 6000.5, "p99_us": 21000.0,
            "mean_us": 7300.0, "per_second": 130.0
        });
        run
    }

    #[test]
    fn accepts_a_request_response_run() {
        assert_eq!(run_violations(&good_rr_run()), vec![]);
        let doc = json!({"meta": good_meta(), "runs": [good_run(), good_rr_run()]});
        assert_eq!(check_results(&doc), vec![]);
        let mut run = good_rr_run();
        run["latency"]["p99_us"] = run["latency"]["p50_us"].clone();
        assert_eq!(run_violations(&run), vec![]);
    }

    #[test]
    fn request_response_is_virtio_net_with_latency_only() {
        let v = run_violations(&without(good_rr_run(), "latency"));
        assert_eq!(paths(&v), vec!["runs[0].latency"]);
        let mut e1000 = good_rr_run();
        e1000["device"] = "e1000".into();
        e1000["backend"] = "user".into();
        e1000["mode"] = "baseline".into();
        assert_eq!(paths(&run_violations(&e1000)), vec!["runs[0].direction"]);
        let mut tx = good_run();
        tx["latency"] = good_rr_run()["latency"].clone();
        assert_eq!(paths(&run_violations(&tx)), vec!["runs[0].latency"]);
    }

    #[test]
    fn rejects_a_latency_missing_a_field() {
        let fields: Vec<&str> = LATENCY_COUNTS.into_iter().chain(LATENCY_FIGURES).collect();
        assert_eq!(fields.len(), 6);
        reports_each_missing(&fields, "runs[0].latency", |f| {
            let mut run = good_rr_run();
            run["latency"] = without(run["latency"].clone(), f);
            run
        });
    }

    #[test]
    fn rejects_bad_latency_values() {
        let cases = [
            ("transactions", json!(0), "transactions"),
            ("transactions", json!(4.5), "transactions"),
            ("depth", json!(0), "depth"),
            ("depth", json!("1"), "depth"),
            ("p50_us", json!(0.0), "p50_us"),
            ("p50_us", json!(null), "p50_us"),
            ("mean_us", json!(-1.0), "mean_us"),
            ("per_second", json!("fast"), "per_second"),
            // A 99th percentile below the median.
            ("p99_us", json!(5000.0), "p99_us"),
        ];
        for (field, value, path) in cases {
            let mut run = good_rr_run();
            run["latency"][field] = value;
            let v = run_violations(&run);
            assert_eq!(
                paths(&v),
                vec![format!("runs[0].latency.{path}")],
                "{field}: {v:?}"
            );
        }
        let mut run = good_rr_run();
        run["latency"] = json!([1, 2]);
        assert_eq!(paths(&run_violations(&run)), vec!["runs[0].latency"]);
    }

    #[test]
    fn bench_net_must_be_an_object() {
        let bench = json!({"runs": [], "summary": []});
        let doc = json!({"meta": good_meta(), "runs": [good_run()], "bench_net": bench});
        assert_eq!(check_results(&doc), vec![]);
        let doc = json!({"meta": good_meta(), "runs": [good_run()], "bench_net": []});
        assert_eq!(paths(&check_results(&doc)), vec!["bench_net"]);
    }

    #[test]
    fn checks_text() {
        let doc = json!({"meta": good_meta(), "runs": [good_run(), good_run()]});
        assert_eq!(check_results_text(&doc.to_string()), Ok(2));
        let err = check_results_text("{\"meta\": ").unwrap_err();
        assert_eq!(paths(&err), vec!["$"]);
    }

    #[test]
    fn checks_meta_and_document_shape() {
        let mut meta = good_meta();
        meta.as_object_mut().unwrap().remove("git_commit");
        meta["date"] = json!(20260101);
        let doc = json!({"meta": meta, "runs": []});
        assert_eq!(
            paths(&check_results(&doc)),
            vec!["meta.git_commit", "meta.date", "runs"]
        );
        assert_eq!(paths(&check_results(&json!([]))), vec!["$"]);
        assert_eq!(
            paths(&check_results(&json!({"runs": [1]}))),
            vec!["meta", "runs[0]"]
        );
    }
}
