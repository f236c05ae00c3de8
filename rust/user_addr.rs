// SPDX-License-Identifier: GPL-2.0

//! Typed access at a user-space address of the owner: an ioctl's argument,
//! a ring field, a guest buffer translated through the memory table.

use kernel::{
    prelude::*,
    types::{AsBytes, FromBytes},
    uaccess::{UserSlice, UserSliceReader},
};

/// An address in the owner's address space (not checked until it is used:
/// every access checks it and fails with `EFAULT`).
#[derive(Clone, Copy)]
pub(crate) struct UserAddr(usize);

impl UserAddr {
    pub(crate) fn new(addr: usize) -> Self {
        Self(addr)
    }

    /// Reads a `T` at the address (`EFAULT` if it cannot be read).
    pub(crate) fn read<T: FromBytes>(self) -> Result<T> {
        UserSlice::new(self.0, core::mem::size_of::<T>())
            .reader()
            .read()
    }

    /// A reader of `len` bytes starting `offset` bytes after the address.
    pub(crate) fn reader_at(self, offset: usize, len: usize) -> UserSliceReader {
        UserSlice::new(self.0.wrapping_add(offset), len).reader()
    }

    /// Writes `bytes` at the address.
    pub(crate) fn write_slice(self, bytes: &[u8]) -> Result {
        UserSlice::new(self.0, bytes.len())
            .writer()
            .write_slice(bytes)
    }

    /// Reads a `u16` field the other side may be writing, in one access.
    pub(crate) fn read_u16_once(self) -> Result<u16> {
        crate::sys::uaccess_once::read_u16(self.0)
    }

    /// Writes a `u16` field the other side may be reading, in one access.
    pub(crate) fn write_u16_once(self, value: u16) -> Result {
        crate::sys::uaccess_once::write_u16(self.0, value)
    }

    /// Writes a `T` at the address (`EFAULT` if it cannot be written).
    pub(crate) fn write<T: AsBytes>(self, value: &T) -> Result {
        UserSlice::new(self.0, core::mem::size_of::<T>())
            .writer()
            .write(value)
    }
}
