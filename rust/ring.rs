// SPDX-License-Identifier: GPL-2.0

//! A split virtqueue in the owner's user memory, as the worker sees it: reads
//! of the avail ring and descriptors, writes of the used ring, notification
//! decisions. Runs in the owner's address space (the worker borrows it).

use crate::logic::{
    errno::Errno,
    memtable::MemTable,
    split_ring::{pending, CallSuppression, Desc, DescReader, DriverState, VRING_USED_F_NO_NOTIFY},
    vring::VringConfig,
};
use crate::uarg::UserArg;
use core::sync::atomic::{fence, Ordering};
use kernel::prelude::*;

/// Most used elements written in one batch.
pub(crate) const MAX_BATCH: usize = 64;

/// Reads descriptors: the ring's table by user address, indirect tables by
/// guest-physical address through the memory table.
pub(crate) struct UserDescs<'a> {
    pub(crate) table: u64,
    pub(crate) mem: &'a MemTable,
}

fn read_desc(uaddr: u64) -> core::result::Result<Desc, Errno> {
    UserArg::new(uaddr as usize)
        .read::<[u8; 16]>()
        .map(Desc::from_le_bytes)
        .map_err(|_| Errno::Fault)
}

impl DescReader for UserDescs<'_> {
    fn ring_desc(&mut self, index: u16) -> core::result::Result<Desc, Errno> {
        read_desc(self.table.wrapping_add(u64::from(index).wrapping_mul(16)))
    }

    fn indirect_desc(&mut self, table: u64, index: u16) -> core::result::Result<Desc, Errno> {
        let gpa = table
            .checked_add(u64::from(index).wrapping_mul(16))
            .ok_or(Errno::Fault)?;
        // A descriptor split across two memory regions is refused.
        match self.mem.translate(gpa, 16)? {
            (uaddr, 16) => read_desc(uaddr),
            _ => Err(Errno::Fault),
        }
    }
}

/// The worker's view of one queue's rings.
pub(crate) struct Rings<'a> {
    pub(crate) config: &'a VringConfig,
    pub(crate) event_idx: bool,
}

impl Rings<'_> {
    /// The ring size: a power of two up to 32768 (`VringConfig` refuses others).
    fn num(&self) -> u16 {
        self.config.num as u16
    }

    fn avail(&self, offset: u64) -> UserArg {
        UserArg::new(self.config.addr.avail_user_addr.wrapping_add(offset) as usize)
    }

    fn used(&self, offset: u64) -> UserArg {
        UserArg::new(self.config.addr.used_user_addr.wrapping_add(offset) as usize)
    }

    /// Entries available past `last_avail`; `EFAULT` if the guest moved the
    /// index by more than the ring size or the ring is unreadable.
    pub(crate) fn pending(&self, last_avail: u16) -> core::result::Result<u16, Errno> {
        let idx = self.avail(2).read_u16_once().map_err(|_| Errno::Fault)?;
        let n = pending(idx, last_avail, self.num())?;
        // Ring entries are read after the index (smp_rmb in upstream).
        fence(Ordering::Acquire);
        Ok(n)
    }

    /// Ring slot of a free-running index (`num` is a power of two).
    fn slot(&self, pos: u16) -> u64 {
        u64::from(pos & self.num().wrapping_sub(1))
    }

    /// The head index the guest put at avail position `pos`.
    pub(crate) fn head(&self, pos: u16) -> core::result::Result<u16, Errno> {
        let offset = self.slot(pos).wrapping_mul(2).wrapping_add(4);
        self.avail(offset).read().map_err(|_| Errno::Fault)
    }

    /// Reads the heads at avail positions `first_pos..` into `out`, with one
    /// copy per contiguous stretch of the ring (two when it wraps), instead
    /// of one user access per packet. The caller reads no further than
    /// `pending` said, and only after it (the guest does not change
    /// published entries until they are used).
    pub(crate) fn heads(&self, first_pos: u16, out: &mut [u16]) -> core::result::Result<(), Errno> {
        let mut bytes = [0u8; 2 * MAX_BATCH];
        let mut pos = first_pos;
        let mut done = 0;
        while done < out.len() {
            let slot = self.slot(pos);
            let room = usize::from(self.num()).saturating_sub(slot as usize);
            let n = (out.len() - done).min(room).min(MAX_BATCH);
            let offset = slot.wrapping_mul(2).wrapping_add(4);
            self.avail(offset)
                .reader_at(0, 2 * n)
                .read_slice(&mut bytes[..2 * n])
                .map_err(|_| Errno::Fault)?;
            for (head, pair) in out[done..done + n].iter_mut().zip(bytes.chunks_exact(2)) {
                *head = u16::from_le_bytes([pair[0], pair[1]]);
            }
            pos = pos.wrapping_add(n as u16);
            done += n;
        }
        Ok(())
    }

    /// Writes used element `pos` = `{head, len}`.
    pub(crate) fn put_used(&self, pos: u16, head: u16, len: u32) -> Result {
        let offset = self.slot(pos).wrapping_mul(8).wrapping_add(4);
        self.used(offset).write(&[u32::from(head), len])
    }

    /// Writes used elements `first_pos..` = `elems` (`{head, len}` each) with
    /// one copy per contiguous stretch of the ring (two when it wraps).
    pub(crate) fn put_used_batch(&self, first_pos: u16, elems: &[(u16, u32)]) -> Result {
        let mut bytes = [0u8; 8 * MAX_BATCH];
        let mut pos = first_pos;
        let mut rest = elems;
        while !rest.is_empty() {
            let slot = self.slot(pos);
            let room = usize::from(self.num()).saturating_sub(slot as usize);
            let n = rest.len().min(room).min(MAX_BATCH);
            let (now, later) = rest.split_at(n);
            for (chunk, &(head, len)) in bytes.chunks_exact_mut(8).zip(now) {
                chunk[..4].copy_from_slice(&u32::from(head).to_le_bytes());
                chunk[4..].copy_from_slice(&len.to_le_bytes());
            }
            let offset = slot.wrapping_mul(8).wrapping_add(4);
            self.used(offset).write_slice(&bytes[..8 * n])?;
            pos = pos.wrapping_add(n as u16);
            rest = later;
        }
        Ok(())
    }

    /// Publishes the used index (after the elements: smp_wmb in upstream),
    /// then orders it before the reads that decide about notifications.
    pub(crate) fn publish_used(&self, used_idx: u16) -> Result {
        fence(Ordering::Release);
        self.used(2).write_u16_once(used_idx)?;
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// Asks the guest for kicks again, from the avail index after `avail_seen`
    /// on (the newest index the device has seen): with `EVENT_IDX` by writing
    /// `avail_event`, else by clearing `VRING_USED_F_NO_NOTIFY`. The caller
    /// re-checks the ring afterwards, so a buffer made available meanwhile
    /// is not missed.
    pub(crate) fn enable_notify(&self, avail_seen: u16) -> Result {
        if self.event_idx {
            let offset = u64::from(self.config.num).wrapping_mul(8).wrapping_add(4);
            self.used(offset).write_u16_once(avail_seen)?;
        } else {
            self.used(0).write_u16_once(0)?;
        }
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// Tells the guest that kicks are not needed while the device is working
    /// anyway (`VRING_USED_F_NO_NOTIFY`; with `EVENT_IDX`, not moving
    /// `avail_event` has that effect).
    pub(crate) fn disable_notify(&self) -> Result {
        if !self.event_idx {
            self.used(0).write_u16_once(VRING_USED_F_NO_NOTIFY)?;
        }
        Ok(())
    }

    /// Whether to signal the call eventfd for used index `used_idx`.
    pub(crate) fn should_signal(
        &self,
        calls: &mut CallSuppression,
        used_idx: u16,
        last_avail: u16,
        notify_on_empty: bool,
    ) -> Result<bool> {
        let avail_flags = self.avail(0).read_u16_once()?;
        let avail_idx = self.avail(2).read_u16_once()?;
        let used_event: u16 = if self.event_idx {
            let offset = u64::from(self.config.num).wrapping_mul(2).wrapping_add(4);
            self.avail(offset).read_u16_once()?
        } else {
            0
        };
        Ok(calls.should_signal(
            used_idx,
            DriverState {
                event_idx: self.event_idx,
                notify_on_empty,
                avail_flags,
                used_event,
                avail_empty: avail_idx == last_avail,
            },
        ))
    }
}
