// SPDX-License-Identifier: GPL-2.0

//! A split virtqueue in the owner's user memory, as the worker sees it: reads
//! of the avail ring and descriptors, writes of the used ring, notification
//! decisions. Runs in the owner's address space (the worker is its thread).
//! Every failure is a [`RingFault`]: the guest's rings are wrong.

use crate::guest_space::Space;
use crate::logic::iotlb::ACCESS_RO;
use crate::logic::{
    dirty_log::dirty_bits,
    memtable::MemTable,
    ring_config::{VringAddr, VHOST_VRING_F_LOG},
    ring_fault::RingFault,
    split_ring::{
        avail_event_offset, pending, used_event_offset, CallSuppression, Desc, DescReader,
        DriverState, AVAIL_ELEM_SIZE, AVAIL_IDX_OFFSET, AVAIL_RING_OFFSET, DESC_SIZE,
        USED_ELEM_SIZE, USED_IDX_OFFSET, USED_RING_OFFSET, VRING_USED_F_NO_NOTIFY,
    },
};
use crate::sys::eventfd::EventFdCtx;
use crate::user_addr::UserAddr;
use core::sync::atomic::{fence, Ordering};

/// Most used elements (and avail heads) moved in one copy.
pub(crate) const MAX_BATCH: usize = 64;
/// Bytes of scratch space a batch of ring entries takes in guest layout (the
/// largest entries: descriptors).
pub(crate) const BATCH_BYTES: usize = MAX_BATCH * DESC_SIZE as usize;

/// Offset of the flags in both the avail and the used ring.
const FLAGS_OFFSET: u64 = 0;

/// Reads descriptors: the ring's table by user address (or from a stretch of
/// it read ahead: `cache` holds entries `first..first + len`), indirect tables
/// by guest address through `space`.
pub(crate) struct UserDescs<'a> {
    pub(crate) table: u64,
    pub(crate) space: Space<'a>,
    pub(crate) cache: Option<(u16, &'a [Desc])>,
}

fn read_desc(uaddr: u64) -> Option<Desc> {
    UserAddr::new(uaddr as usize)
        .read::<[u8; DESC_SIZE as usize]>()
        .ok()
        .map(Desc::from_le_bytes)
}

impl DescReader for UserDescs<'_> {
    fn ring_desc(&mut self, index: u16) -> Result<Desc, RingFault> {
        if let Some((first, descs)) = self.cache {
            if let Some(desc) = descs.get(usize::from(index.wrapping_sub(first))) {
                return Ok(*desc);
            }
        }
        let offset = u64::from(index).wrapping_mul(DESC_SIZE);
        read_desc(self.table.wrapping_add(offset)).ok_or(RingFault::DescUnreadable)
    }

    fn indirect_desc(&mut self, table: u64, index: u16) -> Result<Desc, RingFault> {
        let gpa = table
            .checked_add(u64::from(index).wrapping_mul(DESC_SIZE))
            .ok_or(RingFault::IndirectUnreadable)?;
        // A descriptor split across two memory regions (or mappings) is refused.
        let unreadable = RingFault::IndirectUnreadable;
        match self
            .space
            .translate(gpa, DESC_SIZE, ACCESS_RO, unreadable)?
        {
            (uaddr, DESC_SIZE) => read_desc(uaddr).ok_or(unreadable),
            _ => Err(unreadable),
        }
    }
}

/// The dirty log of live migration (`VHOST_F_LOG_ALL`): the bitmap's user
/// address and the log eventfd the device signals after setting bits.
#[derive(Clone, Copy)]
pub(crate) struct DirtyLog<'a> {
    pub(crate) base: u64,
    pub(crate) ctx: Option<&'a EventFdCtx>,
}

impl DirtyLog<'_> {
    /// Marks the guest-physical range `[gpa, gpa + len)` written. A bit that
    /// cannot be set (a log base the VMM did not map writable) is skipped,
    /// as upstream ignores it: the VMM's own mistake, not the guest's.
    pub(crate) fn mark(&self, gpa: u64, len: u64) {
        for bit in dirty_bits(gpa, len) {
            let _ = crate::sys::uaccess_once::set_bit(self.base.wrapping_add(bit.byte), bit.bit);
        }
    }

    /// Marks written the guest pages of the owner's memory at
    /// `[uaddr, uaddr + len)` (with an IOTLB, where the device knows user
    /// addresses, not guest-physical ones): every guest range `mem` maps there.
    pub(crate) fn mark_user(&self, mem: &MemTable, uaddr: u64, len: u64) {
        for (gpa, n) in mem.guest_ranges(uaddr, len) {
            self.mark(gpa, n);
        }
    }

    /// Tells the VMM that bits were set.
    pub(crate) fn signal(&self) {
        if let Some(ctx) = self.ctx {
            ctx.signal();
        }
    }
}

/// What the guest's side of a ring says after used entries were published.
pub(crate) struct Asked {
    /// The guest asks for a signal (event index, flags, notify on empty).
    pub(crate) signal: bool,
    /// The guest has no buffers left for the device.
    pub(crate) avail_empty: bool,
}

/// The worker's view of one queue's rings.
pub(crate) struct Rings<'a> {
    /// The rings' user addresses (translated, with an IOTLB).
    addr: &'a VringAddr,
    num: u32,
    event_idx: bool,
    /// With `VHOST_VRING_F_LOG`: every write to the used ring is logged, at
    /// the ring's guest-physical log address, or with an IOTLB by its user
    /// address through the memory table (the log address is then an I/O
    /// virtual address, which upstream ignores too).
    used_log: Option<(DirtyLog<'a>, Option<&'a MemTable>)>,
}

impl<'a> Rings<'a> {
    /// The rings of a queue of `num` entries at the user addresses `addr`.
    pub(crate) fn new(addr: &'a VringAddr, num: u32, event_idx: bool) -> Self {
        Self {
            addr,
            num,
            event_idx,
            used_log: None,
        }
    }

    /// The same rings, logging used-ring writes into `log` if the queue
    /// asked for it (`VHOST_VRING_F_LOG`); by user address through `by_user`
    /// if given.
    pub(crate) fn logged(
        mut self,
        log: Option<DirtyLog<'a>>,
        by_user: Option<&'a MemTable>,
    ) -> Self {
        if self.addr.flags & (1 << VHOST_VRING_F_LOG) != 0 {
            self.used_log = log.map(|log| (log, by_user));
        }
        self
    }

    /// Logs a write of `len` bytes at `offset` into the used ring; `signal`
    /// the log eventfd too (upstream signals after flags, `avail_event` and
    /// index writes, not after the elements, which the index follows).
    fn log_used(&self, offset: u64, len: u64, signal: bool) {
        if let Some((log, by_user)) = &self.used_log {
            fence(Ordering::Release);
            match by_user {
                None => log.mark(self.addr.log_guest_addr.wrapping_add(offset), len),
                Some(mem) => log.mark_user(mem, self.addr.used_user_addr.wrapping_add(offset), len),
            }
            if signal {
                log.signal();
            }
        }
    }

    /// Starts using the rings with a backend (upstream's
    /// `vhost_vq_init_access`): writes the used flags, returns the used index.
    pub(crate) fn init_access(&self) -> Result<u16, RingFault> {
        self.used(FLAGS_OFFSET)
            .write_u16_once(0)
            .map_err(|_| RingFault::UsedUnwritable)?;
        self.log_used(FLAGS_OFFSET, 2, true);
        self.used(USED_IDX_OFFSET)
            .read_u16_once()
            .map_err(|_| RingFault::UsedUnwritable)
    }

    /// The ring size: a power of two up to 32768 (`VringConfig` refuses others).
    pub(crate) fn num(&self) -> u16 {
        u16::try_from(self.num).unwrap_or(u16::MAX)
    }

    /// The user address of the descriptor table.
    pub(crate) fn desc_table(&self) -> u64 {
        self.addr.desc_user_addr
    }

    fn avail(&self, offset: u64) -> UserAddr {
        UserAddr::new(self.addr.avail_user_addr.wrapping_add(offset) as usize)
    }

    fn used(&self, offset: u64) -> UserAddr {
        UserAddr::new(self.addr.used_user_addr.wrapping_add(offset) as usize)
    }

    /// Entries available past `last_avail`; a fault if the guest moved the
    /// index by more than the ring size or the ring is unreadable.
    pub(crate) fn pending(&self, last_avail: u16) -> Result<u16, RingFault> {
        let idx = self
            .avail(AVAIL_IDX_OFFSET)
            .read_u16_once()
            .map_err(|_| RingFault::AvailUnreadable)?;
        let n = pending(idx, last_avail, self.num())?;
        // Ring entries are read after the index (smp_rmb in upstream).
        fence(Ordering::Acquire);
        Ok(n)
    }

    /// Ring slot of a free-running index (`num` is a power of two).
    fn slot(&self, pos: u16) -> u64 {
        u64::from(pos & self.num().wrapping_sub(1))
    }

    /// Reads the heads at avail positions `first_pos..` into `out` (at most
    /// [`MAX_BATCH`]), with one copy per contiguous stretch of the ring (two
    /// when it wraps), through `bytes`. The caller reads no further than
    /// `pending` said, and only after it (the guest does not change published
    /// entries until they are used).
    pub(crate) fn heads(
        &self,
        first_pos: u16,
        out: &mut [u16],
        bytes: &mut [u8; BATCH_BYTES],
    ) -> Result<(), RingFault> {
        let mut pos = first_pos;
        let mut done = 0;
        while done < out.len() {
            let slot = self.slot(pos);
            let room = usize::from(self.num()).saturating_sub(slot as usize);
            let n = (out.len() - done).min(room).min(MAX_BATCH);
            let len = n * AVAIL_ELEM_SIZE as usize;
            let chunk = &mut bytes[..len];
            self.avail(AVAIL_RING_OFFSET + slot * AVAIL_ELEM_SIZE)
                .reader_at(0, len)
                .read_slice(chunk)
                .map_err(|_| RingFault::AvailUnreadable)?;
            for (head, pair) in out[done..done + n].iter_mut().zip(chunk.chunks_exact(2)) {
                *head = u16::from_le_bytes([pair[0], pair[1]]);
            }
            pos = pos.wrapping_add(n as u16);
            done += n;
        }
        Ok(())
    }

    /// Reads table entries `first..first + out.len()` (at most [`MAX_BATCH`],
    /// not past the table's end) in one copy, through `bytes`. The caller
    /// reads only descriptors of published chains (they stay as they are
    /// until the device uses them).
    pub(crate) fn descs(
        &self,
        first: u16,
        out: &mut [Desc],
        bytes: &mut [u8; BATCH_BYTES],
    ) -> Result<(), RingFault> {
        let len = out.len() * DESC_SIZE as usize;
        let chunk = bytes.get_mut(..len).ok_or(RingFault::DescUnreadable)?;
        UserAddr::new(self.desc_table().wrapping_add(u64::from(first) * DESC_SIZE) as usize)
            .reader_at(0, len)
            .read_slice(chunk)
            .map_err(|_| RingFault::DescUnreadable)?;
        for (desc, raw) in out.iter_mut().zip(chunk.chunks_exact(DESC_SIZE as usize)) {
            let mut one = [0u8; DESC_SIZE as usize];
            one.copy_from_slice(raw);
            *desc = Desc::from_le_bytes(one);
        }
        Ok(())
    }

    /// Writes used elements `first_pos..` = `elems` (`{head, len}` each, at
    /// most [`MAX_BATCH`]) with one copy per contiguous stretch of the ring
    /// (two when it wraps), through `bytes`. The guest sees none of them
    /// before [`Rings::publish_used`].
    pub(crate) fn put_used_batch(
        &self,
        first_pos: u16,
        elems: &[(u16, u32)],
        bytes: &mut [u8; BATCH_BYTES],
    ) -> Result<(), RingFault> {
        let mut pos = first_pos;
        let mut rest = elems;
        while !rest.is_empty() {
            let slot = self.slot(pos);
            let room = usize::from(self.num()).saturating_sub(slot as usize);
            let n = rest.len().min(room).min(MAX_BATCH);
            let (now, later) = rest.split_at(n);
            let len = n * USED_ELEM_SIZE as usize;
            for (chunk, &(head, used_len)) in bytes[..len].chunks_exact_mut(8).zip(now) {
                chunk[..4].copy_from_slice(&u32::from(head).to_le_bytes());
                chunk[4..].copy_from_slice(&used_len.to_le_bytes());
            }
            let offset = USED_RING_OFFSET + slot * USED_ELEM_SIZE;
            self.used(offset)
                .write_slice(&bytes[..len])
                .map_err(|_| RingFault::UsedUnwritable)?;
            self.log_used(offset, len as u64, false);
            pos = pos.wrapping_add(n as u16);
            rest = later;
        }
        Ok(())
    }

    /// Publishes the used index (after the elements: smp_wmb in upstream),
    /// then orders it before the reads that decide about notifications.
    pub(crate) fn publish_used(&self, used_idx: u16) -> Result<(), RingFault> {
        fence(Ordering::Release);
        self.used(USED_IDX_OFFSET)
            .write_u16_once(used_idx)
            .map_err(|_| RingFault::UsedUnwritable)?;
        self.log_used(USED_IDX_OFFSET, 2, true);
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// Asks the guest for kicks again, from the avail index after `avail_seen`
    /// on (the newest index the device has seen): with `EVENT_IDX` by writing
    /// `avail_event`, else by clearing `VRING_USED_F_NO_NOTIFY`. The caller
    /// re-checks the ring afterwards, so a buffer made available meanwhile
    /// is not missed.
    pub(crate) fn enable_notify(&self, avail_seen: u16) -> Result<(), RingFault> {
        let offset = if self.event_idx {
            avail_event_offset(self.num())
        } else {
            FLAGS_OFFSET
        };
        let value = if self.event_idx { avail_seen } else { 0 };
        self.used(offset)
            .write_u16_once(value)
            .map_err(|_| RingFault::UsedUnwritable)?;
        self.log_used(offset, 2, true);
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// Asks the guest for a kick once entries past `avail_seen` come, then
    /// looks at the avail index once more, so that an entry made available
    /// meanwhile is not missed. Returns the entries pending past
    /// `last_avail`; when there are more than the `avail_seen - last_avail`
    /// already seen, notifications are off again (the caller takes them).
    pub(crate) fn enable_notify_and_recheck(
        &self,
        last_avail: u16,
        avail_seen: u16,
    ) -> Result<u16, RingFault> {
        self.enable_notify(avail_seen)?;
        let pending = self.pending(last_avail)?;
        if pending > avail_seen.wrapping_sub(last_avail) {
            self.disable_notify()?;
        }
        Ok(pending)
    }

    /// Tells the guest that kicks are not needed while the device is working
    /// anyway (`VRING_USED_F_NO_NOTIFY`; with `EVENT_IDX`, not moving
    /// `avail_event` has that effect).
    pub(crate) fn disable_notify(&self) -> Result<(), RingFault> {
        if self.event_idx {
            return Ok(());
        }
        self.used(FLAGS_OFFSET)
            .write_u16_once(VRING_USED_F_NO_NOTIFY)
            .map_err(|_| RingFault::UsedUnwritable)?;
        self.log_used(FLAGS_OFFSET, 2, true);
        Ok(())
    }

    /// Whether the guest asks for a signal of the call eventfd for used
    /// index `used_idx`, and whether it has buffers left for the device.
    pub(crate) fn should_signal(
        &self,
        calls: &mut CallSuppression,
        used_idx: u16,
        last_avail: u16,
        notify_on_empty: bool,
    ) -> Result<Asked, RingFault> {
        let read = |offset| {
            self.avail(offset)
                .read_u16_once()
                .map_err(|_| RingFault::AvailUnreadable)
        };
        let avail_flags = read(FLAGS_OFFSET)?;
        let avail_idx = read(AVAIL_IDX_OFFSET)?;
        let used_event = if self.event_idx {
            read(used_event_offset(self.num()))?
        } else {
            0
        };
        let avail_empty = avail_idx == last_avail;
        let signal = calls.should_signal(
            used_idx,
            DriverState {
                event_idx: self.event_idx,
                notify_on_empty,
                avail_flags,
                used_event,
                avail_empty,
            },
        );
        Ok(Asked {
            signal,
            avail_empty,
        })
    }
}
