//! CPU time per packet over a measured window: the device's worker thread
//! and the calling thread (`nettest::thread_cpu` reads them).

use anyhow::Result;

use nettest::thread_cpu::{own_ns, thread_ns, thread_sleeps, threads, worker_names};

/// The worker threads of the devices this process owns.
pub fn worker_tids() -> Result<Vec<i32>> {
    let names = worker_names();
    let tids: Vec<i32> = threads()?
        .into_iter()
        .filter(|(_, comm)| names.iter().any(|name| comm == name))
        .map(|(tid, _)| tid)
        .collect();
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
