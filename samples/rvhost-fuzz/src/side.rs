//! One device under comparison and everything its operations refer to: the
//! open device file, a guest memory mapping, eventfds, taps and sockets. Both
//! sides are built alike, so an operation resolved against each (an offset
//! into its own mapping, its own tap) is the same request to both devices.

use crate::op::{Addr, Fd, Ioctl, Op};
use anyhow::{ensure, Context as _, Result};
use nettest::vhost_ioctl::{Outcome, Resolve};
use nettest::{
    backend_and_sniffer, check, interface_up, packet_socket, sniffer, socket, Backend, VringStats,
};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use vmm_sys_util::eventfd::EventFd;

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

    /// Makes ioctl `op` on the device.
    pub fn ioctl(&self, op: &Op, offers: &Offers) -> Outcome {
        let Some(dev) = &self.dev else {
            return Outcome {
                ret: -1,
                errno: libc::EBADF,
                value: None,
            };
        };
        let set_features = |bits| Ioctl::SetFeatures(bits).run(dev, self);
        match op {
            Op::Ioctl(call) => call.run(dev, self),
            Op::SetFeatures { mask } => set_features(mask & offers.both & !NEVER_ACKED),
            Op::SetUnknownFeatures(bits) => set_features(match bits & !offers.either {
                0 => 1 << 63,
                unknown => unknown,
            }),
            Op::InChild(inner) => self.ioctl_in_child(inner, offers),
            _ => unreachable!("not an ioctl: {op:?}"),
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
                o.ret.into(),
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
            ret: rec[0] as i32,
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
        nettest::vring_stats(self.dev.as_ref()?, queue)
    }
}

impl Resolve<Addr, Fd> for Side {
    fn address(&self, addr: Addr) -> u64 {
        match addr {
            Addr::Mem(offset) => self.map as u64 + offset,
            Addr::Raw(value) => value,
        }
    }

    fn descriptor(&self, fd: Fd) -> RawFd {
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
}

impl Drop for Side {
    fn drop(&mut self) {
        self.close();
        // SAFETY: our mapping, unmapped once.
        unsafe { libc::munmap(self.map.cast(), (MAP_SIZE + GUARD) as usize) };
    }
}
