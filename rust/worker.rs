// SPDX-License-Identifier: GPL-2.0

//! The device's worker: a kernel thread that sleeps until woken with
//! pending-work bits and is stopped (and waited for) on teardown; and the poll
//! hook that turns a kick eventfd's wake-up into pending work.

use crate::bindings;
use crate::eventfd::EventFdFile;
use core::{
    ffi::c_void,
    ptr::NonNull,
    sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering},
};
use kernel::{
    error::from_err_ptr,
    ffi::c_int,
    prelude::*,
    str::CStr,
    sync::{Arc, ArcBorrow},
};

/// Wakes the worker with pending-work bits; usable from atomic context.
///
/// # Invariants
///
/// `task` is NULL or a valid task on which this value holds a reference.
pub(crate) struct Waker {
    pending: AtomicU32,
    task: AtomicPtr<bindings::task_struct>,
    /// Kick eventfd signals seen, per queue.
    kicks: [AtomicU64; 2],
}

// SAFETY: the task reference may be used and dropped from any thread.
unsafe impl Send for Waker {}
// SAFETY: `wake` only uses atomics and `wake_up_process`, both thread-safe.
unsafe impl Sync for Waker {}

impl Waker {
    pub(crate) fn new() -> Self {
        // INVARIANT: no task yet.
        Self {
            pending: AtomicU32::new(0),
            task: AtomicPtr::new(core::ptr::null_mut()),
            kicks: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// Marks `bits` pending and wakes the worker.
    pub(crate) fn wake(&self, bits: u32) {
        self.pending.fetch_or(bits, Ordering::AcqRel);
        let task = self.task.load(Ordering::Acquire);
        if !task.is_null() {
            // SAFETY: a non-NULL `task` is valid (type invariant); waking is
            // allowed in any context.
            unsafe { bindings::wake_up_process(task) };
        }
    }

    /// Kick eventfd signals seen on queue `index`.
    pub(crate) fn kicks(&self, index: usize) -> u64 {
        self.kicks
            .get(index)
            .map_or(0, |k| k.load(Ordering::Relaxed))
    }

    /// Worker side, between rounds: takes work queued meanwhile without
    /// sleeping; `None` if there is none or the thread is asked to stop.
    pub(crate) fn take_pending(&self) -> Option<u32> {
        // SAFETY: called from a kthread (the worker).
        if unsafe { bindings::kthread_should_stop() } {
            return None;
        }
        match self.pending.swap(0, Ordering::AcqRel) {
            0 => None,
            bits => Some(bits),
        }
    }

    /// Worker side: sleeps until some bits are pending and takes them, or
    /// returns `None` once the thread is asked to stop.
    pub(crate) fn wait(&self) -> Option<u32> {
        loop {
            // The state is set before the checks, so a `wake` between the checks
            // and `schedule` makes `schedule` return at once (no lost wake-up).
            // SAFETY: sets the calling thread's own state.
            unsafe { bindings::rvhost_set_current_interruptible() };
            // SAFETY: called from a kthread (the worker).
            let stop = unsafe { bindings::kthread_should_stop() };
            let bits = self.pending.swap(0, Ordering::AcqRel);
            if stop || bits != 0 {
                // SAFETY: sets the calling thread's own state.
                unsafe { bindings::rvhost_set_current_running() };
                return if stop { None } else { Some(bits) };
            }
            // SAFETY: process context, no lock held by the worker here.
            unsafe { bindings::schedule() };
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        let task = *self.task.get_mut();
        if !task.is_null() {
            // SAFETY: we hold one reference (type invariant).
            unsafe { bindings::rvhost_put_task(task) };
        }
    }
}

/// What a worker thread runs.
pub(crate) trait WorkerBody: Send + Sync + 'static {
    /// The thread's body; it returns once `waker.wait()` returns `None`.
    fn run(this: ArcBorrow<'_, Self>, waker: &Waker);
}

struct ThreadCtx<T: WorkerBody> {
    target: Arc<T>,
    waker: Arc<Waker>,
}

/// A running worker thread; dropping it stops the thread and waits for it.
///
/// # Invariants
///
/// `task` is the worker kthread, on which this value holds a reference, and
/// `ctx` is the `KBox` the thread reads, freed only after the thread stopped.
pub(crate) struct Worker<T: WorkerBody> {
    task: NonNull<bindings::task_struct>,
    ctx: *mut ThreadCtx<T>,
}

// SAFETY: stopping the thread and freeing its context may happen on any thread.
unsafe impl<T: WorkerBody> Send for Worker<T> {}
// SAFETY: `&Worker` offers nothing.
unsafe impl<T: WorkerBody> Sync for Worker<T> {}

impl<T: WorkerBody> Worker<T> {
    /// Starts a kthread `name` running `T::run(target, waker)`; `waker` then
    /// wakes it.
    pub(crate) fn spawn(target: Arc<T>, waker: Arc<Waker>, name: &CStr) -> Result<Self> {
        let ctx = KBox::new(
            ThreadCtx {
                target,
                waker: waker.clone(),
            },
            GFP_KERNEL,
        )?;
        let ctx = KBox::into_raw(ctx);
        // SAFETY: `thread_fn::<T>` expects exactly a `ThreadCtx<T>`; the thread
        // does not run before `wake_up_process` below.
        let task = from_err_ptr(unsafe {
            bindings::rvhost_kthread_create(Some(Self::thread_fn), ctx.cast(), name.as_char_ptr())
        });
        let task = match task.ok().and_then(NonNull::new) {
            Some(task) => task,
            None => {
                // SAFETY: no thread was created; the box is ours again.
                drop(unsafe { KBox::from_raw(ctx) });
                return Err(ENOMEM);
            }
        };
        // SAFETY: `task` is valid; the waker takes its own reference.
        unsafe { bindings::rvhost_get_task(task.as_ptr()) };
        waker.task.store(task.as_ptr(), Ordering::Release);
        // SAFETY: starts the new kthread.
        unsafe { bindings::wake_up_process(task.as_ptr()) };
        // INVARIANT: `rvhost_kthread_create` took the reference we hold; `ctx` lives until drop.
        Ok(Self { task, ctx })
    }

    /// # Safety
    ///
    /// `data` is the `ThreadCtx<T>` passed by `spawn`, alive until the thread stops.
    unsafe extern "C" fn thread_fn(data: *mut c_void) -> c_int {
        // SAFETY: per the function's contract.
        let ctx = unsafe { &*(data as *const ThreadCtx<T>) };
        T::run(ctx.target.as_arc_borrow(), &ctx.waker);
        0
    }
}

impl<T: WorkerBody> Drop for Worker<T> {
    fn drop(&mut self) {
        // SAFETY: we hold a reference to the kthread (type invariant); this asks
        // it to stop, waits until it has exited and drops our reference.
        unsafe { bindings::kthread_stop_put(self.task.as_ptr()) };
        // SAFETY: the thread has exited, so nobody reads the context any more.
        drop(unsafe { KBox::from_raw(self.ctx) });
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

impl PollableFile for crate::socket::BackendSocket {
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

/// Polls a file (a kick eventfd, a backend socket): each wake-up with the
/// awaited event marks `bits` pending in the worker.
///
/// # Invariants
///
/// `poll` is a started `rvhost_poll` whose callback data is `target`; both
/// live until drop, where polling stops before `target` is freed.
pub(crate) struct FilePoll {
    poll: NonNull<bindings::rvhost_poll>,
    target: *mut PollTarget,
}

// SAFETY: stopping the poll and freeing its target may happen on any thread.
unsafe impl Send for FilePoll {}
// SAFETY: `&FilePoll` offers nothing.
unsafe impl Sync for FilePoll {}

impl FilePoll {
    /// Starts polling `file`; wakes at once if it is already readable. The
    /// poll must be dropped before `file`.
    pub(crate) fn start(
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
        // SAFETY: `file` is a valid file (the caller drops the poll first); `target` outlives the poll
        // (freed in drop after `rvhost_poll_destroy`).
        let poll = unsafe {
            bindings::rvhost_poll_create(
                file.file_ptr(),
                interest == Interest::Writable,
                Some(Self::wake_cb),
                target.cast(),
            )
        };
        match NonNull::new(poll) {
            Some(poll) => Ok(Self { poll, target }),
            None => {
                // SAFETY: the poll was not created; the box is ours again.
                drop(unsafe { KBox::from_raw(target) });
                Err(ENOMEM)
            }
        }
    }

    /// # Safety
    ///
    /// `data` is the `PollTarget` of a started poll.
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
        // SAFETY: the poll is started (type invariant); after this no callback runs.
        unsafe { bindings::rvhost_poll_destroy(self.poll.as_ptr()) };
        // SAFETY: nothing refers to the target any more.
        drop(unsafe { KBox::from_raw(self.target) });
    }
}
