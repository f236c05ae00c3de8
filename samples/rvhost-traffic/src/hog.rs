//! Sustained TX with a CPU hog beside the worker: the device's worker runs
//! on CPU 1 (it inherits the affinity of the thread that calls SET_OWNER),
//! a busy thread is pinned there too, and the driver keeps the ring full
//! from CPU 0. A worker that never yields starves the hog (and, on a
//! PREEMPT_NONE kernel, trips the soft-lockup and RCU-stall detectors); one
//! that yields between rounds shares the CPU.

use crate::rig::{Setup, TxRig, TX};
use crate::tx::TxDriver;
use crate::{frame, stats, Backend, L0, NET_HDR_LEN};
use anyhow::{ensure, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET adds one CPU.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (checked by the caller's CPU count).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: sets the calling thread's affinity from a valid set.
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    nettest::check(ret, "sched_setaffinity")
}

/// Runs the test for `seconds`; fails if the hog was starved for more than
/// `max_gap_ms` at a time.
pub fn run(device: &str, seconds: u64, max_gap_ms: u64) -> Result<()> {
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    ensure!(cpus >= 2, "needs two CPUs, found {cpus}");
    // The worker is created by SET_OWNER as a thread of the caller, with its affinity.
    pin(1)?;
    let rig = TxRig::with(device, TX, Setup::new(true, 0, Backend::Tap))?;
    pin(0)?;
    let stop = AtomicBool::new(false);
    let max_gap_ns = AtomicU64::new(0);
    let last_ran_ns = AtomicU64::new(0);
    let spins = AtomicU64::new(0);
    // Gaps are measured from here: a hog that never gets the CPU at all
    // shows as one long gap.
    let started = Instant::now();
    let mut sent = 0u32;
    std::thread::scope(|s| -> Result<()> {
        let (stop, max_gap_ns, last_ran_ns, spins) = (&stop, &max_gap_ns, &last_ran_ns, &spins);
        s.spawn(move || {
            if pin(1).is_err() {
                return;
            }
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) {
                let now = started.elapsed().as_nanos() as u64;
                max_gap_ns.fetch_max(now.saturating_sub(last), Ordering::Relaxed);
                last_ran_ns.store(now, Ordering::Relaxed);
                spins.fetch_add(1, Ordering::Relaxed);
                last = now;
            }
        });
        // The frames are not read on the tap's side: the driver does nothing
        // but keep the ring full, so the worker never runs out of work.
        let mut tx = TxDriver::new(&rig.mem, L0, &rig.kick, true, false);
        let end = Instant::now() + Duration::from_secs(seconds);
        let result = (|| {
            while Instant::now() < end {
                tx.wait_room(Duration::from_secs(10), || {
                    format!("device stopped consuming after {sent} frames")
                })?;
                // Keep the ring full: post while there is room.
                while tx.queue.in_flight() < crate::QUEUE_SIZE {
                    rig.mem
                        .write_u16(L0.used_event(), tx.queue.avail_idx().wrapping_sub(1));
                    tx.send(&[0u8; NET_HDR_LEN], &frame(sent, 64))?;
                    sent += 1;
                }
                std::thread::yield_now();
            }
            Ok(())
        })();
        // The time since the hog last ran counts too.
        let now = started.elapsed().as_nanos() as u64;
        let since = now.saturating_sub(last_ran_ns.load(Ordering::Relaxed));
        max_gap_ns.fetch_max(since, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        result
    })?;
    let gap_ms = max_gap_ns.load(Ordering::Relaxed) as f64 / 1e6;
    println!(
        "{device}: {seconds} s of TX with a CPU hog beside the worker: {sent} frames posted; \
         the hog ran {} loops, longest wait for the CPU {gap_ms:.1} ms",
        spins.load(Ordering::Relaxed)
    );
    println!("  {}", stats::describe(stats::read(&rig.dev, TX), sent));
    ensure!(sent > 1000, "too little traffic to keep the worker busy");
    ensure!(
        gap_ms <= max_gap_ms as f64,
        "the hog beside the worker was starved for {gap_ms:.0} ms (limit {max_gap_ms} ms): the worker does not yield"
    );
    Ok(())
}
