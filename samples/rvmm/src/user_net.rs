//! The userspace baseline: rvmm itself moves frames between the rings and
//! the tap in one I/O thread per queue (kick through the ioeventfd,
//! interrupt through the irqfd), as a VMM without an in-kernel backend does.
//!
//! The rings are served by rust-vmm's `virtio-queue`, an implementation
//! independent of rvhost's own ring code, so the baseline is also a
//! cross-check of it: the same guest driver must work over both.

use crate::memory::GuestRam;
use crate::net_device::Notifiers;
use crate::virtio_mmio::VirtioMmio;
use anyhow::{Context, Result};
use nettest::features::VIRTIO_RING_F_EVENT_IDX;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use virtio_bindings::virtio_ring::VRING_AVAIL_F_NO_INTERRUPT;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

const TX: usize = 1;
/// The virtio-net header (VERSION_1, `struct virtio_net_hdr_mrg_rxbuf`):
/// stripped on TX; on RX all zero but `num_buffers`.
const NET_HDR_LEN: usize = 12;
/// Offset of `num_buffers` in the header.
const NUM_BUFFERS_OFFSET: usize = 10;
/// Largest frame the tap hands over (with offloads off, an MTU-sized one;
/// room for more costs nothing).
const MAX_FRAME: usize = 65536;

/// Epoll tokens.
const KICK: u64 = 0;
const STOP: u64 = 1;
const TAP: u64 = 2;

/// Why an I/O thread stopped serving its queue: the guest's ring is wrong.
#[derive(Debug, thiserror::Error)]
enum RingError {
    #[error("virtio queue: {0}")]
    Queue(#[from] virtio_queue::Error),
    #[error("guest buffer: {0}")]
    Buffer(#[from] std::io::Error),
    #[error("the avail index is {0} entries ahead, more than the ring holds")]
    AvailIndex(u16),
}

/// The running I/O threads (one per ready queue); dropping stops them.
pub struct UserNet {
    stop: EventFd,
    threads: Vec<JoinHandle<()>>,
}

impl UserNet {
    /// Serves the queues the driver made ready: RX (0) from the tap, TX (1)
    /// to it, kicked and signalling through `notifiers`.
    pub fn start(
        ram: &GuestRam,
        transport: &VirtioMmio,
        notifiers: &Notifiers,
        tap: RawFd,
    ) -> Result<Self> {
        let event_idx = transport.driver_features & VIRTIO_RING_F_EVENT_IDX != 0;
        let stop = EventFd::new(libc::EFD_NONBLOCK)?;
        let mut threads = Vec::new();
        for (index, config) in transport.queues.iter().enumerate().filter(|(_, q)| q.ready) {
            let num = config.num as u16;
            let mut queue = Queue::new(num).context("a virtio queue")?;
            queue.set_size(num);
            let halves = |a: u64| (Some(a as u32), Some((a >> 32) as u32));
            let (lo, hi) = halves(config.desc);
            queue.set_desc_table_address(lo, hi);
            let (lo, hi) = halves(config.driver);
            queue.set_avail_ring_address(lo, hi);
            let (lo, hi) = halves(config.device);
            queue.set_used_ring_address(lo, hi);
            queue.set_event_idx(event_idx);
            queue.set_ready(true);
            anyhow::ensure!(
                queue.is_valid(ram),
                "queue {index}'s rings are not in guest RAM"
            );
            let io = QueueIo {
                ram: ram.clone(),
                queue,
                kick: notifiers.kicks[index].try_clone()?,
                call: notifiers.call.try_clone()?,
                stop: stop.try_clone()?,
                tap,
            };
            let err = notifiers.err.try_clone()?;
            let thread = std::thread::Builder::new()
                .name(format!("rvmm-net-io{index}"))
                .spawn(move || {
                    let served = if index == TX {
                        io.serve_tx()
                    } else {
                        io.serve_rx()
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

/// One queue and what its I/O thread waits on.
struct QueueIo {
    ram: GuestRam,
    queue: Queue,
    kick: EventFd,
    call: EventFd,
    stop: EventFd,
    tap: RawFd,
}

impl QueueIo {
    /// An epoll set on the kick and stop eventfds (and the tap, for RX).
    fn epoll(&self, with_tap: bool) -> Result<Epoll, RingError> {
        let epoll = Epoll::new()?;
        for (fd, token) in [(self.kick.as_raw_fd(), KICK), (self.stop.as_raw_fd(), STOP)] {
            epoll.ctl(
                ControlOperation::Add,
                fd,
                EpollEvent::new(EventSet::IN, token),
            )?;
        }
        if with_tap {
            // Watched only while the guest has a buffer posted (see serve_rx).
            epoll.ctl(
                ControlOperation::Add,
                self.tap,
                EpollEvent::new(EventSet::empty(), TAP),
            )?;
        }
        Ok(epoll)
    }

    /// Waits for the next events; `None` when told to stop. Returns whether
    /// the tap is readable.
    fn wait(&self, epoll: &Epoll) -> Result<Option<bool>, RingError> {
        let mut events = [EpollEvent::default(); 3];
        let n = loop {
            match epoll.wait(-1, &mut events) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        let mut tap_ready = false;
        for event in &events[..n] {
            match event.data() {
                STOP => return Ok(None),
                KICK => {
                    let _ = self.kick.read();
                }
                _ => tap_ready = true,
            }
        }
        Ok(Some(tap_ready))
    }

    /// Signals the guest if it asked for an interrupt. virtio-queue decides
    /// with `EVENT_IDX`; without it, it does not look at the driver's
    /// `VRING_AVAIL_F_NO_INTERRUPT`, which is read here.
    fn interrupt(&mut self) -> Result<(), RingError> {
        let wanted = if self.queue.event_idx_enabled() {
            self.queue.needs_notification(&self.ram)?
        } else {
            let flags = self
                .ram
                .load::<u16>(GuestAddress(self.queue.avail_ring()), Ordering::Acquire)
                .map_err(virtio_queue::Error::GuestMemory)?;
            flags & VRING_AVAIL_F_NO_INTERRUPT as u16 == 0
        };
        if wanted {
            let _ = self.call.write(1);
        }
        Ok(())
    }

    /// Chains the driver has posted that the device has not taken (a
    /// hostile avail index is an error: virtio-queue would only stop popping).
    fn pending(&self) -> Result<u16, RingError> {
        let avail = self.queue.avail_idx(&self.ram, Ordering::Acquire)?;
        let pending = avail.0.wrapping_sub(self.queue.next_avail());
        if pending > self.queue.size() {
            return Err(RingError::AvailIndex(pending));
        }
        Ok(pending)
    }

    /// TX: waits for kicks and moves frames to the tap until told to stop.
    fn serve_tx(mut self) -> Result<(), RingError> {
        let epoll = self.epoll(false)?;
        let mut frame = Vec::with_capacity(MAX_FRAME);
        while self.wait(&epoll)?.is_some() {
            loop {
                // Quiet while the ring is drained, as QEMU's userspace
                // virtio-net: VRING_USED_F_NO_NOTIFY without EVENT_IDX (with
                // it, `avail_event` simply stays where it was).
                self.queue.disable_notification(&self.ram)?;
                let mut sent = false;
                for _ in 0..self.pending()? {
                    let Some(chain) = self.queue.pop_descriptor_chain(&self.ram) else {
                        break;
                    };
                    let head = chain.head_index();
                    let mut reader = chain.reader(&self.ram)?;
                    frame.clear();
                    reader.read_to_end(&mut frame)?;
                    if let Some(payload) = frame.get(NET_HDR_LEN..) {
                        // SAFETY: writes our buffer to the tap.
                        unsafe { libc::write(self.tap, payload.as_ptr().cast(), payload.len()) };
                    }
                    self.queue.add_used(&self.ram, head, 0)?;
                    sent = true;
                }
                if sent {
                    self.interrupt()?;
                }
                // Kicks back on (with EVENT_IDX: at what was seen); once more
                // if the driver posted meanwhile.
                self.queue.enable_notification(&self.ram)?;
                if self.pending()? == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// RX: moves frames from the tap into the guest's buffers until told to
    /// stop. Reads the tap only while a buffer is posted, so frames wait in
    /// the tap, not here; a frame larger than the buffer is dropped and the
    /// buffer stays.
    fn serve_rx(mut self) -> Result<(), RingError> {
        let epoll = self.epoll(true)?;
        let mut frame = vec![0u8; MAX_FRAME];
        let mut header = [0u8; NET_HDR_LEN];
        header[NUM_BUFFERS_OFFSET..].copy_from_slice(&1u16.to_le_bytes());
        let mut watching_tap = false;
        loop {
            // With EVENT_IDX: kick me when you post past what I have seen.
            let have_buffer = self.pending()? > 0 || {
                self.queue.enable_notification(&self.ram)?;
                self.pending()? > 0
            };
            if have_buffer != watching_tap {
                let events = if have_buffer {
                    EventSet::IN
                } else {
                    EventSet::empty()
                };
                epoll.ctl(
                    ControlOperation::Modify,
                    self.tap,
                    EpollEvent::new(events, TAP),
                )?;
                watching_tap = have_buffer;
            }
            let Some(tap_ready) = self.wait(&epoll)? else {
                return Ok(());
            };
            if !have_buffer || !tap_ready {
                continue;
            }
            // SAFETY: reads one frame from the tap into our buffer.
            let n = unsafe { libc::read(self.tap, frame.as_mut_ptr().cast(), frame.len()) };
            let Ok(n) = usize::try_from(n) else { continue };
            let Some(chain) = self.queue.pop_descriptor_chain(&self.ram) else {
                continue;
            };
            let head = chain.head_index();
            let mut writer = chain.writer(&self.ram)?;
            if writer.available_bytes() < NET_HDR_LEN + n {
                self.queue.go_to_previous_position();
                continue;
            }
            writer.write_all(&header)?;
            writer.write_all(&frame[..n])?;
            self.queue
                .add_used(&self.ram, head, (NET_HDR_LEN + n) as u32)?;
            self.interrupt()?;
        }
    }
}
