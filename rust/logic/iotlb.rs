// SPDX-License-Identifier: GPL-2.0

//! The IOTLB of a device that acked `VIRTIO_F_ACCESS_PLATFORM` (a guest
//! behind a vIOMMU, or a confidential guest): ring and buffer addresses are
//! I/O virtual addresses, translated to the owner's user addresses through
//! mappings the VMM writes into the device file (`VHOST_IOTLB_UPDATE`,
//! `VHOST_IOTLB_INVALIDATE`). An address without a mapping is a miss the
//! device reports through `read()` (`VHOST_IOTLB_MISS`) and waits on; a
//! mapping without the needed access (read for what the device reads, write
//! for what it writes) refuses the access.
//!
//! Like a hardware TLB this is a cache: the device may forget any mapping
//! and ask again. It keeps at most a fixed number of mappings (upstream's
//! default `max_iotlb_entries`), the oldest forgotten first, and an update
//! replaces the mappings it overlaps (upstream keeps both and lets a lookup
//! find either; a VMM invalidates before it remaps, so both agree on every
//! sequence a VMM sends).
//!
//! Also here: the byte layout of the messages (`struct vhost_msg` and
//! `struct vhost_msg_v2` of `linux/vhost_types.h`) and upstream's order of
//! checks when one is written, which decides the errno.

use super::errno::Errno;
use core::ops::DerefMut;

/// Most mappings kept (upstream's default `max_iotlb_entries`).
pub const MAX_MAPPINGS: usize = 2048;

/// `VHOST_ACCESS_RO`: the device may read.
pub const ACCESS_RO: u8 = 1;
/// `VHOST_ACCESS_WO`: the device may write.
pub const ACCESS_WO: u8 = 2;

/// `VHOST_IOTLB_MISS`: the device asks for a translation (device to VMM).
pub const IOTLB_MISS: u8 = 1;
/// `VHOST_IOTLB_UPDATE`: a new mapping (VMM to device).
pub const IOTLB_UPDATE: u8 = 2;
/// `VHOST_IOTLB_INVALIDATE`: mappings to forget (VMM to device).
pub const IOTLB_INVALIDATE: u8 = 3;

/// `VHOST_IOTLB_MSG`: message format 1 (`struct vhost_msg`).
pub const MSG_V1: u32 = 1;
/// `VHOST_IOTLB_MSG_V2`: message format 2 (`struct vhost_msg_v2`).
pub const MSG_V2: u32 = 2;
/// Bytes of a message in either format: a 4-byte type, 4 bytes (a hole in
/// format 1, the address space id in format 2), a 64-byte union.
pub const MSG_LEN: usize = 72;
/// Offset of `struct vhost_iotlb_msg` in either format.
pub const BODY_OFFSET: usize = 8;
/// `sizeof(struct vhost_iotlb_msg)`: iova, size, uaddr (u64 each), perm,
/// type (u8 each), padded to 8.
pub const BODY_LEN: usize = 32;
/// Bytes of a written message the device needs: up to the body's end.
pub const WRITE_NEEDS: usize = BODY_OFFSET + BODY_LEN;
/// Offsets of the body's fields: `iova`, `size`, `uaddr`, then `perm` and
/// `type` (the last two checked against the uapi header in `abi.rs`).
const IOVA_OFFSET: usize = 0;
const SIZE_OFFSET: usize = 8;
const UADDR_OFFSET: usize = 16;
/// Offset of `perm` in the body.
pub const PERM_OFFSET: usize = 24;
/// Offset of `type` in the body.
pub const TYPE_OFFSET: usize = 25;

/// One mapping: I/O virtual addresses `first..=last` to user addresses from
/// `uaddr`, with access `perm` ([`ACCESS_RO`] | [`ACCESS_WO`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    /// First I/O virtual address.
    pub first: u64,
    /// Last I/O virtual address (inclusive: a mapping may end at 2^64 - 1).
    pub last: u64,
    /// The user address of `first`.
    pub uaddr: u64,
    /// The access the VMM granted.
    pub perm: u8,
    /// When it was added (the oldest is forgotten first).
    stamp: u64,
}

/// Why an address did not translate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// No mapping covers this address: ask the VMM.
    Miss(u64),
    /// The mapping does not grant the access.
    Denied,
    /// A ring part that is not contiguous in user memory (the device reads
    /// and writes each part of a ring as one user range).
    Split,
}

/// The mappings, sorted by `first`, never overlapping, in storage the
/// caller provides (`S` dereferences to at most [`MAX_MAPPINGS`] slots).
///
/// # Invariants
///
/// `maps[..len]` are sorted by `first`, pairwise disjoint, each with
/// `first <= last`; `len <= maps.len()`.
pub struct Iotlb<S> {
    maps: S,
    len: usize,
    clock: u64,
}

impl<S: DerefMut<Target = [Mapping]>> Iotlb<S> {
    /// An empty IOTLB keeping at most `storage.len()` mappings.
    pub fn new(storage: S) -> Self {
        // INVARIANT: no mappings.
        Self {
            maps: storage,
            len: 0,
            clock: 0,
        }
    }

    /// The mappings, in address order.
    pub fn mappings(&self) -> &[Mapping] {
        &self.maps[..self.len]
    }

    /// Indices of the mappings overlapping `first..=last`: a contiguous run.
    fn overlapping(&self, first: u64, last: u64) -> core::ops::Range<usize> {
        let maps = self.mappings();
        let start = maps.partition_point(|m| m.last < first);
        let end = maps.partition_point(|m| m.first <= last);
        start..end.max(start)
    }

    /// Removes the mappings at `range`.
    fn remove(&mut self, range: core::ops::Range<usize>) {
        let n = range.len();
        self.maps[range.start..self.len].rotate_left(n);
        // INVARIANT: what stays keeps its order; nothing overlaps more than before.
        self.len -= n;
    }

    /// `VHOST_IOTLB_UPDATE`: maps `size` bytes from `iova` to `uaddr`.
    /// `EFAULT` if the range wraps (upstream's `last < start`); `EINVAL` for
    /// an IOTLB that can hold nothing. The caller has checked the user range.
    pub fn update(&mut self, iova: u64, size: u64, uaddr: u64, perm: u8) -> Result<(), Errno> {
        let last = size
            .checked_sub(1)
            .and_then(|n| iova.checked_add(n))
            .ok_or(Errno::Fault)?;
        if self.maps.is_empty() {
            return Err(Errno::Inval);
        }
        let old = self.overlapping(iova, last);
        self.remove(old);
        if self.len == self.maps.len() {
            let oldest = self
                .mappings()
                .iter()
                .enumerate()
                .min_by_key(|(_, m)| m.stamp)
                .map_or(0, |(i, _)| i);
            self.remove(oldest..oldest + 1);
        }
        let at = self.mappings().partition_point(|m| m.first < iova);
        self.clock += 1;
        self.maps[at..=self.len].rotate_right(1);
        self.maps[at] = Mapping {
            first: iova,
            last,
            uaddr,
            perm,
            stamp: self.clock,
        };
        // INVARIANT: inserted in order, after removing every mapping it overlapped.
        self.len += 1;
        Ok(())
    }

    /// `VHOST_IOTLB_INVALIDATE`: forgets every mapping overlapping the
    /// `size` bytes from `iova` (whole mappings, as upstream). A range that
    /// wraps or is empty overlaps nothing (upstream's `last < start`).
    pub fn invalidate(&mut self, iova: u64, size: u64) {
        let Some(last) = size.checked_sub(1).and_then(|n| iova.checked_add(n)) else {
            return;
        };
        let old = self.overlapping(iova, last);
        self.remove(old);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        // INVARIANT: no mappings.
        self.len = 0;
    }

    /// The mapping covering `iova`, if any.
    fn find(&self, iova: u64) -> Option<&Mapping> {
        let maps = self.mappings();
        let at = maps.partition_point(|m| m.last < iova);
        maps.get(at).filter(|m| m.first <= iova)
    }

    /// Translates `iova` for `access` to a user address and the number of
    /// bytes (at most `len`, at least 1 for a non-zero `len`) contiguous
    /// from there within one mapping; more needs another call.
    pub fn translate(&self, iova: u64, len: u64, access: u8) -> Result<(u64, u64), Lookup> {
        let map = self.find(iova).ok_or(Lookup::Miss(iova))?;
        if map.perm & access != access {
            return Err(Lookup::Denied);
        }
        // Bytes from `iova` to the mapping's end, less one (fits 64 bits).
        let rest = map.last - iova;
        let chunk = if len == 0 || len - 1 <= rest {
            len
        } else {
            rest + 1
        };
        Ok((map.uaddr.wrapping_add(iova - map.first), chunk))
    }

    /// Translates `[iova, iova + len)` for `access` to one user range (its
    /// first address): every byte mapped with the access, and mappings that
    /// follow each other in user memory too. The miss names the first byte
    /// without a mapping.
    pub fn translate_range(&self, iova: u64, len: u64, access: u8) -> Result<u64, Lookup> {
        let (start, mut done) = self.translate(iova, len, access)?;
        while done < len {
            let at = iova.checked_add(done).ok_or(Lookup::Split)?;
            let (uaddr, n) = self.translate(at, len - done, access)?;
            if uaddr != start.wrapping_add(done) {
                return Err(Lookup::Split);
            }
            done += n;
        }
        Ok(start)
    }
}

/// The misses the device reported and the VMM has not answered: at most
/// one per queue (a queue waits on its first miss), so a guest cannot make
/// the device queue messages without bound. A queue's miss is handed to
/// `read()` once; a miss at another address replaces it and is handed out
/// again, as is the same miss when the queue runs into it again after it
/// was read (the VMM may have dropped it), like upstream re-asking on each
/// attempt.
#[derive(Clone, Copy, Debug)]
pub struct Misses<const QUEUES: usize> {
    /// Per queue: the address and access missed, and whether it was read.
    slots: [Option<(u64, u8, bool)>; QUEUES],
    /// Misses recorded so far.
    total: u64,
}

impl<const QUEUES: usize> Misses<QUEUES> {
    /// No misses.
    pub const fn new() -> Self {
        Self {
            slots: [None; QUEUES],
            total: 0,
        }
    }

    /// Misses recorded so far (a change means a message to read).
    pub const fn total(&self) -> u64 {
        self.total
    }

    /// Queue `queue` missed at `iova` needing `access`: to be read.
    pub fn record(&mut self, queue: usize, iova: u64, access: u8) {
        if let Some(slot) = self.slots.get_mut(queue) {
            *slot = Some((iova, access, false));
            self.total += 1;
        }
    }

    /// The oldest-indexed miss not yet read, now marked read.
    pub fn next_unread(&mut self) -> Option<(u64, u8)> {
        self.slots.iter_mut().flatten().find(|s| !s.2).map(|s| {
            s.2 = true;
            (s.0, s.1)
        })
    }

    /// Whether a miss waits to be read (`poll()` reports it readable).
    pub fn readable(&self) -> bool {
        self.slots.iter().flatten().any(|s| !s.2)
    }

    /// An update mapped `size` bytes from `iova`: forgets the misses it
    /// answers and returns their queues (bit `q` for queue `q`), to run again.
    pub fn answered(&mut self, iova: u64, size: u64) -> u32 {
        let last = iova.saturating_add(size.saturating_sub(1));
        let mut queues = 0;
        for (q, slot) in self.slots.iter_mut().enumerate() {
            if matches!(slot, Some((at, _, _)) if iova <= *at && *at <= last) {
                *slot = None;
                queues |= 1 << q;
            }
        }
        queues
    }

    /// Forgets everything (an owner reset).
    pub fn clear(&mut self) {
        self.slots = [None; QUEUES];
    }
}

impl<const QUEUES: usize> Default for Misses<QUEUES> {
    fn default() -> Self {
        Self::new()
    }
}

/// The body of a message (`struct vhost_iotlb_msg`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IotlbMsg {
    /// First I/O virtual address.
    pub iova: u64,
    /// Bytes (0 in a miss).
    pub size: u64,
    /// The user address of `iova` (0 in a miss).
    pub uaddr: u64,
    /// Access granted (update) or needed (miss).
    pub perm: u8,
    /// [`IOTLB_MISS`], [`IOTLB_UPDATE`] or [`IOTLB_INVALIDATE`] (others are
    /// refused when processed, not when parsed).
    pub kind: u8,
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_ne_bytes(raw)
}

/// Parses the first [`WRITE_NEEDS`] (or fewer) bytes of a written message
/// in upstream's order: a type (`EINVAL` if fewer than 4 bytes or neither
/// format), the body after the 4-byte hole or address space id (`EINVAL` if
/// short; the id is not read, as a device without
/// `VHOST_BACKEND_F_IOTLB_ASID` skips it), `EINVAL` for an update of 0
/// bytes. Returns the format and the body.
pub fn parse_written(bytes: &[u8]) -> Result<(u32, IotlbMsg), Errno> {
    let head: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(Errno::Inval)?;
    let format = u32::from_ne_bytes(head);
    if format != MSG_V1 && format != MSG_V2 {
        return Err(Errno::Inval);
    }
    let body = bytes.get(BODY_OFFSET..WRITE_NEEDS).ok_or(Errno::Inval)?;
    let msg = IotlbMsg {
        iova: u64_at(body, IOVA_OFFSET),
        size: u64_at(body, SIZE_OFFSET),
        uaddr: u64_at(body, UADDR_OFFSET),
        perm: body[PERM_OFFSET],
        kind: body[TYPE_OFFSET],
    };
    if msg.kind == IOTLB_UPDATE && msg.size == 0 {
        return Err(Errno::Inval);
    }
    Ok((format, msg))
}

/// A miss at `iova` needing `access`, in `format` ([`MSG_V2`] once the VMM
/// acked `VHOST_BACKEND_F_IOTLB_MSG_V2`, else [`MSG_V1`]), as `read()` hands
/// it out.
pub fn encode_miss(format: u32, iova: u64, access: u8) -> [u8; MSG_LEN] {
    let mut out = [0u8; MSG_LEN];
    out[..4].copy_from_slice(&format.to_ne_bytes());
    let body = &mut out[BODY_OFFSET..WRITE_NEEDS];
    body[IOVA_OFFSET..IOVA_OFFSET + 8].copy_from_slice(&iova.to_ne_bytes());
    body[PERM_OFFSET] = access;
    body[TYPE_OFFSET] = IOTLB_MISS;
    out
}

/// Whether an update of `size` bytes at `uaddr` names a user range without
/// wrapping the address space (upstream's `vhost_overflow`; `access_ok` is
/// the caller's, for a range with any access granted).
pub const fn user_range_fits(uaddr: u64, size: u64) -> bool {
    size == 0 || uaddr <= u64::MAX - size + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlb(storage: &mut [Mapping]) -> Iotlb<&mut [Mapping]> {
        Iotlb::new(storage)
    }

    #[test]
    fn translates_within_and_across_mappings() {
        let mut s = [Mapping::default(); 8];
        let mut t = tlb(&mut s);
        t.update(0x1000, 0x1000, 0x7000_0000, ACCESS_RO | ACCESS_WO)
            .unwrap();
        t.update(0x2000, 0x1000, 0x7000_1000, ACCESS_RO).unwrap();
        assert_eq!(t.translate(0x1800, 16, ACCESS_RO), Ok((0x7000_0800, 16)));
        // Up to the mapping's end, then the next call.
        assert_eq!(
            t.translate(0x1ff0, 0x40, ACCESS_RO),
            Ok((0x7000_0ff0, 0x10))
        );
        assert_eq!(
            t.translate(0x2000, 0x30, ACCESS_RO),
            Ok((0x7000_1000, 0x30))
        );
        assert_eq!(t.translate(0x0fff, 1, ACCESS_RO), Err(Lookup::Miss(0x0fff)));
        assert_eq!(t.translate(0x3000, 1, ACCESS_RO), Err(Lookup::Miss(0x3000)));
        assert_eq!(t.translate(0x2000, 1, ACCESS_WO), Err(Lookup::Denied));
        // One user range across both (they follow each other in user memory).
        assert_eq!(t.translate_range(0x1f00, 0x200, ACCESS_RO), Ok(0x7000_0f00));
        assert_eq!(
            t.translate_range(0x1f00, 0x200, ACCESS_WO),
            Err(Lookup::Denied)
        );
        assert_eq!(
            t.translate_range(0x2f00, 0x200, ACCESS_RO),
            Err(Lookup::Miss(0x3000))
        );
    }

    #[test]
    fn a_ring_part_split_in_user_memory_is_refused() {
        let mut s = [Mapping::default(); 8];
        let mut t = tlb(&mut s);
        t.update(0, 0x1000, 0x10_0000, ACCESS_RO).unwrap();
        t.update(0x1000, 0x1000, 0x30_0000, ACCESS_RO).unwrap();
        assert_eq!(
            t.translate_range(0xf00, 0x200, ACCESS_RO),
            Err(Lookup::Split)
        );
        assert_eq!(t.translate_range(0xf00, 0x100, ACCESS_RO), Ok(0x10_0f00));
    }

    #[test]
    fn update_replaces_what_it_overlaps_and_invalidate_removes_whole_mappings() {
        let mut s = [Mapping::default(); 8];
        let mut t = tlb(&mut s);
        t.update(0x1000, 0x3000, 0xa000, ACCESS_RO).unwrap();
        t.update(0x8000, 0x1000, 0xb000, ACCESS_RO).unwrap();
        t.update(0x2000, 0x1000, 0xc000, ACCESS_WO).unwrap();
        // The old 0x1000..0x4000 mapping is gone as a whole.
        assert_eq!(t.mappings().len(), 2);
        assert_eq!(t.translate(0x1000, 1, ACCESS_RO), Err(Lookup::Miss(0x1000)));
        assert_eq!(t.translate(0x2000, 1, ACCESS_WO), Ok((0xc000, 1)));
        // Invalidating one byte of a mapping forgets all of it.
        t.invalidate(0x8fff, 1);
        assert_eq!(t.translate(0x8000, 1, ACCESS_RO), Err(Lookup::Miss(0x8000)));
        // Empty and wrapping ranges overlap nothing.
        t.invalidate(0x2000, 0);
        t.invalidate(u64::MAX, 2);
        assert_eq!(t.mappings().len(), 1);
        t.invalidate(0, u64::MAX);
        assert!(t.mappings().is_empty());
    }

    #[test]
    fn update_refuses_wrapping_ranges_and_accepts_the_top_of_the_space() {
        let mut s = [Mapping::default(); 4];
        let mut t = tlb(&mut s);
        assert_eq!(
            t.update(u64::MAX - 10, 100, 0, ACCESS_RO),
            Err(Errno::Fault)
        );
        assert_eq!(
            t.update(u64::MAX - 0xfff, 0x1000, 0x5000, ACCESS_RO),
            Ok(())
        );
        assert_eq!(t.translate(u64::MAX, 8, ACCESS_RO), Ok((0x5fff, 1)));
        let mut none: [Mapping; 0] = [];
        assert_eq!(
            Iotlb::new(&mut none[..]).update(0, 1, 0, 1),
            Err(Errno::Inval)
        );
    }

    #[test]
    fn a_full_iotlb_forgets_its_oldest_mapping() {
        let mut s = [Mapping::default(); 3];
        let mut t = tlb(&mut s);
        for page in [5u64, 1, 3] {
            t.update(page << 12, 0x1000, page << 20, ACCESS_RO).unwrap();
        }
        t.update(2 << 12, 0x1000, 2 << 20, ACCESS_RO).unwrap();
        let firsts: [u64; 3] = core::array::from_fn(|i| t.mappings()[i].first >> 12);
        assert_eq!(firsts, [1, 2, 3]);
        assert_eq!(
            t.translate(5 << 12, 1, ACCESS_RO),
            Err(Lookup::Miss(5 << 12))
        );
    }

    fn message(format: u32, kind: u8, iova: u64, size: u64, uaddr: u64, perm: u8) -> [u8; 72] {
        let mut m = [0u8; 72];
        m[..4].copy_from_slice(&format.to_ne_bytes());
        m[4..8].copy_from_slice(&7u32.to_ne_bytes());
        m[8..16].copy_from_slice(&iova.to_ne_bytes());
        m[16..24].copy_from_slice(&size.to_ne_bytes());
        m[24..32].copy_from_slice(&uaddr.to_ne_bytes());
        m[32] = perm;
        m[33] = kind;
        m
    }

    #[test]
    fn written_messages_are_checked_in_upstreams_order() {
        let update = message(MSG_V2, IOTLB_UPDATE, 0x1000, 0x2000, 0x7000, 3);
        let expect = IotlbMsg {
            iova: 0x1000,
            size: 0x2000,
            uaddr: 0x7000,
            perm: 3,
            kind: IOTLB_UPDATE,
        };
        assert_eq!(parse_written(&update), Ok((MSG_V2, expect)));
        assert_eq!(parse_written(&update[..40]), Ok((MSG_V2, expect)));
        assert_eq!(parse_written(&update[..39]), Err(Errno::Inval));
        assert_eq!(parse_written(&update[..3]), Err(Errno::Inval));
        let v1 = message(MSG_V1, IOTLB_UPDATE, 0x1000, 0x2000, 0x7000, 3);
        assert_eq!(parse_written(&v1), Ok((MSG_V1, expect)));
        assert_eq!(
            parse_written(&message(7, IOTLB_UPDATE, 0, 1, 0, 1)),
            Err(Errno::Inval)
        );
        assert_eq!(
            parse_written(&message(MSG_V2, IOTLB_UPDATE, 0, 0, 0, 1)),
            Err(Errno::Inval)
        );
        // An invalidation of 0 bytes and unknown kinds are refused later.
        assert!(parse_written(&message(MSG_V2, IOTLB_INVALIDATE, 0, 0, 0, 0)).is_ok());
        assert!(parse_written(&message(MSG_V2, 9, 0, 0, 0, 0)).is_ok());
    }

    #[test]
    fn a_miss_reads_back_as_a_message() {
        let m = encode_miss(MSG_V2, 0x1234_5678, ACCESS_WO);
        assert_eq!(&m[..4], &MSG_V2.to_ne_bytes());
        let (format, body) = parse_written(&m).unwrap();
        assert_eq!(format, MSG_V2);
        assert_eq!(
            body,
            IotlbMsg {
                iova: 0x1234_5678,
                size: 0,
                uaddr: 0,
                perm: ACCESS_WO,
                kind: IOTLB_MISS,
            }
        );
        assert_eq!(
            &encode_miss(MSG_V1, 0, ACCESS_RO)[..4],
            &MSG_V1.to_ne_bytes()
        );
    }

    #[test]
    fn misses_are_bounded_per_queue_read_once_and_answered_by_covering_updates() {
        let mut m = Misses::<2>::new();
        assert!(!m.readable());
        m.record(1, 0x5000, ACCESS_RO);
        m.record(1, 0x6000, ACCESS_RO);
        m.record(0, 0x9000, ACCESS_WO);
        m.record(7, 0x1, ACCESS_WO);
        assert_eq!(m.total(), 3);
        assert!(m.readable());
        assert_eq!(m.next_unread(), Some((0x9000, ACCESS_WO)));
        assert_eq!(m.next_unread(), Some((0x6000, ACCESS_RO)));
        assert_eq!(m.next_unread(), None);
        assert!(!m.readable());
        // Missing again after it was read: handed out again.
        m.record(1, 0x6000, ACCESS_RO);
        assert_eq!(m.next_unread(), Some((0x6000, ACCESS_RO)));
        // An update not covering the address answers nothing.
        assert_eq!(m.answered(0x6001, 0x1000), 0);
        assert_eq!(m.answered(0x6000, 1), 0b10);
        assert_eq!(m.answered(0x8000, 0x2000), 0b01);
        assert_eq!(m.answered(0, u64::MAX), 0);
    }

    #[test]
    fn user_ranges_must_not_wrap() {
        assert!(user_range_fits(0, 0));
        assert!(user_range_fits(u64::MAX, 1));
        assert!(!user_range_fits(u64::MAX, 2));
        assert!(user_range_fits(0x1000, 0x1000));
    }
}
