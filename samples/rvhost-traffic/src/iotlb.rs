//! `VIRTIO_F_ACCESS_PLATFORM` (`--iotlb`): the device driven as a VMM with a
//! virtual IOMMU drives it. With the feature acked, the ring addresses and
//! every descriptor address are I/O virtual addresses that the device
//! translates through an IOTLB which only its owner fills: the device asks
//! for a translation by a MISS message the owner `read`s from the device's
//! file, the owner answers with an UPDATE it `write`s there, and takes
//! translations back with INVALIDATE. This test is that IOMMU: IOVA `x` is
//! guest memory offset `x`, mapped one 4 KiB page per miss. The memory
//! table puts guest memory at guest-physical 1 GiB, where no IOVA the test
//! uses lies, so that a device translating through the memory table instead
//! of the IOTLB cannot pass.
//!
//! Checks: the file's `read`/`write`/`poll` answers (what upstream
//! `vhost.c` answers, errno for errno), traffic both ways while every page
//! comes in by a miss (each miss message checked: format, size, the access
//! asked for), stale translations not used after an INVALIDATE, and
//! mappings without the access the device needs (a TX buffer write-only, an
//! RX buffer read-only, the used ring read-only): the queue must stop there
//! and work again once the mapping is fixed.

use crate::guest::{DriverQueue, GuestMemory, Layout, BUF_SIZE, MEM_SIZE, QUEUE_SIZE};
use crate::rig::{
    open_owned, own_netns, prepare_queue, set_features, set_mem_table, QueueFds, RingAddrs, Setup,
    RX, TX,
};
use crate::rx::{inject, RxRing};
use crate::tx::{Arrivals, TxDriver};
use crate::{frame, Backend, L0, NET_HDR_LEN};
use anyhow::{anyhow, ensure, Context as _, Result};
use nettest::features::VIRTIO_F_ACCESS_PLATFORM;
use nettest::{backend_and_sniffer, check, set_file};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use vhost::vhost_kern::vhost_binding::{
    vhost_iotlb_msg, vhost_msg, vhost_msg_v2, VHOST_ACCESS_RO, VHOST_ACCESS_RW, VHOST_ACCESS_WO,
    VHOST_BACKEND_F_IOTLB_MSG_V2, VHOST_GET_BACKEND_FEATURES, VHOST_GET_FEATURES,
    VHOST_IOTLB_INVALIDATE, VHOST_IOTLB_MISS, VHOST_IOTLB_MSG, VHOST_IOTLB_MSG_V2,
    VHOST_IOTLB_UPDATE, VHOST_NET_SET_BACKEND, VHOST_SET_BACKEND_FEATURES,
};
use vmm_sys_util::ioctl::{ioctl_with_mut_ref, ioctl_with_ref};

const PAGE: u64 = 4096;
/// Bytes of `struct vhost_msg` and of `struct vhost_msg_v2`: what one
/// message is on the file, both ways.
const MSG_LEN: usize = 72;
/// Where `struct vhost_iotlb_msg` starts in both formats (v1: after the type
/// and a hole; v2: after the type and the address space id).
const INNER: usize = 8;
const _: () = assert!(std::mem::size_of::<vhost_msg>() == MSG_LEN);
const _: () = assert!(std::mem::size_of::<vhost_msg_v2>() == MSG_LEN);
const _: () = assert!(std::mem::size_of::<vhost_iotlb_msg>() == 32);
const _: () = assert!(std::mem::offset_of!(vhost_msg, __bindgen_anon_1) == INNER);
const _: () = assert!(std::mem::offset_of!(vhost_msg_v2, __bindgen_anon_1) == INNER);
/// The message formats (the leading type field).
const FORMAT_V1: u32 = VHOST_IOTLB_MSG as u32;
const FORMAT_V2: u32 = VHOST_IOTLB_MSG_V2;
/// The backend feature the test acks, as QEMU does: misses come as v2.
const BACKEND_MSG_V2: u64 = 1 << VHOST_BACKEND_F_IOTLB_MSG_V2;
/// Where guest memory is in the memory table: above every IOVA in use.
const MEM_GPA: u64 = 0x4000_0000;
/// Layout 0 with each buffer 256 bytes into its 2 KiB slot: no buffer
/// starts on a page boundary (a miss must name the address the device
/// missed, not its page), and none of up to 1792 bytes crosses one.
const LAYOUT: Layout = Layout {
    buf: L0.buf + 0x100,
    ..L0
};
/// RX buffer size: the largest frame (1514 B) with its header fits.
const RX_BUF: u32 = 1536;
/// Frames of the traffic checks.
const FRAMES: u32 = 300;
/// How long a queue is given to show it did (not) use a chain.
const STALL: Duration = Duration::from_millis(500);
/// Bounded waits for what must happen.
const PATIENCE: Duration = Duration::from_secs(5);

/// The features acked: the rig's usual set with an IOTLB.
fn features() -> u64 {
    Setup::new(true, VIRTIO_F_ACCESS_PLATFORM, Backend::Tap).features()
}

/// Frame `i`'s size: 60 to 1514 bytes, cycling.
fn size(i: u32) -> usize {
    60 + (i as usize * 97) % 1455
}

/// One IOTLB message as it crosses the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Msg {
    /// `FORMAT_V1` or `FORMAT_V2` (or anything, to be refused).
    format: u32,
    iova: u64,
    size: u64,
    uaddr: u64,
    perm: u8,
    /// `VHOST_IOTLB_*`.
    kind: u8,
}

impl Msg {
    fn update(iova: u64, size: u64, uaddr: u64, perm: u8) -> Self {
        Self {
            format: FORMAT_V2,
            iova,
            size,
            uaddr,
            perm,
            kind: VHOST_IOTLB_UPDATE,
        }
    }

    fn invalidate(iova: u64, size: u64) -> Self {
        Self {
            kind: VHOST_IOTLB_INVALIDATE,
            ..Self::update(iova, size, 0, 0)
        }
    }

    /// The message's bytes; the 4 bytes after the type (v1's hole, v2's
    /// address space id) are 0.
    fn bytes(&self) -> [u8; MSG_LEN] {
        let mut b = [0u8; MSG_LEN];
        b[..4].copy_from_slice(&self.format.to_ne_bytes());
        b[INNER..INNER + 8].copy_from_slice(&self.iova.to_ne_bytes());
        b[INNER + 8..INNER + 16].copy_from_slice(&self.size.to_ne_bytes());
        b[INNER + 16..INNER + 24].copy_from_slice(&self.uaddr.to_ne_bytes());
        b[INNER + 24] = self.perm;
        b[INNER + 25] = self.kind;
        b
    }

    fn parse(b: &[u8; MSG_LEN]) -> Self {
        let u64_at = |at: usize| u64::from_ne_bytes(b[at..at + 8].try_into().unwrap());
        Self {
            format: u32::from_ne_bytes(b[..4].try_into().unwrap()),
            iova: u64_at(INNER),
            size: u64_at(INNER + 8),
            uaddr: u64_at(INNER + 16),
            perm: b[INNER + 24],
            kind: b[INNER + 25],
        }
    }
}

/// A read or write: the bytes it moved, or its errno.
type Sys = std::result::Result<usize, i32>;

fn errno(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

fn write_msg(dev: &File, bytes: &[u8]) -> Sys {
    let mut dev = dev;
    dev.write(bytes).map_err(errno)
}

fn read_msg(dev: &File, buf: &mut [u8]) -> Sys {
    let mut dev = dev;
    dev.read(buf).map_err(errno)
}

/// A result for humans: the count, or the errno's name.
fn show(r: Sys) -> String {
    match r {
        Ok(n) => format!("{n}"),
        Err(libc::EINVAL) => "EINVAL".into(),
        Err(libc::EFAULT) => "EFAULT".into(),
        Err(libc::EAGAIN) => "EAGAIN".into(),
        Err(libc::EBADFD) => "EBADFD".into(),
        Err(e) => format!("{}", std::io::Error::from_raw_os_error(e)),
    }
}

fn expect(what: &str, got: Sys, want: Sys) -> Result<()> {
    ensure!(
        got == want,
        "{what}: got {}, expected {}",
        show(got),
        show(want)
    );
    Ok(())
}

/// `poll` for input; the events reported.
fn poll_in(dev: &File, timeout_ms: i32) -> Result<i16> {
    let mut p = libc::pollfd {
        fd: dev.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDNORM,
        revents: 0,
    };
    // SAFETY: one pollfd of ours.
    let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    check(n, "poll")?;
    Ok(p.revents)
}

/// Reads on the device fail with `EAGAIN` instead of waiting for a miss.
fn set_nonblocking(dev: &File) -> Result<()> {
    // SAFETY: F_GETFL on our fd, no argument.
    let flags = unsafe { libc::fcntl(dev.as_raw_fd(), libc::F_GETFL) };
    check(flags, "F_GETFL")?;
    // SAFETY: F_SETFL on our fd with an int.
    let ret = unsafe { libc::fcntl(dev.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) };
    check(ret, "F_SETFL O_NONBLOCK")
}

/// `VHOST_GET_FEATURES`.
fn offered(dev: &File) -> Result<u64> {
    let mut features = 0u64;
    // SAFETY: writes one u64.
    let ret = unsafe { ioctl_with_mut_ref(dev, VHOST_GET_FEATURES(), &mut features) };
    check(ret, "GET_FEATURES")?;
    Ok(features)
}

/// `VHOST_GET_BACKEND_FEATURES` must offer v2 messages; acks them.
fn ack_msg_v2(dev: &File) -> Result<()> {
    let mut offered = 0u64;
    // SAFETY: writes one u64.
    let ret = unsafe { ioctl_with_mut_ref(dev, VHOST_GET_BACKEND_FEATURES(), &mut offered) };
    check(ret, "GET_BACKEND_FEATURES")?;
    ensure!(
        offered & BACKEND_MSG_V2 != 0,
        "backend features {offered:#x}: no VHOST_BACKEND_F_IOTLB_MSG_V2"
    );
    // SAFETY: reads one u64.
    let ret = unsafe { ioctl_with_ref(dev, VHOST_SET_BACKEND_FEATURES(), &BACKEND_MSG_V2) };
    check(ret, "SET_BACKEND_FEATURES")
}

/// Opens `device` as a VMM with a vIOMMU does: owner, v2 messages, the
/// features with `ACCESS_PLATFORM` (a new, empty IOTLB), the memory table
/// (guest memory at `MEM_GPA`); reads do not wait.
fn open_translated(device: &str, mem: &GuestMemory) -> Result<File> {
    let dev = open_owned(device)?;
    ack_msg_v2(&dev)?;
    let offered = offered(&dev)?;
    ensure!(
        offered & VIRTIO_F_ACCESS_PLATFORM != 0,
        "features {offered:#x}: no VIRTIO_F_ACCESS_PLATFORM"
    );
    set_features(&dev, features())?;
    set_mem_table(&dev, mem, MEM_GPA)?;
    set_nonblocking(&dev)?;
    Ok(dev)
}

/// The parts of a queue's memory, each with the access the device needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Area {
    Desc,
    Avail,
    Used,
    Buffers,
}

impl Area {
    const ALL: [Area; 4] = [Area::Desc, Area::Avail, Area::Used, Area::Buffers];

    /// Start and length in `LAYOUT` (rings with `EVENT_IDX`'s extra field).
    fn range(self) -> (u64, u64) {
        let n = u64::from(QUEUE_SIZE);
        match self {
            Area::Desc => (LAYOUT.desc, 16 * n),
            Area::Avail => (LAYOUT.avail, 6 + 2 * n),
            Area::Used => (LAYOUT.used, 6 + 8 * n),
            Area::Buffers => (LAYOUT.buf, BUF_SIZE * n),
        }
    }

    fn of(iova: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|a| {
            let (start, len) = a.range();
            (start..start + len).contains(&iova)
        })
    }

    /// The first page and the length in whole pages.
    fn pages(self) -> (u64, u64) {
        let (start, len) = self.range();
        let first = start & !(PAGE - 1);
        (first, (start + len).div_ceil(PAGE) * PAGE - first)
    }
}

fn perm_name(perm: u8) -> &'static str {
    match perm {
        VHOST_ACCESS_RO => "RO",
        VHOST_ACCESS_WO => "WO",
        VHOST_ACCESS_RW => "RW",
        _ => "?",
    }
}

/// A miss the device reported.
#[derive(Clone, Copy, Debug)]
struct Miss {
    iova: u64,
    perm: u8,
}

/// The test's IOMMU: a thread answers each miss with an UPDATE of the page
/// holding it, with the access `rules` give its area (read-write where none
/// does; no answer for `None`).
struct Iommu<'a> {
    dev: &'a File,
    mem: &'a GuestMemory,
    rules: Mutex<Vec<(Area, Option<u8>)>>,
    misses: Mutex<Vec<Miss>>,
    /// What the thread found wrong (malformed messages, failed answers).
    problems: Mutex<Vec<String>>,
    last_message: Mutex<Instant>,
    answered: AtomicU64,
    /// While set the thread leaves the file alone (the test polls it).
    paused: AtomicBool,
    stop: AtomicBool,
}

impl<'a> Iommu<'a> {
    /// Runs `body` with an IOMMU thread serving `dev`; the thread is
    /// stopped after it, and what it found wrong fails the check.
    fn serve<T>(
        dev: &File,
        mem: &GuestMemory,
        rules: Vec<(Area, Option<u8>)>,
        paused: bool,
        body: impl FnOnce(&Iommu) -> Result<T>,
    ) -> Result<T> {
        let iommu = Iommu {
            dev,
            mem,
            rules: Mutex::new(rules),
            misses: Mutex::new(Vec::new()),
            problems: Mutex::new(Vec::new()),
            last_message: Mutex::new(Instant::now()),
            answered: AtomicU64::new(0),
            paused: AtomicBool::new(paused),
            stop: AtomicBool::new(false),
        };
        std::thread::scope(|s| {
            let server = s.spawn(|| iommu.run());
            let result = body(&iommu);
            iommu.stop.store(true, Ordering::Release);
            let joined = server.join();
            ensure!(joined.is_ok(), "the IOMMU thread panicked");
            match (result, iommu.healthy()) {
                (Ok(v), Ok(())) => Ok(v),
                (Ok(_), Err(p)) => Err(p),
                (Err(e), Ok(())) => Err(e),
                (Err(e), Err(p)) => Err(e.context(format!("{p:#}"))),
            }
        })
    }

    /// The thread: poll, read each message, answer the misses.
    fn run(&self) {
        let mut buf = [0u8; 2 * MSG_LEN];
        while !self.stop.load(Ordering::Acquire) {
            if self.paused.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            match poll_in(self.dev, 10) {
                Ok(0) => continue,
                Ok(events) if events & libc::POLLIN != 0 => {}
                Ok(events) => {
                    self.problem(format!("poll: events {events:#x} without POLLIN"));
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                Err(e) => {
                    self.problem(format!("{e:#}"));
                    return;
                }
            }
            // Only this thread reads: what poll saw waiting is there.
            let mut first = true;
            while !self.stop.load(Ordering::Acquire) {
                let problem = match read_msg(self.dev, &mut buf) {
                    Err(libc::EAGAIN) if first => {
                        "poll said a message was waiting; read found none".to_string()
                    }
                    Err(libc::EAGAIN) => break,
                    Err(e) => format!("read: {}", show(Err(e))),
                    Ok(0) => "read returned 0 with room for a message".to_string(),
                    Ok(n) => {
                        self.handle(&buf[..n]);
                        first = false;
                        continue;
                    }
                };
                // Not in a tight loop on a device that keeps failing.
                self.problem(problem);
                std::thread::sleep(Duration::from_millis(10));
                break;
            }
        }
    }

    /// One message read from the device: must be a v2 MISS as upstream
    /// writes it (size and uaddr 0, an access of RO or WO).
    fn handle(&self, bytes: &[u8]) {
        *self.last_message.lock().unwrap() = Instant::now();
        let Ok(bytes) = <&[u8; MSG_LEN]>::try_from(bytes) else {
            return self.problem(format!("read gave {} bytes, not {MSG_LEN}", bytes.len()));
        };
        let msg = Msg::parse(bytes);
        let well_formed = msg.format == FORMAT_V2
            && msg.kind == VHOST_IOTLB_MISS
            && msg.size == 0
            && msg.uaddr == 0
            && matches!(msg.perm, VHOST_ACCESS_RO | VHOST_ACCESS_WO);
        if !well_formed {
            return self.problem(format!(
                "read {msg:x?}: expected a v2 ({FORMAT_V2}) MISS ({VHOST_IOTLB_MISS}) with size 0, \
                 uaddr 0 and perm RO ({VHOST_ACCESS_RO}) or WO ({VHOST_ACCESS_WO})"
            ));
        }
        if msg.iova >= MEM_SIZE as u64 {
            return self.problem(format!(
                "a miss at IOVA {:#x}: no address the test gave the device",
                msg.iova
            ));
        }
        self.misses.lock().unwrap().push(Miss {
            iova: msg.iova,
            perm: msg.perm,
        });
        let rule = self
            .rules
            .lock()
            .unwrap()
            .iter()
            .find(|(area, _)| Area::of(msg.iova) == Some(*area))
            .map(|&(_, perm)| perm);
        if let Some(perm) = rule.unwrap_or(Some(VHOST_ACCESS_RW)) {
            match self.map(msg.iova & !(PAGE - 1), PAGE, perm) {
                Ok(()) => {
                    self.answered.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.problem(format!("answering the miss at {:#x}: {e:#}", msg.iova)),
            }
        }
    }

    /// Notes what was wrong (the first few: a device that keeps failing
    /// would repeat itself).
    fn problem(&self, what: String) {
        let mut problems = self.problems.lock().unwrap();
        if problems.len() < 8 {
            problems.push(what);
        }
    }

    /// Fails with what the thread found wrong.
    fn healthy(&self) -> Result<()> {
        let problems = self.problems.lock().unwrap();
        ensure!(
            problems.is_empty(),
            "the IOMMU thread: {}",
            problems.join("; ")
        );
        Ok(())
    }

    /// UPDATE: IOVAs `[iova, iova + size)` to guest memory at the same
    /// offsets, with access `perm`.
    fn map(&self, iova: u64, size: u64, perm: u8) -> Result<()> {
        let msg = Msg::update(iova, size, self.mem.uaddr(iova), perm);
        let got = write_msg(self.dev, &msg.bytes());
        expect(&format!("writing {msg:x?}"), got, Ok(MSG_LEN))
    }

    fn invalidate(&self, iova: u64, size: u64) -> Result<()> {
        let msg = Msg::invalidate(iova, size);
        let got = write_msg(self.dev, &msg.bytes());
        expect(&format!("writing {msg:x?}"), got, Ok(MSG_LEN))
    }

    /// Maps every page of `area` with `perm`, page by page as misses would.
    fn map_area(&self, area: Area, perm: u8) -> Result<()> {
        let (first, len) = area.pages();
        (first..first + len)
            .step_by(PAGE as usize)
            .try_for_each(|page| self.map(page, PAGE, perm))
    }

    fn invalidate_area(&self, area: Area) -> Result<()> {
        let (first, len) = area.pages();
        self.invalidate(first, len)
    }

    fn set_rules(&self, rules: Vec<(Area, Option<u8>)>) {
        *self.rules.lock().unwrap() = rules;
    }

    fn misses(&self) -> Vec<Miss> {
        self.misses.lock().unwrap().clone()
    }

    fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Waits until no message has come for 100 ms and none is waiting.
    fn settle(&self) -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let quiet = self.last_message.lock().unwrap().elapsed() > Duration::from_millis(100);
            if quiet && poll_in(self.dev, 0)? == 0 {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the device kept sending misses ({} so far)",
                self.misses().len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last few misses, for failure messages.
    fn recent(&self) -> String {
        let misses = self.misses();
        let tail: Vec<String> = misses
            .iter()
            .rev()
            .take(4)
            .map(|m| format!("{:#x} {}", m.iova, perm_name(m.perm)))
            .collect();
        format!("{} misses, last: [{}]", misses.len(), tail.join(", "))
    }
}

/// Checks each miss asked for the access the device needs where it lies (RO
/// on the descriptor table and avail ring, WO on the used ring, `buffers` on
/// the buffers, each buffer miss at a buffer's first byte) and that each
/// area of `need` missed; says how many missed where.
fn check_misses(misses: &[Miss], buffers: u8, need: &[Area]) -> Result<String> {
    let mut counts: BTreeMap<Area, u32> = BTreeMap::new();
    for m in misses {
        let area = Area::of(m.iova)
            .with_context(|| format!("a miss at IOVA {:#x}: not in a ring or buffer", m.iova))?;
        let want = match area {
            Area::Desc | Area::Avail => VHOST_ACCESS_RO,
            Area::Used => VHOST_ACCESS_WO,
            Area::Buffers => buffers,
        };
        ensure!(
            m.perm == want,
            "the miss at IOVA {:#x} ({area:?}) asks for {}, expected {}",
            m.iova,
            perm_name(m.perm),
            perm_name(want)
        );
        if area == Area::Buffers {
            ensure!(
                (m.iova - LAYOUT.buf).is_multiple_of(BUF_SIZE),
                "the miss at IOVA {:#x} is not a buffer's start (the address the device missed)",
                m.iova
            );
        }
        *counts.entry(area).or_default() += 1;
    }
    for area in need {
        ensure!(
            counts.contains_key(area),
            "no miss in the {area:?} area (misses: {counts:?})"
        );
    }
    Ok(counts
        .iter()
        .map(|(area, n)| format!("{area:?} {n}"))
        .collect::<Vec<_>>()
        .join(", "))
}

/// A translating device with one queue on `LAYOUT`, not yet attached to
/// its tap (in a network namespace of its own).
struct Rig {
    queue: u32,
    dev: File,
    mem: GuestMemory,
    fds: QueueFds,
    tap: OwnedFd,
    sniffer: OwnedFd,
}

impl Rig {
    fn new(device: &str, queue: u32) -> Result<Self> {
        own_netns()?;
        let (tap, sniffer) = backend_and_sniffer(Backend::Tap, None)?;
        let mem = GuestMemory::new()?;
        let dev = open_translated(device, &mem)?;
        let fds = QueueFds::new()?;
        prepare_queue(&dev, queue, RingAddrs::iova(LAYOUT), &fds)?;
        Ok(Self {
            queue,
            dev,
            mem,
            fds,
            tap,
            sniffer,
        })
    }

    /// Attaches the tap. Upstream reads and writes the used ring's flags
    /// and index through the IOTLB right then, without waiting for a miss
    /// (`EFAULT` when it cannot): the caller maps the used ring first, as
    /// QEMU does before it starts a vhost backend with a vIOMMU.
    fn attach(&self) -> Result<()> {
        set_file(
            &self.dev,
            VHOST_NET_SET_BACKEND(),
            self.queue,
            self.tap.as_raw_fd(),
        )
        .context("NET_SET_BACKEND")
    }

    /// Whether the error eventfd was signalled since last asked.
    fn err_signalled(&self) -> bool {
        self.fds.err.read().is_ok()
    }
}

/// Waits until `q`'s used index reaches `want`.
fn wait_used(q: &DriverQueue, want: u16, iommu: &Iommu) -> Result<()> {
    let deadline = Instant::now() + PATIENCE;
    while q.used_idx() != want {
        ensure!(
            Instant::now() < deadline,
            "used index {} after {PATIENCE:?}, expected {want} (avail index {}; {})",
            q.used_idx(),
            q.avail_idx(),
            iommu.recent()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Sends frames `first..first + count` (sizes cycling) and waits until all
/// arrived, in order and intact, and all were used.
fn send_frames(
    tx: &mut TxDriver,
    arrivals: &mut Arrivals,
    first: u32,
    count: u32,
    iommu: &Iommu,
) -> Result<()> {
    let expected = |n| frame(n, size(n));
    for i in first..first + count {
        tx.wait_room(PATIENCE, || {
            format!(
                "the device stopped consuming at frame {i}: avail index {}, used index {}; {}",
                tx.queue.avail_idx(),
                tx.queue.used_idx(),
                iommu.recent()
            )
        })?;
        tx.send(&[0u8; NET_HDR_LEN], &expected(i))?;
        arrivals.take(false, expected)?;
    }
    arrivals
        .wait_for(first + count, expected)
        .with_context(|| iommu.recent())?;
    wait_used(&tx.queue, tx.queue.avail_idx(), iommu)
}

pub fn run(device: &str) -> Result<()> {
    let mut answered = 0;
    fd_semantics(device).context("iotlb: fd-semantics")?;
    answered += tx_misses_and_invalidate(device).context("iotlb: tx-misses, invalidate")?;
    answered += rx_misses(device).context("iotlb: rx-misses")?;
    answered += tx_permission(device).context("iotlb: tx-permission")?;
    answered += rx_permission(device).context("iotlb: rx-permission")?;
    answered += ring_permission(device).context("iotlb: ring-permission")?;
    println!("iotlb: {device}: all 7 checks passed; {answered} misses answered");
    Ok(())
}

/// The file's answers without and with an IOTLB, message by message.
fn fd_semantics(device: &str) -> Result<()> {
    let mem = GuestMemory::new()?;
    let uaddr = mem.uaddr(0);
    let without = features() & !VIRTIO_F_ACCESS_PLATFORM;
    let dev = open_owned(device)?;
    ack_msg_v2(&dev)?;
    set_features(&dev, without)?;
    set_nonblocking(&dev)?;
    let update = Msg::update(0x10_0000, PAGE, uaddr, VHOST_ACCESS_RW);
    let w = |msg: &[u8]| write_msg(&dev, msg);

    // No IOTLB yet: nothing to update or invalidate, nothing to read.
    expect(
        "UPDATE without ACCESS_PLATFORM",
        w(&update.bytes()),
        Err(libc::EFAULT),
    )?;
    let invalidate = Msg::invalidate(0x10_0000, PAGE).bytes();
    expect(
        "INVALIDATE without ACCESS_PLATFORM",
        w(&invalidate),
        Err(libc::EFAULT),
    )?;
    let mut buf = [0u8; MSG_LEN];
    expect(
        "non-blocking read",
        read_msg(&dev, &mut buf),
        Err(libc::EAGAIN),
    )?;
    expect("read of 16 bytes", read_msg(&dev, &mut buf[..16]), Ok(0))?;
    let events = poll_in(&dev, 0)?;
    ensure!(
        events == 0,
        "poll without an IOTLB: events {events:#x}, expected none"
    );

    // Blocking, with no IOTLB to wait on: EBADFD at once (on a second
    // device, in a thread, so that a read that blocks fails the check).
    let other = open_owned(device)?;
    set_features(&other, without)?;
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; MSG_LEN];
        let _ = done.send(read_msg(&other, &mut buf));
    });
    let blocking = result
        .recv_timeout(Duration::from_secs(3))
        .map_err(|_| anyhow!("a blocking read without an IOTLB still blocks after 3 s"))?;
    expect(
        "blocking read without an IOTLB",
        blocking,
        Err(libc::EBADFD),
    )?;

    // With ACCESS_PLATFORM: malformed messages are EINVAL...
    set_features(&dev, features())?;
    let bytes = update.bytes();
    expect("write of 3 bytes", w(&bytes[..3]), Err(libc::EINVAL))?;
    let unknown = Msg {
        format: 7,
        ..update
    };
    expect("message type 7", w(&unknown.bytes()), Err(libc::EINVAL))?;
    expect(
        "a v2 message of 20 bytes",
        w(&bytes[..20]),
        Err(libc::EINVAL),
    )?;
    let empty = Msg { size: 0, ..update };
    expect("UPDATE of size 0", w(&empty.bytes()), Err(libc::EINVAL))?;
    // ...good ones are taken whole, in either format...
    expect("v2 UPDATE", w(&bytes), Ok(MSG_LEN))?;
    let v1 = Msg {
        format: FORMAT_V1,
        iova: 0x20_0000,
        ..update
    };
    expect("v1 UPDATE", w(&v1.bytes()), Ok(MSG_LEN))?;
    let all = Msg::invalidate(0x10_0000, 0x20_0000).bytes();
    expect("INVALIDATE", w(&all), Ok(MSG_LEN))?;
    // ...and what cannot be done is EFAULT.
    let kind9 = Msg { kind: 9, ..update };
    expect("inner type 9", w(&kind9.bytes()), Err(libc::EFAULT))?;
    let miss = Msg {
        kind: VHOST_IOTLB_MISS,
        ..update
    };
    expect(
        "a MISS written to the device",
        w(&miss.bytes()),
        Err(libc::EFAULT),
    )?;
    let kernel = Msg {
        uaddr: 0xffff_8000_0000_0000,
        ..update
    };
    expect(
        "UPDATE of a kernel address",
        w(&kernel.bytes()),
        Err(libc::EFAULT),
    )?;
    let wraps = Msg::update(u64::MAX - 10, 100, uaddr, VHOST_ACCESS_RW);
    expect(
        "UPDATE whose IOVA range wraps",
        w(&wraps.bytes()),
        Err(libc::EFAULT),
    )?;
    // Nothing ran: nothing missed.
    expect(
        "non-blocking read with an IOTLB",
        read_msg(&dev, &mut buf),
        Err(libc::EAGAIN),
    )?;
    let events = poll_in(&dev, 0)?;
    ensure!(
        events == 0,
        "poll with nothing missed: events {events:#x}, expected none"
    );
    println!(
        "iotlb: fd-semantics: ok (without ACCESS_PLATFORM: UPDATE and INVALIDATE EFAULT, \
         read EAGAIN, short read 0, blocking read EBADFD, poll quiet; with it: short, \
         unknown and empty messages EINVAL, v1 and v2 UPDATE and INVALIDATE {MSG_LEN}, \
         other types, kernel and wrapping ranges EFAULT, nothing to read)"
    );
    Ok(())
}

/// TX with every page coming in by a miss; then everything invalidated and
/// 50 frames more, which must miss again.
fn tx_misses_and_invalidate(device: &str) -> Result<u64> {
    let rig = Rig::new(device, TX)?;
    let mut tx = TxDriver::new(&rig.mem, LAYOUT, &rig.fds.kick, true, false);
    let mut arrivals = Arrivals::new(&rig.sniffer);
    Iommu::serve(&rig.dev, &rig.mem, Vec::new(), true, |iommu| {
        iommu.map_area(Area::Used, VHOST_ACCESS_RW)?;
        rig.attach()?;
        // Taken back: the device must ask for the used ring too.
        iommu.invalidate_area(Area::Used)?;
        // A frame with nothing mapped: a miss must become readable.
        tx.send(&[0u8; NET_HDR_LEN], &frame(0, size(0)))?;
        rig.fds.kick.write(1)?;
        let events = poll_in(&rig.dev, 2000)?;
        let want = libc::POLLIN | libc::POLLRDNORM;
        ensure!(
            events & want == want,
            "tx-misses: poll after a frame with nothing mapped: events {events:#x}, expected POLLIN | POLLRDNORM"
        );
        iommu.paused.store(false, Ordering::Release);
        arrivals.take(false, |n| frame(n, size(n)))?;
        send_frames(&mut tx, &mut arrivals, 1, FRAMES - 1, iommu).context("tx-misses")?;
        let misses = iommu.misses();
        let areas = check_misses(&misses, VHOST_ACCESS_RO, &Area::ALL).context("tx-misses")?;
        println!(
            "iotlb: tx-misses: ok ({FRAMES} frames of 60..1514 B arrived in order, intact; \
             {} misses, all v2 with size 0, RO on desc/avail/buffers, WO on used: {areas}; \
             poll showed the first)",
            misses.len()
        );

        iommu.settle().context("invalidate")?;
        let before = misses.len();
        iommu.invalidate(0, 1 << 40)?;
        send_frames(&mut tx, &mut arrivals, FRAMES, 50, iommu).context("invalidate")?;
        let misses = iommu.misses();
        let areas = check_misses(&misses[before..], VHOST_ACCESS_RO, &Area::ALL)
            .context("invalidate: the misses after INVALIDATE")?;
        println!(
            "iotlb: invalidate: ok (after INVALIDATE of everything 50 frames more arrived; \
             {} new misses: {areas})",
            misses.len() - before
        );
        Ok(iommu.answered())
    })
}

/// RX with every page coming in by a miss.
fn rx_misses(device: &str) -> Result<u64> {
    let rig = Rig::new(device, RX)?;
    let mut ring = RxRing::new(&rig.mem, LAYOUT, &rig.fds.kick, true, RX_BUF);
    Iommu::serve(&rig.dev, &rig.mem, Vec::new(), false, |iommu| {
        iommu.map_area(Area::Used, VHOST_ACCESS_RW)?;
        rig.attach()?;
        iommu.invalidate_area(Area::Used)?;
        ring.queue.no_interrupts();
        ring.post_all()?;
        for i in 0..FRAMES {
            let f = frame(i, size(i));
            inject(&rig.sniffer, &f)?;
            let (bufs, got) = ring
                .next_packet(false)
                .with_context(|| format!("frame {i} did not land; {}", iommu.recent()))?;
            ensure!(
                got.len() == f.len() + NET_HDR_LEN && got[NET_HDR_LEN..] == f[..],
                "frame {i}: {} bytes used, expected {} intact",
                got.len(),
                f.len() + NET_HDR_LEN
            );
            ring.repost(&bufs)?;
        }
        let misses = iommu.misses();
        let areas = check_misses(&misses, VHOST_ACCESS_WO, &Area::ALL)?;
        println!(
            "iotlb: rx-misses: ok ({FRAMES} frames of 60..1514 B landed in order, intact; \
             {} misses, RO on desc/avail, WO on used/buffers: {areas})",
            misses.len()
        );
        Ok(iommu.answered())
    })
}

/// Maps the rings as the device needs them, before it looks: the
/// descriptor table and avail ring read-only, the used ring `used`.
fn map_rings(iommu: &Iommu, used: u8) -> Result<()> {
    iommu.map_area(Area::Desc, VHOST_ACCESS_RO)?;
    iommu.map_area(Area::Avail, VHOST_ACCESS_RO)?;
    iommu.map_area(Area::Used, used)
}

/// Misses in `area` from `misses[from..]`.
fn misses_in(iommu: &Iommu, from: usize, area: Area) -> Vec<u64> {
    iommu.misses()[from..]
        .iter()
        .filter(|m| Area::of(m.iova) == Some(area))
        .map(|m| m.iova)
        .collect()
}

/// A TX buffer mapped write-only is not sent: the chain stays, the error
/// eventfd is signalled, no miss (it is mapped); mapped readable, a kick
/// sends it.
fn tx_permission(device: &str) -> Result<u64> {
    let rig = Rig::new(device, TX)?;
    let mut tx = TxDriver::new(&rig.mem, LAYOUT, &rig.fds.kick, true, false);
    let mut arrivals = Arrivals::new(&rig.sniffer);
    let expected = |n| frame(n, 100);
    let rules = vec![(Area::Buffers, Some(VHOST_ACCESS_WO))];
    Iommu::serve(&rig.dev, &rig.mem, rules, false, |iommu| {
        map_rings(iommu, VHOST_ACCESS_RW)?;
        iommu.map(LAYOUT.buf(0) & !(PAGE - 1), PAGE, VHOST_ACCESS_WO)?;
        rig.attach()?;
        let _ = rig.err_signalled();
        tx.send(&[0u8; NET_HDR_LEN], &expected(0))?;
        rig.fds.kick.write(1)?;
        std::thread::sleep(STALL);
        ensure!(
            arrivals.take(false, expected)? == 0,
            "a frame whose buffer is mapped write-only was sent"
        );
        ensure!(
            tx.queue.used_idx() == 0,
            "used index {} with the only buffer mapped write-only, expected 0",
            tx.queue.used_idx()
        );
        ensure!(
            rig.err_signalled(),
            "the error eventfd was not signalled for a buffer mapped write-only"
        );
        let buffer_misses = misses_in(iommu, 0, Area::Buffers);
        ensure!(
            buffer_misses.is_empty(),
            "misses at {buffer_misses:x?}: the buffer was mapped (write-only), not missing"
        );
        iommu.set_rules(vec![(Area::Buffers, Some(VHOST_ACCESS_RO))]);
        iommu.invalidate_area(Area::Buffers)?;
        iommu.map(LAYOUT.buf(0) & !(PAGE - 1), PAGE, VHOST_ACCESS_RO)?;
        rig.fds.kick.write(1)?;
        arrivals
            .wait_for(1, expected)
            .context("the frame after its buffer was mapped read-only and a kick")?;
        wait_used(&tx.queue, 1, iommu)?;
        std::thread::sleep(Duration::from_millis(200));
        ensure!(
            arrivals.take(false, expected)? == 0,
            "the frame arrived twice"
        );
        println!(
            "iotlb: tx-permission: ok (buffer mapped WO: not sent, not used, error eventfd \
             signalled, no miss; INVALIDATE + UPDATE RO and a kick: sent once, used)"
        );
        Ok(iommu.answered())
    })
}

/// An RX buffer mapped read-only is not written: nothing used, the error
/// eventfd signalled, no miss; mapped writable, frames land again.
fn rx_permission(device: &str) -> Result<u64> {
    const CANARY: u8 = 0x5a;
    let rig = Rig::new(device, RX)?;
    let mut ring = RxRing::new(&rig.mem, LAYOUT, &rig.fds.kick, true, RX_BUF);
    let rules = vec![(Area::Buffers, Some(VHOST_ACCESS_RO))];
    Iommu::serve(&rig.dev, &rig.mem, rules, false, |iommu| {
        map_rings(iommu, VHOST_ACCESS_RW)?;
        iommu.map_area(Area::Buffers, VHOST_ACCESS_RO)?;
        rig.attach()?;
        rig.mem.write(LAYOUT.buf(0), &[CANARY; RX_BUF as usize]);
        ring.queue.no_interrupts();
        ring.post_all()?;
        std::thread::sleep(Duration::from_millis(50));
        let _ = rig.err_signalled();
        let (first, second) = (frame(0, 200), frame(1, 300));
        inject(&rig.sniffer, &first)?;
        std::thread::sleep(STALL);
        ensure!(
            ring.queue.used_idx() == 0,
            "used index {} with every buffer mapped read-only, expected 0",
            ring.queue.used_idx()
        );
        ensure!(
            rig.mem.read(LAYOUT.buf(0), RX_BUF as usize) == [CANARY; RX_BUF as usize],
            "a buffer mapped read-only was written"
        );
        ensure!(
            rig.err_signalled(),
            "the error eventfd was not signalled for buffers mapped read-only"
        );
        let buffer_misses = misses_in(iommu, 0, Area::Buffers);
        ensure!(
            buffer_misses.is_empty(),
            "misses at {buffer_misses:x?}: the buffers were mapped (read-only), not missing"
        );
        iommu.set_rules(Vec::new());
        iommu.invalidate_area(Area::Buffers)?;
        iommu.map_area(Area::Buffers, VHOST_ACCESS_RW)?;
        inject(&rig.sniffer, &second)?;
        // Upstream stops polling the tap when a chain fails until the next
        // kick: a guest posting buffers would give one.
        rig.fds.kick.write(1)?;
        let mut landed = Vec::new();
        loop {
            let (bufs, got) = ring
                .next_packet(false)
                .with_context(|| format!("no frame landed after the remap; {}", iommu.recent()))?;
            let which = [&first, &second]
                .iter()
                .position(|f| got.len() == f.len() + NET_HDR_LEN && got[NET_HDR_LEN..] == f[..])
                .with_context(|| format!("{} bytes landed: neither frame, intact", got.len()))?;
            ensure!(
                landed.last().is_none_or(|&last| last < which),
                "the frames landed out of order"
            );
            landed.push(which);
            ring.repost(&bufs)?;
            if which == 1 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        ensure!(
            ring.queue.used_idx() == landed.len() as u16,
            "used index {}, {} frames landed",
            ring.queue.used_idx(),
            landed.len()
        );
        println!(
            "iotlb: rx-permission: ok (buffers mapped RO: nothing used or written, error \
             eventfd signalled, no miss; INVALIDATE + UPDATE RW: {})",
            if landed.len() == 2 {
                "the held frame landed, then the next"
            } else {
                "the next frame landed (the held one dropped)"
            }
        );
        Ok(iommu.answered())
    })
}

/// A used ring mapped read-only stops the queue with no miss; mapped
/// read-write, a kick completes the chain, sent once.
fn ring_permission(device: &str) -> Result<u64> {
    let rig = Rig::new(device, TX)?;
    let mut tx = TxDriver::new(&rig.mem, LAYOUT, &rig.fds.kick, true, false);
    let mut arrivals = Arrivals::new(&rig.sniffer);
    let expected = |n| frame(n, 100);
    let rules = vec![(Area::Used, Some(VHOST_ACCESS_RO))];
    Iommu::serve(&rig.dev, &rig.mem, rules, false, |iommu| {
        map_rings(iommu, VHOST_ACCESS_RO)?;
        rig.attach()?;
        tx.send(&[0u8; NET_HDR_LEN], &expected(0))?;
        rig.fds.kick.write(1)?;
        std::thread::sleep(STALL);
        ensure!(
            tx.queue.used_idx() == 0,
            "used index {} with the used ring mapped read-only, expected 0",
            tx.queue.used_idx()
        );
        let used_misses = misses_in(iommu, 0, Area::Used);
        ensure!(
            used_misses.is_empty(),
            "misses at {used_misses:x?}: the used ring was mapped (read-only), not missing"
        );
        iommu.set_rules(Vec::new());
        iommu.invalidate_area(Area::Used)?;
        iommu.map_area(Area::Used, VHOST_ACCESS_RW)?;
        rig.fds.kick.write(1)?;
        wait_used(&tx.queue, 1, iommu).context("after the used ring was mapped RW and a kick")?;
        arrivals.wait_for(1, expected)?;
        std::thread::sleep(Duration::from_millis(200));
        ensure!(
            arrivals.take(false, expected)? == 0,
            "the frame arrived twice"
        );
        println!(
            "iotlb: ring-permission: ok (used ring mapped RO: nothing used, no miss; \
             INVALIDATE + UPDATE RW and a kick: used, sent once)"
        );
        Ok(iommu.answered())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_at_upstream_offsets() {
        let msg = Msg::update(0x1234_5678, 0x1000, 0x7f00_0000_0000, VHOST_ACCESS_WO);
        let bytes = msg.bytes();
        assert_eq!(Msg::parse(&bytes), msg);
        assert_eq!(&bytes[..4], &2u32.to_ne_bytes());
        assert_eq!(&bytes[8..16], &0x1234_5678u64.to_ne_bytes());
        assert_eq!(bytes[32], VHOST_ACCESS_WO);
        assert_eq!(bytes[33], VHOST_IOTLB_UPDATE);
    }

    #[test]
    fn areas_cover_the_layout_and_buffers_stay_in_a_page() {
        assert_eq!(Area::of(LAYOUT.desc), Some(Area::Desc));
        assert_eq!(Area::of(LAYOUT.used_idx()), Some(Area::Used));
        assert_eq!(Area::of(LAYOUT.avail_event()), Some(Area::Used));
        assert_eq!(Area::of(LAYOUT.used_event()), Some(Area::Avail));
        assert_eq!(Area::of(LAYOUT.buf(255) + 1500), Some(Area::Buffers));
        assert_eq!(Area::of(LAYOUT.indirect), None);
        for slot in 0..QUEUE_SIZE {
            let start = LAYOUT.buf(slot);
            assert_ne!(start % PAGE, 0);
            assert_eq!(start / PAGE, (start + u64::from(RX_BUF) - 1) / PAGE);
        }
        assert!(LAYOUT.buf(QUEUE_SIZE) <= MEM_SIZE as u64);
    }
}
