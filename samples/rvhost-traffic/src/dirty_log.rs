//! Dirty logging for live migration (`VHOST_F_LOG_ALL`): with a log bitmap
//! set and `VHOST_VRING_F_LOG` on both rings, traffic both ways must set
//! exactly the bits of the pages the device wrote: the RX buffers it filled
//! and the two used rings; and signal the log eventfd. A log base the VMM
//! made read-only must cost nothing but the log (as upstream), and bases the
//! log cannot cover are refused with `EFAULT`, as upstream refuses them.

use crate::guest::{GuestMemory, Layout, MEM_SIZE};
use crate::rig::{open_device, own_netns, setup_queue, QueueFds, Setup, RX, TX};
use crate::rx::{inject, RxRing};
use crate::tx::{Arrivals, TxDriver};
use crate::{frame, Backend, NET_HDR_LEN};
use anyhow::{ensure, Result};
use nettest::features::VHOST_F_LOG_ALL;
use nettest::features::VIRTIO_NET_F_MRG_RXBUF;
use nettest::{backend_and_sniffer, check, set_file};
use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::Duration;
use vhost::vhost_kern::vhost_binding::{
    vhost_vring_addr, VHOST_NET_SET_BACKEND, VHOST_SET_FEATURES, VHOST_SET_LOG_BASE,
    VHOST_SET_LOG_FD, VHOST_SET_VRING_ADDR,
};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::ioctl::ioctl_with_ref;

/// `VHOST_VRING_F_LOG`: log used-ring writes at the ring's log address.
const VRING_F_LOG: u32 = 1;
const PAGE: u64 = 4096;
/// Bytes of bitmap that cover guest memory (one bit per page).
const LOG_BYTES: usize = MEM_SIZE / PAGE as usize / 8;
/// RX buffers: a 1514-byte frame spans two.
const RX_BUF: u32 = 1024;

/// A page of our own for the bitmap.
struct LogBitmap {
    mem: GuestMemory,
}

impl LogBitmap {
    fn uaddr(&self) -> u64 {
        self.mem.uaddr(0)
    }

    fn clear(&self) {
        self.mem.write(0, &[0u8; LOG_BYTES]);
    }

    /// The pages whose bits are set.
    fn pages(&self) -> BTreeSet<u64> {
        let bytes = self.mem.read(0, LOG_BYTES);
        (0..LOG_BYTES as u64 * 8)
            .filter(|page| bytes[(page / 8) as usize] & (1 << (page % 8)) != 0)
            .collect()
    }
}

/// `VHOST_SET_LOG_BASE`; `Err(errno)` if refused.
fn set_log_base(dev: &File, base: u64) -> std::result::Result<(), i32> {
    // SAFETY: the request reads one u64.
    let ret = unsafe { ioctl_with_ref(dev, VHOST_SET_LOG_BASE(), &base) };
    if ret < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(-1))
    } else {
        Ok(())
    }
}

/// `VHOST_SET_VRING_ADDR` for `layout` with used-ring logging at its
/// guest-physical address (the backend is detached around it).
fn log_used_ring(dev: &File, mem: &GuestMemory, queue: u32, layout: Layout) -> Result<()> {
    let addr = vhost_vring_addr {
        index: queue,
        flags: VRING_F_LOG,
        desc_user_addr: mem.uaddr(layout.desc),
        used_user_addr: mem.uaddr(layout.used),
        avail_user_addr: mem.uaddr(layout.avail),
        log_guest_addr: layout.used,
    };
    // SAFETY: reads one vhost_vring_addr.
    let ret = unsafe { ioctl_with_ref(dev, VHOST_SET_VRING_ADDR(), &addr) };
    check(ret, "SET_VRING_ADDR with VHOST_VRING_F_LOG")
}

/// The pages of `[gpa, gpa + len)`.
fn pages_of(gpa: u64, len: u64) -> impl Iterator<Item = u64> {
    let last = (gpa + len.max(1) - 1) / PAGE;
    (gpa / PAGE..=last).filter(move |_| len > 0)
}

pub fn run(device: &str) -> Result<()> {
    let setup = Setup::new(true, VIRTIO_NET_F_MRG_RXBUF | VHOST_F_LOG_ALL, Backend::Tap);
    own_netns()?;
    let (tap, sniffer) = backend_and_sniffer(Backend::Tap, None)?;
    let mem = GuestMemory::new()?;
    let log = LogBitmap {
        mem: GuestMemory::new()?,
    };
    let dev = open_device(device, setup.features(), &mem)?;
    let log_fd = EventFd::new(libc::EFD_NONBLOCK)?;
    set_log_base(&dev, log.uaddr()).map_err(|e| anyhow::anyhow!("SET_LOG_BASE: errno {e}"))?;
    // SAFETY: the request reads one int.
    let ret = unsafe { ioctl_with_ref(&dev, VHOST_SET_LOG_FD(), &log_fd.as_raw_fd()) };
    check(ret, "SET_LOG_FD")?;
    let (rx_fds, tx_fds) = (QueueFds::new()?, QueueFds::new()?);
    let (rx_layout, tx_layout) = (Layout::nth(0), Layout::nth(1));
    for (queue, layout, fds) in [(RX, rx_layout, &rx_fds), (TX, tx_layout, &tx_fds)] {
        setup_queue(&dev, &mem, queue, layout, fds, &tap)?;
        set_file(&dev, VHOST_NET_SET_BACKEND(), queue, -1)?;
        log_used_ring(&dev, &mem, queue, layout)?;
        set_file(&dev, VHOST_NET_SET_BACKEND(), queue, tap.as_raw_fd())?;
    }
    // Let the rounds that attaching started settle, then start from a clean log.
    std::thread::sleep(Duration::from_millis(200));
    log.clear();
    let _ = log_fd.read();

    // RX: frames of 100 and 1514 bytes into 1 KiB mergeable buffers.
    let mut ring = RxRing::new(&mem, rx_layout, &rx_fds.kick, true, RX_BUF);
    ring.queue.no_interrupts();
    ring.post_all()?;
    let mut expected = BTreeSet::new();
    for i in 0..16u32 {
        let size = if i % 2 == 0 { 100 } else { 1514 };
        inject(&sniffer, &frame(i, size))?;
        let (bufs, bytes) = ring.next_packet(true)?;
        ensure!(
            bytes[NET_HDR_LEN..] == frame(i, size)[..],
            "RX frame {i} differs"
        );
        for (id, len) in bufs {
            expected.extend(pages_of(rx_layout.buf(id), u64::from(len)));
        }
    }
    // TX: the device writes only the used ring.
    let mut tx = TxDriver::new(&mem, tx_layout, &tx_fds.kick, true, false);
    for i in 0..16u32 {
        tx.send(&[0u8; NET_HDR_LEN], &frame(i, 200))?;
    }
    Arrivals::new(&sniffer).wait_for(16, |n| frame(n, 200))?;
    tx.wait_room(Duration::from_secs(5), String::new)?;
    while tx.queue.in_flight() > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    // The used rings: flags, index, elements, avail_event.
    let used_ring = 4 + 8 * u64::from(crate::QUEUE_SIZE) + 2;
    expected.extend(pages_of(rx_layout.used, used_ring));
    expected.extend(pages_of(tx_layout.used, used_ring));
    let got = log.pages();
    let signals = log_fd.read().unwrap_or(0);
    println!(
        "{device}: dirty log after 16 RX + 16 TX frames: {} pages set {:x?}; log eventfd signalled {signals} times",
        got.len(),
        got
    );
    ensure!(
        got == expected,
        "dirty log {got:x?}, expected the RX buffers and used rings {expected:x?}"
    );
    ensure!(signals > 0, "the log eventfd was not signalled");

    // A read-only log: traffic goes on, only the log is lost.
    log.clear();
    log.mem.protect(0, PAGE, libc::PROT_READ)?;
    for i in 16..24u32 {
        inject(&sniffer, &frame(i, 300))?;
        let (bufs, _) = ring.next_packet(true)?;
        ring.repost(&bufs)?;
    }
    log.mem
        .protect(0, PAGE, libc::PROT_READ | libc::PROT_WRITE)?;
    ensure!(log.pages().is_empty(), "bits set in a read-only log");

    // Bases the bitmap cannot cover (in kernel space; ending past user
    // space) are refused while queues are attached, and the old base stays.
    for base in [0xffff_8000_0000_0000u64, 0x7fff_ffff_f000 - 16] {
        let refused = set_log_base(&dev, base);
        ensure!(
            refused == Err(libc::EFAULT),
            "SET_LOG_BASE {base:#x}: {refused:?}, expected EFAULT"
        );
    }
    inject(&sniffer, &frame(99, 100))?;
    ring.next_packet(true)?;
    ensure!(!log.pages().is_empty(), "the old log base was not kept");
    // Features with LOG_ALL again: fine with the log covering memory.
    let features = setup.features();
    // SAFETY: reads one u64.
    let ret = unsafe { ioctl_with_ref(&dev, VHOST_SET_FEATURES(), &features) };
    check(ret, "SET_FEATURES with LOG_ALL")?;
    println!("{device}: dirty log: a read-only log costs only the log; uncoverable bases refused");
    Ok(())
}
