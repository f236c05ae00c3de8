//! Frame sizes swept across buffer boundaries, one frame at a time, TX and
//! RX, with the virtio-net header where QEMU puts it by default (on the tap:
//! `IFF_VNET_HDR`, the device does not handle it) or where rvhost's other
//! tests put it (the device strips and writes it). On RX every frame whose
//! header and bytes fit what the guest can post must land whole, with the
//! right number of buffers; every other one must be dropped, and the frame
//! after it land.

use crate::rig::{Setup, TxRig, RX, TX};
use crate::rx::{inject, RxRing};
use crate::tx::{Arrivals, TxDriver};
use crate::{frame, stats, BUF_SIZE, L0};
use anyhow::{ensure, Context as _, Result};

/// Most chains a packet may span with mergeable buffers: rvhost's limit,
/// and upstream's (`UIO_MAXIOV`).
fn max_rx_chains(device: &str) -> usize {
    if device.contains("rvhost") {
        64
    } else {
        1024
    }
}

/// Frame sizes (Ethernet header included) from `FIRST..LAST[/STEP],...`.
pub fn sizes(spec: &str) -> Result<Vec<usize>> {
    let mut sizes = Vec::new();
    for part in spec.split(',') {
        let (range, step) = part.split_once('/').unwrap_or((part, "1"));
        let (a, b) = range
            .split_once("..")
            .context("sizes as FIRST..LAST[/STEP],...")?;
        let (a, b, step): (usize, usize, usize) = (a.parse()?, b.parse()?, step.parse()?);
        ensure!(a >= 14 && a <= b && step > 0, "bad sizes {part}");
        sizes.extend((a..=b).step_by(step));
    }
    Ok(sizes)
}

/// `first..last` of `sizes`, for reports.
fn span(sizes: &[usize]) -> String {
    format!(
        "{}..{} B ({} sizes)",
        sizes.iter().min().unwrap_or(&0),
        sizes.iter().max().unwrap_or(&0),
        sizes.len()
    )
}

/// RX: buffers of `buf_len` bytes (each chain one buffer; mergeable or not
/// as `setup` says), every size of `range` injected in turn.
pub fn rx(device: &str, setup: Setup, buf_len: u32, sizes: &[usize]) -> Result<()> {
    let hdr = setup.net_hdr_len();
    let mergeable = setup.mergeable();
    ensure!(
        u64::from(buf_len) <= BUF_SIZE && buf_len as usize > hdr,
        "bad buffer size"
    );
    let rig = TxRig::with(device, RX, setup)?;
    if setup.backend == crate::Backend::Tap {
        // Frames up to 64000 bytes can be sent into the tap.
        nettest::set_tap_mtu(&rig.tap, 64000)?;
    }
    let mut ring = RxRing::new(&rig.mem, L0, &rig.kick, setup.event_idx, buf_len);
    ring.queue.no_interrupts();
    ring.post_all()?;
    let room = if mergeable {
        buf_len as usize * max_rx_chains(device)
    } else {
        buf_len as usize
    };
    let (mut landed, mut dropped) = (0u32, 0u32);
    for (i, &size) in sizes.iter().enumerate() {
        let i = i as u32;
        let f = frame(i, size);
        inject(&rig.sniffer, &f)?;
        let fits = hdr + size <= room;
        if !fits {
            // Dropped: the next frame (which fits) is the one that lands.
            inject(&rig.sniffer, &frame(i, 60))?;
        }
        let (bufs, got) = ring
            .next_packet(mergeable)
            .with_context(|| format!("frame of {size} B (header {hdr} B, buffers {buf_len} B)"))?;
        let want = if fits { f } else { frame(i, 60) };
        let chains = if mergeable {
            (hdr + want.len()).div_ceil(buf_len as usize)
        } else {
            1
        };
        ensure!(
            got.len() == hdr + want.len() && got[hdr..] == want[..],
            "frame of {size} B: {} bytes landed, expected {} (header {hdr} B + {} B)",
            got.len(),
            hdr + want.len(),
            want.len()
        );
        ensure!(
            bufs.len() == chains,
            "frame of {size} B: {} buffers used, expected {chains}",
            bufs.len()
        );
        // Plain frames carry no offload information in their header.
        ensure!(
            got[..10].iter().all(|&b| b == 0),
            "frame of {size} B: header {:02x?}",
            &got[..hdr]
        );
        ring.repost(&bufs)?;
        if fits {
            landed += 1;
        } else {
            dropped += 1;
        }
    }
    let device_stats = stats::read(&rig.dev, RX);
    if let Some(st) = device_stats {
        ensure!(
            st.drops == u64::from(dropped) && st.errors == 0,
            "device counted {} drops and {} errors, {dropped} frames were too large",
            st.drops,
            st.errors
        );
    }
    println!(
        "{device}: RX sweep {}, header {hdr} B {}, buffers of {buf_len} B{}: \
         {landed} landed whole, {dropped} too large dropped",
        span(sizes),
        if setup.vnet_hdr.is_some() {
            "from the tap"
        } else {
            "by the device"
        },
        if mergeable { " (mergeable)" } else { "" },
    );
    Ok(())
}

/// TX: every size of `range` sent in turn; each must arrive whole.
pub fn tx(device: &str, setup: Setup, sizes: &[usize]) -> Result<()> {
    let hdr = setup.net_hdr_len();
    let rig = TxRig::with(device, TX, setup)?;
    let mut tx = TxDriver::new(&rig.mem, L0, &rig.kick, setup.event_idx, false);
    let mut arrivals = Arrivals::new(&rig.sniffer);
    let expected = |n: u32| frame(n, sizes[n as usize]);
    let header = vec![0u8; hdr];
    let mut count = 0u32;
    for (i, &size) in sizes.iter().enumerate() {
        tx.wait_room(std::time::Duration::from_secs(5), || {
            format!("device stopped consuming at {size} B")
        })?;
        tx.send(&header, &frame(i as u32, size))?;
        arrivals.take(false, expected)?;
        count += 1;
    }
    arrivals.wait_for(count, expected)?;
    stats::verify(stats::read(&rig.dev, TX), count, None)?;
    println!(
        "{device}: TX sweep {}, header {hdr} B {}: all {count} arrived whole, in order",
        span(sizes),
        if setup.vnet_hdr.is_some() {
            "to the tap"
        } else {
            "stripped by the device"
        },
    );
    Ok(())
}
