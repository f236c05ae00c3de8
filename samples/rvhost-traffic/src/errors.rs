//! Error paths: a request that fails must leave the device as it was (or
//! fully in the new state), and a worker under pressure must not stall.
//! Faults are made for real: a used ring made read-only with `mprotect`,
//! allocations failed with the kernel's fault injection (failslab, limited
//! to a call stack through named rvhost functions and, where it matters, to
//! one task), a backend socket held full by a `plug` qdisc.

use crate::guest::Layout;
use crate::rig::{set_ring_addr, Setup, TxRig, RX, TX};
use crate::rx::{inject, RxRing};
use crate::stats::VringStats;
use crate::tx::{Arrivals, TxDriver};
use crate::{frame, Backend, L0, NET_HDR_LEN};
use anyhow::{bail, ensure, Context as _, Result};
use nettest::features::VIRTIO_NET_F_MRG_RXBUF;
use nettest::{backend_and_sniffer, check, set_file};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};
use vhost::vhost_kern::vhost_binding::{
    VHOST_GET_VRING_BASE, VHOST_NET_SET_BACKEND, VHOST_SET_VRING_KICK,
};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::ioctl::ioctl_with_mut_ref;

/// Runs every case that applies to `device`; rvhost-only cases are skipped
/// for another device.
pub fn run(device: &str) -> Result<()> {
    let rvhost = device.contains("rvhost");
    type Case = (&'static str, bool, fn(&str) -> Result<()>);
    let cases: &[Case] = &[
        (
            "backend swap refused with EFAULT keeps the old backend polled",
            false,
            swap_refused_keeps_backend,
        ),
        (
            "TX waiting for room in a full socket resumes, with no allocation to fail",
            false,
            tx_full_socket_resumes,
        ),
        (
            "kick and backend changes failing with ENOMEM keep the old ones",
            true,
            enomem_keeps_old_files,
        ),
        (
            "a used ring write failing mid-packet leaves the indexes consistent",
            true,
            used_write_fault_consistent,
        ),
        (
            "the statistics ioctl refuses non-zero padding",
            true,
            stats_padding_refused,
        ),
        (
            "the coalescing ioctl refuses bad settings and keeps the old one",
            true,
            coalesce_ioctl_errnos,
        ),
        (
            "a coalesced RX interrupt is held until its timer, and not longer",
            true,
            coalesce_timer_delivers,
        ),
    ];
    let mut failed = 0;
    for (name, rvhost_only, case) in cases {
        if *rvhost_only && !rvhost {
            println!("{device}: error paths: {name}: n/a (rvhost only)");
            continue;
        }
        // Each case in a child process: its own network namespace and device.
        let result = in_child(|| case(device));
        match result {
            Ok(()) => println!("{device}: error paths: {name}: ok"),
            Err(e) => {
                failed += 1;
                println!("{device}: error paths: FAILED: {name}: {e:#}");
            }
        }
    }
    ensure!(failed == 0, "{failed} error-path cases failed");
    Ok(())
}

/// Runs `f` in a forked child and returns its result (the child's error
/// message comes back through a pipe).
fn in_child(f: impl FnOnce() -> Result<()>) -> Result<()> {
    let mut fds = [0; 2];
    // SAFETY: creates a pipe into `fds`.
    check(unsafe { libc::pipe(fds.as_mut_ptr()) }, "pipe")?;
    // SAFETY: the child only runs `f` and exits; we are single-threaded here.
    let pid = unsafe { libc::fork() };
    check(pid, "fork")?;
    if pid == 0 {
        // SAFETY: closes the read end in the child.
        unsafe { libc::close(fds[0]) };
        let code = match f() {
            Ok(()) => 0,
            Err(e) => {
                let msg = format!("{e:#}");
                // SAFETY: writes our message to the pipe.
                unsafe { libc::write(fds[1], msg.as_ptr().cast(), msg.len()) };
                1
            }
        };
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: closes the write end in the parent.
    unsafe { libc::close(fds[1]) };
    let mut msg = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        // SAFETY: reads into our buffer.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        msg.extend_from_slice(&buf[..n as usize]);
    }
    // SAFETY: closes the read end.
    unsafe { libc::close(fds[0]) };
    let mut status = 0;
    // SAFETY: waits for our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if msg.is_empty() {
        bail!("child ended with status {status:#x}")
    } else {
        bail!("{}", String::from_utf8_lossy(&msg))
    }
}

/// A vhost `{index, fd}` request; `Err(errno)` if it failed.
fn file_request(dev: &File, req: u64, index: u32, fd: i32) -> std::result::Result<(), i32> {
    let f = vhost::vhost_kern::vhost_binding::vhost_vring_file { index, fd };
    // SAFETY: the request reads one vhost_vring_file.
    let ret = unsafe { vmm_sys_util::ioctl::ioctl_with_ref(dev, req, &f) };
    if ret < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(-1))
    } else {
        Ok(())
    }
}

/// RX: the used ring is made read-only, so attaching another backend fails
/// in its ring-access step (`EFAULT`, upstream too); then the old backend
/// must still be polled: a frame injected into it lands without a kick.
fn swap_refused_keeps_backend(device: &str) -> Result<()> {
    let rig = TxRig::with(device, RX, Setup::new(false, 0, Backend::Tap))?;
    let mut ring = RxRing::new(&rig.mem, L0, &rig.kick, false, 2048);
    ring.post_all()?;
    inject(&rig.sniffer, &frame(0, 100))?;
    let (bufs, _) = ring.next_packet(false)?;
    ring.repost(&bufs)?;
    let (other, _other_sniffer) = backend_and_sniffer(Backend::Tap, None)?;
    rig.mem.protect(L0.used, 8, libc::PROT_READ)?;
    let refused = file_request(&rig.dev, VHOST_NET_SET_BACKEND(), RX, other.as_raw_fd());
    rig.mem
        .protect(L0.used, 8, libc::PROT_READ | libc::PROT_WRITE)?;
    ensure!(
        refused == Err(libc::EFAULT),
        "attaching with an unwritable used ring: {refused:?}, expected EFAULT"
    );
    inject(&rig.sniffer, &frame(1, 100))?;
    let (_, got) = ring
        .next_packet(false)
        .context("a frame on the old backend after the refused swap")?;
    ensure!(got[NET_HDR_LEN..] == frame(1, 100)[..], "wrong frame");
    Ok(())
}

/// Fault injection through debugfs `failslab`: slab allocations whose call
/// stack passes through `[start, end)` fail, for the tasks marked (or all).
struct FailSlab;

impl FailSlab {
    const DIR: &'static str = "/sys/kernel/debug/failslab";

    fn set(name: &str, value: &str) -> Result<()> {
        std::fs::write(Path::new(Self::DIR).join(name), value)
            .with_context(|| format!("{}/{name} = {value}", Self::DIR))
    }

    /// Fails every allocation through `range` by a marked task (`tids`) or,
    /// with no tids, by any task.
    fn arm(range: (u64, u64), tids: &[i32]) -> Result<Self> {
        if !Path::new(Self::DIR).exists() {
            let ret = std::process::Command::new("mount")
                .args(["-t", "debugfs", "none", "/sys/kernel/debug"])
                .status()?;
            ensure!(ret.success(), "mounting debugfs");
        }
        // Probability last: until the filters are in place, failing would
        // hit every allocation of every task.
        Self::set("probability", "0")?;
        for (name, value) in [
            ("interval", "1".to_string()),
            ("times", "-1".to_string()),
            ("space", "0".to_string()),
            ("verbose", "0".to_string()),
            ("ignore-gfp-wait", "N".to_string()),
            ("stacktrace-depth", "32".to_string()),
            ("require-start", range.0.to_string()),
            ("require-end", range.1.to_string()),
            (
                "task-filter",
                if tids.is_empty() { "N" } else { "Y" }.to_string(),
            ),
        ] {
            Self::set(name, &value)?;
        }
        for tid in tids {
            std::fs::write(format!("/proc/self/task/{tid}/make-it-fail"), "1")
                .with_context(|| format!("make-it-fail for task {tid}"))?;
        }
        Self::set("probability", "100")?;
        Ok(Self)
    }
}

impl Drop for FailSlab {
    fn drop(&mut self) {
        let _ = Self::set("probability", "0");
        let _ = Self::set("task-filter", "N");
        let _ = Self::set("require-start", "0");
        let _ = Self::set("require-end", "0");
    }
}

/// The address range of kernel symbol `name` (up to the next symbol).
fn symbol_range(name: &str) -> Result<Option<(u64, u64)>> {
    let text = std::fs::read_to_string("/proc/kallsyms")?;
    let mut addrs: Vec<u64> = Vec::new();
    let mut start = None;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(addr), Some(_), Some(sym)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let addr = u64::from_str_radix(addr, 16)?;
        addrs.push(addr);
        if sym == name {
            start = Some(addr);
        }
    }
    let Some(start) = start else { return Ok(None) };
    ensure!(start != 0, "/proc/kallsyms hides addresses (kptr_restrict)");
    let end = addrs
        .iter()
        .copied()
        .filter(|&a| a > start)
        .min()
        .unwrap_or(start + 4096);
    Ok(Some((start, end)))
}

/// The range of rvhost_net's code (every function of the module).
fn module_text() -> Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/kallsyms")?;
    let addrs: Vec<u64> = text
        .lines()
        .filter(|l| l.ends_with("[rvhost_net]"))
        .filter(|l| matches!(l.split_whitespace().nth(1), Some("t" | "T")))
        .filter_map(|l| u64::from_str_radix(l.split_whitespace().next()?, 16).ok())
        .collect();
    let (Some(&lo), Some(&hi)) = (addrs.iter().min(), addrs.iter().max()) else {
        bail!("no rvhost_net code in /proc/kallsyms");
    };
    Ok((lo, hi + 4096))
}

/// With every allocation in rvhost's code failing for this task: a new kick
/// eventfd (TX) and a new backend (RX) are refused with `ENOMEM`, and the
/// old kick and the old backend still work.
fn enomem_keeps_old_files(device: &str) -> Result<()> {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // TX: the kick.
    let rig = TxRig::with(device, TX, Setup::new(false, 0, Backend::Tap))?;
    let new_kick = EventFd::new(libc::EFD_NONBLOCK)?;
    let refused = {
        let _fail = FailSlab::arm(module_text()?, &[tid])?;
        file_request(&rig.dev, VHOST_SET_VRING_KICK(), TX, new_kick.as_raw_fd())
    };
    ensure!(
        refused == Err(libc::ENOMEM),
        "SET_VRING_KICK with allocations failing: {refused:?}, expected ENOMEM"
    );
    let mut tx = TxDriver::new(&rig.mem, L0, &rig.kick, false, false);
    tx.send(&[0u8; NET_HDR_LEN], &frame(0, 100))?;
    // The device asks for kicks while idle: the old eventfd was kicked.
    ensure!(tx.queue.kicks == 1, "the device did not ask for a kick");
    Arrivals::new(&rig.sniffer)
        .wait_for(1, |n| frame(n, 100))
        .context("a frame kicked through the old kick eventfd")?;
    drop(rig);
    // RX: the backend.
    let rig = TxRig::with(device, RX, Setup::new(false, 0, Backend::Tap))?;
    let mut ring = RxRing::new(&rig.mem, L0, &rig.kick, false, 2048);
    ring.post_all()?;
    let (other, _other_sniffer) = backend_and_sniffer(Backend::Tap, None)?;
    let refused = {
        let _fail = FailSlab::arm(module_text()?, &[tid])?;
        file_request(&rig.dev, VHOST_NET_SET_BACKEND(), RX, other.as_raw_fd())
    };
    ensure!(
        refused == Err(libc::ENOMEM),
        "SET_BACKEND with allocations failing: {refused:?}, expected ENOMEM"
    );
    inject(&rig.sniffer, &frame(1, 100))?;
    ring.next_packet(false)
        .context("a frame on the old backend after the refused swap")?;
    Ok(())
}

/// TX into a raw packet socket whose qdisc holds every packet (`plug`), with
/// a small send buffer: the device meets `EAGAIN`, waits for room without
/// consuming, and when the qdisc lets go, resumes and sends everything. Any
/// allocation of a socket poll fails meanwhile (where the device has such a
/// function): waiting for room must not need one.
fn tx_full_socket_resumes(device: &str) -> Result<()> {
    const FRAMES: u32 = 24;
    let rig = TxRig::with(device, TX, Setup::new(false, 0, Backend::Packet))?;
    let tc = |args: &[&str]| -> Result<()> {
        let status = std::process::Command::new("tc")
            .args(["qdisc"])
            .args(args)
            .status()
            .context("running tc (iproute2)")?;
        ensure!(status.success(), "tc qdisc {args:?} failed");
        Ok(())
    };
    tc(&["add", "dev", "rvv0", "root", "plug", "limit", "10000000"])?;
    let sndbuf: libc::c_int = 1;
    // SAFETY: SO_SNDBUF takes an int (the kernel raises it to its minimum).
    let ret = unsafe {
        libc::setsockopt(
            rig.tap.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&sndbuf as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    check(ret, "SO_SNDBUF")?;
    let worker = crate::cpu::worker_tids()?;
    let poll_alloc = match symbol_range("rvhost_poll_create")? {
        Some(range) => Some(range),
        None => symbol_range("rvhost_poll_new")?,
    };
    let fail = match (poll_alloc, device.contains("rvhost")) {
        (Some(range), true) => Some(FailSlab::arm(range, &worker)?),
        _ => None,
    };
    let mut tx = TxDriver::new(&rig.mem, L0, &rig.kick, false, false);
    for i in 0..FRAMES {
        tx.send(&[0u8; NET_HDR_LEN], &frame(i, 1000))?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let used = tx.queue.used_idx();
    ensure!(
        u32::from(used) < FRAMES,
        "the socket never filled ({used} frames sent with the qdisc plugged)"
    );
    tc(&[
        "change",
        "dev",
        "rvv0",
        "root",
        "plug",
        "release_indefinite",
    ])?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while u32::from(tx.queue.used_idx()) < FRAMES {
        ensure!(
            Instant::now() < deadline,
            "TX stopped at {} of {FRAMES} frames after the socket had room again (it waited at {used})",
            tx.queue.used_idx()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(fail);
    Arrivals::new(&rig.sniffer).wait_for(FRAMES, |n| frame(n, 1000))?;
    println!("  {device}: the device waited with {used} of {FRAMES} frames sent, then sent all");
    Ok(())
}

/// RX with mergeable buffers and a used ring placed so that its fourth
/// element lies on a read-only page: a packet whose second buffer's element
/// falls there cannot be completed. The device must publish only whole
/// packets and keep its avail position in step: after the fault, the used
/// index and `GET_VRING_BASE` agree (every avail entry consumed is used).
fn used_write_fault_consistent(device: &str) -> Result<()> {
    let rig = TxRig::with(
        device,
        RX,
        Setup::new(false, VIRTIO_NET_F_MRG_RXBUF, Backend::Tap),
    )?;
    // Elements 0..=2 on the page at 0x12000, element 3 on the next one.
    let layout = Layout {
        used: 0x1_3000 - 4 - 8 * 3,
        ..L0
    };
    set_file(&rig.dev, VHOST_NET_SET_BACKEND(), RX, -1)?;
    set_ring_addr(&rig.dev, &rig.mem, RX, layout)?;
    set_file(&rig.dev, VHOST_NET_SET_BACKEND(), RX, rig.tap.as_raw_fd())?;
    rig.mem.protect(0x1_3000, 0x1000, libc::PROT_READ)?;
    let mut ring = RxRing::new(&rig.mem, layout, &rig.kick, false, 512);
    ring.post_all()?;
    for i in 0..2 {
        inject(&rig.sniffer, &frame(i, 100))?;
        ring.next_packet(true)?;
    }
    // Two buffers: elements 2 (writable) and 3 (read-only).
    inject(&rig.sniffer, &frame(2, 700))?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while rig.err.read().is_err() {
        ensure!(
            Instant::now() < deadline,
            "the error eventfd was not signalled"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let used = ring.queue.used_idx();
    set_file(&rig.dev, VHOST_NET_SET_BACKEND(), RX, -1)?;
    let mut state = vhost::vhost_kern::vhost_binding::vhost_vring_state { index: RX, num: 0 };
    // SAFETY: reads and writes one vhost_vring_state.
    let ret = unsafe { ioctl_with_mut_ref(&rig.dev, VHOST_GET_VRING_BASE(), &mut state) };
    check(ret, "GET_VRING_BASE")?;
    rig.mem
        .protect(0x1_3000, 0x1000, libc::PROT_READ | libc::PROT_WRITE)?;
    ensure!(
        used == 2 && state.num == 2,
        "after the fault: used index {used}, GET_VRING_BASE {} (both must be 2: two whole packets)",
        state.num
    );
    Ok(())
}

/// `RVHOST_SET_VRING_COALESCE`: `EINVAL` for a hold past 1 s or an unknown
/// flag, `ENOBUFS` for a third queue, `EPERM` for a file that is not the
/// owner; a refused setting leaves the old one.
fn coalesce_ioctl_errnos(device: &str) -> Result<()> {
    use nettest::{set_vring_coalesce, vring_coalesce, VringCoalesce};
    let rig = TxRig::with(device, RX, Setup::new(true, 0, Backend::Tap))?;
    let good = VringCoalesce {
        index: RX,
        max_packets: 64,
        max_usecs: 50,
        flags: nettest::RVHOST_COALESCE_F_ADAPTIVE,
    };
    set_vring_coalesce(&rig.dev, good)?;
    let refused = [
        (
            VringCoalesce {
                max_usecs: 1_000_001,
                ..good
            },
            libc::EINVAL,
        ),
        (VringCoalesce { flags: 2, ..good }, libc::EINVAL),
        (VringCoalesce { index: 2, ..good }, libc::ENOBUFS),
    ];
    for (bad, errno) in refused {
        let got = set_vring_coalesce(&rig.dev, bad).map_err(|e| e.raw_os_error());
        ensure!(
            got == Err(Some(errno)),
            "{bad:?}: {got:?}, expected errno {errno}"
        );
    }
    let other = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)?;
    let got = set_vring_coalesce(&other, good).map_err(|e| e.raw_os_error());
    ensure!(got == Err(Some(libc::EPERM)), "not the owner: {got:?}");
    let kept = vring_coalesce(&rig.dev, RX)?;
    ensure!(
        kept == good,
        "after the refusals: {kept:?}, expected {good:?}"
    );
    let tx = vring_coalesce(&rig.dev, TX)?;
    ensure!(
        (tx.max_packets, tx.max_usecs, tx.flags) == (0, 0, 0),
        "TX changed: {tx:?}"
    );
    Ok(())
}

/// One frame received into a ring with buffers to spare, the guest asking
/// for an interrupt: with a 30 ms hold the interrupt comes no sooner than
/// 30 ms and well before 300 ms (a lost timer would never signal it); with
/// the hold turned off again the next one comes at once.
fn coalesce_timer_delivers(device: &str) -> Result<()> {
    const HOLD_US: u32 = 30_000;
    let rig = TxRig::with(device, RX, Setup::new(true, 0, Backend::Tap))?;
    let coalesce = |max_usecs| nettest::VringCoalesce {
        index: RX,
        max_packets: 64,
        max_usecs,
        flags: 0,
    };
    nettest::set_vring_coalesce(&rig.dev, coalesce(HOLD_US))?;
    let mut ring = RxRing::new(&rig.mem, L0, &rig.kick, true, 2048);
    ring.post_all()?;
    let _ = rig.call.read();
    let wait = |what: &str| -> Result<Duration> {
        let start = Instant::now();
        while rig.call.read().is_err() {
            ensure!(
                start.elapsed() < Duration::from_millis(300),
                "{what}: no interrupt within 300 ms"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(start.elapsed())
    };
    ring.queue.interrupt_on_next();
    inject(&rig.sniffer, &frame(0, 100))?;
    let held = wait("held")?;
    ring.next_packet(false)?;
    ensure!(
        held >= Duration::from_micros(HOLD_US.into()),
        "the held interrupt came after {held:?}, before its {HOLD_US} µs"
    );
    nettest::set_vring_coalesce(&rig.dev, coalesce(0))?;
    ring.queue.interrupt_on_next();
    inject(&rig.sniffer, &frame(1, 100))?;
    let direct = wait("not held")?;
    ensure!(
        direct < Duration::from_micros(HOLD_US.into()),
        "with coalescing off the interrupt took {direct:?}"
    );
    Ok(())
}

/// `RVHOST_GET_VRING_STATS` with non-zero padding: `EINVAL`.
fn stats_padding_refused(device: &str) -> Result<()> {
    let rig = TxRig::with(device, TX, Setup::new(false, 0, Backend::Tap))?;
    let mut req = VringStats {
        index: TX,
        padding: 1,
        ..Default::default()
    };
    // SAFETY: the request reads and writes one rvhost_vring_stats.
    let ret =
        unsafe { ioctl_with_mut_ref(&rig.dev, crate::stats::RVHOST_GET_VRING_STATS(), &mut req) };
    let errno = std::io::Error::last_os_error().raw_os_error();
    ensure!(
        ret < 0 && errno == Some(libc::EINVAL),
        "non-zero padding: {ret} ({errno:?}), expected EINVAL"
    );
    Ok(())
}
