//! One device under comparison and everything its operations refer to: the
//! open device file, a guest memory mapping, eventfds, taps and sockets. Both
//! sides are built alike, so an operation resolved against each (an offset
//! into its own mapping, its own tap) is the same request to both devices.

use crate::op::{Addr, Fd, Op};
use anyhow::{ensure, Context as _, Result};
use nettest::{backend_and_sniffer, check, interface_up, packet_socket, sniffer, Backend};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use vhost::vhost_kern::vhost_binding::{
    vhost_vring_addr, vhost_vring_file, vhost_vring_state, VHOST_GET_BACKEND_FEATURES,
    VHOST_GET_FEATURES, VHOST_GET_VRING_BASE, VHOST_NET_SET_BACKEND, VHOST_RESET_OWNER,
    VHOST_SET_BACKEND_FEATURES, VHOST_SET_FEATURES, VHOST_SET_LOG_BASE, VHOST_SET_LOG_FD,
    VHOST_SET_MEM_TABLE, VHOST_SET_OWNER, VHOST_SET_VRING_ADDR, VHOST_SET_VRING_BASE,
    VHOST_SET_VRING_CALL, VHOST_SET_VRING_ERR, VHOST_SET_VRING_KICK, VHOST_SET_VRING_NUM,
};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::ioctl::{ioctl, ioctl_with_mut_ref, ioctl_with_ptr, ioctl_with_ref};

use nettest::{
    VringStats, RVHOST_GET_VRING_STATS, VHOST_GET_VRING_BUSYLOOP_TIMEOUT,
    VHOST_SET_VRING_BUSYLOOP_TIMEOUT,
};

pub const PAGE: u64 = 4096;
/// Read-write guest memory: offsets `0..MEM_SIZE`.
pub const MEM_SIZE: u64 = 4 << 20;
/// A read-only page right after guest memory.
pub const RO_PAGE: u64 = MEM_SIZE;
/// An inaccessible page after that.
pub const NONE_PAGE: u64 = MEM_SIZE + PAGE;
/// What `Addr::Mem` offsets may name: guest memory and the two pages.
pub const MAP_SIZE: u64 = MEM_SIZE + 2 * PAGE;
/// Inaccessible address space reserved behind the mapping, larger than the
/// largest ring (32768 descriptors, 512 KiB): a ring placed near the end of
/// the mapping faults there instead of reaching the fuzzer's own memory.
const GUARD: u64 = 1 << 20;
/// `VHOST_F_LOG_ALL`, never acked even when both devices offer it: with it
/// a device sets a dirty bit at `log base + gpa / 32768` for every buffer it
/// writes, and the memory tables here map arbitrary guest-physical addresses,
/// so those bits could land anywhere in the fuzzer's own address space.
const NEVER_ACKED: u64 = 1 << 26;
/// A descriptor number no file is open under (checked at start).
const CLOSED_FD: RawFd = 1000;

/// What an ioctl returned: its return value, the errno when negative, and
/// the value it reported back, if it reports one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub ret: i64,
    pub errno: i32,
    pub value: Option<u64>,
}

/// Feature bits the two devices offer, from their `VHOST_GET_FEATURES`.
#[derive(Clone, Copy, Debug)]
pub struct Offers {
    /// Offered by every device under test: what `SET_FEATURES` acks from.
    pub both: u64,
    /// Offered by any: unknown bits are drawn outside these.
    pub either: u64,
}

pub struct Side {
    pub label: &'static str,
    pub path: String,
    map: *mut u8,
    dev: Option<File>,
    kick: [EventFd; 2],
    call: [EventFd; 2],
    err: [EventFd; 2],
    spare: EventFd,
    devnull: File,
    tap: OwnedFd,
    tap_sender: OwnedFd,
    tap_hdr: OwnedFd,
    tap_hdr_sender: OwnedFd,
    raw: OwnedFd,
    raw_sender: OwnedFd,
    dgram: OwnedFd,
    udp: OwnedFd,
}

fn socket(domain: i32, kind: i32, proto: i32) -> Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe { libc::socket(domain, kind, proto) };
    check(fd, "socket")?;
    // SAFETY: `fd` is a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    // SAFETY: F_GETFL/F_SETFL on our own descriptor.
    let ret = unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK)
    };
    check(ret, "fcntl O_NONBLOCK")
}

/// A veth pair `{name}0`/`{name}1`: a raw packet socket on the near end for
/// the device, and one on the far end to send it frames.
fn veth(name: &str) -> Result<(OwnedFd, OwnedFd)> {
    let (near, far) = (format!("{name}0"), format!("{name}1"));
    let status = std::process::Command::new("ip")
        .args(["link", "add", &near, "type", "veth", "peer", "name", &far])
        .status()
        .context("running ip link add (iproute2)")?;
    ensure!(status.success(), "ip link add {near} type veth failed");
    let near = interface_up(format!("{near}\0").as_bytes())?;
    let far = interface_up(format!("{far}\0").as_bytes())?;
    Ok((packet_socket(near)?, sniffer(far)?))
}

impl Side {
    /// Builds the resources of one side; `tag` names its veth pair. Must run
    /// inside the fuzzer's own network namespace.
    pub fn new(label: &'static str, path: &str, tag: &str) -> Result<Self> {
        // SAFETY: fcntl on a number we only query.
        let open = unsafe { libc::fcntl(CLOSED_FD, libc::F_GETFD) } >= 0;
        ensure!(!open, "descriptor {CLOSED_FD} is open; it must stay closed");
        let total = (MAP_SIZE + GUARD) as usize;
        // SAFETY: a fresh anonymous mapping, reserved inaccessible first;
        // unmapped in Drop.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        ensure!(
            map != libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        let map: *mut u8 = map.cast();
        // SAFETY: both ranges lie inside the mapping just made.
        let ret = unsafe {
            libc::mprotect(
                map.cast(),
                MEM_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
            ) | libc::mprotect(
                map.add(RO_PAGE as usize).cast(),
                PAGE as usize,
                libc::PROT_READ,
            )
        };
        check(ret, "mprotect")?;
        let (tap, tap_sender) = backend_and_sniffer(Backend::Tap, None)?;
        let (tap_hdr, tap_hdr_sender) = backend_and_sniffer(Backend::Tap, Some(12))?;
        let (raw, raw_sender) = veth(&format!("fz{tag}"))?;
        for fd in [
            &tap,
            &tap_hdr,
            &raw,
            &tap_sender,
            &tap_hdr_sender,
            &raw_sender,
        ] {
            set_nonblocking(fd)?;
        }
        let eth_p_all = i32::from((libc::ETH_P_ALL as u16).to_be());
        let eventfd = || EventFd::new(libc::EFD_NONBLOCK).context("eventfd");
        Ok(Self {
            label,
            path: path.to_string(),
            map,
            dev: None,
            kick: [eventfd()?, eventfd()?],
            call: [eventfd()?, eventfd()?],
            err: [eventfd()?, eventfd()?],
            spare: eventfd()?,
            devnull: File::open("/dev/null")?,
            tap,
            tap_sender,
            tap_hdr,
            tap_hdr_sender,
            raw,
            raw_sender,
            dgram: socket(libc::AF_PACKET, libc::SOCK_DGRAM, eth_p_all)?,
            udp: socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?,
        })
    }

    pub fn open(&mut self) -> Result<()> {
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path))?;
        self.dev = Some(dev);
        Ok(())
    }

    /// Closes the device: the release path, with whatever is running.
    pub fn close(&mut self) {
        self.dev = None;
    }

    /// Gets the side ready for a new case (its device closed): guest memory
    /// zeroed, nothing left in eventfds or sockets from earlier cases.
    pub fn reset(&mut self) {
        // SAFETY: our private anonymous read-write range; MADV_DONTNEED makes
        // it read back as zeros. No device has it: the device file is closed.
        unsafe { libc::madvise(self.map.cast(), MEM_SIZE as usize, libc::MADV_DONTNEED) };
        for e in self.kick.iter().chain(&self.call).chain(&self.err) {
            let _ = e.read();
        }
        let _ = self.spare.read();
        let mut buf = vec![0u8; 65536];
        for fd in [
            &self.tap,
            &self.tap_hdr,
            &self.raw,
            &self.tap_sender,
            &self.tap_hdr_sender,
            &self.raw_sender,
        ] {
            // Bounded: a queue holds at most a few thousand frames.
            for _ in 0..10_000 {
                // SAFETY: reads into our buffer; the descriptor is non-blocking.
                let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    break;
                }
            }
        }
    }

    fn uaddr(&self, addr: Addr) -> u64 {
        match addr {
            Addr::Mem(offset) => self.map as u64 + offset,
            Addr::Raw(value) => value,
        }
    }

    fn fd(&self, fd: Fd) -> RawFd {
        match fd {
            Fd::Unbind => -1,
            Fd::Closed => CLOSED_FD,
            Fd::Kick(q) => self.kick[usize::from(q & 1)].as_raw_fd(),
            Fd::Call(q) => self.call[usize::from(q & 1)].as_raw_fd(),
            Fd::Err(q) => self.err[usize::from(q & 1)].as_raw_fd(),
            Fd::Spare => self.spare.as_raw_fd(),
            Fd::DevNull => self.devnull.as_raw_fd(),
            Fd::Tap => self.tap.as_raw_fd(),
            Fd::TapVnetHdr => self.tap_hdr.as_raw_fd(),
            Fd::RawPacket => self.raw.as_raw_fd(),
            Fd::DgramPacket => self.dgram.as_raw_fd(),
            Fd::Udp => self.udp.as_raw_fd(),
            Fd::Device => self.dev.as_ref().map_or(CLOSED_FD, |d| d.as_raw_fd()),
        }
    }

    /// Makes ioctl `op` on the device.
    pub fn ioctl(&self, op: &Op, offers: &Offers) -> Outcome {
        let Some(dev) = &self.dev else {
            return Outcome {
                ret: -1,
                errno: libc::EBADF,
                value: None,
            };
        };
        let mut value = None;
        let state = |req: u64, index: u32, num: u32| {
            let s = vhost_vring_state { index, num };
            // SAFETY: the request reads one vhost_vring_state.
            unsafe { ioctl_with_ref(dev, req, &s) }
        };
        let state_get = |req: u64, index: u32, value: &mut Option<u64>| {
            let mut s = vhost_vring_state { index, num: 0 };
            // SAFETY: the request reads and writes one vhost_vring_state.
            let ret = unsafe { ioctl_with_mut_ref(dev, req, &mut s) };
            *value = (ret == 0).then_some(u64::from(s.num));
            ret
        };
        let file = |req: u64, index: u32, fd: Fd| {
            let f = vhost_vring_file {
                index,
                fd: self.fd(fd),
            };
            // SAFETY: the request reads one vhost_vring_file.
            unsafe { ioctl_with_ref(dev, req, &f) }
        };
        let set_u64 = |req: u64, bits: u64| {
            // SAFETY: the request reads one u64.
            unsafe { ioctl_with_ref(dev, req, &bits) }
        };
        let get_u64 = |req: u64, value: &mut Option<u64>| {
            let mut bits = 0u64;
            // SAFETY: the request writes one u64.
            let ret = unsafe { ioctl_with_mut_ref(dev, req, &mut bits) };
            *value = (ret == 0).then_some(bits);
            ret
        };
        let ret = match op {
            // SAFETY: no argument.
            Op::SetOwner => unsafe { ioctl(dev, VHOST_SET_OWNER()) },
            // SAFETY: no argument.
            Op::ResetOwner => unsafe { ioctl(dev, VHOST_RESET_OWNER()) },
            Op::GetFeatures => get_u64(VHOST_GET_FEATURES(), &mut value),
            Op::SetFeatures { mask } => {
                set_u64(VHOST_SET_FEATURES(), mask & offers.both & !NEVER_ACKED)
            }
            Op::SetUnknownFeatures(bits) => {
                let unknown = match bits & !offers.either {
                    0 => 1 << 63,
                    b => b,
                };
                set_u64(VHOST_SET_FEATURES(), unknown)
            }
            Op::GetBackendFeatures => get_u64(VHOST_GET_BACKEND_FEATURES(), &mut value),
            Op::SetBackendFeatures(bits) => set_u64(VHOST_SET_BACKEND_FEATURES(), *bits),
            Op::SetMemTable { regions, padding } => {
                // struct vhost_memory: nregions, padding, then the regions
                // (guest_phys_addr, memory_size, userspace_addr, flags_padding).
                let mut buf = vec![0u64; 1 + 4 * regions.len().max(1)];
                buf[0] = regions.len() as u64 | (u64::from(*padding) << 32);
                for (i, r) in regions.iter().enumerate() {
                    buf[1 + 4 * i] = r.gpa;
                    buf[2 + 4 * i] = r.size;
                    buf[3 + 4 * i] = self.uaddr(r.user);
                }
                // SAFETY: the kernel reads the header and the `nregions`
                // regions that follow it in `buf`.
                unsafe { ioctl_with_ptr(dev, VHOST_SET_MEM_TABLE(), buf.as_ptr()) }
            }
            Op::SetLogBase(addr) => set_u64(VHOST_SET_LOG_BASE(), self.uaddr(*addr)),
            Op::SetLogFd(fd) => {
                let fd: libc::c_int = self.fd(*fd);
                // SAFETY: the request reads one int.
                unsafe { ioctl_with_ref(dev, VHOST_SET_LOG_FD(), &fd) }
            }
            Op::SetVringNum { index, num } => state(VHOST_SET_VRING_NUM(), *index, *num),
            Op::SetVringBase { index, num } => state(VHOST_SET_VRING_BASE(), *index, *num),
            Op::GetVringBase { index } => state_get(VHOST_GET_VRING_BASE(), *index, &mut value),
            Op::SetVringAddr {
                index,
                flags,
                desc,
                avail,
                used,
                log,
            } => {
                let a = vhost_vring_addr {
                    index: *index,
                    flags: *flags,
                    desc_user_addr: self.uaddr(*desc),
                    used_user_addr: self.uaddr(*used),
                    avail_user_addr: self.uaddr(*avail),
                    log_guest_addr: *log,
                };
                // SAFETY: the request reads one vhost_vring_addr.
                unsafe { ioctl_with_ref(dev, VHOST_SET_VRING_ADDR(), &a) }
            }
            Op::SetVringKick { index, fd } => file(VHOST_SET_VRING_KICK(), *index, *fd),
            Op::SetVringCall { index, fd } => file(VHOST_SET_VRING_CALL(), *index, *fd),
            Op::SetVringErr { index, fd } => file(VHOST_SET_VRING_ERR(), *index, *fd),
            Op::NetSetBackend { index, fd } => file(VHOST_NET_SET_BACKEND(), *index, *fd),
            Op::SetBusyloop { index, num } => {
                state(VHOST_SET_VRING_BUSYLOOP_TIMEOUT(), *index, *num)
            }
            Op::GetBusyloop { index } => {
                state_get(VHOST_GET_VRING_BUSYLOOP_TIMEOUT(), *index, &mut value)
            }
            Op::GetVringStats { index } => {
                let mut stats = VringStats {
                    index: *index,
                    ..Default::default()
                };
                // SAFETY: the request reads and writes one rvhost_vring_stats.
                unsafe { ioctl_with_mut_ref(dev, RVHOST_GET_VRING_STATS(), &mut stats) }
            }
            Op::Unknown { request, arg } => match arg {
                // SAFETY: an unknown request: nothing of ours is touched.
                None => unsafe { ioctl_with_ptr(dev, *request, std::ptr::null::<u8>()) },
                Some(index) => {
                    // Larger than any size an `_IOC` number in the ranges we
                    // draw from can carry (`_IOC_SIZE` of those is at most 64).
                    let mut buf = [0u32; 64];
                    buf[0] = *index;
                    // SAFETY: the kernel reads or writes at most the
                    // request's size from the start of `buf`.
                    unsafe { ioctl_with_mut_ref(dev, *request, &mut buf) }
                }
            },
            Op::InChild(inner) => return self.ioctl_in_child(inner, offers),
            _ => unreachable!("not an ioctl: {op:?}"),
        };
        let errno = if ret < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        };
        Outcome {
            ret: i64::from(ret),
            errno,
            value,
        }
    }

    /// Makes ioctl `op` from a forked child and returns its answer.
    fn ioctl_in_child(&self, op: &Op, offers: &Offers) -> Outcome {
        let failed = |errno: i32| Outcome {
            ret: -1,
            errno,
            value: None,
        };
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return failed(libc::EMFILE);
        }
        // SAFETY: the child makes one ioctl, writes the answer to the pipe
        // and leaves with _exit, touching nothing the other threads hold.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let o = self.ioctl(op, offers);
            let rec = [
                o.ret,
                o.errno.into(),
                o.value.is_some().into(),
                o.value.unwrap_or(0) as i64,
            ];
            // SAFETY: writes the 32 bytes of `rec` to the pipe, then exits
            // without running the parent's destructors.
            unsafe {
                libc::write(fds[1], rec.as_ptr().cast(), 32);
                libc::_exit(0);
            }
        }
        // SAFETY: closing our copy of the write end.
        unsafe { libc::close(fds[1]) };
        let mut rec = [0i64; 4];
        let n = if pid > 0 {
            // SAFETY: reads at most 32 bytes into `rec` (EOF if the child died).
            unsafe { libc::read(fds[0], rec.as_mut_ptr().cast(), 32) }
        } else {
            -1
        };
        let mut status = 0;
        // SAFETY: reaping our own child (if there is one); closing our read end.
        unsafe {
            if pid > 0 {
                libc::waitpid(pid, &mut status, 0);
            }
            libc::close(fds[0]);
        }
        if n != 32 {
            return failed(libc::ECHILD);
        }
        Outcome {
            ret: rec[0],
            errno: rec[1] as i32,
            value: (rec[2] != 0).then_some(rec[3] as u64),
        }
    }

    /// Guest-side activity: memory writes, kicks, frames into the backend.
    pub fn data(&self, op: &Op) {
        match op {
            Op::Write { offset, bytes, .. } => self.write(*offset, bytes),
            Op::Kick(q) => {
                let _ = self.kick[usize::from(q & 1)].write(1);
            }
            Op::SendFrames { via, count, size } => {
                let sender = match via {
                    Fd::TapVnetHdr => &self.tap_hdr_sender,
                    Fd::RawPacket => &self.raw_sender,
                    _ => &self.tap_sender,
                };
                for i in 0..*count {
                    let f = nettest::frame(u32::from(i), usize::from(*size));
                    // SAFETY: sends from our buffer; a full queue just drops.
                    unsafe {
                        libc::send(
                            sender.as_raw_fd(),
                            f.as_ptr().cast(),
                            f.len(),
                            libc::MSG_DONTWAIT,
                        )
                    };
                }
            }
            _ => unreachable!("not a data operation: {op:?}"),
        }
    }

    /// Writes guest memory (out-of-range writes are dropped). Volatile and
    /// fenced, so the device sees descriptors before the index that
    /// publishes them.
    fn write(&self, offset: u64, bytes: &[u8]) {
        if offset.saturating_add(bytes.len() as u64) > MEM_SIZE {
            return;
        }
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: inside the read-write part of our mapping (checked above).
            unsafe { std::ptr::write_volatile(self.map.add(offset as usize + i), *b) };
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }

    /// The u16 at `offset` of guest memory, if in range and aligned.
    pub fn read_u16(&self, offset: u64) -> Option<u16> {
        if offset + 2 > MEM_SIZE || !offset.is_multiple_of(2) {
            return None;
        }
        // SAFETY: inside the read-write part of our mapping, 2-aligned.
        let v = unsafe { std::ptr::read_volatile(self.map.add(offset as usize).cast::<u16>()) };
        Some(u16::from_le(v))
    }

    /// rvhost's counters for `queue` (None from a device without them).
    pub fn stats(&self, queue: u32) -> Option<VringStats> {
        let dev = self.dev.as_ref()?;
        let mut stats = VringStats {
            index: queue,
            ..Default::default()
        };
        // SAFETY: the request reads and writes one rvhost_vring_stats.
        let ret = unsafe { ioctl_with_mut_ref(dev, RVHOST_GET_VRING_STATS(), &mut stats) };
        (ret == 0).then_some(stats)
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        self.close();
        // SAFETY: our mapping, unmapped once.
        unsafe { libc::munmap(self.map.cast(), (MAP_SIZE + GUARD) as usize) };
    }
}
