// SPDX-License-Identifier: GPL-2.0

//! rvhost's tracepoints (`rvhost:rvhost_round`, `rvhost:rvhost_notify`,
//! `rvhost:rvhost_ring_error`; defined in `rvhost_trace.h`), for `perf
//! stat`/`perf trace` beside `kvm:*`. Each costs a static-key check when off.

use crate::sys::bindings;
use core::ffi::CStr;

/// A worker round that used buffers ended.
pub(crate) fn round(
    dev: u32,
    queue: usize,
    packets: u32,
    bytes: u64,
    descs: u32,
    used_idx: u16,
    requeued: bool,
) {
    // SAFETY: plain values.
    unsafe {
        bindings::rvhost_trace_round(dev, queue as u32, packets, bytes, descs, used_idx, requeued)
    };
}

/// The device decided whether to interrupt the guest after publishing `used_idx`.
pub(crate) fn notify(dev: u32, queue: usize, used_idx: u16, signalled: bool) {
    // SAFETY: plain values.
    unsafe { bindings::rvhost_trace_notify(dev, queue as u32, used_idx, signalled) };
}

/// A queue stopped on a malformed ring.
pub(crate) fn ring_error(dev: u32, queue: usize, what: &CStr) {
    // SAFETY: a valid C string, copied by the tracepoint.
    unsafe { bindings::rvhost_trace_ring_error(dev, queue as u32, what.as_ptr().cast()) };
}
