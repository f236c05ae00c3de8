// SPDX-License-Identifier: GPL-2.0

//! Decoding of the vhost / vhost-net ioctl numbers (`include/uapi/linux/vhost.h`).
//!
//! The numbers are computed with the generic `_IOC` encoding from the request
//! number and argument size. The kernel module checks at build time that every
//! one equals the value the real uapi header gives (see `rust/abi.rs`), so this
//! table cannot drift from the ABI.

/// The vhost ioctl magic (`VHOST_VIRTIO`).
pub const VHOST_VIRTIO: u32 = 0xAF;

const IOC_NONE: u32 = 0;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

const fn ioc(dir: u32, nr: u32, size: u32) -> u32 {
    (dir << 30) | (size << 16) | (VHOST_VIRTIO << 8) | nr
}

/// Size of `__u64`.
const SZ_U64: u32 = 8;
/// Size of `struct vhost_vring_state` (two `unsigned int`).
const SZ_VRING_STATE: u32 = 8;
/// Size of `struct vhost_vring_file` (`unsigned int index; int fd`).
const SZ_VRING_FILE: u32 = 8;
/// Size of `struct vhost_vring_addr` (two `unsigned int`, four `__u64`).
const SZ_VRING_ADDR: u32 = 40;
/// Size of `struct vhost_memory` header (`nregions`, `padding`, flexible array).
const SZ_MEMORY: u32 = 8;
/// Size of `int`.
const SZ_INT: u32 = 4;

/// One vhost-net ioctl request, as decoded from its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VhostIoctl {
    /// `VHOST_GET_FEATURES`.
    GetFeatures,
    /// `VHOST_SET_FEATURES`.
    SetFeatures,
    /// `VHOST_SET_OWNER`.
    SetOwner,
    /// `VHOST_RESET_OWNER`.
    ResetOwner,
    /// `VHOST_SET_MEM_TABLE`.
    SetMemTable,
    /// `VHOST_SET_LOG_BASE`.
    SetLogBase,
    /// `VHOST_SET_LOG_FD`.
    SetLogFd,
    /// `VHOST_SET_VRING_NUM`.
    SetVringNum,
    /// `VHOST_SET_VRING_ADDR`.
    SetVringAddr,
    /// `VHOST_SET_VRING_BASE`.
    SetVringBase,
    /// `VHOST_GET_VRING_BASE`.
    GetVringBase,
    /// `VHOST_SET_VRING_KICK`.
    SetVringKick,
    /// `VHOST_SET_VRING_CALL`.
    SetVringCall,
    /// `VHOST_SET_VRING_ERR`.
    SetVringErr,
    /// `VHOST_SET_VRING_BUSYLOOP_TIMEOUT`.
    SetVringBusyloopTimeout,
    /// `VHOST_GET_VRING_BUSYLOOP_TIMEOUT`.
    GetVringBusyloopTimeout,
    /// `VHOST_SET_BACKEND_FEATURES`.
    SetBackendFeatures,
    /// `VHOST_GET_BACKEND_FEATURES`.
    GetBackendFeatures,
    /// `VHOST_NET_SET_BACKEND`.
    NetSetBackend,
}

/// Where in the dispatch order a request is handled; upstream's order of checks
/// (and so its errnos) follows from this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Handled by the net device before any owner check (features, owner changes,
    /// backend attach, which checks ownership itself).
    Net,
    /// Device-wide request: the caller must own the device.
    Device,
    /// Per-ring request: owner check, then the ring index is read from the argument.
    Vring,
}

impl VhostIoctl {
    /// Every request, in `vhost.h` order.
    pub const ALL: [VhostIoctl; 19] = [
        Self::GetFeatures,
        Self::SetFeatures,
        Self::SetOwner,
        Self::ResetOwner,
        Self::SetMemTable,
        Self::SetLogBase,
        Self::SetLogFd,
        Self::SetVringNum,
        Self::SetVringAddr,
        Self::SetVringBase,
        Self::GetVringBase,
        Self::SetVringKick,
        Self::SetVringCall,
        Self::SetVringErr,
        Self::SetVringBusyloopTimeout,
        Self::GetVringBusyloopTimeout,
        Self::SetBackendFeatures,
        Self::GetBackendFeatures,
        Self::NetSetBackend,
    ];

    /// The ioctl number of this request.
    pub const fn number(self) -> u32 {
        match self {
            Self::GetFeatures => ioc(IOC_READ, 0x00, SZ_U64),
            Self::SetFeatures => ioc(IOC_WRITE, 0x00, SZ_U64),
            Self::SetOwner => ioc(IOC_NONE, 0x01, 0),
            Self::ResetOwner => ioc(IOC_NONE, 0x02, 0),
            Self::SetMemTable => ioc(IOC_WRITE, 0x03, SZ_MEMORY),
            Self::SetLogBase => ioc(IOC_WRITE, 0x04, SZ_U64),
            Self::SetLogFd => ioc(IOC_WRITE, 0x07, SZ_INT),
            Self::SetVringNum => ioc(IOC_WRITE, 0x10, SZ_VRING_STATE),
            Self::SetVringAddr => ioc(IOC_WRITE, 0x11, SZ_VRING_ADDR),
            Self::SetVringBase => ioc(IOC_WRITE, 0x12, SZ_VRING_STATE),
            Self::GetVringBase => ioc(IOC_READ | IOC_WRITE, 0x12, SZ_VRING_STATE),
            Self::SetVringKick => ioc(IOC_WRITE, 0x20, SZ_VRING_FILE),
            Self::SetVringCall => ioc(IOC_WRITE, 0x21, SZ_VRING_FILE),
            Self::SetVringErr => ioc(IOC_WRITE, 0x22, SZ_VRING_FILE),
            Self::SetVringBusyloopTimeout => ioc(IOC_WRITE, 0x23, SZ_VRING_STATE),
            Self::GetVringBusyloopTimeout => ioc(IOC_WRITE, 0x24, SZ_VRING_STATE),
            Self::SetBackendFeatures => ioc(IOC_WRITE, 0x25, SZ_U64),
            Self::GetBackendFeatures => ioc(IOC_READ, 0x26, SZ_U64),
            Self::NetSetBackend => ioc(IOC_WRITE, 0x30, SZ_VRING_FILE),
        }
    }

    /// Decodes an ioctl number; `None` for anything that is not a vhost-net request.
    pub fn decode(cmd: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|req| req.number() == cmd)
    }

    /// The dispatch stage of this request.
    pub const fn stage(self) -> Stage {
        match self {
            Self::GetFeatures
            | Self::SetFeatures
            | Self::SetOwner
            | Self::ResetOwner
            | Self::SetBackendFeatures
            | Self::GetBackendFeatures
            | Self::NetSetBackend => Stage::Net,
            Self::SetMemTable | Self::SetLogBase | Self::SetLogFd => Stage::Device,
            Self::SetVringNum
            | Self::SetVringAddr
            | Self::SetVringBase
            | Self::GetVringBase
            | Self::SetVringKick
            | Self::SetVringCall
            | Self::SetVringErr
            | Self::SetVringBusyloopTimeout
            | Self::GetVringBusyloopTimeout => Stage::Vring,
        }
    }
}

/// The stage an ioctl number is dispatched in; unknown numbers take the per-ring
/// path last, as upstream's `vhost_vring_ioctl` does (so a NULL argument gives
/// `EFAULT` and an unknown number with a valid index gives `ENOTTY`).
pub fn stage_of(cmd: u32) -> Stage {
    match VhostIoctl::decode(cmd) {
        Some(req) => req.stage(),
        None => Stage::Vring,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_linux_vhost_h() {
        // Values printed by a C program including <linux/vhost.h>.
        assert_eq!(VhostIoctl::GetFeatures.number(), 0x8008_af00);
        assert_eq!(VhostIoctl::SetFeatures.number(), 0x4008_af00);
        assert_eq!(VhostIoctl::SetOwner.number(), 0x0000_af01);
        assert_eq!(VhostIoctl::SetMemTable.number(), 0x4008_af03);
        assert_eq!(VhostIoctl::SetVringAddr.number(), 0x4028_af11);
        assert_eq!(VhostIoctl::GetVringBase.number(), 0xc008_af12);
        assert_eq!(VhostIoctl::NetSetBackend.number(), 0x4008_af30);
    }

    #[test]
    fn decode_roundtrips_and_numbers_are_distinct() {
        for req in VhostIoctl::ALL {
            assert_eq!(VhostIoctl::decode(req.number()), Some(req));
        }
        for (i, a) in VhostIoctl::ALL.iter().enumerate() {
            for b in &VhostIoctl::ALL[i + 1..] {
                assert_ne!(a.number(), b.number());
            }
        }
    }

    #[test]
    fn unknown_numbers_take_the_vring_path() {
        assert_eq!(VhostIoctl::decode(0x0000_af7f), None);
        assert_eq!(stage_of(0x0000_af7f), Stage::Vring);
        // Right number, wrong size: not a vhost request.
        assert_eq!(VhostIoctl::decode(0x8004_af00), None);
        assert_eq!(stage_of(VhostIoctl::SetOwner.number()), Stage::Net);
        assert_eq!(stage_of(VhostIoctl::SetMemTable.number()), Stage::Device);
    }
}
