//! Per-run resources a probe's calls refer to: a "guest memory" mapping in
//! this process and file descriptors of each kind a vhost ioctl may be given.

use anyhow::{Context as _, Result};
use nettest::socket;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::ioctl::ioctl_with_ref;
use vmm_sys_util::ioctl_iow_nr;

/// Size of the probe's guest memory (guest-physical 0 maps to its start).
pub const MEM_SIZE: usize = 1 << 20;

ioctl_iow_nr!(TUNSETIFF, b'T' as u32, 202, libc::c_int);

/// What a descriptor argument refers to.
#[derive(Clone, Copy, Debug)]
pub enum Fd {
    /// `-1`: unbind.
    Unbind,
    /// A number that is not an open descriptor.
    Closed,
    /// An eventfd.
    Eventfd,
    /// A file that is neither an eventfd nor a socket.
    DevNull,
    /// A tap device (`/dev/net/tun`, `IFF_TAP | IFF_NO_PI`).
    Tap,
    /// An `AF_PACKET`, `SOCK_RAW` socket.
    RawPacket,
    /// An `AF_PACKET`, `SOCK_DGRAM` socket (not accepted as a backend).
    DgramPacket,
    /// A UDP socket (not accepted as a backend).
    Udp,
}

/// The resources of one run against one device.
pub struct Context {
    pub mem: *mut u8,
    eventfd: EventFd,
    devnull: File,
    tap: OwnedFd,
    raw_packet: OwnedFd,
    dgram_packet: OwnedFd,
    udp: OwnedFd,
}

fn tap() -> Result<OwnedFd> {
    let file = File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .context("opening /dev/net/tun")?;
    // struct ifreq: a 16-byte name (empty: the kernel picks tapN) and flags.
    let mut ifr = [0u8; 40];
    let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as u16;
    ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes a struct ifreq (40 bytes).
    let ret = unsafe { ioctl_with_ref(&file, TUNSETIFF(), &ifr) };
    anyhow::ensure!(ret == 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
    Ok(file.into())
}

impl Context {
    pub fn new() -> Result<Self> {
        // SAFETY: an anonymous private mapping; unmapped in Drop.
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MEM_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        anyhow::ensure!(
            mem != libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        let eth_p_all = (libc::ETH_P_ALL as u16).to_be() as i32;
        Ok(Self {
            mem: mem.cast(),
            eventfd: EventFd::new(libc::EFD_NONBLOCK).context("eventfd")?,
            devnull: File::open("/dev/null")?,
            tap: tap()?,
            raw_packet: socket(libc::AF_PACKET, libc::SOCK_RAW, eth_p_all)?,
            dgram_packet: socket(libc::AF_PACKET, libc::SOCK_DGRAM, eth_p_all)?,
            udp: socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?,
        })
    }

    /// The user address of guest-physical `gpa` inside the probe's memory.
    pub fn uaddr(&self, gpa: u64) -> u64 {
        self.mem as u64 + gpa
    }

    pub fn fd(&self, fd: Fd) -> RawFd {
        match fd {
            Fd::Unbind => -1,
            Fd::Closed => 1000,
            Fd::Eventfd => self.eventfd.as_raw_fd(),
            Fd::DevNull => self.devnull.as_raw_fd(),
            Fd::Tap => self.tap.as_raw_fd(),
            Fd::RawPacket => self.raw_packet.as_raw_fd(),
            Fd::DgramPacket => self.dgram_packet.as_raw_fd(),
            Fd::Udp => self.udp.as_raw_fd(),
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: `mem` is our mapping of MEM_SIZE bytes.
        unsafe { libc::munmap(self.mem.cast(), MEM_SIZE) };
    }
}
