// SPDX-License-Identifier: GPL-2.0

//! TX: the guest's chains to the backend socket.
//!
//! Steps of a round: read the avail heads ahead (one copy per stretch) and,
//! when they are consecutive, their descriptors (one copy), walk each chain
//! within its descriptor limit, gather its buffers, send
//! (into a tap in batches through tun's XDP path when the tap allows it,
//! else one `sendmsg` per frame), record the used element; end the round
//! when the ring is empty (notifications back on), the budget is spent
//! (requeue) or the socket is full (wait for room: `EAGAIN`, the chain stays).

use super::datapath::{gather, Body, Lookahead, Progress, RoundEnd, Scratch, Settings};
use super::{Control, QueueStats, TX};
use crate::guest_space::Space;
use crate::logic::{
    iotlb::ACCESS_RO,
    ring_fault::RingFault,
    round::{RoundBudget, PACKET_DESC_LIMIT},
    split_ring::walk_chain,
};
use crate::sys::socket::BackendSocket;
use crate::sys::tap_batch::TapBatch;
use crate::sys::worker::{FilePoll, Waker};
use crate::user_ring::{Rings, MAX_BATCH};
use kernel::prelude::*;

/// The TX round's view of its queue.
struct TxRound<'a> {
    settings: Settings,
    space: Space<'a>,
    rings: Rings<'a>,
    sock: &'a BackendSocket,
    batch: Option<&'a mut TapBatch>,
    poll: Option<&'a mut FilePoll>,
    stats: &'a mut QueueStats,
    /// The queue busy-polls its ring when it runs empty.
    busy_poll: bool,
}

/// What became of one frame.
enum Sent {
    /// Handed to the socket (or to the batch, counted when it is flushed):
    /// this many payload bytes.
    Bytes(u64),
    /// Dropped (a bad header, a socket error), as upstream drops it.
    Dropped,
    /// The socket is full: the chain stays for later.
    SocketFull,
}

impl Control {
    /// Transmits what the guest queued on the TX ring.
    // Out of line: the worker's own frame stays small (scripts/worker-stack).
    #[inline(never)]
    pub(super) fn handle_tx(&mut self, waker: &Waker, scratch: &mut Scratch) {
        let Some(mut round) = self.round(TX, waker) else {
            return;
        };
        let Body {
            mut progress,
            settings,
            space,
            rings,
            vq,
            ..
        } = round.body();
        // Running again: any wait for room in the socket is over.
        if let Some(poll) = vq.backend_poll.as_mut() {
            poll.stop();
        }
        let Some(sock) = vq.backend.as_ref() else {
            return;
        };
        let batch = vq
            .tap_batch
            .as_mut()
            .filter(|_| TapBatch::usable_with(sock));
        let mut tx = TxRound {
            settings,
            space,
            rings,
            sock,
            batch,
            poll: vq.backend_poll.as_mut(),
            stats: &mut vq.stats,
            busy_poll: vq.config.busyloop_timeout != 0,
        };
        let mut budget = RoundBudget::new();
        let end = tx.run(scratch, &mut progress, &mut budget);
        // Frames still batched go out before their used entries are published.
        if let Some(batch) = tx.batch {
            tx.stats.account(batch.flush(sock));
        }
        round.finish(waker, scratch, progress, end, &budget);
    }
}

impl TxRound<'_> {
    fn run(
        &mut self,
        scratch: &mut Scratch,
        progress: &mut Progress,
        budget: &mut RoundBudget,
    ) -> Result<RoundEnd, RingFault> {
        self.rings.disable_notify()?;
        // Entries known to be available: the avail index is re-read only when
        // they are used up; heads and descriptors are read ahead.
        let mut avail_left: u16 = 0;
        // A round usually has many frames to send: read ahead all we may.
        let mut ahead = Lookahead::new(MAX_BATCH);
        loop {
            if avail_left == 0 && self.busy_poll {
                // Notifications stay off: the busy poll after the round
                // watches the ring.
                avail_left = self.rings.pending(progress.last_avail)?;
                if avail_left == 0 {
                    return Ok(RoundEnd::PollRing);
                }
            }
            if avail_left == 0 {
                avail_left = self.available(progress.last_avail)?;
                if avail_left == 0 {
                    return Ok(RoundEnd::Idle);
                }
            }
            if budget.exhausted() {
                return Ok(RoundEnd::Requeue);
            }
            let pos = progress.last_avail;
            let head = ahead.head(&self.rings, scratch, pos, pos.wrapping_add(avail_left))?;
            let mut reads = PACKET_DESC_LIMIT;
            let chain = walk_chain(
                &mut ahead.reader(&self.rings, self.space, &scratch.descs),
                self.rings.num(),
                head,
                &mut scratch.segs,
                &mut reads,
            );
            budget.read(PACKET_DESC_LIMIT - reads);
            let chain = chain?;
            if chain.writable != 0 {
                return Err(RingFault::WrongDirection);
            }
            scratch.iovs.clear();
            gather(
                self.space,
                &scratch.segs[..chain.readable],
                self.settings.hdr_len,
                ACCESS_RO,
                &mut scratch.iovs,
            )?;
            let bytes = match self.send(scratch) {
                Sent::SocketFull => {
                    // Room in the socket wakes the worker again (the poll
                    // was allocated with the backend: nothing can fail here).
                    if let Some(poll) = self.poll.as_mut() {
                        poll.start();
                    }
                    return Ok(RoundEnd::Wait);
                }
                Sent::Dropped => {
                    self.stats.drops += 1;
                    0
                }
                Sent::Bytes(bytes) => bytes,
            };
            avail_left -= 1;
            budget.packet(bytes);
            scratch.packet_used[0] = (head, 0);
            progress.consume(&self.rings, scratch, 1)?;
        }
    }

    /// Entries available past `last_avail`. When there are none, asks the
    /// guest for a kick and looks once more, so that a buffer queued
    /// meanwhile is not missed (and asks for quiet again if there was one).
    fn available(&self, last_avail: u16) -> Result<u16, RingFault> {
        match self.rings.pending(last_avail)? {
            0 => self.rings.enable_notify_and_recheck(last_avail, last_avail),
            n => Ok(n),
        }
    }

    /// Sends the frame gathered in the scratch's iovecs.
    fn send(&mut self, scratch: &mut Scratch) -> Sent {
        let iovs = &mut scratch.iovs;
        let bytes = iovs.bytes() as u64;
        let alone = match self.batch.as_mut() {
            Some(batch) => match batch.add(
                self.sock,
                iovs,
                self.settings.sock_hdr_len,
                self.settings.little_endian,
            ) {
                Ok(()) => {
                    if batch.is_full() {
                        self.stats.account(batch.flush(self.sock));
                    }
                    return Sent::Bytes(bytes);
                }
                // Too big for a page: after what is batched, on its own.
                Err(e) if e == ENOSPC => {
                    self.stats.account(batch.flush(self.sock));
                    self.sock.send_user(iovs)
                }
                Err(e) => Err(e),
            },
            None => self.sock.send_user(iovs),
        };
        match alone {
            Ok(_) => {
                self.stats.packets += 1;
                self.stats.bytes += bytes;
                Sent::Bytes(bytes)
            }
            Err(e) if e == EAGAIN => Sent::SocketFull,
            Err(_) => Sent::Dropped,
        }
    }
}
