// SPDX-License-Identifier: GPL-2.0

//! Backend sockets a vhost-net queue sends to and receives from: a tap's or
//! macvtap's socket (`tun_get_socket`, `tap_get_socket`) or a raw
//! `AF_PACKET` socket.

use crate::sys::bindings;
use crate::sys::tap_rx_ring::TapRxRing;
use core::{ffi::c_void, mem::MaybeUninit, ptr::NonNull};
use kernel::{error::from_err_ptr, prelude::*, uaccess::UserSlice};

/// A backend socket and the file that keeps it alive.
///
/// # Invariants
///
/// `file` is a valid `struct file` on which this value holds one reference, and
/// `sock` is the socket that file provides (valid as long as the file is).
pub(crate) struct BackendSocket {
    file: NonNull<bindings::file>,
    sock: NonNull<bindings::socket>,
    /// A tap's or macvtap's socket (else a raw `AF_PACKET` socket): both
    /// take batches of frames in tun's XDP format.
    tap: bool,
    /// An RX queue's tap: packets taken off its ring in batches.
    rx_ring: Option<KBox<TapRxRing>>,
}

// SAFETY: file references may be released from any thread; sockets are used
// with their own locking.
unsafe impl Send for BackendSocket {}
// SAFETY: as above.
unsafe impl Sync for BackendSocket {}

impl BackendSocket {
    /// Looks `fd` up as upstream vhost-net does: a raw `AF_PACKET` socket
    /// first, then a tap or macvtap device; anything else is `ENOTSOCK`.
    pub(crate) fn from_fd(fd: i32) -> Result<Self> {
        Self::raw_packet(fd)
            .or_else(|| Self::tap(fd))
            .ok_or(Error::from_errno(-(bindings::ENOTSOCK as i32)))
    }

    fn raw_packet(fd: i32) -> Option<Self> {
        let mut err = 0;
        // SAFETY: FFI call; on success it returns a socket whose file holds a
        // new reference, else NULL.
        let sock = NonNull::new(unsafe { bindings::sockfd_lookup(fd, &mut err) })?;
        // SAFETY: `sock` is valid while we hold its file's reference.
        let (file, raw) = unsafe {
            (
                (*sock.as_ptr()).file,
                bindings::rvhost_sock_is_raw_packet(sock.as_ptr()),
            )
        };
        match NonNull::new(file) {
            // INVARIANT: the reference sockfd_lookup took is now ours.
            Some(file) if raw => Some(Self {
                file,
                sock,
                tap: false,
                rx_ring: None,
            }),
            Some(file) => {
                // SAFETY: drop the reference sockfd_lookup took (sockfd_put).
                unsafe { bindings::fput(file.as_ptr()) };
                None
            }
            None => None,
        }
    }

    fn tap(fd: i32) -> Option<Self> {
        // SAFETY: FFI call; returns a new file reference or NULL.
        let file = NonNull::new(unsafe { bindings::fget(fd as u32) })?;
        // SAFETY: `file` is valid; the helper returns its socket or an ERR_PTR.
        let sock = from_err_ptr(unsafe { bindings::rvhost_tap_socket(file.as_ptr()) });
        match sock.ok().and_then(NonNull::new) {
            // INVARIANT: we hold the file reference fget took; the socket lives with it.
            Some(sock) => Some(Self {
                file,
                sock,
                tap: true,
                rx_ring: None,
            }),
            None => {
                // SAFETY: drop the reference fget took.
                unsafe { bindings::fput(file.as_ptr()) };
                None
            }
        }
    }

    /// Sends one packet gathered from the user buffers in `iovs` (in the
    /// calling thread's address space), without blocking. Returns the bytes
    /// sent; `EAGAIN` when the socket is full.
    // Out of line: its message would otherwise sit in the worker's frame.
    #[inline(never)]
    pub(crate) fn send_user(&self, iovs: &mut UserIovs) -> Result<usize> {
        let mut msg = iovs.message(bindings::ITER_SOURCE, bindings::MSG_DONTWAIT);
        // SAFETY: `sock` is valid (type invariant); the message's iterator
        // covers user addresses, which the kernel copies from with fault
        // checking.
        let ret = unsafe { bindings::sock_sendmsg(self.sock.as_ptr(), &mut msg) };
        kernel::error::to_result(ret).map(|()| ret as usize)
    }

    /// Takes what this socket receives off its tap's ring in batches (for
    /// an RX queue; a raw socket has no such ring and stays as it is).
    /// Allocates: called when the backend is set, never on the data path.
    pub(crate) fn receive_in_batches(&mut self) -> Result {
        if self.tap && self.rx_ring.is_none() {
            // SAFETY: `file` is valid and outlives `rx_ring`, which `drop`
            // releases before the file.
            self.rx_ring = unsafe { TapRxRing::new(self.file.as_ptr()) }?;
        }
        Ok(())
    }

    /// Length of the next packet waiting, 0 if none: from the batch taken
    /// off a tap's ring, else the socket's own `peek_len` (tun and macvtap
    /// have one), else the length of the skb at the head of its receive
    /// queue (a raw `AF_PACKET` socket).
    pub(crate) fn peek_len(&mut self) -> usize {
        if let Some(ring) = self.rx_ring.as_mut() {
            return ring.peek_len();
        }
        let sock = self.sock.as_ptr();
        // SAFETY: `sock` is valid (type invariant) and has its operations.
        let peek_len = unsafe { (*(*sock).ops).peek_len };
        let len = match peek_len {
            // SAFETY: the socket's own operation on a valid socket.
            Some(peek_len) => unsafe { peek_len(sock) },
            // SAFETY: `sock` is valid (type invariant).
            None => unsafe { bindings::rvhost_sock_queue_head_len(sock) },
        };
        usize::try_from(len).unwrap_or(0)
    }

    /// Receives one packet into the user buffers in `iovs` without blocking.
    /// Returns the packet's full length, which exceeds the room when it was
    /// truncated.
    // Out of line: its message would otherwise sit in the worker's frame.
    #[inline(never)]
    pub(crate) fn recv_user(&mut self, iovs: &mut UserIovs) -> Result<usize> {
        let mut msg = iovs.message(bindings::ITER_DEST, RECV_FLAGS);
        self.receive(&mut msg, iovs.bytes())
    }

    /// Receives and drops the next packet (one byte of it is copied out).
    // Out of line: its message would otherwise sit in the worker's frame.
    #[inline(never)]
    pub(crate) fn discard(&mut self) {
        let mut byte = 0u8;
        let vec = bindings::kvec {
            iov_base: core::ptr::from_mut(&mut byte).cast(),
            iov_len: 1,
        };
        let mut msg = bindings::msghdr {
            msg_flags: RECV_FLAGS,
            ..Default::default()
        };
        // SAFETY: `msg_iter` is ours, `vec` one kernel buffer of one byte
        // that outlives the message.
        unsafe { bindings::iov_iter_kvec(&mut msg.msg_iter, bindings::ITER_DEST, &vec, 1, 1) };
        // Dropped whether it arrives or not.
        let _ = self.receive(&mut msg, 1);
    }

    /// `recvmsg` of the next packet into `msg`'s iterator (`len` bytes of
    /// room). With a batch, the packet taken off the ring goes as
    /// `msg_control` straight to the socket's own operation, which frees it
    /// whatever happens (`sock_recvmsg`'s security hook could refuse the
    /// call before the socket sees the packet, and leak it).
    fn receive(&mut self, msg: &mut bindings::msghdr, len: usize) -> Result<usize> {
        let sock = self.sock.as_ptr();
        // SAFETY: `sock` is valid (type invariant) and has its operations.
        let recvmsg = unsafe { (*(*sock).ops).recvmsg };
        let ret = match (self.rx_ring.as_mut(), recvmsg) {
            (Some(ring), Some(recvmsg)) => {
                let packet: *mut c_void = ring.take();
                if packet.is_null() {
                    return Err(EAGAIN);
                }
                msg.__bindgen_anon_1.msg_control = packet;
                // SAFETY: `sock` is valid (type invariant); a tap's `recvmsg`
                // takes a packet of its own ring as `msg_control` and frees
                // it; the iterator covers `len` bytes of buffers the kernel
                // accesses with fault checking.
                unsafe { recvmsg(sock, msg, len, RECV_FLAGS as _) }
            }
            // SAFETY: `sock` is valid (type invariant); the message's
            // iterator covers buffers the kernel accesses with fault checking.
            _ => unsafe { bindings::sock_recvmsg(sock, msg, RECV_FLAGS as _) },
        };
        kernel::error::to_result(ret).map(|()| ret as usize)
    }

    /// The file that owns the socket, valid as long as `self` is.
    pub(crate) fn file_ptr(&self) -> *mut bindings::file {
        self.file.as_ptr()
    }

    /// Whether this is a tap's socket.
    pub(crate) fn is_tap(&self) -> bool {
        self.tap
    }

    /// The socket, valid as long as `self` is.
    pub(crate) fn sock_ptr(&self) -> *mut bindings::socket {
        self.sock.as_ptr()
    }

    /// Whether both refer to the same socket.
    pub(crate) fn same_socket(&self, other: &Self) -> bool {
        self.sock == other.sock
    }
}

impl Drop for BackendSocket {
    fn drop(&mut self) {
        // Packets taken off the tap's ring go back to it while it exists.
        self.rx_ring = None;
        // SAFETY: we own one reference to `file` (type invariant).
        unsafe { bindings::fput(self.file.as_ptr()) };
    }
}

/// Receives never block, and report a packet's full length when it is
/// longer than the room given.
const RECV_FLAGS: u32 = bindings::MSG_DONTWAIT | bindings::MSG_TRUNC;

/// Most user buffers one packet may be gathered from.
pub(crate) const MAX_IOVS: usize = 64;

/// User buffers (addresses in the owner's address space) making up a packet,
/// in space allocated once (the worker's scratch), not on the stack.
///
/// # Invariants
///
/// `iov.len() == MAX_IOVS`; `iov[..count]` are the buffers, `bytes` their sum.
pub(crate) struct UserIovs {
    iov: KVec<bindings::iovec>,
    count: usize,
    bytes: usize,
}

// SAFETY: the iovecs hold user addresses, valid in the owner's address space
// for any of its threads (the worker is one); Rust never dereferences them.
unsafe impl Send for UserIovs {}

impl UserIovs {
    pub(crate) fn new() -> Result<Self> {
        let mut iov = KVec::with_capacity(MAX_IOVS, GFP_KERNEL)?;
        for _ in 0..MAX_IOVS {
            let empty = bindings::iovec {
                iov_base: core::ptr::null_mut(),
                iov_len: 0,
            };
            iov.push(empty, GFP_KERNEL)?;
        }
        // INVARIANT: `MAX_IOVS` entries, none in use.
        Ok(Self {
            iov,
            count: 0,
            bytes: 0,
        })
    }

    /// Empties the list (the entries are overwritten as buffers are pushed).
    pub(crate) fn clear(&mut self) {
        self.count = 0;
        self.bytes = 0;
    }

    /// Appends a user buffer; `false` when the list is full.
    pub(crate) fn push(&mut self, addr: u64, len: usize) -> bool {
        let Some(slot) = self.iov.get_mut(self.count) else {
            return false;
        };
        *slot = bindings::iovec {
            iov_base: addr as usize as *mut _,
            iov_len: len,
        };
        self.count += 1;
        self.bytes = self.bytes.saturating_add(len);
        true
    }

    /// A message whose iterator covers the buffers, `direction` `ITER_SOURCE`
    /// (to send from them) or `ITER_DEST` (to receive into them).
    fn message(&mut self, direction: u32, flags: u32) -> bindings::msghdr {
        let mut msg = bindings::msghdr {
            msg_flags: flags,
            ..Default::default()
        };
        // SAFETY: `msg_iter` is ours; `iov[..count]` are user buffers of
        // `bytes` in all (type invariant), which the kernel accesses with
        // fault checking; the iterator refers to the iovec array, which
        // outlives the message (it is used only while `self` is borrowed).
        unsafe {
            bindings::iov_iter_init(
                &mut msg.msg_iter,
                direction,
                self.iov.as_ptr(),
                self.count as _,
                self.bytes,
            )
        };
        msg
    }

    /// Total room (or payload) in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Copies `out.len()` bytes, starting `offset` bytes into the buffers,
    /// from user memory into `out`. `EFAULT` if the buffers are shorter or
    /// their memory is not readable.
    pub(crate) fn read_at(&self, offset: usize, out: &mut [u8]) -> Result {
        let mut done = 0;
        self.for_each_span(offset, out.len(), |addr, len| {
            let dst = out.get_mut(done..done + len).ok_or(EFAULT)?;
            UserSlice::new(addr, len).reader().read_slice(dst)?;
            done += len;
            Ok(())
        })
    }

    /// As [`Self::read_at`], into memory not yet initialised.
    pub(crate) fn read_uninit_at(&self, offset: usize, out: &mut [MaybeUninit<u8>]) -> Result {
        let mut done = 0;
        self.for_each_span(offset, out.len(), |addr, len| {
            let dst = out.get_mut(done..done + len).ok_or(EFAULT)?;
            UserSlice::new(addr, len).reader().read_raw(dst)?;
            done += len;
            Ok(())
        })
    }

    /// Calls `f(user address, length)` for each piece of the `len` bytes
    /// starting `offset` bytes into the buffers, in order.
    fn for_each_span(
        &self,
        mut offset: usize,
        mut len: usize,
        mut f: impl FnMut(usize, usize) -> Result,
    ) -> Result {
        for iov in self.iov.iter().take(self.count) {
            if len == 0 {
                break;
            }
            if offset >= iov.iov_len {
                offset -= iov.iov_len;
                continue;
            }
            let piece = core::cmp::min(iov.iov_len - offset, len);
            let addr = (iov.iov_base as usize).checked_add(offset).ok_or(EFAULT)?;
            f(addr, piece)?;
            len -= piece;
            offset = 0;
        }
        if len == 0 {
            Ok(())
        } else {
            Err(EFAULT)
        }
    }
}
