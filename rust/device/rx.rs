// SPDX-License-Identifier: GPL-2.0

//! RX: packets from the backend socket into the guest's buffers.
//!
//! Steps of a round, per packet waiting on the socket: find buffers for it
//! (one chain, or with mergeable buffers as many as it takes, each walked
//! within the packet's descriptor limit), receive it into them, write its
//! header (zeroes where the device provides it, `num_buffers` with
//! mergeable buffers), record the used elements. Every packet taken off the
//! socket counts against the round's budget, delivered or dropped. A packet
//! larger than what the guest can ever post is dropped; one waiting for
//! more buffers stays on the socket until the guest kicks, and until then the
//! socket's own wake-ups are off.

use super::datapath::{
    gather, write_to_segments, Lookahead, Progress, RoundEnd, Scratch, Settings, MAX_RX_HEADS,
    PACKET_SEGS,
};
use super::{Control, QueueStats, RX};
use crate::guest_space::Space;
use crate::logic::{
    dirty_log::written_ranges,
    features::NET_HDR_MRG_LEN,
    iotlb::ACCESS_WO,
    ring_fault::RingFault,
    round::{RoundBudget, PACKET_DESC_LIMIT},
    split_ring::walk_chain,
};
use crate::sys::socket::BackendSocket;
use crate::sys::worker::Waker;
use crate::user_ring::{DirtyLog, Rings};
use kernel::prelude::*;

/// Offset of `num_buffers` in `struct virtio_net_hdr_mrg_rxbuf`.
const NUM_BUFFERS_OFFSET: usize = 10;

/// Where an RX packet can go.
enum Placement {
    /// Buffers found: the first `count` of the scratch's `packet_used`.
    Ready { count: usize },
    /// Not enough buffers posted yet (`seen` were): wait for the guest.
    NoBuffers { seen: u16 },
    /// More than the guest can ever offer one packet: drop it.
    TooLarge,
}

/// The RX round's view of its queue.
struct RxRound<'a> {
    settings: Settings,
    space: Space<'a>,
    rings: Rings<'a>,
    sock: &'a mut BackendSocket,
    stats: &'a mut QueueStats,
    /// Where the packets' buffers are logged, with `VHOST_F_LOG_ALL`.
    log: Option<DirtyLog<'a>>,
    /// The avail index the device has seen: entries before it are published.
    avail_end: u16,
    ahead: Lookahead,
}

impl Control {
    /// Receives what the backend socket holds into the guest's RX buffers.
    // Out of line: the worker's own frame stays small (scripts/worker-stack).
    #[inline(never)]
    pub(super) fn handle_rx(&mut self, waker: &Waker, scratch: &mut Scratch) {
        let Some(mut round) = self.round(RX, waker) else {
            return;
        };
        let body = round.body();
        let mut progress = body.progress;
        let vq = body.vq;
        let Some(sock) = vq.backend.as_mut() else {
            return;
        };
        let mut rx = RxRound {
            settings: body.settings,
            space: body.space,
            rings: body.rings,
            sock,
            stats: &mut vq.stats,
            log: body.log,
            avail_end: progress.last_avail,
            // One packet usually needs one buffer: start small.
            ahead: Lookahead::new(2),
        };
        let mut budget = RoundBudget::new();
        let end = rx.run(scratch, &mut progress, &mut budget);
        // As upstream: while the guest has no buffers, packets arriving need
        // not wake the worker (the guest's kick will, and the round drains
        // them all); nor while it waits for an IOTLB miss to be answered
        // (the answer will); once the socket is drained, they must.
        if let Some(poll) = vq.backend_poll.as_mut() {
            match end {
                Ok(RoundEnd::Wait) | Err(RingFault::IotlbMiss { .. }) => poll.stop(),
                Ok(RoundEnd::Idle) => poll.start(),
                _ => {}
            }
        }
        round.finish(waker, scratch, progress, end, &budget);
    }
}

impl RxRound<'_> {
    fn run(
        &mut self,
        scratch: &mut Scratch,
        progress: &mut Progress,
        budget: &mut RoundBudget,
    ) -> Result<RoundEnd, RingFault> {
        let Settings {
            hdr_len,
            sock_hdr_len,
            ..
        } = self.settings;
        self.rings.disable_notify()?;
        loop {
            if budget.exhausted() {
                return Ok(RoundEnd::Requeue);
            }
            let packet = self.sock.peek_len();
            if packet == 0 {
                return Ok(RoundEnd::Idle);
            }
            // What lands in the guest's buffers: the header the socket writes
            // (if it writes one), the packet, and the header the device adds.
            let need = (packet as u64)
                .saturating_add(sock_hdr_len as u64)
                .saturating_add(hdr_len as u64);
            let mut reads = PACKET_DESC_LIMIT;
            let placement = self.place(scratch, progress.last_avail, need, &mut reads);
            budget.read(PACKET_DESC_LIMIT - reads);
            let count = match placement? {
                Placement::Ready { count } => count,
                Placement::NoBuffers { seen } => {
                    // Ask for a kick when more buffers come than those seen,
                    // then look once more.
                    let last = progress.last_avail;
                    let pending = self
                        .rings
                        .enable_notify_and_recheck(last, last.wrapping_add(seen))?;
                    if pending <= seen {
                        return Ok(RoundEnd::Wait);
                    }
                    self.avail_end = last.wrapping_add(pending);
                    continue;
                }
                Placement::TooLarge => {
                    self.sock.discard();
                    self.stats.drops += 1;
                    budget.packet(0);
                    continue;
                }
            };
            let got = match self.sock.recv_user(&mut scratch.iovs) {
                Ok(n) => n,
                Err(e) if e == EAGAIN => return Ok(RoundEnd::Idle),
                Err(_) => {
                    self.stats.drops += 1;
                    budget.packet(0);
                    continue;
                }
            };
            if got > scratch.iovs.bytes() {
                // Truncated (the packet grew since the peek): dropped; the
                // buffers stay the guest's.
                self.stats.drops += 1;
                budget.packet(0);
                continue;
            }
            self.write_header(scratch, count)?;
            let written = (got as u64).saturating_add(hdr_len as u64);
            if let Some(log) = &self.log {
                // After the data, so that a page the migration copied before
                // the write is copied again.
                let segs = &scratch.packet_segs[..scratch.packet_segs_len];
                for (addr, len) in written_ranges(segs.iter().map(|s| (s.addr, s.len)), written) {
                    self.space.log_write(log, addr, len);
                }
                log.signal();
            }
            // Spread the bytes written over the chains used: room becomes length.
            let mut left = written;
            for (_, room) in scratch.packet_used[..count].iter_mut() {
                let len = left.min(u64::from(*room));
                left -= len;
                *room = len as u32;
            }
            let payload = (got - sock_hdr_len.min(got)) as u64;
            self.stats.packets += 1;
            self.stats.bytes += payload;
            budget.packet(payload);
            progress.consume(&self.rings, scratch, count)?;
        }
    }

    /// Finds guest buffers for a packet needing `need` bytes: one chain, or
    /// with mergeable buffers as many as it takes (up to [`MAX_RX_HEADS`]).
    /// Fills the scratch's `packet_used` (head, room), `head_segs` (the first
    /// chain's segments, for the header) and `iovs` (the room after the
    /// device's header, for `recvmsg`). Each descriptor read takes one of
    /// `reads`.
    fn place(
        &mut self,
        scratch: &mut Scratch,
        last_avail: u16,
        need: u64,
        reads: &mut u32,
    ) -> Result<Placement, RingFault> {
        // The avail index is read again only when the entries known to be
        // published run out.
        let mut pending = self.avail_end.wrapping_sub(last_avail);
        scratch.iovs.clear();
        scratch.packet_segs_len = 0;
        let mut got: u64 = 0;
        let mut count = 0;
        while got < need {
            if count == usize::from(pending) {
                pending = self.rings.pending(last_avail)?;
                self.avail_end = last_avail.wrapping_add(pending);
                if count == usize::from(pending) {
                    return Ok(Placement::NoBuffers { seen: pending });
                }
            }
            if count == MAX_RX_HEADS {
                return Ok(Placement::TooLarge);
            }
            let pos = last_avail.wrapping_add(count as u16);
            let head = self.ahead.head(&self.rings, scratch, pos, self.avail_end)?;
            let chain = walk_chain(
                &mut self.ahead.reader(&self.rings, self.space, &scratch.descs),
                self.rings.num(),
                head,
                &mut scratch.segs,
                reads,
            )?;
            if chain.readable != 0 {
                return Err(RingFault::WrongDirection);
            }
            let segs = &scratch.segs[..chain.writable];
            let room: u64 = segs.iter().map(|s| u64::from(s.len)).sum();
            if self.settings.log_all {
                let at = scratch.packet_segs_len;
                let end = at + segs.len();
                if end > PACKET_SEGS {
                    return Err(RingFault::TooManySegments);
                }
                scratch.packet_segs[at..end].copy_from_slice(segs);
                scratch.packet_segs_len = end;
            }
            let skip = if count == 0 {
                scratch.head_segs[..segs.len()].copy_from_slice(segs);
                scratch.head_segs_len = segs.len();
                self.settings.hdr_len
            } else {
                0
            };
            gather(self.space, segs, skip, ACCESS_WO, &mut scratch.iovs)?;
            scratch.packet_used[count] = (head, u32::try_from(room).unwrap_or(u32::MAX));
            count += 1;
            got = got.saturating_add(room);
            if !self.settings.mergeable && got < need {
                return Ok(Placement::TooLarge);
            }
        }
        Ok(Placement::Ready { count })
    }

    /// Writes the header of a packet placed in `count` chains into its first
    /// chain: zeroes (no offloads) where the device provides the header, and
    /// `num_buffers` with mergeable buffers (also into a header the socket
    /// wrote, which leaves that field alone).
    fn write_header(&self, scratch: &Scratch, count: usize) -> Result<(), RingFault> {
        let Settings {
            hdr_len,
            mergeable,
            little_endian,
            ..
        } = self.settings;
        let mut header = [0u8; NET_HDR_MRG_LEN];
        if mergeable {
            let n = count as u16;
            let bytes = if little_endian {
                n.to_le_bytes()
            } else {
                n.to_be_bytes()
            };
            header[NUM_BUFFERS_OFFSET..].copy_from_slice(&bytes);
        }
        let (skip, end) = match (hdr_len, mergeable) {
            (0, false) => return Ok(()),
            (0, true) => (NUM_BUFFERS_OFFSET, NET_HDR_MRG_LEN),
            (len, _) => (0, len),
        };
        let segs = &scratch.head_segs[..scratch.head_segs_len];
        write_to_segments(self.space, segs, skip, &header[skip..end])
    }
}
