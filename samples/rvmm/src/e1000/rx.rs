//! Receive: a frame from the wire goes into the buffers of the descriptors
//! from RDH on (several if it is longer than the buffer size, EOP on the
//! last), each written back with its length and DD; RDH moves on and RXT0
//! (plus RXDMT0 below the free-descriptor threshold) is raised.
//!
//! The RX delay timer (RDTR) is not run: RXT0 is raised at once and RDTR
//! only enables RADV under Itr mitigation, as in QEMU.

use super::log::BadInput;
use super::mitigation::Mitigation;
use super::regs::{
    BPRC, GORCL, GPRC, ICR_RXDMT0, ICR_RXT0, MPRC, MTA, RA, RAH_AV, RCTL, RCTL_BAM, RCTL_BSEX,
    RCTL_BSIZE_SHIFT, RCTL_EN, RCTL_LPE, RCTL_MO_SHIFT, RCTL_MPE, RCTL_RDMTS_SHIFT, RCTL_SECRC,
    RCTL_UPE, RDBAH, RDBAL, RDH, RDLEN, RDT, RNBC, TORL, TPR,
};
use super::ring::Ring;
use super::{Dma, RxOutcome, E1000};

/// Longest frame accepted (with LPE set); longer ones are dropped.
pub const MAX_RX_FRAME: usize = 16 * 1024;
/// Longest frame without LPE: 1518 plus a VLAN tag, without the CRC.
pub const MAX_RX_FRAME_NO_LPE: usize = 1522;
/// Shorter frames are padded to this (64 bytes on the wire less the CRC).
pub const MIN_RX_FRAME: usize = 60;
/// RX status bits: descriptor done, end of packet, ignore checksum
/// indication (no RX checksum offload).
const STA_DD: u8 = 1 << 0;
const STA_EOP: u8 = 1 << 1;
const STA_IXSM: u8 = 1 << 2;

/// RX scratch space reused across frames (no allocation per frame).
#[derive(Default)]
pub struct RxScratch {
    bytes: Vec<u8>,
    buffers: Vec<u64>,
}

/// What the destination address is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dest {
    Unicast,
    Multicast,
    Broadcast,
}

/// CRC-32 (IEEE 802.3, reflected) lookup table.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// The Ethernet frame check sequence of `data`.
pub fn ethernet_fcs(data: &[u8]) -> u32 {
    !data.iter().fold(u32::MAX, |c, b| {
        CRC_TABLE[((c ^ u32::from(*b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

/// RX buffer size RCTL selects (BSIZE, scaled by 16 with BSEX; the
/// reserved BSEX+00 encoding reads as 2048).
pub fn rx_buffer_size(rctl: u32) -> usize {
    let bsize = (rctl >> RCTL_BSIZE_SHIFT) & 3;
    match (rctl & RCTL_BSEX != 0, bsize) {
        (false, 0) | (true, 0) => 2048,
        (false, 1) => 1024,
        (false, 2) => 512,
        (false, _) => 256,
        (true, 1) => 16384,
        (true, 2) => 8192,
        (true, _) => 4096,
    }
}

impl E1000 {
    /// The RX ring as the registers describe it.
    pub(super) fn rx_ring(&self) -> Ring {
        Ring::from_regs(
            self.reg(RDBAL),
            self.reg(RDBAH),
            self.reg(RDLEN),
            self.reg(RDH),
            self.reg(RDT),
        )
    }

    /// Whether a frame could go in now: RCTL.EN, bus mastering, a sane ring
    /// and at least one descriptor owned by the device. (A frame needing
    /// several buffers may still get `NoBuffer`.)
    pub fn can_receive(&self) -> bool {
        let ring = self.rx_ring();
        self.reg(RCTL) & RCTL_EN != 0 && self.pci.bus_master() && ring.valid() && ring.owned() > 0
    }

    /// Whether the address filters (RAL/RAH, MTA, RCTL's promiscuous and
    /// broadcast bits) let a frame for `dst` in.
    fn rx_accepts(&self, dst: &[u8; 6], kind: Dest) -> bool {
        let rctl = self.reg(RCTL);
        match kind {
            Dest::Broadcast => rctl & (RCTL_BAM | RCTL_MPE) != 0,
            Dest::Multicast => {
                if rctl & RCTL_MPE != 0 {
                    return true;
                }
                // The hash takes 12 bits of the last two bytes, where
                // RCTL.MO says.
                let raw = u32::from(dst[4]) | u32::from(dst[5]) << 8;
                let shift = match (rctl >> RCTL_MO_SHIFT) & 3 {
                    0 => 4,
                    1 => 3,
                    2 => 2,
                    _ => 0,
                };
                let hash = (raw >> shift) & 0xFFF;
                self.reg(MTA + u64::from(hash >> 5) * 4) & (1 << (hash & 31)) != 0
            }
            Dest::Unicast => {
                if rctl & RCTL_UPE != 0 {
                    return true;
                }
                let want_lo = u32::from_le_bytes([dst[0], dst[1], dst[2], dst[3]]);
                let want_hi = u32::from(dst[4]) | u32::from(dst[5]) << 8;
                (0..16u64).any(|n| {
                    let rah = self.reg(RA + 8 * n + 4);
                    rah & RAH_AV != 0 && rah & 0xFFFF == want_hi && self.reg(RA + 8 * n) == want_lo
                })
            }
        }
    }

    /// Puts `frame` (an Ethernet frame without CRC) into the RX ring.
    ///
    /// `NoBuffer`: RX disabled, no bus mastering, no ring yet, or not
    /// enough descriptors: keep the frame and retry after the guest writes
    /// RDT (or RCTL). `Dropped`: it can never go in (too long, the ring
    /// state or memory is bad). `Filtered`: not addressed to this NIC.
    pub fn receive(&mut self, frame: &[u8], now_ns: u64, dma: &dyn Dma) -> RxOutcome {
        let rctl = self.reg(RCTL);
        if rctl & RCTL_EN == 0 {
            return RxOutcome::NoBuffer;
        }
        if !self.pci.bus_master() {
            self.log.report(BadInput::DmaWithoutBusMaster, || {
                "RX enabled while PCI bus mastering is disabled; the device cannot DMA".into()
            });
            return RxOutcome::NoBuffer;
        }
        let ring = self.rx_ring();
        if ring.size == 0 {
            return RxOutcome::NoBuffer;
        }
        if !ring.valid() {
            let (h, t, s) = (ring.head, ring.tail, ring.size);
            self.log.report(BadInput::RxRingInvalid, || {
                format!("RDH {h} / RDT {t} outside the {s}-descriptor RX ring; frames dropped")
            });
            return self.rx_drop();
        }
        let max = if rctl & RCTL_LPE != 0 {
            MAX_RX_FRAME
        } else {
            MAX_RX_FRAME_NO_LPE
        };
        if frame.len() < 6 || frame.len() > max {
            return self.rx_drop();
        }
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&frame[..6]);
        let kind = if dst == [0xFF; 6] {
            Dest::Broadcast
        } else if dst[0] & 1 != 0 {
            Dest::Multicast
        } else {
            Dest::Unicast
        };
        if !self.rx_accepts(&dst, kind) {
            self.counters.rx_filtered += 1;
            return RxOutcome::Filtered;
        }

        let mut scratch = std::mem::take(&mut self.rx_scratch);
        let outcome = self.rx_place(frame, kind, &ring, &mut scratch, now_ns, dma);
        self.rx_scratch = scratch;
        outcome
    }

    fn rx_drop(&mut self) -> RxOutcome {
        self.counters.rx_dropped += 1;
        RxOutcome::Dropped
    }

    /// Writes the (padded, CRC-appended) frame into the ring.
    fn rx_place(
        &mut self,
        frame: &[u8],
        kind: Dest,
        ring: &Ring,
        scratch: &mut RxScratch,
        now: u64,
        dma: &dyn Dma,
    ) -> RxOutcome {
        let rctl = self.reg(RCTL);
        let bytes = &mut scratch.bytes;
        bytes.clear();
        bytes.extend_from_slice(frame);
        if bytes.len() < MIN_RX_FRAME {
            bytes.resize(MIN_RX_FRAME, 0);
        }
        if rctl & RCTL_SECRC == 0 {
            let fcs = ethernet_fcs(bytes);
            bytes.extend_from_slice(&fcs.to_le_bytes());
        }
        let total = bytes.len();
        let buf_size = rx_buffer_size(rctl);
        let needed = total.div_ceil(buf_size);
        // The device can own at most size - 1 descriptors.
        if needed >= ring.size as usize {
            let s = ring.size;
            self.log.report(BadInput::RxFrameTooBigForRing, || {
                format!(
                    "a {total}-byte frame needs {needed} {buf_size}-byte buffers; \
                     the RX ring has {s} descriptors; dropped"
                )
            });
            return self.rx_drop();
        }
        if (ring.owned() as usize) < needed {
            self.counters.rx_no_buffer += 1;
            self.stat_add(RNBC, 1);
            return RxOutcome::NoBuffer;
        }
        // Read every buffer address first so a bad descriptor changes nothing.
        scratch.buffers.clear();
        let mut idx = ring.head;
        for _ in 0..needed {
            let addr = ring.desc_addr(idx);
            let mut b = [0u8; 8];
            if !dma.read(addr, &mut b) {
                self.log.report(BadInput::RxDescriptorOutsideRam, || {
                    format!("RX descriptor at {addr:#x} is outside guest RAM; frame dropped")
                });
                return self.rx_drop();
            }
            scratch.buffers.push(u64::from_le_bytes(b));
            idx = ring.next(idx);
        }
        let mut idx = ring.head;
        for (i, (chunk, &buffer)) in bytes.chunks(buf_size).zip(&scratch.buffers).enumerate() {
            if buffer == 0 || !dma.write(buffer, chunk) {
                let len = chunk.len();
                self.log.report(BadInput::RxBufferOutsideRam, || {
                    format!("RX buffer [{buffer:#x}, +{len:#x}) is outside guest RAM; data lost")
                });
            }
            let mut status = STA_DD | STA_IXSM;
            if i + 1 == needed {
                status |= STA_EOP;
            }
            let len = (chunk.len() as u16).to_le_bytes();
            // length, checksum, status, errors, special.
            let wb = [len[0], len[1], 0, 0, status, 0, 0, 0];
            let addr = ring.desc_addr(idx);
            if !dma.write(addr.wrapping_add(8), &wb) {
                self.log.report(BadInput::RxDescriptorOutsideRam, || {
                    format!("RX descriptor at {addr:#x}: write-back failed")
                });
            }
            idx = ring.next(idx);
        }
        self.set_reg(RDH, idx);

        let len = total as u64;
        self.counters.rx_packets += 1;
        self.counters.rx_bytes += frame.len() as u64;
        self.stat_add(GPRC, 1);
        self.stat_add(TPR, 1);
        self.stat_add64(GORCL, len);
        self.stat_add64(TORL, len);
        match kind {
            Dest::Broadcast => self.stat_add(BPRC, 1),
            Dest::Multicast => self.stat_add(MPRC, 1),
            Dest::Unicast => {}
        }

        let mut causes = ICR_RXT0;
        let free = ring.distance(idx, ring.tail);
        // RDMTS: 1/2, 1/4, 1/8 of the ring (the reserved 11 reads as 1/8).
        let shift = (((rctl >> RCTL_RDMTS_SHIFT) & 3) + 1).min(3);
        if free <= ring.size >> shift {
            causes |= ICR_RXDMT0;
        }
        let d = self.delays();
        if self.irq.mode() == Mitigation::Batch {
            self.irq.batch_rx(causes, now, d);
        } else {
            self.irq.raise(causes, now, d);
        }
        RxOutcome::Delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcs_matches_crc32_check_value() {
        assert_eq!(ethernet_fcs(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn buffer_sizes() {
        assert_eq!(rx_buffer_size(0), 2048);
        assert_eq!(rx_buffer_size(1 << RCTL_BSIZE_SHIFT), 1024);
        assert_eq!(rx_buffer_size(3 << RCTL_BSIZE_SHIFT), 256);
        assert_eq!(rx_buffer_size(RCTL_BSEX | 1 << RCTL_BSIZE_SHIFT), 16384);
        assert_eq!(rx_buffer_size(RCTL_BSEX | 3 << RCTL_BSIZE_SHIFT), 4096);
    }
}
