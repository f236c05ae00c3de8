//! The test frames both sides agree on (rvmm's `nettest::frame`):
//! broadcast destination, a local source address, EtherType 0x88b5, then
//! payload bytes derived from the frame's number.

use core::ptr::{read_volatile, write_volatile};

/// How many frames a workload moves, and how many of them are its warm-up.
#[derive(Clone, Copy, Debug)]
pub struct FrameCount {
    pub total: u32,
    /// Frames before the steady-state mark (0: no mark).
    pub warmup: u32,
}

impl FrameCount {
    /// Marks the start of the steady-state window when `done` frames are
    /// the warm-up; `kicks` are the doorbell writes made so far.
    pub fn mark_if_warm(&self, done: u32, kicks: u32) {
        if self.warmup != 0 && done == self.warmup {
            crate::mark(kicks, done);
        }
    }

    /// Marks the end of the steady-state window: every frame has moved
    /// (before the closing report, whose port writes are not traffic).
    pub fn mark_done(&self, kicks: u32) {
        if self.warmup != 0 {
            crate::mark(kicks, self.total);
        }
    }
}

/// Copies `bytes` into guest RAM at `addr` (shared with a device, hence volatile).
pub fn put_bytes(addr: usize, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        // SAFETY: the caller's buffer in identity-mapped guest RAM.
        unsafe { write_volatile((addr + i) as *mut u8, *b) }
    }
}

/// Test frame `i` (the same pattern the host side checks): broadcast, a
/// local source address, EtherType 0x88b5, then payload bytes.
pub fn write_frame(addr: usize, i: u32, size: usize) {
    put_bytes(addr, &[0xff; 6]);
    put_bytes(addr + 6, &[0x02, 0, 0, 0, 0, 1]);
    put_bytes(addr + 12, &0x88b5u16.to_be_bytes());
    for j in 0..size.saturating_sub(14) {
        let b = (i as usize).wrapping_mul(31).wrapping_add(j) as u8;
        // SAFETY: inside this frame's buffer.
        unsafe { write_volatile((addr + 14 + j) as *mut u8, b) }
    }
}

/// Whether frame `i` of `size` bytes (the pattern `write_frame` makes) is at `addr`.
pub fn frame_matches(addr: usize, i: u32, size: usize) -> bool {
    let byte = |off: usize| {
        // SAFETY: inside a posted RX buffer in guest RAM.
        unsafe { read_volatile((addr + off) as *const u8) }
    };
    let head: [u8; 14] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5,
    ];
    head.iter().enumerate().all(|(j, b)| byte(j) == *b)
        && (0..size.saturating_sub(14))
            .all(|j| byte(14 + j) == (i as usize).wrapping_mul(31).wrapping_add(j) as u8)
}
