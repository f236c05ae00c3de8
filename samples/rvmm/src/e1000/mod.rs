//! A pure model of the Intel 82540EM (e1000) NIC: registers, EEPROM, PHY,
//! PCI config space, TX/RX descriptor rings and interrupt mitigation. No
//! KVM, no threads: the VMM feeds it MMIO accesses, frames and the clock,
//! and reads back the interrupt line and the next timer deadline.
//!
//! Contract with the VMM:
//! - After every call that can change them (`mmio_*`, `io_*`, `receive`,
//!   `on_timer`), look at `irq_level()` (a level-triggered INTx line),
//!   `next_deadline()` (call `on_timer` then), `can_receive()` (frames held
//!   after `NoBuffer` can be retried) and `take_log()`.
//! - `now_ns` is any monotonic clock in nanoseconds, the same everywhere.
//! - Register accesses are 32-bit; for narrower reads the VMM reads the
//!   dword and shifts (Linux's driver only does 32-bit accesses).

mod eeprom;
mod log;
mod mitigation;
mod pci;
mod phy;
mod regs;
mod ring;
mod rx;
mod tx;

/// The mitigation policies (see `mitigation`).
pub use mitigation::Mitigation;
/// PCI configuration space.
pub use pci::PciConfig;
// The rest of the public surface, for the VMM integration to come.
#[allow(unused_imports)]
pub use {
    log::BadInput,
    mitigation::{BATCH_BH_DELAY_NS, ITR_MIN_UNITS, ITR_UNIT_NS},
    regs::BAR0_SIZE,
    rx::{MAX_RX_FRAME, MIN_RX_FRAME},
    tx::MAX_TX_FRAME,
};

use eeprom::Eeprom;
use log::BadInputLog;
use mitigation::{Delays, Interrupts};
use phy::Phy;
use regs::*;
use rx::RxScratch;
use tx::TxState;

/// Size of the I/O BAR (BAR1).
pub const BAR1_SIZE: u64 = pci::BAR1_SIZE as u64;

/// Guest memory as the device's DMA sees it (guest-physical addresses).
pub trait Dma {
    /// Fills `buf` from `[gpa, gpa + buf.len())`; false if that range is
    /// not all RAM (then `buf` is unspecified).
    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool;
    /// Copies `buf` to `[gpa, gpa + buf.len())`; false if that range is
    /// not all RAM (then nothing need have been written).
    fn write(&self, gpa: u64, buf: &[u8]) -> bool;
}

/// Where transmitted frames go (the tap).
pub trait Wire {
    /// One complete Ethernet frame, without CRC.
    fn send(&mut self, frame: &[u8]);
}

/// What became of a frame offered to `receive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxOutcome {
    /// Written into the RX ring.
    Delivered,
    /// No room now (ring full, RX disabled or not set up): keep the frame
    /// and retry once the guest has written RDT/RCTL (see `can_receive`).
    NoBuffer,
    /// Can never be delivered (too long, bad ring or memory); discard it.
    Dropped,
    /// Not for this NIC (address filters); discard it.
    Filtered,
}

/// Counters for the VMM's report. They survive device resets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Frames handed to the wire.
    pub tx_packets: u64,
    /// Bytes handed to the wire.
    pub tx_bytes: u64,
    /// TX frames dropped (too long, unreadable buffers, segmentation).
    pub tx_dropped: u64,
    /// Frames written into the RX ring.
    pub rx_packets: u64,
    /// Bytes of those frames (as received, before padding and CRC).
    pub rx_bytes: u64,
    /// `receive` calls answered `NoBuffer` because the ring was full.
    pub rx_no_buffer: u64,
    /// `receive` calls answered `Dropped`.
    pub rx_dropped: u64,
    /// `receive` calls answered `Filtered`.
    pub rx_filtered: u64,
    /// Rising edges of the interrupt line.
    pub interrupts_raised: u64,
    /// TDT writes.
    pub tdt_writes: u64,
    /// TX kicks left for the Batch bottom half.
    pub tdt_deferred: u64,
    /// RDT writes.
    pub rdt_writes: u64,
    /// ICR reads.
    pub icr_reads: u64,
    /// Register reads (MMIO and I/O BAR).
    pub mmio_reads: u64,
    /// Register writes (MMIO and I/O BAR).
    pub mmio_writes: u64,
    /// Itr mitigation timer expiries.
    pub itr_timer_fires: u64,
    /// Batch bottom-half runs.
    pub bh_runs: u64,
    /// Bad guest input, every occurrence (messages are logged once).
    pub bad_input_events: u64,
    /// Device resets through CTRL.RST.
    pub resets: u64,
}

/// Registers the VMM should keep out of KVM's coalesced MMIO ring: writes
/// to them have side effects that must be seen at once (QEMU's 2008 list).
const EXCLUDED: [u64; 7] = [MDIC, ICR, ICS, IMS, IMC, TCTL, TDT];

/// The 82540EM.
pub struct E1000 {
    pci: PciConfig,
    /// The register file, one u32 per dword of BAR0, for the registers the
    /// model stores (see `regs::plain_mask` and `mmio_write`).
    regs: Vec<u32>,
    eeprom: Eeprom,
    phy: Phy,
    irq: Interrupts,
    tx: TxState,
    rx_scratch: RxScratch,
    /// IOADDR of the I/O BAR window.
    ioaddr: u32,
    counters: DeviceStats,
    log: BadInputLog,
}

impl E1000 {
    /// Registers excluded from coalescing (ascending): MDIC, ICR, ICS,
    /// IMS, IMC, TCTL, TDT.
    pub const COALESCIBLE_EXCLUDED: [u64; 7] = EXCLUDED;

    /// A NIC with MAC `mac` (in the EEPROM and RAL0/RAH0), just reset.
    pub fn new(mac: [u8; 6], mitigation: Mitigation) -> Self {
        let mut dev = E1000 {
            pci: PciConfig::new(),
            regs: vec![0; (BAR0_SIZE / 4) as usize],
            eeprom: Eeprom::new(mac),
            phy: Phy::new(),
            irq: Interrupts::new(mitigation),
            tx: TxState::default(),
            rx_scratch: RxScratch::default(),
            ioaddr: 0,
            counters: DeviceStats::default(),
            log: BadInputLog::default(),
        };
        dev.reset();
        dev
    }

    /// The PCI configuration space.
    pub fn pci(&mut self) -> &mut PciConfig {
        &mut self.pci
    }

    /// The MMIO zones (address, size) of a BAR0 at `bar0` that can be
    /// coalesced: all 128 KiB except 4 bytes at each excluded register,
    /// in ascending order.
    pub fn coalesced_zones(bar0: u64) -> Vec<(u64, u64)> {
        let mut zones = Vec::new();
        let mut start = 0;
        for &reg in &Self::COALESCIBLE_EXCLUDED {
            if reg > start {
                zones.push((bar0 + start, reg - start));
            }
            start = reg + 4;
        }
        if start < BAR0_SIZE {
            zones.push((bar0 + start, BAR0_SIZE - start));
        }
        zones
    }

    /// Stored register at `offset` (0 outside BAR0).
    fn reg(&self, offset: u64) -> u32 {
        self.regs.get((offset >> 2) as usize).copied().unwrap_or(0)
    }

    fn set_reg(&mut self, offset: u64, value: u32) {
        if let Some(r) = self.regs.get_mut((offset >> 2) as usize) {
            *r = value;
        }
    }

    /// Adds to a 32-bit statistics register, sticking at the maximum.
    fn stat_add(&mut self, offset: u64, n: u32) {
        let v = self.reg(offset).saturating_add(n);
        self.set_reg(offset, v);
    }

    /// Adds to a 64-bit statistics pair (low at `low`, high at `low + 4`).
    fn stat_add64(&mut self, low: u64, n: u64) {
        let v = (u64::from(self.reg(low + 4)) << 32 | u64::from(self.reg(low))).saturating_add(n);
        self.set_reg(low, v as u32);
        self.set_reg(low + 4, (v >> 32) as u32);
    }

    /// The delay registers the Itr policy looks at.
    fn delays(&self) -> Delays {
        Delays {
            itr: self.reg(ITR),
            tadv: self.reg(TADV),
            radv: self.reg(RADV),
            rdtr: self.reg(RDTR),
        }
    }

    /// Device reset (power-on and CTRL.RST): registers to their defaults,
    /// RAL0/RAH0 from the EEPROM, PHY reset, causes/mask/timers cleared, a
    /// partly gathered TX frame forgotten. PCI config space is untouched.
    fn reset(&mut self) {
        self.regs.fill(0);
        self.set_reg(CTRL, CTRL_SLU | CTRL_SPD_1000 | CTRL_SWDPIN0 | CTRL_SWDPIN2);
        // 48 KiB RX / 16 KiB TX packet buffer split.
        self.set_reg(PBA, 0x0010_0030);
        self.set_reg(LEDCTL, 0x0706_8302);
        let w = |i| u32::from(self.eeprom.word(i).unwrap_or(0));
        let (ral, rah) = (w(0) | w(1) << 16, w(2) | RAH_AV);
        self.set_reg(RA, ral);
        self.set_reg(RA + 4, rah);
        self.eeprom.reset();
        self.phy = Phy::new();
        self.irq.reset();
        self.tx.reset();
        self.ioaddr = 0;
    }

    /// A 32-bit register read at `offset` into BAR0 (bits 0..1 ignored).
    /// ICR and the statistics registers clear when read; unknown
    /// registers read 0.
    pub fn mmio_read(&mut self, offset: u64, now_ns: u64) -> u32 {
        self.counters.mmio_reads += 1;
        let off = offset & !3;
        match off {
            STATUS => STATUS_VALUE,
            EECD => self.eeprom.read_eecd(),
            CTRL | EERD | MDIC | RCTL | TCTL | RDT | TDT => self.reg(off),
            ICR => {
                self.counters.icr_reads += 1;
                let d = self.delays();
                self.irq.read_and_clear(now_ns, d)
            }
            IMS => self.irq.ims(),
            o if (STATS_START..STATS_END).contains(&o) => {
                let v = self.reg(o);
                self.set_reg(o, 0);
                v
            }
            o if plain_mask(o).is_some() => self.reg(o),
            // ICS and IMC are write-only; the rest is unimplemented.
            _ => 0,
        }
    }

    /// A 32-bit register write at `offset` into BAR0 (bits 0..1 ignored).
    /// TDT and TCTL writes run TX at once (or, in Batch mode, maybe later).
    pub fn mmio_write(
        &mut self,
        offset: u64,
        value: u32,
        now_ns: u64,
        dma: &dyn Dma,
        wire: &mut dyn Wire,
    ) {
        self.counters.mmio_writes += 1;
        let off = offset & !3;
        let d = self.delays();
        match off {
            CTRL => {
                if value & CTRL_RST != 0 {
                    self.counters.resets += 1;
                    self.reset();
                } else {
                    if value & CTRL_PHY_RST != 0 {
                        self.phy = Phy::new();
                    }
                    self.set_reg(CTRL, value);
                }
            }
            EECD => self.eeprom.write_eecd(value),
            EERD => self.eerd(value),
            MDIC => {
                let result = self.phy.mdic(value);
                self.set_reg(MDIC, result);
                if value & MDIC_INT_EN != 0 {
                    self.irq.raise(ICR_MDAC, now_ns, d);
                }
            }
            ICR => self.irq.clear(value, now_ns, d),
            ICS => self.irq.raise(value, now_ns, d),
            IMS => self.irq.mask_set(value, now_ns, d),
            IMC => self.irq.mask_clear(value, now_ns, d),
            RCTL => self.set_reg(RCTL, value),
            TCTL => {
                self.set_reg(TCTL, value);
                self.start_tx(now_ns, dma, wire);
            }
            RDT => {
                self.counters.rdt_writes += 1;
                self.set_reg(RDT, value & 0xFFFF);
            }
            TDT => {
                self.counters.tdt_writes += 1;
                let tail = value & 0xFFFF;
                let size = self.tx_ring().size;
                if size != 0 && tail >= size {
                    self.log.report(BadInput::TdtOutOfRange, || {
                        format!("TDT {tail} is outside the {size}-descriptor TX ring; ignored")
                    });
                    return;
                }
                self.set_reg(TDT, tail);
                self.start_tx(now_ns, dma, wire);
            }
            o => {
                if let Some(mask) = plain_mask(o) {
                    self.set_reg(o, value & mask);
                }
                // STATUS, statistics and unknown registers ignore writes.
            }
        }
    }

    /// EERD write: with START, reads the word at the address field at once
    /// and sets DONE; a word past the EEPROM never completes (no DONE).
    fn eerd(&mut self, value: u32) {
        let addr = (value >> EERD_ADDR_SHIFT) & 0xFF;
        if value & EERD_START == 0 {
            self.set_reg(EERD, value & !EERD_DONE);
            return;
        }
        match self.eeprom.word(addr as usize) {
            Some(word) => self.set_reg(
                EERD,
                u32::from(word) << EERD_DATA_SHIFT | addr << EERD_ADDR_SHIFT | EERD_DONE,
            ),
            None => {
                self.log.report(BadInput::EerdAddress, || {
                    format!("EERD read of word {addr:#x} past the 64-word EEPROM")
                });
                self.set_reg(EERD, addr << EERD_ADDR_SHIFT);
            }
        }
    }

    /// A 32-bit read of the I/O BAR at `offset`: IOADDR, or through IODATA
    /// the register IOADDR names.
    pub fn io_read(&mut self, offset: u64, now_ns: u64) -> u32 {
        match offset & !3 {
            IOADDR => self.ioaddr,
            IODATA => self.mmio_read(u64::from(self.ioaddr), now_ns),
            _ => 0,
        }
    }

    /// A 32-bit write of the I/O BAR at `offset` (Linux's driver issues
    /// the 82540's reset this way).
    pub fn io_write(
        &mut self,
        offset: u64,
        value: u32,
        now_ns: u64,
        dma: &dyn Dma,
        wire: &mut dyn Wire,
    ) {
        match offset & !3 {
            IOADDR => self.ioaddr = value & (BAR0_SIZE as u32 - 1) & !3,
            IODATA => self.mmio_write(u64::from(self.ioaddr), value, now_ns, dma, wire),
            _ => {}
        }
    }

    /// The INTx line as it should be now (level-triggered).
    pub fn irq_level(&self) -> bool {
        self.irq.line()
    }

    /// The interrupt and ring state, without side effects (for the VMM's
    /// report when a guest hangs).
    pub fn describe(&self) -> String {
        format!(
            "ICR {:#x} IMS {:#x} line {} deadline {:?}; TDH {} TDT {}; RDH {} RDT {}",
            self.irq.icr(),
            self.irq.ims(),
            self.irq.line(),
            self.irq.next_deadline(),
            self.reg(TDH),
            self.reg(TDT),
            self.reg(RDH),
            self.reg(RDT)
        )
    }

    /// When `on_timer` must next be called (same clock as `now_ns`), if a
    /// mitigation timer or the Batch bottom half is pending.
    pub fn next_deadline(&self) -> Option<u64> {
        self.irq.next_deadline()
    }

    /// Fires whatever is due at `now_ns`: the Itr timer (raising held
    /// causes) and the Batch bottom half (deferred TX, held causes).
    /// Calling it early is harmless.
    pub fn on_timer(&mut self, now_ns: u64, dma: &dyn Dma, wire: &mut dyn Wire) {
        let d = self.delays();
        self.irq.on_itr_timer(now_ns, d);
        if self.irq.begin_bh(now_ns) {
            self.start_tx(now_ns, dma, wire);
            let d = self.delays();
            self.irq.end_bh(now_ns, d);
        }
    }

    /// The counters.
    pub fn stats(&self) -> DeviceStats {
        DeviceStats {
            interrupts_raised: self.irq.raised(),
            itr_timer_fires: self.irq.itr_fires(),
            bh_runs: self.irq.bh_runs(),
            bad_input_events: self.log.events(),
            ..self.counters
        }
    }

    /// The next bad-input message to print (each kind is reported once).
    pub fn take_log(&mut self) -> Option<String> {
        self.log.take()
    }
}

#[cfg(test)]
mod tests;
