//! rvmm's virtio-net device: the virtio-mmio transport in rvmm, the data
//! path in a vhost-net device (rvhost or upstream), kicks through an
//! ioeventfd KVM signals on guest writes to `QueueNotify`, interrupts
//! through an irqfd KVM injects when the device signals.

use crate::memory::GuestRam;
use crate::user_net::UserNet;
use crate::vcpu::MmioBus;
use crate::vhost_net::{self, RamMap};
use crate::virtio_mmio::{Event, VirtioMmio, MMIO_SIZE, NUM_QUEUES, QUEUE_NOTIFY};
use anyhow::{Context, Result};
use kvm_ioctls::{IoEventAddress, VmFd};
use nettest::features::{
    VIRTIO_F_VERSION_1, VIRTIO_NET_F_MAC, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_RING_F_EVENT_IDX,
    VIRTIO_RING_F_INDIRECT_DESC,
};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vmm_sys_util::eventfd::EventFd;

/// Where the device's registers are (inside the identity-mapped first GiB,
/// above RAM).
pub const MMIO_BASE: u64 = 0x3000_0000;
/// The interrupt line the device's irqfd raises.
pub const IRQ_GSI: u32 = 5;

/// Who moves the packets.
pub enum DataPath {
    /// A vhost-net device (its path) over this guest RAM.
    /// With rvhost's interrupt coalescing `(packets, usecs, flags)`.
    Vhost(String, GuestRam, Option<nettest::CoalesceSpec>),
    /// rvmm's own I/O thread.
    User(GuestRam),
}

/// The eventfds between KVM and a data path: what the guest's kicks
/// signal (one per queue, KVM's ioeventfds), what raises its interrupt
/// (KVM's irqfd), and what the data path signals on a malformed ring.
pub struct Notifiers {
    pub kicks: Vec<EventFd>,
    pub call: EventFd,
    pub err: EventFd,
}

pub struct NetDevice {
    transport: VirtioMmio,
    data_path: DataPath,
    ram: RamMap,
    notifiers: Notifiers,
    backend: OwnedFd,
    vhost: Option<vhost_net::KernNet>,
    user: Option<UserNet>,
    /// Guest-physical address of the RX used ring once the driver is up
    /// (0 before), for whoever feeds the tap.
    rx_used: Arc<AtomicU64>,
}

impl NetDevice {
    /// Creates the device and wires its kicks and interrupt into KVM.
    pub fn new(vm: &VmFd, data_path: DataPath, ram: RamMap, backend: OwnedFd) -> Result<Self> {
        let mut kicks = Vec::new();
        for queue in 0..NUM_QUEUES {
            let kick = EventFd::new(libc::EFD_NONBLOCK)?;
            // A 32-bit write of the queue index to QueueNotify signals this eventfd
            // inside KVM: no exit to rvmm.
            vm.register_ioevent(
                &kick,
                &IoEventAddress::Mmio(MMIO_BASE + QUEUE_NOTIFY),
                queue as u32,
            )
            .context("KVM_IOEVENTFD")?;
            kicks.push(kick);
        }
        let call = EventFd::new(libc::EFD_NONBLOCK)?;
        vm.register_irqfd(&call, IRQ_GSI).context("KVM_IRQFD")?;
        let err = EventFd::new(libc::EFD_NONBLOCK)?;
        // Every data path handles indirect tables and mergeable RX buffers
        // (rvmm's own loop always fits a frame in one 2048-byte buffer).
        let features = VIRTIO_F_VERSION_1
            | VIRTIO_RING_F_EVENT_IDX
            | VIRTIO_RING_F_INDIRECT_DESC
            | VIRTIO_NET_F_MRG_RXBUF
            | VIRTIO_NET_F_MAC;
        Ok(Self {
            transport: VirtioMmio::new(features, [0x02, 0, 0, 0, 0, 0x02]),
            data_path,
            ram,
            notifiers: Notifiers { kicks, call, err },
            backend,
            vhost: None,
            user: None,
            rx_used: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Where the RX used ring is, once the driver set DRIVER_OK (else 0).
    pub fn rx_used(&self) -> Arc<AtomicU64> {
        self.rx_used.clone()
    }

    fn offset(addr: u64) -> Option<u64> {
        (MMIO_BASE..MMIO_BASE + MMIO_SIZE)
            .contains(&addr)
            .then(|| addr - MMIO_BASE)
    }
}

impl MmioBus for NetDevice {
    /// rvhost's own counters of each queue (kicks, interrupts, drops...),
    /// where the data path is rvhost: they go into the run's JSON.
    fn summary(&mut self) -> Option<serde_json::Value> {
        let dev = self.vhost.as_ref()?;
        let queue = |index| {
            nettest::vring_stats(dev, index).map(|s| {
                serde_json::json!({
                    "kicks": s.kicks, "interrupts": s.calls, "interrupts_suppressed": s.calls_suppressed,
                    "packets": s.packets, "bytes": s.bytes, "rounds": s.rounds,
                    "drops": s.drops, "errors": s.errors,
                })
            })
        };
        Some(serde_json::json!({ "rx": queue(0)?, "tx": queue(1)? }))
    }

    fn fault(&self) -> Option<String> {
        self.notifiers
            .err
            .read()
            .ok()
            .map(|_| "the data path reported a malformed ring (error eventfd)".to_string())
    }

    fn read(&mut self, addr: u64, data: &mut [u8]) -> Result<bool> {
        let Some(offset) = Self::offset(addr) else {
            return Ok(false);
        };
        self.transport.read(offset, data);
        Ok(true)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<bool> {
        let Some(offset) = Self::offset(addr) else {
            return Ok(false);
        };
        match self.transport.write(offset, data) {
            Some(Event::DriverOk) => {
                // Either data path is handed ring addresses: they must be in RAM.
                vhost_net::check_rings(&self.ram, &self.transport)?;
                let rx = self.transport.queues[0];
                if rx.ready {
                    self.rx_used.store(rx.device, Ordering::Release);
                }
                let backend = self.backend.as_raw_fd();
                match &self.data_path {
                    DataPath::Vhost(path, guest, coalesce) => {
                        let dev = vhost_net::start(
                            path,
                            guest,
                            &self.ram,
                            &self.transport,
                            &self.notifiers,
                            backend,
                            *coalesce,
                        )?;
                        self.vhost = Some(dev);
                    }
                    DataPath::User(ram) => {
                        let user = UserNet::start(ram, &self.transport, &self.notifiers, backend)?;
                        self.user = Some(user);
                    }
                }
            }
            Some(Event::Reset) => {
                self.rx_used.store(0, Ordering::Release);
                self.vhost = None;
                self.user = None;
            }
            None => {}
        }
        Ok(true)
    }
}
