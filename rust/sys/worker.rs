// SPDX-License-Identifier: GPL-2.0

//! The device's worker: a `vhost_task` (a thread of the owner, in its address
//! space, cgroups and CPU affinity, as upstream's worker) that runs pending
//! work whenever it is woken and is stopped (and waited for) on teardown; and
//! the poll hook that turns a kick eventfd's wake-up into pending work.

use crate::sys::bindings;
use crate::sys::eventfd::EventFdFile;
use core::{
    ffi::c_void,
    ptr::NonNull,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};
use kernel::{
    error::from_err_ptr,
    fmt,
    prelude::*,
    str::CString,
    sync::{Arc, ArcBorrow},
    types::Opaque,
};

/// Number of the waker's timers (one per queue).
pub(crate) const TIMERS: usize = 2;

/// The pending-work bit a waker's timer `index` sets when it expires.
pub(crate) const fn timer_bit(index: usize) -> u32 {
    1 << (16 + index)
}

/// Wakes the worker with pending-work bits; usable from any context. Its
/// timers wake it later (interrupt coalescing's deadline).
///
/// # Invariants
///
/// `handle` was initialised by `rvhost_worker_init`; the task it holds, if
/// any, is the running `vhost_task` of the [`Worker`] that owns this waker,
/// which takes it back out of the handle before stopping it. `timers[i]`
/// was initialised by `hrtimer_init` with [`Waker::timer_expired::<i>`] as
/// its function; it may run only while the waker is alive (drop cancels it).
#[pin_data(PinnedDrop)]
pub(crate) struct Waker {
    pending: AtomicU32,
    #[pin]
    handle: Opaque<bindings::rvhost_worker>,
    /// Kick eventfd signals seen, per queue.
    kicks: [AtomicU64; 2],
    #[pin]
    timers: [Opaque<bindings::hrtimer>; TIMERS],
}

// SAFETY: the handle is used only through its lock-protected C functions,
// which are safe from any thread.
unsafe impl Send for Waker {}
// SAFETY: `wake` only uses atomics and `rvhost_worker_wake`, both thread-safe.
unsafe impl Sync for Waker {}

impl Waker {
    fn new() -> impl PinInit<Self> {
        // INVARIANT: the handle is initialised, without a task.
        pin_init!(Self {
            pending: AtomicU32::new(0),
            // SAFETY: `rvhost_worker_init` initialises the handle in place.
            handle <- Opaque::ffi_init(|handle| unsafe { bindings::rvhost_worker_init(handle) }),
            kicks: [AtomicU64::new(0), AtomicU64::new(0)],
            timers <- kernel::init::pin_init_array_from_fn(|index| {
                Opaque::ffi_init(move |timer| Self::init_timer(timer, index))
            }),
        })
    }

    /// Sets up timer `index` of the waker in place.
    fn init_timer(timer: *mut bindings::hrtimer, index: usize) {
        let function = match index {
            0 => Self::timer_expired::<0>,
            _ => Self::timer_expired::<1>,
        };
        // SAFETY: `timer` is the waker's pinned, not yet initialised timer.
        unsafe {
            bindings::hrtimer_init(
                timer,
                bindings::CLOCK_MONOTONIC as bindings::clockid_t,
                bindings::hrtimer_mode_HRTIMER_MODE_REL,
            )
        };
        // SAFETY: an initialised timer that is not running; its function is
        // ours to set before it is first started. INVARIANT: `timers[index]`
        // runs `timer_expired::<index>` (`TIMERS` is 2).
        unsafe { (*timer).function = Some(function) };
    }

    /// Starts timer `index` to expire in `ns` nanoseconds (restarts it if it
    /// is running); on expiry the worker is woken with [`timer_bit`].
    pub(crate) fn start_timer(&self, index: usize, ns: u64) {
        let Some(timer) = self.timers.get(index) else {
            return;
        };
        let ns = i64::try_from(ns).unwrap_or(i64::MAX);
        // SAFETY: an initialised timer of this live waker (type invariant);
        // `hrtimer_start` is this call with no slack.
        unsafe {
            bindings::hrtimer_start_range_ns(
                timer.get(),
                ns,
                0,
                bindings::hrtimer_mode_HRTIMER_MODE_REL,
            )
        };
    }

    /// What timer `INDEX` runs when it expires (hard interrupt context):
    /// marks its bit pending and wakes the worker.
    ///
    /// # Safety
    ///
    /// `timer` is `timers[INDEX]` of a live `Waker`.
    unsafe extern "C" fn timer_expired<const INDEX: usize>(
        timer: *mut bindings::hrtimer,
    ) -> bindings::hrtimer_restart {
        let offset = core::mem::offset_of!(Waker, timers)
            + INDEX * core::mem::size_of::<Opaque<bindings::hrtimer>>();
        let waker = timer.cast::<u8>().wrapping_sub(offset).cast::<Waker>();
        // SAFETY: per the function's contract `timer` lies `offset` bytes
        // into a live `Waker` (`Opaque` is `repr(transparent)`), which
        // `waker` therefore points to.
        let waker = unsafe { &*waker };
        waker.wake(timer_bit(INDEX));
        bindings::hrtimer_restart_HRTIMER_NORESTART
    }

    /// Marks `bits` pending and wakes the worker.
    pub(crate) fn wake(&self, bits: u32) {
        self.pending.fetch_or(bits, Ordering::AcqRel);
        // SAFETY: an initialised handle (type invariant); waking is allowed
        // in any context, and does nothing once the task is taken out.
        unsafe { bindings::rvhost_worker_wake(self.handle.get()) };
    }

    /// Kick eventfd signals seen on queue `index`.
    pub(crate) fn kicks(&self, index: usize) -> u64 {
        self.kicks
            .get(index)
            .map_or(0, |k| k.load(Ordering::Relaxed))
    }

    /// Whether work is pending (a kick, a poll, a requeued round): a busy
    /// poll ends so that the worker runs it.
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) != 0
    }

    /// Worker side: takes the pending bits; `None` if there are none.
    fn take_pending(&self) -> Option<u32> {
        match self.pending.swap(0, Ordering::AcqRel) {
            0 => None,
            bits => Some(bits),
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Waker {
    fn drop(self: Pin<&mut Self>) {
        for timer in &self.timers {
            // SAFETY: an initialised timer (type invariant); this waits for a
            // running expiry, and nothing starts the timer again: starting
            // needs a reference to the waker, and this is its last.
            unsafe { bindings::hrtimer_cancel(timer.get()) };
        }
    }
}

/// What a worker runs.
pub(crate) trait WorkerBody: Send + Sync + 'static {
    /// Working space of the worker's own (kept off its stack, allocated
    /// with the worker so that work never allocates it).
    type Scratch: Send + 'static;

    /// Handles the work `bits` (the worker found them pending). May sleep.
    /// `waker` identifies the worker: after an owner reset, a worker on its
    /// way out must not work on the new owner's state.
    fn work(this: ArcBorrow<'_, Self>, waker: &Waker, bits: u32, scratch: &mut Self::Scratch);
}

struct TaskCtx<T: WorkerBody> {
    target: Arc<T>,
    waker: Arc<Waker>,
    scratch: T::Scratch,
}

/// A running worker, the one owner of its task; dropping it stops the task
/// and waits for it.
///
/// # Invariants
///
/// `task` is a started `vhost_task`, also held by `waker`'s handle, running
/// `task_fn::<T>` on `ctx`; `ctx` is the `KBox` the task reads and writes,
/// used by nobody else until the task stopped, then freed.
pub(crate) struct Worker<T: WorkerBody> {
    task: NonNull<bindings::vhost_task>,
    ctx: NonNull<TaskCtx<T>>,
    waker: Arc<Waker>,
}

// SAFETY: stopping the task and freeing its context may happen on any thread.
unsafe impl<T: WorkerBody> Send for Worker<T> {}
// SAFETY: `&Worker` offers only its waker, which is `Sync`.
unsafe impl<T: WorkerBody> Sync for Worker<T> {}

impl<T: WorkerBody> Worker<T> {
    /// Starts a worker (`rvhost-<owner pid>`, a thread of the calling
    /// process) running `T::work` whenever its waker has bits pending.
    pub(crate) fn spawn(target: Arc<T>, scratch: T::Scratch) -> Result<Self> {
        let waker = Arc::pin_init(Waker::new(), GFP_KERNEL)?;
        let name = CString::try_from_fmt(fmt!("rvhost-{}", kernel::current!().pid()))?;
        let ctx = KBox::into_raw(KBox::new(
            TaskCtx {
                target,
                waker: waker.clone(),
                scratch,
            },
            GFP_KERNEL,
        )?);
        // SAFETY: `task_fn::<T>` and `killed` expect exactly a `TaskCtx<T>`,
        // which lives until the task is stopped (in drop); the task does not
        // run before `vhost_task_start`; the name is copied.
        let task = unsafe {
            bindings::vhost_task_create(
                Some(Self::task_fn),
                Some(Self::killed),
                ctx.cast(),
                name.as_char_ptr(),
            )
        };
        let task = match from_err_ptr(task).ok().and_then(NonNull::new) {
            Some(task) => task,
            None => {
                // SAFETY: no task was created; the box is ours again.
                drop(unsafe { KBox::from_raw(ctx) });
                return Err(ENOMEM);
            }
        };
        // SAFETY: an initialised handle of a new waker, whose task this is.
        unsafe { bindings::rvhost_worker_publish(waker.handle.get(), task.as_ptr()) };
        // SAFETY: a created, not yet started task.
        unsafe { bindings::vhost_task_start(task.as_ptr()) };
        // SAFETY: `KBox::into_raw` never returns NULL.
        let ctx = unsafe { NonNull::new_unchecked(ctx) };
        // INVARIANT: a started task, published in the waker; only the task
        // uses `ctx` from here until drop stops it.
        Ok(Self { task, ctx, waker })
    }

    /// The worker's waker.
    pub(crate) fn waker(&self) -> &Arc<Waker> {
        &self.waker
    }

    /// One turn of the task's loop (it runs in `TASK_INTERRUPTIBLE` and
    /// sleeps when this returns false; a wake-up in between makes that sleep
    /// return at once, so none is lost).
    ///
    /// # Safety
    ///
    /// `data` is the `TaskCtx<T>` passed by `spawn`, alive until the task stops.
    unsafe extern "C" fn task_fn(data: *mut c_void) -> bool {
        // SAFETY: per the function's contract; nothing but the task uses the
        // context while it runs (type invariant of `Worker`).
        let ctx = unsafe { &mut *(data as *mut TaskCtx<T>) };
        let Some(bits) = ctx.waker.take_pending() else {
            return false;
        };
        // The work may sleep (locks, socket calls): run as a running task.
        // SAFETY: sets the calling task's own state.
        unsafe { bindings::rvhost_set_current_running() };
        T::work(
            ctx.target.as_arc_borrow(),
            &ctx.waker,
            bits,
            &mut ctx.scratch,
        );
        // A round that ran out of budget requeued itself: let everything else
        // run first (nothing else preempts a kernel thread on PREEMPT_NONE).
        // SAFETY: the task runs in process context and holds no lock here.
        unsafe { bindings::rvhost_cond_resched() };
        true
    }

    /// The owner was killed first: the task ends; work still pending is
    /// dropped with the device (whose owner is gone), as upstream's is.
    ///
    /// # Safety
    ///
    /// As for `task_fn`.
    unsafe extern "C" fn killed(_data: *mut c_void) {}
}

impl<T: WorkerBody> Drop for Worker<T> {
    fn drop(&mut self) {
        // Wakers stop reaching the task before it goes away.
        // SAFETY: the waker's initialised handle (type invariant of `Waker`).
        unsafe { bindings::rvhost_worker_unpublish(self.waker.handle.get()) };
        // SAFETY: our started task (type invariant), no longer reachable
        // through the waker: this stops it, waits until it has exited and
        // frees it.
        unsafe { bindings::vhost_task_stop(self.task.as_ptr()) };
        // SAFETY: the task has exited, so nobody reads the context any more.
        drop(unsafe { KBox::from_raw(self.ctx.as_ptr()) });
    }
}

struct PollTarget {
    waker: Arc<Waker>,
    bits: u32,
    /// Queue whose kicks this poll counts, if it polls a kick eventfd.
    kick_of: Option<usize>,
}

/// A file that can be polled (the kick eventfd, the backend socket).
pub(crate) trait PollableFile {
    /// The `struct file`, valid as long as `self` is.
    fn file_ptr(&self) -> *mut bindings::file;
}

impl PollableFile for EventFdFile {
    fn file_ptr(&self) -> *mut bindings::file {
        self.as_ptr()
    }
}

impl PollableFile for crate::sys::socket::BackendSocket {
    fn file_ptr(&self) -> *mut bindings::file {
        self.file_ptr()
    }
}

/// What a [`FilePoll`] waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// `EPOLLIN`: a kick, a packet to receive.
    Readable,
    /// `EPOLLOUT`: room to send again after `EAGAIN`.
    Writable,
}

/// Polls a file (a kick eventfd, a backend socket): while started, each
/// wake-up with the awaited event marks `bits` pending in the worker. It
/// holds its own reference to the file and is allocated when the file is
/// bound, so that starting and stopping it (in the data path) never fails.
///
/// # Invariants
///
/// `poll` is an `rvhost_poll` created for `target` and owned by this value;
/// `target` lives until drop, where the poll is freed (and so stopped) first.
pub(crate) struct FilePoll {
    poll: NonNull<bindings::rvhost_poll>,
    target: NonNull<PollTarget>,
}

// SAFETY: the poll and its target may be used and freed on any thread.
unsafe impl Send for FilePoll {}
// SAFETY: `&FilePoll` offers nothing.
unsafe impl Sync for FilePoll {}

impl FilePoll {
    /// A poll of `file`, not started.
    pub(crate) fn new(
        file: &impl PollableFile,
        waker: Arc<Waker>,
        bits: u32,
        kick_of: Option<usize>,
        interest: Interest,
    ) -> Result<Self> {
        let target = PollTarget {
            waker,
            bits,
            kick_of,
        };
        let target = KBox::into_raw(KBox::new(target, GFP_KERNEL)?);
        // SAFETY: `file` is valid while `file` is borrowed, and the poll takes
        // its own reference; `target` outlives the poll (freed in drop after it).
        let poll = unsafe {
            bindings::rvhost_poll_new(
                file.file_ptr(),
                interest == Interest::Writable,
                Some(Self::wake_cb),
                target.cast(),
            )
        };
        // SAFETY: `KBox::into_raw` never returns NULL.
        let target = unsafe { NonNull::new_unchecked(target) };
        match NonNull::new(poll) {
            // INVARIANT: a new poll for `target`, ours.
            Some(poll) => Ok(Self { poll, target }),
            None => {
                // SAFETY: no poll was created; the box is ours again.
                drop(unsafe { KBox::from_raw(target.as_ptr()) });
                Err(ENOMEM)
            }
        }
    }

    /// The same poll, started.
    pub(crate) fn started(mut self) -> Self {
        self.start();
        self
    }

    /// Starts waiting for the event (wakes at once if it is there already).
    pub(crate) fn start(&mut self) {
        // SAFETY: our poll (type invariant); `&mut self` serialises start and stop.
        unsafe { bindings::rvhost_poll_start(self.poll.as_ptr()) };
    }

    /// Stops waiting: no wake-up from this poll once this returns.
    pub(crate) fn stop(&mut self) {
        // SAFETY: our poll (type invariant); `&mut self` serialises start and stop.
        unsafe { bindings::rvhost_poll_stop(self.poll.as_ptr()) };
    }

    /// # Safety
    ///
    /// `data` is the `PollTarget` of a live poll.
    unsafe extern "C" fn wake_cb(data: *mut c_void) {
        // SAFETY: per the function's contract.
        let target = unsafe { &*(data as *const PollTarget) };
        if let Some(kick) = target.kick_of.and_then(|q| target.waker.kicks.get(q)) {
            kick.fetch_add(1, Ordering::Relaxed);
        }
        target.waker.wake(target.bits);
    }
}

impl Drop for FilePoll {
    fn drop(&mut self) {
        // SAFETY: our poll (type invariant); after this no callback runs.
        unsafe { bindings::rvhost_poll_free(self.poll.as_ptr()) };
        // SAFETY: nothing refers to the target any more.
        drop(unsafe { KBox::from_raw(self.target.as_ptr()) });
    }
}

/// Whether the worker's busy poll must end now: another task needs the CPU
/// or the worker's process is being killed.
pub(crate) fn busy_poll_must_end() -> bool {
    // SAFETY: reads the calling task's own flags.
    unsafe { bindings::rvhost_busy_poll_must_end() }
}

/// A pause between two looks of a busy poll.
pub(crate) fn cpu_relax() {
    // SAFETY: a CPU hint, no state involved.
    unsafe { bindings::rvhost_cpu_relax() }
}
