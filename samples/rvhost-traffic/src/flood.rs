//! A hostile guest under a flood: the tap is flooded with full-size frames
//! while the guest's RX buffers are ones no packet ever fits (or cost
//! thousands of descriptor reads each). The device must stay responsive:
//! every ioctl answers promptly during the flood, and `close` returns.

use crate::guest::Layout;
use crate::rig::{Setup, TxRig, RX};
use crate::rx::{try_inject, RxRing};
use crate::{frame, stats, Backend, QUEUE_SIZE};
use anyhow::{ensure, Result};
use nettest::features::{VIRTIO_NET_F_MRG_RXBUF, VIRTIO_RING_F_INDIRECT_DESC};
use nettest::set_file;
use rvhost_logic::split_ring::{
    Desc, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use vhost::vhost_kern::vhost_binding::VHOST_SET_VRING_CALL;

/// What the guest posts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FloodRing {
    /// Mergeable buffers of 16 bytes: 64 chains hold 1024 bytes, no
    /// full-size frame fits, every frame is dropped after walking them.
    MergeableTiny,
    /// Every chain an indirect table of 8192 zero-length descriptors (the
    /// last one 16 bytes): each placement costs thousands of reads.
    IndirectHuge,
}

/// Entries of the indirect table of [`FloodRing::IndirectHuge`].
const HUGE_TABLE: u64 = 8192;
/// Where that table lives (the last MiB of guest memory is unused otherwise).
const TABLE_GPA: u64 = Layout::nth(3).desc;

/// Floods the tap for `seconds` while timing an ioctl every 20 ms, then
/// closes the device during the flood. Fails if an ioctl or the close took
/// longer than `max_ms`.
pub fn run(device: &str, ring: FloodRing, seconds: u64, max_ms: u64) -> Result<()> {
    let extra = match ring {
        FloodRing::MergeableTiny => VIRTIO_NET_F_MRG_RXBUF,
        FloodRing::IndirectHuge => VIRTIO_NET_F_MRG_RXBUF | VIRTIO_RING_F_INDIRECT_DESC,
    };
    let TxRig {
        dev,
        mem,
        kick,
        call,
        tap: _tap,
        sniffer,
        ..
    } = TxRig::with(device, RX, Setup::new(false, extra, Backend::Tap))?;
    let mut rx = RxRing::new(&mem, crate::L0, &kick, false, 16);
    rx.post_all()?;
    if ring == FloodRing::IndirectHuge {
        for i in 0..HUGE_TABLE {
            let last = i + 1 == HUGE_TABLE;
            let d = Desc {
                addr: crate::L0.buf(0),
                len: if last { 16 } else { 0 },
                flags: VRING_DESC_F_WRITE | if last { 0 } else { VRING_DESC_F_NEXT },
                next: (i + 1) as u16,
            };
            mem.write(TABLE_GPA + 16 * i, &d.to_le_bytes());
        }
        for slot in 0..QUEUE_SIZE {
            rx.queue.write_desc(
                slot,
                Desc {
                    addr: TABLE_GPA,
                    len: (16 * HUGE_TABLE) as u32,
                    flags: VRING_DESC_F_INDIRECT,
                    next: 0,
                },
            );
        }
    }
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let (latencies, close_ms) = std::thread::scope(|s| -> Result<(Vec<f64>, f64)> {
        let sniffer = &sniffer;
        let (stop, sent) = (&stop, &sent);
        s.spawn(move || {
            let f = frame(0, 1500);
            while !stop.load(Ordering::Relaxed) {
                if try_inject(sniffer, &f) {
                    sent.fetch_add(1, Ordering::Relaxed);
                } else {
                    std::thread::yield_now();
                }
            }
        });
        let mut latencies = Vec::new();
        let end = Instant::now() + Duration::from_secs(seconds);
        let result = (|| {
            while Instant::now() < end {
                // An ioctl that takes the device's lock (and upstream's ring lock).
                let t = Instant::now();
                set_file(&dev, VHOST_SET_VRING_CALL(), RX, call.as_raw_fd())?;
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok::<_, anyhow::Error>(())
        })();
        let device_stats = stats::read(&dev, RX);
        println!("  {}", stats::describe(device_stats, 0));
        // The last close of the device, with the flood still on.
        let t = Instant::now();
        drop(dev);
        let close_ms = t.elapsed().as_secs_f64() * 1e3;
        stop.store(true, Ordering::Relaxed);
        result?;
        Ok((latencies, close_ms))
    })?;
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let max = sorted.last().copied().unwrap_or(0.0);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    println!(
        "{device}: flood ({ring:?}) {seconds} s, {} frames sent into the tap: {} ioctls answered, \
         median {median:.1} ms, max {max:.1} ms; close took {close_ms:.1} ms",
        sent.load(Ordering::Relaxed),
        latencies.len()
    );
    ensure!(
        max <= max_ms as f64 && close_ms <= max_ms as f64,
        "the device did not stay responsive (limit {max_ms} ms)"
    );
    ensure!(
        latencies.len() as u64 >= seconds * 2,
        "only {} ioctls in {seconds} s",
        latencies.len()
    );
    Ok(())
}
