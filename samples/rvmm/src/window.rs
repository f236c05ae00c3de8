//! The steady-state window: rvmm samples its counters when the guest says
//! its warm-up is over and again when its last frame has moved (two
//! writes of the mark, `rvmm_abi::MARK_PORT`), so that bring-up (PCI probe,
//! feature negotiation, first-touch faults) and the guest's closing report
//! stay outside the per-packet figures.

use crate::kvm_stats::{self, VcpuStats};
use anyhow::Result;
use nettest::thread_cpu;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// Threads that do the NIC's work, by name: a vhost device's worker
/// (`rvhost-<pid>`, `vhost-<pid>`), the userspace loop's I/O threads, the
/// e1000's I/O thread.
fn is_device_thread(name: &str, workers: &[String; 2]) -> bool {
    workers.iter().any(|w| w == name) || name.starts_with("rvmm-net-io") || name == "e1000-io"
}

/// The counters at one mark.
#[derive(Clone, Debug)]
pub struct Sample {
    at: Instant,
    kvm: BTreeMap<&'static str, u64>,
    /// CPU time of the device's threads, summed.
    device_ns: u64,
    /// CPU time of the vCPU thread (the one that runs the guest and takes
    /// the marks): the guest driver's cost plus KVM's and rvmm's exits.
    vcpu_ns: u64,
    /// What the guest wrote: kicks so far, interrupts taken so far, frames moved.
    guest: [u32; 3],
}

impl Sample {
    /// Samples now; `guest` is what the guest wrote to the mark port.
    /// Called on the vCPU thread.
    pub fn take(stats: &VcpuStats, guest: [u32; 3]) -> Result<Self> {
        let workers = thread_cpu::worker_names();
        let mut device_ns = 0;
        for (tid, name) in thread_cpu::threads()? {
            if is_device_thread(&name, &workers) {
                device_ns += thread_cpu::thread_ns(tid)?;
            }
        }
        Ok(Self {
            at: Instant::now(),
            kvm: stats.read()?,
            device_ns,
            vcpu_ns: thread_cpu::own_ns(),
            guest,
        })
    }
}

/// What the window between two samples cost, per packet.
#[derive(Clone, Debug)]
pub struct Window {
    pub packets: u32,
    pub seconds: f64,
    pub kvm: BTreeMap<&'static str, u64>,
    pub device_ns: u64,
    pub vcpu_ns: u64,
    pub kicks: u32,
    pub guest_interrupts: u32,
}

impl Window {
    /// The window from `start` to `end`, or `None` if no frame moved in it.
    pub fn between(start: &Sample, end: &Sample) -> Option<Self> {
        let delta = |i: usize| end.guest[i].wrapping_sub(start.guest[i]);
        let packets = delta(2);
        (packets > 0).then(|| Self {
            packets,
            seconds: end.at.duration_since(start.at).as_secs_f64(),
            kvm: kvm_stats::delta(&start.kvm, &end.kvm),
            device_ns: end.device_ns.saturating_sub(start.device_ns),
            vcpu_ns: end.vcpu_ns.saturating_sub(start.vcpu_ns),
            kicks: delta(0),
            guest_interrupts: delta(1),
        })
    }

    /// The window's figures as `results.json` carries them (`steady_state`).
    pub fn to_json(&self, exit_reasons: &[(&str, &str)]) -> Value {
        let packets = f64::from(self.packets);
        let stat = |name: &str| self.kvm.get(name).copied().unwrap_or(0);
        let exits: BTreeMap<&str, u64> = exit_reasons
            .iter()
            .map(|(short, name)| (*short, stat(name)))
            .collect();
        json!({
            "packets": self.packets,
            "seconds": self.seconds,
            "pps": packets / self.seconds.max(f64::MIN_POSITIVE),
            "exits": exits,
            "exits_per_packet": stat("exits") as f64 / packets,
            "interrupts_per_packet": stat("irq_injections") as f64 / packets,
            "guest_interrupts_per_packet": f64::from(self.guest_interrupts) / packets,
            "kicks_per_packet": f64::from(self.kicks) / packets,
            "device_cpu_ns_per_packet": self.device_ns as f64 / packets,
            "vcpu_cpu_ns_per_packet": self.vcpu_ns as f64 / packets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Instant, exits: u64, device_ns: u64, guest: [u32; 3]) -> Sample {
        Sample {
            at,
            kvm: [("exits", exits), ("irq_injections", exits / 10)].into(),
            device_ns,
            vcpu_ns: device_ns * 2,
            guest,
        }
    }

    #[test]
    fn a_window_counts_only_what_happened_inside_it() {
        // One base instant: the window is exactly 100 ms, however slow the test runs.
        let t0 = Instant::now();
        let start = sample(t0, 500, 1_000, [40, 3, 100]);
        let end = sample(
            t0 + std::time::Duration::from_millis(100),
            600,
            91_000,
            [49, 4, 1000],
        );
        let w = Window::between(&start, &end).unwrap();
        assert_eq!((w.packets, w.kicks, w.guest_interrupts), (900, 9, 1));
        let j = w.to_json(&[("total", "exits")]);
        assert_eq!(j["exits"]["total"], 100);
        assert_eq!(j["device_cpu_ns_per_packet"], 100.0);
        assert_eq!(j["vcpu_cpu_ns_per_packet"], 200.0);
        assert!((j["exits_per_packet"].as_f64().unwrap() - 100.0 / 900.0).abs() < 1e-12);
        assert!((j["pps"].as_f64().unwrap() - 9000.0).abs() < 1.0);
    }

    #[test]
    fn a_window_without_frames_is_none() {
        let s = sample(Instant::now(), 1, 1, [1, 1, 5]);
        assert!(Window::between(&s, &s).is_none());
    }

    #[test]
    fn device_threads_are_told_from_the_vmm_own() {
        let workers = ["rvhost-7".to_string(), "vhost-7".to_string()];
        for name in ["rvhost-7", "vhost-7", "rvmm-net-io0", "e1000-io"] {
            assert!(is_device_thread(name, &workers), "{name}");
        }
        for name in ["rvmm", "vhost-8", "rvhost-70"] {
            assert!(!is_device_thread(name, &workers), "{name}");
        }
    }
}
