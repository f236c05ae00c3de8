//! The guest side of the test: "guest memory" in this process, where split
//! rings and buffers live, and a driver for one queue (post buffers, publish
//! them, kick when the device asks, collect used elements).

use anyhow::{ensure, Result};
use rvhost_logic::split_ring::{need_event, Desc, VRING_USED_F_NO_NOTIFY};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::EventFd;

/// Size of guest memory: room for four queue layouts.
pub const MEM_SIZE: usize = 4 << 20;
/// Entries of every ring.
pub const QUEUE_SIZE: u16 = 256;
/// Bytes reserved for each ring slot's buffer.
pub const BUF_SIZE: u64 = 2048;

/// Guest memory: an anonymous mapping; guest-physical 0 is its first byte.
pub struct GuestMemory {
    base: *mut u8,
}

// SAFETY: the mapping is plain memory; every access is volatile and bounds-checked.
unsafe impl Send for GuestMemory {}
// SAFETY: as above; concurrent accesses are the device's and ours, both volatile.
unsafe impl Sync for GuestMemory {}

impl GuestMemory {
    pub fn new() -> Result<Self> {
        // SAFETY: anonymous private mapping, unmapped in Drop.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MEM_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        ensure!(
            base != libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        Ok(Self { base: base.cast() })
    }

    pub fn uaddr(&self, gpa: u64) -> u64 {
        self.base as u64 + gpa
    }

    /// Writes guest memory. Volatile, so that the compiler keeps these
    /// stores before the index that publishes them (memory the device reads
    /// concurrently is not ordinary Rust memory).
    pub fn write(&self, gpa: u64, bytes: &[u8]) {
        assert!(gpa as usize + bytes.len() <= MEM_SIZE);
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: in bounds of our mapping (checked above).
            unsafe { std::ptr::write_volatile(self.base.add(gpa as usize + i), *b) };
        }
    }

    /// A volatile read of a byte the device may write.
    pub fn read_u8(&self, gpa: u64) -> u8 {
        assert!((gpa as usize) < MEM_SIZE);
        // SAFETY: in bounds of our mapping.
        unsafe { std::ptr::read_volatile(self.base.add(gpa as usize)) }
    }

    /// `len` bytes from `gpa`.
    pub fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        (0..len as u64).map(|i| self.read_u8(gpa + i)).collect()
    }

    /// A volatile read of a little-endian u16 the device may write.
    pub fn read_u16(&self, gpa: u64) -> u16 {
        assert!(gpa as usize + 2 <= MEM_SIZE && gpa.is_multiple_of(2));
        // SAFETY: in bounds and 2-aligned (checked above).
        u16::from_le(unsafe { std::ptr::read_volatile(self.base.add(gpa as usize).cast::<u16>()) })
    }

    /// A volatile read of a little-endian u32 the device may write.
    pub fn read_u32(&self, gpa: u64) -> u32 {
        u32::from(self.read_u16(gpa)) | (u32::from(self.read_u16(gpa + 2)) << 16)
    }

    pub fn write_u16(&self, gpa: u64, v: u16) {
        assert!(gpa as usize + 2 <= MEM_SIZE && gpa.is_multiple_of(2));
        // SAFETY: as above.
        unsafe { std::ptr::write_volatile(self.base.add(gpa as usize).cast::<u16>(), v.to_le()) };
    }

    /// Changes the protection of the pages holding `[gpa, gpa + len)`
    /// (`PROT_READ` makes the device's writes there fail with `EFAULT`).
    pub fn protect(&self, gpa: u64, len: u64, prot: i32) -> Result<()> {
        let start = gpa & !0xfff;
        let end = (gpa + len).div_ceil(0x1000) * 0x1000;
        // SAFETY: pages of our own mapping.
        let ret = unsafe {
            libc::mprotect(
                self.base.add(start as usize).cast(),
                (end - start) as usize,
                prot,
            )
        };
        nettest::check(ret, "mprotect")
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: our mapping.
        unsafe { libc::munmap(self.base.cast(), MEM_SIZE) };
    }
}

/// Where one queue's ring and buffers are in guest memory.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    /// Indirect tables, 32 bytes per ring slot.
    pub indirect: u64,
    /// Buffers, [`BUF_SIZE`] per ring slot.
    pub buf: u64,
}

impl Layout {
    /// Layout `i` of four, each in its own MiB of guest memory.
    pub const fn nth(i: u64) -> Self {
        let base = i * 0x10_0000;
        Self {
            desc: base + 0x1_0000,
            avail: base + 0x1_1000,
            used: base + 0x1_2000,
            indirect: base + 0x1_4000,
            buf: base + 0x2_0000,
        }
    }

    /// The buffer of ring slot `slot`.
    pub const fn buf(&self, slot: u16) -> u64 {
        self.buf + slot as u64 * BUF_SIZE
    }

    pub const fn avail_idx(&self) -> u64 {
        self.avail + 2
    }

    pub const fn used_idx(&self) -> u64 {
        self.used + 2
    }

    /// `used_event`, after the avail ring's entries.
    pub const fn used_event(&self) -> u64 {
        self.avail + 4 + 2 * QUEUE_SIZE as u64
    }

    /// `avail_event`, after the used ring's elements.
    pub const fn avail_event(&self) -> u64 {
        self.used + 4 + 8 * QUEUE_SIZE as u64
    }

    /// Used element `pos` (free-running).
    pub const fn used_elem(&self, pos: u16) -> u64 {
        self.used + 4 + 8 * (pos % QUEUE_SIZE) as u64
    }
}

/// The driver of one queue: what a guest's virtio-net driver does with a
/// split ring.
pub struct DriverQueue<'a> {
    pub mem: &'a GuestMemory,
    pub layout: Layout,
    kick: &'a EventFd,
    event_idx: bool,
    /// The avail index published last.
    avail_idx: u16,
    /// Entries posted since, not yet published.
    posted: u16,
    /// Used elements collected so far.
    used_seen: u16,
    pub kicks: u32,
}

impl<'a> DriverQueue<'a> {
    pub fn new(mem: &'a GuestMemory, layout: Layout, kick: &'a EventFd, event_idx: bool) -> Self {
        Self {
            mem,
            layout,
            kick,
            event_idx,
            avail_idx: 0,
            posted: 0,
            used_seen: 0,
            kicks: 0,
        }
    }

    /// Asks the device for no interrupts until the used index wraps (with
    /// `EVENT_IDX`: a `used_event` of 0xffff).
    pub fn no_interrupts(&self) {
        if self.event_idx {
            self.mem.write_u16(self.layout.used_event(), 0xffff);
        }
    }

    pub fn write_desc(&self, slot: u16, desc: Desc) {
        self.mem
            .write(self.layout.desc + 16 * u64::from(slot), &desc.to_le_bytes());
    }

    /// Puts `head` in the next avail entry (published by [`Self::publish`]).
    pub fn post(&mut self, head: u16) {
        let pos = self.avail_idx.wrapping_add(self.posted);
        self.mem.write_u16(
            self.layout.avail + 4 + 2 * u64::from(pos % QUEUE_SIZE),
            head,
        );
        self.posted += 1;
    }

    /// Publishes what was posted and kicks if the device asked for it.
    pub fn publish(&mut self) -> Result<()> {
        fence(Ordering::Release);
        let old = self.avail_idx;
        self.avail_idx = self.avail_idx.wrapping_add(self.posted);
        self.posted = 0;
        self.mem.write_u16(self.layout.avail_idx(), self.avail_idx);
        // Publishing the index before reading the device's wish needs a full barrier.
        fence(Ordering::SeqCst);
        if self.needs_kick(self.avail_idx, old) {
            self.kick.write(1)?;
            self.kicks += 1;
        }
        Ok(())
    }

    /// Whether to kick after publishing `new` (from `old`): with
    /// `EVENT_IDX`, when `avail_event` lies in between; otherwise unless the
    /// device set `VRING_USED_F_NO_NOTIFY`.
    fn needs_kick(&self, new: u16, old: u16) -> bool {
        if self.event_idx {
            need_event(self.mem.read_u16(self.layout.avail_event()), new, old)
        } else {
            self.mem.read_u16(self.layout.used) & VRING_USED_F_NO_NOTIFY == 0
        }
    }

    /// The avail index published last.
    pub fn avail_idx(&self) -> u16 {
        self.avail_idx
    }

    /// The used index the device published.
    pub fn used_idx(&self) -> u16 {
        self.mem.read_u16(self.layout.used_idx())
    }

    /// Entries published and not yet used by the device.
    pub fn in_flight(&self) -> u16 {
        self.avail_idx.wrapping_sub(self.used_idx())
    }

    /// Asks for an interrupt when the device publishes the next used element
    /// (`EVENT_IDX`: `used_event` at the index the driver expects next).
    pub fn interrupt_on_next(&self) {
        if self.event_idx {
            self.mem.write_u16(self.layout.used_event(), self.used_seen);
        }
    }

    /// The next used element `(id, len)`, if the device published one.
    pub fn poll_used(&mut self) -> Option<(u16, u32)> {
        if self.used_idx() == self.used_seen {
            return None;
        }
        fence(Ordering::Acquire);
        let at = self.layout.used_elem(self.used_seen);
        let id = self.mem.read_u16(at);
        let len = self.mem.read_u32(at + 4);
        self.used_seen = self.used_seen.wrapping_add(1);
        Some((id, len))
    }

    /// Waits up to `timeout` for the next used element.
    pub fn next_used(&mut self, timeout: Duration) -> Result<(u16, u32)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(used) = self.poll_used() {
                return Ok(used);
            }
            ensure!(
                Instant::now() < deadline,
                "no buffer used after entry {} (avail index {}, used flags {:#x}, avail_event {})",
                self.used_seen,
                self.avail_idx,
                self.mem.read_u16(self.layout.used),
                self.mem.read_u16(self.layout.avail_event())
            );
            std::thread::yield_now();
        }
    }
}
