// SPDX-License-Identifier: GPL-2.0

//! The data path, run by the worker in the owner's address space: TX (guest
//! chains to the backend socket) and RX (backend packets into guest buffers).
//!
//! A malformed chain is never consumed: the used index stays, the error
//! eventfd fires and the queue stops until the VMM re-bases it.

use super::*;
use crate::logic::{
    features::VIRTIO_NET_F_MRG_RXBUF,
    split_ring::{walk_chain, Segment},
};
use crate::ring::{Rings, UserDescs, MAX_BATCH};
use crate::socket::{UserIovs, MAX_IOVS};
use crate::tap_batch::TapBatch;

/// Most packets handled per round and queue before the worker requeues itself.
const WEIGHT: usize = MAX_BATCH;
/// Most payload bytes per round and queue (upstream's 0x80000), so that large
/// frames cannot keep the worker on one queue either.
const WEIGHT_BYTES: u64 = 0x8_0000;

/// What the negotiated features say about a round.
#[derive(Clone, Copy)]
struct Settings {
    event_idx: bool,
    notify_on_empty: bool,
    mergeable: bool,
    /// Header bytes the device handles itself.
    hdr_len: usize,
    /// Size of the virtio-net header in guest buffers.
    net_hdr_len: usize,
    /// Header bytes the backend socket expects.
    sock_hdr_len: usize,
}

/// What one worker round on a queue works with.
struct Round<'a> {
    settings: Settings,
    waker: Option<Arc<Waker>>,
    mem: &'a MemTable,
    vq: &'a mut VirtQueue,
}

impl Control {
    /// The settings, memory table and queue for a round on `queue`; `None`
    /// unless a memory table is set and the queue has a backend.
    fn round(&mut self, queue: usize) -> Option<Round<'_>> {
        let settings = Settings {
            event_idx: self.event_idx(),
            notify_on_empty: self.features.has(VIRTIO_F_NOTIFY_ON_EMPTY),
            mergeable: self.features.has(VIRTIO_NET_F_MRG_RXBUF),
            hdr_len: self.features.device_hdr_len(),
            net_hdr_len: self.features.net_hdr_len(),
            sock_hdr_len: self.features.socket_hdr_len(),
        };
        let mem = self.mem.as_deref()?;
        let vq = self.vqs.get_mut(queue).filter(|vq| vq.attached())?;
        let waker = self.waker.clone();
        Some(Round {
            settings,
            waker,
            mem,
            vq,
        })
    }

    /// Transmits what the guest queued on the TX ring (in the worker, in the
    /// owner's address space). A malformed chain is not consumed: the used
    /// index stays, the error eventfd fires and the queue stops until the VMM
    /// re-bases it. A full socket stops the round; the next kick retries.
    pub(super) fn handle_tx(&mut self, waker: &Waker) {
        let Some(Round {
            settings,
            waker: shared_waker,
            mem,
            vq,
        }) = self.round(TX)
        else {
            return;
        };
        let Settings {
            event_idx,
            notify_on_empty,
            hdr_len,
            sock_hdr_len,
            ..
        } = settings;
        // Running again: any wait for socket room is over.
        vq.backend_poll = None;
        let Some(sock) = vq.backend.as_ref() else {
            return;
        };
        // Frames go to a tap with an unlimited send buffer in batches, as
        // upstream sends them; the header the tap expects (when the device
        // does not handle it) travels in the batch's own header slot.
        let mut batch = if TapBatch::usable_with(sock) {
            match vq.tap_batch.take() {
                Some(batch) => Some(batch),
                None => TapBatch::new().ok(),
            }
        } else {
            None
        };
        let rings = Rings {
            config: &vq.config,
            event_idx,
        };
        let mut fault = rings.disable_notify().is_err();
        let (mut last_avail, last_used) = (vq.config.last_avail_idx, vq.last_used_idx);
        let mut sent = 0;
        // Entries known to be available; the avail index is re-read only when
        // they are used up.
        let mut avail_left: u16 = 0;
        // Scratch space reused for every packet of the round.
        let mut segs = [Segment::default(); MAX_IOVS];
        let mut iovs = UserIovs::new();
        let mut done = [(0u16, 0u32); MAX_BATCH];
        // Heads read ahead in one copy: `heads[next_head..heads_read]`.
        let mut heads = [0u16; MAX_BATCH];
        let (mut next_head, mut heads_read) = (0, 0);
        let mut bytes: u64 = 0;
        loop {
            if avail_left == 0 {
                match rings.pending(last_avail) {
                    Ok(0) => {
                        // Ask for the next kick, then look again so that a
                        // buffer queued meanwhile is not missed.
                        if rings.enable_notify(last_avail).is_err() {
                            fault = true;
                            break;
                        }
                        match rings.pending(last_avail) {
                            Ok(0) => break,
                            Ok(n) => avail_left = n,
                            Err(_) => {
                                fault = true;
                                break;
                            }
                        }
                    }
                    Ok(n) => avail_left = n,
                    Err(_) => {
                        fault = true;
                        break;
                    }
                }
            }
            if sent >= WEIGHT || bytes >= WEIGHT_BYTES {
                waker.wake(kick_bit(TX));
                break;
            }
            if next_head == heads_read {
                let n = usize::from(avail_left).min(MAX_BATCH);
                if rings.heads(last_avail, &mut heads[..n]).is_err() {
                    fault = true;
                    break;
                }
                (next_head, heads_read) = (0, n);
            }
            let head = heads[next_head];
            next_head += 1;
            let mut descs = UserDescs {
                table: vq.config.addr.desc_user_addr,
                mem,
            };
            let chain = match walk_chain(&mut descs, rings_num(&vq.config), head, &mut segs) {
                Ok(chain) if chain.writable == 0 => chain,
                _ => {
                    fault = true;
                    break;
                }
            };
            iovs.clear();
            if gather(mem, &segs[..chain.readable], hdr_len, &mut iovs).is_err() {
                fault = true;
                break;
            }
            // `None`: the frame went into the batch (counted at its flush).
            let sent_alone = match batch.as_mut() {
                Some(b) => match b.add(sock, &mut iovs, sock_hdr_len) {
                    Ok(()) => {
                        if b.is_full() {
                            vq.stats.account(b.flush(sock));
                        }
                        None
                    }
                    // Too big for a page: after what is batched, on its own.
                    Err(e) if e == ENOSPC => {
                        vq.stats.account(b.flush(sock));
                        Some(sock.send_user(&mut iovs))
                    }
                    Err(e) => Some(Err(e)),
                },
                None => Some(sock.send_user(&mut iovs)),
            };
            match sent_alone {
                None => bytes += iovs.bytes() as u64,
                Some(Err(e)) if e == EAGAIN => {
                    // The socket is full: the chain stays, and room in the
                    // socket wakes the worker again.
                    if let Some(waker) = shared_waker.clone() {
                        let poll =
                            FilePoll::start(sock, waker, kick_bit(TX), None, Interest::Writable);
                        vq.backend_poll = poll.ok();
                    }
                    break;
                }
                // Other send errors drop the packet, as upstream does.
                Some(Err(_)) => vq.stats.drops += 1,
                Some(Ok(_)) => {
                    vq.stats.packets += 1;
                    vq.stats.bytes += iovs.bytes() as u64;
                    bytes += iovs.bytes() as u64;
                }
            }
            // Used elements are written in one batch at the end of the round.
            if let Some(slot) = done.get_mut(sent) {
                *slot = (head, 0);
            }
            last_avail = last_avail.wrapping_add(1);
            avail_left -= 1;
            sent = sent.saturating_add(1);
        }
        if let Some(mut b) = batch {
            vq.stats.account(b.flush(sock));
            vq.tap_batch = Some(b);
        }
        let done = &done[..sent.min(MAX_BATCH)];
        let last_used = match rings.put_used_batch(last_used, done) {
            Ok(()) => last_used.wrapping_add(done.len() as u16),
            Err(_) => {
                fault = true;
                last_used
            }
        };
        vq.finish_round(event_idx, notify_on_empty, last_avail, last_used, fault);
    }
}

impl VirtQueue {
    /// Ends a worker round: records where the device got to, publishes the
    /// used index if anything was used, signals the call eventfd if the guest
    /// asked, and the error eventfd if the round hit a malformed ring.
    fn finish_round(
        &mut self,
        event_idx: bool,
        notify_on_empty: bool,
        last_avail: u16,
        last_used: u16,
        mut fault: bool,
    ) {
        self.config.last_avail_idx = last_avail;
        if last_used != self.last_used_idx {
            self.last_used_idx = last_used;
            self.stats.rounds += 1;
            let rings = Rings {
                config: &self.config,
                event_idx,
            };
            if rings.publish_used(last_used).is_err() {
                fault = true;
            } else {
                match rings.should_signal(&mut self.calls, last_used, last_avail, notify_on_empty) {
                    Ok(true) => {
                        if let Some(call) = &self.call {
                            call.signal();
                            self.stats.calls += 1;
                        }
                    }
                    Ok(false) => self.stats.calls_suppressed += 1,
                    Err(_) => fault = true,
                }
            }
        }
        if fault {
            self.stats.errors += 1;
            if let Some(err) = &self.err {
                err.signal();
            }
        }
    }
}

/// Most RX chains one packet may use (mergeable buffers).
const MAX_RX_HEADS: usize = 64;

/// Why an RX packet could not be placed.
enum RxPlace {
    /// Buffers found for the packet: the heads and their room.
    Ready { count: usize },
    /// Not enough buffers posted yet (`seen` were): wait for the guest.
    NoBuffers { seen: u16 },
    /// The packet does not fit in what the guest can post: drop it.
    TooLarge,
    /// A malformed chain: stop the queue.
    Fault,
}

impl Control {
    /// Receives what the backend socket holds into the guest's RX buffers.
    /// A packet larger than the buffers a chain (or, with mergeable RX
    /// buffers, up to 64 chains) offers is received into nothing and dropped;
    /// nothing is written past a buffer.
    pub(super) fn handle_rx(&mut self, waker: &Waker) {
        let Some(Round {
            settings, mem, vq, ..
        }) = self.round(RX)
        else {
            return;
        };
        let Settings {
            event_idx,
            notify_on_empty,
            hdr_len,
            mergeable,
            net_hdr_len,
            ..
        } = settings;
        // Where `num_buffers` goes: in the header we write, or the one the
        // socket wrote (12-byte headers only).
        let num_buffers_at = (mergeable && net_hdr_len == 12).then_some(10u64);
        let Some(sock) = vq.backend.as_ref() else {
            return;
        };
        let rings = Rings {
            config: &vq.config,
            event_idx,
        };
        let mut fault = rings.disable_notify().is_err();
        let (mut last_avail, mut last_used) = (vq.config.last_avail_idx, vq.last_used_idx);
        let mut received = 0;
        let mut heads = [(0u16, 0u32); MAX_RX_HEADS];
        let mut segs = [Segment::default(); MAX_IOVS];
        let mut iovs = UserIovs::new();
        let mut bytes: u64 = 0;
        loop {
            if received >= WEIGHT || bytes >= WEIGHT_BYTES {
                waker.wake(kick_bit(RX));
                break;
            }
            let packet = sock.peek_len();
            if packet == 0 {
                break;
            }
            let need = (packet as u64).saturating_add(hdr_len as u64);
            iovs.clear();
            let mut first_segs = 0;
            let place = place_rx(
                &rings,
                mem,
                vq.config.addr.desc_user_addr,
                last_avail,
                need,
                hdr_len,
                mergeable,
                &mut heads,
                &mut segs,
                &mut first_segs,
                &mut iovs,
            );
            let count = match place {
                RxPlace::Ready { count } => count,
                RxPlace::NoBuffers { seen } => {
                    // Ask for a kick when more buffers come than those seen,
                    // then look once more.
                    if rings.enable_notify(last_avail.wrapping_add(seen)).is_err() {
                        fault = true;
                        break;
                    }
                    match rings.pending(last_avail) {
                        Ok(n) if n <= seen => break,
                        Ok(_) => continue,
                        Err(_) => {
                            fault = true;
                            break;
                        }
                    }
                }
                RxPlace::TooLarge => {
                    sock.discard();
                    vq.stats.drops += 1;
                    continue;
                }
                RxPlace::Fault => {
                    fault = true;
                    break;
                }
            };
            let got = match sock.recv_user(&mut iovs) {
                Ok(n) => n,
                Err(e) if e == EAGAIN => break,
                Err(_) => {
                    vq.stats.drops += 1;
                    continue;
                }
            };
            if got > iovs.bytes() {
                // Truncated (the packet grew since the peek): dropped.
                vq.stats.drops += 1;
                continue;
            }
            // The header: zeroes (no offloads) where the device provides it,
            // and `num_buffers` with mergeable buffers.
            let mut header = [0u8; 12];
            if let Some(at) = num_buffers_at {
                header[at as usize..][..2].copy_from_slice(&(count as u16).to_le_bytes());
            }
            let header: &[u8] = if hdr_len > 0 {
                &header[..hdr_len]
            } else if let Some(at) = num_buffers_at {
                &header[..at as usize + 2]
            } else {
                &[]
            };
            let skip = if hdr_len > 0 {
                0
            } else {
                header.len().saturating_sub(2)
            };
            if write_to_segments(mem, &segs[..first_segs], skip, &header[skip..]).is_err() {
                fault = true;
                break;
            }
            // Spread the bytes written over the heads used.
            let mut left = (got as u64).saturating_add(hdr_len as u64);
            for &(head, room) in &heads[..count] {
                let len = left.min(u64::from(room));
                left -= len;
                if rings.put_used(last_used, head, len as u32).is_err() {
                    fault = true;
                    break;
                }
                last_used = last_used.wrapping_add(1);
            }
            if fault {
                break;
            }
            last_avail = last_avail.wrapping_add(count as u16);
            received += 1;
            vq.stats.packets += 1;
            vq.stats.bytes += got as u64;
            bytes += got as u64;
        }
        vq.finish_round(event_idx, notify_on_empty, last_avail, last_used, fault);
    }
}

/// Finds guest buffers for an RX packet needing `need` bytes (header
/// included): one chain, or with `mergeable` as many as it takes. Fills
/// `heads` (head, room), the first chain's segments (`first_segs` of `segs`,
/// for the header) and `iovs` (the room after the header, for `recvmsg`).
#[allow(clippy::too_many_arguments)]
fn place_rx(
    rings: &Rings<'_>,
    mem: &MemTable,
    desc_table: u64,
    last_avail: u16,
    need: u64,
    hdr_len: usize,
    mergeable: bool,
    heads: &mut [(u16, u32); MAX_RX_HEADS],
    segs: &mut [Segment; MAX_IOVS],
    first_segs: &mut usize,
    iovs: &mut UserIovs,
) -> RxPlace {
    let Ok(pending) = rings.pending(last_avail) else {
        return RxPlace::Fault;
    };
    let mut got: u64 = 0;
    let mut count = 0;
    let mut chain_segs = [Segment::default(); MAX_IOVS];
    while got < need {
        if count == usize::from(pending) {
            return RxPlace::NoBuffers { seen: pending };
        }
        if count == MAX_RX_HEADS {
            return RxPlace::TooLarge;
        }
        let Ok(head) = rings.head(last_avail.wrapping_add(count as u16)) else {
            return RxPlace::Fault;
        };
        let mut descs = UserDescs {
            table: desc_table,
            mem,
        };
        let chain = match walk_chain(&mut descs, rings_num(rings.config), head, &mut chain_segs) {
            Ok(chain) if chain.readable == 0 => chain,
            _ => return RxPlace::Fault,
        };
        let room: u64 = chain_segs[..chain.writable]
            .iter()
            .map(|s| u64::from(s.len))
            .sum();
        if count == 0 {
            segs[..chain.writable].copy_from_slice(&chain_segs[..chain.writable]);
            *first_segs = chain.writable;
        }
        let skip = if count == 0 { hdr_len } else { 0 };
        if gather(mem, &chain_segs[..chain.writable], skip, iovs).is_err() {
            return RxPlace::Fault;
        }
        heads[count] = (head, u32::try_from(room).unwrap_or(u32::MAX));
        count += 1;
        got = got.saturating_add(room);
        if !mergeable && got < need {
            return RxPlace::TooLarge;
        }
    }
    RxPlace::Ready { count }
}

/// Writes `bytes` into the guest buffers `segs`, starting `skip` bytes in.
fn write_to_segments(mem: &MemTable, segs: &[Segment], skip: usize, bytes: &[u8]) -> Result {
    let mut skip = skip as u64;
    let mut bytes = bytes;
    for seg in segs {
        if bytes.is_empty() {
            break;
        }
        let mut gpa = seg.addr;
        let mut left = u64::from(seg.len);
        let n = skip.min(left);
        skip -= n;
        left -= n;
        gpa = gpa.checked_add(n).ok_or(EFAULT)?;
        while left > 0 && !bytes.is_empty() {
            let want = left.min(bytes.len() as u64);
            let (uaddr, chunk) = mem.translate(gpa, want).map_err(to_error)?;
            let (now, rest) = bytes.split_at(chunk as usize);
            UserArg::new(uaddr as usize).write_slice(now)?;
            bytes = rest;
            gpa = gpa.checked_add(chunk).ok_or(EFAULT)?;
            left -= chunk;
        }
    }
    if bytes.is_empty() {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// The ring size as the chain walker takes it.
fn rings_num(config: &VringConfig) -> u16 {
    u16::try_from(config.num).unwrap_or(u16::MAX)
}

/// Turns guest buffers into user buffers, skipping the first `hdr_len` bytes
/// (the virtio-net header the device consumes on TX or writes itself on RX).
/// `EINVAL` if the buffers are shorter than the header; `EFAULT` for
/// addresses outside the memory table.
fn gather(mem: &MemTable, segs: &[Segment], hdr_len: usize, iovs: &mut UserIovs) -> Result {
    let mut skip = hdr_len as u64;
    for seg in segs {
        let mut gpa = seg.addr;
        let mut left = u64::from(seg.len);
        if skip > 0 {
            let n = skip.min(left);
            skip -= n;
            left -= n;
            gpa = gpa.checked_add(n).ok_or(EFAULT)?;
        }
        while left > 0 {
            let (uaddr, chunk) = mem.translate(gpa, left).map_err(to_error)?;
            iovs.push(uaddr, chunk as usize)?;
            gpa = gpa.checked_add(chunk).ok_or(EFAULT)?;
            left -= chunk;
        }
    }
    if skip > 0 {
        return Err(EINVAL);
    }
    Ok(())
}
