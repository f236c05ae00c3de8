//! rvhost's per-queue statistics ioctl (`rust/rvhost_uapi.h`).

use anyhow::{ensure, Result};
use std::fs::File;
use vmm_sys_util::ioctl::ioctl_with_mut_ref;
use vmm_sys_util::ioctl_iowr_nr;

/// `struct rvhost_vring_stats`.
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

ioctl_iowr_nr!(RVHOST_GET_VRING_STATS, b'r' as u32, 0x01, VringStats);

/// The device's counters for `queue`; `None` where the device has no such
/// ioctl (upstream vhost-net answers ENOTTY).
pub fn read(dev: &File, queue: u32) -> Option<VringStats> {
    let mut stats = VringStats {
        index: queue,
        ..Default::default()
    };
    // SAFETY: the request reads and writes one rvhost_vring_stats.
    let ret = unsafe { ioctl_with_mut_ref(dev, RVHOST_GET_VRING_STATS(), &mut stats) };
    (ret == 0).then_some(stats)
}

/// One line for humans.
pub fn describe(stats: Option<VringStats>, frames: u32) -> String {
    match stats {
        None => "device stats: n/a".into(),
        Some(s) => format!(
            "device stats: kicks {} ({:.3}/pkt), interrupts {} ({:.3}/pkt), suppressed {}, packets {}, rounds {}, drops {}, errors {}",
            s.kicks,
            s.kicks as f64 / f64::from(frames.max(1)),
            s.calls,
            s.calls as f64 / f64::from(frames.max(1)),
            s.calls_suppressed,
            s.packets,
            s.rounds,
            s.drops,
            s.errors
        ),
    }
}

/// Checks the device's counters (where it has them) against what the test
/// did: `packets` moved, `kicks` made (if counted), no drops or errors.
pub fn verify(stats: Option<VringStats>, packets: u32, kicks: Option<u32>) -> Result<()> {
    let Some(st) = stats else { return Ok(()) };
    ensure!(
        st.packets == u64::from(packets),
        "device counted {} packets, {packets} moved",
        st.packets
    );
    if let Some(kicks) = kicks {
        ensure!(
            st.kicks == u64::from(kicks),
            "device counted {} kicks, {kicks} made",
            st.kicks
        );
    }
    ensure!(
        st.errors == 0 && st.drops == 0,
        "device counted errors or drops: {st:?}"
    );
    Ok(())
}
