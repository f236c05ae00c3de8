//! Handing a virtio-net device's rings to a vhost-net device (rvhost or
//! upstream) at DRIVER_OK: the standard vhost ioctl sequence.

use crate::virtio_mmio::VirtioMmio;
use anyhow::{Context, Result};
use nettest::{check, set_file, set_state};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use vhost::vhost_kern::vhost_binding::{
    vhost_vring_addr, VHOST_NET_SET_BACKEND, VHOST_SET_FEATURES, VHOST_SET_MEM_TABLE,
    VHOST_SET_OWNER, VHOST_SET_VRING_ADDR, VHOST_SET_VRING_BASE, VHOST_SET_VRING_CALL,
    VHOST_SET_VRING_ERR, VHOST_SET_VRING_KICK, VHOST_SET_VRING_NUM,
};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::ioctl::{ioctl, ioctl_with_ptr, ioctl_with_ref};

/// `VHOST_NET_F_VIRTIO_NET_HDR`: the vhost device handles the virtio-net
/// header (the tap has none).
const VHOST_NET_F_VIRTIO_NET_HDR: u64 = 1 << 27;

/// Guest RAM as the vhost device sees it: guest-physical 0 at `host_addr`.
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

/// Opens `path` and starts its data path on the queues the driver made ready.
pub fn start(
    path: &str,
    ram: &RamMap,
    transport: &VirtioMmio,
    kicks: &[EventFd],
    call: &EventFd,
    err: &EventFd,
    backend: RawFd,
) -> Result<File> {
    check_rings(ram, transport)?;
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {path}"))?;
    // SAFETY: no argument.
    let ret = unsafe { ioctl(&dev, VHOST_SET_OWNER()) };
    check(ret, "VHOST_SET_OWNER")?;
    let features = transport.driver_features | VHOST_NET_F_VIRTIO_NET_HDR;
    // SAFETY: reads one u64.
    let ret = unsafe { ioctl_with_ref(&dev, VHOST_SET_FEATURES(), &features) };
    check(ret, "VHOST_SET_FEATURES")?;
    // struct vhost_memory with one region.
    let table: [u64; 5] = [1, 0, ram.size, ram.host_addr, 0];
    // SAFETY: a vhost_memory header and one region.
    let ret = unsafe { ioctl_with_ptr(&dev, VHOST_SET_MEM_TABLE(), table.as_ptr()) };
    check(ret, "VHOST_SET_MEM_TABLE")?;
    for (index, queue) in transport.queues.iter().enumerate().filter(|(_, q)| q.ready) {
        let index = index as u32;
        set_state(&dev, VHOST_SET_VRING_NUM(), index, queue.num)?;
        set_state(&dev, VHOST_SET_VRING_BASE(), index, 0)?;
        let addr = vhost_vring_addr {
            index,
            flags: 0,
            desc_user_addr: ram.host_addr + queue.desc,
            used_user_addr: ram.host_addr + queue.device,
            avail_user_addr: ram.host_addr + queue.driver,
            log_guest_addr: 0,
        };
        // SAFETY: reads one vhost_vring_addr.
        let ret = unsafe { ioctl_with_ref(&dev, VHOST_SET_VRING_ADDR(), &addr) };
        check(ret, "VHOST_SET_VRING_ADDR")?;
        set_file(
            &dev,
            VHOST_SET_VRING_KICK(),
            index,
            kicks[index as usize].as_raw_fd(),
        )?;
        set_file(&dev, VHOST_SET_VRING_CALL(), index, call.as_raw_fd())?;
        set_file(&dev, VHOST_SET_VRING_ERR(), index, err.as_raw_fd())?;
        set_file(&dev, VHOST_NET_SET_BACKEND(), index, backend)?;
    }
    Ok(dev)
}
