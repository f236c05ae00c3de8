//! Handing a virtio-net device's rings to a vhost-net device (rvhost or
//! upstream) at DRIVER_OK: the standard vhost ioctl sequence, through the
//! `vhost` crate.

use crate::memory::GuestRam;
use crate::net_device::Notifiers;
use crate::virtio_mmio::{VirtioMmio, QUEUE_NUM_MAX};
use anyhow::{Context, Result};
use nettest::features::VHOST_NET_F_VIRTIO_NET_HDR;
use nettest::set_file;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use vhost::vhost_kern::vhost_binding::VHOST_NET_SET_BACKEND;
use vhost::vhost_kern::VhostKernBackend;
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};

/// virtio-net's receive queue.
const RX_QUEUE: usize = 0;

/// Guest RAM as the vhost device sees it: guest-physical 0 at `host_addr`.
#[derive(Clone, Copy, Debug)]
pub struct RamMap {
    pub host_addr: u64,
    pub size: u64,
}

/// Bytes of a split ring's descriptor table, avail ring and used ring
/// (with the event fields) for `num` entries.
fn ring_sizes(num: u32) -> [u64; 3] {
    let n = u64::from(num);
    [16 * n, 6 + 2 * n, 6 + 8 * n]
}

/// Checks that the driver's rings lie inside guest RAM: the vhost device is
/// given host addresses computed from them, which must stay in RAM's mapping.
pub fn check_rings(ram: &RamMap, transport: &VirtioMmio) -> Result<()> {
    for (index, queue) in transport.queues.iter().enumerate().filter(|(_, q)| q.ready) {
        let parts = [queue.desc, queue.driver, queue.device];
        for (gpa, size) in parts.iter().zip(ring_sizes(queue.num)) {
            let end = gpa.checked_add(size);
            anyhow::ensure!(
                queue.num.is_power_of_two() && end.is_some_and(|e| e <= ram.size),
                "the guest put queue {index}'s ring at {gpa:#x} (+{size} bytes), outside guest RAM"
            );
        }
    }
    Ok(())
}

/// A vhost-net device opened from any path, driven through the `vhost`
/// crate's kernel backend (`vhost::vhost_kern::net::Net` would always open
/// `/dev/vhost-net`): implementing `VhostKernBackend` on our own fd gives
/// the crate's `VhostBackend` ioctls for `/dev/rvhost-net` too.
pub struct KernNet {
    fd: File,
    mem: Arc<GuestRam>,
}

impl AsRawFd for KernNet {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl VhostKernBackend for KernNet {
    type AS = Arc<GuestRam>;

    fn mem(&self) -> &Self::AS {
        &self.mem
    }
}

/// Opens `path` and starts its data path on the queues the driver made ready.
#[allow(clippy::too_many_arguments)]
pub fn start(
    path: &str,
    guest: &GuestRam,
    ram: &RamMap,
    transport: &VirtioMmio,
    notifiers: &Notifiers,
    backend: RawFd,
    coalesce: Option<nettest::CoalesceSpec>,
) -> Result<KernNet> {
    check_rings(ram, transport)?;
    let fd = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {path}"))?;
    let dev = KernNet {
        fd,
        mem: Arc::new(guest.clone()),
    };
    dev.set_owner().context("VHOST_SET_OWNER")?;
    dev.set_features(transport.driver_features | VHOST_NET_F_VIRTIO_NET_HDR)
        .context("VHOST_SET_FEATURES")?;
    let region = VhostUserMemoryRegionInfo {
        guest_phys_addr: 0,
        memory_size: ram.size,
        userspace_addr: ram.host_addr,
        mmap_offset: 0,
        mmap_handle: -1,
    };
    dev.set_mem_table(&[region])
        .context("VHOST_SET_MEM_TABLE")?;
    for (index, queue) in transport.queues.iter().enumerate().filter(|(_, q)| q.ready) {
        let size = u16::try_from(queue.num).context("queue size")?;
        dev.set_vring_num(index, size)
            .context("VHOST_SET_VRING_NUM")?;
        dev.set_vring_base(index, 0)
            .context("VHOST_SET_VRING_BASE")?;
        // Guest-physical ring addresses: the crate translates them through
        // guest memory (and checks they fit) before the ioctl.
        let config = VringConfigData {
            queue_max_size: QUEUE_NUM_MAX as u16,
            queue_size: size,
            flags: 0,
            desc_table_addr: queue.desc,
            used_ring_addr: queue.device,
            avail_ring_addr: queue.driver,
            log_addr: None,
        };
        dev.set_vring_addr(index, &config)
            .context("VHOST_SET_VRING_ADDR")?;
        dev.set_vring_kick(index, &notifiers.kicks[index])
            .context("VHOST_SET_VRING_KICK")?;
        dev.set_vring_call(index, &notifiers.call)
            .context("VHOST_SET_VRING_CALL")?;
        dev.set_vring_err(index, &notifiers.err)
            .context("VHOST_SET_VRING_ERR")?;
        // The RX queue only: the guest asks for its TX interrupt when its
        // ring is full (at 3/4 with EVENT_IDX), and holding that one back
        // stalls its sending until the device has drained the whole ring.
        if let (Some(spec), RX_QUEUE) = (coalesce, index) {
            nettest::set_vring_coalesce(&dev.fd, spec.for_queue(index as u32))
                .context("RVHOST_SET_VRING_COALESCE")?;
        }
        // VhostNet::set_backend exists only on the crate's own `Net`.
        set_file(&dev.fd, VHOST_NET_SET_BACKEND(), index as u32, backend)?;
    }
    Ok(dev)
}
