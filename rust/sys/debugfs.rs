// SPDX-License-Identifier: GPL-2.0

//! debugfs directories whose files show what a Rust object writes into them
//! on every read (`/sys/kernel/debug/rvhost_net/dev<N>/state`): readable by
//! an operator (root) without being the device's owner.
//!
//! C header: [`include/linux/debugfs.h`](srctree/include/linux/debugfs.h)

use crate::sys::bindings;
use core::{
    ffi::{c_int, c_void},
    fmt,
    ptr::NonNull,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{prelude::*, str::CStr, sync::Arc};

/// What a debugfs file shows.
pub(crate) trait Show: Sync {
    /// Writes the file's contents.
    fn show(&self, out: &mut dyn fmt::Write) -> fmt::Result;
}

/// The module's directory, `rvhost_net/` (NULL without debugfs).
static ROOT: AtomicPtr<bindings::dentry> = AtomicPtr::new(core::ptr::null_mut());

/// The module's directory; removed (with everything under it) on drop.
pub(crate) struct Root;

impl Root {
    pub(crate) fn create(name: &CStr) -> Self {
        // SAFETY: a valid C string; a NULL parent means debugfs' top.
        let dir =
            unsafe { bindings::rvhost_debugfs_dir(name.as_char_ptr(), core::ptr::null_mut()) };
        ROOT.store(dir, Ordering::Release);
        Self
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let dir = ROOT.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !dir.is_null() {
            // SAFETY: our directory; removing it waits for readers.
            unsafe { bindings::rvhost_debugfs_remove(dir) };
        }
    }
}

/// What a file's C `data` points to: the object and how to show it.
struct Entry {
    target: *const c_void,
    show: unsafe fn(*const c_void, &mut dyn fmt::Write) -> fmt::Result,
}

/// Shows a `T` through a type-erased pointer.
///
/// # Safety
///
/// `target` points to a live `T`.
unsafe fn show_as<T: Show>(target: *const c_void, out: &mut dyn fmt::Write) -> fmt::Result {
    // SAFETY: per the function's contract.
    let target = unsafe { &*(target as *const T) };
    target.show(out)
}

/// A directory under the module's one, with one file `state` showing a
/// target object, which it keeps alive; removed on drop.
///
/// # Invariants
///
/// `dir` is a debugfs directory we created whose file's data is `entry`,
/// whose `target` is `_target`'s object.
pub(crate) struct Dir<T: Show> {
    dir: NonNull<bindings::dentry>,
    /// The file's data (read by the C side only).
    _entry: KBox<Entry>,
    _target: Arc<T>,
}

// SAFETY: removing a debugfs directory may happen on any thread; the target
// is `Send + Sync` (`Arc<T>` with `T: Show`, which is `Sync`).
unsafe impl<T: Show + Send> Send for Dir<T> {}
// SAFETY: `&Dir` offers nothing.
unsafe impl<T: Show> Sync for Dir<T> {}

impl<T: Show> Dir<T> {
    /// `rvhost_net/<name>/state` showing `target`; `None` without debugfs
    /// or memory (the device works without it).
    pub(crate) fn create(name: &CStr, target: Arc<T>) -> Option<Self> {
        let root = ROOT.load(Ordering::Acquire);
        if root.is_null() {
            return None;
        }
        let entry = KBox::new(
            Entry {
                target: (&*target as *const T).cast(),
                show: show_as::<T>,
            },
            GFP_KERNEL,
        )
        .ok()?;
        // SAFETY: a valid C string and parent directory.
        let dir = NonNull::new(unsafe { bindings::rvhost_debugfs_dir(name.as_char_ptr(), root) })?;
        let data = (&*entry as *const Entry).cast_mut().cast();
        // SAFETY: a valid name and directory; `entry` and the target live
        // until the directory is removed (in drop).
        let file =
            unsafe { bindings::rvhost_debugfs_file(c"state".as_ptr().cast(), dir.as_ptr(), data) };
        if file.is_null() {
            // SAFETY: the directory we just created.
            unsafe { bindings::rvhost_debugfs_remove(dir.as_ptr()) };
            return None;
        }
        // INVARIANT: our directory and entry, for `target`.
        Some(Self {
            dir,
            _entry: entry,
            _target: target,
        })
    }
}

impl<T: Show> Drop for Dir<T> {
    fn drop(&mut self) {
        // SAFETY: our directory (type invariant); this waits for readers, so
        // nothing uses the entry or the target through it afterwards.
        unsafe { bindings::rvhost_debugfs_remove(self.dir.as_ptr()) };
    }
}

/// Formats a file or directory name into `buf`, NUL-terminated; `None` if
/// it does not fit.
pub(crate) fn name<'a>(buf: &'a mut [u8], args: fmt::Arguments<'_>) -> Option<&'a CStr> {
    struct Into<'b> {
        buf: &'b mut [u8],
        len: usize,
    }
    impl fmt::Write for Into<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.len + s.len();
            // Room for the NUL after it.
            if end >= self.buf.len() {
                return Err(fmt::Error);
            }
            self.buf[self.len..end].copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut into = Into { buf, len: 0 };
    fmt::write(&mut into, args).ok()?;
    let len = into.len;
    buf[len] = 0;
    CStr::from_bytes_with_nul(&buf[..=len]).ok()
}

/// A `fmt::Write` into a seq_file.
struct SeqWriter(*mut bindings::seq_file);

impl fmt::Write for SeqWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: the seq_file of the read in progress; `s` is valid for its length.
        unsafe { bindings::rvhost_seq_write(self.0, s.as_ptr().cast(), s.len()) };
        Ok(())
    }
}

/// The `show` of every file (called by `single_open`'s reads).
///
/// # Safety
///
/// `m` is the seq_file of a read; `data` is the `Entry` of a file of a live
/// `Dir` (whose removal waits for this call to return).
#[no_mangle]
unsafe extern "C" fn rvhost_debugfs_show(m: *mut bindings::seq_file, data: *mut c_void) -> c_int {
    // SAFETY: per the function's contract.
    let entry = unsafe { &*(data as *const Entry) };
    // SAFETY: the target outlives the directory (type invariant of `Dir`).
    match unsafe { (entry.show)(entry.target, &mut SeqWriter(m)) } {
        Ok(()) => 0,
        Err(_) => -(bindings::EINVAL as c_int),
    }
}
