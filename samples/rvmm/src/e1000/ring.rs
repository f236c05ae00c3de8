//! Descriptor ring geometry shared by TX and RX: a base address, a size in
//! 16-byte descriptors, and head/tail indices. The hardware owns the
//! descriptors from head up to (not including) tail; head == tail is empty.

/// Bytes per descriptor (legacy and extended alike).
pub const DESC_SIZE: u64 = 16;

/// A ring as the registers describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    /// Guest-physical address of descriptor 0.
    pub base: u64,
    /// Number of descriptors (0: no ring).
    pub size: u32,
    /// Next descriptor the device uses.
    pub head: u32,
    /// One past the last descriptor software handed over.
    pub tail: u32,
}

impl Ring {
    /// From the register values. The length is rounded down to a multiple
    /// of 128 bytes (8 descriptors), as the manual requires it to be.
    pub fn from_regs(bal: u32, bah: u32, len: u32, head: u32, tail: u32) -> Self {
        Ring {
            base: (u64::from(bah) << 32 | u64::from(bal)) & !0xF,
            size: (len & 0x000F_FF80) / DESC_SIZE as u32,
            head: head & 0xFFFF,
            tail: tail & 0xFFFF,
        }
    }

    /// Both indices inside a non-empty ring.
    pub fn valid(&self) -> bool {
        self.size != 0 && self.head < self.size && self.tail < self.size
    }

    /// Descriptors from `from` up to `to` going forward (0 when equal, and
    /// when either is outside the ring).
    pub fn distance(&self, from: u32, to: u32) -> u32 {
        if from >= self.size || to >= self.size {
            return 0;
        }
        (to + self.size - from) % self.size
    }

    /// Descriptors the device owns (head up to tail).
    pub fn owned(&self) -> u32 {
        self.distance(self.head, self.tail)
    }

    /// The index after `i`.
    pub fn next(&self, i: u32) -> u32 {
        if self.size == 0 {
            0
        } else {
            (i + 1) % self.size
        }
    }

    /// Guest-physical address of descriptor `i`.
    pub fn desc_addr(&self, i: u32) -> u64 {
        self.base.wrapping_add(u64::from(i) * DESC_SIZE)
    }
}

/// Little-endian u64 at `at` of a descriptor.
pub fn le_u64(d: &[u8; 16], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Little-endian u32 at `at` of a descriptor.
pub fn le_u32(d: &[u8; 16], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&d[at..at + 4]);
    u32::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        let r = Ring::from_regs(0x1008, 0x1, 200, 6, 2);
        assert_eq!(r.base, 0x1_0000_1000);
        assert_eq!(r.size, 8, "200 bytes rounds down to 128");
        assert!(r.valid());
        assert_eq!(r.owned(), 4);
        assert_eq!(r.next(7), 0);
        assert_eq!(r.desc_addr(3), 0x1_0000_1030);
        let empty = Ring::from_regs(0, 0, 100, 0, 0);
        assert!(!empty.valid());
        assert_eq!(empty.owned(), 0);
    }
}
