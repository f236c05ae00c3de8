// SPDX-License-Identifier: GPL-2.0

//! What the TX and RX rounds share: the round's settings, the worker's
//! scratch space, the progress of a round through the ring (used elements
//! written in batches, committed together with the avail entries they
//! consume) and the end of a round (publish, notify, report a fault).
//!
//! A round runs in the worker, in the owner's address space, under the
//! device mutex. It is bounded by a [`RoundBudget`]; when the budget runs
//! out it requeues itself, and the worker yields before the next round.
//! A malformed ring is never consumed past: the used index stays at the
//! last good packet, the error eventfd fires, a rate-limited diagnostic
//! names the fault, and the queue stops until the VMM re-bases it.

use super::QueueMisses;
use super::{Control, VirtQueue};
use crate::guest_space::Space;
use crate::logic::{
    coalesce::Decision,
    features::{Features, VHOST_F_LOG_ALL, VIRTIO_F_NOTIFY_ON_EMPTY, VIRTIO_NET_F_MRG_RXBUF},
    iotlb::ACCESS_WO,
    ratelimit::RateLimit,
    ring_config::VringAddr,
    ring_fault::RingFault,
    round::{busy_poll_ns, RoundBudget},
    split_ring::{consecutive_heads, Desc, Segment},
};
use crate::sys::socket::{UserIovs, MAX_IOVS};
use crate::sys::trace;
use crate::sys::worker::{busy_poll_must_end, cpu_relax, Waker};
use crate::user_addr::UserAddr;
use crate::user_ring::{DirtyLog, Rings, UserDescs, BATCH_BYTES, MAX_BATCH};
use kernel::{prelude::*, time::Ktime};

/// Most RX chains one packet may use (mergeable buffers); no more than one
/// batch of used elements.
pub(super) const MAX_RX_HEADS: usize = MAX_BATCH;

/// Most writable segments one RX packet may have in all its chains: every
/// byte past the header goes through one of `MAX_IOVS` iovecs, and at most a
/// header's worth of one-byte segments come before them.
pub(super) const PACKET_SEGS: usize = 2 * MAX_IOVS;

/// What the negotiated features say about a round.
#[derive(Clone, Copy)]
pub(super) struct Settings {
    pub(super) event_idx: bool,
    pub(super) notify_on_empty: bool,
    pub(super) mergeable: bool,
    /// Header bytes the device itself strips (TX) or writes (RX).
    pub(super) hdr_len: usize,
    /// Header bytes the backend socket expects (TX) or writes (RX).
    pub(super) sock_hdr_len: usize,
    /// Byte order of the header's fields.
    pub(super) little_endian: bool,
    /// Dirty logging of everything the device writes (`VHOST_F_LOG_ALL`).
    pub(super) log_all: bool,
}

impl Settings {
    fn of(features: Features) -> Self {
        Self {
            event_idx: features.has(crate::logic::features::VIRTIO_RING_F_EVENT_IDX),
            notify_on_empty: features.has(VIRTIO_F_NOTIFY_ON_EMPTY),
            mergeable: features.has(VIRTIO_NET_F_MRG_RXBUF),
            hdr_len: features.device_hdr_len(),
            sock_hdr_len: features.socket_hdr_len(),
            little_endian: features.little_endian(),
            log_all: features.has(VHOST_F_LOG_ALL),
        }
    }
}

/// The worker's working space for rounds, allocated with the worker so that
/// a round neither allocates nor puts kilobytes on the worker's stack (it
/// calls deep into the network stack: tun, bridge, netfilter).
pub(crate) struct Scratch {
    /// Segments of the chain being walked.
    pub(super) segs: KVec<Segment>,
    /// RX: the writable segments of a packet's first chain (for its header),
    /// `head_segs[..head_segs_len]`.
    pub(super) head_segs: KVec<Segment>,
    pub(super) head_segs_len: usize,
    /// RX with dirty logging: every writable segment of the packet's chains,
    /// in order, `packet_segs[..packet_segs_len]`.
    pub(super) packet_segs: KVec<Segment>,
    pub(super) packet_segs_len: usize,
    /// The packet's buffers as user addresses.
    pub(super) iovs: UserIovs,
    /// The used elements of the packet being handled, `(head, len)` (RX:
    /// `(head, room)` while its buffers are being found).
    pub(super) packet_used: KVec<(u16, u32)>,
    /// Used elements not yet written to the ring (see [`Progress`]).
    pub(super) used: KVec<(u16, u32)>,
    /// Avail heads read ahead (see [`Lookahead`]).
    pub(super) heads: KVec<u16>,
    /// Descriptors of consecutive heads read ahead (see [`Lookahead`]).
    pub(super) descs: KVec<Desc>,
    /// One batch of ring entries in guest layout.
    pub(super) ring_bytes: KBox<[u8; BATCH_BYTES]>,
}

impl Scratch {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            segs: KVec::from_elem(Segment::default(), MAX_IOVS, GFP_KERNEL)?,
            head_segs: KVec::from_elem(Segment::default(), MAX_IOVS, GFP_KERNEL)?,
            head_segs_len: 0,
            packet_segs: KVec::from_elem(Segment::default(), PACKET_SEGS, GFP_KERNEL)?,
            packet_segs_len: 0,
            iovs: UserIovs::new()?,
            packet_used: KVec::from_elem((0, 0), MAX_RX_HEADS, GFP_KERNEL)?,
            used: KVec::from_elem((0, 0), MAX_BATCH, GFP_KERNEL)?,
            heads: KVec::from_elem(0, MAX_BATCH, GFP_KERNEL)?,
            descs: KVec::from_elem(Desc::default(), MAX_BATCH, GFP_KERNEL)?,
            ring_bytes: KBox::new([0; BATCH_BYTES], GFP_KERNEL)?,
        })
    }
}

/// The monotonic clock in nanoseconds (rate limits, interrupt coalescing).
pub(super) fn now_ns() -> u64 {
    u64::try_from(Ktime::ktime_get().to_ns()).unwrap_or(0)
}

/// Rate-limited reports of malformed rings, one limit per device (upstream's
/// `vq_err`, which is a debug message there).
pub(super) struct Diagnostics {
    limit: RateLimit,
}

impl Diagnostics {
    /// At most 10 reports per 5 seconds per device.
    pub(super) const fn new() -> Self {
        Self {
            limit: RateLimit::new(5_000_000_000, 10),
        }
    }

    fn report(&mut self, queue: usize, fault: RingFault) {
        let now = now_ns();
        let Some(suppressed) = self.limit.allow(now) else {
            return;
        };
        let name = if queue == super::RX { "rx" } else { "tx" };
        pr_warn!(
            "{} queue of pid {}: {}: queue stopped until the VMM re-bases it ({} similar reports suppressed)\n",
            name,
            kernel::current!().group_leader().pid(),
            fault.description(),
            suppressed
        );
    }
}

/// What one round on a queue works with.
pub(super) struct Round<'a> {
    pub(super) settings: Settings,
    /// How guest addresses translate.
    pub(super) space: Space<'a>,
    /// The rings' user addresses (translated through the IOTLB if there is one).
    pub(super) ring: VringAddr,
    pub(super) vq: &'a mut VirtQueue,
    /// IOTLB misses waiting for the VMM.
    misses: &'a mut QueueMisses,
    /// Where writes are logged, with `VHOST_F_LOG_ALL`.
    pub(super) log: Option<DirtyLog<'a>>,
    diag: &'a mut Diagnostics,
    /// The device's number, for tracepoints.
    dev: u32,
    queue: usize,
}

/// How a round ended, when it hit no fault.
pub(super) enum RoundEnd {
    /// Nothing left to do; notifications are on again.
    Idle,
    /// The budget ran out with work left: the worker runs another round.
    Requeue,
    /// Waiting for the backend (room to send) or the guest (more buffers);
    /// a poll or a kick resumes the queue.
    Wait,
    /// The ring is empty and the queue busy-polls it
    /// (`VHOST_SET_VRING_BUSYLOOP_TIMEOUT`): notifications stay off until
    /// the poll ends.
    PollRing,
}

/// Where a round stands in the ring. Used elements are written in batches
/// of [`MAX_BATCH`]; the avail entries they consume count as taken only once
/// their elements are written, so that a fault leaves `committed_avail` and
/// `last_used` telling the same story (every consumed entry is used).
pub(super) struct Progress {
    /// Avail entries whose used elements are written.
    pub(super) committed_avail: u16,
    /// Avail entries taken so far (`committed_avail` plus those in the batch).
    pub(super) last_avail: u16,
    /// Used elements written so far (published at the end of the round).
    pub(super) last_used: u16,
    /// Used elements waiting in the scratch's `used`.
    pending: usize,
}

impl Progress {
    fn of(vq: &VirtQueue) -> Self {
        Self {
            committed_avail: vq.config.last_avail_idx,
            last_avail: vq.config.last_avail_idx,
            last_used: vq.last_used_idx,
            pending: 0,
        }
    }

    /// Records that a packet took `count` avail entries and used as many
    /// elements, the first `count` (at most [`MAX_RX_HEADS`]) of the
    /// scratch's `packet_used`; writes the batch first if they do not fit.
    pub(super) fn consume(
        &mut self,
        rings: &Rings<'_>,
        scratch: &mut Scratch,
        count: usize,
    ) -> Result<(), RingFault> {
        if self.pending + count > MAX_BATCH {
            self.flush(rings, scratch)?;
        }
        scratch.used[self.pending..self.pending + count]
            .copy_from_slice(&scratch.packet_used[..count]);
        self.pending += count;
        self.last_avail = self.last_avail.wrapping_add(count as u16);
        Ok(())
    }

    /// Writes the waiting used elements; they and their avail entries are
    /// committed if that succeeds, forgotten if not.
    pub(super) fn flush(
        &mut self,
        rings: &Rings<'_>,
        scratch: &mut Scratch,
    ) -> Result<(), RingFault> {
        let pending = core::mem::take(&mut self.pending);
        match rings.put_used_batch(
            self.last_used,
            &scratch.used[..pending],
            &mut scratch.ring_bytes,
        ) {
            Ok(()) => {
                self.last_used = self.last_used.wrapping_add(pending as u16);
                self.committed_avail = self.last_avail;
                Ok(())
            }
            Err(fault) => {
                self.last_avail = self.committed_avail;
                Err(fault)
            }
        }
    }
}

impl Control {
    /// A round on `queue`; `None` unless this is the device's current worker
    /// (`waker`), a memory table is set and the queue has a backend.
    pub(super) fn round(&mut self, queue: usize, waker: &Waker) -> Option<Round<'_>> {
        if !self.is_current(waker) {
            return None;
        }
        let settings = Settings::of(self.features);
        let space = Space::of(self.iotlb.as_ref(), self.mem.as_deref())?;
        let vq = self.vqs.get_mut(queue).filter(|vq| vq.attached())?;
        if vq.config.addr_unset() {
            return None;
        }
        let ring = match space.rings(&vq.config, settings.event_idx) {
            Ok(ring) => ring,
            // The queue waits for the VMM's answer (a kick or the answer
            // runs it again).
            Err(RingFault::IotlbMiss { iova, access }) => {
                self.misses.record(queue, iova, access);
                return None;
            }
            // A ring the IOTLB maps without the access the device needs:
            // the queue stalls until the VMM fixes the mapping, silently as
            // upstream's (a guest's IOMMU may do this to its own device).
            Err(_) => return None,
        };
        let log = vq.dirty_log(self.features, self.log_ctx.as_ref());
        Some(Round {
            settings,
            space,
            ring,
            vq,
            misses: &mut self.misses,
            log,
            diag: &mut self.diag,
            dev: self.id,
            queue,
        })
    }
}

/// What the body of a TX or RX round works with, between
/// [`Control::round`] and [`Round::finish`].
pub(super) struct Body<'r> {
    /// Where the queue stands as the round starts.
    pub(super) progress: Progress,
    pub(super) settings: Settings,
    pub(super) space: Space<'r>,
    /// The queue's rings, used-ring writes logged if the queue asked for it.
    pub(super) rings: Rings<'r>,
    /// Where the buffers' writes are logged, with `VHOST_F_LOG_ALL`.
    pub(super) log: Option<DirtyLog<'r>>,
    pub(super) vq: &'r mut VirtQueue,
}

impl<'a> Round<'a> {
    /// Starts the round's body: where the queue stands, its rings, the queue.
    pub(super) fn body(&mut self) -> Body<'_> {
        Body {
            progress: Progress::of(self.vq),
            settings: self.settings,
            space: self.space,
            rings: Rings::new(&self.ring, self.vq.config.num, self.settings.event_idx)
                .logged(self.log, self.space.log_by_user_addr()),
            log: self.log,
            vq: &mut *self.vq,
        }
    }

    /// Ends a round that ended as `end`: writes what is left of the used
    /// batch, records where the device got to, publishes the used index if
    /// anything was used, signals the call eventfd if the guest asked, and on
    /// a fault signals the error eventfd and reports it (rate-limited).
    pub(super) fn finish(
        self,
        waker: &Waker,
        scratch: &mut Scratch,
        mut progress: Progress,
        end: Result<RoundEnd, RingFault>,
        work: &RoundBudget,
    ) {
        let Settings {
            event_idx,
            notify_on_empty,
            ..
        } = self.settings;
        let vq = self.vq;
        let rings = Rings::new(&self.ring, vq.config.num, event_idx)
            .logged(self.log, self.space.log_by_user_addr());
        let flushed = progress.flush(&rings, scratch);
        let mut result = end.and_then(|end| flushed.map(|()| end));
        if progress.last_used != vq.last_used_idx {
            vq.stats.rounds += 1;
            let decision = rings
                .publish_used(progress.last_used)
                .and_then(|()| {
                    rings.should_signal(
                        &mut vq.calls,
                        progress.last_used,
                        progress.committed_avail,
                        notify_on_empty,
                    )
                })
                .map(|asked| {
                    vq.coalesce
                        .after_round(asked.signal, work.packets(), asked.avail_empty, now_ns)
                });
            match decision {
                Ok(Decision::Signal) => vq.signal_call(),
                Ok(Decision::Hold { arm_ns }) => {
                    vq.stats.calls_held += 1;
                    if let Some(ns) = arm_ns {
                        waker.start_timer(self.queue, ns);
                    }
                }
                Ok(Decision::Quiet) => vq.stats.calls_suppressed += 1,
                Err(fault) => result = Err(fault),
            }
            if let Ok(decision) = decision {
                let signalled = decision == Decision::Signal;
                trace::notify(self.dev, self.queue, progress.last_used, signalled);
            }
            vq.last_used_idx = progress.last_used;
            trace::round(
                self.dev,
                self.queue,
                work.packets(),
                work.bytes(),
                work.descs(),
                progress.last_used,
                matches!(result, Ok(RoundEnd::Requeue)),
            );
        }
        let spin_ns = busy_poll_ns(vq.config.busyloop_timeout);
        let result = match result {
            // TX: nothing queued; watch the ring, the guest need not kick.
            Ok(RoundEnd::PollRing) => {
                busy_poll(waker, Some(&rings), progress.committed_avail, spin_ns).map(|more| {
                    if more {
                        RoundEnd::Requeue
                    } else {
                        RoundEnd::Idle
                    }
                })
            }
            // RX: the socket is empty; its poll marks work pending when a
            // packet comes, found here without the worker sleeping.
            Ok(RoundEnd::Idle) if self.queue == super::RX && spin_ns != 0 => {
                busy_poll(waker, None, progress.committed_avail, spin_ns).map(|_| RoundEnd::Idle)
            }
            other => other,
        };
        vq.config.last_avail_idx = progress.committed_avail;
        match result {
            Ok(RoundEnd::Requeue) => waker.wake(super::kick_bit(self.queue)),
            Ok(RoundEnd::Idle | RoundEnd::Wait | RoundEnd::PollRing) => {}
            // Not the guest's fault: the VMM is asked, the answer resumes
            // the queue where it stopped.
            Err(RingFault::IotlbMiss { iova, access }) => {
                self.misses.record(self.queue, iova, access);
            }
            Err(fault) => {
                vq.stats.errors += 1;
                if let Some(err) = &vq.err {
                    err.signal();
                }
                trace::ring_error(self.dev, self.queue, fault.c_description());
                self.diag.report(self.queue, fault);
            }
        }
    }
}

/// Busy-polls a queue for up to `spin_ns` after its round, as upstream does
/// with `VHOST_SET_VRING_BUSYLOOP_TIMEOUT` (QEMU's `poll-us=`): spends CPU to
/// spare the guest its kicks and the worker its sleep and wake-up. Ends
/// early when work is pending for the worker, another task needs the CPU or
/// the worker is being killed. With `ring`, watches its avail index past
/// `last_avail` with notifications off and turns them back on at the end
/// (then looks once more); returns whether the ring has entries to take.
fn busy_poll(
    waker: &Waker,
    ring: Option<&Rings<'_>>,
    last_avail: u16,
    spin_ns: u64,
) -> Result<bool, RingFault> {
    let start = Ktime::ktime_get().to_ns();
    let deadline = start.saturating_add(i64::try_from(spin_ns).unwrap_or(i64::MAX));
    loop {
        if let Some(rings) = ring {
            if rings.pending(last_avail)? != 0 {
                return Ok(true);
            }
        }
        if waker.has_pending() || busy_poll_must_end() || Ktime::ktime_get().to_ns() >= deadline {
            break;
        }
        cpu_relax();
    }
    let Some(rings) = ring else {
        return Ok(false);
    };
    Ok(rings.enable_notify_and_recheck(last_avail, last_avail)? != 0)
}

/// The avail entries a round works through, read ahead: up to
/// [`MAX_BATCH`] heads in one copy of the avail ring and, when the heads are
/// consecutive table entries (a guest using its ring in order does that),
/// their descriptors in one copy of the table: per packet, no user access
/// for the avail entry and none for a one-descriptor chain. How far it
/// reads starts at what the caller expects to use and doubles with each
/// read up to [`MAX_BATCH`]: an RX round with one packet to place reads two
/// entries, not 64 (and their 1 KiB of descriptors).
pub(super) struct Lookahead {
    /// Avail position of `heads[0]`; `heads[..read]` are read.
    base: u16,
    read: usize,
    /// Most entries the next read takes.
    window: usize,
    /// `descs[..cached]` are table entries `first..`.
    first: u16,
    cached: usize,
}

impl Lookahead {
    /// Reads ahead `first_window` entries at first (at least one, at most
    /// [`MAX_BATCH`]).
    pub(super) fn new(first_window: usize) -> Self {
        Self {
            base: 0,
            read: 0,
            window: first_window.clamp(1, MAX_BATCH),
            first: 0,
            cached: 0,
        }
    }

    /// The head at avail position `pos`; `end` is the avail index the
    /// device has seen (everything before it is published).
    pub(super) fn head(
        &mut self,
        rings: &Rings<'_>,
        scratch: &mut Scratch,
        pos: u16,
        end: u16,
    ) -> Result<u16, RingFault> {
        let offset = usize::from(pos.wrapping_sub(self.base));
        if offset < self.read {
            return Ok(scratch.heads[offset]);
        }
        let n = usize::from(end.wrapping_sub(pos)).clamp(1, self.window);
        rings.heads(pos, &mut scratch.heads[..n], &mut scratch.ring_bytes)?;
        (self.base, self.read, self.cached) = (pos, n, 0);
        self.window = self.window.saturating_mul(2).min(MAX_BATCH);
        let first = scratch.heads[0];
        let run = consecutive_heads(&scratch.heads[..n], rings.num());
        // A table the device cannot read in one go is read entry by entry
        // (and its faults reported then).
        if run >= 2
            && rings
                .descs(first, &mut scratch.descs[..run], &mut scratch.ring_bytes)
                .is_ok()
        {
            (self.first, self.cached) = (first, run);
        }
        Ok(first)
    }

    /// A descriptor reader serving the descriptors read ahead.
    pub(super) fn reader<'a>(
        &self,
        rings: &Rings<'_>,
        space: Space<'a>,
        descs: &'a [Desc],
    ) -> UserDescs<'a> {
        UserDescs {
            table: rings.desc_table(),
            space,
            cache: Some((self.first, &descs[..self.cached])),
        }
    }
}

/// Turns guest buffers into user buffers for `access` (reading TX
/// buffers, writing RX ones), leaving out the first `skip` bytes (the
/// virtio-net header the device consumes on TX or writes itself on RX).
/// Every buffer is translated whole, the left-out bytes too, as upstream
/// translates each descriptor (so a miss names the buffer's start).
pub(super) fn gather(
    space: Space<'_>,
    segs: &[Segment],
    skip: usize,
    access: u8,
    iovs: &mut UserIovs,
) -> Result<(), RingFault> {
    let mut skip = skip as u64;
    for seg in segs {
        let mut addr = seg.addr;
        let mut left = u64::from(seg.len);
        while left > 0 {
            let (uaddr, chunk) =
                space.translate(addr, left, access, RingFault::BufferOutsideMemory)?;
            let left_out = skip.min(chunk);
            skip -= left_out;
            if chunk > left_out
                && !iovs.push(uaddr.wrapping_add(left_out), (chunk - left_out) as usize)
            {
                return Err(RingFault::TooManySegments);
            }
            addr = addr
                .checked_add(chunk)
                .ok_or(RingFault::BufferOutsideMemory)?;
            left -= chunk;
        }
    }
    if skip > 0 {
        return Err(RingFault::ShortHeader);
    }
    Ok(())
}

/// Writes `bytes` into the guest buffers `segs`, starting `skip` bytes in.
pub(super) fn write_to_segments(
    space: Space<'_>,
    segs: &[Segment],
    skip: usize,
    bytes: &[u8],
) -> Result<(), RingFault> {
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
        gpa = gpa.checked_add(n).ok_or(RingFault::BufferOutsideMemory)?;
        while left > 0 && !bytes.is_empty() {
            let want = left.min(bytes.len() as u64);
            let (uaddr, chunk) =
                space.translate(gpa, want, ACCESS_WO, RingFault::BufferOutsideMemory)?;
            let (now, rest) = bytes.split_at(chunk as usize);
            UserAddr::new(uaddr as usize)
                .write_slice(now)
                .map_err(|_| RingFault::BufferOutsideMemory)?;
            bytes = rest;
            gpa = gpa
                .checked_add(chunk)
                .ok_or(RingFault::BufferOutsideMemory)?;
            left -= chunk;
        }
    }
    if bytes.is_empty() {
        Ok(())
    } else {
        Err(RingFault::ShortHeader)
    }
}
