//! rvmm: a small VMM on KVM (rust-vmm crates) that runs rvmm's tiny
//! bare-metal guest in 64-bit long mode, with a virtio-net NIC over
//! rvhost, upstream vhost-net or its own userspace loop, or an e1000.
//!
//! `cli` says what to run, `vm` builds the VM, `devices` wires the NIC
//! (the e1000 behind `pci`'s configuration mechanism),
//! `vcpu` runs the guest, `traffic` checks what reached the tap (and
//! `echo_requester` times request/response round trips on it) and
//! `report` prints the outcome.

mod cli;
mod coalesced_ring;
mod devices;
mod e1000;
mod e1000_device;
mod e1000_order;
mod echo_requester;
mod interrupt_state;
mod kvm_stats;
mod latency;
mod memory;
mod net_device;
mod pci;
mod report;
mod run_json;
mod traffic;
mod user_net;
mod vcpu;
mod vhost_net;
mod virtio_mmio;
mod vm;
mod window;
mod x86_64;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Command, RunArgs, Workload};
use devices::{Devices, Nic};
use rvmm_abi::GuestConfig;
use std::process::ExitCode;
use std::time::Duration;
use vm::Vm;

fn main() -> ExitCode {
    let Command::Run(args) = Cli::parse().command;
    if let Err(e) = args.check() {
        e.exit();
    }
    match run(&args) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("rvmm: error: {e:#}");
            if e.downcast_ref::<vcpu::VcpuStateLost>().is_some() {
                ExitCode::from(vcpu::VcpuStateLost::EXIT_CODE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Runs the guest as `args` say; returns its exit status.
fn run(args: &RunArgs) -> Result<u8> {
    let mut vm = Vm::new(&args.guest, args.mem_mib, guest_config(args))?;
    let abort = vcpu::RunAbort::default();
    let mut devices = Devices::attach(args, &vm, &abort)?;
    let stats = kvm_stats::VcpuStats::open(&vm.vcpu)?;
    let before = stats.read()?;
    let report = vcpu::run(
        &mut vm.vcpu,
        devices.bus(),
        Duration::from_secs(args.timeout),
        &stats,
        &abort,
    )?;
    let kvm = kvm_stats::delta(&before, &stats.read()?);
    let device_stats = devices.bus().summary();
    let verified = match (&devices.sniffer, args.workload.frames_sent(args.frames)) {
        (Some(sniffer), Some(sent)) if report.status == 0 => {
            Some(traffic::verify_frames(sniffer, sent, args.size as usize)?)
        }
        _ => None,
    };
    if let (Nic::E1000(bus), Workload::E1000Order) = (&devices.nic, args.workload) {
        if report.status == 0 {
            check_e1000_order(bus.device())?;
        }
    }
    let latency = match devices.requester.take() {
        Some(far_side) => far_side.finish(report.status == 0)?,
        None => None,
    };
    let outcome = report::Outcome {
        report,
        kvm,
        verified,
        device_stats,
        latency,
    };
    report::print(args, &outcome);
    Ok(outcome.report.status)
}

/// The config page for the guest: the workload and its parameters.
fn guest_config(args: &RunArgs) -> GuestConfig {
    GuestConfig {
        workload: args.workload as u32,
        frames: args.frames,
        frame_size: args.size,
        event_idx: args.event_idx.into(),
        interrupts: (!args.poll).into(),
        tdt_deferral: args.e1000_mode.tdt_deferral.into(),
        indirect: args.indirect.into(),
        mrg_rxbuf: args.mrg_rxbuf.into(),
        warmup: args.warmup,
        ..GuestConfig::default()
    }
    .with_net_mmio_base(net_device::MMIO_BASE)
}

/// The ordering workload: the card applied the guest's register writes,
/// coalesced or not, in program order.
fn check_e1000_order(device: &e1000_device::E1000Device) -> Result<()> {
    let applied = device.applied_writes()?;
    let coalesced = applied.iter().filter(|w| w.coalesced).count();
    let fallbacks = e1000_order::check(&applied)?;
    println!(
        "rvmm: e1000: {} register writes ({coalesced} through the coalesced ring, {fallbacks} of the ring's by exit when it was full) applied in program order",
        applied.len()
    );
    Ok(())
}
