// SPDX-License-Identifier: GPL-2.0

//! Misc character devices whose file operations are safe Rust.
//!
//! C header: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h)
//!
//! A driver implements [`MiscDevice`]; [`Registration`] registers a device node
//! whose `open` creates the driver's per-file state (an [`Arc`]), whose `ioctl`
//! borrows it and whose `release` gives it back.

use crate::sys::bindings;
use crate::sys::poll_queue::PollTable;
use crate::user_addr::UserAddr;
use core::{marker::PhantomData, mem::MaybeUninit, ptr::addr_of_mut};
use kernel::{
    error::{from_result, to_result},
    ffi::{c_char, c_int, c_long, c_uint, c_ulong},
    init::pin_init_from_closure,
    prelude::*,
    str::CStr,
    sync::{Arc, ArcBorrow},
    types::{ForeignOwnable, Opaque},
    ThisModule,
};

/// The file operations of a misc device.
pub(crate) trait MiscDevice: Sized + Send + Sync + 'static {
    /// `open(2)`: the returned state lives as long as the open file.
    fn open() -> Result<Arc<Self>>;

    /// `ioctl(2)`; `arg` is the raw argument (a user address for most commands).
    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize>;

    /// The last `close(2)` of the file.
    fn release(this: Arc<Self>) {
        drop(this);
    }

    /// `read(2)` of `len` bytes into the user buffer at `buf`; `nonblock`
    /// for a file opened (or set) `O_NONBLOCK`. Returns the bytes read.
    fn read(this: ArcBorrow<'_, Self>, buf: UserAddr, len: usize, nonblock: bool) -> Result<usize>;

    /// `write(2)` of `len` bytes from the user buffer at `buf`. Returns the
    /// bytes taken.
    fn write(this: ArcBorrow<'_, Self>, buf: UserAddr, len: usize) -> Result<usize>;

    /// `poll(2)`: registers the caller on the file's wait queues through
    /// `table` and returns the events ready now (`EPOLL*` bits).
    fn poll(this: ArcBorrow<'_, Self>, table: &PollTable) -> u32;
}

/// The C structures the misc core keeps pointers to; they live side by side in
/// the pinned registration.
#[repr(C)]
struct RawMisc {
    misc: bindings::miscdevice,
    fops: bindings::file_operations,
}

/// A registered misc device node.
///
/// # Invariants
///
/// From the end of initialisation until drop, `raw.misc` is registered with the
/// misc core, its `fops` points to `raw.fops`, and `raw.fops` holds the entry
/// points of `T` with `owner` set to the registering module (so the module
/// cannot be unloaded while a file is open).
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T: MiscDevice> {
    #[pin]
    raw: Opaque<RawMisc>,
    _device: PhantomData<T>,
}

// SAFETY: The registration is only touched by the misc core (under its own
// lock) and by `drop`; it may move between threads.
unsafe impl<T: MiscDevice> Send for Registration<T> {}
// SAFETY: `&Registration` gives no access to the C structures.
unsafe impl<T: MiscDevice> Sync for Registration<T> {}

impl<T: MiscDevice> Registration<T> {
    /// Registers `/dev/<name>` with a dynamic minor.
    pub(crate) fn register(
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> impl PinInit<Self, Error> {
        let init = move |slot: *mut Self| {
            // SAFETY: `slot` is valid for writes (guaranteed by `pin_init_from_closure`).
            let raw = Opaque::raw_get(unsafe { addr_of_mut!((*slot).raw) });
            // SAFETY: `raw` points into `slot`, valid for writes and pinned.
            let (misc, fops) = unsafe { (addr_of_mut!((*raw).misc), addr_of_mut!((*raw).fops)) };
            // SAFETY: both C structs are plain data for which all-zero is the
            // "no callback / no value" state; every field we need is set below.
            unsafe {
                fops.write(Self::file_operations(module));
                misc.write(MaybeUninit::zeroed().assume_init());
                (*misc).minor = bindings::RVHOST_MISC_DYNAMIC_MINOR;
                (*misc).name = name.as_char_ptr();
                (*misc).fops = fops;
            }
            // SAFETY: `misc` is fully initialised and pinned for as long as it is
            // registered (until `drop`); on failure nothing stays registered.
            to_result(unsafe { bindings::misc_register(misc) })
        };
        // SAFETY: on `Ok` the closure has initialised every field (`raw` in full,
        // `_device` is zero-sized) and registered the device, which satisfies the
        // type invariant; on `Err` nothing was registered and nothing needs dropping.
        unsafe { pin_init_from_closure(init) }
    }

    fn file_operations(module: &'static ThisModule) -> bindings::file_operations {
        // SAFETY: all-zero is a valid `file_operations` (no callbacks).
        let mut fops: bindings::file_operations = unsafe { MaybeUninit::zeroed().assume_init() };
        fops.owner = module.as_ptr();
        fops.open = Some(Self::open_callback);
        fops.release = Some(Self::release_callback);
        fops.unlocked_ioctl = Some(Self::ioctl_callback);
        fops.compat_ioctl = Some(Self::compat_ioctl_callback);
        fops.read = Some(Self::read_callback);
        fops.write = Some(Self::write_callback);
        fops.poll = Some(Self::poll_callback);
        fops.llseek = Some(bindings::noop_llseek);
        fops
    }

    /// # Safety
    ///
    /// Called by the VFS with a valid `file` being opened on this device.
    unsafe extern "C" fn open_callback(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> c_int {
        from_result(|| {
            let state = T::open()?;
            // SAFETY: `file` is valid for the duration of the call; `private_data`
            // is ours to set (the misc core put the `miscdevice` there for `open`).
            unsafe { (*file).private_data = state.into_foreign().cast_mut() };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS once, on the last close of a file whose `open_callback` succeeded.
    unsafe extern "C" fn release_callback(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> c_int {
        // SAFETY: `private_data` came from `Arc::into_foreign` in `open_callback`,
        // and this is the last use of it.
        let state = unsafe { Arc::<T>::from_foreign((*file).private_data) };
        T::release(state);
        0
    }

    /// # Safety
    ///
    /// Called by the VFS on a file whose `open_callback` succeeded and which has not been released.
    unsafe extern "C" fn ioctl_callback(
        file: *mut bindings::file,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_long {
        // SAFETY: `private_data` holds the `Arc` from `open_callback`; the file is
        // not released while an ioctl runs, so the borrow cannot outlive it.
        let state = unsafe { Arc::<T>::borrow((*file).private_data) };
        match T::ioctl(state, cmd, arg) {
            Ok(ret) => ret as c_long,
            Err(err) => err.to_errno() as c_long,
        }
    }

    /// # Safety
    ///
    /// Called by the VFS on a file whose `open_callback` succeeded and which
    /// has not been released; `buf` is a user address.
    unsafe extern "C" fn read_callback(
        file: *mut bindings::file,
        buf: *mut c_char,
        len: usize,
        _pos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: `file` is valid for the duration of the call.
        let flags = unsafe { (*file).f_flags };
        // SAFETY: as in `ioctl_callback`.
        let state = unsafe { Arc::<T>::borrow((*file).private_data) };
        let nonblock = flags & bindings::O_NONBLOCK != 0;
        match T::read(state, UserAddr::new(buf as usize), len, nonblock) {
            Ok(n) => n as isize,
            Err(err) => err.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// As for `read_callback`.
    unsafe extern "C" fn write_callback(
        file: *mut bindings::file,
        buf: *const c_char,
        len: usize,
        _pos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: as in `ioctl_callback`.
        let state = unsafe { Arc::<T>::borrow((*file).private_data) };
        match T::write(state, UserAddr::new(buf as usize), len) {
            Ok(n) => n as isize,
            Err(err) => err.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// Called by the VFS on a file whose `open_callback` succeeded and which
    /// has not been released, with the call's `poll_table` (or null).
    unsafe extern "C" fn poll_callback(
        file: *mut bindings::file,
        table: *mut bindings::poll_table_struct,
    ) -> bindings::__poll_t {
        // SAFETY: as in `ioctl_callback`.
        let state = unsafe { Arc::<T>::borrow((*file).private_data) };
        // SAFETY: the arguments of this `poll()` call; dropped before it returns.
        let table = unsafe { PollTable::new(file, table) };
        T::poll(state, &table)
    }

    /// # Safety
    ///
    /// As for `ioctl_callback`; called for 32-bit callers.
    unsafe extern "C" fn compat_ioctl_callback(
        file: *mut bindings::file,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_long {
        // A 32-bit pointer argument is zero-extended (`compat_ptr`).
        // SAFETY: same contract as `ioctl_callback`.
        unsafe { Self::ioctl_callback(file, cmd, arg & 0xffff_ffff) }
    }
}

#[pinned_drop]
impl<T: MiscDevice> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: by the type invariant the device is registered; the pointer is to our own pinned storage.
        unsafe { bindings::misc_deregister(addr_of_mut!((*self.raw.get()).misc)) };
    }
}
