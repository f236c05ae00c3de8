//! rvhost's per-queue statistics ioctl (`rust/rvhost_uapi.h`).

use anyhow::{ensure, Result};
use std::fs::File;

pub use nettest::{VringStats, RVHOST_GET_VRING_STATS};

/// The device's counters for `queue`; `None` where the device has no such
/// ioctl (upstream vhost-net answers ENOTTY).
pub fn read(dev: &File, queue: u32) -> Option<VringStats> {
    nettest::vring_stats(dev, queue)
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
