// SPDX-License-Identifier: GPL-2.0

//! The dirty log of live migration (`VHOST_F_LOG_ALL`): a bitmap in the
//! VMM's memory with one bit per 4 KiB page of guest-physical memory, bit
//! `page % 8` of byte `page / 8` (the layout of upstream's `log_write`, which
//! QEMU reads). The device sets the bits of every page it writes — RX
//! buffers, and with `VHOST_VRING_F_LOG` the used ring at its guest-physical
//! log address — after the write, so that a page copied by the migration
//! before the write is copied again.

use super::ring_config::LOG_PAGE_SIZE;

/// One bit of the log: the byte at `log_base + byte`, bit `bit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogBit {
    /// Offset of the byte from the log's base.
    pub byte: u64,
    /// The bit within the byte (0..8).
    pub bit: u8,
}

/// The pages `[addr, addr + len)` touches, as log bits; none for `len` 0
/// (a zero-length write dirties nothing: upstream's fix for CVE-2019-14835's
/// neighbourhood). The range is clamped at the end of the address space.
pub fn dirty_bits(addr: u64, len: u64) -> impl Iterator<Item = LogBit> {
    let first = addr / LOG_PAGE_SIZE;
    let last = match len {
        0 => None,
        _ => Some(addr.saturating_add(len - 1) / LOG_PAGE_SIZE),
    };
    let pages = match last {
        Some(last) => first..last.saturating_add(1),
        None => 1..1,
    };
    pages.map(|page| LogBit {
        byte: page / 8,
        bit: (page % 8) as u8,
    })
}

/// The guest-physical ranges a packet of `written` bytes dirtied in the
/// writable buffers `buffers` (in chain order, `(addr, len)` each): each
/// buffer up to what is left of `written`, as upstream's `vhost_log_write`
/// walks its log.
pub fn written_ranges(
    buffers: impl IntoIterator<Item = (u64, u32)>,
    written: u64,
) -> impl Iterator<Item = (u64, u64)> {
    let mut left = written;
    buffers.into_iter().map_while(move |(addr, len)| {
        if left == 0 {
            return None;
        }
        let n = left.min(u64::from(len));
        left -= n;
        Some((addr, n))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(addr: u64, len: u64) -> [u64; 8] {
        let mut pages = [u64::MAX; 8];
        for (slot, b) in pages.iter_mut().zip(dirty_bits(addr, len)) {
            *slot = b.byte * 8 + u64::from(b.bit);
        }
        pages
    }

    #[test]
    fn one_bit_per_page_touched() {
        const NONE: u64 = u64::MAX;
        assert_eq!(bits(0, 1), [0, NONE, NONE, NONE, NONE, NONE, NONE, NONE]);
        assert_eq!(bits(0xfff, 2), [0, 1, NONE, NONE, NONE, NONE, NONE, NONE]);
        assert_eq!(
            bits(0x1000, 0x1000),
            [1, NONE, NONE, NONE, NONE, NONE, NONE, NONE]
        );
        assert_eq!(
            bits(0x1000, 0x1001),
            [1, 2, NONE, NONE, NONE, NONE, NONE, NONE]
        );
        assert_eq!(bits(0x5000, 0), [NONE; 8]);
        // Page 9 is bit 1 of byte 1.
        assert_eq!(
            dirty_bits(0x9000, 4).next(),
            Some(LogBit { byte: 1, bit: 1 })
        );
        // The end of the address space does not wrap.
        assert_eq!(dirty_bits(u64::MAX - 1, 100).count(), 1);
    }

    #[test]
    fn a_packet_dirties_its_buffers_up_to_what_was_written() {
        let bufs = [(0x1000, 100), (0x3000, 0x2000), (0x9000, 50)];
        let mut got = [(0u64, 0u64); 3];
        let n = written_ranges(bufs, 1000)
            .zip(got.iter_mut())
            .map(|(r, slot)| *slot = r)
            .count();
        assert_eq!(n, 2);
        assert_eq!(got[..2], [(0x1000, 100), (0x3000, 900)]);
        assert_eq!(written_ranges(bufs, 0).count(), 0);
        assert_eq!(written_ranges(bufs, 1 << 20).count(), 3);
    }
}
