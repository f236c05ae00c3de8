// SPDX-License-Identifier: GPL-2.0

//! The kernel's `access_ok`: whether a range lies in user space.

use crate::sys::bindings;

/// Whether `[addr, addr + size)` lies in user space (a range check only;
/// nothing is accessed).
pub(crate) fn user_access_ok(addr: u64, size: u64) -> bool {
    // SAFETY: `access_ok` only compares the range with the user-space limit.
    unsafe { bindings::rvhost_access_ok(addr, size) }
}
