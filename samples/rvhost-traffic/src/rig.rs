//! A vhost-net device set up the way a VMM sets one up: owner, features,
//! memory table, then per queue its ring, eventfds and backend (a tap, or a
//! packet socket on a veth, in a network namespace of the test's own), with
//! a packet socket on the far side that sees what the device sends and
//! sends what the device receives.

use crate::guest::{GuestMemory, Layout, MEM_SIZE, QUEUE_SIZE};
use anyhow::{Context as _, Result};
use nettest::features::{
    VHOST_NET_F_VIRTIO_NET_HDR, VIRTIO_F_VERSION_1, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_RING_F_EVENT_IDX,
};
use nettest::{
    backend_and_sniffer, check, set_file, set_state, Backend, VHOST_SET_VRING_BUSYLOOP_TIMEOUT,
};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use vhost::vhost_kern::vhost_binding::{
    vhost_vring_addr, VHOST_NET_SET_BACKEND, VHOST_SET_FEATURES, VHOST_SET_MEM_TABLE,
    VHOST_SET_OWNER, VHOST_SET_VRING_ADDR, VHOST_SET_VRING_BASE, VHOST_SET_VRING_CALL,
    VHOST_SET_VRING_ERR, VHOST_SET_VRING_KICK, VHOST_SET_VRING_NUM,
};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::ioctl::{ioctl, ioctl_with_ptr, ioctl_with_ref};

/// The receive queue.
pub const RX: u32 = 0;
/// The transmit queue.
pub const TX: u32 = 1;

/// How the device is set up.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    pub event_idx: bool,
    /// More feature bits (mergeable buffers, indirect descriptors).
    pub extra: u64,
    pub backend: Backend,
    /// `Some(n)`: the tap carries an n-byte virtio-net header itself
    /// (`IFF_VNET_HDR`, `TUNSETVNETHDRSZ`), as QEMU sets taps up, and the
    /// device leaves the header to it (`VHOST_NET_F_VIRTIO_NET_HDR` not
    /// acked); 10 is a legacy device, 12 a VERSION_1 one. `None`: the device
    /// strips and adds a VERSION_1 header itself.
    pub vnet_hdr: Option<i32>,
}

impl Setup {
    pub fn new(event_idx: bool, extra: u64, backend: Backend) -> Self {
        Self {
            event_idx,
            extra,
            backend,
            vnet_hdr: None,
        }
    }

    /// The feature bits to ack.
    pub fn features(&self) -> u64 {
        let base = match self.vnet_hdr {
            None => VIRTIO_F_VERSION_1 | VHOST_NET_F_VIRTIO_NET_HDR,
            Some(10) => 0,
            Some(_) => VIRTIO_F_VERSION_1,
        };
        let event_idx = if self.event_idx {
            VIRTIO_RING_F_EVENT_IDX
        } else {
            0
        };
        base | event_idx | self.extra
    }

    /// Length of the virtio-net header in guest buffers: 10 bytes only for
    /// a legacy device without mergeable buffers.
    pub fn net_hdr_len(&self) -> usize {
        match self.vnet_hdr {
            Some(10) if !self.mergeable() => 10,
            _ => 12,
        }
    }

    pub fn mergeable(&self) -> bool {
        self.extra & VIRTIO_NET_F_MRG_RXBUF != 0
    }
}

/// The eventfds of one queue.
pub struct QueueFds {
    pub kick: EventFd,
    pub call: EventFd,
    pub err: EventFd,
}

impl QueueFds {
    pub fn new() -> Result<Self> {
        Ok(Self {
            kick: EventFd::new(libc::EFD_NONBLOCK)?,
            call: EventFd::new(libc::EFD_NONBLOCK)?,
            err: EventFd::new(libc::EFD_NONBLOCK)?,
        })
    }
}

/// Opens `device`, takes ownership, acks `features` and maps `mem` as guest
/// memory (one region from guest-physical 0).
pub fn open_device(device: &str, features: u64, mem: &GuestMemory) -> Result<File> {
    let dev = open_owned(device)?;
    set_features(&dev, features)?;
    set_mem_table(&dev, mem, 0)?;
    Ok(dev)
}

/// Opens `device` for reading and writing (the IOTLB messages go through
/// `read` and `write`) and takes ownership.
pub fn open_owned(device: &str) -> Result<File> {
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .with_context(|| device.to_string())?;
    // SAFETY: no argument.
    check(unsafe { ioctl(&dev, VHOST_SET_OWNER()) }, "SET_OWNER")?;
    Ok(dev)
}

/// `VHOST_SET_FEATURES`.
pub fn set_features(dev: &File, features: u64) -> Result<()> {
    // SAFETY: reads one u64.
    let ret = unsafe { ioctl_with_ref(dev, VHOST_SET_FEATURES(), &features) };
    check(ret, "SET_FEATURES")
}

/// `VHOST_SET_MEM_TABLE`: `mem` as one region at guest-physical `gpa`.
pub fn set_mem_table(dev: &File, mem: &GuestMemory, gpa: u64) -> Result<()> {
    let table: [u64; 5] = [1, gpa, MEM_SIZE as u64, mem.uaddr(0), 0];
    // SAFETY: a vhost_memory header and one region.
    let ret = unsafe { ioctl_with_ptr(dev, VHOST_SET_MEM_TABLE(), table.as_ptr()) };
    check(ret, "SET_MEM_TABLE")
}

/// Sets queue `queue` up on `layout` and attaches `backend`.
pub fn setup_queue(
    dev: &File,
    mem: &GuestMemory,
    queue: u32,
    layout: Layout,
    fds: &QueueFds,
    backend: &OwnedFd,
) -> Result<()> {
    prepare_queue(dev, queue, RingAddrs::user(mem, layout), fds)?;
    set_file(dev, VHOST_NET_SET_BACKEND(), queue, backend.as_raw_fd())
}

/// Everything of queue `queue` but its backend: size, base, ring addresses
/// and eventfds.
pub fn prepare_queue(dev: &File, queue: u32, ring: RingAddrs, fds: &QueueFds) -> Result<()> {
    set_state(dev, VHOST_SET_VRING_NUM(), queue, QUEUE_SIZE.into())?;
    set_state(dev, VHOST_SET_VRING_BASE(), queue, 0)?;
    set_ring_addrs(dev, queue, ring)?;
    set_file(dev, VHOST_SET_VRING_KICK(), queue, fds.kick.as_raw_fd())?;
    set_file(dev, VHOST_SET_VRING_CALL(), queue, fds.call.as_raw_fd())?;
    set_file(dev, VHOST_SET_VRING_ERR(), queue, fds.err.as_raw_fd())
}

/// `VHOST_SET_VRING_BUSYLOOP_TIMEOUT`: the device busy-polls `queue` for up
/// to `microseconds` when it runs empty.
pub fn set_busyloop_timeout(dev: &File, queue: u32, microseconds: u32) -> Result<()> {
    set_state(dev, VHOST_SET_VRING_BUSYLOOP_TIMEOUT(), queue, microseconds)
}

/// The three ring addresses of a queue as the device is to see them.
#[derive(Clone, Copy, Debug)]
pub struct RingAddrs {
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
}

impl RingAddrs {
    /// Addresses in our address space (no IOTLB: the device reads there).
    pub fn user(mem: &GuestMemory, layout: Layout) -> Self {
        Self {
            desc: mem.uaddr(layout.desc),
            avail: mem.uaddr(layout.avail),
            used: mem.uaddr(layout.used),
        }
    }

    /// I/O virtual addresses: with `VIRTIO_F_ACCESS_PLATFORM` the device
    /// translates the ring addresses through its IOTLB; the test's IOMMU
    /// maps IOVA `x` to guest memory offset `x`.
    pub fn iova(layout: Layout) -> Self {
        Self {
            desc: layout.desc,
            avail: layout.avail,
            used: layout.used,
        }
    }
}

/// `VHOST_SET_VRING_ADDR` for `layout`.
pub fn set_ring_addr(dev: &File, mem: &GuestMemory, queue: u32, layout: Layout) -> Result<()> {
    set_ring_addrs(dev, queue, RingAddrs::user(mem, layout))
}

/// `VHOST_SET_VRING_ADDR` with `ring`'s addresses.
pub fn set_ring_addrs(dev: &File, queue: u32, ring: RingAddrs) -> Result<()> {
    let addr = vhost_vring_addr {
        index: queue,
        flags: 0,
        desc_user_addr: ring.desc,
        used_user_addr: ring.used,
        avail_user_addr: ring.avail,
        log_guest_addr: 0,
    };
    // SAFETY: reads one vhost_vring_addr.
    let ret = unsafe { ioctl_with_ref(dev, VHOST_SET_VRING_ADDR(), &addr) };
    check(ret, "SET_VRING_ADDR")
}

/// Moves the calling process into a network namespace of its own: the
/// test's taps and veths are invisible to everything else.
pub fn own_netns() -> Result<()> {
    // SAFETY: plain unshare(2).
    let ret = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    check(ret, "unshare(CLONE_NEWNET)")
}

/// A device with one queue set up on guest memory of ours (layout 0) and
/// attached to a backend that a packet socket watches.
pub struct TxRig {
    pub queue: u32,
    pub setup: Setup,
    pub dev: File,
    pub mem: GuestMemory,
    pub kick: EventFd,
    pub call: EventFd,
    pub err: EventFd,
    /// The backend: a tap, or a packet socket on a veth.
    pub tap: OwnedFd,
    pub sniffer: OwnedFd,
}

impl TxRig {
    pub fn new(device: &str, event_idx: bool) -> Result<Self> {
        Self::for_queue(device, TX, event_idx, 0, Backend::Tap)
    }

    /// Sets up queue `queue` (0 = RX, 1 = TX) with `extra` feature bits.
    pub fn for_queue(
        device: &str,
        queue: u32,
        event_idx: bool,
        extra: u64,
        backend: Backend,
    ) -> Result<Self> {
        Self::with(device, queue, Setup::new(event_idx, extra, backend))
    }

    /// Sets up queue `queue` as `setup` says.
    pub fn with(device: &str, queue: u32, setup: Setup) -> Result<Self> {
        own_netns()?;
        let (tap, sniffer) = backend_and_sniffer(setup.backend, setup.vnet_hdr)?;
        let mem = GuestMemory::new()?;
        let dev = open_device(device, setup.features(), &mem)?;
        let fds = QueueFds::new()?;
        setup_queue(&dev, &mem, queue, Layout::nth(0), &fds, &tap)?;
        let QueueFds { kick, call, err } = fds;
        Ok(Self {
            queue,
            setup,
            dev,
            mem,
            kick,
            call,
            err,
            tap,
            sniffer,
        })
    }

    /// Detaches the backend, moves the queue's base to `base`, re-attaches:
    /// how a VMM recovers a queue the device stopped on.
    pub fn rebase(&self, base: u16) -> Result<()> {
        set_file(&self.dev, VHOST_NET_SET_BACKEND(), self.queue, -1)?;
        set_state(&self.dev, VHOST_SET_VRING_BASE(), self.queue, base.into())?;
        set_file(
            &self.dev,
            VHOST_NET_SET_BACKEND(),
            self.queue,
            self.tap.as_raw_fd(),
        )
    }
}

/// A device with both queues attached to one backend: RX on layout 0, TX
/// on layout 1.
pub struct Duplex {
    pub dev: File,
    pub mem: GuestMemory,
    pub rx_layout: Layout,
    pub tx_layout: Layout,
    pub rx_fds: QueueFds,
    pub tx_fds: QueueFds,
    /// The backend: a tap, or a packet socket on a veth.
    pub tap: OwnedFd,
    pub sniffer: OwnedFd,
}

impl Duplex {
    /// Sets both queues up as `setup` says.
    pub fn new(device: &str, setup: Setup) -> Result<Self> {
        own_netns()?;
        let (tap, sniffer) = backend_and_sniffer(setup.backend, setup.vnet_hdr)?;
        let mem = GuestMemory::new()?;
        let dev = open_device(device, setup.features(), &mem)?;
        let (rx_fds, tx_fds) = (QueueFds::new()?, QueueFds::new()?);
        let (rx_layout, tx_layout) = (Layout::nth(0), Layout::nth(1));
        setup_queue(&dev, &mem, RX, rx_layout, &rx_fds, &tap)?;
        setup_queue(&dev, &mem, TX, tx_layout, &tx_fds, &tap)?;
        Ok(Self {
            dev,
            mem,
            rx_layout,
            tx_layout,
            rx_fds,
            tx_fds,
            tap,
            sniffer,
        })
    }

    /// Sets queue `queue` (RX or TX) up afresh on `layout`, its eventfds and
    /// the backend as before.
    pub fn setup_queue(&self, queue: u32, layout: Layout) -> Result<()> {
        let fds = if queue == RX {
            &self.rx_fds
        } else {
            &self.tx_fds
        };
        setup_queue(&self.dev, &self.mem, queue, layout, fds, &self.tap)
    }
}
