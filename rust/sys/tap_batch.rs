// SPDX-License-Identifier: GPL-2.0

//! TX batching into a tap, as upstream vhost-net does when the tap's send
//! buffer is unlimited: frames are copied into page fragments in tun's XDP
//! buffer format and handed to the tap up to [`TAP_BATCH`] at a time in one
//! `sendmsg`, so tun builds each skb around its fragment instead of
//! allocating, charging and copying per frame (`rust/helpers.c`).

use crate::sys::bindings;
use crate::sys::socket::{BackendSocket, UserIovs};
use core::ptr::NonNull;
use kernel::prelude::*;

/// Most frames one batch holds.
pub(crate) const TAP_BATCH: usize = bindings::RVHOST_TAP_BATCH as usize;

/// What a flush handed to the tap.
pub(crate) struct Flushed {
    pub(crate) frames: u64,
    pub(crate) bytes: u64,
    /// False if the tap refused the batch (the frames were dropped).
    pub(crate) ok: bool,
}

/// A batch of frames on their way to a tap.
///
/// # Invariants
///
/// `batch` is a live `rvhost_tap_batch` owned by this value; `frames` and
/// `bytes` count what it holds.
pub(crate) struct TapBatch {
    batch: NonNull<bindings::rvhost_tap_batch>,
    frames: usize,
    bytes: u64,
}

// SAFETY: the batch is plain memory owned by this value.
unsafe impl Send for TapBatch {}
// SAFETY: `&TapBatch` offers nothing.
unsafe impl Sync for TapBatch {}

impl TapBatch {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: FFI call without preconditions; NULL when out of memory.
        let batch = NonNull::new(unsafe { bindings::rvhost_tap_batch_new() }).ok_or(ENOMEM)?;
        // INVARIANT: a new, empty batch we own.
        Ok(Self {
            batch,
            frames: 0,
            bytes: 0,
        })
    }

    /// Whether `sock` takes batches: a tap whose send buffer is unlimited.
    pub(crate) fn usable_with(sock: &BackendSocket) -> bool {
        // SAFETY: the socket is valid while `sock` is.
        sock.is_tap() && unsafe { bindings::rvhost_tap_can_batch(sock.sock_ptr()) }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.frames >= TAP_BATCH
    }

    /// Copies one frame from the user buffers `iovs` (its first `sock_hlen`
    /// bytes the virtio-net header the tap expects, its fields in the
    /// device's byte order) into the batch. `ENOSPC` if the frame does not
    /// fit a page (send it on its own), `ENOBUFS` if the batch is full,
    /// `EFAULT`/`EINVAL` for bad buffers or header.
    pub(crate) fn add(
        &mut self,
        sock: &BackendSocket,
        iovs: &mut UserIovs,
        sock_hlen: usize,
        little_endian: bool,
    ) -> Result {
        let (iov, count, len) = iovs.raw_parts();
        // SAFETY: the batch is ours (type invariant) and the socket valid;
        // the iovecs hold `count` user buffers of `len` bytes in all, which
        // the kernel copies from with fault checking.
        let ret = unsafe {
            bindings::rvhost_tap_batch_add(
                self.batch.as_ptr(),
                sock.sock_ptr(),
                iov,
                count as _,
                len,
                sock_hlen,
                little_endian,
            )
        };
        kernel::error::to_result(ret)?;
        // INVARIANT: the batch holds one frame more.
        self.frames += 1;
        // Counted as the single-send path counts: all bytes handed over.
        self.bytes += len as u64;
        Ok(())
    }

    /// Hands the frames to `sock` (the tap they were added for) and empties
    /// the batch.
    pub(crate) fn flush(&mut self, sock: &BackendSocket) -> Flushed {
        // SAFETY: the batch is ours (type invariant) and the socket valid.
        let ret = unsafe { bindings::rvhost_tap_batch_flush(self.batch.as_ptr(), sock.sock_ptr()) };
        let flushed = Flushed {
            frames: self.frames as u64,
            bytes: self.bytes,
            ok: ret == 0,
        };
        // INVARIANT: the C side emptied the batch.
        (self.frames, self.bytes) = (0, 0);
        flushed
    }
}

impl Drop for TapBatch {
    fn drop(&mut self) {
        // SAFETY: we own the batch (type invariant); batches are flushed
        // before a round ends, so it holds no frames.
        unsafe { bindings::rvhost_tap_batch_free(self.batch.as_ptr()) };
    }
}
