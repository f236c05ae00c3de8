//! RX: frames sent into the tap (through a packet socket bound to it) must
//! land in the guest's RX buffers intact, in order, with the right
//! `num_buffers` when mergeable RX buffers are negotiated.

use crate::guest::{DriverQueue, GuestMemory, Layout};
use crate::{frame, TxRig, BUF_SIZE, L0, NET_HDR_LEN, QUEUE_SIZE};
use anyhow::{ensure, Result};
use nettest::features::VIRTIO_NET_F_MRG_RXBUF;
use rvhost_logic::split_ring::{Desc, VRING_DESC_F_WRITE};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

const RX: u32 = 0;

/// A used element: descriptor id, bytes written.
pub type Used = (u16, u32);

/// The guest side of the RX ring: posts buffers of `buf_len` bytes (slot
/// `n`'s buffer is descriptor `n`), collects used ones.
pub struct RxRing<'a> {
    pub queue: DriverQueue<'a>,
    pub buf_len: u32,
}

impl<'a> RxRing<'a> {
    pub fn new(
        mem: &'a GuestMemory,
        layout: Layout,
        kick: &'a vmm_sys_util::eventfd::EventFd,
        event_idx: bool,
        buf_len: u32,
    ) -> Self {
        Self {
            queue: DriverQueue::new(mem, layout, kick, event_idx),
            buf_len,
        }
    }

    /// Posts every buffer of the ring and publishes them.
    pub fn post_all(&mut self) -> Result<()> {
        for slot in 0..QUEUE_SIZE {
            self.post(slot);
        }
        self.queue.publish()
    }

    /// Posts buffer `slot` (published by the next `publish`).
    pub fn post(&mut self, slot: u16) {
        let desc = Desc {
            addr: self.queue.layout.buf(slot),
            len: self.buf_len,
            flags: VRING_DESC_F_WRITE,
            next: 0,
        };
        self.queue.write_desc(slot, desc);
        self.queue.post(slot);
    }

    /// Waits for the next used buffer: (descriptor id, length).
    pub fn next_used(&mut self) -> Result<(u16, u32)> {
        self.queue.next_used(Duration::from_secs(5))
    }

    /// The first `len` bytes of the buffer of descriptor `id`.
    pub fn read_buf(&self, id: u16, len: u32) -> Vec<u8> {
        self.queue.mem.read(self.queue.layout.buf(id), len as usize)
    }

    /// Collects the next packet: its buffers (with mergeable buffers, as many
    /// as its header's `num_buffers` says), their bytes one after the other.
    pub fn next_packet(&mut self, mergeable: bool) -> Result<(Vec<Used>, Vec<u8>)> {
        let (id, len) = self.next_used()?;
        let mut bufs = vec![(id, len)];
        let mut bytes = self.read_buf(id, len);
        if mergeable {
            ensure!(
                bytes.len() >= 12,
                "first buffer of {} bytes: no header",
                bytes.len()
            );
            let num_buffers = u16::from_le_bytes([bytes[10], bytes[11]]);
            ensure!(num_buffers >= 1, "num_buffers 0");
            for _ in 1..num_buffers {
                let (id, len) = self.next_used()?;
                bytes.extend_from_slice(&self.read_buf(id, len));
                bufs.push((id, len));
            }
        }
        Ok((bufs, bytes))
    }

    /// Gives buffers back to the device.
    pub fn repost(&mut self, bufs: &[Used]) -> Result<()> {
        for &(id, _) in bufs {
            self.post(id);
        }
        self.queue.publish()
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
    let mut ring = RxRing::new(&rig.mem, L0, &rig.kick, event_idx, buf_len);
    // Poll the used ring: never ask for an interrupt.
    ring.queue.no_interrupts();
    ring.post_all()?;
    let worker = crate::cpu::worker_tid()?;
    let mut window = None;
    let start = std::time::Instant::now();
    for i in 0..frames {
        if i == args.warmup {
            window = Some(crate::Window::open(worker, ring.queue.kicks, &rig.call)?);
        }
        let f = frame(i, size);
        inject(&rig.sniffer, &f)?;
        let (bufs, got) = ring.next_packet(mergeable.is_some())?;
        let expect_buffers = if mergeable.is_some() {
            (f.len() + NET_HDR_LEN).div_ceil(buf_len as usize)
        } else {
            1
        };
        ensure!(
            bufs.len() == expect_buffers,
            "frame {i}: {} buffers used, expected {expect_buffers}",
            bufs.len()
        );
        ensure!(
            got.len() == f.len() + NET_HDR_LEN,
            "frame {i}: {} bytes used, expected {}",
            got.len(),
            f.len() + NET_HDR_LEN
        );
        ensure!(got[NET_HDR_LEN..] == f[..], "frame {i}: payload differs");
        ring.repost(&bufs)?;
    }
    let measured = window
        .map(|w| w.close(args, ring.queue.kicks, &rig.call))
        .transpose()?;
    let device_stats = crate::stats::read(&rig.dev, RX);
    crate::stats::verify(device_stats, frames, None)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{device}: RX {frames} frames of {size} B (event_idx {event_idx}, mergeable {:?}): all landed in order, byte for byte; {:.0} pps, {} kicks",
        mergeable,
        f64::from(frames) / secs,
        ring.queue.kicks
    );
    println!("  {}", crate::stats::describe(device_stats, frames));
    crate::report(args, "rx", measured);
    Ok(())
}

/// RX in bursts (`--rx-burst`): `burst` frames arrive (100 µs apart) and wait
/// on the tap while the guest has no buffers; then it posts one buffer per
/// frame and the device drains them in one go. The JSON figures are the
/// drains' (from the posting to the last used buffer); the line printed also
/// gives the worker's time with the arrivals and how often they woke it.
pub fn bursts(args: &crate::Args, burst: u32) -> Result<()> {
    let device = args.device.as_str();
    ensure!(
        burst <= u32::from(QUEUE_SIZE)
            && args.frames.is_multiple_of(burst)
            && args.warmup.is_multiple_of(burst),
        "--frames and --warmup must be multiples of --rx-burst (at most {QUEUE_SIZE})"
    );
    let rig = TxRig::for_queue(device, RX, args.event_idx, 0, args.backend)?;
    let mut ring = RxRing::new(&rig.mem, L0, &rig.kick, args.event_idx, BUF_SIZE as u32);
    ring.queue.no_interrupts();
    let worker = crate::cpu::worker_tid()?;
    let mut free: Vec<u16> = (0..burst as u16).collect();
    let (mut worker_ns, mut driver_ns, mut seconds, mut packets, mut kicks) = (0, 0, 0.0, 0u32, 0);
    // Times the worker slept again during the drains.
    let mut drain_sleeps = 0;
    let _ = crate::interrupts(&rig.call);
    // The worker's time over the measured bursts, arrivals included.
    let mut whole_start = None;
    // Times the worker slept again while frames arrived to an empty ring.
    let mut arrival_wakeups = 0;
    for first in (0..args.frames).step_by(burst as usize) {
        if first == args.warmup {
            whole_start = Some(nettest::thread_cpu::thread_ns(worker)?);
        }
        let sent: Vec<Vec<u8>> = (first..first + burst)
            .map(|i| frame(i, args.size))
            .collect();
        let sleeps_before = nettest::thread_cpu::thread_sleeps(worker)?;
        for f in &sent {
            inject(&rig.sniffer, f)?;
            // Frames apart, as a network delivers them: each arrival can
            // wake the worker on its own.
            std::thread::sleep(Duration::from_micros(100));
        }
        // The wake-ups of those frames find no buffers and end.
        std::thread::sleep(Duration::from_millis(5));
        if first >= args.warmup {
            arrival_wakeups += nettest::thread_cpu::thread_sleeps(worker)? - sleeps_before;
        }
        let (start, kicks_before) = (crate::cpu::Snapshot::take(worker)?, ring.queue.kicks);
        for slot in free.drain(..) {
            ring.post(slot);
        }
        ring.queue.publish()?;
        for (i, f) in (first..).zip(&sent) {
            let (bufs, got) = ring.next_packet(false)?;
            ensure!(
                got.len() == f.len() + NET_HDR_LEN && got[NET_HDR_LEN..] == f[..],
                "frame {i}: {} bytes used, expected {} intact",
                got.len(),
                f.len() + NET_HDR_LEN
            );
            free.extend(bufs.iter().map(|&(id, _)| id));
        }
        let end = crate::cpu::Snapshot::take(worker)?;
        if first >= args.warmup {
            worker_ns += end.worker_ns - start.worker_ns;
            driver_ns += end.own_ns - start.own_ns;
            seconds += end.at.duration_since(start.at).as_secs_f64();
            packets += burst;
            kicks += ring.queue.kicks - kicks_before;
            drain_sleeps += end.worker_sleeps - start.worker_sleeps;
        }
    }
    let device_stats = crate::stats::read(&rig.dev, RX);
    crate::stats::verify(device_stats, args.frames, None)?;
    let whole_ns = nettest::thread_cpu::thread_ns(worker)? - whole_start.unwrap_or(0);
    let per_packet = f64::from(packets.max(1));
    println!(
        "{device}: RX {} frames of {} B in bursts of {burst}: all landed in order, byte for byte; worker {:.0} ns/packet while draining, {:.0} ns/packet with the arrivals; {:.3} worker wake-ups per frame arriving to an empty ring",
        args.frames,
        args.size,
        worker_ns as f64 / per_packet,
        whole_ns as f64 / per_packet,
        arrival_wakeups as f64 / per_packet
    );
    println!("  {}", crate::stats::describe(device_stats, args.frames));
    let measured = crate::Measured {
        packets,
        cost: crate::cpu::Cost {
            seconds,
            worker_ns_per_packet: worker_ns as f64 / per_packet,
            driver_ns_per_packet: driver_ns as f64 / per_packet,
            worker_sleeps_per_packet: drain_sleeps as f64 / per_packet,
        },
        kicks,
        interrupts: crate::interrupts(&rig.call),
    };
    crate::report(args, "rx-drain", Some(measured));
    Ok(())
}

/// A frame larger than the posted buffers (no mergeable buffers) is dropped:
/// nothing is written past a buffer, and the next frame that fits lands.
pub fn oversize(device: &str) -> Result<()> {
    const SMALL: u32 = 128;
    let rig = TxRig::for_queue(device, RX, false, 0, crate::Backend::Tap)?;
    let mut ring = RxRing::new(&rig.mem, L0, &rig.kick, false, SMALL);
    // Canaries after each buffer, up to the next one.
    let canary = vec![0xaa; (BUF_SIZE - u64::from(SMALL)) as usize];
    for slot in 0..QUEUE_SIZE {
        rig.mem.write(L0.buf(slot) + u64::from(SMALL), &canary);
    }
    ring.post_all()?;
    for (i, size) in [(0u32, 1500usize), (1, 64)] {
        inject(&rig.sniffer, &frame(i, size))?;
    }
    let (id, len) = ring.next_used()?;
    let got = ring.read_buf(id, len);
    ensure!(
        got[NET_HDR_LEN..] == frame(1, 64)[..],
        "the frame after the oversized one did not land intact"
    );
    std::thread::sleep(Duration::from_millis(200));
    ensure!(
        ring.queue.used_idx() == 1,
        "the oversized frame was placed somewhere"
    );
    for slot in 0..QUEUE_SIZE {
        let after = rig.mem.read(L0.buf(slot) + u64::from(SMALL), canary.len());
        ensure!(after == canary, "written past buffer {slot}");
    }
    println!(
        "{device}: RX oversized frame dropped, nothing written past a buffer, next frame landed"
    );
    Ok(())
}

/// Sends `frame` into the tap through the packet socket bound to it, if
/// the socket has room now; whether it went.
pub fn try_inject(sniffer: &OwnedFd, frame: &[u8]) -> bool {
    // SAFETY: sends our buffer on the packet socket bound to the tap.
    let n = unsafe {
        libc::send(
            sniffer.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            libc::MSG_DONTWAIT,
        )
    };
    n == frame.len() as isize
}

/// Sends `frame` into the tap through the packet socket bound to it (the
/// tap then hands it to the device's RX queue).
pub fn inject(sniffer: &OwnedFd, frame: &[u8]) -> Result<()> {
    // SAFETY: sends our buffer on the packet socket bound to the tap.
    let n = unsafe { libc::send(sniffer.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    ensure!(
        n == frame.len() as isize,
        "send into the tap: {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}
