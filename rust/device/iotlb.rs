// SPDX-License-Identifier: GPL-2.0

//! The device file's `read()`, `write()` and `poll()`: the IOTLB messages
//! of `VIRTIO_F_ACCESS_PLATFORM` (`linux/vhost_types.h`). The VMM writes
//! updates and invalidations; the device hands out its misses to `read()`,
//! and `poll()` says when one waits. Errnos and sizes as upstream's
//! `vhost_chr_read_iter`, `vhost_chr_write_iter` and `vhost_chr_poll`.

use super::{Control, VhostNet};
use crate::logic::{
    errno::Errno,
    features::VHOST_BACKEND_F_IOTLB_MSG_V2,
    iotlb::{
        encode_miss, parse_written, user_range_fits, IotlbMsg, ACCESS_RO, ACCESS_WO,
        IOTLB_INVALIDATE, IOTLB_UPDATE, MSG_LEN, MSG_V1, MSG_V2, WRITE_NEEDS,
    },
};
use crate::sys::access::user_access_ok;
use crate::sys::bindings;
use crate::sys::poll_queue::PollTable;
use crate::user_addr::UserAddr;
use kernel::prelude::*;

/// `EBADFD`: a blocking read on a device without an IOTLB (nothing will
/// ever come).
const EBADFD: i32 = 77;

impl Control {
    /// Serves an update or invalidation; returns the queues (bit `q` for
    /// queue `q`) whose misses it answered. Every refusal is `EFAULT` at the
    /// caller, as upstream turns any processing error into it.
    fn process_message(&mut self, msg: &IotlbMsg) -> Result<u32, Errno> {
        let tlb = self.iotlb.as_mut();
        match (msg.kind, tlb) {
            (IOTLB_UPDATE, Some(tlb)) => {
                let granted = msg.perm & (ACCESS_RO | ACCESS_WO) != 0;
                if !user_range_fits(msg.uaddr, msg.size)
                    || (granted && !user_access_ok(msg.uaddr, msg.size))
                {
                    return Err(Errno::Fault);
                }
                tlb.update(msg.iova, msg.size, msg.uaddr, msg.perm)?;
                Ok(self.misses.answered(msg.iova, msg.size))
            }
            (IOTLB_INVALIDATE, Some(tlb)) => {
                tlb.invalidate(msg.iova, msg.size);
                Ok(0)
            }
            (IOTLB_UPDATE | IOTLB_INVALIDATE, None) => Err(Errno::Fault),
            _ => Err(Errno::Inval),
        }
    }

    /// The format misses are read in: v2 once the VMM acked it.
    fn message_format(&self) -> u32 {
        if self.backend_features & (1 << VHOST_BACKEND_F_IOTLB_MSG_V2) != 0 {
            MSG_V2
        } else {
            MSG_V1
        }
    }
}

impl VhostNet {
    /// Runs `f` on the device state, then wakes the readers of misses if it
    /// recorded any (outside the lock).
    pub(super) fn with_control<R>(&self, f: impl FnOnce(&mut Control) -> R) -> R {
        let mut control = self.control.lock();
        let before = control.misses.total();
        let result = f(&mut control);
        let missed = control.misses.total() != before;
        drop(control);
        if missed {
            self.wake_miss_readers();
        }
        result
    }

    /// Wakes blocking readers and `poll()` callers: a miss to read, or no
    /// IOTLB any more.
    pub(super) fn wake_miss_readers(&self) {
        self.miss_readable.notify_all();
        self.poll_queue.wake_readable();
    }

    /// `read()`: hands out one miss (a whole message, or nothing for a
    /// buffer shorter than one); waits for one unless `nonblock`.
    pub(super) fn read_miss(&self, buf: UserAddr, len: usize, nonblock: bool) -> Result<usize> {
        if len < MSG_LEN {
            return Ok(0);
        }
        let mut control = self.control.lock();
        let message = loop {
            if let Some((iova, access)) = control.misses.next_unread() {
                break encode_miss(control.message_format(), iova, access);
            }
            if nonblock {
                return Err(EAGAIN);
            }
            if control.iotlb.is_none() {
                return Err(Error::from_errno(-EBADFD));
            }
            if self.miss_readable.wait_interruptible(&mut control) {
                return Err(ERESTARTSYS);
            }
        };
        drop(control);
        buf.write_slice(&message)?;
        Ok(MSG_LEN)
    }

    /// `write()`: one update or invalidation; queues whose misses it
    /// answers run again.
    pub(super) fn write_message(&self, buf: UserAddr, len: usize) -> Result<usize> {
        let mut bytes = [0u8; WRITE_NEEDS];
        let n = len.min(WRITE_NEEDS);
        // Bytes that cannot be read count as missing (upstream's short copy).
        buf.reader_at(0, n)
            .read_slice(&mut bytes[..n])
            .map_err(|_| EINVAL)?;
        let (_, msg) = parse_written(&bytes[..n])?;
        let mut control = self.control.lock();
        let answered = control.process_message(&msg).map_err(|_| EFAULT)?;
        if let (Some(waker), true) = (&control.waker, answered != 0) {
            waker.wake(answered);
        }
        Ok(MSG_LEN)
    }

    /// `poll()`: readable while a miss waits to be read.
    pub(super) fn poll_misses(&self, table: &PollTable) -> u32 {
        table.register(&self.poll_queue);
        if self.control.lock().misses.readable() {
            bindings::RVHOST_EPOLLIN_RDNORM
        } else {
            0
        }
    }
}
