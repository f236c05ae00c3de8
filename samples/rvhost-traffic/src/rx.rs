//! RX: frames sent into the tap (through a packet socket bound to it) must
//! land in the guest's RX buffers intact, in order, with the right
//! `num_buffers` when mergeable RX buffers are negotiated.

use crate::{
    frame, TxRig, AVAIL_GPA, BUF_GPA, BUF_SIZE, DESC_GPA, NET_HDR_LEN, QUEUE_SIZE, USED_GPA,
};
use anyhow::{ensure, Result};
use rvhost_logic::split_ring::{Desc, VRING_DESC_F_WRITE};
use std::os::fd::AsRawFd;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

const RX: u32 = 0;
const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << 15;

/// The guest side of the RX ring: posts buffers, collects used ones.
struct RxRing<'a> {
    rig: &'a TxRig,
    buf_len: u32,
    avail_idx: u16,
    used_seen: u16,
    event_idx: bool,
    kicks: u32,
}

impl RxRing<'_> {
    /// Posts every buffer of the ring and publishes them.
    fn post_all(&mut self) -> Result<()> {
        for slot in 0..QUEUE_SIZE {
            self.post(slot);
            self.avail_idx = self.avail_idx.wrapping_add(1);
        }
        self.avail_idx = 0;
        self.publish(QUEUE_SIZE)
    }

    fn post(&mut self, slot: u16) {
        let mem = &self.rig.mem;
        let desc = Desc {
            addr: BUF_GPA + u64::from(slot) * BUF_SIZE,
            len: self.buf_len,
            flags: VRING_DESC_F_WRITE,
            next: 0,
        };
        mem.write(DESC_GPA + 16 * u64::from(slot), &desc.to_le_bytes());
        mem.write_u16(
            AVAIL_GPA + 4 + 2 * u64::from(self.avail_idx % QUEUE_SIZE),
            slot,
        );
    }

    /// Publishes posted buffers and kicks if the device asked.
    fn publish(&mut self, count: u16) -> Result<()> {
        let mem = &self.rig.mem;
        fence(Ordering::Release);
        let old = self.avail_idx;
        self.avail_idx = self.avail_idx.wrapping_add(count);
        mem.write_u16(AVAIL_GPA + 2, self.avail_idx);
        fence(Ordering::SeqCst);
        if crate::needs_kick(mem, self.event_idx, self.avail_idx, old) {
            self.rig.kick.write(1)?;
            self.kicks += 1;
        }
        Ok(())
    }

    /// Waits for the next used entry: (descriptor id, length).
    fn next_used(&mut self) -> Result<(u16, u32)> {
        let mem = &self.rig.mem;
        let deadline = Instant::now() + Duration::from_secs(5);
        while mem.read_u16(USED_GPA + 2) == self.used_seen {
            ensure!(
                Instant::now() < deadline,
                "no RX buffer used after entry {}",
                self.used_seen
            );
            std::thread::yield_now();
        }
        fence(Ordering::Acquire);
        let at = USED_GPA + 4 + 8 * u64::from(self.used_seen % QUEUE_SIZE);
        let id = mem.read_u16(at);
        let len = u32::from(mem.read_u16(at + 4)) | (u32::from(mem.read_u16(at + 6)) << 16);
        self.used_seen = self.used_seen.wrapping_add(1);
        Ok((id, len))
    }
}

pub fn run(args: &crate::Args) -> Result<()> {
    let (device, frames, size, event_idx, mergeable) = (
        args.device.as_str(),
        args.frames,
        args.size,
        args.event_idx,
        args.mergeable,
    );
    let extra = if mergeable.is_some() {
        VIRTIO_NET_F_MRG_RXBUF
    } else {
        0
    };
    let buf_len = mergeable.unwrap_or(BUF_SIZE as u32);
    ensure!(
        buf_len as usize > NET_HDR_LEN && u64::from(buf_len) <= BUF_SIZE,
        "bad buffer size"
    );
    let rig = TxRig::for_queue(device, RX, event_idx, extra, args.backend)?;
    let mut ring = RxRing {
        rig: &rig,
        buf_len,
        avail_idx: 0,
        used_seen: 0,
        event_idx,
        kicks: 0,
    };
    if event_idx {
        // Poll the used ring: never ask for an interrupt.
        rig.mem
            .write_u16(AVAIL_GPA + 4 + 2 * u64::from(QUEUE_SIZE), 0xffff);
    }
    ring.post_all()?;
    let start = Instant::now();
    for i in 0..frames {
        let f = frame(i, size);
        inject(&rig, &f)?;
        // Collect the buffers the frame landed in.
        let mut got = Vec::with_capacity(f.len() + NET_HDR_LEN);
        let (id, len) = ring.next_used()?;
        let mut bufs = vec![(id, len)];
        let first = read_buf(&rig, id, len);
        let num_buffers = u16::from_le_bytes([first[10], first[11]]);
        got.extend_from_slice(&first);
        if mergeable.is_some() {
            for _ in 1..num_buffers {
                let (id, len) = ring.next_used()?;
                got.extend_from_slice(&read_buf(&rig, id, len));
                bufs.push((id, len));
            }
        }
        let expect_buffers = if mergeable.is_some() {
            (f.len() + NET_HDR_LEN).div_ceil(buf_len as usize)
        } else {
            1
        };
        ensure!(
            mergeable.is_none() || usize::from(num_buffers) == expect_buffers,
            "frame {i}: num_buffers {num_buffers}, expected {expect_buffers}"
        );
        ensure!(
            got.len() == f.len() + NET_HDR_LEN,
            "frame {i}: {} bytes used, expected {}",
            got.len(),
            f.len() + NET_HDR_LEN
        );
        ensure!(got[NET_HDR_LEN..] == f[..], "frame {i}: payload differs");
        // Give the buffers back.
        for (id, _) in &bufs {
            ring.post(*id);
            ring.avail_idx = ring.avail_idx.wrapping_add(1);
        }
        ring.avail_idx = ring.avail_idx.wrapping_sub(bufs.len() as u16);
        ring.publish(bufs.len() as u16)?;
    }
    let device_stats = crate::stats::read(&rig.dev, RX);
    crate::stats::verify(device_stats, frames, None)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{device}: RX {frames} frames of {size} B (event_idx {event_idx}, mergeable {:?}): all landed in order, byte for byte; {:.0} pps, {} kicks",
        mergeable,
        f64::from(frames) / secs,
        ring.kicks
    );
    println!("  {}", crate::stats::describe(device_stats, frames));
    crate::report(args, "rx", secs, ring.kicks, crate::interrupts(&rig.call));
    Ok(())
}

/// The first `len` bytes of the buffer of descriptor `id`.
fn read_buf(rig: &TxRig, id: u16, len: u32) -> Vec<u8> {
    let mut out = vec![0u8; len as usize];
    let gpa = BUF_GPA + u64::from(id) * BUF_SIZE;
    for (j, b) in out.iter_mut().enumerate() {
        *b = rig.mem.read_u8(gpa + j as u64);
    }
    out
}

/// A frame larger than the posted buffers (no mergeable buffers) is dropped:
/// nothing is written past a buffer, and the next frame that fits lands.
pub fn oversize(device: &str) -> Result<()> {
    const SMALL: u32 = 128;
    let rig = TxRig::for_queue(device, RX, false, 0, crate::Backend::Tap)?;
    let mut ring = RxRing {
        rig: &rig,
        buf_len: SMALL,
        avail_idx: 0,
        used_seen: 0,
        event_idx: false,
        kicks: 0,
    };
    // Canaries after each buffer, up to the next one.
    for slot in 0..QUEUE_SIZE {
        let gpa = BUF_GPA + u64::from(slot) * BUF_SIZE;
        let canary = vec![0xaa; (BUF_SIZE - u64::from(SMALL)) as usize];
        rig.mem.write(gpa + u64::from(SMALL), &canary);
    }
    ring.post_all()?;
    for (i, size) in [(0u32, 1500usize), (1, 64)] {
        let f = frame(i, size);
        inject(&rig, &f)?;
    }
    let (id, len) = ring.next_used()?;
    let got = read_buf(&rig, id, len);
    ensure!(
        got[NET_HDR_LEN..] == frame(1, 64)[..],
        "the frame after the oversized one did not land intact"
    );
    std::thread::sleep(Duration::from_millis(200));
    ensure!(
        rig.mem.read_u16(USED_GPA + 2) == 1,
        "the oversized frame was placed somewhere"
    );
    for slot in 0..QUEUE_SIZE {
        let gpa = BUF_GPA + u64::from(slot) * BUF_SIZE + u64::from(SMALL);
        for j in 0..(BUF_SIZE - u64::from(SMALL)) {
            ensure!(
                rig.mem.read_u8(gpa + j) == 0xaa,
                "written past buffer {slot}"
            );
        }
    }
    println!(
        "{device}: RX oversized frame dropped, nothing written past a buffer, next frame landed"
    );
    Ok(())
}

/// Sends `frame` into the tap (the packet socket bound to it): the tap then
/// hands it to the device's RX queue.
fn inject(rig: &TxRig, frame: &[u8]) -> Result<()> {
    // SAFETY: sends our buffer on the packet socket bound to the tap.
    let n = unsafe {
        libc::send(
            rig.sniffer.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
        )
    };
    ensure!(
        n == frame.len() as isize,
        "send into the tap: {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}
