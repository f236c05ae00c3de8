//! CPU time, the efficiency figure that survives TCG's timing noise far
//! better than packets per second: the device's worker thread (a thread of
//! this process, `rvhost-<pid>` or `vhost-<pid>`, created by SET_OWNER) from
//! its scheduler statistics, and the calling thread's own.

use anyhow::{Context as _, Result};

/// The worker thread of the device this process owns.
pub fn worker_tid() -> Result<i32> {
    for entry in std::fs::read_dir("/proc/self/task")? {
        let entry = entry?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.starts_with("rvhost-") || comm.starts_with("vhost-") {
            return Ok(entry.file_name().to_string_lossy().parse()?);
        }
    }
    anyhow::bail!("no worker thread (rvhost-*/vhost-*) in this process")
}

/// Nanoseconds thread `tid` of this process has run (its schedstat's first
/// field: needs CONFIG_SCHED_INFO, which the test kernel's SCHEDSTATS selects).
pub fn thread_ns(tid: i32) -> Result<u64> {
    let path = format!("/proc/self/task/{tid}/schedstat");
    let text = std::fs::read_to_string(&path).with_context(|| path.clone())?;
    text.split_whitespace()
        .next()
        .context("empty schedstat")?
        .parse()
        .with_context(|| path.clone())
}

/// Nanoseconds the calling thread has run.
pub fn own_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU times at one moment of a run.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot {
    pub worker_ns: u64,
    pub own_ns: u64,
    pub at: std::time::Instant,
}

impl Snapshot {
    pub fn take(worker: i32) -> Result<Self> {
        Ok(Self {
            worker_ns: thread_ns(worker)?,
            own_ns: own_ns(),
            at: std::time::Instant::now(),
        })
    }
}

/// What a measured window cost, per packet.
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    pub seconds: f64,
    pub worker_ns_per_packet: f64,
    pub driver_ns_per_packet: f64,
}

impl Cost {
    pub fn between(start: Snapshot, end: Snapshot, packets: u32) -> Self {
        let packets = f64::from(packets.max(1));
        Self {
            seconds: end.at.duration_since(start.at).as_secs_f64(),
            worker_ns_per_packet: end.worker_ns.saturating_sub(start.worker_ns) as f64 / packets,
            driver_ns_per_packet: end.own_ns.saturating_sub(start.own_ns) as f64 / packets,
        }
    }
}
