//! One benchmark run, typed (after the schema has accepted it), and the
//! order in which runs' devices, backends, modes and directions are shown.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The fields of a run that the report uses; the run's other fields stay in
/// results.json as given but are not read here.
#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    pub device: String,
    pub backend: String,
    pub mode: String,
    pub direction: String,
    pub size: u64,
    pub packets: u64,
    pub pps: f64,
    pub exits: BTreeMap<String, f64>,
    pub exits_per_packet: f64,
    pub interrupts_per_packet: f64,
    pub kicks_per_packet: f64,
    pub perf: BTreeMap<String, f64>,
    pub repetition: u64,
    /// Counters over the window after the guest's warm-up (`rvmm run
    /// --warmup`); runs made without one have none.
    #[serde(default)]
    pub steady_state: Option<SteadyState>,
    /// rvhost's interrupt coalescing (`rvmm run --coalesce`), if set.
    #[serde(default)]
    pub coalesce: Option<String>,
    /// The round trips of a request/response run (direction "rr"; rvmm's
    /// virtio-echo), timed by rvmm's far side.
    #[serde(default)]
    pub latency: Option<Latency>,
}

/// What rvmm's far side measured over the timed round trips: far side →
/// tap → the device's RX → guest → the device's TX → tap → far side.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Latency {
    pub transactions: u64,
    /// Requests in flight at once.
    pub depth: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
    /// Round trips a second over the timed ones.
    pub per_second: f64,
}

/// The backend row of rvhost runs with interrupt coalescing.
pub const COALESCED_RVHOST: &str = "rvhost+coalesce";

/// Backends in the order tables show them.
const SHOWN_BACKENDS: [&str; 4] = ["rvhost", COALESCED_RVHOST, "vhost", "user"];

/// The same counters as a run's, taken between the end of the guest's
/// warm-up and its last frame, so bring-up is outside them; plus the CPU
/// time of the device's threads and of the vCPU thread per packet.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SteadyState {
    pub packets: u64,
    pub seconds: f64,
    pub pps: f64,
    pub exits: BTreeMap<String, f64>,
    pub exits_per_packet: f64,
    pub interrupts_per_packet: f64,
    pub guest_interrupts_per_packet: f64,
    pub kicks_per_packet: f64,
    /// The NIC's own threads: the vhost worker, rvmm's userspace I/O
    /// threads or the e1000's I/O thread.
    pub device_cpu_ns_per_packet: f64,
    /// The vCPU thread: the guest's driver plus exit handling.
    pub vcpu_cpu_ns_per_packet: f64,
}

impl Run {
    /// The run with rvhost's coalesced runs as a backend of their own, so
    /// that they get a row of their own beside plain rvhost's.
    pub fn coalesced_as_backend(mut self) -> Self {
        if self.coalesce.is_some() && self.backend == "rvhost" {
            self.backend = COALESCED_RVHOST.into();
        }
        self
    }

    /// A short name for messages and tables, e.g.
    /// `virtio-net/rvhost/event-idx tx 64B #1`.
    pub fn label(&self) -> String {
        format!(
            "{}/{}/{} {} {}B #{}",
            self.device, self.backend, self.mode, self.direction, self.size, self.repetition
        )
    }

    /// KVM's own exit count for the run.
    pub fn kvm_exits(&self) -> f64 {
        self.exits.get("total").copied().unwrap_or(0.0)
    }
}

/// A sort key: position in `list` (values not in it after, by name).
pub type OrderKey = (usize, String);

fn key(list: &[&str], s: &str) -> OrderKey {
    let pos = list.iter().position(|x| *x == s).unwrap_or(list.len());
    (pos, s.to_string())
}

/// tx, rx, then request/response.
pub fn direction_key(direction: &str) -> OrderKey {
    key(&crate::schema::DIRECTIONS, direction)
}

/// rvhost, rvhost with coalescing, vhost, user.
pub fn backend_key(backend: &str) -> OrderKey {
    key(&SHOWN_BACKENDS, backend)
}

/// virtio-net modes, then the e1000 matrix's modes, then other variants.
pub fn mode_key(mode: &str) -> OrderKey {
    let known: Vec<&str> = crate::schema::VIRTIO_MODES
        .iter()
        .chain(crate::schema::E1000_MODES.iter())
        .copied()
        .collect();
    key(&known, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_known_values_first() {
        let mut modes = vec![
            "mitigation-batch",
            "mitigation+coalesced",
            "baseline",
            "coalesced",
        ];
        modes.sort_by_key(|m| mode_key(m));
        assert_eq!(
            modes,
            vec![
                "baseline",
                "coalesced",
                "mitigation+coalesced",
                "mitigation-batch"
            ]
        );
        let mut backends = vec!["user", "vhost", "rvhost"];
        backends.sort_by_key(|b| backend_key(b));
        assert_eq!(backends, vec!["rvhost", "vhost", "user"]);
        assert!(direction_key("tx") < direction_key("rx"));
    }
}
