// SPDX-License-Identifier: GPL-2.0

//! Counted references to an address space (`struct mm_struct`).

use crate::sys::bindings;
use core::ptr::NonNull;

/// A reference that keeps an `mm_struct` allocated (an `mmgrab` reference): the
/// identity of a vhost device's owner.
///
/// # Invariants
///
/// `self.0` points to a valid `mm_struct` on which this value holds one
/// `mmgrab` reference.
pub(crate) struct MmGrab(NonNull<bindings::mm_struct>);

// SAFETY: `mmgrab`/`mmdrop` are atomic reference counts, usable from any thread.
unsafe impl Send for MmGrab {}
// SAFETY: `MmGrab` offers no access to the `mm_struct` through `&self` beyond its address.
unsafe impl Sync for MmGrab {}

impl MmGrab {
    /// The calling task's address space; `None` for a kernel thread.
    pub(crate) fn current() -> Option<Self> {
        // SAFETY: FFI call without preconditions; it returns NULL or an mm with a
        // fresh `mmgrab` reference.
        let mm = unsafe { bindings::rvhost_current_mm_grab() };
        // INVARIANT: a non-NULL result carries the reference we now own.
        NonNull::new(mm).map(Self)
    }
}

impl PartialEq for MmGrab {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Drop for MmGrab {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we hold one `mmgrab` reference, dropped here once.
        unsafe { bindings::rvhost_mmdrop(self.0.as_ptr()) };
    }
}
