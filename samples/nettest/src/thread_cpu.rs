//! CPU time of this process's threads from their scheduler statistics: the
//! efficiency figure that survives TCG's timing noise far better than
//! packets per second. A vhost device's worker is a thread of its owner
//! (`rvhost-<pid>` or `vhost-<pid>`, created by `VHOST_SET_OWNER`), so the
//! owner can read the worker's figures like its own threads'.

use anyhow::{Context as _, Result};

/// The threads of this process as (thread id, name) pairs.
pub fn threads() -> Result<Vec<(i32, String)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task")? {
        let entry = entry?;
        // A thread may end between the listing and the read: skip it.
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        out.push((
            entry.file_name().to_string_lossy().parse()?,
            comm.trim_end().to_string(),
        ));
    }
    Ok(out)
}

/// The names the vhost devices give the worker of a device this process
/// owns (the process's own name must not match them).
pub fn worker_names() -> [String; 2] {
    let pid = std::process::id();
    [format!("rvhost-{pid}"), format!("vhost-{pid}")]
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
