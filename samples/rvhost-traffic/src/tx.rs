//! TX: the guest puts frames on the ring (one descriptor, or an indirect
//! table of header + frame), the device sends them to its backend, and the
//! packet socket on the far side must see each one byte for byte, in order.

use crate::guest::{DriverQueue, GuestMemory, Layout, BUF_SIZE, QUEUE_SIZE};
use anyhow::{bail, ensure, Result};
use nettest::sniffer_drops;
use rvhost_logic::split_ring::{Desc, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::EventFd;

/// The guest's TX side.
pub struct TxDriver<'a> {
    pub queue: DriverQueue<'a>,
    /// Put each frame behind an indirect table (header, frame).
    indirect: bool,
}

impl<'a> TxDriver<'a> {
    pub fn new(
        mem: &'a GuestMemory,
        layout: Layout,
        kick: &'a EventFd,
        event_idx: bool,
        indirect: bool,
    ) -> Self {
        Self {
            queue: DriverQueue::new(mem, layout, kick, event_idx),
            indirect,
        }
    }

    /// Waits until the ring has room (at most a ring's worth in flight);
    /// `stuck` describes the device when it stopped consuming.
    pub fn wait_room(&self, timeout: Duration, stuck: impl Fn() -> String) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.queue.in_flight() >= QUEUE_SIZE {
            ensure!(Instant::now() < deadline, "{}", stuck());
            std::thread::yield_now();
        }
        Ok(())
    }

    /// Puts `header` + `frame` on the ring and publishes it (kicking if the
    /// device asks). The caller made sure there is room.
    pub fn send(&mut self, header: &[u8], frame: &[u8]) -> Result<()> {
        let q = &mut self.queue;
        let slot = q.avail_idx() % QUEUE_SIZE;
        let gpa = q.layout.buf(slot);
        let total = header.len() + frame.len();
        ensure!(total as u64 <= BUF_SIZE, "frame of {total} bytes too big");
        q.mem.write(gpa, header);
        q.mem.write(gpa + header.len() as u64, frame);
        let desc = if self.indirect {
            let table = q.layout.indirect + 32 * u64::from(slot);
            let hdr = Desc {
                addr: gpa,
                len: header.len() as u32,
                flags: VRING_DESC_F_NEXT,
                next: 1,
            };
            let data = Desc {
                addr: gpa + header.len() as u64,
                len: frame.len() as u32,
                flags: 0,
                next: 0,
            };
            q.mem.write(table, &hdr.to_le_bytes());
            q.mem.write(table + 16, &data.to_le_bytes());
            Desc {
                addr: table,
                len: 32,
                flags: VRING_DESC_F_INDIRECT,
                next: 0,
            }
        } else {
            Desc {
                addr: gpa,
                len: total as u32,
                flags: 0,
                next: 0,
            }
        };
        q.write_desc(slot, desc);
        q.post(slot);
        q.publish()
    }
}

/// The far side of TX: frames arriving on a packet socket, checked in order
/// against what was sent.
pub struct Arrivals<'a> {
    sniffer: &'a OwnedFd,
    buf: Vec<u8>,
    pub received: u32,
}

impl<'a> Arrivals<'a> {
    pub fn new(sniffer: &'a OwnedFd) -> Self {
        Self {
            sniffer,
            buf: vec![0u8; 65536],
            received: 0,
        }
    }

    /// Takes what arrived (waiting up to the socket's 2 s timeout if `wait`),
    /// each frame compared with `expected(n)`; returns how many arrived.
    pub fn take(&mut self, wait: bool, expected: impl Fn(u32) -> Vec<u8>) -> Result<u32> {
        let mut got = 0;
        loop {
            let flags = if wait && got == 0 {
                0
            } else {
                libc::MSG_DONTWAIT
            };
            // SAFETY: receives into our buffer.
            let n = unsafe {
                libc::recv(
                    self.sniffer.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    flags,
                )
            };
            if n < 0 {
                return Ok(got);
            }
            let want = expected(self.received);
            if self.buf[..n as usize] != want[..] {
                ensure!(
                    sniffer_drops(self.sniffer) == 0,
                    "the test's packet socket dropped frames (receive buffer)"
                );
                bail!(
                    "frame {}: got {} bytes that differ from the {} sent",
                    self.received,
                    n,
                    want.len()
                );
            }
            self.received += 1;
            got += 1;
        }
    }

    /// Waits until `total` frames arrived.
    pub fn wait_for(&mut self, total: u32, expected: impl Fn(u32) -> Vec<u8>) -> Result<()> {
        while self.received < total {
            let got = self.take(true, &expected)?;
            ensure!(got > 0, "only {} of {total} frames arrived", self.received);
        }
        Ok(())
    }
}
