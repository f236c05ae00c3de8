//! Helpers shared by rvhost's userspace test programs: a tap or veth
//! backend with a packet socket on its far side, test frames, and the vhost
//! ioctls that take a ring state or a ring file; feature bits (`features`);
//! the vhost ioctls the differential tools compare (`vhost_ioctl`); threads'
//! CPU time (`thread_cpu`).

pub mod features;
pub mod thread_cpu;
pub mod vhost_ioctl;

use anyhow::{ensure, Context, Result};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use vhost::vhost_kern::vhost_binding::{vhost_vring_file, vhost_vring_state};
use vmm_sys_util::ioctl::ioctl_with_ref;
use vmm_sys_util::ioctl_iow_nr;

ioctl_iow_nr!(TUNSETIFF, b'T' as u32, 202, libc::c_int);
ioctl_iow_nr!(TUNSETSNDBUF, b'T' as u32, 212, libc::c_int);
ioctl_iow_nr!(TUNSETVNETHDRSZ, b'T' as u32, 216, libc::c_int);
ioctl_iow_nr!(TUNSETOFFLOAD, b'T' as u32, 208, libc::c_uint);
vmm_sys_util::ioctl_ior_nr!(TUNGETIFF, b'T' as u32, 210, libc::c_uint);

/// An EtherType for local experiments (IEEE 802 "local experimental 1").
pub const ETHERTYPE: u16 = 0x88b5;

/// Fails with the OS error when a libc call returned a negative value.
pub fn check(ret: i32, what: &str) -> Result<()> {
    ensure!(ret >= 0, "{what}: {}", std::io::Error::last_os_error());
    Ok(())
}

/// A new socket(2).
pub fn socket(domain: i32, kind: i32, proto: i32) -> Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe { libc::socket(domain, kind, proto) };
    check(fd, &format!("socket({domain}, {kind})"))?;
    // SAFETY: `fd` is a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Which kind of backend the device gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// A tap device.
    Tap,
    /// A raw `AF_PACKET` socket bound to one end of a veth pair.
    Packet,
    /// A macvtap (passthru) on one end of a veth pair, as libvirt's
    /// `type='direct'` interfaces are.
    Macvtap,
}

/// The backend fd for the device, and a packet socket on the far side of it:
/// what the device sends arrives there; what is sent there goes to the device.
/// `vnet_hdr`: a tap that carries a virtio-net header of that many bytes in
/// front of each frame (`IFF_VNET_HDR`, `TUNSETVNETHDRSZ`), as QEMU's taps do.
pub fn backend_and_sniffer(kind: Backend, vnet_hdr: Option<i32>) -> Result<(OwnedFd, OwnedFd)> {
    match kind {
        Backend::Tap => {
            let tap = OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/net/tun")
                .context("/dev/net/tun")?;
            let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
            if vnet_hdr.is_some() {
                flags |= libc::IFF_VNET_HDR;
            }
            let mut ifr = [0u8; 40];
            ifr[..6].copy_from_slice(b"rvt%d\0");
            ifr[16..18].copy_from_slice(&(flags as u16).to_ne_bytes());
            // SAFETY: TUNSETIFF reads and writes a struct ifreq (40 bytes).
            let ret = unsafe { ioctl_with_ref(&tap, TUNSETIFF(), &ifr) };
            check(ret, "TUNSETIFF")?;
            if let Some(len) = vnet_hdr {
                // SAFETY: TUNSETVNETHDRSZ reads one int.
                let ret = unsafe { ioctl_with_ref(&tap, TUNSETVNETHDRSZ(), &len) };
                check(ret, "TUNSETVNETHDRSZ")?;
            }
            let ifindex = interface_up(&ifr[..16])?;
            Ok((tap.into(), sniffer(ifindex)?))
        }
        Backend::Packet => {
            ensure!(
                vnet_hdr.is_none(),
                "a virtio-net header on the socket is tested with taps only"
            );
            ip(&[
                "link", "add", "rvv0", "type", "veth", "peer", "name", "rvv1",
            ])?;
            let near = interface_up(b"rvv0\0")?;
            let far = interface_up(b"rvv1\0")?;
            Ok((packet_socket(near)?, sniffer(far)?))
        }
        Backend::Macvtap => {
            ip(&[
                "link", "add", "rvv0", "type", "veth", "peer", "name", "rvv1",
            ])?;
            ip(&[
                "link", "add", "link", "rvv0", "name", "rvm0", "type", "macvtap", "mode",
                "passthru",
            ])?;
            interface_up(b"rvv0\0")?;
            let far = interface_up(b"rvv1\0")?;
            let index = interface_up(b"rvm0\0")?;
            let tap = open_macvtap(index)?;
            // macvtap carries a virtio-net header unless told otherwise.
            let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
            if vnet_hdr.is_some() {
                flags |= libc::IFF_VNET_HDR;
            }
            let mut ifr = [0u8; 40];
            ifr[16..18].copy_from_slice(&(flags as u16).to_ne_bytes());
            // SAFETY: TUNSETIFF reads a struct ifreq (macvtap looks only at the flags).
            let ret = unsafe { ioctl_with_ref(&tap, TUNSETIFF(), &ifr) };
            check(ret, "TUNSETIFF on the macvtap")?;
            if let Some(len) = vnet_hdr {
                // SAFETY: TUNSETVNETHDRSZ reads one int.
                let ret = unsafe { ioctl_with_ref(&tap, TUNSETVNETHDRSZ(), &len) };
                check(ret, "TUNSETVNETHDRSZ")?;
            }
            Ok((tap.into(), sniffer(far)?))
        }
    }
}

/// Runs `ip ARGS` (iproute2).
fn ip(args: &[&str]) -> Result<()> {
    let status = std::process::Command::new("ip")
        .args(args)
        .status()
        .context("running ip (iproute2)")?;
    ensure!(status.success(), "ip {} failed", args.join(" "));
    Ok(())
}

/// Opens the character device of the macvtap with interface index `index`
/// (`/dev/tapN`, made from sysfs's `major:minor` where devtmpfs has not).
fn open_macvtap(index: i32) -> Result<File> {
    let node = format!("/dev/tap{index}");
    if !std::path::Path::new(&node).exists() {
        let dev = std::fs::read_to_string(format!("/sys/class/net/rvm0/macvtap/tap{index}/dev"))
            .context("the macvtap's device number in sysfs")?;
        let (major, minor) = dev.trim().split_once(':').context("major:minor")?;
        let devt = libc::makedev(major.parse()?, minor.parse()?);
        let path = std::ffi::CString::new(node.clone())?;
        // SAFETY: mknod of a character device node at a NUL-terminated path.
        let ret = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o600, devt) };
        check(ret, "mknod of the macvtap's node")?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(&node)
        .with_context(|| node.clone())
}

/// Sets the MTU of the tap behind `tap` (so that frames larger than 1500
/// bytes can be sent into it from a packet socket).
pub fn set_tap_mtu(tap: &OwnedFd, mtu: i32) -> Result<()> {
    let mut ifr = [0u8; 40];
    // SAFETY: TUNGETIFF writes the tap's struct ifreq (40 bytes).
    let ret = unsafe { libc::ioctl(tap.as_raw_fd(), TUNGETIFF() as _, ifr.as_mut_ptr()) };
    check(ret, "TUNGETIFF")?;
    let ctl = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
    ifr[16..20].copy_from_slice(&mtu.to_ne_bytes());
    // SAFETY: SIOCSIFMTU reads a struct ifreq.
    let ret = unsafe { libc::ioctl(ctl.as_raw_fd(), libc::SIOCSIFMTU, ifr.as_mut_ptr()) };
    check(ret, "SIOCSIFMTU")
}

/// Brings interface `name` (NUL-terminated) up; returns its index.
pub fn interface_up(name: &[u8]) -> Result<i32> {
    let ctl = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
    let mut req = [0u8; 40];
    req[..name.len().min(16)].copy_from_slice(&name[..name.len().min(16)]);
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS/SIOCGIFINDEX read and write a struct ifreq.
    unsafe {
        check(
            libc::ioctl(ctl.as_raw_fd(), libc::SIOCGIFFLAGS, req.as_mut_ptr()),
            "SIOCGIFFLAGS",
        )?;
        let flags = i16::from_ne_bytes([req[16], req[17]]) | libc::IFF_UP as i16;
        req[16..18].copy_from_slice(&flags.to_ne_bytes());
        check(
            libc::ioctl(ctl.as_raw_fd(), libc::SIOCSIFFLAGS, req.as_mut_ptr()),
            "SIOCSIFFLAGS",
        )?;
        check(
            libc::ioctl(ctl.as_raw_fd(), libc::SIOCGIFINDEX, req.as_mut_ptr()),
            "SIOCGIFINDEX",
        )?;
    }
    Ok(i32::from_ne_bytes([req[16], req[17], req[18], req[19]]))
}

/// A raw packet socket for the test's EtherType, bound to `ifindex`.
pub fn packet_socket(ifindex: i32) -> Result<OwnedFd> {
    let proto = ETHERTYPE.to_be();
    let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto))?;
    // SAFETY: an all-zero sockaddr_ll is valid; the fields we need are set.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex;
    // SAFETY: binds to a valid sockaddr_ll of the right size.
    let ret = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    check(ret, "bind")?;
    Ok(fd)
}

/// The test's own packet socket on `ifindex`, with a large receive buffer
/// and a receive timeout.
pub fn sniffer(ifindex: i32) -> Result<OwnedFd> {
    let sniffer = packet_socket(ifindex)?;
    // Room for a full ring of 1500-byte frames and more: a packet socket that
    // overflows drops frames, which would look like the device losing them.
    let rcvbuf: libc::c_int = 16 << 20;
    // SAFETY: SO_RCVBUFFORCE takes an int.
    let ret = unsafe {
        libc::setsockopt(
            sniffer.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&rcvbuf as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    check(ret, "SO_RCVBUFFORCE")?;
    let tv = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: SO_RCVTIMEO takes a timeval.
    let ret = unsafe {
        libc::setsockopt(
            sniffer.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    check(ret, "SO_RCVTIMEO")?;
    Ok(sniffer)
}

/// Test frame `i`: broadcast, local source, our EtherType, a payload pattern.
pub fn frame(i: u32, size: usize) -> Vec<u8> {
    let mut f = vec![0u8; size.max(14)];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    for (j, b) in f[14..].iter_mut().enumerate() {
        *b = (i as usize).wrapping_mul(31).wrapping_add(j) as u8;
    }
    f
}

/// A vhost ioctl taking `{index, num}`.
pub fn set_state(dev: &File, req: u64, index: u32, num: u32) -> Result<()> {
    let s = vhost_vring_state { index, num };
    // SAFETY: the request reads one vhost_vring_state.
    check(unsafe { ioctl_with_ref(dev, req, &s) }, "vring state ioctl")
}

/// A vhost ioctl taking `{index, fd}`.
pub fn set_file(dev: &File, req: u64, index: u32, fd: i32) -> Result<()> {
    let f = vhost_vring_file { index, fd };
    // SAFETY: the request reads one vhost_vring_file.
    check(unsafe { ioctl_with_ref(dev, req, &f) }, "vring file ioctl")
}

/// Frames the packet socket dropped (its receive buffer overflowed).
pub fn sniffer_drops(sniffer: &OwnedFd) -> u32 {
    let mut stats = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: PACKET_STATISTICS fills a tpacket_stats of `len` bytes.
    let ret = unsafe {
        libc::getsockopt(
            sniffer.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut stats as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    };
    if ret == 0 {
        stats.tp_drops
    } else {
        0
    }
}

/// `struct rvhost_vring_stats` (rust/rvhost_uapi.h): rvhost's per-queue
/// counters, which its owner reads with `RVHOST_GET_VRING_STATS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VringStats {
    pub index: u32,
    pub padding: u32,
    pub kicks: u64,
    pub calls: u64,
    pub calls_suppressed: u64,
    pub packets: u64,
    pub bytes: u64,
    pub rounds: u64,
    pub drops: u64,
    pub errors: u64,
}

vmm_sys_util::ioctl_iowr_nr!(RVHOST_GET_VRING_STATS, b'r' as u32, 0x01, VringStats);

/// `struct rvhost_vring_coalesce` (rust/rvhost_uapi.h): a queue's interrupt
/// coalescing, set with `RVHOST_SET_VRING_COALESCE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VringCoalesce {
    pub index: u32,
    pub max_packets: u32,
    pub max_usecs: u32,
    pub flags: u32,
}

/// `RVHOST_COALESCE_F_ADAPTIVE`: hold signals only while the device has
/// more work on the queue at once.
pub const RVHOST_COALESCE_F_ADAPTIVE: u32 = 1;

vmm_sys_util::ioctl_iow_nr!(RVHOST_SET_VRING_COALESCE, b'r' as u32, 0x02, VringCoalesce);
vmm_sys_util::ioctl_iowr_nr!(RVHOST_GET_VRING_COALESCE, b'r' as u32, 0x03, VringCoalesce);

/// Sets a queue's interrupt coalescing (rvhost only).
pub fn set_vring_coalesce(dev: &impl AsRawFd, c: VringCoalesce) -> std::io::Result<()> {
    // SAFETY: the request reads one rvhost_vring_coalesce.
    let ret = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            RVHOST_SET_VRING_COALESCE() as _,
            &c as *const VringCoalesce,
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads a queue's interrupt coalescing (rvhost only).
pub fn vring_coalesce(dev: &impl AsRawFd, index: u32) -> std::io::Result<VringCoalesce> {
    let mut c = VringCoalesce {
        index,
        ..Default::default()
    };
    // SAFETY: the request reads and writes one rvhost_vring_coalesce.
    let ret = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            RVHOST_GET_VRING_COALESCE() as _,
            &mut c as *mut VringCoalesce,
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(c)
}

/// A queue's interrupt coalescing as a command line writes it,
/// `PACKETS:USECS[:adaptive]` ([`parse_coalesce`]; `Display` writes it back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoalesceSpec {
    pub max_packets: u32,
    pub max_usecs: u32,
    pub flags: u32,
}

impl CoalesceSpec {
    /// The ioctl argument that sets it on queue `index`.
    pub fn for_queue(self, index: u32) -> VringCoalesce {
        VringCoalesce {
            index,
            max_packets: self.max_packets,
            max_usecs: self.max_usecs,
            flags: self.flags,
        }
    }
}

impl std::fmt::Display for CoalesceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let adaptive = if self.flags & RVHOST_COALESCE_F_ADAPTIVE != 0 {
            ":adaptive"
        } else {
            ""
        };
        write!(f, "{}:{}{adaptive}", self.max_packets, self.max_usecs)
    }
}

/// Parses `PACKETS:USECS[:adaptive]`.
pub fn parse_coalesce(spec: &str) -> Result<CoalesceSpec, String> {
    let mut parts = spec.split(':');
    let number = |part: Option<&str>, what: &str| {
        part.and_then(|p| p.parse::<u32>().ok())
            .ok_or_else(|| format!("{spec}: {what} is not a number (PACKETS:USECS[:adaptive])"))
    };
    let packets = number(parts.next(), "PACKETS")?;
    let usecs = number(parts.next(), "USECS")?;
    let flags = match parts.next() {
        None => 0,
        Some("adaptive") => RVHOST_COALESCE_F_ADAPTIVE,
        Some(other) => return Err(format!("{spec}: unknown flag {other:?} (only adaptive)")),
    };
    if parts.next().is_some() {
        return Err(format!(
            "{spec}: too many fields (PACKETS:USECS[:adaptive])"
        ));
    }
    Ok(CoalesceSpec {
        max_packets: packets,
        max_usecs: usecs,
        flags,
    })
}

// Not in the vhost crate's list.
vmm_sys_util::ioctl_iow_nr!(
    VHOST_SET_VRING_BUSYLOOP_TIMEOUT,
    0xaf,
    0x23,
    vhost_vring_state
);
vmm_sys_util::ioctl_iow_nr!(
    VHOST_GET_VRING_BUSYLOOP_TIMEOUT,
    0xaf,
    0x24,
    vhost_vring_state
);

/// Queue `queue`'s counters of the rvhost device `dev`; `None` where the
/// device has no such ioctl (upstream vhost-net answers `ENOTTY`).
pub fn vring_stats(dev: &impl AsRawFd, queue: u32) -> Option<VringStats> {
    let mut stats = VringStats {
        index: queue,
        ..Default::default()
    };
    // SAFETY: the request reads and writes one rvhost_vring_stats.
    let ret = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            RVHOST_GET_VRING_STATS() as _,
            &mut stats as *mut VringStats,
        )
    };
    (ret == 0).then_some(stats)
}

#[cfg(test)]
mod coalesce_tests {
    use super::*;

    #[test]
    fn coalesce_specs_parse_or_say_why_not() {
        let spec = |max_packets, max_usecs, flags| CoalesceSpec {
            max_packets,
            max_usecs,
            flags,
        };
        assert_eq!(parse_coalesce("64:50"), Ok(spec(64, 50, 0)));
        assert_eq!(
            parse_coalesce("0:20:adaptive"),
            Ok(spec(0, 20, RVHOST_COALESCE_F_ADAPTIVE))
        );
        for written in ["64:50", "0:20:adaptive"] {
            assert_eq!(parse_coalesce(written).unwrap().to_string(), written);
        }
        assert!(parse_coalesce("64").is_err());
        assert!(parse_coalesce("64:x").is_err());
        assert!(parse_coalesce("64:50:fast").is_err());
        assert!(parse_coalesce("64:50:adaptive:1").is_err());
    }
}
