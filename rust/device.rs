// SPDX-License-Identifier: GPL-2.0

//! The vhost-net character device: per-open-file state and ioctl dispatch.
//!
//! Dispatch follows upstream `drivers/vhost/net.c` step for step, because the
//! order of checks decides which errno a caller sees:
//!
//! 1. net-level requests (features, owner changes, backend attach) first, with
//!    no owner check of their own except where upstream makes one;
//! 2. everything else must come from the owner (`EPERM`), then device-wide
//!    requests (memory table, dirty log) are served;
//! 3. anything left reads a ring index from the argument (`EFAULT`, `ENOBUFS`
//!    for an index ≥ 2) before being served or refused as unknown (`ENOTTY`).

use crate::guest_space::{new_iotlb, DeviceIotlb, Space};
use crate::logic::{
    coalesce::{CoalesceError, CoalesceParams, Coalescer},
    errno::Errno,
    features::{
        self, Features, VHOST_F_LOG_ALL, VIRTIO_F_ACCESS_PLATFORM, VIRTIO_RING_F_EVENT_IDX,
    },
    ioctl::{Stage, VhostIoctl},
    iotlb::Misses,
    memtable::{MemTable, Region, MAX_REGIONS},
    owner::Ownership,
    ring_config::{VringAddr, VringConfig},
    ring_fault::RingFault,
    split_ring::CallSuppression,
};
use crate::sys::access::user_access_ok;
use crate::sys::bindings;
use crate::sys::eventfd::{EventFdCtx, EventFdFile, UNBIND};
use crate::sys::miscdev::MiscDevice;
use crate::sys::mm::MmGrab;
use crate::sys::poll_queue::{PollQueue, PollTable};
use crate::sys::socket::BackendSocket;
use crate::sys::tap_batch::{Flushed, TapBatch};
use crate::sys::worker::{timer_bit, FilePoll, Interest, Waker, Worker, WorkerBody};
use crate::user_addr::UserAddr;
use crate::user_ring::{DirtyLog, Rings};

mod datapath;
mod iotlb;
mod rx;
mod tx;

use crate::sys::debugfs;
use core::{
    fmt,
    sync::atomic::{AtomicU32, Ordering},
};
use datapath::{Diagnostics, Scratch};
use kernel::{
    new_condvar, new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, ArcBorrow, CondVar, Mutex, SpinLock},
};

/// Number of virtqueues of a vhost-net device (RX = 0, TX = 1).
pub(crate) const NUM_VQS: u32 = 2;
/// The receive queue.
const RX: usize = 0;
/// The transmit queue.
const TX: usize = 1;

/// IOTLB misses of the device's queues waiting for the VMM.
pub(crate) type QueueMisses = Misses<{ NUM_VQS as usize }>;

/// The worker's pending-work bit for queue `index`.
const fn kick_bit(index: usize) -> u32 {
    1 << index
}

/// One virtqueue: its configuration and what is bound to it.
struct VirtQueue {
    config: VringConfig,
    /// Polls the kick eventfd (and keeps it).
    kick: Option<FilePoll>,
    call: Option<EventFdCtx>,
    err: Option<EventFdCtx>,
    /// Polls `backend`: for packets (RX, always started), or for room after
    /// `EAGAIN` (TX, started then); allocated with the backend.
    backend_poll: Option<FilePoll>,
    backend: Option<BackendSocket>,
    /// TX frames on their way to a tap (empty between rounds); allocated
    /// with a tap backend.
    tap_batch: Option<TapBatch>,
    log_base: u64,
    last_used_idx: u16,
    calls: CallSuppression,
    /// When asked-for signals go out (`RVHOST_SET_VRING_COALESCE`).
    coalesce: Coalescer,
    stats: QueueStats,
}

/// Per-queue counters (the kick count lives in the worker's `Waker`).
#[derive(Default)]
pub(crate) struct QueueStats {
    pub(crate) calls: u64,
    pub(crate) calls_suppressed: u64,
    /// Rounds whose signal was held back by coalescing.
    pub(crate) calls_held: u64,
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) rounds: u64,
    pub(crate) drops: u64,
    pub(crate) errors: u64,
}

impl QueueStats {
    /// Counts a flushed tap batch: sent, or dropped if the tap refused it.
    pub(crate) fn account(&mut self, flushed: Flushed) {
        if flushed.ok {
            self.packets += flushed.frames;
            self.bytes += flushed.bytes;
        } else {
            self.drops += flushed.frames;
        }
    }
}

impl VirtQueue {
    fn new() -> Self {
        Self {
            config: VringConfig::new(),
            kick: None,
            call: None,
            err: None,
            backend_poll: None,
            backend: None,
            tap_batch: None,
            log_base: 0,
            last_used_idx: 0,
            calls: CallSuppression::default(),
            coalesce: Coalescer::default(),
            stats: QueueStats::default(),
        }
    }

    fn attached(&self) -> bool {
        self.backend.is_some()
    }

    /// Signals the call eventfd (a guest interrupt, through irqfd).
    fn signal_call(&mut self) {
        if let Some(call) = &self.call {
            call.signal();
            self.stats.calls += 1;
        }
    }

    /// Upstream's `vq_log_access_ok`: the queue's memory is accessible
    /// ([`memory_access_ok`]) and, with used-ring logging, so is the used
    /// ring's part of the dirty log.
    /// With an IOTLB the used ring is logged by its user address, so its
    /// log address is not checked (upstream's `vq_log_used_access_ok`).
    fn log_access_ok(
        &self,
        mem: Option<&MemTable>,
        log_base: u64,
        features: Features,
        iotlb: bool,
    ) -> bool {
        memory_access_ok(mem, log_base, features)
            && (iotlb
                || VringConfig::used_log_ok(
                    &self.config.addr,
                    self.config.num,
                    features.has(VIRTIO_RING_F_EVENT_IDX),
                    log_base,
                    &user_access_ok,
                ))
    }

    /// Upstream's `vhost_vq_access_ok`, checked before a backend is attached.
    /// With an IOTLB the rings' addresses are I/O virtual: they are checked
    /// by translation before each round instead.
    fn access_ok(&self, mem: Option<&MemTable>, features: Features, iotlb: bool) -> bool {
        let ring_ok = |addr, size| iotlb || user_access_ok(addr, size);
        self.log_access_ok(mem, self.log_base, features, iotlb)
            && self
                .config
                .access_ok(features.has(VIRTIO_RING_F_EVENT_IDX), ring_ok)
    }

    /// The dirty log this queue writes into, with `VHOST_F_LOG_ALL`.
    fn dirty_log<'a>(
        &self,
        features: Features,
        ctx: Option<&'a EventFdCtx>,
    ) -> Option<DirtyLog<'a>> {
        features.has(VHOST_F_LOG_ALL).then_some(DirtyLog {
            base: self.log_base,
            ctx,
        })
    }
}

/// Upstream's `vq_memory_access_ok`: a memory table exists and its user
/// ranges are accessible; with `VHOST_F_LOG_ALL`, so is the dirty log's
/// bitmap of every region at `log_base`.
fn memory_access_ok(mem: Option<&MemTable>, log_base: u64, features: Features) -> bool {
    let Some(mem) = mem else { return false };
    mem.user_ranges_ok(user_access_ok)
        && (!features.has(VHOST_F_LOG_ALL) || mem.log_ranges_ok(log_base, user_access_ok))
}

/// Device state guarded by the device mutex.
struct Control {
    /// Stopped (and waited for) first when the state is dropped, so no work
    /// runs on the rest while it is torn down.
    worker: Option<Worker<VhostNet>>,
    waker: Option<Arc<Waker>>,
    /// The device's number (`dev<N>` in debugfs, `dev=` in tracepoints).
    id: u32,
    owner: Ownership<MmGrab>,
    /// The owner's process id, for operators.
    owner_pid: Option<i32>,
    features: Features,
    backend_features: u64,
    mem: Option<KBox<MemTable>>,
    /// While `VIRTIO_F_ACCESS_PLATFORM` is acked: guest addresses are
    /// translated through it.
    iotlb: Option<DeviceIotlb>,
    misses: QueueMisses,
    log_ctx: Option<EventFdCtx>,
    vqs: [VirtQueue; NUM_VQS as usize],
    diag: Diagnostics,
}

impl Control {
    fn new(id: u32) -> Self {
        Self {
            worker: None,
            waker: None,
            id,
            owner: Ownership::new(),
            owner_pid: None,
            features: Features::default(),
            backend_features: 0,
            mem: None,
            iotlb: None,
            misses: Misses::new(),
            log_ctx: None,
            vqs: [VirtQueue::new(), VirtQueue::new()],
            diag: Diagnostics::new(),
        }
    }

    /// The owner check, for the calling task.
    fn check_owner(&self) -> Result {
        match MmGrab::current() {
            Some(caller) => self.owner.check(&caller).map_err(Error::from),
            None => Err(EPERM),
        }
    }

    fn event_idx(&self) -> bool {
        self.features.has(VIRTIO_RING_F_EVENT_IDX)
    }

    fn vq(&mut self, index: u32) -> Result<&mut VirtQueue> {
        self.vqs
            .get_mut(index as usize)
            .ok_or(Error::from(Errno::NoBufs))
    }

    /// Whether every queue in use could log all memory with `features`.
    fn log_access_ok(&self, features: Features) -> bool {
        let iotlb = self.iotlb.is_some();
        self.vqs.iter().all(|vq| {
            !vq.attached() || vq.log_access_ok(self.mem.as_deref(), vq.log_base, features, iotlb)
        })
    }

    /// `RVHOST_GET_VRING_STATS` (rvhost's own): the owner reads a queue's
    /// counters. `EPERM`, `EFAULT`, `ENOBUFS` as for the vring ioctls;
    /// `EINVAL` for non-zero padding (kept for future use, as the uapi says).
    fn get_stats(&mut self, arg: UserAddr) -> Result {
        self.check_owner()?;
        let req: bindings::rvhost_vring_stats = arg.read()?;
        if req.padding != 0 {
            return Err(EINVAL);
        }
        let kicks = self
            .waker
            .as_ref()
            .map_or(0, |w| w.kicks(req.index as usize));
        let vq = self.vq(req.index)?;
        let s = &vq.stats;
        arg.write(&bindings::rvhost_vring_stats {
            index: req.index,
            padding: 0,
            kicks,
            calls: s.calls,
            calls_suppressed: s.calls_suppressed,
            packets: s.packets,
            bytes: s.bytes,
            rounds: s.rounds,
            drops: s.drops,
            errors: s.errors,
        })
    }

    /// `RVHOST_SET_VRING_COALESCE` (rvhost's own): the owner sets a queue's
    /// interrupt coalescing. Errnos as for the statistics; `EINVAL` for a
    /// hold longer than the uapi allows or an unknown flag. A signal held
    /// under the old parameters goes out now.
    fn set_coalesce(&mut self, arg: UserAddr) -> Result {
        self.check_owner()?;
        let req: bindings::rvhost_vring_coalesce = arg.read()?;
        let vq = self.vq(req.index)?;
        let params = CoalesceParams::new(req.max_packets, req.max_usecs, req.flags)
            .map_err(|_: CoalesceError| EINVAL)?;
        if vq.coalesce.set(params, datapath::now_ns()) {
            vq.signal_call();
        }
        Ok(())
    }

    /// `RVHOST_GET_VRING_COALESCE`: what the queue's coalescing is set to.
    fn get_coalesce(&mut self, arg: UserAddr) -> Result {
        self.check_owner()?;
        let req: bindings::rvhost_vring_coalesce = arg.read()?;
        let params = self.vq(req.index)?.coalesce.params();
        arg.write(&bindings::rvhost_vring_coalesce {
            index: req.index,
            max_packets: params.max_packets(),
            max_usecs: params.max_usecs(),
            flags: params.flags(),
        })
    }

    /// Whether `waker` is the current worker's. A worker on its way out
    /// after an owner reset must not work on the new owner's state, even
    /// when the same process is the new owner.
    fn is_current(&self, waker: &Waker) -> bool {
        self.waker
            .as_deref()
            .is_some_and(|current| core::ptr::eq(current, waker))
    }

    /// A coalescing timer of `waker` (the current worker's) expired: the
    /// signal it held goes out.
    fn coalesce_expired(&mut self, queue: usize, waker: &Waker) {
        if let (true, Some(vq)) = (self.is_current(waker), self.vqs.get_mut(queue)) {
            if vq.coalesce.timer_expired(datapath::now_ns()) {
                vq.signal_call();
            }
        }
    }

    /// `VHOST_SET_MEM_TABLE`.
    fn set_mem_table(&mut self, arg: UserAddr) -> Result {
        let header: bindings::vhost_memory = arg.read()?;
        let count = MemTable::check_header(header.nregions, header.padding, MAX_REGIONS)
            .map_err(Error::from)?;
        let region_size = core::mem::size_of::<bindings::vhost_memory_region>();
        let mut reader = arg.reader_at(
            core::mem::size_of::<bindings::vhost_memory>(),
            count * region_size,
        );
        let mut table = KBox::new(MemTable::new(), GFP_KERNEL)?;
        for _ in 0..count {
            let r: bindings::vhost_memory_region = reader.read()?;
            table
                .push(Region {
                    guest_phys_addr: r.guest_phys_addr,
                    memory_size: r.memory_size,
                    userspace_addr: r.userspace_addr,
                })
                .map_err(Error::from)?;
        }
        // Memory of rings in use must stay accessible under the new table
        // (the regions, and their dirty log with `VHOST_F_LOG_ALL`; not the
        // used ring's log, as upstream's `memory_access_ok`).
        for vq in &self.vqs {
            if vq.attached() && !memory_access_ok(Some(&table), vq.log_base, self.features) {
                return Err(EFAULT);
            }
        }
        self.mem = Some(table);
        Ok(())
    }

    /// `VHOST_SET_LOG_BASE`: stored per queue; a queue in use keeps its old
    /// base and the call fails with `EFAULT` if the new bitmap is not accessible.
    fn set_log_base(&mut self, arg: UserAddr) -> Result {
        let base: u64 = arg.read()?;
        let iotlb = self.iotlb.is_some();
        let mut result = Ok(());
        for vq in &mut self.vqs {
            if vq.attached() && !vq.log_access_ok(self.mem.as_deref(), base, self.features, iotlb) {
                result = Err(EFAULT);
            } else {
                vq.log_base = base;
            }
        }
        result
    }

    /// `VHOST_SET_LOG_FD`.
    fn set_log_fd(&mut self, arg: UserAddr) -> Result {
        let fd: i32 = arg.read()?;
        self.log_ctx = bind(fd, EventFdCtx::from_fd)?;
        Ok(())
    }

    /// The per-ring requests (and unknown ones), after the owner check.
    fn vring_request(&mut self, req: Option<VhostIoctl>, arg: UserAddr) -> Result {
        let index: u32 = arg.read()?;
        let event_idx = self.event_idx();
        let iotlb = self.iotlb.is_some();
        let waker = self.waker.clone();
        let vq = self.vq(index)?;
        match req {
            Some(VhostIoctl::SetVringNum) => {
                if vq.attached() {
                    return Err(EBUSY);
                }
                let s: bindings::vhost_vring_state = arg.read()?;
                vq.config.set_num(s.num, false).map_err(Error::from)
            }
            Some(VhostIoctl::SetVringAddr) => {
                let a: bindings::vhost_vring_addr = arg.read()?;
                let addr = VringAddr {
                    flags: a.flags,
                    desc_user_addr: a.desc_user_addr,
                    used_user_addr: a.used_user_addr,
                    avail_user_addr: a.avail_user_addr,
                    log_guest_addr: a.log_guest_addr,
                };
                let attached = vq.attached();
                // With an IOTLB the addresses are I/O virtual (upstream's
                // `vq_access_ok` and `vq_log_used_access_ok` pass them).
                let ring_ok = |addr, size| iotlb || user_access_ok(addr, size);
                vq.config
                    .set_addr(addr, attached, event_idx, vq.log_base, ring_ok)
                    .map_err(Error::from)
            }
            Some(VhostIoctl::SetVringBase) => {
                if vq.attached() {
                    return Err(EBUSY);
                }
                let s: bindings::vhost_vring_state = arg.read()?;
                vq.config.set_base(s.num, false).map_err(Error::from)
            }
            Some(VhostIoctl::GetVringBase) => arg.write(&bindings::vhost_vring_state {
                index,
                num: vq.config.last_avail_idx.into(),
            }),
            Some(VhostIoctl::SetVringKick) => {
                let f: bindings::vhost_vring_file = arg.read()?;
                // The new kick is polled before the old one goes: on any
                // error the queue keeps the old one.
                let kick = match (bind(f.fd, EventFdFile::from_fd)?, waker) {
                    (Some(file), Some(waker)) => Some(
                        FilePoll::new(
                            &file,
                            waker,
                            kick_bit(index as usize),
                            Some(index as usize),
                            Interest::Readable,
                        )?
                        .started(),
                    ),
                    _ => None,
                };
                vq.kick = kick;
                Ok(())
            }
            Some(VhostIoctl::SetVringCall) => {
                let f: bindings::vhost_vring_file = arg.read()?;
                vq.call = bind(f.fd, EventFdCtx::from_fd)?;
                Ok(())
            }
            Some(VhostIoctl::SetVringErr) => {
                let f: bindings::vhost_vring_file = arg.read()?;
                vq.err = bind(f.fd, EventFdCtx::from_fd)?;
                Ok(())
            }
            Some(VhostIoctl::SetVringBusyloopTimeout) => {
                let s: bindings::vhost_vring_state = arg.read()?;
                vq.config.busyloop_timeout = s.num;
                Ok(())
            }
            Some(VhostIoctl::GetVringBusyloopTimeout) => arg.write(&bindings::vhost_vring_state {
                index,
                num: vq.config.busyloop_timeout,
            }),
            _ => Err(ENOTTY),
        }
    }

    /// `VHOST_NET_SET_BACKEND`, after the argument was read. Everything the
    /// new backend needs (its poll, a tap's TX batch or RX ring view, the
    /// ring's used index)
    /// is got before anything changes: on any error the queue keeps its old
    /// backend, still polled.
    fn set_backend(&mut self, index: u32, fd: i32) -> Result {
        self.check_owner()?;
        let features = self.features;
        let mem = self.mem.as_deref();
        let space = Space::of(self.iotlb.as_ref(), mem);
        let vq = self
            .vqs
            .get_mut(index as usize)
            .ok_or(Error::from(Errno::NoBufs))?;
        if !vq.access_ok(mem, features, self.iotlb.is_some()) {
            return Err(EFAULT);
        }
        let mut socket = bind(fd, BackendSocket::from_fd)?;
        let unchanged = match (&socket, &vq.backend) {
            (Some(new), Some(old)) => new.same_socket(old),
            (None, None) => true,
            _ => false,
        };
        if unchanged {
            return Ok(());
        }
        let queue = index as usize;
        if let (Some(sock), RX) = (socket.as_mut(), queue) {
            sock.receive_in_batches()?;
        }
        let (poll, batch, used_idx) = match (&socket, &self.waker) {
            (Some(sock), Some(waker)) => {
                let interest = if queue == RX {
                    Interest::Readable
                } else {
                    Interest::Writable
                };
                let poll = FilePoll::new(sock, waker.clone(), kick_bit(queue), None, interest)?;
                let batch = match queue == TX && sock.is_tap() {
                    true => Some(TapBatch::new()?),
                    false => None,
                };
                let log = vq.dirty_log(features, self.log_ctx.as_ref());
                // `access_ok` above found a memory table.
                let space = space.ok_or(EFAULT)?;
                let ring = match space.used_header(&vq.config) {
                    Ok(ring) => ring,
                    Err(fault) => {
                        if let RingFault::IotlbMiss { iova, access } = fault {
                            self.misses.record(queue, iova, access);
                        }
                        return Err(EFAULT);
                    }
                };
                let event_idx = features.has(VIRTIO_RING_F_EVENT_IDX);
                let used_idx = Rings::new(&ring, vq.config.num, event_idx)
                    .logged(log, space.log_by_user_addr())
                    .init_access()
                    .map_err(|_| EFAULT)?;
                (Some(poll), batch, used_idx)
            }
            _ => (None, None, vq.last_used_idx),
        };
        // Commit. The old poll stops before the old socket goes.
        vq.backend_poll = poll;
        vq.tap_batch = batch;
        vq.backend = socket;
        vq.last_used_idx = used_idx;
        vq.calls.reset();
        // What the old backend's rounds held back is not forgotten.
        if vq.coalesce.reset(datapath::now_ns()) {
            vq.signal_call();
        }
        if let (Some(poll), RX) = (vq.backend_poll.as_mut(), queue) {
            poll.start();
        }
        // Buffers may already be waiting.
        if let (true, Some(waker)) = (vq.attached(), &self.waker) {
            waker.wake(kick_bit(queue));
        }
        Ok(())
    }
}

/// Binds what `fd` names, or nothing for `VHOST_FILE_UNBIND` (-1).
fn bind<T>(fd: i32, get: impl FnOnce(i32) -> Result<T>) -> Result<Option<T>> {
    if fd == UNBIND {
        Ok(None)
    } else {
        get(fd).map(Some)
    }
}

/// One open `/dev/rvhost-net`: a vhost-net device.
#[pin_data]
pub(crate) struct VhostNet {
    #[pin]
    control: Mutex<Control>,
    /// Blocking `read()`s wait here for an IOTLB miss (with the control lock).
    #[pin]
    miss_readable: CondVar,
    /// `poll()` callers wait here for an IOTLB miss.
    #[pin]
    poll_queue: PollQueue,
    /// `rvhost_net/dev<N>/` in debugfs, removed before the device goes.
    #[pin]
    debugfs: SpinLock<Option<debugfs::Dir<VhostNet>>>,
}

/// The number of the next device opened.
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

impl MiscDevice for VhostNet {
    fn open() -> Result<Arc<Self>> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let dev = Arc::pin_init(
            pin_init!(Self {
                control <- new_mutex!(Control::new(id), "rvhost_net::control"),
                miss_readable <- new_condvar!("rvhost_net::miss_readable"),
                poll_queue <- PollQueue::new(),
                debugfs <- new_spinlock!(None, "rvhost_net::debugfs"),
            }),
            GFP_KERNEL,
        )?;
        let mut name = [0u8; 16];
        let dir = debugfs::name(&mut name, format_args!("dev{id}"))
            .and_then(|name| debugfs::Dir::create(name, dev.clone()));
        *dev.debugfs.lock() = dir;
        Ok(dev)
    }

    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize> {
        Self::dispatch(this, cmd, UserAddr::new(arg)).map(|()| 0)
    }

    fn read(this: ArcBorrow<'_, Self>, buf: UserAddr, len: usize, nonblock: bool) -> Result<usize> {
        this.read_miss(buf, len, nonblock)
    }

    fn write(this: ArcBorrow<'_, Self>, buf: UserAddr, len: usize) -> Result<usize> {
        this.write_message(buf, len)
    }

    fn poll(this: ArcBorrow<'_, Self>, table: &PollTable) -> u32 {
        this.poll_misses(table)
    }

    fn release(this: Arc<Self>) {
        // Its readers finish before the directory goes (outside the lock).
        let dir = this.debugfs.lock().take();
        drop(dir);
        // The worker holds a reference to the device: stop it (outside the
        // lock, which it may be waiting for) so the device can go.
        let id = this.control.lock().id;
        let old = core::mem::replace(&mut *this.control.lock(), Control::new(id));
        drop(old);
        this.miss_readable.notify_all();
    }
}

impl WorkerBody for VhostNet {
    type Scratch = Scratch;

    fn work(this: ArcBorrow<'_, Self>, waker: &Waker, bits: u32, scratch: &mut Scratch) {
        this.with_control(|control| {
            if bits & kick_bit(TX) != 0 {
                control.handle_tx(waker, scratch);
            }
            if bits & kick_bit(RX) != 0 {
                control.handle_rx(waker, scratch);
            }
            for queue in [RX, TX] {
                if bits & timer_bit(queue) != 0 {
                    control.coalesce_expired(queue, waker);
                }
            }
        });
    }
}

impl VhostNet {
    fn dispatch(this: ArcBorrow<'_, Self>, cmd: u32, arg: UserAddr) -> Result {
        match cmd {
            bindings::RVHOST_IOCTL_GET_VRING_STATS => return this.control.lock().get_stats(arg),
            bindings::RVHOST_IOCTL_SET_VRING_COALESCE => {
                return this.control.lock().set_coalesce(arg)
            }
            bindings::RVHOST_IOCTL_GET_VRING_COALESCE => {
                return this.control.lock().get_coalesce(arg)
            }
            _ => {}
        }
        match VhostIoctl::decode(cmd) {
            Some(req) if req.stage() == Stage::Net => Self::net_request(this, req, arg),
            req => {
                let mut control = this.control.lock();
                control.check_owner()?;
                match req {
                    Some(VhostIoctl::SetMemTable) => control.set_mem_table(arg),
                    Some(VhostIoctl::SetLogBase) => control.set_log_base(arg),
                    Some(VhostIoctl::SetLogFd) => control.set_log_fd(arg),
                    _ => control.vring_request(req, arg),
                }
            }
        }
    }

    fn net_request(this: ArcBorrow<'_, Self>, req: VhostIoctl, arg: UserAddr) -> Result {
        match req {
            VhostIoctl::GetFeatures => arg.write(&features::OFFERED),
            VhostIoctl::SetFeatures => {
                let acked = Features::negotiate(arg.read()?).map_err(Error::from)?;
                // Every ack of ACCESS_PLATFORM starts a new, empty IOTLB,
                // allocated before anything changes; features without it
                // drop the IOTLB.
                let iotlb = match acked.has(VIRTIO_F_ACCESS_PLATFORM) {
                    true => Some(new_iotlb()?),
                    false => None,
                };
                let mut control = this.control.lock();
                // Dirty logging needs a log bitmap covering all memory of the
                // queues in use (upstream's `vhost_log_access_ok`).
                if acked.has(VHOST_F_LOG_ALL) && !control.log_access_ok(acked) {
                    return Err(EFAULT);
                }
                control.features = acked;
                // Switching between guest-physical and I/O virtual
                // addresses forgets the rings' addresses (they meant the
                // other kind); dropping the IOTLB also drops its misses
                // (upstream's `vhost_init_device_iotlb` and
                // `vhost_clear_device_iotlb`).
                let switched = iotlb.is_some() != control.iotlb.is_some();
                if switched {
                    for vq in &mut control.vqs {
                        vq.config.invalidate_addr();
                    }
                }
                let dropped = iotlb.is_none() && control.iotlb.is_some();
                if iotlb.is_some() || dropped {
                    control.iotlb = iotlb;
                }
                if dropped {
                    control.misses.clear();
                    drop(control);
                    // Blocking readers find no IOTLB any more.
                    this.wake_miss_readers();
                }
                Ok(())
            }
            VhostIoctl::GetBackendFeatures => arg.write(&features::BACKEND_OFFERED),
            VhostIoctl::SetBackendFeatures => {
                let acked = features::negotiate_backend(arg.read()?).map_err(Error::from)?;
                this.control.lock().backend_features = acked;
                Ok(())
            }
            VhostIoctl::SetOwner => {
                let caller = MmGrab::current().ok_or(EPERM)?;
                let mut control = this.control.lock();
                if control.owner.is_owned() {
                    return Err(Error::from(Errno::Busy));
                }
                // The worker is created with the owner, as upstream does;
                // all of it before the owner is recorded, so that a failure
                // leaves the device unowned.
                let worker = Worker::spawn(this.into(), Scratch::new()?)?;
                let waker = worker.waker().clone();
                control.owner.set(caller).map_err(Error::from)?;
                control.owner_pid = Some(kernel::current!().group_leader().pid());
                control.worker = Some(worker);
                control.waker = Some(waker);
                Ok(())
            }
            VhostIoctl::ResetOwner => {
                let caller = MmGrab::current().ok_or(EPERM)?;
                let mut control = this.control.lock();
                control.owner.check(&caller).map_err(Error::from)?;
                // Everything goes back to the state of a fresh open but for
                // the memory table, which is empty (upstream's reset installs
                // an empty table; before the first SET_MEM_TABLE there is
                // none); what the old state held (files, eventfds, table,
                // owner) is released once the lock is dropped.
                let empty = KBox::new(MemTable::new(), GFP_KERNEL)?;
                let id = control.id;
                let old = core::mem::replace(&mut *control, Control::new(id));
                control.mem = Some(empty);
                drop(control);
                drop(old);
                // Blocking readers find no IOTLB any more.
                this.miss_readable.notify_all();
                Ok(())
            }
            VhostIoctl::NetSetBackend => {
                let backend: bindings::vhost_vring_file = arg.read()?;
                this.with_control(|control| control.set_backend(backend.index, backend.fd))
            }
            _ => Err(ENOTTY),
        }
    }
}

impl debugfs::Show for VhostNet {
    /// `rvhost_net/dev<N>/state`: one `name: value` per line, names stable
    /// (Documentation/operations.md); queues as `rx.<name>` and `tx.<name>`.
    fn show(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let control = self.control.lock();
        writeln!(out, "owner_pid: {}", control.owner_pid.unwrap_or(0))?;
        writeln!(out, "features: {:#x}", control.features.bits())?;
        writeln!(out, "backend_features: {:#x}", control.backend_features)?;
        let regions = control.mem.as_ref().map_or(0, |m| m.regions().len());
        writeln!(out, "memory_regions: {regions}")?;
        let mappings = control.iotlb.as_ref().map_or(0, |t| t.mappings().len());
        writeln!(out, "iotlb_mappings: {mappings}")?;
        writeln!(out, "iotlb_misses: {}", control.misses.total())?;
        for (index, vq) in control.vqs.iter().enumerate() {
            let q = if index == RX { "rx" } else { "tx" };
            let kicks = control.waker.as_ref().map_or(0, |w| w.kicks(index));
            let backend = match &vq.backend {
                None => "none",
                Some(sock) if sock.is_tap() => "tap",
                Some(_) => "packet",
            };
            let s = &vq.stats;
            writeln!(out, "{q}.backend: {backend}")?;
            writeln!(out, "{q}.ring_size: {}", vq.config.num)?;
            writeln!(out, "{q}.last_avail_idx: {}", vq.config.last_avail_idx)?;
            writeln!(out, "{q}.last_used_idx: {}", vq.last_used_idx)?;
            writeln!(out, "{q}.kicks: {kicks}")?;
            writeln!(out, "{q}.interrupts: {}", s.calls)?;
            writeln!(out, "{q}.interrupts_suppressed: {}", s.calls_suppressed)?;
            writeln!(out, "{q}.interrupts_held: {}", s.calls_held)?;
            let coalesce = vq.coalesce.params();
            writeln!(out, "{q}.coalesce_max_packets: {}", coalesce.max_packets())?;
            writeln!(out, "{q}.coalesce_max_usecs: {}", coalesce.max_usecs())?;
            writeln!(out, "{q}.coalesce_flags: {:#x}", coalesce.flags())?;
            writeln!(out, "{q}.packets: {}", s.packets)?;
            writeln!(out, "{q}.bytes: {}", s.bytes)?;
            writeln!(out, "{q}.rounds: {}", s.rounds)?;
            writeln!(out, "{q}.drops: {}", s.drops)?;
            writeln!(out, "{q}.errors: {}", s.errors)?;
        }
        Ok(())
    }
}
