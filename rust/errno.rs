// SPDX-License-Identifier: GPL-2.0

//! The one conversion from the pure logic's ABI errnos to kernel errors, so
//! that `?` carries them to the ioctl's return value.

use crate::logic::errno::Errno;
use kernel::error::Error;

impl From<Errno> for Error {
    fn from(errno: Errno) -> Self {
        Error::from_errno(-errno.as_positive())
    }
}
