//! Whole-device tests with a Vec-backed guest RAM and a collecting wire.

use super::pci::{CMD_BUS_MASTER, CMD_IO, CMD_MEMORY};
use super::*;
use std::cell::RefCell;

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const RAM_SIZE: usize = 1 << 20;
const TX_RING: u64 = 0x1000;
const RX_RING: u64 = 0x2000;
const TX_BUFS: u64 = 0x10000;
const RX_BUFS: u64 = 0x40000;

/// Guest RAM at [0, RAM_SIZE).
struct Ram(RefCell<Vec<u8>>);

impl Ram {
    fn range(&self, gpa: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let end = gpa.checked_add(len as u64)?;
        (end <= self.0.borrow().len() as u64).then_some(gpa as usize..end as usize)
    }
    fn get(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        assert!(self.read(gpa, &mut v));
        v
    }
    fn put(&self, gpa: u64, data: &[u8]) {
        assert!(self.write(gpa, data));
    }
}

impl Dma for Ram {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        match self.range(gpa, buf.len()) {
            Some(r) => {
                buf.copy_from_slice(&self.0.borrow()[r]);
                true
            }
            None => false,
        }
    }
    fn write(&self, gpa: u64, buf: &[u8]) -> bool {
        match self.range(gpa, buf.len()) {
            Some(r) => {
                self.0.borrow_mut()[r].copy_from_slice(buf);
                true
            }
            None => false,
        }
    }
}

#[derive(Default)]
struct Frames(Vec<Vec<u8>>);

impl Wire for Frames {
    fn send(&mut self, frame: &[u8]) {
        self.0.push(frame.to_vec());
    }
}

struct Rig {
    dev: E1000,
    ram: Ram,
    wire: Frames,
    now: u64,
}

const EOP: u8 = 1 << 0;
const RS: u8 = 1 << 3;

impl Rig {
    fn new(mode: Mitigation) -> Self {
        let mut dev = E1000::new(MAC, mode);
        dev.pci()
            .write(4, u32::from(CMD_MEMORY | CMD_IO | CMD_BUS_MASTER));
        Rig {
            dev,
            ram: Ram(RefCell::new(vec![0; RAM_SIZE])),
            wire: Frames::default(),
            now: 0,
        }
    }
    fn w(&mut self, off: u64, value: u32) {
        self.dev
            .mmio_write(off, value, self.now, &self.ram, &mut self.wire);
    }
    fn r(&mut self, off: u64) -> u32 {
        self.dev.mmio_read(off, self.now)
    }
    fn timer(&mut self) {
        self.dev.on_timer(self.now, &self.ram, &mut self.wire);
    }
    /// TX ring of `len_bytes` at TX_RING, head = tail = 0, enabled.
    fn setup_tx(&mut self, len_bytes: u32) {
        self.w(TDBAL, TX_RING as u32);
        self.w(TDBAH, 0);
        self.w(TDLEN, len_bytes);
        self.w(TDH, 0);
        self.w(TDT, 0);
        self.w(TCTL, TCTL_EN);
    }
    /// Descriptor `idx` pointing at `data` (copied to a buffer of its own).
    fn tx_desc(&self, idx: u64, data: &[u8], cmd: u8) {
        let buf = TX_BUFS + idx * 0x1000;
        self.ram.put(buf, data);
        self.tx_desc_raw(idx, buf, data.len() as u16, cmd);
    }
    fn tx_desc_raw(&self, idx: u64, buf: u64, len: u16, cmd: u8) {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&buf.to_le_bytes());
        d[8..10].copy_from_slice(&len.to_le_bytes());
        d[11] = cmd;
        self.ram.put(TX_RING + idx * 16, &d);
    }
    fn tx_status(&self, idx: u64) -> u8 {
        self.ram.get(TX_RING + idx * 16 + 12, 1)[0]
    }
    /// RX ring of `n` descriptors with 2 KiB buffers (or as `rctl` says),
    /// all but one handed to the device.
    fn setup_rx(&mut self, n: u32, rctl: u32) {
        for i in 0..u64::from(n) {
            let mut d = [0u8; 16];
            d[..8].copy_from_slice(&(RX_BUFS + i * 0x4000).to_le_bytes());
            self.ram.put(RX_RING + i * 16, &d);
        }
        self.w(RDBAL, RX_RING as u32);
        self.w(RDBAH, 0);
        self.w(RDLEN, n * 16);
        self.w(RDH, 0);
        self.w(RDT, n - 1);
        self.w(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC | rctl);
    }
    /// (length, status) of RX descriptor `idx`.
    fn rx_desc(&self, idx: u64) -> (u16, u8) {
        let d = self.ram.get(RX_RING + idx * 16, 16);
        (u16::from_le_bytes([d[8], d[9]]), d[12])
    }
    fn rx(&mut self, frame: &[u8]) -> RxOutcome {
        self.dev.receive(frame, self.now, &self.ram)
    }
}

/// A frame to this NIC of `len` bytes, payload byte `tag`.
fn frame_to_us(len: usize, tag: u8) -> Vec<u8> {
    let mut f = vec![tag; len];
    f[..6].copy_from_slice(&MAC);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f
}

#[test]
fn status_ctrl_and_mac_registers() {
    let mut t = Rig::new(Mitigation::Off);
    assert_eq!(t.r(STATUS), STATUS_VALUE);
    assert_ne!(t.r(CTRL) & CTRL_SLU, 0);
    assert_eq!(t.r(RA), 0x1200_5452);
    assert_eq!(t.r(RA + 4), 0x8000_5634);
    assert_eq!(t.r(0x1_0000), 0, "unknown register");
    t.w(0x1_0000, 5);
    assert_eq!(t.r(0x1_0000), 0);
    t.w(STATUS, 0);
    assert_eq!(t.r(STATUS), STATUS_VALUE);
    t.w(MTA + 8, 0xDEAD);
    assert_eq!(t.r(MTA + 8), 0xDEAD);
}

#[test]
fn eerd_reads_words() {
    let mut t = Rig::new(Mitigation::Off);
    for (addr, want) in [(0u32, 0x5452), (1, 0x1200), (2, 0x5634), (0x0D, 0x100E)] {
        t.w(EERD, addr << 8 | EERD_START);
        let v = t.r(EERD);
        assert_ne!(v & EERD_DONE, 0);
        assert_eq!(v >> 16, want);
    }
    t.w(EERD, 0x40 << 8 | EERD_START);
    assert_eq!(t.r(EERD) & EERD_DONE, 0);
    assert!(t.dev.take_log().is_some());
}

#[test]
fn eecd_bitbang_through_mmio() {
    let mut t = Rig::new(Mitigation::Off);
    let mut mac = Vec::new();
    for addr in 0..3u32 {
        let mut eecd = EECD_REQ | EECD_CS;
        t.w(EECD, eecd);
        assert_ne!(t.r(EECD) & (EECD_GNT | EECD_PRES), 0);
        let cmd = 0b110 << 6 | addr;
        for i in (0..9).rev() {
            eecd = (eecd & !EECD_DI) | if cmd >> i & 1 != 0 { EECD_DI } else { 0 };
            t.w(EECD, eecd);
            t.w(EECD, eecd | EECD_SK);
            t.w(EECD, eecd);
        }
        let mut word = 0u16;
        for _ in 0..16 {
            t.w(EECD, eecd | EECD_SK);
            word = word << 1 | u16::from(t.r(EECD) & EECD_DO != 0);
            t.w(EECD, eecd);
        }
        t.w(EECD, 0);
        mac.extend_from_slice(&word.to_le_bytes());
    }
    assert_eq!(mac, MAC);
}

#[test]
fn mdic_phy_id_and_ready() {
    let mut t = Rig::new(Mitigation::Off);
    let read = |reg: u32, phy: u32| 2 << 26 | phy << 21 | reg << 16;
    t.w(MDIC, read(2, 1));
    let id1 = t.r(MDIC);
    t.w(MDIC, read(3, 1));
    let id2 = t.r(MDIC);
    assert_ne!(id1 & MDIC_READY, 0);
    assert_eq!(id1 & MDIC_ERROR, 0);
    assert_eq!((id1 & 0xFFFF) << 16 | id2 & 0xFFFF, 0x0141_0C20);
    t.w(MDIC, read(1, 1));
    assert_eq!(t.r(MDIC) & 0xFFFF, 0x796D);
    t.w(MDIC, read(2, 3));
    assert_ne!(t.r(MDIC) & MDIC_ERROR, 0);
    // MDAC when asked for.
    t.w(MDIC, read(2, 1) | MDIC_INT_EN);
    assert_ne!(t.r(ICR) & ICR_MDAC, 0);
}

#[test]
fn tx_three_frames_one_split() {
    let mut t = Rig::new(Mitigation::Off);
    t.setup_tx(128);
    t.w(IMS, ICR_TXDW);
    let f1 = frame_to_us(60, 1);
    let f2 = frame_to_us(1514, 2);
    let f3 = frame_to_us(100, 3);
    t.tx_desc(0, &f1, EOP | RS);
    t.tx_desc(1, &f2[..1000], 0);
    t.tx_desc(2, &f2[1000..], EOP | RS);
    t.tx_desc(3, &f3, EOP | RS);
    t.w(TDT, 4);
    assert_eq!(t.wire.0, vec![f1, f2, f3]);
    assert_eq!(t.r(TDH), 4);
    assert_eq!(t.r(TDH), t.r(TDT));
    for i in [0, 2, 3] {
        assert_eq!(t.tx_status(i) & 1, 1, "DD on descriptor {i}");
    }
    assert_eq!(t.tx_status(1) & 1, 0, "no RS, no DD");
    assert!(t.dev.irq_level());
    let icr = t.r(ICR);
    assert_ne!(icr & ICR_TXDW, 0);
    assert_ne!(icr & ICR_TXQE, 0);
    assert!(!t.dev.irq_level());
    let s = t.dev.stats();
    assert_eq!((s.tx_packets, s.tdt_writes, s.interrupts_raised), (3, 2, 1));
    assert_eq!(t.r(GPTC), 3);
    assert_eq!(t.r(GPTC), 0, "statistics clear on read");
    assert_eq!(t.r(TPT), 3);
    assert_eq!(t.r(GOTCL), 60 + 1514 + 100);
}

#[test]
fn tx_wraps_around_the_ring() {
    let mut t = Rig::new(Mitigation::Off);
    t.setup_tx(128);
    t.w(TDH, 6);
    t.w(TDT, 6);
    for (n, idx) in [6u64, 7, 0, 1].into_iter().enumerate() {
        t.tx_desc(idx, &frame_to_us(64, n as u8), EOP | RS);
    }
    t.w(TDT, 2);
    assert_eq!(t.wire.0.len(), 4);
    assert_eq!(t.wire.0[2][20], 2);
    assert_eq!(t.r(TDH), 2);
}

#[test]
fn tx_disabled_or_no_bus_master_does_nothing() {
    let mut t = Rig::new(Mitigation::Off);
    t.setup_tx(128);
    t.w(TCTL, 0);
    t.tx_desc(0, &frame_to_us(64, 0), EOP | RS);
    t.w(TDT, 1);
    assert!(t.wire.0.is_empty());
    t.dev.pci().write(4, u32::from(CMD_MEMORY));
    t.w(TCTL, TCTL_EN);
    assert!(t.wire.0.is_empty());
    assert!(t.dev.take_log().is_some_and(|m| m.contains("bus master")));
    t.dev.pci().write(4, u32::from(CMD_MEMORY | CMD_BUS_MASTER));
    t.w(TCTL, TCTL_EN);
    assert_eq!(t.wire.0.len(), 1, "enabling TX runs the pending work");
}

#[test]
fn tdt_beyond_ring_is_ignored() {
    let mut t = Rig::new(Mitigation::Off);
    t.setup_tx(128);
    t.tx_desc(0, &frame_to_us(64, 0), EOP | RS);
    t.w(TDT, 8);
    t.w(TDT, 500);
    assert!(t.wire.0.is_empty());
    assert_eq!(t.r(TDT), 0);
    assert_eq!(t.r(TDH), 0);
    assert!(t.dev.take_log().is_some_and(|m| m.contains("TDT 8")));
    assert_eq!(t.dev.take_log(), None, "logged once");
    assert_eq!(t.dev.stats().bad_input_events, 2);
    t.w(TDT, 1);
    assert_eq!(t.wire.0.len(), 1);
}

#[test]
fn tdlen_not_multiple_of_128_rounds_down() {
    let mut t = Rig::new(Mitigation::Off);
    t.setup_tx(200);
    // 200 bytes is 8 descriptors: index 8 is outside, 7 inside.
    for i in 0..8 {
        t.tx_desc(i, &frame_to_us(64, i as u8), EOP | RS);
    }
    t.w(TDT, 8);
    assert!(t.wire.0.is_empty());
    t.w(TDT, 7);
    assert_eq!(t.wire.0.len(), 7);
    // Below 128 bytes there is no ring at all.
    let mut t = Rig::new(Mitigation::Off);
    t.setup_tx(100);
    t.tx_desc(0, &frame_to_us(64, 0), EOP | RS);
    t.w(TDT, 1);
    assert!(t.wire.0.is_empty());
    assert_eq!(t.r(TDH), 0);
}

#[test]
fn tx_descriptor_outside_ram_is_skipped() {
    let mut t = Rig::new(Mitigation::Off);
    t.setup_tx(128);
    // The ring itself outside RAM: descriptors consumed, nothing sent.
    t.w(TDBAL, 0xF000_0000);
    t.w(TDT, 3);
    assert!(t.wire.0.is_empty());
    assert_eq!(t.r(TDH), 3);
    assert!(t
        .dev
        .take_log()
        .is_some_and(|m| m.contains("outside guest RAM")));
    // A buffer outside RAM: that frame dropped, the next one sent.
    t.w(TDBAL, TX_RING as u32);
    t.tx_desc_raw(3, 0xFFFF_FFF0, 64, EOP | RS);
    t.tx_desc_raw(4, u64::MAX - 8, 64, EOP | RS);
    t.tx_desc(5, &frame_to_us(64, 5), EOP | RS);
    t.w(TDT, 6);
    assert_eq!(t.wire.0.len(), 1);
    assert_eq!(t.wire.0[0][20], 5);
    assert_eq!(t.dev.stats().tx_dropped, 2);
    assert_eq!(t.r(TDH), 6);
}

#[test]
fn tx_oversize_frame_dropped_once_logged() {
    let mut t = Rig::new(Mitigation::Off);
    t.setup_tx(128);
    for i in 0..3 {
        t.tx_desc_raw(i, TX_BUFS, 8000, if i == 2 { EOP | RS } else { 0 });
    }
    t.tx_desc(3, &frame_to_us(64, 3), EOP | RS);
    t.w(TDT, 4);
    assert_eq!(t.wire.0.len(), 1);
    assert_eq!(t.dev.stats().tx_dropped, 1);
    assert!(t.dev.take_log().is_some_and(|m| m.contains("longer than")));
}

#[test]
fn tx_context_descriptor_consumed() {
    let mut t = Rig::new(Mitigation::Off);
    t.setup_tx(128);
    // Context descriptor: DEXT, DTYP 0, RS.
    t.tx_desc_raw(0, 0, 0, 1 << 5 | RS);
    t.tx_desc(1, &frame_to_us(64, 1), EOP | RS);
    t.w(TDT, 2);
    assert_eq!(t.wire.0.len(), 1);
    assert_eq!(t.tx_status(0) & 1, 1);
}

#[test]
fn rx_frames_into_descriptors() {
    let mut t = Rig::new(Mitigation::Off);
    // 1 KiB buffers.
    t.setup_rx(8, 1 << 16);
    t.w(IMS, ICR_RXT0);
    let small = frame_to_us(100, 7);
    let big = frame_to_us(1500, 8);
    assert_eq!(t.rx(&small), RxOutcome::Delivered);
    assert!(t.dev.irq_level());
    assert_eq!(t.rx(&big), RxOutcome::Delivered);
    assert_eq!(t.rx_desc(0), (100, 0b111));
    assert_eq!(t.rx_desc(1), (1024, 0b101), "no EOP on the first part");
    assert_eq!(t.rx_desc(2), (476, 0b111));
    assert_eq!(t.ram.get(RX_BUFS, 100), small);
    let mut got = t.ram.get(RX_BUFS + 0x4000, 1024);
    got.extend(t.ram.get(RX_BUFS + 0x8000, 476));
    assert_eq!(got, big);
    assert_eq!(t.r(RDH), 3);
    assert_ne!(t.r(ICR) & ICR_RXT0, 0);
    assert_eq!(t.r(GPRC), 2);
    // Short frames are padded to 60 bytes.
    assert_eq!(t.rx(&frame_to_us(20, 9)), RxOutcome::Delivered);
    assert_eq!(t.rx_desc(3).0, 60);
    assert_eq!(t.dev.stats().rx_packets, 3);
}

#[test]
fn rx_no_buffer_when_ring_empty() {
    let mut t = Rig::new(Mitigation::Off);
    t.setup_rx(8, 0);
    assert!(t.dev.can_receive());
    for i in 0..7 {
        assert_eq!(t.rx(&frame_to_us(64, i)), RxOutcome::Delivered);
    }
    assert_eq!(t.r(RDH), 7);
    assert!(!t.dev.can_receive());
    assert_eq!(t.rx(&frame_to_us(64, 9)), RxOutcome::NoBuffer);
    assert_eq!(t.dev.stats().rx_no_buffer, 1);
    assert_eq!(t.r(RNBC), 1);
    t.w(RDT, 2);
    assert!(t.dev.can_receive());
    assert_eq!(t.rx(&frame_to_us(64, 9)), RxOutcome::Delivered);
    assert_eq!(t.r(RDH), 0);
    // RX disabled: no buffer either.
    t.w(RCTL, 0);
    assert!(!t.dev.can_receive());
    assert_eq!(t.rx(&frame_to_us(64, 9)), RxOutcome::NoBuffer);
}

#[test]
fn rx_bad_input_dropped() {
    let mut t = Rig::new(Mitigation::Off);
    t.setup_rx(8, 0);
    assert_eq!(t.rx(&frame_to_us(3000, 0)), RxOutcome::Dropped, "no LPE");
    t.w(RCTL, RCTL_EN | RCTL_SECRC | RCTL_LPE | 3 << 16);
    // 9000 bytes in 256-byte buffers needs more than the ring.
    assert_eq!(t.rx(&frame_to_us(9000, 0)), RxOutcome::Dropped);
    t.w(RDT, 9);
    assert_eq!(t.rx(&frame_to_us(64, 0)), RxOutcome::Dropped, "RDT outside");
    t.w(RDT, 5);
    t.w(RDBAL, 0xFFF0_0000);
    assert_eq!(t.rx(&frame_to_us(64, 0)), RxOutcome::Dropped);
    assert_eq!(t.r(RDH), 0);
    let mut logs = 0;
    while t.dev.take_log().is_some() {
        logs += 1;
    }
    assert_eq!(logs, 3);
    assert_eq!(t.dev.stats().rx_dropped, 4);
}

#[test]
fn rx_address_filter_and_fcs() {
    let mut t = Rig::new(Mitigation::Off);
    t.setup_rx(8, 0);
    let mut other = frame_to_us(64, 0);
    other[5] = 0x57;
    assert_eq!(t.rx(&other), RxOutcome::Filtered);
    let mut bcast = frame_to_us(64, 0);
    bcast[..6].copy_from_slice(&[0xFF; 6]);
    assert_eq!(t.rx(&bcast), RxOutcome::Delivered);
    let mut mcast = frame_to_us(64, 0);
    mcast[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0x01, 0x02]);
    assert_eq!(t.rx(&mcast), RxOutcome::Filtered);
    // MO = 0: hash = bits 47..36 = 0x020 (0x0201 >> 4).
    t.w(MTA + 4, 1);
    assert_eq!(t.rx(&mcast), RxOutcome::Delivered);
    t.w(RCTL, RCTL_EN | RCTL_UPE);
    assert_eq!(t.rx(&other), RxOutcome::Delivered);
    // Without SECRC the CRC follows the frame and counts in the length.
    let (len, _) = t.rx_desc(2);
    assert_eq!(len, 68);
    let fcs = rx::ethernet_fcs(&other);
    assert_eq!(t.ram.get(RX_BUFS + 2 * 0x4000 + 64, 4), fcs.to_le_bytes());
    assert_eq!(t.dev.stats().rx_filtered, 2);
}

#[test]
fn rx_rxdmt0_below_threshold() {
    let mut t = Rig::new(Mitigation::Off);
    // 16 descriptors, 15 handed over, threshold 1/2 (8 free).
    t.setup_rx(16, 0);
    for i in 0..6 {
        t.rx(&frame_to_us(64, i));
        assert_eq!(t.r(ICR) & ICR_RXDMT0, 0, "frame {i}");
    }
    t.rx(&frame_to_us(64, 6));
    assert_ne!(t.r(ICR) & ICR_RXDMT0, 0);
}

#[test]
fn icr_read_clears_and_drops_line() {
    let mut t = Rig::new(Mitigation::Off);
    t.w(IMS, ICR_TXDW | ICR_LSC);
    t.w(ICS, ICR_LSC);
    assert!(t.dev.irq_level());
    assert_eq!(t.r(ICR), ICR_LSC | ICR_INT_ASSERTED);
    assert!(!t.dev.irq_level());
    assert_eq!(t.r(ICR), 0);
    // Writing ICR clears the bits written.
    t.w(ICS, ICR_LSC | ICR_TXDW);
    t.w(ICR, ICR_LSC);
    assert!(t.dev.irq_level());
    t.w(ICR, ICR_TXDW);
    assert!(!t.dev.irq_level());
    assert_eq!(t.dev.stats().icr_reads, 2);
}

#[test]
fn ims_imc_masking() {
    let mut t = Rig::new(Mitigation::Off);
    t.w(ICS, ICR_RXT0);
    assert!(!t.dev.irq_level(), "masked");
    t.w(IMS, ICR_RXT0);
    assert!(t.dev.irq_level());
    assert_eq!(t.r(IMS), ICR_RXT0);
    t.w(IMC, ICR_RXT0);
    assert!(!t.dev.irq_level());
    assert_eq!(t.r(IMS), 0);
    assert_eq!(t.r(IMC), 0, "write-only");
    t.w(IMS, ICR_TXDW | ICR_RXT0);
    assert!(t.dev.irq_level());
    assert_eq!(t.dev.stats().interrupts_raised, 2);
}

#[test]
fn itr_holds_causes_until_the_timer() {
    let mut t = Rig::new(Mitigation::Itr);
    t.w(ITR, 1000);
    t.w(IMS, ICR_CAUSES);
    t.w(ICS, ICR_TXDW);
    assert!(t.dev.irq_level(), "first edge at once");
    let deadline = 1000 * ITR_UNIT_NS;
    assert_eq!(t.dev.next_deadline(), Some(deadline));
    t.now = 1_000;
    t.r(ICR);
    assert!(!t.dev.irq_level());
    t.now = 2_000;
    t.w(ICS, ICR_RXT0);
    assert!(!t.dev.irq_level(), "held inside the window");
    assert_eq!(t.r(IMS), ICR_CAUSES);
    t.now = deadline - 1;
    t.timer();
    assert!(!t.dev.irq_level());
    t.now = deadline;
    t.timer();
    assert!(t.dev.irq_level());
    assert_eq!(t.dev.next_deadline(), Some(2 * deadline), "re-armed");
    assert_eq!(t.r(ICR) & ICR_RXT0, ICR_RXT0);
    // The timer expiring with nothing pending leaves the line low.
    t.now = 2 * deadline;
    t.timer();
    assert!(!t.dev.irq_level());
    assert_eq!(t.dev.next_deadline(), None);
    let s = t.dev.stats();
    assert_eq!((s.interrupts_raised, s.itr_timer_fires), (2, 2));
}

#[test]
fn itr_uses_radv_and_minimum() {
    let mut t = Rig::new(Mitigation::Itr);
    t.w(RDTR, 1);
    t.w(RADV, 8);
    t.w(IMS, ICR_CAUSES);
    t.now = 100;
    t.w(ICS, ICR_RXT0);
    // 8 * 4 = 32 units, below the 500-unit minimum.
    assert_eq!(
        t.dev.next_deadline(),
        Some(100 + ITR_MIN_UNITS * ITR_UNIT_NS)
    );
}

#[test]
fn batch_rx_first_immediate_rest_deferred() {
    let mut t = Rig::new(Mitigation::Batch);
    t.setup_rx(16, 0);
    t.w(IMS, ICR_CAUSES);
    t.rx(&frame_to_us(64, 0));
    assert!(t.dev.irq_level(), "first interrupt at once");
    t.r(ICR);
    t.now = 10;
    t.rx(&frame_to_us(64, 1));
    t.now = 20;
    t.rx(&frame_to_us(64, 2));
    assert!(!t.dev.irq_level());
    assert_eq!(t.dev.next_deadline(), Some(10 + BATCH_BH_DELAY_NS));
    t.now = 10 + BATCH_BH_DELAY_NS;
    t.timer();
    assert!(t.dev.irq_level());
    assert_eq!(t.r(ICR) & ICR_RXT0, ICR_RXT0);
    assert_eq!(t.dev.next_deadline(), None);
    // After the bottom half the next one is immediate again.
    t.rx(&frame_to_us(64, 3));
    assert!(t.dev.irq_level());
    let s = t.dev.stats();
    assert_eq!((s.interrupts_raised, s.bh_runs), (3, 1));
}

#[test]
fn batch_rxdmt0_is_immediate() {
    let mut t = Rig::new(Mitigation::Batch);
    t.setup_rx(16, 0);
    t.w(IMS, ICR_CAUSES);
    t.rx(&frame_to_us(64, 0));
    t.r(ICR);
    for i in 1..6 {
        t.rx(&frame_to_us(64, i));
        assert!(!t.dev.irq_level());
    }
    // Seventh frame: 8 free descriptors, RXDMT0.
    t.rx(&frame_to_us(64, 6));
    assert!(t.dev.irq_level());
    assert_eq!(t.r(ICR) & (ICR_RXDMT0 | ICR_RXT0), ICR_RXDMT0 | ICR_RXT0);
}

#[test]
fn batch_tx_deferred_then_immediate_near_full() {
    let mut t = Rig::new(Mitigation::Batch);
    t.setup_tx(256); // 16 descriptors: "near full" at 11.
    t.w(IMS, ICR_CAUSES);
    t.tx_desc(0, &frame_to_us(64, 0), EOP | RS);
    t.w(TDT, 1);
    assert_eq!(t.wire.0.len(), 1, "sent at once");
    assert!(!t.dev.irq_level(), "interrupt left for the bottom half");
    assert_eq!(t.dev.next_deadline(), Some(BATCH_BH_DELAY_NS));
    t.now = BATCH_BH_DELAY_NS;
    t.timer();
    assert!(t.dev.irq_level());
    t.r(ICR);
    // Eleven descriptors in one go: the ring is nearly full, interrupt now.
    for i in 1..12 {
        t.tx_desc(i, &frame_to_us(64, i as u8), EOP | RS);
    }
    t.w(TDT, 12);
    assert_eq!(t.wire.0.len(), 12);
    assert!(t.dev.irq_level());
    assert_eq!(t.dev.next_deadline(), None);
}

#[test]
fn batch_defers_tdt_work_after_four() {
    let mut t = Rig::new(Mitigation::Batch);
    t.setup_tx(256);
    t.w(IMS, ICR_CAUSES);
    for i in 0..6u64 {
        t.tx_desc(i, &frame_to_us(64, i as u8), EOP | RS);
        t.now = i;
        t.w(TDT, i as u32 + 1);
    }
    assert_eq!(t.wire.0.len(), 5, "the sixth kick waits");
    assert_eq!(t.dev.stats().tdt_deferred, 1);
    assert!(!t.dev.irq_level());
    t.now = BATCH_BH_DELAY_NS;
    t.timer();
    assert_eq!(t.wire.0.len(), 6);
    assert!(t.dev.irq_level());
    assert_eq!(t.r(TDH), 6);
    // One more (empty) bottom-half run, then nothing is armed.
    t.now += BATCH_BH_DELAY_NS;
    t.timer();
    assert_eq!(t.dev.next_deadline(), None);
}

#[test]
fn coalesced_zones_exclude_exactly_seven_registers() {
    let base = 0xFEB8_0000;
    let zones = E1000::coalesced_zones(base);
    assert_eq!(zones.len(), 8);
    let total: u64 = zones.iter().map(|z| z.1).sum();
    assert_eq!(total, BAR0_SIZE - 7 * 4);
    assert_eq!(zones[0], (base, MDIC));
    let last = zones[zones.len() - 1];
    assert_eq!(last.0 + last.1, base + BAR0_SIZE);
    for pair in zones.windows(2) {
        let gap = pair[0].0 + pair[0].1;
        assert_eq!(pair[1].0 - gap, 4, "one register between zones");
        assert!(E1000::COALESCIBLE_EXCLUDED.contains(&(gap - base)));
    }
    for reg in E1000::COALESCIBLE_EXCLUDED {
        let a = base + reg;
        assert!(!zones.iter().any(|&(s, l)| a + 4 > s && a < s + l));
    }
}

#[test]
fn ctrl_reset_restores_defaults() {
    let mut t = Rig::new(Mitigation::Itr);
    t.w(ITR, 1000);
    t.w(IMS, ICR_CAUSES);
    t.w(ICS, ICR_LSC);
    t.w(RA, 0);
    t.setup_tx(128);
    assert!(t.dev.irq_level());
    let ctrl = t.r(CTRL);
    t.w(CTRL, ctrl | CTRL_RST);
    assert!(!t.dev.irq_level());
    assert_eq!(t.r(CTRL) & CTRL_RST, 0);
    assert_eq!(t.r(IMS), 0);
    assert_eq!(t.r(TCTL), 0);
    assert_eq!(t.r(TDLEN), 0);
    assert_eq!(t.r(RA), 0x1200_5452);
    assert_eq!(t.dev.next_deadline(), None);
    assert_eq!(t.dev.stats().resets, 1);
    assert_eq!(t.dev.pci().read(4) & 0x7, 0x7, "config space untouched");
}

#[test]
fn io_bar_reaches_registers() {
    let mut t = Rig::new(Mitigation::Off);
    let (ram, wire) = (&t.ram, &mut t.wire);
    t.dev.io_write(IOADDR, STATUS as u32, 0, ram, wire);
    assert_eq!(t.dev.io_read(IOADDR, 0), STATUS as u32);
    assert_eq!(t.dev.io_read(IODATA, 0), STATUS_VALUE);
    t.dev.io_write(IOADDR, IMS as u32, 0, ram, wire);
    t.dev.io_write(IODATA, ICR_LSC, 0, ram, wire);
    assert_eq!(t.dev.mmio_read(IMS, 0), ICR_LSC);
    t.dev.io_write(IOADDR, CTRL as u32, 0, ram, wire);
    t.dev.io_write(IODATA, CTRL_RST, 0, ram, wire);
    assert_eq!(t.dev.mmio_read(IMS, 0), 0);
    assert_eq!(t.dev.io_read(0x20, 0), 0);
}
