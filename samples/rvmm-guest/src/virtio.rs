//! A minimal virtio-net driver over virtio-mmio (version 2): split rings,
//! the RX and TX queues, optional EVENT_IDX, and either polling (interrupts
//! off) or interrupts the way Linux's virtio-net asks for them: TX only
//! when the ring is full (at 3/4 of what is in flight, as
//! `virtqueue_enable_cb_delayed`) and at the end; RX NAPI-style (enable,
//! sleep until the interrupt, disable, drain everything, repeat).

use crate::frames::{frame_matches, put_bytes, write_frame, FrameCount};
use crate::interrupts;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{fence, Ordering};
use rvhost_logic::features;
use rvhost_logic::split_ring::{
    need_event, Desc, VRING_AVAIL_F_NO_INTERRUPT, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT,
    VRING_DESC_F_WRITE, VRING_USED_F_NO_NOTIFY,
};
/// The IOAPIC pin rvmm's irqfd raises for the device.
pub const IRQ_LINE: u8 = 5;

/// How the driver learns that the device used buffers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Spin on the used index with interrupts off.
    Poll,
    /// Sleep until the device's interrupt, asking for as few as Linux does.
    Interrupt,
}

const RX: u32 = 0;
const TX: u32 = 1;
const QUEUE_SIZE: u16 = 256;
/// Where the RX ring and its buffers live.
const RX_DESC: usize = 0x21_0000;
const RX_AVAIL: usize = 0x21_1000;
const RX_USED: usize = 0x21_2000;
const RX_BUFS: usize = 0x38_0000;
/// Where the TX ring and the frame buffers live (guest-physical = virtual).
const DESC: usize = 0x20_0000;
const AVAIL: usize = 0x20_1000;
const USED: usize = 0x20_2000;
const BUFS: usize = 0x30_0000;
const BUF_SIZE: usize = 2048;
/// Per-slot indirect tables (two descriptors: header, frame).
const INDIRECT_TABLES: usize = 0x20_4000;
/// `struct virtio_net_hdr_mrg_rxbuf` (VERSION_1): 12 bytes, all zero on TX.
const NET_HDR_LEN: usize = 12;

/// Feature masks, from the bit numbers in rvhost's pure logic (a `no_std`
/// crate this guest already builds; rust-vmm's bindings need `std`).
const VIRTIO_F_VERSION_1: u64 = 1 << features::VIRTIO_F_VERSION_1;
const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << features::VIRTIO_RING_F_EVENT_IDX;
/// Optional features the workloads can ask for.
pub const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << features::VIRTIO_RING_F_INDIRECT_DESC;
pub const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << features::VIRTIO_NET_F_MRG_RXBUF;
const STATUS_ACK: u32 = 1;
const STATUS_DRIVER: u32 = 2;
const STATUS_DRIVER_OK: u32 = 4;
const STATUS_FEATURES_OK: u32 = 8;

/// The device's register window.
struct Mmio(usize);

impl Mmio {
    fn read(&self, offset: usize) -> u32 {
        // SAFETY: the window is mapped (identity) and these are device registers.
        unsafe { read_volatile((self.0 + offset) as *const u32) }
    }

    fn write(&self, offset: usize, value: u32) {
        // SAFETY: as above.
        unsafe { write_volatile((self.0 + offset) as *mut u32, value) }
    }
}

/// The driver's side of one split ring: where it is and the next avail index.
struct DriverRing {
    queue: u32,
    avail: usize,
    used: usize,
    avail_idx: u16,
    event_idx: bool,
}

impl DriverRing {
    fn used_idx(&self) -> u16 {
        get_u16(self.used + 2)
    }

    /// Asks the device for an interrupt once the used index passes `at`
    /// (EVENT_IDX), or at its next used entry (without).
    fn enable_interrupt(&self, at: u16) {
        if self.event_idx {
            put_u16(self.avail + 4 + 2 * usize::from(QUEUE_SIZE), at);
        } else {
            put_u16(self.avail, 0);
        }
        // The device reads the request after publishing used entries: the
        // caller re-checks the used index after this barrier.
        fence(Ordering::SeqCst);
    }

    /// Asks for no interrupts: the flag without EVENT_IDX; with it, the
    /// `used_event` already written goes stale, as Linux leaves it.
    fn disable_interrupt(&self) {
        if !self.event_idx {
            put_u16(self.avail, VRING_AVAIL_F_NO_INTERRUPT);
        }
    }

    /// Makes descriptor `head` available and kicks the device if it asked
    /// (`avail_event` with EVENT_IDX, else unless it set NO_NOTIFY). Returns
    /// whether it kicked.
    fn publish(&mut self, dev: &Mmio, head: u16) -> bool {
        put_u16(
            self.avail + 4 + 2 * usize::from(self.avail_idx % QUEUE_SIZE),
            head,
        );
        fence(Ordering::Release);
        let old = self.avail_idx;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        put_u16(self.avail + 2, self.avail_idx);
        // Publishing the index before reading the device's suppression state
        // needs a full barrier.
        fence(Ordering::SeqCst);
        let kick = if self.event_idx {
            need_event(
                get_u16(self.used + 4 + 8 * usize::from(QUEUE_SIZE)),
                self.avail_idx,
                old,
            )
        } else {
            get_u16(self.used) & VRING_USED_F_NO_NOTIFY == 0
        };
        if kick {
            dev.write(0x50, self.queue);
        }
        kick
    }
}

fn put_u16(addr: usize, value: u16) {
    // SAFETY: guest RAM, identity-mapped; shared with the device, hence volatile.
    unsafe { write_volatile(addr as *mut u16, value.to_le()) }
}

fn get_u16(addr: usize) -> u16 {
    // SAFETY: as above.
    u16::from_le(unsafe { read_volatile(addr as *const u16) })
}

/// Resets the device, negotiates VERSION_1 (+ EVENT_IDX) and programs
/// `queue`'s rings (left selected, not yet ready).
fn bring_up(
    base: usize,
    event_idx: bool,
    extra_features: u64,
    queue: u32,
    rings: (usize, usize, usize),
) -> Result<Mmio, &'static str> {
    let dev = Mmio(base);
    if dev.read(0) != 0x7472_6976 || dev.read(4) != 2 || dev.read(8) != 1 {
        return Err("no virtio-mmio net device");
    }
    dev.write(0x70, 0);
    dev.write(0x70, STATUS_ACK);
    dev.write(0x70, STATUS_ACK | STATUS_DRIVER);
    dev.write(0x14, 0);
    let low = dev.read(0x10);
    dev.write(0x14, 1);
    let offered = (u64::from(dev.read(0x10)) << 32) | u64::from(low);
    let mut wanted = VIRTIO_F_VERSION_1 | extra_features;
    if event_idx {
        wanted |= VIRTIO_RING_F_EVENT_IDX;
    }
    if offered & wanted != wanted {
        return Err("the device lacks a needed feature");
    }
    dev.write(0x24, 0);
    dev.write(0x20, wanted as u32);
    dev.write(0x24, 1);
    dev.write(0x20, (wanted >> 32) as u32);
    dev.write(0x70, STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK);
    if dev.read(0x70) & STATUS_FEATURES_OK == 0 {
        return Err("FEATURES_OK refused");
    }
    dev.write(0x30, queue);
    if dev.read(0x34) < u32::from(QUEUE_SIZE) {
        return Err("queue too small");
    }
    dev.write(0x38, u32::from(QUEUE_SIZE));
    for (reg, addr) in [(0x80, rings.0), (0x90, rings.1), (0xa0, rings.2)] {
        dev.write(reg, addr as u32);
        dev.write(reg + 4, 0);
    }
    Ok(dev)
}

/// Deliberate mistakes, for the VMM's and the device's bad-input tests.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mistake {
    None,
    /// The TX ring's descriptor table far outside RAM.
    RingOutsideRam,
    /// Descriptors pointing far outside RAM.
    BufferOutsideRam,
}

/// Brings the device up and sends `frames.total` frames of `size` bytes; returns
/// the number of kicks it made.
pub fn tx(
    base: usize,
    frames: FrameCount,
    size: usize,
    event_idx: bool,
    indirect: bool,
    completion: Completion,
    mistake: Mistake,
) -> Result<u32, &'static str> {
    if size < 14 || size + NET_HDR_LEN > BUF_SIZE {
        return Err("bad frame size");
    }
    let extra = if indirect {
        VIRTIO_RING_F_INDIRECT_DESC
    } else {
        0
    };
    let dev = bring_up(base, event_idx, extra, TX, (DESC, AVAIL, USED))?;
    if mistake == Mistake::RingOutsideRam {
        dev.write(0x84, 0x100);
    }
    dev.write(0x44, 1);
    dev.write(
        0x70,
        STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
    );

    let used_event = AVAIL + 4 + 2 * usize::from(QUEUE_SIZE);
    let mut ring = DriverRing {
        queue: TX,
        avail: AVAIL,
        used: USED,
        avail_idx: 0,
        event_idx,
    };
    let mut kicks = 0;
    if completion == Completion::Interrupt {
        ring.disable_interrupt();
    }
    for i in 0..frames.total {
        frames.mark_if_warm(i, kicks);
        // At most a ring's worth in flight.
        let full = |ring: &DriverRing| ring.avail_idx.wrapping_sub(ring.used_idx()) >= QUEUE_SIZE;
        if full(&ring) {
            if completion == Completion::Interrupt {
                let used = ring.used_idx();
                ring.enable_interrupt(used.wrapping_add(QUEUE_SIZE * 3 / 4));
                interrupts::wait_until(|| !full(&ring));
                ring.disable_interrupt();
            } else {
                while full(&ring) {
                    core::hint::spin_loop();
                }
            }
        }
        let slot = ring.avail_idx % QUEUE_SIZE;
        let buf = BUFS + usize::from(slot) * BUF_SIZE;
        put_bytes(buf, &[0; NET_HDR_LEN]);
        write_frame(buf + NET_HDR_LEN, i, size);
        let addr = if mistake == Mistake::BufferOutsideRam {
            1 << 45
        } else {
            buf as u64
        };
        let desc = if indirect {
            // The header and the frame as a two-entry indirect table.
            let table = INDIRECT_TABLES + 32 * usize::from(slot);
            let header = Desc {
                addr,
                len: NET_HDR_LEN as u32,
                flags: VRING_DESC_F_NEXT,
                next: 1,
            };
            let frame = Desc {
                addr: addr + NET_HDR_LEN as u64,
                len: size as u32,
                flags: 0,
                next: 0,
            };
            put_bytes(table, &header.to_le_bytes());
            put_bytes(table + 16, &frame.to_le_bytes());
            Desc {
                addr: table as u64,
                len: 32,
                flags: VRING_DESC_F_INDIRECT,
                next: 0,
            }
        } else {
            Desc {
                addr,
                len: (NET_HDR_LEN + size) as u32,
                flags: 0,
                next: 0,
            }
        };
        put_bytes(DESC + 16 * usize::from(slot), &desc.to_le_bytes());
        if event_idx && completion == Completion::Poll {
            // Interrupts are off in this mode, whatever the device sends.
            put_u16(used_event, ring.avail_idx.wrapping_sub(1));
        }
        if ring.publish(&dev, slot) {
            kicks += 1;
        }
    }
    if completion == Completion::Interrupt {
        ring.enable_interrupt(ring.avail_idx.wrapping_sub(1));
        interrupts::wait_until(|| ring.used_idx() == ring.avail_idx);
    } else {
        while ring.used_idx() != ring.avail_idx {
            core::hint::spin_loop();
        }
    }
    frames.mark_done(kicks);
    Ok(kicks)
}

/// Brings the device up with every RX buffer posted, then receives `frames.total`
/// frames of `size` bytes, checking each, and gives each buffer back.
/// Returns the kicks it made.
pub fn rx(
    base: usize,
    frames: FrameCount,
    size: usize,
    event_idx: bool,
    mergeable: bool,
    completion: Completion,
) -> Result<u32, &'static str> {
    let extra = if mergeable { VIRTIO_NET_F_MRG_RXBUF } else { 0 };
    let dev = bring_up(base, event_idx, extra, RX, (RX_DESC, RX_AVAIL, RX_USED))?;
    for slot in 0..QUEUE_SIZE {
        let buf = RX_BUFS + usize::from(slot) * BUF_SIZE;
        let desc = Desc {
            addr: buf as u64,
            len: BUF_SIZE as u32,
            flags: VRING_DESC_F_WRITE,
            next: 0,
        };
        put_bytes(RX_DESC + 16 * usize::from(slot), &desc.to_le_bytes());
        put_u16(RX_AVAIL + 4 + 2 * usize::from(slot), slot);
    }
    if event_idx {
        // Not before the first frame (interrupt mode asks per wait).
        put_u16(RX_AVAIL + 4 + 2 * usize::from(QUEUE_SIZE), 0xffff);
    } else if completion == Completion::Interrupt {
        put_u16(RX_AVAIL, VRING_AVAIL_F_NO_INTERRUPT);
    }
    fence(Ordering::Release);
    put_u16(RX_AVAIL + 2, QUEUE_SIZE);
    let mut ring = DriverRing {
        queue: RX,
        avail: RX_AVAIL,
        used: RX_USED,
        avail_idx: QUEUE_SIZE,
        event_idx,
    };
    dev.write(0x44, 1);
    dev.write(
        0x70,
        STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
    );
    dev.write(0x50, RX);
    let mut kicks = 1;
    let mut seen: u16 = 0;
    for i in 0..frames.total {
        frames.mark_if_warm(i, kicks);
        if ring.used_idx() == seen {
            if completion == Completion::Interrupt {
                // NAPI: sleep until the device signals, then drain with
                // interrupts disabled until the ring is empty again.
                ring.enable_interrupt(seen);
                interrupts::wait_until(|| ring.used_idx() != seen);
                ring.disable_interrupt();
            } else {
                while ring.used_idx() == seen {
                    core::hint::spin_loop();
                }
            }
        }
        fence(Ordering::Acquire);
        let elem = RX_USED + 4 + 8 * usize::from(seen % QUEUE_SIZE);
        let id = get_u16(elem);
        let len = usize::from(get_u16(elem + 4));
        seen = seen.wrapping_add(1);
        if id >= QUEUE_SIZE || len != NET_HDR_LEN + size {
            return Err("an RX buffer came back with the wrong length");
        }
        // With mergeable buffers, `num_buffers`: one 2048-byte buffer holds
        // any frame here. (Without, upstream vhost-net leaves the field 0.)
        if mergeable && get_u16(RX_BUFS + usize::from(id) * BUF_SIZE + 10) != 1 {
            return Err("an RX header's num_buffers is not 1");
        }
        if !frame_matches(RX_BUFS + usize::from(id) * BUF_SIZE + NET_HDR_LEN, i, size) {
            return Err("an RX frame differs from what was sent");
        }
        // Give the buffer back.
        if ring.publish(&dev, id) {
            kicks += 1;
        }
    }
    frames.mark_done(kicks);
    Ok(kicks)
}
