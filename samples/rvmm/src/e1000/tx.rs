//! Transmit: on a TDT write (or TCTL enable) the device walks the ring from
//! TDH to TDT, gathers buffers until a descriptor with EOP, hands the frame
//! to the wire, writes DD back into descriptors that ask for it (RS), and
//! moves TDH. No offloads: context descriptors are consumed and ignored,
//! checksum-insertion requests are sent as is (noted once), segmentation
//! requests are dropped (noted once).

use super::log::BadInput;
use super::mitigation::Mitigation;
use super::regs::{
    BPTC, GOTCL, GPTC, ICR_TXDW, ICR_TXQE, MPTC, TCTL, TCTL_EN, TDBAH, TDBAL, TDH, TDLEN, TDT,
    TOTL, TPT,
};
use super::ring::{le_u32, le_u64, Ring};
use super::{Dma, Wire, E1000};

/// Longest frame the model sends; longer ones are dropped (and logged).
pub const MAX_TX_FRAME: usize = 16 * 1024;

/// Descriptor command bits (byte 11).
const CMD_EOP: u8 = 1 << 0;
/// Legacy: insert checksum; extended data: TCP segmentation.
const CMD_IC_TSE: u8 = 1 << 2;
/// Report status: write DD back.
const CMD_RS: u8 = 1 << 3;
/// Legacy: report packet sent (also writes DD back on the 82540).
const CMD_RPS: u8 = 1 << 4;
/// Extended descriptor.
const CMD_DEXT: u8 = 1 << 5;
/// Interrupt delay enable.
const CMD_IDE: u8 = 1 << 7;
/// Status: descriptor done.
const STA_DD: u8 = 1 << 0;
/// Extended descriptor types (bits 20..23 of the second dword).
const DTYP_CONTEXT: u32 = 0;
const DTYP_DATA: u32 = 1;
/// Extended data POPTS (byte 13): insert IP / TCP-UDP checksum.
const POPTS_CSUM: u8 = 0x3;

/// A frame being gathered across descriptors (it may span TDT writes).
#[derive(Default)]
pub struct TxState {
    frame: Vec<u8>,
    /// Longer than MAX_TX_FRAME: dropped at EOP.
    oversize: bool,
    /// A buffer could not be read or segmentation was asked: dropped at EOP.
    broken: bool,
}

impl TxState {
    /// Forgets a partly gathered frame.
    pub fn reset(&mut self) {
        self.frame.clear();
        self.oversize = false;
        self.broken = false;
    }
}

impl E1000 {
    /// The TX ring as the registers describe it.
    pub(super) fn tx_ring(&self) -> Ring {
        Ring::from_regs(
            self.reg(TDBAL),
            self.reg(TDBAH),
            self.reg(TDLEN),
            self.reg(TDH),
            self.reg(TDT),
        )
    }

    /// Processes the descriptors software handed over (at most one ring's
    /// worth), then raises TXDW (some descriptor was written back) and TXQE
    /// (the ring drained), or in Batch mode holds them for the bottom half.
    pub(super) fn start_tx(&mut self, now: u64, dma: &dyn Dma, wire: &mut dyn Wire) {
        if self.reg(TCTL) & TCTL_EN == 0 {
            return;
        }
        let mut ring = self.tx_ring();
        if ring.size == 0 {
            return;
        }
        if ring.head >= ring.size {
            let (h, s) = (ring.head, ring.size);
            self.log.report(BadInput::TdhOutOfRange, || {
                format!("TDH {h} is outside the {s}-descriptor TX ring; TX stalls")
            });
            return;
        }
        if ring.tail >= ring.size {
            // TDLEN shrank under a TDT that was valid when written.
            let (t, s) = (ring.tail, ring.size);
            self.log.report(BadInput::TdtOutOfRange, || {
                format!("TDT {t} is outside the {s}-descriptor TX ring; ignored")
            });
            return;
        }
        let pending = ring.owned();
        if pending == 0 {
            return;
        }
        if !self.pci.bus_master() {
            self.log.report(BadInput::DmaWithoutBusMaster, || {
                "TX work while PCI bus mastering is disabled; the device cannot DMA".into()
            });
            return;
        }
        let batch = self.irq.mode() == Mitigation::Batch;
        if batch && self.irq.batch_defer_tx(pending, ring.size) {
            self.counters.tdt_deferred += 1;
            self.irq.schedule_bh(now);
            return;
        }
        let mut written_back = false;
        let mut processed = 0;
        while ring.head != ring.tail && processed < ring.size {
            written_back |= self.tx_descriptor(ring.desc_addr(ring.head), dma, wire);
            ring.head = ring.next(ring.head);
            processed += 1;
        }
        self.set_reg(TDH, ring.head);
        let mut causes = 0;
        if written_back {
            causes |= ICR_TXDW;
        }
        if ring.head == ring.tail {
            causes |= ICR_TXQE;
        }
        let d = self.delays();
        if batch {
            self.irq.batch_tx_done(causes, processed, ring.size, now, d);
        } else {
            self.irq.raise(causes, now, d);
        }
    }

    /// Consumes one descriptor; returns whether DD was written back.
    fn tx_descriptor(&mut self, addr: u64, dma: &dyn Dma, wire: &mut dyn Wire) -> bool {
        let mut d = [0u8; 16];
        if !dma.read(addr, &mut d) {
            self.log.report(BadInput::TxDescriptorOutsideRam, || {
                format!("TX descriptor at {addr:#x} is outside guest RAM; skipped")
            });
            // Whatever frame it belonged to cannot be completed reliably.
            if !self.tx.frame.is_empty() {
                self.counters.tx_dropped += 1;
            }
            self.tx.reset();
            return false;
        }
        let buffer = le_u64(&d, 0);
        let dword2 = le_u32(&d, 8);
        let cmd = d[11];
        let extended = cmd & CMD_DEXT != 0;
        let dtyp = (dword2 >> 20) & 0xF;
        if extended && dtyp == DTYP_CONTEXT {
            // Offload context: nothing to do without offloads.
        } else if extended && dtyp != DTYP_DATA {
            self.log.report(BadInput::TxUnknownDescriptor, || {
                format!("TX descriptor at {addr:#x} has reserved type {dtyp}; skipped")
            });
        } else {
            let len = if extended {
                dword2 & 0xF_FFFF
            } else {
                dword2 & 0xFFFF
            } as usize;
            if cmd & CMD_IDE != 0 {
                self.irq.note_tx_delay_asked();
            }
            if extended && cmd & CMD_IC_TSE != 0 {
                self.log.report(BadInput::TxSegmentation, || {
                    "TCP segmentation offload is not emulated; such frames are dropped \
                     (disable TSO in the guest)"
                        .into()
                });
                self.tx.broken = true;
            } else if (extended && d[13] & POPTS_CSUM != 0) || (!extended && cmd & CMD_IC_TSE != 0)
            {
                self.log.report(BadInput::TxChecksumOffload, || {
                    "checksum insertion is not emulated; frames go out with the checksums \
                     the guest wrote (disable TX checksum offload in the guest)"
                        .into()
                });
            }
            self.tx_gather(buffer, len, dma);
            if cmd & CMD_EOP != 0 {
                self.tx_finish(wire);
            }
        }
        let report = if extended { CMD_RS } else { CMD_RS | CMD_RPS };
        if cmd & report == 0 {
            return false;
        }
        let status = [d[12] | STA_DD];
        if !dma.write(addr.wrapping_add(12), &status) {
            self.log.report(BadInput::TxWritebackFailed, || {
                format!("TX descriptor at {addr:#x}: status write-back failed")
            });
            return false;
        }
        true
    }

    /// Appends `len` bytes at `buffer` to the frame being gathered.
    fn tx_gather(&mut self, buffer: u64, len: usize, dma: &dyn Dma) {
        if len == 0 || self.tx.oversize || self.tx.broken {
            return;
        }
        let start = self.tx.frame.len();
        if start + len > MAX_TX_FRAME {
            self.tx.oversize = true;
            return;
        }
        self.tx.frame.resize(start + len, 0);
        if !dma.read(buffer, &mut self.tx.frame[start..]) {
            self.log.report(BadInput::TxBufferOutsideRam, || {
                format!("TX buffer [{buffer:#x}, +{len:#x}) is outside guest RAM; frame dropped")
            });
            self.tx.broken = true;
        }
    }

    /// EOP: sends the gathered frame (or drops a bad one) and starts afresh.
    fn tx_finish(&mut self, wire: &mut dyn Wire) {
        if self.tx.oversize {
            self.log.report(BadInput::TxFrameTooLong, || {
                format!("TX frame longer than {MAX_TX_FRAME} bytes; dropped")
            });
            self.counters.tx_dropped += 1;
        } else if self.tx.broken {
            self.counters.tx_dropped += 1;
        } else if !self.tx.frame.is_empty() {
            let frame = &self.tx.frame;
            wire.send(frame);
            let len = frame.len() as u64;
            let dst_multicast = frame[0] & 1 != 0;
            let broadcast = frame.len() >= 6 && frame[..6] == [0xFF; 6];
            self.counters.tx_packets += 1;
            self.counters.tx_bytes += len;
            self.stat_add(GPTC, 1);
            self.stat_add(TPT, 1);
            self.stat_add64(GOTCL, len);
            self.stat_add64(TOTL, len);
            if broadcast {
                self.stat_add(BPTC, 1);
            } else if dst_multicast {
                self.stat_add(MPTC, 1);
            }
        }
        self.tx.reset();
    }
}
