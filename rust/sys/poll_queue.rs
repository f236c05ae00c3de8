// SPDX-License-Identifier: GPL-2.0

//! The wait queue behind a device file's `poll()`: callers of `poll(2)`,
//! `select(2)` and epoll on the file wait on it and are woken when it
//! becomes readable.
//!
//! C header: [`include/linux/poll.h`](srctree/include/linux/poll.h)

use crate::sys::bindings;
use kernel::{init::PinInit, pin_init, prelude::*, types::Opaque};

/// A wait queue head that `poll()` registers callers on.
///
/// # Invariants
///
/// `head` is an initialised wait queue head for as long as the queue lives.
#[pin_data]
pub(crate) struct PollQueue {
    #[pin]
    head: Opaque<bindings::wait_queue_head>,
}

// SAFETY: a wait queue head has its own lock; it is meant to be used from
// any thread.
unsafe impl Send for PollQueue {}
// SAFETY: as above.
unsafe impl Sync for PollQueue {}

impl PollQueue {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // INVARIANT: initialised here, pinned from then on.
            // SAFETY: `slot` is valid for writes and pinned (`ffi_init`).
            head <- Opaque::ffi_init(|slot| unsafe { bindings::rvhost_waitqueue_init(slot) }),
        })
    }

    /// Wakes the callers waiting for the file to become readable.
    pub(crate) fn wake_readable(&self) {
        // SAFETY: `head` is initialised (type invariant).
        unsafe { bindings::rvhost_waitqueue_wake_readable(self.head.get()) };
    }
}

/// The `poll_table` of one `poll()` call on a file.
///
/// # Invariants
///
/// `file` and `table` are the arguments of a `poll()` call in progress
/// (`table` may be null); the value lives no longer than the call.
pub(crate) struct PollTable {
    file: *mut bindings::file,
    table: *mut bindings::poll_table_struct,
}

impl PollTable {
    /// # Safety
    ///
    /// `file` and `table` are the arguments of the `poll()` callback that
    /// creates this value, which it drops before it returns.
    pub(crate) unsafe fn new(
        file: *mut bindings::file,
        table: *mut bindings::poll_table_struct,
    ) -> Self {
        // INVARIANT: as the caller guarantees.
        Self { file, table }
    }

    /// Registers the caller on `queue` (it is woken when the queue is).
    /// The queue outlives the registration: the file's state owns it and
    /// the poll core removes its entries before the file is released.
    pub(crate) fn register(&self, queue: &PollQueue) {
        // SAFETY: `file` and `table` belong to the `poll()` call in progress
        // (type invariant); `queue.head` is initialised and pinned.
        unsafe { bindings::rvhost_poll_wait(self.file, queue.head.get(), self.table) };
    }
}
