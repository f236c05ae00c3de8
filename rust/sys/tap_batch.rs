// SPDX-License-Identifier: GPL-2.0

//! TX batching into a tap, as upstream vhost-net does when the tap's send
//! buffer is unlimited: frames are copied into page fragments in tun's XDP
//! buffer format (laid out by [`crate::logic::tap_frame`]) and handed to the
//! tap up to [`TAP_BATCH`] at a time in one `sendmsg` (`TUN_MSG_PTR`), so
//! tun builds each skb around its fragment instead of allocating, charging
//! and copying per frame.

use crate::logic::tap_frame::{
    header_fits, TapFrameError, TapFrameGeometry, TapFrameLayout, VIRTIO_NET_HDR_LEN,
};
use crate::sys::bindings;
use crate::sys::socket::{BackendSocket, UserIovs};
use core::{
    ffi::c_void,
    mem::{offset_of, size_of, MaybeUninit},
    ptr::NonNull,
};
use kernel::{alloc::flags, page::PAGE_SIZE, prelude::*};

/// Most frames one batch holds (tun takes any number; upstream sends 64).
pub(crate) const TAP_BATCH: usize = 64;

/// This kernel's constants for the fragment layout.
fn geometry() -> TapFrameGeometry {
    TapFrameGeometry {
        cache_line: CACHE_LINE,
        // SAFETY: FFI call without preconditions.
        skb_pad: unsafe { bindings::rvhost_net_skb_pad() } as usize,
        ip_align: bindings::RVHOST_NET_IP_ALIGN,
        xdp_headroom: bindings::RVHOST_XDP_PACKET_HEADROOM,
        shared_info: bindings::RVHOST_SKB_SHARED_INFO_SIZE,
        page_size: PAGE_SIZE,
    }
}
const CACHE_LINE: usize = bindings::RVHOST_SMP_CACHE_BYTES;
const _: () = assert!(CACHE_LINE.is_power_of_two());
const _: () = assert!(size_of::<bindings::virtio_net_hdr>() == VIRTIO_NET_HDR_LEN);
const _: () = assert!(TAP_BATCH <= u16::MAX as usize);

/// Where `tun_xdp_hdr`'s fields start in a fragment.
const BUFLEN_OFFSET: usize = offset_of!(bindings::tun_xdp_hdr, buflen);
const GSO_OFFSET: usize = offset_of!(bindings::tun_xdp_hdr, gso);

/// What a flush handed to the tap.
pub(crate) struct Flushed {
    pub(crate) frames: u64,
    pub(crate) bytes: u64,
    /// False if the tap refused the batch (the frames were dropped).
    pub(crate) ok: bool,
}

/// The fragments of a batch and tun's descriptions of them.
struct Fragments {
    cache: bindings::page_frag_cache,
    xdp: [bindings::xdp_buff; TAP_BATCH],
}

/// A batch of frames on their way to a tap.
///
/// # Invariants
///
/// `geometry` is this kernel's; `fragments.xdp[..frames]` describe page fragments allocated from
/// `fragments.cache`, each holding one frame and owned by this batch;
/// `bytes` counts what the frames came from.
pub(crate) struct TapBatch {
    geometry: TapFrameGeometry,
    fragments: KBox<Fragments>,
    frames: usize,
    bytes: u64,
}

// SAFETY: the fragments are plain memory owned by this value.
unsafe impl Send for TapBatch {}
// SAFETY: `&TapBatch` offers nothing.
unsafe impl Sync for TapBatch {}

impl TapBatch {
    pub(crate) fn new() -> Result<Self> {
        let fragments = KBox::<Fragments>::new_uninit(GFP_KERNEL | flags::__GFP_ZERO)?;
        // SAFETY: zeroed memory is an empty `page_frag_cache` (what
        // `page_frag_cache_init` sets up) and valid `xdp_buff`s (C structs of
        // integers and pointers).
        let fragments = unsafe { fragments.assume_init() };
        // INVARIANT: an empty batch.
        Ok(Self {
            geometry: geometry(),
            fragments,
            frames: 0,
            bytes: 0,
        })
    }

    /// Whether `sock` takes batches: a tap whose send buffer is unlimited.
    pub(crate) fn usable_with(sock: &BackendSocket) -> bool {
        // SAFETY: the socket is valid while `sock` is.
        sock.is_tap() && unsafe { bindings::rvhost_tap_can_batch(sock.sock_ptr()) }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.frames >= TAP_BATCH
    }

    /// Copies one frame from the user buffers `iovs` (its first `sock_hlen`
    /// bytes the virtio-net header the tap expects, its fields in the
    /// device's byte order) into the batch. `ENOSPC` if the frame does not
    /// fit a page (send it on its own), `ENOBUFS` if the batch is full,
    /// `EFAULT`/`EINVAL` for bad buffers or header, `ENOMEM`.
    // Out of line, as the socket calls: the worker's own frame stays small.
    #[inline(never)]
    pub(crate) fn add(
        &mut self,
        sock: &BackendSocket,
        iovs: &UserIovs,
        sock_hlen: usize,
        little_endian: bool,
    ) -> Result {
        if self.is_full() {
            return Err(Error::from_errno(-(bindings::ENOBUFS as i32)));
        }
        // SAFETY: the socket is valid while `sock` is.
        let xdp = unsafe { bindings::rvhost_sock_has_xdp(sock.sock_ptr()) };
        let layout = self
            .geometry
            .layout(iovs.bytes(), sock_hlen, xdp)
            .map_err(|e| match e {
                TapFrameError::ShortFrame => EINVAL,
                TapFrameError::TooBig => ENOSPC,
            })?;
        let mut header = [0u8; VIRTIO_NET_HDR_LEN];
        iovs.read_at(0, &mut header[..layout.header])?;
        if !header_fits(&header, layout.frame, little_endian) {
            return Err(EINVAL);
        }
        let fragment = self.alloc(layout.buflen)?;
        // SAFETY: a fragment just allocated for us, `buflen` bytes, used by
        // nothing else until it is freed or handed to the tap.
        let buf = unsafe {
            core::slice::from_raw_parts_mut(
                fragment.as_ptr().cast::<MaybeUninit<u8>>(),
                layout.buflen,
            )
        };
        if let Err(e) = fill(buf, &layout, &header, iovs, sock_hlen) {
            // SAFETY: the fragment is ours and nothing refers to it.
            unsafe { bindings::page_frag_free(fragment.as_ptr()) };
            return Err(e);
        }
        let xdp = &mut self.fragments.xdp[self.frames];
        // SAFETY: `xdp` is ours; the fragment holds `headroom` bytes, then
        // the frame, within `buflen` (the layout's invariant).
        unsafe {
            bindings::rvhost_xdp_buff_init(
                xdp,
                fragment.as_ptr(),
                layout.buflen as u32,
                layout.headroom as u32,
                layout.frame as u32,
            )
        };
        // INVARIANT: the batch holds one frame more, in its own fragment.
        self.frames += 1;
        // Counted as the single-send path counts: all bytes handed over.
        self.bytes += iovs.bytes() as u64;
        Ok(())
    }

    /// A fragment of `len` bytes (at most a page) from the batch's cache.
    fn alloc(&mut self, len: usize) -> Result<NonNull<c_void>> {
        // SAFETY: the cache is ours; `len` fits a page (the layout's bound).
        let fragment =
            unsafe { bindings::rvhost_page_frag_alloc(&mut self.fragments.cache, len as u32) };
        NonNull::new(fragment).ok_or(ENOMEM)
    }

    /// Hands the frames to `sock` (the tap they were added for) and empties
    /// the batch.
    // Out of line: its message would otherwise sit in the worker's frame.
    #[inline(never)]
    pub(crate) fn flush(&mut self, sock: &BackendSocket) -> Flushed {
        let flushed = Flushed {
            frames: self.frames as u64,
            bytes: self.bytes,
            ok: true,
        };
        if self.frames == 0 {
            return flushed;
        }
        let xdp = &mut self.fragments.xdp[..self.frames];
        let mut ctl = bindings::tun_msg_ctl {
            type_: bindings::RVHOST_TUN_MSG_PTR,
            num: xdp.len() as u16,
            ptr: xdp.as_mut_ptr().cast(),
        };
        let mut msg = bindings::msghdr::default();
        msg.__bindgen_anon_1.msg_control = core::ptr::from_mut(&mut ctl).cast();
        msg.msg_controllen = size_of::<bindings::tun_msg_ctl>() as _;
        let sock = sock.sock_ptr();
        // SAFETY: a tap's socket, valid while `sock` is, has its operations.
        let sendmsg = unsafe { (*(*sock).ops).sendmsg };
        let ret = match sendmsg {
            // SAFETY: tun's (or tap's) `sendmsg` takes `TUN_MSG_PTR`
            // batches and from here owns the fragments it accepted (all of
            // them unless it fails as a whole).
            Some(sendmsg) => unsafe { sendmsg(sock, &mut msg, 0) },
            None => -(bindings::EOPNOTSUPP as i32),
        };
        if ret < 0 {
            // The tap took none of them (it is going away): free them here.
            for xdp in xdp.iter() {
                // SAFETY: the fragment is still ours and nothing refers to it.
                unsafe { bindings::page_frag_free(xdp.data) };
            }
        }
        // INVARIANT: the fragments went to the tap or were freed.
        (self.frames, self.bytes) = (0, 0);
        Flushed {
            ok: ret >= 0,
            ..flushed
        }
    }
}

/// Writes one frame's fragment: its headroom zeroed (an XDP program on the
/// tap may read it) with `tun_xdp_hdr` at the start, then the frame from the
/// user buffers.
fn fill(
    buf: &mut [MaybeUninit<u8>],
    layout: &TapFrameLayout,
    header: &[u8; VIRTIO_NET_HDR_LEN],
    iovs: &UserIovs,
    sock_hlen: usize,
) -> Result {
    let (headroom, rest) = buf.split_at_mut(layout.headroom);
    headroom.fill(MaybeUninit::new(0));
    let buflen = (layout.buflen as i32).to_ne_bytes();
    write_bytes(headroom, BUFLEN_OFFSET, &buflen)?;
    write_bytes(headroom, GSO_OFFSET, header)?;
    let frame = rest.get_mut(..layout.frame).ok_or(EINVAL)?;
    iovs.read_uninit_at(sock_hlen, frame)
}

/// Copies `bytes` into `buf` at `offset`.
fn write_bytes(buf: &mut [MaybeUninit<u8>], offset: usize, bytes: &[u8]) -> Result {
    let dst = buf.get_mut(offset..offset + bytes.len()).ok_or(EINVAL)?;
    for (d, s) in dst.iter_mut().zip(bytes) {
        *d = MaybeUninit::new(*s);
    }
    Ok(())
}

impl Drop for TapBatch {
    fn drop(&mut self) {
        // SAFETY: the cache is ours; batches are flushed before a round ends,
        // so no fragment of it is still held here.
        unsafe { bindings::page_frag_cache_drain(&mut self.fragments.cache) };
    }
}
