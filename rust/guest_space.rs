// SPDX-License-Identifier: GPL-2.0

//! Where the guest's addresses lead. Without `VIRTIO_F_ACCESS_PLATFORM`,
//! buffer addresses are guest-physical, translated through the memory table,
//! and ring addresses are the owner's user addresses already. With it, both
//! are I/O virtual addresses translated through the IOTLB the VMM fills
//! (`logic::iotlb`); an address without a mapping is a miss the queue waits
//! on, not a fault.

use crate::logic::{
    iotlb::{Iotlb, Lookup, Mapping, ACCESS_RO, ACCESS_WO, MAX_MAPPINGS},
    memtable::MemTable,
    ring_config::{RingSizes, VringAddr, VringConfig},
    ring_fault::RingFault,
};
use crate::user_ring::DirtyLog;
use kernel::{alloc::KVVec, prelude::*};

/// A device's IOTLB, its mappings in kernel memory (allocated when the VMM
/// acks `VIRTIO_F_ACCESS_PLATFORM`, never by the guest).
pub(crate) type DeviceIotlb = Iotlb<KVVec<Mapping>>;

/// An empty IOTLB of upstream's default size.
pub(crate) fn new_iotlb() -> Result<DeviceIotlb> {
    let storage = KVVec::from_elem(Mapping::default(), MAX_MAPPINGS, GFP_KERNEL)?;
    Ok(Iotlb::new(storage))
}

/// How the worker turns the guest's addresses into user addresses.
#[derive(Clone, Copy)]
pub(crate) enum Space<'a> {
    /// Guest-physical addresses, through the memory table.
    Memory(&'a MemTable),
    /// I/O virtual addresses, through the IOTLB; the memory table maps user
    /// addresses back to guest-physical ones for the dirty log.
    Iotlb(&'a DeviceIotlb, &'a MemTable),
}

/// The fault an IOTLB lookup that needed `access` ends in.
fn lookup_fault(lookup: Lookup, access: u8) -> RingFault {
    match lookup {
        Lookup::Miss(iova) => RingFault::IotlbMiss { iova, access },
        Lookup::Denied => RingFault::AccessDenied,
        Lookup::Split => RingFault::RingNotContiguous,
    }
}

impl<'a> Space<'a> {
    /// The space of a device with memory table `mem` and, while
    /// `VIRTIO_F_ACCESS_PLATFORM` is acked, IOTLB `iotlb`; none without a
    /// memory table.
    pub(crate) fn of(iotlb: Option<&'a DeviceIotlb>, mem: Option<&'a MemTable>) -> Option<Self> {
        let mem = mem?;
        Some(match iotlb {
            Some(tlb) => Self::Iotlb(tlb, mem),
            None => Self::Memory(mem),
        })
    }

    /// Translates the guest address `addr` for `access` ([`ACCESS_RO`] to
    /// read, [`ACCESS_WO`] to write) to a user address and the bytes (at
    /// most `len`) contiguous from there; `outside` when the memory table
    /// has no region for it.
    pub(crate) fn translate(
        self,
        addr: u64,
        len: u64,
        access: u8,
        outside: RingFault,
    ) -> Result<(u64, u64), RingFault> {
        match self {
            Self::Memory(mem) => mem.translate(addr, len).map_err(|_| outside),
            Self::Iotlb(tlb, _) => tlb
                .translate(addr, len, access)
                .map_err(|lookup| lookup_fault(lookup, access)),
        }
    }

    /// The user addresses of a queue's rings: as configured, or translated
    /// through the IOTLB (descriptors and avail ring read, used ring
    /// written), each part one user range, as upstream's `vq_meta_prefetch`
    /// checks them before a round.
    pub(crate) fn rings(
        self,
        config: &VringConfig,
        event_idx: bool,
    ) -> Result<VringAddr, RingFault> {
        let Self::Iotlb(tlb, _) = self else {
            return Ok(config.addr);
        };
        let sizes = RingSizes::new(config.num, event_idx);
        let part = |iova: u64, len: u64, access: u8| {
            tlb.translate_range(iova, len, access)
                .map_err(|lookup| lookup_fault(lookup, access))
        };
        let a = &config.addr;
        Ok(VringAddr {
            desc_user_addr: part(a.desc_user_addr, sizes.desc, ACCESS_RO)?,
            avail_user_addr: part(a.avail_user_addr, sizes.avail, ACCESS_RO)?,
            used_user_addr: part(a.used_user_addr, sizes.used, ACCESS_WO)?,
            ..*a
        })
    }

    /// The user address of the used ring's flags and index, which attaching
    /// a backend writes and reads (through the IOTLB, upstream translates
    /// these two fields for reading only).
    pub(crate) fn used_header(self, config: &VringConfig) -> Result<VringAddr, RingFault> {
        let Self::Iotlb(tlb, _) = self else {
            return Ok(config.addr);
        };
        let used = tlb
            .translate_range(config.addr.used_user_addr, 4, ACCESS_RO)
            .map_err(|lookup| lookup_fault(lookup, ACCESS_RO))?;
        Ok(VringAddr {
            used_user_addr: used,
            ..config.addr
        })
    }

    /// Whether used-ring writes are logged by user address (through the
    /// memory table) rather than at the ring's guest-physical log address.
    pub(crate) fn log_by_user_addr(self) -> Option<&'a MemTable> {
        match self {
            Self::Memory(_) => None,
            Self::Iotlb(_, mem) => Some(mem),
        }
    }

    /// Marks in `log` the guest pages of `[addr, addr + len)`, which the
    /// device wrote.
    pub(crate) fn log_write(self, log: &DirtyLog<'_>, addr: u64, len: u64) {
        let Self::Iotlb(tlb, mem) = self else {
            log.mark(addr, len);
            return;
        };
        let (mut at, mut left) = (addr, len);
        while left > 0 {
            // The device wrote there, so the mapping was there a moment ago.
            let Ok((uaddr, chunk)) = tlb.translate(at, left, ACCESS_WO) else {
                return;
            };
            log.mark_user(mem, uaddr, chunk);
            at = at.wrapping_add(chunk);
            left -= chunk;
        }
    }
}
