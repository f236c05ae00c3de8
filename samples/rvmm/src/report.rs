//! What a run prints: the guest's console and a summary line, or (with
//! `--json`) one JSON object with the counters `make run` reads.

use crate::cli::{RunArgs, Workload};
use crate::latency::Latency;
use crate::run_json;
use crate::vcpu::RunReport;
use crate::window::Window;
use serde_json::Value;
use std::collections::BTreeMap;

/// How a run went, as measured around it.
pub struct Outcome {
    pub report: RunReport,
    /// KVM's own exit counters over the run.
    pub kvm: BTreeMap<&'static str, u64>,
    /// Frames checked on the tap after a TX run.
    pub verified: Option<u32>,
    /// The device's own counters (a vhost device's statistics), if any.
    pub device_stats: Option<Value>,
    /// The round trips an echo run's far side timed.
    pub latency: Option<Latency>,
}

/// Prints the outcome of the run `args` described.
pub fn print(args: &RunArgs, outcome: &Outcome) {
    if args.json {
        println!("{}", json(args, outcome));
        return;
    }
    let Outcome {
        report,
        kvm,
        verified,
        ..
    } = outcome;
    print!("{}", report.console);
    if let Some(n) = verified {
        println!("rvmm: {n} frames arrived on the tap in order, byte for byte");
    }
    if let Some(latency) = &outcome.latency {
        println!("{}", latency_line(latency));
    }
    println!(
        "rvmm: guest exited with status {} after {:.3} s; userspace exits {:?}; KVM stats {:?}",
        report.status, report.seconds, report.exits, kvm
    );
}

/// The run as JSON: what every run has, plus the benchmark case and its
/// per-packet figures for traffic runs.
fn json(args: &RunArgs, outcome: &Outcome) -> Value {
    let (report, kvm) = (&outcome.report, &outcome.kvm);
    let mut out = run_json::common(report, kvm, outcome.verified);
    let direction = match args.workload {
        Workload::VirtioRx | Workload::E1000Rx => "rx",
        Workload::VirtioEcho => "rr",
        _ => "tx",
    };
    let e1000_mode = args.e1000_mode.to_string();
    let case = match (args.net, args.workload) {
        (Some(net), Workload::VirtioTx | Workload::VirtioRx | Workload::VirtioEcho) => {
            Some(run_json::Case {
                device: "virtio-net",
                backend: net.name(),
                mode: if args.event_idx {
                    "event-idx"
                } else {
                    "no-event-idx"
                },
                direction,
                size: args.size,
                packets: args.frames,
            })
        }
        (_, Workload::E1000Tx | Workload::E1000Rx) => Some(run_json::Case {
            device: "e1000",
            backend: "user",
            mode: &e1000_mode,
            direction,
            size: args.size,
            packets: args.frames,
        }),
        _ => None,
    };
    if let Some(case) = case {
        case.add_to(&mut out, report, kvm, args.poll);
        if let [start, end] = &report.marks[..] {
            if let Some(window) = Window::between(start, end) {
                out["steady_state"] = window.to_json(run_json::EXIT_REASONS);
            }
        }
        if case.device == "virtio-net" {
            out["indirect"] = args.indirect.into();
            out["mrg_rxbuf"] = args.mrg_rxbuf.into();
            if let Some(spec) = args.coalesce {
                out["coalesce"] = spec.to_string().into();
            }
        }
    }
    if let Some(stats) = &outcome.device_stats {
        out["device_stats"] = stats.clone();
    }
    if let Some(latency) = &outcome.latency {
        out["latency"] = latency.to_json();
    }
    if let Some(pps) = out["pps"].as_f64() {
        // A line for whoever watches a long matrix go by.
        eprintln!(
            "rvmm: {} {} {}: {pps:.0} pps, {:.3} exits/packet, {:.3} interrupts/packet, {:.3} kicks/packet",
            out["device"].as_str().unwrap_or(""),
            out["backend"].as_str().unwrap_or(""),
            out["mode"].as_str().unwrap_or(""),
            out["exits_per_packet"].as_f64().unwrap_or(0.0),
            out["interrupts_per_packet"].as_f64().unwrap_or(0.0),
            out["kicks_per_packet"].as_f64().unwrap_or(0.0),
        );
        let steady = &out["steady_state"];
        if let Some(pps) = steady["pps"].as_f64() {
            let f = |name: &str| steady[name].as_f64().unwrap_or(0.0);
            eprintln!(
                "rvmm: steady state ({} frames): {pps:.0} pps, {:.4} exits/packet, {:.4} interrupts/packet, {:.4} kicks/packet, device CPU {:.0} ns/packet, vCPU {:.0} ns/packet",
                steady["packets"],
                f("exits_per_packet"),
                f("interrupts_per_packet"),
                f("kicks_per_packet"),
                f("device_cpu_ns_per_packet"),
                f("vcpu_cpu_ns_per_packet"),
            );
        }
        if let Some(latency) = &outcome.latency {
            eprintln!("{}", latency_line(latency));
        }
    }
    out
}

/// The far side's round trips in a line (the last of an echo run's).
fn latency_line(l: &Latency) -> String {
    format!(
        "rvmm: {} round trips timed, {} in flight: p50 {:.1} µs, p99 {:.1} µs, mean {:.1} µs, {:.0}/s",
        l.transactions, l.depth, l.p50_us, l.p99_us, l.mean_us, l.per_second
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use std::time::Duration;

    fn args(extra: &[&str]) -> RunArgs {
        let base = ["rvmm", "run", "--guest", "g", "--json"];
        let Command::Run(args) = Cli::parse_from(base.iter().chain(extra)).command;
        args
    }

    /// A run of `seconds` in which the guest made 10 kicks and took 5 interrupts.
    fn outcome(seconds: f64, latency: Option<Latency>) -> Outcome {
        Outcome {
            report: RunReport {
                seconds,
                results: vec![10, 5],
                ..RunReport::default()
            },
            kvm: [("exits", 400), ("irq_injections", 6)].into(),
            verified: None,
            device_stats: None,
            latency,
        }
    }

    #[test]
    fn an_echo_run_is_a_virtio_rr_case_with_its_latency() {
        let args = args(&[
            "--workload",
            "virtio-echo",
            "--net",
            "vhost",
            "--event-idx",
            "--frames",
            "200",
            "--rr-depth",
            "2",
        ]);
        let trips = [Duration::from_micros(900), Duration::from_micros(1100)];
        let latency = Latency::of(&trips, 2, Duration::from_millis(1)).unwrap();
        let j = json(&args, &outcome(2.0, Some(latency.clone())));
        assert_eq!(j["device"], "virtio-net");
        assert_eq!(j["backend"], "vhost");
        assert_eq!(j["mode"], "event-idx");
        assert_eq!(j["direction"], "rr");
        assert_eq!((&j["size"], &j["packets"]), (&64.into(), &200.into()));
        assert_eq!(j["pps"], 100.0);
        assert_eq!(j["exits_per_packet"], 2.0);
        assert_eq!(j["kicks_per_packet"], 0.05);
        assert_eq!(j["latency"], latency.to_json());
        assert_eq!(j["latency"]["depth"], 2);
    }

    #[test]
    fn other_runs_carry_no_latency() {
        for (workload, direction) in [("virtio-tx", "tx"), ("virtio-rx", "rx")] {
            let args = args(&["--workload", workload, "--net", "rvhost"]);
            let j = json(&args, &outcome(1.0, None));
            assert_eq!(j["direction"], direction);
            assert_eq!(j["mode"], "no-event-idx");
            assert!(j.get("latency").is_none());
        }
    }
}
