// SPDX-License-Identifier: GPL-2.0

//! Single-access loads and stores of the ring fields both sides write at the
//! same time: the avail index, flags and `used_event` the guest writes while
//! the device reads them, the used index, flags and `avail_event` the device
//! writes while the guest reads them. A two-byte `copy_from_user` may move
//! the bytes one at a time (`rep movsb`), so a reader can see half of an
//! update: an index torn that way makes the device consume buffers that were
//! never posted. `get_user`/`put_user` are one 16-bit access each. Also the
//! one read-modify-write the device makes in user memory: setting a bit of
//! the dirty log, which the VMM clears concurrently.

use crate::sys::bindings;
use core::ffi::c_void;
use kernel::prelude::*;

/// Reads the `u16` at user address `addr` in one access (`EFAULT` if it
/// cannot be read).
pub(crate) fn read_u16(addr: usize) -> Result<u16> {
    let mut value = 0u16;
    // SAFETY: `value` is a valid u16 to write; `get_user` checks `addr` itself
    // (access_ok and fault fixup), so any user address is allowed.
    let ret = unsafe { bindings::rvhost_get_user_u16(&mut value, addr as *const c_void) };
    if ret == 0 {
        Ok(value)
    } else {
        Err(EFAULT)
    }
}

/// Writes `value` at user address `addr` in one access (`EFAULT` if it
/// cannot be written).
pub(crate) fn write_u16(addr: usize, value: u16) -> Result {
    // SAFETY: `put_user` checks `addr` itself (access_ok and fault fixup).
    let ret = unsafe { bindings::rvhost_put_user_u16(value, addr as *mut c_void) };
    if ret == 0 {
        Ok(())
    } else {
        Err(EFAULT)
    }
}

/// Sets bit `bit` (0..8) of the byte at user address `addr` atomically
/// (`EFAULT` if the byte cannot be written).
pub(crate) fn set_bit(addr: u64, bit: u8) -> Result {
    // SAFETY: the helper checks `addr` itself (GUP with FOLL_WRITE) and
    // refuses a bit outside the byte.
    let ret = unsafe { bindings::rvhost_set_user_bit(addr, bit.into()) };
    if ret == 0 {
        Ok(())
    } else {
        Err(EFAULT)
    }
}
