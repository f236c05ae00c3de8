// SPDX-License-Identifier: GPL-2.0

//! Counted references to eventfds (`include/linux/eventfd.h`): a virtqueue's
//! kick (polled by the device), call and error (signalled by the device)
//! channels.

use crate::sys::bindings;
use core::ptr::NonNull;
use kernel::{error::from_err_ptr, prelude::*};

/// The fd value that unbinds a channel (`VHOST_FILE_UNBIND`).
pub(crate) const UNBIND: i32 = -1;

/// An eventfd context to signal (`eventfd_ctx_fdget`).
///
/// # Invariants
///
/// `self.0` is a valid eventfd context on which this value holds one reference.
pub(crate) struct EventFdCtx(NonNull<bindings::eventfd_ctx>);

// SAFETY: eventfd contexts are reference counted and may be signalled and
// released from any thread.
unsafe impl Send for EventFdCtx {}
// SAFETY: `signal` is safe to call concurrently.
unsafe impl Sync for EventFdCtx {}

impl EventFdCtx {
    /// Takes a reference to the eventfd behind `fd`: `EBADF` for a closed fd,
    /// `EINVAL` for a file that is not an eventfd.
    pub(crate) fn from_fd(fd: i32) -> Result<Self> {
        // SAFETY: FFI call; it returns a counted context or an `ERR_PTR`.
        let ctx = from_err_ptr(unsafe { bindings::eventfd_ctx_fdget(fd) })?;
        // INVARIANT: a non-error result carries the reference we now own.
        NonNull::new(ctx).map(Self).ok_or(EINVAL)
    }

    /// Adds 1 to the counter, waking pollers (KVM's irqfd injects the interrupt).
    pub(crate) fn signal(&self) {
        // SAFETY: `self.0` is valid by the type invariant.
        unsafe { bindings::eventfd_signal_mask(self.0.as_ptr(), 0) };
    }
}

impl Drop for EventFdCtx {
    fn drop(&mut self) {
        // SAFETY: we own one reference (type invariant), released once here.
        unsafe { bindings::eventfd_ctx_put(self.0.as_ptr()) };
    }
}

/// The file of an eventfd (`eventfd_fget`), kept to be polled.
///
/// # Invariants
///
/// `self.0` is a valid eventfd `struct file` on which this value holds one reference.
pub(crate) struct EventFdFile(NonNull<bindings::file>);

// SAFETY: file references may be released from any thread (`fput`).
unsafe impl Send for EventFdFile {}
// SAFETY: `&EventFdFile` gives no access beyond the pointer's identity.
unsafe impl Sync for EventFdFile {}

impl EventFdFile {
    /// Takes a reference to the eventfd file behind `fd`: `EBADF` for a closed
    /// fd, `EINVAL` for a file that is not an eventfd.
    pub(crate) fn from_fd(fd: i32) -> Result<Self> {
        // SAFETY: FFI call; it returns a counted file or an `ERR_PTR`.
        let file = from_err_ptr(unsafe { bindings::eventfd_fget(fd) })?;
        // INVARIANT: a non-error result carries the reference we now own.
        NonNull::new(file).map(Self).ok_or(EBADF)
    }

    /// The `struct file`, valid as long as `self` is.
    pub(crate) fn as_ptr(&self) -> *mut bindings::file {
        self.0.as_ptr()
    }
}

impl Drop for EventFdFile {
    fn drop(&mut self) {
        // SAFETY: we own one reference (type invariant), released once here.
        unsafe { bindings::fput(self.0.as_ptr()) };
    }
}
