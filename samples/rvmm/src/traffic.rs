//! The network around a run: a tap in a network namespace of rvmm's own
//! with a packet socket on it, test frames fed into the tap for RX runs,
//! and what arrived on it checked after TX runs.

use anyhow::Result;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// Most frames fed ahead of what the guest has received, so that nothing
/// overflows the tap's queue while the guest catches up.
const FEED_AHEAD: u16 = 128;

/// Moves rvmm into a network namespace of its own and creates the NIC's tap
/// there, with a packet socket on it that sees what the guest sends.
/// Called before any thread is started (unshare needs a single thread).
pub fn tap_in_own_netns() -> Result<(OwnedFd, OwnedFd)> {
    // SAFETY: plain unshare(2) of this (still single-threaded) process.
    let ret = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    nettest::check(ret, "unshare(CLONE_NEWNET)")?;
    nettest::backend_and_sniffer(nettest::Backend::Tap, None)
}

/// Sends `frames` test frames into the tap from a thread, once the guest's
/// receive path is up (`received` answers), keeping at most [`FEED_AHEAD`]
/// ahead of what the guest has received (`received`, a wrapping count).
pub fn feed_tap(
    sniffer: OwnedFd,
    received: impl Fn() -> Option<u16> + Send + 'static,
    frames: u32,
    size: usize,
) {
    std::thread::spawn(move || {
        while received().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        for i in 0..frames {
            while (i as u16).wrapping_sub(received().unwrap_or(0)) >= FEED_AHEAD {
                std::thread::yield_now();
            }
            let f = nettest::frame(i, size);
            // SAFETY: sends our buffer on the packet socket bound to the tap.
            unsafe { libc::send(sniffer.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
        }
    });
}

/// Reads what arrived on the tap: `frames` test frames, in order, intact.
pub fn verify_frames(sniffer: &OwnedFd, frames: u32, size: usize) -> Result<u32> {
    let mut buf = vec![0u8; 4096];
    for i in 0..frames {
        // SAFETY: receives into our buffer (the socket has a receive timeout).
        let n = unsafe { libc::recv(sniffer.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        anyhow::ensure!(n >= 0, "only {i} of {frames} frames arrived on the tap");
        anyhow::ensure!(
            buf[..n as usize] == nettest::frame(i, size)[..],
            "frame {i} differs from what the guest sent"
        );
    }
    Ok(frames)
}
