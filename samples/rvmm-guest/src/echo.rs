//! The `virtio-echo` workload: both queues up, every RX buffer posted, and
//! each request that lands sent straight back on TX as its answer
//! (`rvmm_abi::echo`: only the kind byte changes). rvmm's far side times
//! the round trips; the guest counts its kicks and interrupts as the other
//! workloads do. It sleeps until a request lands (RX NAPI-style) and never
//! asks for TX interrupts but when the TX ring is full and for its last
//! answer.

use crate::frames::{put_bytes, FrameCount};
use crate::virtio::{
    negotiate, post_rx_buffers, program_queue, take_received, Completion, DriverRing, AVAIL, BUFS,
    BUF_SIZE, DESC, NET_HDR_LEN, QUEUE_SIZE, RX, TX, USED, VIRTIO_NET_F_MRG_RXBUF,
};
use rvhost_logic::split_ring::Desc;
use rvmm_abi::echo;

/// Brings the device up and answers `frames.total` requests of `size`
/// bytes; returns the kicks it made.
pub fn echo(
    base: usize,
    frames: FrameCount,
    size: usize,
    event_idx: bool,
    mergeable: bool,
    completion: Completion,
) -> Result<u32, &'static str> {
    if size < echo::MIN_FRAME || size + NET_HDR_LEN > BUF_SIZE {
        return Err("bad frame size");
    }
    let extra = if mergeable { VIRTIO_NET_F_MRG_RXBUF } else { 0 };
    let dev = negotiate(base, event_idx, extra)?;
    let mut rx = post_rx_buffers(&dev, event_idx, completion)?;
    dev.queue_ready();
    program_queue(&dev, TX, (DESC, AVAIL, USED))?;
    dev.queue_ready();
    let mut tx = DriverRing::tx(event_idx);
    tx.quiet_until_asked(completion);
    dev.driver_ok();
    dev.notify(RX);
    let mut kicks = 1;
    let mut seen: u16 = 0;
    for i in 0..frames.total {
        frames.mark_if_warm(i, kicks);
        rx.wait_used_past(seen, completion);
        let (id, request) = take_received(&rx, seen, size, mergeable)?;
        seen = seen.wrapping_add(1);
        tx.wait_for_room(completion);
        let slot = tx.avail_idx % QUEUE_SIZE;
        let buf = BUFS + usize::from(slot) * BUF_SIZE;
        put_bytes(buf, &[0; NET_HDR_LEN]);
        // SAFETY: the device gave the RX buffer back (its used entry, read
        // after an Acquire fence) and the TX slot is not in flight: the
        // device touches neither until the driver publishes it again. Both
        // are `size` bytes inside their 2048-byte buffers, which do not overlap.
        let (request, answer) = unsafe {
            (
                core::slice::from_raw_parts(request as *const u8, size),
                core::slice::from_raw_parts_mut((buf + NET_HDR_LEN) as *mut u8, size),
            )
        };
        answer.copy_from_slice(request);
        echo::answer(answer).map_err(|_| "an RX frame is not an echo request")?;
        let desc = Desc {
            addr: buf as u64,
            len: (NET_HDR_LEN + size) as u32,
            flags: 0,
            next: 0,
        };
        put_bytes(DESC + 16 * usize::from(slot), &desc.to_le_bytes());
        // The answer first: the far side is waiting for it.
        if tx.publish(&dev, slot) {
            kicks += 1;
        }
        if rx.publish(&dev, id) {
            kicks += 1;
        }
    }
    tx.wait_all_used(completion);
    frames.mark_done(kicks);
    Ok(kicks)
}
