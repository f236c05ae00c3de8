// SPDX-License-Identifier: GPL-2.0

//! Where one frame of a TX batch into a tap goes in its page fragment, and
//! whether it may go there at all.
//!
//! tun's XDP path (`sendmsg` with `TUN_MSG_PTR`) builds an skb around each
//! fragment, so the fragment must be laid out as tun expects: a
//! `struct tun_xdp_hdr` (the fragment's length, then the virtio-net header)
//! at the start, inside a headroom of `SKB_DATA_ALIGN(NET_IP_ALIGN +
//! NET_SKB_PAD + XDP headroom + socket header)`, the frame after it, and room
//! for `struct skb_shared_info` at the end, all within one page.
//!
//! The kernel constants differ between configurations, so they come in as a
//! [`TapFrameGeometry`] (the module fills it from the kernel's headers; the
//! host tests use x86-64's values and others).

/// Length of the virtio-net header tun reads from `struct tun_xdp_hdr`
/// (`struct virtio_net_hdr`: flags, gso_type, hdr_len, gso_size, csum_start,
/// csum_offset).
pub const VIRTIO_NET_HDR_LEN: usize = 10;
/// Offset of `hdr_len` (the length of the headers a GSO frame repeats in each
/// segment) in the virtio-net header.
const HDR_LEN_OFFSET: usize = 2;

/// The kernel's constants a fragment's layout depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapFrameGeometry {
    /// `SMP_CACHE_BYTES`, what `SKB_DATA_ALIGN` rounds up to (a power of two).
    pub cache_line: usize,
    /// `NET_SKB_PAD`: headroom tun leaves before the frame.
    pub skb_pad: usize,
    /// `NET_IP_ALIGN`: aligns the IP header after a 14-byte Ethernet header.
    pub ip_align: usize,
    /// `XDP_PACKET_HEADROOM`: extra headroom when an XDP program is attached.
    pub xdp_headroom: usize,
    /// `sizeof(struct skb_shared_info)`, kept free at the fragment's end.
    pub shared_info: usize,
    /// The page size: a fragment never spans pages.
    pub page_size: usize,
}

/// Where a frame goes in its fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapFrameLayout {
    /// Bytes before the frame (the header lives at their start; all are
    /// zeroed, since an XDP program on the tap may read them).
    pub headroom: usize,
    /// The frame's length (the packet without the socket's header).
    pub frame: usize,
    /// The fragment's length, what `tun_xdp_hdr.buflen` tells tun.
    pub buflen: usize,
    /// Bytes of the socket's header copied into `tun_xdp_hdr.gso`; the rest
    /// of that header (a 12-byte mergeable header's `num_buffers`) is skipped.
    pub header: usize,
}

/// Why a frame cannot go into a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapFrameError {
    /// Shorter than the socket's header (`EINVAL`, as tun answers).
    ShortFrame,
    /// The fragment would not fit one page: send the frame on its own.
    TooBig,
}

/// `value` rounded up to a multiple of `align` (a power of two), `None` on
/// overflow.
const fn align_up(value: usize, align: usize) -> Option<usize> {
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

impl TapFrameGeometry {
    /// The layout of a packet of `len` bytes whose first `sock_hlen` bytes are
    /// the socket's virtio-net header, for a tap with (`xdp`) or without an
    /// XDP program.
    pub fn layout(
        &self,
        len: usize,
        sock_hlen: usize,
        xdp: bool,
    ) -> Result<TapFrameLayout, TapFrameError> {
        let frame = len
            .checked_sub(sock_hlen)
            .ok_or(TapFrameError::ShortFrame)?;
        let xdp_headroom = if xdp { self.xdp_headroom } else { 0 };
        let headroom = self
            .ip_align
            .checked_add(self.skb_pad)
            .and_then(|v| v.checked_add(xdp_headroom))
            .and_then(|v| v.checked_add(sock_hlen))
            .and_then(|v| align_up(v, self.cache_line))
            .ok_or(TapFrameError::TooBig)?;
        let buflen = headroom
            .checked_add(frame)
            .and_then(|v| align_up(v, self.cache_line))
            .zip(align_up(self.shared_info, self.cache_line))
            .and_then(|(data, tail)| data.checked_add(tail))
            .filter(|&buflen| buflen <= self.page_size)
            .ok_or(TapFrameError::TooBig)?;
        Ok(TapFrameLayout {
            headroom,
            frame,
            buflen,
            header: if sock_hlen < VIRTIO_NET_HDR_LEN {
                sock_hlen
            } else {
                VIRTIO_NET_HDR_LEN
            },
        })
    }
}

/// Whether a virtio-net header may go to tun with a frame of `frame` bytes:
/// its `hdr_len` (in the device's byte order: little-endian for a
/// `VIRTIO_F_VERSION_1` device) must not exceed the frame, as tun checks on
/// its copying path but not on the XDP one. Unread bytes count as zero.
pub fn header_fits(header: &[u8; VIRTIO_NET_HDR_LEN], frame: usize, little_endian: bool) -> bool {
    let bytes = [header[HDR_LEN_OFFSET], header[HDR_LEN_OFFSET + 1]];
    let hdr_len = if little_endian {
        u16::from_le_bytes(bytes)
    } else {
        u16::from_ne_bytes(bytes)
    };
    usize::from(hdr_len) <= frame
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x86-64 (64-byte cache lines, 320-byte `skb_shared_info`, 4 KiB pages).
    const X86_64: TapFrameGeometry = TapFrameGeometry {
        cache_line: 64,
        skb_pad: 64,
        ip_align: 0,
        xdp_headroom: 256,
        shared_info: 320,
        page_size: 4096,
    };

    #[test]
    fn a_full_size_frame_with_the_mergeable_header() {
        // 12-byte header (tap with IFF_VNET_HDR, mergeable buffers), 1514-byte frame.
        let layout = X86_64.layout(12 + 1514, 12, false).unwrap();
        assert_eq!(
            layout,
            TapFrameLayout {
                headroom: 128,
                frame: 1514,
                buflen: 1664 + 320,
                header: 10,
            }
        );
    }

    #[test]
    fn an_xdp_program_adds_its_headroom() {
        let layout = X86_64.layout(10 + 60, 10, true).unwrap();
        assert_eq!(layout.headroom, 384);
        assert_eq!(layout.buflen, 448 + 320);
        assert_eq!(layout.header, 10);
    }

    #[test]
    fn no_socket_header_copies_none() {
        let layout = X86_64.layout(60, 0, false).unwrap();
        assert_eq!((layout.headroom, layout.frame, layout.header), (64, 60, 0));
    }

    #[test]
    fn the_largest_frame_fills_the_page_exactly() {
        // 4096 - 320 (shared info) - 128 (headroom) = 3648 bytes of frame.
        assert_eq!(X86_64.layout(12 + 3648, 12, false).unwrap().buflen, 4096);
        assert_eq!(
            X86_64.layout(12 + 3649, 12, false),
            Err(TapFrameError::TooBig)
        );
        assert_eq!(
            X86_64.layout(usize::MAX, 12, false),
            Err(TapFrameError::TooBig)
        );
    }

    #[test]
    fn a_frame_shorter_than_its_header_is_refused() {
        assert_eq!(X86_64.layout(11, 12, false), Err(TapFrameError::ShortFrame));
        assert!(X86_64.layout(12, 12, false).is_ok());
    }

    #[test]
    fn every_fragment_is_cache_aligned_and_holds_its_parts() {
        let arm64 = TapFrameGeometry {
            cache_line: 128,
            skb_pad: 128,
            ip_align: 2,
            page_size: 65536,
            ..X86_64
        };
        for geometry in [X86_64, arm64] {
            for sock_hlen in [0, 10, 12] {
                for frame in (0..70_000).step_by(97) {
                    for xdp in [false, true] {
                        let Ok(l) = geometry.layout(sock_hlen + frame, sock_hlen, xdp) else {
                            continue;
                        };
                        assert_eq!(l.headroom % geometry.cache_line, 0);
                        assert_eq!(l.buflen % geometry.cache_line, 0);
                        assert!(l.headroom >= geometry.skb_pad + sock_hlen);
                        assert!(l.headroom + l.frame + geometry.shared_info <= l.buflen);
                        assert!(l.buflen <= geometry.page_size);
                    }
                }
            }
        }
    }

    #[test]
    fn hdr_len_may_not_exceed_the_frame() {
        let mut header = [0u8; VIRTIO_NET_HDR_LEN];
        header[2..4].copy_from_slice(&54u16.to_le_bytes());
        assert!(header_fits(&header, 54, true));
        assert!(!header_fits(&header, 53, true));
        header[2..4].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(!header_fits(&header, 65_534, true));
        assert!(header_fits(&[0; VIRTIO_NET_HDR_LEN], 0, false));
    }
}
