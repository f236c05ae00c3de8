//! The call sequences compared between the two devices.

use crate::calls::{Addr, Ioctl, Region};
use crate::context::{Fd, MEM_SIZE};
use nettest::features::{VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX};

/// An unknown request in the vhost range (`_IO(0xAF, 0x7f)`).
const UNKNOWN_VHOST_IO: u64 = 0xaf7f;
/// A request from another subsystem's range (`TCGETS`).
const FOREIGN_TCGETS: u64 = 0x5401;
/// An address in the kernel half: never a valid user address.
const KERNEL_ADDR: u64 = 0xffff_8880_0000_0000;

/// A named call sequence; with `in_child`, `calls` run in a forked child
/// (another address space) after the parent made the `setup` calls.
pub struct Probe {
    pub name: &'static str,
    pub setup: &'static [Ioctl],
    pub calls: &'static [Ioctl],
    pub in_child: bool,
}

const MEM: &[Region] = &[Region {
    gpa: 0,
    size: MEM_SIZE as u64,
    user: Addr::Gpa(0),
}];
const MEM_KERNEL: &[Region] = &[Region {
    gpa: 0,
    size: MEM_SIZE as u64,
    user: Addr::Raw(KERNEL_ADDR),
}];
const MEM_EMPTY_REGION: &[Region] = &[Region {
    gpa: 0x1000,
    size: 0,
    user: Addr::Gpa(0),
}];
const MEM_WRAPPING: &[Region] = &[Region {
    gpa: u64::MAX - 0xfff,
    size: 0x2000,
    user: Addr::Gpa(0),
}];

/// Features of a device behind a vIOMMU.
const ACCESS_PLATFORM_FEATURES: u64 =
    VIRTIO_F_VERSION_1 | VIRTIO_RING_F_EVENT_IDX | VIRTIO_F_ACCESS_PLATFORM;

/// A request neither device defines (see `Ioctl::Unknown`).
const fn unknown(request: u64, index: Option<u32>) -> Ioctl {
    Ioctl::Unknown { request, index }
}

/// `VHOST_NET_SET_BACKEND` of queue `index`.
const fn backend(index: u32, fd: Fd) -> Ioctl {
    Ioctl::NetSetBackend { index, fd }
}

/// A well-formed memory table of `regions`.
const fn mem_table(regions: &'static [Region]) -> Ioctl {
    Ioctl::SetMemTable {
        regions,
        padding: 0,
        nregions: None,
    }
}

/// Queue 1's descriptor table at a kernel address.
const KERNEL_DESC_RING: Ioctl = Ioctl::SetVringAddr {
    index: 1,
    flags: 0,
    desc: Addr::Raw(KERNEL_ADDR),
    avail: Addr::Gpa(0x1000),
    used: Addr::Gpa(0x2000),
    log: 0,
};

/// Rings of 256 entries for queue `index`, inside the probe's memory.
const fn rings(index: u32) -> Ioctl {
    let base = 0x10000 + index as u64 * 0x4000;
    Ioctl::SetVringAddr {
        index,
        flags: 0,
        desc: Addr::Gpa(base),
        avail: Addr::Gpa(base + 0x1000),
        used: Addr::Gpa(base + 0x2000),
        log: 0,
    }
}

const fn ring_setup(index: u32) -> [Ioctl; 5] {
    [
        Ioctl::SetVringNum { index, num: 256 },
        Ioctl::SetVringBase { index, num: 0 },
        rings(index),
        Ioctl::SetVringKick {
            index,
            fd: Fd::Eventfd,
        },
        Ioctl::SetVringCall {
            index,
            fd: Fd::Eventfd,
        },
    ]
}

/// The bring-up order a VMM uses, up to (not including) the backends.
const FULL_SETUP: [Ioctl; 13] = {
    let rx = ring_setup(0);
    let tx = ring_setup(1);
    [
        Ioctl::SetOwner,
        Ioctl::SetFeatures(VIRTIO_F_VERSION_1 | VIRTIO_RING_F_EVENT_IDX),
        mem_table(MEM),
        rx[0],
        rx[1],
        rx[2],
        rx[3],
        rx[4],
        tx[0],
        tx[1],
        tx[2],
        tx[3],
        tx[4],
    ]
};

pub const PROBES: &[Probe] = &[
    Probe {
        name: "before SET_OWNER only features pass",
        setup: &[],
        calls: &[
            Ioctl::GetFeaturesNull,
            Ioctl::SetFeaturesNull,
            Ioctl::SetFeatures(0),
            Ioctl::GetBackendFeatures,
            mem_table(MEM),
            Ioctl::SetVringNum { index: 0, num: 256 },
            Ioctl::GetVringBase { index: 0 },
            Ioctl::SetVringKick {
                index: 0,
                fd: Fd::Unbind,
            },
            backend(0, Fd::Unbind),
            Ioctl::ResetOwner,
            unknown(UNKNOWN_VHOST_IO, None),
            unknown(UNKNOWN_VHOST_IO, Some(0)),
            unknown(FOREIGN_TCGETS, Some(0)),
        ],
        in_child: false,
    },
    Probe {
        name: "second SET_OWNER",
        setup: &[],
        calls: &[Ioctl::SetOwner, Ioctl::SetOwner],
        in_child: false,
    },
    Probe {
        name: "feature bits",
        setup: &[],
        calls: &[
            Ioctl::SetFeatures(1 << 63),
            Ioctl::SetFeatures(1 << 50),
            Ioctl::SetFeatures(VIRTIO_F_VERSION_1 | VIRTIO_RING_F_EVENT_IDX),
            Ioctl::SetBackendFeatures(1 << 5),
            Ioctl::SetBackendFeatures(1 << 1),
            Ioctl::SetBackendFeatures(0),
        ],
        in_child: false,
    },
    Probe {
        name: "unknown ioctls after SET_OWNER",
        setup: &[],
        calls: &[
            Ioctl::SetOwner,
            unknown(UNKNOWN_VHOST_IO, None),
            unknown(UNKNOWN_VHOST_IO, Some(0)),
            unknown(UNKNOWN_VHOST_IO, Some(1)),
            unknown(UNKNOWN_VHOST_IO, Some(2)),
            unknown(FOREIGN_TCGETS, None),
            unknown(FOREIGN_TCGETS, Some(0)),
        ],
        in_child: false,
    },
    Probe {
        name: "RESET_OWNER then SET_OWNER again",
        setup: &[],
        calls: &[
            Ioctl::SetOwner,
            Ioctl::ResetOwner,
            Ioctl::ResetOwner,
            Ioctl::SetOwner,
        ],
        in_child: false,
    },
    Probe {
        name: "backend before rings are set",
        setup: &[],
        calls: &[
            Ioctl::SetOwner,
            backend(0, Fd::Unbind),
            backend(1, Fd::Tap),
            backend(2, Fd::Unbind),
        ],
        in_child: false,
    },
    Probe {
        name: "another process (not the owner)",
        setup: &[Ioctl::SetOwner],
        calls: &[
            Ioctl::SetOwner,
            Ioctl::ResetOwner,
            mem_table(MEM),
            backend(0, Fd::Unbind),
            Ioctl::SetFeatures(0),
        ],
        in_child: true,
    },
    Probe {
        name: "memory table validation",
        setup: &[Ioctl::SetOwner],
        calls: &[
            Ioctl::SetMemTableNull,
            Ioctl::SetMemTable {
                regions: MEM,
                padding: 1,
                nregions: None,
            },
            Ioctl::SetMemTable {
                regions: &[],
                padding: 0,
                nregions: Some(65),
            },
            mem_table(MEM_EMPTY_REGION),
            mem_table(MEM_WRAPPING),
            mem_table(MEM_KERNEL),
            Ioctl::SetMemTable {
                regions: &[],
                padding: 0,
                nregions: None,
            },
            mem_table(MEM),
        ],
        in_child: false,
    },
    Probe {
        name: "ring size, base and busy-loop timeout",
        setup: &[Ioctl::SetOwner],
        calls: &[
            Ioctl::SetVringNum { index: 0, num: 0 },
            Ioctl::SetVringNum { index: 0, num: 3 },
            Ioctl::SetVringNum {
                index: 0,
                num: 0x1_0000,
            },
            Ioctl::SetVringNum {
                index: 0,
                num: 0x8000,
            },
            Ioctl::SetVringNum { index: 2, num: 256 },
            Ioctl::SetVringBase {
                index: 1,
                num: 0x1_0000,
            },
            Ioctl::SetVringBase { index: 1, num: 7 },
            Ioctl::GetVringBase { index: 1 },
            Ioctl::GetVringBase { index: 0 },
            Ioctl::SetBusyloop { index: 0, num: 50 },
            Ioctl::GetBusyloop { index: 0 },
            Ioctl::GetBusyloop { index: 2 },
        ],
        in_child: false,
    },
    Probe {
        name: "ring addresses",
        setup: &[Ioctl::SetOwner],
        calls: &[
            Ioctl::SetVringAddr {
                index: 0,
                flags: 2,
                desc: Addr::Gpa(0),
                avail: Addr::Gpa(0x1000),
                used: Addr::Gpa(0x2000),
                log: 0,
            },
            Ioctl::SetVringAddr {
                index: 0,
                flags: 0,
                desc: Addr::Gpa(0),
                avail: Addr::Gpa(0x1001),
                used: Addr::Gpa(0x2000),
                log: 0,
            },
            Ioctl::SetVringAddr {
                index: 0,
                flags: 0,
                desc: Addr::Gpa(0),
                avail: Addr::Gpa(0x1000),
                used: Addr::Gpa(0x2002),
                log: 0,
            },
            Ioctl::SetVringAddr {
                index: 0,
                flags: 0,
                desc: Addr::Gpa(0),
                avail: Addr::Gpa(0x1000),
                used: Addr::Gpa(0x2000),
                log: 2,
            },
            Ioctl::SetVringAddr {
                index: 0,
                flags: 1,
                desc: Addr::Gpa(0),
                avail: Addr::Gpa(0x1000),
                used: Addr::Gpa(0x2000),
                log: 0x2000,
            },
            KERNEL_DESC_RING,
            rings(1),
            Ioctl::SetVringAddr {
                index: 2,
                flags: 0,
                desc: Addr::Gpa(0),
                avail: Addr::Gpa(0x1000),
                used: Addr::Gpa(0x2000),
                log: 0,
            },
        ],
        in_child: false,
    },
    Probe {
        name: "kick, call, error and log eventfds",
        setup: &[Ioctl::SetOwner],
        calls: &[
            Ioctl::SetVringKick {
                index: 0,
                fd: Fd::Unbind,
            },
            Ioctl::SetVringKick {
                index: 0,
                fd: Fd::Closed,
            },
            Ioctl::SetVringKick {
                index: 0,
                fd: Fd::DevNull,
            },
            Ioctl::SetVringKick {
                index: 0,
                fd: Fd::Eventfd,
            },
            Ioctl::SetVringKick {
                index: 2,
                fd: Fd::Eventfd,
            },
            Ioctl::SetVringCall {
                index: 1,
                fd: Fd::Closed,
            },
            Ioctl::SetVringCall {
                index: 1,
                fd: Fd::DevNull,
            },
            Ioctl::SetVringCall {
                index: 1,
                fd: Fd::Eventfd,
            },
            Ioctl::SetVringErr {
                index: 1,
                fd: Fd::Eventfd,
            },
            Ioctl::SetVringErr {
                index: 1,
                fd: Fd::Unbind,
            },
            Ioctl::SetLogFd(Fd::Eventfd),
            Ioctl::SetLogFd(Fd::DevNull),
            Ioctl::SetLogFd(Fd::Unbind),
            Ioctl::SetLogBase(Addr::Raw(0)),
        ],
        in_child: false,
    },
    Probe {
        name: "backend kinds, memory table set, rings not",
        setup: &[Ioctl::SetOwner, mem_table(MEM)],
        calls: &[
            backend(0, Fd::DevNull),
            backend(0, Fd::Udp),
            backend(0, Fd::DgramPacket),
            backend(0, Fd::Closed),
            backend(0, Fd::Eventfd),
        ],
        in_child: false,
    },
    Probe {
        name: "backend attached: rings are busy",
        setup: &FULL_SETUP,
        calls: &[
            backend(1, Fd::DevNull),
            backend(1, Fd::Tap),
            Ioctl::SetVringNum { index: 1, num: 256 },
            Ioctl::SetVringBase { index: 1, num: 0 },
            KERNEL_DESC_RING,
            rings(1),
            mem_table(MEM_KERNEL),
            mem_table(MEM),
            Ioctl::GetVringBase { index: 1 },
            backend(1, Fd::Tap),
            backend(0, Fd::RawPacket),
            backend(0, Fd::Unbind),
            backend(1, Fd::Unbind),
            Ioctl::SetVringNum { index: 1, num: 256 },
        ],
        in_child: false,
    },
    Probe {
        name: "RESET_OWNER with a backend attached",
        setup: &FULL_SETUP,
        calls: &[
            backend(1, Fd::Tap),
            Ioctl::ResetOwner,
            Ioctl::GetVringBase { index: 1 },
            Ioctl::SetOwner,
            Ioctl::GetVringBase { index: 1 },
            backend(1, Fd::Tap),
        ],
        in_child: false,
    },
    Probe {
        // With an IOTLB the ring addresses are I/O virtual addresses:
        // attaching reads and writes the used ring through the (empty)
        // IOTLB, a miss: EFAULT. Switching between guest-physical and I/O
        // virtual addresses (acking ACCESS_PLATFORM, or dropping it) forgets
        // the ring addresses, so the rings must be set again (6.12's
        // vhost_init_device_iotlb / vhost_clear_device_iotlb).
        name: "VIRTIO_F_ACCESS_PLATFORM: rings through an empty IOTLB",
        setup: &FULL_SETUP,
        calls: &[
            Ioctl::SetFeatures(ACCESS_PLATFORM_FEATURES),
            backend(1, Fd::Tap),
            Ioctl::SetFeatures(VIRTIO_F_VERSION_1 | VIRTIO_RING_F_EVENT_IDX),
            backend(1, Fd::Tap),
            rings(1),
            backend(1, Fd::Tap),
            Ioctl::SetFeatures(ACCESS_PLATFORM_FEATURES),
            Ioctl::SetFeatures(ACCESS_PLATFORM_FEATURES),
            Ioctl::GetVringBase { index: 1 },
            backend(1, Fd::Unbind),
            backend(1, Fd::Tap),
            Ioctl::ResetOwner,
            Ioctl::SetOwner,
            Ioctl::GetFeatures,
        ],
        in_child: false,
    },
];
