// SPDX-License-Identifier: GPL-2.0

//! Split virtqueue parsing: descriptor chains (direct and indirect), the avail
//! index sanity check, and the event-index arithmetic.
//!
//! Everything the guest controls is read once into a local ([`Desc`]) and
//! validated before use; every failure is a [`RingFault`], never a panic, and
//! every walk is bounded twice: by the ring size (loops fail) and by a budget
//! of descriptor reads the caller gives (a guest cannot make one chain cost
//! more than that, however many zero-length descriptors it strings together).

use super::ring_fault::RingFault;

/// `VRING_DESC_F_NEXT`: the chain continues at `next`.
pub const VRING_DESC_F_NEXT: u16 = 1;
/// `VRING_DESC_F_WRITE`: the device writes this buffer.
pub const VRING_DESC_F_WRITE: u16 = 2;
/// `VRING_DESC_F_INDIRECT`: the buffer is a table of descriptors.
pub const VRING_DESC_F_INDIRECT: u16 = 4;
/// `VRING_AVAIL_F_NO_INTERRUPT`: the driver needs no used-buffer notification.
pub const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// `VRING_USED_F_NO_NOTIFY`: the device needs no avail notification (kick).
pub const VRING_USED_F_NO_NOTIFY: u16 = 1;
/// Size of one descriptor.
pub const DESC_SIZE: u64 = 16;
/// Largest indirect table (upstream's limit: `USHRT_MAX + 1` entries).
pub const MAX_INDIRECT: u64 = 0x1_0000;
/// Most descriptors (ring and indirect, zero-length ones included) read for
/// one packet: QEMU's bound on a chain (`VIRTQUEUE_MAX_SIZE`). A Linux guest
/// uses at most a few dozen; upstream vhost allows ring size + 65536.
pub const PACKET_DESC_LIMIT: u32 = 1024;
/// Size of the avail ring's header (`flags`, `idx`) before its entries.
pub const AVAIL_RING_OFFSET: u64 = 4;
/// Size of one avail ring entry (a head index).
pub const AVAIL_ELEM_SIZE: u64 = 2;
/// Offset of the avail index in the avail ring.
pub const AVAIL_IDX_OFFSET: u64 = 2;
/// Size of the used ring's header (`flags`, `idx`) before its elements.
pub const USED_RING_OFFSET: u64 = 4;
/// Size of one used element (`id: u32`, `len: u32`).
pub const USED_ELEM_SIZE: u64 = 8;
/// Offset of the used index in the used ring.
pub const USED_IDX_OFFSET: u64 = 2;

/// Offset of `used_event` in an avail ring of `num` entries (after the entries).
pub const fn used_event_offset(num: u16) -> u64 {
    AVAIL_RING_OFFSET + AVAIL_ELEM_SIZE * num as u64
}

/// Offset of `avail_event` in a used ring of `num` entries (after the elements).
pub const fn avail_event_offset(num: u16) -> u64 {
    USED_RING_OFFSET + USED_ELEM_SIZE * num as u64
}

/// One descriptor, decoded from its 16 little-endian bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    /// Guest-physical buffer address.
    pub addr: u64,
    /// Buffer length.
    pub len: u32,
    /// `VRING_DESC_F_*`.
    pub flags: u16,
    /// Next descriptor in the chain, if `NEXT` is set.
    pub next: u16,
}

impl Desc {
    /// Decodes a descriptor from guest memory bytes.
    pub fn from_le_bytes(b: [u8; 16]) -> Self {
        let [a0, a1, a2, a3, a4, a5, a6, a7, l0, l1, l2, l3, f0, f1, n0, n1] = b;
        Self {
            addr: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            flags: u16::from_le_bytes([f0, f1]),
            next: u16::from_le_bytes([n0, n1]),
        }
    }

    /// Encodes the descriptor (for tests and drivers).
    pub fn to_le_bytes(self) -> [u8; 16] {
        let mut b = [0; 16];
        b[..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12..14].copy_from_slice(&self.flags.to_le_bytes());
        b[14..].copy_from_slice(&self.next.to_le_bytes());
        b
    }

    fn has(self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// Where descriptors are read from: the ring's table (user memory) or an
/// indirect table (guest-physical memory). Reads may fail
/// ([`RingFault::DescUnreadable`], [`RingFault::IndirectUnreadable`]).
pub trait DescReader {
    /// Reads entry `index` of the ring's descriptor table.
    fn ring_desc(&mut self, index: u16) -> Result<Desc, RingFault>;
    /// Reads entry `index` of the indirect table at guest-physical `table`.
    fn indirect_desc(&mut self, table: u64, index: u16) -> Result<Desc, RingFault>;
}

/// One buffer of a chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// Whether the device writes it (RX) rather than reads it (TX).
    pub writable: bool,
}

/// A parsed chain: its head (what goes into the used ring) and how many of the
/// caller's segments it filled, readable ones first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The head descriptor index.
    pub head: u16,
    /// Number of readable (device-reads) segments, at the front.
    pub readable: usize,
    /// Number of writable segments, after the readable ones.
    pub writable: usize,
}

impl Chain {
    /// Total number of segments.
    pub fn len(&self) -> usize {
        self.readable + self.writable
    }

    /// Whether the chain has no segment (only zero-length buffers, none kept).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Walks the chain starting at `head` of a ring of `num` entries, filling
/// `segments`; each descriptor read (ring or indirect) takes one from
/// `budget`. Faults, as upstream's `vhost_get_vq_desc` refuses them:
/// head or `next` out of range, a chain longer than the ring or its indirect
/// table (a loop), an indirect table of a bad length, too big, nested or
/// chained, a readable buffer after a writable one, more segments than
/// `segments` holds, unreadable descriptors; and, beyond upstream, a chain
/// that needs more reads than `budget` holds.
///
/// Zero-length buffers are skipped (nothing to transfer) but still cost a read.
pub fn walk_chain(
    reader: &mut impl DescReader,
    num: u16,
    head: u16,
    segments: &mut [Segment],
    budget: &mut u32,
) -> Result<Chain, RingFault> {
    if num == 0 || head >= num {
        return Err(RingFault::HeadOutOfRange);
    }
    let mut chain = Chain {
        head,
        readable: 0,
        writable: 0,
    };
    let mut index = head;
    let mut seen: u32 = 0;
    loop {
        seen += 1;
        if seen > u32::from(num) {
            return Err(RingFault::ChainLoop);
        }
        take(budget)?;
        let desc = reader.ring_desc(index)?;
        if desc.has(VRING_DESC_F_INDIRECT) {
            if desc.has(VRING_DESC_F_NEXT) {
                return Err(RingFault::IndirectChained);
            }
            walk_indirect(reader, desc, segments, &mut chain, budget)?;
        } else {
            push(segments, &mut chain, desc)?;
        }
        if !desc.has(VRING_DESC_F_NEXT) {
            return Ok(chain);
        }
        if desc.next >= num {
            return Err(RingFault::NextOutOfRange);
        }
        index = desc.next;
    }
}

/// Takes one descriptor read from `budget`.
fn take(budget: &mut u32) -> Result<(), RingFault> {
    *budget = budget.checked_sub(1).ok_or(RingFault::TooManyDescriptors)?;
    Ok(())
}

fn walk_indirect(
    reader: &mut impl DescReader,
    table: Desc,
    segments: &mut [Segment],
    chain: &mut Chain,
    budget: &mut u32,
) -> Result<(), RingFault> {
    let len = u64::from(table.len);
    if len == 0 || len % DESC_SIZE != 0 {
        return Err(RingFault::IndirectBadLength);
    }
    let count = len / DESC_SIZE;
    if count > MAX_INDIRECT {
        return Err(RingFault::IndirectTooBig);
    }
    let mut index: u64 = 0;
    let mut seen: u64 = 0;
    loop {
        seen += 1;
        if seen > count {
            return Err(RingFault::ChainLoop);
        }
        take(budget)?;
        // `index < count <= 65536`, so it fits in u16 except for 65536 itself,
        // which the range check below already refused.
        let desc = reader.indirect_desc(table.addr, index as u16)?;
        if desc.has(VRING_DESC_F_INDIRECT) {
            return Err(RingFault::IndirectNested);
        }
        push(segments, chain, desc)?;
        if !desc.has(VRING_DESC_F_NEXT) {
            return Ok(());
        }
        index = u64::from(desc.next);
        if index >= count {
            return Err(RingFault::NextOutOfRange);
        }
    }
}

fn push(segments: &mut [Segment], chain: &mut Chain, desc: Desc) -> Result<(), RingFault> {
    let writable = desc.has(VRING_DESC_F_WRITE);
    if !writable && chain.writable > 0 {
        return Err(RingFault::ReadableAfterWritable);
    }
    if desc.len == 0 {
        return Ok(());
    }
    let slot = segments
        .get_mut(chain.len())
        .ok_or(RingFault::TooManySegments)?;
    *slot = Segment {
        addr: desc.addr,
        len: desc.len,
        writable,
    };
    if writable {
        chain.writable += 1;
    } else {
        chain.readable += 1;
    }
    Ok(())
}

/// How many new entries the guest made available since `last_avail_idx`;
/// a fault if the index moved by more than the ring size (upstream: "Guest
/// moved avail index").
pub fn pending(avail_idx: u16, last_avail_idx: u16, num: u16) -> Result<u16, RingFault> {
    let pending = avail_idx.wrapping_sub(last_avail_idx);
    if u32::from(pending) > u32::from(num) {
        return Err(RingFault::AvailIndexJump);
    }
    Ok(pending)
}

/// How many of `heads` are consecutive table entries from `heads[0]` on, and
/// within the table of `num` entries: the stretch of the descriptor table
/// that one copy can read ahead (a guest using its ring in order publishes
/// heads that way).
pub fn consecutive_heads(heads: &[u16], num: u16) -> usize {
    let Some(&first) = heads.first() else {
        return 0;
    };
    let room = usize::from(num).saturating_sub(usize::from(first));
    heads
        .iter()
        .take(room)
        .zip(first..)
        .take_while(|&(&head, expected)| head == expected)
        .count()
}

/// The event-index rule (`vring_need_event`): notify if `event` lies in the
/// window of indexes `(old, new]` just published, with wrap-around.
pub const fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

/// Decides when the device signals the call eventfd after publishing used
/// entries (upstream's `vhost_notify`), remembering what it last signalled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallSuppression {
    signalled_used: u16,
    valid: bool,
}

/// What the driver's side of the ring says about interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverState {
    /// `EVENT_IDX` negotiated.
    pub event_idx: bool,
    /// `NOTIFY_ON_EMPTY` negotiated.
    pub notify_on_empty: bool,
    /// The avail ring's flags.
    pub avail_flags: u16,
    /// `used_event` (meaningful with `EVENT_IDX`).
    pub used_event: u16,
    /// Whether the avail ring is empty (no buffers left for the device).
    pub avail_empty: bool,
}

impl CallSuppression {
    /// Forgets what was signalled (queue (re)started).
    pub fn reset(&mut self) {
        self.valid = false;
    }

    /// Whether to signal now that the used index is `used_idx`.
    pub fn should_signal(&mut self, used_idx: u16, driver: DriverState) -> bool {
        if driver.notify_on_empty && driver.avail_empty {
            return true;
        }
        if !driver.event_idx {
            return driver.avail_flags & VRING_AVAIL_F_NO_INTERRUPT == 0;
        }
        let (old, was_valid) = (self.signalled_used, self.valid);
        self.signalled_used = used_idx;
        self.valid = true;
        !was_valid || need_event(driver.used_event, used_idx, old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_heads_stop_at_a_gap_and_the_table_end() {
        assert_eq!(consecutive_heads(&[], 8), 0);
        assert_eq!(consecutive_heads(&[3], 8), 1);
        assert_eq!(consecutive_heads(&[3, 4, 5, 9, 10], 8), 3);
        assert_eq!(consecutive_heads(&[5, 6, 7, 8, 9], 8), 3);
        assert_eq!(consecutive_heads(&[7, 0, 1], 8), 1);
        assert_eq!(consecutive_heads(&[9, 10], 8), 0);
        assert_eq!(consecutive_heads(&[2, 2, 3], 8), 1);
        assert_eq!(consecutive_heads(&[65535, 0], 0), 0);
    }

    /// A ring table and indirect tables in plain arrays.
    struct Tables {
        ring: [Desc; 8],
        indirect: [Desc; 8],
        indirect_addr: u64,
    }

    impl DescReader for Tables {
        fn ring_desc(&mut self, index: u16) -> Result<Desc, RingFault> {
            self.ring
                .get(usize::from(index))
                .copied()
                .ok_or(RingFault::DescUnreadable)
        }
        fn indirect_desc(&mut self, table: u64, index: u16) -> Result<Desc, RingFault> {
            if table != self.indirect_addr {
                return Err(RingFault::IndirectUnreadable);
            }
            self.indirect
                .get(usize::from(index))
                .copied()
                .ok_or(RingFault::IndirectUnreadable)
        }
    }

    fn d(addr: u64, len: u32, flags: u16, next: u16) -> Desc {
        Desc {
            addr,
            len,
            flags,
            next,
        }
    }

    /// A budget no well-formed chain of these tests exhausts.
    fn budget() -> u32 {
        PACKET_DESC_LIMIT
    }

    fn tables() -> Tables {
        Tables {
            ring: [Desc::default(); 8],
            indirect: [Desc::default(); 8],
            indirect_addr: 0x9000,
        }
    }

    const N: u16 = VRING_DESC_F_NEXT;
    const W: u16 = VRING_DESC_F_WRITE;
    const I: u16 = VRING_DESC_F_INDIRECT;

    #[test]
    fn descriptor_bytes_roundtrip() {
        let desc = d(0x1122_3344_5566_7788, 0x99aa_bbcc, 0xddee, 0xff01);
        assert_eq!(Desc::from_le_bytes(desc.to_le_bytes()), desc);
        assert_eq!(desc.to_le_bytes()[0], 0x88);
    }

    #[test]
    fn direct_chain_readable_then_writable() {
        let mut t = tables();
        t.ring[2] = d(0x1000, 12, N, 5);
        t.ring[5] = d(0x2000, 100, N | W, 1);
        t.ring[1] = d(0x3000, 0, N | W, 0); // zero-length: skipped
        t.ring[0] = d(0x4000, 50, W, 0);
        let mut segs = [Segment::default(); 4];
        let chain = walk_chain(&mut t, 8, 2, &mut segs, &mut budget()).unwrap();
        assert_eq!(
            chain,
            Chain {
                head: 2,
                readable: 1,
                writable: 2
            }
        );
        assert_eq!(
            segs[0],
            Segment {
                addr: 0x1000,
                len: 12,
                writable: false
            }
        );
        assert_eq!(
            segs[2],
            Segment {
                addr: 0x4000,
                len: 50,
                writable: true
            }
        );
    }

    #[test]
    fn hostile_direct_chains_are_refused() {
        let mut segs = [Segment::default(); 16];
        let mut t = tables();
        assert_eq!(
            walk_chain(&mut t, 8, 8, &mut segs, &mut budget()),
            Err(RingFault::HeadOutOfRange),
            "head out of range"
        );
        t.ring[0] = d(0x1000, 1, N, 9);
        assert_eq!(
            walk_chain(&mut t, 8, 0, &mut segs, &mut budget()),
            Err(RingFault::NextOutOfRange),
            "next out of range"
        );
        t.ring[0] = d(0x1000, 1, N, 1);
        t.ring[1] = d(0x1000, 1, N, 0);
        assert_eq!(
            walk_chain(&mut t, 8, 0, &mut segs, &mut budget()),
            Err(RingFault::ChainLoop),
            "loop"
        );
        t.ring[0] = d(0x1000, 1, N | W, 1);
        t.ring[1] = d(0x1000, 1, 0, 0);
        assert_eq!(
            walk_chain(&mut t, 8, 0, &mut segs, &mut budget()),
            Err(RingFault::ReadableAfterWritable),
            "readable after writable"
        );
        let mut small = [Segment::default(); 1];
        t.ring[0] = d(0x1000, 1, N, 1);
        t.ring[1] = d(0x2000, 1, 0, 0);
        assert_eq!(
            walk_chain(&mut t, 8, 0, &mut small, &mut budget()),
            Err(RingFault::TooManySegments),
            "too many segments"
        );
        assert_eq!(
            walk_chain(&mut t, 0, 0, &mut segs, &mut budget()),
            Err(RingFault::HeadOutOfRange),
            "empty ring"
        );
    }

    #[test]
    fn a_chain_through_every_entry_is_fine_one_more_is_a_loop() {
        let mut t = tables();
        for i in 0..8u16 {
            t.ring[usize::from(i)] = d(0x1000 * u64::from(i), 1, N, (i + 1) % 8);
        }
        t.ring[7].flags = 0;
        let mut segs = [Segment::default(); 8];
        assert_eq!(
            walk_chain(&mut t, 8, 0, &mut segs, &mut budget()).map(|c| c.len()),
            Ok(8)
        );
        t.ring[7].flags = N;
        assert_eq!(
            walk_chain(&mut t, 8, 0, &mut segs, &mut budget()),
            Err(RingFault::ChainLoop)
        );
    }

    #[test]
    fn indirect_tables() {
        let mut t = tables();
        t.indirect[0] = d(0x1000, 10, N, 1);
        t.indirect[1] = d(0x2000, 20, W, 0);
        t.ring[3] = d(0x9000, 32, I, 0);
        let mut segs = [Segment::default(); 4];
        let chain = walk_chain(&mut t, 8, 3, &mut segs, &mut budget()).unwrap();
        assert_eq!(
            chain,
            Chain {
                head: 3,
                readable: 1,
                writable: 1
            }
        );

        t.ring[3] = d(0x9000, 33, I, 0);
        assert_eq!(
            walk_chain(&mut t, 8, 3, &mut segs, &mut budget()),
            Err(RingFault::IndirectBadLength),
            "len not a multiple of 16"
        );
        t.ring[3] = d(0x9000, 0, I, 0);
        assert_eq!(
            walk_chain(&mut t, 8, 3, &mut segs, &mut budget()),
            Err(RingFault::IndirectBadLength),
            "empty table"
        );
        t.ring[3] = d(0x9000, 16 * 0x1_0001, I, 0);
        assert_eq!(
            walk_chain(&mut t, 8, 3, &mut segs, &mut budget()),
            Err(RingFault::IndirectTooBig),
            "huge table"
        );
        t.ring[3] = d(0x9000, 32, I | N, 4);
        assert_eq!(
            walk_chain(&mut t, 8, 3, &mut segs, &mut budget()),
            Err(RingFault::IndirectChained),
            "indirect that chains"
        );
        t.ring[3] = d(0x9000, 32, I, 0);
        t.indirect[1] = d(0x9000, 16, I, 0);
        assert_eq!(
            walk_chain(&mut t, 8, 3, &mut segs, &mut budget()),
            Err(RingFault::IndirectNested),
            "nested indirect"
        );
        t.indirect[1] = d(0x2000, 20, N | W, 0);
        assert_eq!(
            walk_chain(&mut t, 8, 3, &mut segs, &mut budget()),
            Err(RingFault::ChainLoop),
            "loop in indirect"
        );
        t.indirect[1] = d(0x2000, 20, N | W, 2);
        assert_eq!(
            walk_chain(&mut t, 8, 3, &mut segs, &mut budget()),
            Err(RingFault::NextOutOfRange),
            "next beyond table"
        );
        t.ring[3] = d(0x5000, 32, I, 0);
        assert_eq!(
            walk_chain(&mut t, 8, 3, &mut segs, &mut budget()),
            Err(RingFault::IndirectUnreadable),
            "unreadable table"
        );
    }

    #[test]
    fn every_descriptor_read_costs_budget_zero_length_ones_too() {
        let mut t = tables();
        // A ring chain of zero-length buffers ending in an indirect table of
        // zero-length buffers: no segment, 8 + 8 reads.
        for i in 0..7u16 {
            t.ring[usize::from(i)] = d(0x1000, 0, N, i + 1);
        }
        t.ring[7] = d(0x9000, 16 * 8, I, 0);
        for i in 0..7u16 {
            t.indirect[usize::from(i)] = d(0x2000, 0, N, i + 1);
        }
        t.indirect[7] = d(0x2000, 0, 0, 0);
        let mut segs = [Segment::default(); 4];
        let mut budget = 16;
        let chain = walk_chain(&mut t, 8, 0, &mut segs, &mut budget).unwrap();
        assert!(chain.is_empty());
        assert_eq!(budget, 0);
        // One read short: refused, whatever is left of the chain.
        let mut budget = 15;
        assert_eq!(
            walk_chain(&mut t, 8, 0, &mut segs, &mut budget),
            Err(RingFault::TooManyDescriptors)
        );
        assert_eq!(budget, 0);
        // An empty budget refuses even a one-descriptor chain.
        t.ring[0] = d(0x1000, 10, 0, 0);
        assert_eq!(
            walk_chain(&mut t, 8, 0, &mut segs, &mut 0),
            Err(RingFault::TooManyDescriptors)
        );
        let mut budget = 1;
        assert_eq!(
            walk_chain(&mut t, 8, 0, &mut segs, &mut budget).map(|c| c.len()),
            Ok(1)
        );
    }

    #[test]
    fn layout_offsets() {
        assert_eq!(used_event_offset(256), 516);
        assert_eq!(avail_event_offset(256), 2052);
        assert_eq!(used_event_offset(0x8000), 4 + 0x10000);
    }

    #[test]
    fn avail_index_may_not_jump_past_the_ring() {
        assert_eq!(pending(5, 3, 8), Ok(2));
        assert_eq!(pending(3, 0xfffe, 8), Ok(5));
        assert_eq!(pending(11, 3, 8), Ok(8));
        assert_eq!(pending(12, 3, 8), Err(RingFault::AvailIndexJump));
        assert_eq!(pending(2, 3, 8), Err(RingFault::AvailIndexJump));
    }

    #[test]
    fn event_index_rule_with_wrap_around() {
        // Published (old, new] = (10, 15]: notify iff the driver's event is 10..=14.
        assert!(need_event(10, 15, 10));
        assert!(need_event(14, 15, 10));
        assert!(!need_event(15, 15, 10));
        assert!(!need_event(9, 15, 10));
        // Across the 16-bit wrap: (0xfffe, 2].
        assert!(need_event(0xfffe, 2, 0xfffe));
        assert!(need_event(0xffff, 2, 0xfffe));
        assert!(need_event(1, 2, 0xfffe));
        assert!(!need_event(2, 2, 0xfffe));
        assert!(!need_event(0xfffd, 2, 0xfffe));
        // Nothing published: never.
        assert!(!need_event(7, 7, 7));
    }

    #[test]
    fn call_suppression() {
        let driver = DriverState {
            event_idx: true,
            notify_on_empty: false,
            avail_flags: 0,
            used_event: 0,
            avail_empty: false,
        };
        let mut s = CallSuppression::default();
        assert!(s.should_signal(1, driver), "first signal is always sent");
        assert!(!s.should_signal(
            2,
            DriverState {
                used_event: 0,
                ..driver
            }
        ));
        assert!(s.should_signal(
            5,
            DriverState {
                used_event: 3,
                ..driver
            }
        ));
        assert!(!s.should_signal(
            6,
            DriverState {
                used_event: 3,
                ..driver
            }
        ));
        s.reset();
        assert!(s.should_signal(
            6,
            DriverState {
                used_event: 3,
                ..driver
            }
        ));
        let legacy = DriverState {
            event_idx: false,
            ..driver
        };
        assert!(s.should_signal(7, legacy));
        assert!(!s.should_signal(
            8,
            DriverState {
                avail_flags: VRING_AVAIL_F_NO_INTERRUPT,
                ..legacy
            }
        ));
        let empty = DriverState {
            notify_on_empty: true,
            avail_empty: true,
            avail_flags: 1,
            ..legacy
        };
        assert!(s.should_signal(9, empty));
    }
}
