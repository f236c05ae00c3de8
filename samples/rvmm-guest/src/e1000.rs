//! A minimal e1000 (82540EM) driver. It finds the card through PCI
//! configuration mechanism 1, places its BARs as firmware would, resets it,
//! reads the MAC from the EEPROM (EERD), sets up one TX and one RX ring of
//! 256 legacy descriptors and takes the card's level-triggered INTx through
//! the IOAPIC. Register traffic per interrupt is the Linux driver's: ICR
//! read, IMC write and a flushing STATUS read in the handler; IMS write and
//! STATUS read when the NAPI-style poll is done. TX writes TDT per frame,
//! or, with Rizzo's deferral, only while no TX interrupt is pending (the
//! poll writes the rest). RX gives buffers back with an RDT write per 16.

use crate::frames::{frame_matches, put_bytes, write_frame, FrameCount};
use crate::interrupts;
use core::arch::asm;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Where this driver puts BAR0 (128 KiB) and BAR1 (I/O).
const BAR0: usize = 0xe000_0000;
const BAR1: u32 = 0xc000;
const VENDOR_DEVICE: u32 = 0x100e_8086;

const CTRL: usize = 0x0;
const STATUS: usize = 0x8;
const EERD: usize = 0x14;
const ICR: usize = 0xc0;
const ITR: usize = 0xc4;
const IMS: usize = 0xd0;
const IMC: usize = 0xd8;
const RCTL: usize = 0x100;
const TCTL: usize = 0x400;
const RDBAL: usize = 0x2800;
const RDBAH: usize = 0x2804;
const RDLEN: usize = 0x2808;
const RDH: usize = 0x2810;
const RDT: usize = 0x2818;
const TDBAL: usize = 0x3800;
const TDBAH: usize = 0x3804;
const TDLEN: usize = 0x3808;
const TDH: usize = 0x3810;
const TDT: usize = 0x3818;
const MTA: usize = 0x5200;
const RAL: usize = 0x5400;
const RAH: usize = 0x5404;

const CTRL_SLU: u32 = 1 << 6;
const CTRL_RST: u32 = 1 << 26;
const ICR_TXDW: u32 = 1 << 0;
const ICR_TXQE: u32 = 1 << 1;
const ICR_LSC: u32 = 1 << 2;
const ICR_RXSEQ: u32 = 1 << 3;
const ICR_RXDMT0: u32 = 1 << 4;
const ICR_RXT0: u32 = 1 << 7;
/// What Linux's e1000 unmasks (IMS_ENABLE_MASK).
const IMS_ENABLE: u32 = ICR_RXT0 | ICR_TXDW | ICR_RXDMT0 | ICR_RXSEQ | ICR_LSC;
/// Linux's first ITR value in its default (dynamic) mode: 20000
/// interrupts/s in 256 ns units. The device decides whether to honour it.
const ITR_LINUX: u32 = 195;
const RCTL_EN: u32 = 1 << 1;
const RCTL_BAM: u32 = 1 << 15;
const RCTL_SECRC: u32 = 1 << 26;
const TCTL_EN: u32 = 1 << 1;
const TCTL_PSP: u32 = 1 << 3;
const TXD_EOP: u8 = 1 << 0;
const TXD_IFCS: u8 = 1 << 1;
const TXD_RS: u8 = 1 << 3;
const DD: u8 = 1 << 0;

const RING: u16 = 256;
const TX_RING: usize = 0x50_0000;
const RX_RING: usize = 0x50_1000;
const TX_BUFS: usize = 0x60_0000;
const RX_BUFS: usize = 0x70_0000;
const BUF_SIZE: usize = 2048;

/// Causes the handler read from ICR and the poll has not handled yet.
static CAUSES: AtomicU32 = AtomicU32::new(0);
/// The handler masked the card and wants the poll to run.
static POLL: AtomicBool = AtomicBool::new(false);

fn reg_read(reg: usize) -> u32 {
    // SAFETY: BAR0, which `probe` placed inside the identity-mapped 4 GiB.
    unsafe { read_volatile((BAR0 + reg) as *const u32) }
}

fn reg_write(reg: usize, value: u32) {
    // SAFETY: as above.
    unsafe { write_volatile((BAR0 + reg) as *mut u32, value) }
}

fn pci_address(slot: u32, reg: u32) -> u32 {
    0x8000_0000 | (slot << 11) | (reg & 0xfc)
}

fn pci_read(slot: u32, reg: u32) -> u32 {
    let value: u32;
    // SAFETY: configuration mechanism 1: select, then read the data port.
    unsafe {
        asm!("out dx, eax", in("dx") 0xcf8u16, in("eax") pci_address(slot, reg), options(nomem, nostack));
        asm!("in eax, dx", in("dx") 0xcfcu16, out("eax") value, options(nomem, nostack));
    }
    value
}

fn pci_write(slot: u32, reg: u32, value: u32) {
    // SAFETY: configuration mechanism 1: select, then write the data port.
    unsafe {
        asm!("out dx, eax", in("dx") 0xcf8u16, in("eax") pci_address(slot, reg), options(nomem, nostack));
        asm!("out dx, eax", in("dx") 0xcfcu16, in("eax") value, options(nomem, nostack));
    }
}

/// The hard interrupt handler (runs before the EOI): reading ICR clears
/// the causes and so drops the level line; mask the card until the poll.
fn interrupt() {
    let icr = reg_read(ICR);
    if icr == 0 {
        return;
    }
    reg_write(IMC, !0);
    let _ = reg_read(STATUS);
    CAUSES.fetch_or(icr, Ordering::Relaxed);
    POLL.store(true, Ordering::Release);
}

/// Ends a poll: unmask the card again (and flush the write).
fn unmask() {
    reg_write(IMS, IMS_ENABLE);
    let _ = reg_read(STATUS);
}

/// Takes a pending poll request, if any: the causes it brought.
fn take_poll() -> Option<u32> {
    POLL.swap(false, Ordering::Acquire)
        .then(|| CAUSES.swap(0, Ordering::Relaxed))
}

fn desc_u8(ring: usize, i: u16, offset: usize) -> u8 {
    // SAFETY: a descriptor in the ring this driver owns in guest RAM.
    unsafe { read_volatile((ring + 16 * usize::from(i) + offset) as *const u8) }
}

fn desc_u16(ring: usize, i: u16, offset: usize) -> u16 {
    // SAFETY: as above.
    u16::from_le(unsafe { read_volatile((ring + 16 * usize::from(i) + offset) as *const u16) })
}

fn put_desc(ring: usize, i: u16, addr: u64, len: u16, cmd: u8) {
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&addr.to_le_bytes());
    d[8..10].copy_from_slice(&len.to_le_bytes());
    d[11] = cmd;
    put_bytes(ring + 16 * usize::from(i), &d);
}

/// Finds the card, places its BARs, resets it, programs the MAC and the
/// interrupt routing. Interrupts stay masked in the card.
fn probe() -> Result<(), &'static str> {
    let slot = (0..32)
        .find(|&s| pci_read(s, 0) == VENDOR_DEVICE)
        .ok_or("no 82540EM on PCI bus 0")?;
    // Size the BARs as firmware does, then place them.
    pci_write(slot, 0x10, !0);
    if pci_read(slot, 0x10) & !0xf != 0xfffe_0000 {
        return Err("BAR0 is not 128 KiB of memory");
    }
    pci_write(slot, 0x10, BAR0 as u32);
    pci_write(slot, 0x14, !0);
    if pci_read(slot, 0x14) & 1 == 0 {
        return Err("BAR1 is not I/O space");
    }
    pci_write(slot, 0x14, BAR1);
    pci_write(slot, 0x04, 0x7); // I/O, memory, bus master
    let line = (pci_read(slot, 0x3c) & 0xff) as u8;
    interrupts::init(line, interrupts::Trigger::Level);
    interrupts::set_hook(interrupt);

    reg_write(IMC, !0);
    reg_write(CTRL, reg_read(CTRL) | CTRL_RST);
    if reg_read(CTRL) & CTRL_RST != 0 {
        return Err("reset did not complete");
    }
    reg_write(IMC, !0);
    let _ = reg_read(ICR);
    let mut mac = [0u8; 6];
    for word in 0..3u32 {
        reg_write(EERD, 1 | (word << 8));
        let value = reg_read(EERD);
        if value & (1 << 4) == 0 {
            return Err("EEPROM read did not complete");
        }
        let bytes = ((value >> 16) as u16).to_le_bytes();
        mac[2 * word as usize..2 * word as usize + 2].copy_from_slice(&bytes);
    }
    reg_write(RAL, u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]));
    reg_write(
        RAH,
        u32::from(u16::from_le_bytes([mac[4], mac[5]])) | 1 << 31,
    );
    reg_write(CTRL, reg_read(CTRL) | CTRL_SLU);
    reg_write(ITR, ITR_LINUX);
    Ok(())
}

fn setup_tx(tdlen: u32) {
    for i in 0..RING {
        put_desc(TX_RING, i, 0, 0, 0);
    }
    reg_write(TDBAL, TX_RING as u32);
    reg_write(TDBAH, 0);
    reg_write(TDLEN, tdlen);
    reg_write(TDH, 0);
    reg_write(TDT, 0);
    reg_write(TCTL, TCTL_EN | TCTL_PSP);
}

/// The transmit side's state.
struct Tx {
    next_to_use: u16,
    next_to_clean: u16,
    /// The last TDT written.
    tdt: u16,
    /// A TX interrupt is still to come for the frames TDT announced.
    irq_pending: bool,
    deferral: bool,
    tdt_writes: u32,
}

impl Tx {
    fn write_tdt(&mut self) {
        reg_write(TDT, u32::from(self.next_to_use));
        self.tdt = self.next_to_use;
        self.irq_pending = true;
        self.tdt_writes += 1;
    }

    /// The NAPI poll: reclaim sent descriptors; with deferral, announce
    /// what was queued meanwhile; unmask.
    fn poll(&mut self, causes: u32) {
        while self.next_to_clean != self.next_to_use
            && desc_u8(TX_RING, self.next_to_clean, 12) & DD != 0
        {
            self.next_to_clean = (self.next_to_clean + 1) % RING;
        }
        if causes & (ICR_TXDW | ICR_TXQE) != 0 {
            self.irq_pending = false;
        }
        if self.deferral && !self.irq_pending && self.tdt != self.next_to_use {
            self.write_tdt();
        }
        unmask();
    }

    /// Sleeps until the card interrupts, then polls.
    fn wait(&mut self) {
        interrupts::wait_until(|| POLL.load(Ordering::Acquire));
        if let Some(causes) = take_poll() {
            self.poll(causes);
        }
    }
}

/// Sends `frames.total` frames of `size` bytes; returns the TDT writes.
pub fn tx(frames: FrameCount, size: usize, deferral: bool) -> Result<u32, &'static str> {
    if !(14..=BUF_SIZE).contains(&size) {
        return Err("bad frame size");
    }
    probe()?;
    setup_tx(u32::from(RING) * 16);
    unmask();
    let mut tx = Tx {
        next_to_use: 0,
        next_to_clean: 0,
        tdt: 0,
        irq_pending: false,
        deferral,
        tdt_writes: 0,
    };
    for i in 0..frames.total {
        frames.mark_if_warm(i, tx.tdt_writes);
        if let Some(causes) = take_poll() {
            tx.poll(causes);
        }
        while (tx.next_to_use + 1) % RING == tx.next_to_clean {
            // Full: the card must know about everything before we sleep.
            if tx.tdt != tx.next_to_use {
                tx.write_tdt();
            }
            tx.wait();
        }
        let slot = tx.next_to_use;
        let buf = TX_BUFS + usize::from(slot) * BUF_SIZE;
        write_frame(buf, i, size);
        put_desc(
            TX_RING,
            slot,
            buf as u64,
            size as u16,
            TXD_EOP | TXD_IFCS | TXD_RS,
        );
        tx.next_to_use = (slot + 1) % RING;
        if !(tx.deferral && tx.irq_pending) {
            tx.write_tdt();
        }
    }
    if tx.tdt != tx.next_to_use {
        tx.write_tdt();
    }
    while tx.next_to_clean != tx.next_to_use {
        tx.wait();
    }
    frames.mark_done(tx.tdt_writes);
    Ok(tx.tdt_writes)
}

/// Receives `frames.total` frames of `size` bytes, checking each; returns the RDT
/// writes.
pub fn rx(frames: FrameCount, size: usize) -> Result<u32, &'static str> {
    probe()?;
    for i in 0..RING {
        put_desc(
            RX_RING,
            i,
            (RX_BUFS + usize::from(i) * BUF_SIZE) as u64,
            0,
            0,
        );
    }
    reg_write(RDBAL, RX_RING as u32);
    reg_write(RDBAH, 0);
    reg_write(RDLEN, u32::from(RING) * 16);
    reg_write(RDH, 0);
    // One descriptor stays empty: RDT == RDH would mean "no buffers".
    reg_write(RDT, u32::from(RING) - 1);
    reg_write(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    unmask();
    let (mut next_to_clean, mut received, mut since_rdt, mut rdt_writes) = (0u16, 0u32, 0, 0);
    while received < frames.total {
        interrupts::wait_until(|| POLL.load(Ordering::Acquire));
        let _ = take_poll();
        while received < frames.total && desc_u8(RX_RING, next_to_clean, 12) & DD != 0 {
            let len = usize::from(desc_u16(RX_RING, next_to_clean, 8));
            let buf = RX_BUFS + usize::from(next_to_clean) * BUF_SIZE;
            if len != size.max(60) || !frame_matches(buf, received, size) {
                return Err("an RX frame differs from what was sent");
            }
            put_bytes(RX_RING + 16 * usize::from(next_to_clean) + 12, &[0]);
            next_to_clean = (next_to_clean + 1) % RING;
            received += 1;
            frames.mark_if_warm(received, rdt_writes);
            since_rdt += 1;
            if since_rdt == 16 {
                reg_write(RDT, u32::from((next_to_clean + RING - 1) % RING));
                rdt_writes += 1;
                since_rdt = 0;
            }
        }
        unmask();
    }
    frames.mark_done(rdt_writes);
    Ok(rdt_writes)
}

/// The ordering pattern (rvmm's e1000_order.rs; keep them equal): 400
/// multicast-table writes (coalescible), the first 200 in a row (more than
/// KVM's ring holds), then with an IMC write of 0 (exits, no effect) after
/// every third.
pub fn order() -> Result<u32, &'static str> {
    probe()?;
    for k in 0..400u32 {
        reg_write(MTA + 4 * (k as usize % 128), k);
        if k >= 200 && k % 3 == 2 {
            reg_write(IMC, 0);
        }
    }
    Ok(0)
}

/// Misprograms the TX side the ways a buggy or hostile driver might, then
/// sends frame 0 properly; the card must stay sane throughout.
pub fn bad_input(size: usize) -> Result<u32, &'static str> {
    probe()?;
    // TDLEN not a multiple of 128 (the card uses the whole descriptors).
    setup_tx(1000);
    // A descriptor pointing far outside RAM.
    put_desc(
        TX_RING,
        0,
        1 << 45,
        size as u16,
        TXD_EOP | TXD_IFCS | TXD_RS,
    );
    reg_write(TDT, 1);
    // A tail far beyond the ring.
    reg_write(TDT, 5000);
    // Then a good frame.
    let buf = TX_BUFS + BUF_SIZE;
    write_frame(buf, 0, size);
    put_desc(
        TX_RING,
        1,
        buf as u64,
        size as u16,
        TXD_EOP | TXD_IFCS | TXD_RS,
    );
    reg_write(TDT, 2);
    for _ in 0..1_000_000 {
        if desc_u8(TX_RING, 1, 12) & DD != 0 {
            return Ok(3);
        }
        core::hint::spin_loop();
    }
    Err("the good frame after the bad input was never sent")
}
