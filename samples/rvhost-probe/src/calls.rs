//! The ioctls a probe makes (`nettest::vhost_ioctl`), with the probe's own
//! address and descriptor arguments.

use crate::context::{Context, Fd};
use std::os::fd::RawFd;

pub use nettest::vhost_ioctl::Outcome;

/// An address argument: inside the probe's guest memory, or a raw value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addr {
    /// The user address of this guest-physical address of the probe's memory.
    Gpa(u64),
    /// This exact value.
    Raw(u64),
}

/// One `struct vhost_memory_region`.
pub type Region = nettest::vhost_ioctl::Region<Addr>;

/// One ioctl of a probe sequence.
pub type Ioctl = nettest::vhost_ioctl::Ioctl<Addr, Fd, &'static [Region]>;

impl nettest::vhost_ioctl::Resolve<Addr, Fd> for Context {
    fn address(&self, addr: Addr) -> u64 {
        match addr {
            Addr::Gpa(gpa) => self.uaddr(gpa),
            Addr::Raw(value) => value,
        }
    }

    fn descriptor(&self, fd: Fd) -> RawFd {
        self.fd(fd)
    }
}
