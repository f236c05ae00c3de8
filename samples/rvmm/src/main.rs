//! rvmm: a small VMM on KVM (rust-vmm crates) that runs rvmm's tiny
//! bare-metal guest in 64-bit long mode.

mod coalesced_ring;
mod e1000;
mod e1000_device;
mod e1000_order;
mod interrupt_state;
mod kvm_stats;
mod memory;
mod net_device;
mod run_json;
mod user_net;
mod vcpu;
mod vhost_net;
mod virtio_mmio;
mod x86_64;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use kvm_ioctls::Kvm;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;
use vm_memory::{Bytes, GuestAddress};

#[derive(Parser)]
#[command(about = "A small KVM VMM for rvhost's experiments")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the guest program until it writes the exit port.
    Run {
        /// The guest: a static x86-64 ELF executable (samples/rvmm-guest).
        #[arg(long)]
        guest: PathBuf,
        /// Guest RAM in MiB.
        #[arg(long, default_value_t = 64)]
        mem_mib: usize,
        /// End the run (as a failure) after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// What the guest runs.
        #[arg(long, value_enum, default_value = "hello")]
        workload: Workload,
        /// Offer a virtio-net device whose data path is this vhost-net
        /// device, with a tap backend in a network namespace of rvmm's own.
        #[arg(long, value_enum)]
        net: Option<NetBackend>,
        /// virtio-tx: frames the guest sends.
        #[arg(long, default_value_t = 100)]
        frames: u32,
        /// virtio-tx: frame size in bytes.
        #[arg(long, default_value_t = 64)]
        size: u32,
        /// virtio-tx: the guest negotiates VIRTIO_RING_F_EVENT_IDX.
        #[arg(long)]
        event_idx: bool,
        /// virtio-tx: the guest sends each frame through an indirect table
        /// (VIRTIO_RING_F_INDIRECT_DESC).
        #[arg(long)]
        indirect: bool,
        /// virtio-rx: the guest negotiates VIRTIO_NET_F_MRG_RXBUF.
        #[arg(long)]
        mrg_rxbuf: bool,
        /// The guest polls used rings with interrupts off instead of
        /// sleeping until the device interrupts it.
        #[arg(long)]
        poll: bool,
        /// e1000: interrupt mitigation in the device.
        #[arg(long, value_enum, default_value = "off")]
        e1000_mitigation: E1000Mitigation,
        /// e1000: put BAR0's side-effect-free registers in KVM's coalesced
        /// MMIO ring.
        #[arg(long, value_enum, default_value = "off")]
        coalesced_mmio: OnOff,
        /// e1000: the guest driver defers TDT writes while a TX interrupt
        /// is pending (Rizzo's `lem` change).
        #[arg(long)]
        tdt_deferral: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Guest workloads, handed over in the config page.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    /// Print a line and exit 0.
    Hello = 0,
    /// Spin forever (tests the watchdog).
    Spin = 1,
    /// Send frames through the virtio-net device (needs --net).
    VirtioTx = 2,
    /// Like virtio-tx, but put the TX ring outside guest RAM.
    VirtioBadRing = 3,
    /// Like virtio-tx, but point descriptors outside guest RAM.
    VirtioBadBuffer = 4,
    /// Receive frames rvmm sends into the tap; the guest checks each.
    VirtioRx = 5,
    /// Send frames through the e1000.
    E1000Tx = 6,
    /// Receive frames through the e1000; the guest checks each.
    E1000Rx = 7,
    /// Interleave coalesced and exiting e1000 register writes; rvmm checks
    /// that the device applied them in program order.
    E1000Order = 8,
    /// Program the e1000 badly (TDLEN not a multiple of 128, TDT beyond
    /// the ring, a descriptor outside RAM), then send one good frame.
    E1000Bad = 9,
}

impl Workload {
    fn e1000(self) -> bool {
        matches!(
            self,
            Workload::E1000Tx | Workload::E1000Rx | Workload::E1000Order | Workload::E1000Bad
        )
    }
}

/// `--e1000-mitigation`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum E1000Mitigation {
    /// An interrupt whenever a cause is set and unmasked.
    Off,
    /// ITR/TADV/RADV honoured as QEMU does (at most one per interval).
    Itr,
    /// Rizzo's 2012 batching: later interrupts from a deferred handler.
    Batch,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

/// The e1000 mode's name in results (the seeds' table).
fn e1000_mode(mitigation: E1000Mitigation, coalesced: bool, tdt_deferral: bool) -> String {
    let mut name = match (mitigation, coalesced) {
        (E1000Mitigation::Off, false) => "baseline",
        (E1000Mitigation::Off, true) => "coalesced",
        (E1000Mitigation::Itr, _) => "mitigation",
        (E1000Mitigation::Batch, _) => "mitigation-batch",
    }
    .to_string();
    if coalesced && mitigation != E1000Mitigation::Off {
        name += "+coalesced";
    }
    if tdt_deferral {
        name += "+tdt-deferral";
    }
    name
}

/// Which vhost-net device carries the virtio-net data path.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum NetBackend {
    /// `/dev/rvhost-net`.
    Rvhost,
    /// Upstream `/dev/vhost-net`.
    Vhost,
    /// rvmm's own userspace loop (the baseline).
    User,
}

impl NetBackend {
    fn name(self) -> &'static str {
        match self {
            NetBackend::Rvhost => "rvhost",
            NetBackend::Vhost => "vhost",
            NetBackend::User => "user",
        }
    }

    fn data_path(self, ram: &memory::GuestRam) -> net_device::DataPath {
        match self {
            NetBackend::Rvhost => {
                net_device::DataPath::Vhost("/dev/rvhost-net".into(), ram.clone())
            }
            NetBackend::Vhost => net_device::DataPath::Vhost("/dev/vhost-net".into(), ram.clone()),
            NetBackend::User => net_device::DataPath::User(ram.clone()),
        }
    }
}

/// The guest-physical address of the config page the guest reads at start.
const CONFIG_ADDR: u64 = 0x7000;

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(status) => std::process::ExitCode::from(status),
        Err(e) => {
            eprintln!("rvmm: error: {e:#}");
            if e.downcast_ref::<vcpu::VcpuStateLost>().is_some() {
                std::process::ExitCode::from(vcpu::VcpuStateLost::EXIT_CODE)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// Runs the command; returns the exit status (the guest's, for `run`).
fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Run {
            guest,
            mem_mib,
            timeout,
            workload,
            net,
            frames,
            size,
            event_idx,
            indirect,
            mrg_rxbuf,
            poll,
            e1000_mitigation,
            coalesced_mmio,
            tdt_deferral,
            json,
        } => {
            let coalesced = coalesced_mmio == OnOff::On;
            let image =
                std::fs::read(&guest).with_context(|| format!("reading {}", guest.display()))?;
            let kvm = Kvm::new().context("opening /dev/kvm (is KVM available?)")?;
            anyhow::ensure!(
                kvm.get_api_version() == 12,
                "/dev/kvm does not answer as KVM (KVM_GET_API_VERSION)"
            );
            let vm = std::sync::Arc::new(kvm.create_vm().context("KVM_CREATE_VM")?);
            // Intel needs a TSS address below 4 GiB; an in-kernel irqchip is
            // what irqfd will need.
            vm.set_tss_address(0xfffb_d000)
                .context("KVM_SET_TSS_ADDR")?;
            vm.create_irq_chip().context("KVM_CREATE_IRQCHIP")?;
            let ram = memory::ram(mem_mib << 20)?;
            let entry = memory::load_elf(&ram, &image)?;
            x86_64::write_boot_tables(&ram)?;
            let config: [u32; 9] = [
                workload as u32,
                frames,
                size,
                u32::from(event_idx),
                net_device::MMIO_BASE as u32,
                (net_device::MMIO_BASE >> 32) as u32,
                u32::from(!poll),
                u32::from(tdt_deferral),
                u32::from(indirect) | u32::from(mrg_rxbuf) << 1,
            ];
            vm_memory::Bytes::write_obj(&ram, config, vm_memory::GuestAddress(CONFIG_ADDR))?;
            let region = kvm_bindings::kvm_userspace_memory_region {
                slot: 0,
                guest_phys_addr: 0,
                memory_size: (mem_mib << 20) as u64,
                userspace_addr: vm_memory::GuestMemoryBackend::get_host_address(
                    &ram,
                    vm_memory::GuestAddress(0),
                )? as u64,
                flags: 0,
            };
            // SAFETY: the region is `ram`'s mapping, which outlives the VM.
            unsafe { vm.set_user_memory_region(region) }.context("KVM_SET_USER_MEMORY_REGION")?;
            let cpuid = kvm
                .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
                .context("KVM_GET_SUPPORTED_CPUID")?;
            let mut vcpu = vm.create_vcpu(0).context("KVM_CREATE_VCPU")?;
            x86_64::enter_long_mode(&vcpu, &cpuid, entry)?;
            // The network: a tap in a namespace of rvmm's own, and a packet
            // socket on it that sees what the guest sends.
            let mut sniffer = None;
            let mut bus: Box<dyn vcpu::MmioBus> = match net {
                Some(backend) => {
                    let (tap, sniff) = tap_in_own_netns()?;
                    let map = vhost_net::RamMap {
                        host_addr: region.userspace_addr,
                        size: region.memory_size,
                    };
                    let device =
                        net_device::NetDevice::new(&vm, backend.data_path(&ram), map, tap)?;
                    if workload == Workload::VirtioRx {
                        let (ram, rx_used) = (ram.clone(), device.rx_used());
                        // The guest's progress: the RX used index, once the ring is up.
                        let received = move || match rx_used.load(Ordering::Acquire) {
                            0 => None,
                            used => ram.read_obj::<u16>(GuestAddress(used + 2)).ok(),
                        };
                        feed_tap(sniff.try_clone()?, received, frames, size as usize);
                    }
                    sniffer = Some(sniff);
                    Box::new(device)
                }
                None => Box::new(vcpu::NoDevices),
            };
            anyhow::ensure!(
                !(workload.e1000() && net.is_some()),
                "the e1000 workloads bring their own NIC: drop --net"
            );
            let mut e1000 = None;
            if workload.e1000() {
                let (tap, sniff) = tap_in_own_netns()?;
                let ring = if coalesced {
                    coalesced_ring::CoalescedRing::map(&kvm, &vcpu)?
                } else {
                    None
                };
                let options = e1000_device::Options {
                    mitigation: match e1000_mitigation {
                        E1000Mitigation::Off => e1000::Mitigation::Off,
                        E1000Mitigation::Itr => e1000::Mitigation::Itr,
                        E1000Mitigation::Batch => e1000::Mitigation::Batch,
                    },
                    coalesced,
                    trace_writes: workload == Workload::E1000Order,
                };
                let device = e1000_device::E1000Device::new(vm.clone(), &ram, tap, ring, options)?;
                if workload == Workload::E1000Rx {
                    let delivered = device.delivered();
                    let received = move || Some(delivered.load(Ordering::Acquire) as u16);
                    feed_tap(sniff.try_clone()?, received, frames, size as usize);
                }
                sniffer = Some(sniff);
                e1000 = Some(device);
            }
            let stats = kvm_stats::VcpuStats::open(&vcpu)?;
            let before = stats.read()?;
            let bus: &mut dyn vcpu::MmioBus = match e1000.as_mut() {
                Some(device) => device,
                None => bus.as_mut(),
            };
            let report = vcpu::run(&mut vcpu, bus, Duration::from_secs(timeout))?;
            let kvm_counts = kvm_stats::delta(&before, &stats.read()?);
            let device_summary = bus.summary();
            let sent = match workload {
                Workload::VirtioTx | Workload::E1000Tx => Some(frames),
                Workload::E1000Bad => Some(1),
                _ => None,
            };
            let verified = match (&sniffer, sent) {
                (Some(sniff), Some(n)) if report.status == 0 => {
                    Some(verify_frames(sniff, n, size as usize)?)
                }
                _ => None,
            };
            if let (Some(device), Workload::E1000Order) = (&e1000, workload) {
                if report.status == 0 {
                    let applied = device.applied_writes()?;
                    let coalesced_count = applied.iter().filter(|w| w.coalesced).count();
                    let fallbacks = e1000_order::check(&applied)?;
                    println!(
                        "rvmm: e1000: {} register writes ({coalesced_count} through the coalesced ring, {fallbacks} of the ring's by exit when it was full) applied in program order",
                        applied.len()
                    );
                }
            }
            if json {
                let mut out = run_json::common(&report, &kvm_counts, verified);
                if let (Some(net), Workload::VirtioTx | Workload::VirtioRx) = (net, workload) {
                    let case = run_json::Case {
                        device: "virtio-net",
                        backend: net.name(),
                        mode: if event_idx {
                            "event-idx"
                        } else {
                            "no-event-idx"
                        },
                        rx: workload == Workload::VirtioRx,
                        size,
                        packets: frames,
                    };
                    case.add_to(&mut out, &report, &kvm_counts, poll);
                    out["indirect"] = indirect.into();
                    out["mrg_rxbuf"] = mrg_rxbuf.into();
                }
                if let Workload::E1000Tx | Workload::E1000Rx = workload {
                    let mode = e1000_mode(e1000_mitigation, coalesced, tdt_deferral);
                    let case = run_json::Case {
                        device: "e1000",
                        backend: "user",
                        mode: &mode,
                        rx: workload == Workload::E1000Rx,
                        size,
                        packets: frames,
                    };
                    case.add_to(&mut out, &report, &kvm_counts, poll);
                }
                if let Some(summary) = device_summary {
                    out["device_stats"] = summary;
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
                }
                println!("{out}");
            } else {
                print!("{}", report.console);
                if let Some(n) = verified {
                    println!("rvmm: {n} frames arrived on the tap in order, byte for byte");
                }
                println!(
                    "rvmm: guest exited with status {} after {:.3} s; userspace exits {:?}; KVM stats {:?}",
                    report.status, report.seconds, report.exits, kvm_counts
                );
            }
            Ok(report.status)
        }
    }
}

/// Moves rvmm into a network namespace of its own and creates the NIC's tap
/// there, with a packet socket on it that sees what the guest sends.
/// Called before any thread is started (unshare needs a single thread).
fn tap_in_own_netns() -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    // SAFETY: plain unshare(2) of this (still single-threaded) process.
    let ret = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    nettest::check(ret, "unshare(CLONE_NEWNET)")?;
    nettest::backend_and_sniffer(nettest::Backend::Tap, None)
}

/// Sends `frames` test frames into the tap from a thread, once the guest's
/// receive path is up (`received` answers), keeping at most 128 ahead of
/// what the guest has received (`received`, a wrapping count), so that
/// nothing overflows the tap's queue while the guest catches up.
fn feed_tap(
    sniffer: std::os::fd::OwnedFd,
    received: impl Fn() -> Option<u16> + Send + 'static,
    frames: u32,
    size: usize,
) {
    use std::os::fd::AsRawFd;
    std::thread::spawn(move || {
        while received().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        for i in 0..frames {
            while (i as u16).wrapping_sub(received().unwrap_or(0)) >= 128 {
                std::thread::yield_now();
            }
            let f = nettest::frame(i, size);
            // SAFETY: sends our buffer on the packet socket bound to the tap.
            unsafe { libc::send(sniffer.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
        }
    });
}

/// Reads what arrived on the tap: `frames` test frames, in order, intact.
fn verify_frames(sniffer: &std::os::fd::OwnedFd, frames: u32, size: usize) -> Result<u32> {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; 4096];
    for i in 0..frames {
        // SAFETY: receives into our buffer (the socket has a receive timeout).
        let n = unsafe { libc::recv(sniffer.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        anyhow::ensure!(n >= 0, "only {i} of {frames} frames arrived on the tap");
        anyhow::ensure!(
            buf[..n as usize] == nettest::frame(i, size)[..],
            "frame {i} differs from what the guest sent"
        );
    }
    Ok(frames)
}
