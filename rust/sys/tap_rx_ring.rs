// SPDX-License-Identifier: GPL-2.0

//! RX from a tap in batches, as upstream vhost-net does: up to
//! [`RX_BATCH`] packets are taken off the tap's own ring (tun's or macvtap's
//! `ptr_ring`) under one lock round, and each is then handed back to the
//! socket's `recvmsg` as its `msg_control`, which copies that packet into the
//! guest's buffers and frees it. Without the batch every packet costs a
//! locked peek at the ring's head and a locked take from it.

use crate::sys::bindings;
use core::{ffi::c_void, ptr::NonNull};
use kernel::prelude::*;

/// Most packets taken off the ring at once (upstream takes 64).
pub(crate) const RX_BATCH: usize = 64;
const _: () = assert!(RX_BATCH <= i32::MAX as usize);

/// Packets taken off a tap's ring and not yet received.
///
/// # Invariants
///
/// `ring` is the `ptr_ring` of a tap (or macvtap) whose file the owner of
/// this value keeps alive for as long as this value exists;
/// `queue[head..tail]` are packets taken off that ring (skbs, or tun's tagged
/// XDP frames), owned by this value; `head <= tail <= RX_BATCH`.
pub(crate) struct TapRxRing {
    ring: NonNull<bindings::ptr_ring>,
    queue: [*mut c_void; RX_BATCH],
    head: usize,
    tail: usize,
}

// SAFETY: the packets are owned by this value and the ring has its own locks;
// nothing here is tied to a thread.
unsafe impl Send for TapRxRing {}
// SAFETY: `&TapRxRing` offers nothing.
unsafe impl Sync for TapRxRing {}

impl TapRxRing {
    /// The ring of the tap (or macvtap) `file`, allocated with the backend
    /// (the data path never allocates); `None` for other files.
    ///
    /// # Safety
    ///
    /// `file` is valid and the caller keeps it alive for as long as the
    /// returned value exists.
    pub(crate) unsafe fn new(file: *mut bindings::file) -> Result<Option<KBox<Self>>> {
        // SAFETY: `file` is valid (the caller's guarantee).
        let Some(ring) = NonNull::new(unsafe { bindings::rvhost_tap_rx_ring(file) }) else {
            return Ok(None);
        };
        // INVARIANT: no packet taken yet; the caller keeps the file alive.
        let this = KBox::new(
            Self {
                ring,
                queue: [core::ptr::null_mut(); RX_BATCH],
                head: 0,
                tail: 0,
            },
            GFP_KERNEL,
        )?;
        Ok(Some(this))
    }

    /// Length of the next packet (with a VLAN tag the socket adds when it
    /// copies it out), 0 if the ring holds none. Takes a batch off the ring
    /// when the packets taken before are used up.
    pub(crate) fn peek_len(&mut self) -> usize {
        if self.head == self.tail {
            // SAFETY: the ring is valid (type invariant); `queue` has room for
            // `RX_BATCH` pointers.
            let got = unsafe {
                bindings::rvhost_ptr_ring_consume_batched(
                    self.ring.as_ptr(),
                    self.queue.as_mut_ptr(),
                    RX_BATCH as i32,
                )
            };
            // INVARIANT: `queue[..got]` are now ours (`got <= RX_BATCH`).
            self.head = 0;
            self.tail = usize::try_from(got).unwrap_or(0).min(RX_BATCH);
        }
        if self.head == self.tail {
            return 0;
        }
        // SAFETY: `queue[head]` is a packet we own (type invariant).
        let len = unsafe { bindings::rvhost_tap_ptr_len(self.queue[self.head]) };
        usize::try_from(len).unwrap_or(0)
    }

    /// Gives up the next packet (null if none): the caller passes it to the
    /// socket's `recvmsg`, which frees it whatever happens.
    pub(crate) fn take(&mut self) -> *mut c_void {
        if self.head == self.tail {
            return core::ptr::null_mut();
        }
        let ptr = self.queue[self.head];
        // INVARIANT: the packet is no longer ours.
        self.head += 1;
        ptr
    }
}

impl Drop for TapRxRing {
    fn drop(&mut self) {
        let left = &mut self.queue[self.head..self.tail];
        if left.is_empty() {
            return;
        }
        // SAFETY: the ring is valid (type invariant); the packets are ours and
        // go back to its head in order (those no longer fitting are freed).
        unsafe {
            bindings::rvhost_ptr_ring_unconsume(
                self.ring.as_ptr(),
                left.as_mut_ptr(),
                left.len() as i32,
            )
        };
    }
}
