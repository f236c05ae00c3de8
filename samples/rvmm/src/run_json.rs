//! One benchmark run as JSON: the fields `make run`'s report reads
//! (samples/rvhost-report checks the schema).

use crate::vcpu::RunReport;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// KVM's own counters under the short reason names the report uses.
pub const EXIT_REASONS: &[(&str, &str)] = &[
    ("total", "exits"),
    ("io", "io_exits"),
    ("mmio", "mmio_exits"),
    ("hlt", "halt_exits"),
    ("irq", "irq_exits"),
    ("irq_window", "irq_window_exits"),
    ("request_irq", "request_irq_exits"),
    ("signal", "signal_exits"),
];

/// What every run prints: how it ended and the raw counters.
pub fn common(
    report: &RunReport,
    kvm: &BTreeMap<&'static str, u64>,
    verified: Option<u32>,
) -> Value {
    let userspace: Map<String, Value> = report
        .exits
        .iter()
        .map(|(k, v)| (k.to_string(), (*v).into()))
        .collect();
    json!({
        "status": report.status,
        "console": report.console,
        "userspace_exits": userspace,
        "kvm_stats": kvm,
        "frames_verified": verified,
        "seconds": report.seconds,
        "guest_results": report.results,
    })
}

/// The benchmark case a traffic run was.
pub struct Case<'a> {
    pub device: &'static str,
    pub backend: &'static str,
    pub mode: &'a str,
    /// "tx", "rx" or "rr" (request/response).
    pub direction: &'static str,
    pub size: u32,
    pub packets: u32,
}

impl Case<'_> {
    /// Adds the case and its per-packet figures. The guest reports its kicks
    /// (or doorbell writes) and the interrupts it took on the result port.
    pub fn add_to(
        &self,
        out: &mut Value,
        report: &RunReport,
        kvm: &BTreeMap<&'static str, u64>,
        poll: bool,
    ) {
        let packets = f64::from(self.packets.max(1));
        let per_packet = |n: u64| n as f64 / packets;
        let stat = |name: &str| kvm.get(name).copied().unwrap_or(0);
        let mut exits: Map<String, Value> = EXIT_REASONS
            .iter()
            .map(|(short, name)| (short.to_string(), stat(name).into()))
            .collect();
        exits.insert(
            "userspace".into(),
            report.exits.values().sum::<u64>().into(),
        );
        let kicks = report.results.first().copied().unwrap_or(0);
        let guest_interrupts = report.results.get(1).copied().unwrap_or(0);
        out["device"] = self.device.into();
        out["backend"] = self.backend.into();
        out["mode"] = self.mode.into();
        out["direction"] = self.direction.into();
        out["size"] = self.size.into();
        out["packets"] = self.packets.into();
        out["pps"] = (packets / report.seconds).into();
        out["exits"] = exits.into();
        out["exits_per_packet"] = per_packet(stat("exits")).into();
        out["interrupts_per_packet"] = per_packet(stat("irq_injections")).into();
        out["guest_interrupts_per_packet"] = per_packet(u64::from(guest_interrupts)).into();
        out["kicks_per_packet"] = per_packet(u64::from(kicks)).into();
        out["completion"] = if poll { "poll" } else { "interrupt" }.into();
        out["perf"] = json!({});
    }
}
