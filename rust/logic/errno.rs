// SPDX-License-Identifier: GPL-2.0

//! The errnos the vhost ABI answers with, kept apart from any kernel type so the
//! decision logic can be tested on the host. The kernel side turns them into
//! `kernel::error::Error` at the FFI edge.

/// An error number of the vhost ioctl ABI (the positive Linux x86 value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Errno {
    /// Not the owner, or no owner yet.
    Perm = 1,
    /// Bad file descriptor.
    BadF = 9,
    /// Out of memory.
    NoMem = 12,
    /// A user pointer could not be read or written, or ring memory is not accessible.
    Fault = 14,
    /// Owner already set, or the ring is busy with a backend.
    Busy = 16,
    /// An invalid value.
    Inval = 22,
    /// Unknown ioctl (what `-ENOIOCTLCMD` becomes at the syscall boundary).
    NoTty = 25,
    /// Too many memory regions.
    TooBig = 7,
    /// The backend descriptor is not a usable socket.
    NotSock = 88,
    /// Unsupported feature bits or flags.
    OpNotSupp = 95,
    /// Ring index out of range.
    NoBufs = 105,
}

impl Errno {
    /// The positive error number.
    pub const fn as_positive(self) -> i32 {
        self as i32
    }
}
