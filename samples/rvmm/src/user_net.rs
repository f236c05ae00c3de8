//! The userspace baseline: rvmm itself moves the TX ring's frames to the tap
//! in an I/O thread (kick through the ioeventfd, interrupt through the
//! irqfd), as a VMM without an in-kernel backend does.

use crate::memory::GuestRam;
use crate::virtio_mmio::VirtioMmio;
use anyhow::{Context, Result};
use nettest::features::VIRTIO_RING_F_EVENT_IDX;
use rvhost_logic::ring_fault::RingFault;
use rvhost_logic::split_ring::{
    pending, walk_chain, CallSuppression, Desc, DescReader, DriverState, Segment, PACKET_DESC_LIMIT,
};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{fence, Ordering};
use std::thread::JoinHandle;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::EventFd;

const TX: usize = 1;
/// The virtio-net header (VERSION_1) the device strips on TX.
const NET_HDR_LEN: u64 = 12;

/// Reads descriptors from guest memory.
struct GuestDescs<'a> {
    ram: &'a GuestRam,
    table: u64,
}

fn read_desc(ram: &GuestRam, gpa: u64) -> Option<Desc> {
    ram.read_obj::<[u8; 16]>(GuestAddress(gpa))
        .map(Desc::from_le_bytes)
        .ok()
}

impl DescReader for GuestDescs<'_> {
    fn ring_desc(&mut self, index: u16) -> Result<Desc, RingFault> {
        read_desc(self.ram, self.table + 16 * u64::from(index)).ok_or(RingFault::DescUnreadable)
    }
    fn indirect_desc(&mut self, table: u64, index: u16) -> Result<Desc, RingFault> {
        table
            .checked_add(16 * u64::from(index))
            .and_then(|gpa| read_desc(self.ram, gpa))
            .ok_or(RingFault::IndirectUnreadable)
    }
}

/// The running I/O threads (one per ready queue); dropping stops them.
pub struct UserNet {
    stop: EventFd,
    threads: Vec<JoinHandle<()>>,
}

impl UserNet {
    /// Serves the queues the driver made ready: RX (0) from the tap, TX (1)
    /// to it. `kicks` are the queues' ioeventfds.
    pub fn start(
        ram: &GuestRam,
        transport: &VirtioMmio,
        kicks: &[EventFd],
        call: &EventFd,
        err: &EventFd,
        tap: RawFd,
    ) -> Result<Self> {
        let event_idx = transport.driver_features & VIRTIO_RING_F_EVENT_IDX != 0;
        let stop = EventFd::new(libc::EFD_NONBLOCK)?;
        let mut threads = Vec::new();
        for (index, queue) in transport.queues.iter().enumerate().filter(|(_, q)| q.ready) {
            let ring = Ring {
                ram: ram.clone(),
                desc: queue.desc,
                avail: queue.driver,
                used: queue.device,
                num: queue.num as u16,
                event_idx,
            };
            let (kick, call, stop, err) = (
                kicks[index].try_clone()?,
                call.try_clone()?,
                stop.try_clone()?,
                err.try_clone()?,
            );
            let thread = std::thread::Builder::new()
                .name(format!("rvmm-net-io{index}"))
                .spawn(move || {
                    let served = if index == TX {
                        ring.serve_tx(&kick, &call, &stop, tap)
                    } else {
                        ring.serve_rx(&kick, &call, &stop, tap)
                    };
                    if served.is_err() {
                        // A malformed ring: say so and stop, as a vhost device does.
                        let _ = err.write(1);
                    }
                })
                .context("spawning an I/O thread")?;
            threads.push(thread);
        }
        Ok(Self { stop, threads })
    }
}

impl Drop for UserNet {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Waits until one of `fds` is readable; returns which are (`None` on error).
fn wait_readable(fds: &[RawFd]) -> Option<Vec<bool>> {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: polls descriptors of ours.
    if unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, -1) } < 0 {
        return None;
    }
    Some(polls.iter().map(|p| p.revents != 0).collect())
}

struct Ring {
    ram: GuestRam,
    desc: u64,
    avail: u64,
    used: u64,
    num: u16,
    event_idx: bool,
}

impl Ring {
    /// Ring indexes, flags and event fields change under us: one atomic
    /// 16-bit access each, never a byte-wise copy that could tear.
    fn u16_at(&self, gpa: u64) -> u16 {
        self.ram
            .load::<u16>(GuestAddress(gpa), Ordering::Acquire)
            .unwrap_or(0)
    }

    fn put_u16(&self, gpa: u64, v: u16) {
        let _ = self.ram.store(v, GuestAddress(gpa), Ordering::Release);
    }

    /// Publishes the used index and signals the guest if it asked.
    fn finish(&self, last_used: u16, last_avail: u16, calls: &mut CallSuppression, call: &EventFd) {
        fence(Ordering::Release);
        self.put_u16(self.used + 2, last_used);
        fence(Ordering::SeqCst);
        let driver = DriverState {
            event_idx: self.event_idx,
            notify_on_empty: false,
            avail_flags: self.u16_at(self.avail),
            used_event: self.u16_at(self.avail + 4 + 2 * u64::from(self.num)),
            avail_empty: self.u16_at(self.avail + 2) == last_avail,
        };
        if calls.should_signal(last_used, driver) {
            let _ = call.write(1);
        }
    }

    /// RX: moves frames from the tap into the guest's buffers until told to
    /// stop; `Err` for a malformed ring. Reads the tap only when a buffer is
    /// available, so frames wait in the tap, not here.
    fn serve_rx(
        &self,
        kick: &EventFd,
        call: &EventFd,
        stop: &EventFd,
        tap: RawFd,
    ) -> Result<(), RingFault> {
        let (mut last_avail, mut last_used) = (0u16, 0u16);
        let mut calls = CallSuppression::default();
        let mut frame = vec![0u8; 65536];
        let mut segs = [Segment::default(); 64];
        loop {
            let mut have_buffer = pending(self.u16_at(self.avail + 2), last_avail, self.num)? > 0;
            if !have_buffer && self.event_idx {
                // Kick me when you post past what I have seen.
                self.put_u16(self.used + 4 + 8 * u64::from(self.num), last_avail);
                fence(Ordering::SeqCst);
                have_buffer = pending(self.u16_at(self.avail + 2), last_avail, self.num)? > 0;
            }
            let all = [kick.as_raw_fd(), stop.as_raw_fd(), tap];
            let fds = if have_buffer { &all[..] } else { &all[..2] };
            let Some(ready) = wait_readable(fds) else {
                return Ok(());
            };
            if ready[1] {
                return Ok(());
            }
            if ready[0] {
                let _ = kick.read();
            }
            if !have_buffer || !ready.get(2).copied().unwrap_or(false) {
                continue;
            }
            // SAFETY: reads one frame from the tap into our buffer.
            let n = unsafe { libc::read(tap, frame.as_mut_ptr().cast(), frame.len()) };
            let Ok(n) = usize::try_from(n) else { continue };
            fence(Ordering::Acquire);
            let head = self.u16_at(self.avail + 4 + 2 * u64::from(last_avail % self.num));
            let mut descs = GuestDescs {
                ram: &self.ram,
                table: self.desc,
            };
            let chain = walk_chain(&mut descs, self.num, head, &mut segs, &mut {
                PACKET_DESC_LIMIT
            })?;
            if chain.readable != 0 {
                return Err(RingFault::WrongDirection);
            }
            // The header (no offloads, one buffer), then the frame.
            let mut header = [0u8; NET_HDR_LEN as usize];
            header[10] = 1;
            let written = self.write_chain(&segs[..chain.writable], &[&header, &frame[..n]])?;
            // A frame larger than the buffer is dropped; the buffer stays.
            let Some(len) = written else { continue };
            let elem = self.used + 4 + 8 * u64::from(last_used % self.num);
            let _ = self
                .ram
                .write_obj([u32::from(head), len], GuestAddress(elem));
            last_avail = last_avail.wrapping_add(1);
            last_used = last_used.wrapping_add(1);
            self.finish(last_used, last_avail, &mut calls, call);
        }
    }

    /// Writes `parts` one after the other into the buffers `segs`; the bytes
    /// written, or `None` if they do not fit.
    fn write_chain(&self, segs: &[Segment], parts: &[&[u8]]) -> Result<Option<u32>, RingFault> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let room: usize = segs.iter().map(|s| s.len as usize).sum();
        if total > room {
            return Ok(None);
        }
        let (mut seg, mut at) = (0, 0u64);
        for part in parts {
            let mut part: &[u8] = part;
            while !part.is_empty() {
                let s = segs[seg];
                let n = part.len().min((u64::from(s.len) - at) as usize);
                self.ram
                    .write_slice(&part[..n], GuestAddress(s.addr + at))
                    .map_err(|_| RingFault::BufferOutsideMemory)?;
                part = &part[n..];
                at += n as u64;
                if at == u64::from(s.len) {
                    seg += 1;
                    at = 0;
                }
            }
        }
        Ok(Some(total as u32))
    }

    /// TX: waits for kicks and moves frames to the tap until told to stop;
    /// `Err` for a malformed ring.
    fn serve_tx(
        &self,
        kick: &EventFd,
        call: &EventFd,
        stop: &EventFd,
        tap: RawFd,
    ) -> Result<(), RingFault> {
        let (mut last_avail, mut last_used) = (0u16, 0u16);
        let mut calls = CallSuppression::default();
        let mut frame = Vec::with_capacity(65536);
        let mut segs = [Segment::default(); 64];
        loop {
            match wait_readable(&[kick.as_raw_fd(), stop.as_raw_fd()]) {
                Some(ready) if !ready[1] => {}
                _ => return Ok(()),
            }
            let _ = kick.read();
            loop {
                let avail_idx = self.u16_at(self.avail + 2);
                let n = pending(avail_idx, last_avail, self.num)?;
                if n == 0 {
                    if self.event_idx {
                        // Kick me when you go past what I have seen.
                        self.put_u16(self.used + 4 + 8 * u64::from(self.num), last_avail);
                    }
                    fence(Ordering::SeqCst);
                    if self.u16_at(self.avail + 2) == last_avail {
                        break;
                    }
                    continue;
                }
                fence(Ordering::Acquire);
                for _ in 0..n {
                    let head = self.u16_at(self.avail + 4 + 2 * u64::from(last_avail % self.num));
                    let mut descs = GuestDescs {
                        ram: &self.ram,
                        table: self.desc,
                    };
                    let chain = walk_chain(&mut descs, self.num, head, &mut segs, &mut {
                        PACKET_DESC_LIMIT
                    })?;
                    frame.clear();
                    for s in &segs[..chain.readable] {
                        let start = frame.len();
                        frame.resize(start + s.len as usize, 0);
                        self.ram
                            .read_slice(&mut frame[start..], GuestAddress(s.addr))
                            .map_err(|_| RingFault::BufferOutsideMemory)?;
                    }
                    if let Some(payload) = frame.get(NET_HDR_LEN as usize..) {
                        // SAFETY: writes our buffer to the tap.
                        unsafe { libc::write(tap, payload.as_ptr().cast(), payload.len()) };
                    }
                    let elem = self.used + 4 + 8 * u64::from(last_used % self.num);
                    let _ = self
                        .ram
                        .write_obj([u32::from(head), 0u32], GuestAddress(elem));
                    last_avail = last_avail.wrapping_add(1);
                    last_used = last_used.wrapping_add(1);
                }
                self.finish(last_used, last_avail, &mut calls, call);
            }
        }
    }
}
