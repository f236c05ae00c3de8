//! A minimal virtio-net driver over virtio-mmio (version 2): split rings,
//! the RX and TX queues, optional EVENT_IDX, and either polling (interrupts
//! off) or interrupts the way Linux's virtio-net asks for them: TX only
//! when the ring is full (at 3/4 of what is in flight, as
//! `virtqueue_enable_cb_delayed`) and at the end; RX NAPI-style (enable,
//! sleep until the interrupt, disable, drain everything, repeat). The echo
//! workload (`echo.rs`) builds on the same pieces.

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

pub(crate) const RX: u32 = 0;
pub(crate) const TX: u32 = 1;
pub(crate) const QUEUE_SIZE: u16 = 256;
/// Where the RX ring and its buffers live.
const RX_DESC: usize = 0x21_0000;
const RX_AVAIL: usize = 0x21_1000;
const RX_USED: usize = 0x21_2000;
pub(crate) const RX_BUFS: usize = 0x38_0000;
/// Where the TX ring and the frame buffers live (guest-physical = virtual).
pub(crate) const DESC: usize = 0x20_0000;
pub(crate) const AVAIL: usize = 0x20_1000;
pub(crate) const USED: usize = 0x20_2000;
pub(crate) const BUFS: usize = 0x30_0000;
pub(crate) const BUF_SIZE: usize = 2048;
/// Per-slot indirect tables (two descriptors: header, frame).
const INDIRECT_TABLES: usize = 0x20_4000;
/// `struct virtio_net_hdr_mrg_rxbuf` (VERSION_1): 12 bytes, all zero on TX.
pub(crate) const NET_HDR_LEN: usize = 12;
/// Where `num_buffers` is in that header (with `VIRTIO_NET_F_MRG_RXBUF`).
pub(crate) const NUM_BUFFERS_OFFSET: usize = 10;

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

/// virtio-mmio registers the driver writes.
const QUEUE_READY: usize = 0x44;
const QUEUE_NOTIFY: usize = 0x50;
const STATUS: usize = 0x70;

/// The device's register window.
pub(crate) struct Mmio(usize);

impl Mmio {
    fn read(&self, offset: usize) -> u32 {
        // SAFETY: the window is mapped (identity) and these are device registers.
        unsafe { read_volatile((self.0 + offset) as *const u32) }
    }

    fn write(&self, offset: usize, value: u32) {
        // SAFETY: as above.
        unsafe { write_volatile((self.0 + offset) as *mut u32, value) }
    }

    /// Marks the selected queue ready.
    pub(crate) fn queue_ready(&self) {
        self.write(QUEUE_READY, 1);
    }

    /// Sets DRIVER_OK: the device may use the ready queues from now on.
    pub(crate) fn driver_ok(&self) {
        self.write(
            STATUS,
            STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
        );
    }

    /// Kicks `queue`.
    pub(crate) fn notify(&self, queue: u32) {
        self.write(QUEUE_NOTIFY, queue);
    }
}

/// The driver's side of one split ring: where it is and the next avail index.
pub(crate) struct DriverRing {
    queue: u32,
    avail: usize,
    used: usize,
    pub(crate) avail_idx: u16,
    event_idx: bool,
}

impl DriverRing {
    /// The TX ring at its fixed place, nothing published yet.
    pub(crate) fn tx(event_idx: bool) -> Self {
        Self {
            queue: TX,
            avail: AVAIL,
            used: USED,
            avail_idx: 0,
            event_idx,
        }
    }

    pub(crate) fn used_idx(&self) -> u16 {
        get_u16(self.used + 2)
    }

    /// Used entry `pos` (a free-running index): the head it returns and the
    /// bytes the device wrote. The caller has seen the used index pass
    /// `pos` and fenced (Acquire) since.
    fn used_entry(&self, pos: u16) -> (u16, usize) {
        let elem = self.used + 4 + 8 * usize::from(pos % QUEUE_SIZE);
        (get_u16(elem), usize::from(get_u16(elem + 4)))
    }

    /// Asks for no interrupts until the driver asks again: with EVENT_IDX a
    /// `used_event` the used index will not pass before it wraps, without
    /// it (only when the driver sleeps on interrupts at all) the flag.
    pub(crate) fn quiet_until_asked(&self, completion: Completion) {
        if self.event_idx {
            put_u16(
                self.avail + 4 + 2 * usize::from(QUEUE_SIZE),
                self.used_idx().wrapping_sub(1),
            );
        } else if completion == Completion::Interrupt {
            put_u16(self.avail, VRING_AVAIL_F_NO_INTERRUPT);
        }
    }

    /// Returns once the used index is past `seen`: NAPI-style with
    /// interrupts (ask for one, sleep until it comes, ask for none again),
    /// else spinning.
    pub(crate) fn wait_used_past(&self, seen: u16, completion: Completion) {
        if self.used_idx() != seen {
            return;
        }
        if completion == Completion::Interrupt {
            self.enable_interrupt(seen);
            interrupts::wait_until(|| self.used_idx() != seen);
            self.disable_interrupt();
        } else {
            while self.used_idx() == seen {
                core::hint::spin_loop();
            }
        }
    }

    /// Whether a ring's worth of buffers is in flight.
    fn full(&self) -> bool {
        self.avail_idx.wrapping_sub(self.used_idx()) >= QUEUE_SIZE
    }

    /// Returns once a slot is free (at most a ring's worth in flight); with
    /// interrupts asks for one at 3/4 of the ring, as Linux's
    /// `virtqueue_enable_cb_delayed`.
    pub(crate) fn wait_for_room(&self, completion: Completion) {
        if !self.full() {
            return;
        }
        if completion == Completion::Interrupt {
            let used = self.used_idx();
            self.enable_interrupt(used.wrapping_add(QUEUE_SIZE * 3 / 4));
            interrupts::wait_until(|| !self.full());
            self.disable_interrupt();
        } else {
            while self.full() {
                core::hint::spin_loop();
            }
        }
    }

    /// Returns once the device has used everything published (with
    /// interrupts: one for the last completion).
    pub(crate) fn wait_all_used(&self, completion: Completion) {
        if completion == Completion::Interrupt {
            self.enable_interrupt(self.avail_idx.wrapping_sub(1));
            interrupts::wait_until(|| self.used_idx() == self.avail_idx);
        } else {
            while self.used_idx() != self.avail_idx {
                core::hint::spin_loop();
            }
        }
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
    pub(crate) fn publish(&mut self, dev: &Mmio, head: u16) -> bool {
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
            dev.notify(self.queue);
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
    let dev = negotiate(base, event_idx, extra_features)?;
    program_queue(&dev, queue, rings)?;
    Ok(dev)
}

/// Resets the device and negotiates VERSION_1 (+ EVENT_IDX, + `extra_features`).
pub(crate) fn negotiate(
    base: usize,
    event_idx: bool,
    extra_features: u64,
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
    Ok(dev)
}

/// Programs `queue`'s rings (descriptors, avail, used), leaving it
/// selected and not yet ready.
pub(crate) fn program_queue(
    dev: &Mmio,
    queue: u32,
    rings: (usize, usize, usize),
) -> Result<(), &'static str> {
    dev.write(0x30, queue);
    if dev.read(0x34) < u32::from(QUEUE_SIZE) {
        return Err("queue too small");
    }
    dev.write(0x38, u32::from(QUEUE_SIZE));
    for (reg, addr) in [(0x80, rings.0), (0x90, rings.1), (0xa0, rings.2)] {
        dev.write(reg, addr as u32);
        dev.write(reg + 4, 0);
    }
    Ok(())
}

/// Programs the RX queue (selected, not yet ready) and posts every buffer
/// of it, asking for no interrupts until the driver waits.
pub(crate) fn post_rx_buffers(
    dev: &Mmio,
    event_idx: bool,
    completion: Completion,
) -> Result<DriverRing, &'static str> {
    program_queue(dev, RX, (RX_DESC, RX_AVAIL, RX_USED))?;
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
    let ring = DriverRing {
        queue: RX,
        avail: RX_AVAIL,
        used: RX_USED,
        avail_idx: QUEUE_SIZE,
        event_idx,
    };
    ring.quiet_until_asked(completion);
    fence(Ordering::Release);
    put_u16(RX_AVAIL + 2, QUEUE_SIZE);
    Ok(ring)
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
    dev.queue_ready();
    dev.driver_ok();

    let used_event = AVAIL + 4 + 2 * usize::from(QUEUE_SIZE);
    let mut ring = DriverRing::tx(event_idx);
    let mut kicks = 0;
    if completion == Completion::Interrupt {
        ring.disable_interrupt();
    }
    for i in 0..frames.total {
        frames.mark_if_warm(i, kicks);
        ring.wait_for_room(completion);
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
    ring.wait_all_used(completion);
    frames.mark_done(kicks);
    Ok(kicks)
}

/// The RX buffer of used entry `seen` (which the used index has passed),
/// checked to hold one frame of `size` bytes: its head and the frame's
/// address.
pub(crate) fn take_received(
    ring: &DriverRing,
    seen: u16,
    size: usize,
    mergeable: bool,
) -> Result<(u16, usize), &'static str> {
    fence(Ordering::Acquire);
    let (id, len) = ring.used_entry(seen);
    if id >= QUEUE_SIZE || len != NET_HDR_LEN + size {
        return Err("an RX buffer came back with the wrong length");
    }
    let buf = RX_BUFS + usize::from(id) * BUF_SIZE;
    // With mergeable buffers, `num_buffers`: one 2048-byte buffer holds
    // any frame here. (Without, upstream vhost-net leaves the field 0.)
    if mergeable && get_u16(buf + NUM_BUFFERS_OFFSET) != 1 {
        return Err("an RX header's num_buffers is not 1");
    }
    Ok((id, buf + NET_HDR_LEN))
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
    let dev = negotiate(base, event_idx, extra)?;
    let mut ring = post_rx_buffers(&dev, event_idx, completion)?;
    dev.queue_ready();
    dev.driver_ok();
    dev.notify(RX);
    let mut kicks = 1;
    let mut seen: u16 = 0;
    for i in 0..frames.total {
        frames.mark_if_warm(i, kicks);
        ring.wait_used_past(seen, completion);
        let (id, frame) = take_received(&ring, seen, size, mergeable)?;
        seen = seen.wrapping_add(1);
        if !frame_matches(frame, i, size) {
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
