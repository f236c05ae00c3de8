//! CPU time, the efficiency figure that survives TCG's timing noise far
//! better than packets per second: the device's worker thread (a thread of
//! this process, `rvhost-<pid>` or `vhost-<pid>`, created by SET_OWNER) from
//! its scheduler statistics, and the calling thread's own.

use anyhow::{Context as _, Result};

/// The worker threads of the devices this process owns: `rvhost-<pid>` /
/// `vhost-<pid>`, named after the owner (the process's own name,
/// `rvhost-traffic`, must not match).
pub fn worker_tids() -> Result<Vec<i32>> {
    let pid = std::process::id();
    let names = [format!("rvhost-{pid}"), format!("vhost-{pid}")];
    let mut tids = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task")? {
        let entry = entry?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if names.iter().any(|name| comm.trim_end() == name) {
            tids.push(entry.file_name().to_string_lossy().parse()?);
        }
    }
    anyhow::ensure!(
        !tids.is_empty(),
        "no worker thread ({}/{}) in this process",
        names[0],
        names[1]
    );
    Ok(tids)
}

/// The worker thread of the one device this process owns.
pub fn worker_tid() -> Result<i32> {
    let tids = worker_tids()?;
    anyhow::ensure!(
        tids.len() == 1,
        "{} worker threads, expected one",
        tids.len()
    );
    Ok(tids[0])
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

/// How many times thread `tid` of this process went to sleep (its
/// `voluntary_ctxt_switches`): a worker that busy-polls sleeps less.
pub fn thread_sleeps(tid: i32) -> Result<u64> {
    let path = format!("/proc/self/task/{tid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| path.clone())?;
    text.lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .context("no voluntary_ctxt_switches")?
        .trim()
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
    pub worker_sleeps: u64,
    pub own_ns: u64,
    pub at: std::time::Instant,
}

impl Snapshot {
    pub fn take(worker: i32) -> Result<Self> {
        Ok(Self {
            worker_ns: thread_ns(worker)?,
            worker_sleeps: thread_sleeps(worker)?,
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
    pub worker_sleeps_per_packet: f64,
}

impl Cost {
    pub fn between(start: Snapshot, end: Snapshot, packets: u32) -> Self {
        let packets = f64::from(packets.max(1));
        Self {
            seconds: end.at.duration_since(start.at).as_secs_f64(),
            worker_ns_per_packet: end.worker_ns.saturating_sub(start.worker_ns) as f64 / packets,
            driver_ns_per_packet: end.own_ns.saturating_sub(start.own_ns) as f64 / packets,
            worker_sleeps_per_packet: end.worker_sleeps.saturating_sub(start.worker_sleeps) as f64
                / packets,
        }
    }
}
