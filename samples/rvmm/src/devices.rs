//! The NIC a run offers and its wiring: a virtio-net device over one of
//! three data paths, or the e1000, each on a tap in rvmm's own network
//! namespace; for RX runs, a thread feeding test frames into the tap, for
//! echo runs the far side that sends requests and times the answers.

use crate::cli::{NetBackend, RunArgs, Workload};
use crate::coalesced_ring::CoalescedRing;
use crate::e1000_device::{self, E1000Device, PCI_SLOT};
use crate::echo_requester::{self, Requester};
use crate::net_device::{DataPath, NetDevice};
use crate::pci::PciBus;
use crate::traffic::{feed_tap, tap_in_own_netns};
use crate::vcpu::{MmioBus, NoDevices, RunAbort};
use crate::vm::Vm;
use anyhow::Result;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use vm_memory::{Bytes, GuestAddress};

/// Offset of the used ring's index (after its flags).
const USED_IDX_OFFSET: u64 = 2;

/// The NIC on the VM's bus.
pub enum Nic {
    None(NoDevices),
    Virtio(Box<NetDevice>),
    /// The e1000, the one device on PCI bus 0.
    E1000(PciBus<E1000Device>),
}

/// The NIC, the packet socket that sees its tap and, for an echo run, the
/// far side on it.
pub struct Devices {
    pub nic: Nic,
    pub sniffer: Option<OwnedFd>,
    pub requester: Option<Requester>,
}

impl Devices {
    /// Creates what `args` asks for on `vm` (before any thread starts: the
    /// tap's namespace is rvmm's own); an echo run's far side fails the run
    /// through `abort`.
    pub fn attach(args: &RunArgs, vm: &Vm, abort: &RunAbort) -> Result<Self> {
        if args.net.is_none() && !args.workload.e1000() {
            return Ok(Self {
                nic: Nic::None(NoDevices),
                sniffer: None,
                requester: None,
            });
        }
        if args.coalesce.is_some() && args.net != Some(NetBackend::Rvhost) {
            anyhow::bail!("--coalesce is rvhost's own ioctl: it needs --net rvhost");
        }
        let (tap, sniffer) = tap_in_own_netns()?;
        let (nic, received) = match args.net {
            Some(backend) => virtio_nic(args, vm, backend, tap)?,
            None => e1000_nic(args, vm, tap)?,
        };
        let mut requester = None;
        match received {
            Some(received) if args.workload == Workload::VirtioEcho => {
                let options = echo_requester::Options {
                    frames: args.frames,
                    warmup: args.warmup,
                    size: args.size as usize,
                    depth: args.rr_depth,
                    answer_timeout: echo_requester::ANSWER_TIMEOUT,
                };
                let up = move || received().is_some();
                let far_side = Requester::start(sniffer.try_clone()?, up, options, abort.clone())?;
                requester = Some(far_side);
            }
            Some(received) => feed_tap(
                sniffer.try_clone()?,
                received,
                args.frames,
                args.size as usize,
            ),
            None => {}
        }
        Ok(Self {
            nic,
            sniffer: Some(sniffer),
            requester,
        })
    }

    /// The bus the vCPU's exits go to.
    pub fn bus(&mut self) -> &mut dyn MmioBus {
        match &mut self.nic {
            Nic::None(none) => none,
            Nic::Virtio(device) => device.as_mut(),
            Nic::E1000(device) => device,
        }
    }
}

/// How far the guest has received (a wrapping count; `None` until its RX
/// queue is up), for an RX run's feeder and an echo run's far side.
type Received = Box<dyn Fn() -> Option<u16> + Send>;

/// The virtio-net device over `backend`'s data path, and for an RX or echo
/// run the guest's progress: the RX used index, once the ring is up.
fn virtio_nic(
    args: &RunArgs,
    vm: &Vm,
    backend: NetBackend,
    tap: OwnedFd,
) -> Result<(Nic, Option<Received>)> {
    let device = NetDevice::new(
        &vm.fd,
        data_path(backend, vm, args.coalesce),
        vm.ram_map,
        tap,
    )?;
    let receives = matches!(args.workload, Workload::VirtioRx | Workload::VirtioEcho);
    let received = receives.then(|| {
        let (ram, rx_used) = (vm.ram.clone(), device.rx_used());
        Box::new(move || match rx_used.load(Ordering::Acquire) {
            0 => None,
            used => ram
                .read_obj::<u16>(GuestAddress(used + USED_IDX_OFFSET))
                .ok(),
        }) as Received
    });
    Ok((Nic::Virtio(Box::new(device)), received))
}

/// The e1000 in `args.e1000_mode`, and for an RX run the frames it delivered.
fn e1000_nic(args: &RunArgs, vm: &Vm, tap: OwnedFd) -> Result<(Nic, Option<Received>)> {
    let mode = args.e1000_mode;
    let ring = if mode.coalesced {
        CoalescedRing::map(&vm.kvm, &vm.vcpu)?
    } else {
        None
    };
    let options = e1000_device::Options {
        mitigation: mode.mitigation,
        coalesced: mode.coalesced,
        trace_writes: args.workload == Workload::E1000Order,
    };
    let device = E1000Device::new(vm.fd.clone(), &vm.ram, tap, ring, options)?;
    let received = (args.workload == Workload::E1000Rx).then(|| {
        let delivered = device.delivered();
        Box::new(move || Some(delivered.load(Ordering::Acquire) as u16)) as Received
    });
    Ok((Nic::E1000(PciBus::new(PCI_SLOT, device)), received))
}

/// The virtio-net data path `backend` names, over the VM's RAM.
fn data_path(backend: NetBackend, vm: &Vm, coalesce: Option<nettest::CoalesceSpec>) -> DataPath {
    match backend {
        NetBackend::Rvhost => DataPath::Vhost("/dev/rvhost-net".into(), vm.ram.clone(), coalesce),
        NetBackend::Vhost => DataPath::Vhost("/dev/vhost-net".into(), vm.ram.clone(), None),
        NetBackend::User => DataPath::User(vm.ram.clone()),
    }
}
