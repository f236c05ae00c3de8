// SPDX-License-Identifier: GPL-2.0

//! Feature bits rvhost offers and their negotiation (`VHOST_GET/SET_FEATURES`,
//! `VHOST_GET/SET_BACKEND_FEATURES`).

use super::errno::Errno;

/// `VIRTIO_NET_F_MRG_RXBUF`: RX packets may span several buffers.
pub const VIRTIO_NET_F_MRG_RXBUF: u32 = 15;
/// `VIRTIO_F_NOTIFY_ON_EMPTY`: interrupt when the avail ring runs empty.
pub const VIRTIO_F_NOTIFY_ON_EMPTY: u32 = 24;
/// `VHOST_F_LOG_ALL`: dirty-page logging for live migration.
pub const VHOST_F_LOG_ALL: u32 = 26;
/// `VIRTIO_F_ANY_LAYOUT`: headers need not sit in their own descriptor.
pub const VIRTIO_F_ANY_LAYOUT: u32 = 27;
/// `VHOST_NET_F_VIRTIO_NET_HDR`: the device, not the socket, handles the virtio-net header
/// (same bit as `VIRTIO_F_ANY_LAYOUT`).
pub const VHOST_NET_F_VIRTIO_NET_HDR: u32 = 27;
/// `VIRTIO_RING_F_INDIRECT_DESC`: indirect descriptor tables.
pub const VIRTIO_RING_F_INDIRECT_DESC: u32 = 28;
/// `VIRTIO_RING_F_EVENT_IDX`: `used_event` / `avail_event` notification suppression.
pub const VIRTIO_RING_F_EVENT_IDX: u32 = 29;
/// `VIRTIO_F_VERSION_1`: virtio 1.0 (little-endian rings, 12-byte net header).
pub const VIRTIO_F_VERSION_1: u32 = 32;
/// `VIRTIO_F_ACCESS_PLATFORM`: addresses are I/O virtual addresses,
/// translated through an IOTLB the VMM fills (`logic::iotlb`).
pub const VIRTIO_F_ACCESS_PLATFORM: u32 = 33;
/// `VIRTIO_F_RING_RESET`: the driver may reset one queue while the others
/// run (for a vhost device: the VMM detaches, re-programs and re-attaches
/// one queue, which needs nothing more of the device).
pub const VIRTIO_F_RING_RESET: u32 = 40;
/// `VHOST_BACKEND_F_IOTLB_MSG_V2`: IOTLB message format v2.
pub const VHOST_BACKEND_F_IOTLB_MSG_V2: u32 = 1;

const fn bit(n: u32) -> u64 {
    1u64 << n
}

/// The device features rvhost offers in `VHOST_GET_FEATURES`.
pub const OFFERED: u64 = bit(VIRTIO_F_NOTIFY_ON_EMPTY)
    | bit(VHOST_F_LOG_ALL)
    | bit(VIRTIO_RING_F_INDIRECT_DESC)
    | bit(VIRTIO_RING_F_EVENT_IDX)
    | bit(VIRTIO_F_ANY_LAYOUT)
    | bit(VIRTIO_F_VERSION_1)
    | bit(VIRTIO_NET_F_MRG_RXBUF)
    | bit(VIRTIO_F_ACCESS_PLATFORM)
    | bit(VIRTIO_F_RING_RESET);

/// The backend features offered in `VHOST_GET_BACKEND_FEATURES` (as upstream vhost-net).
pub const BACKEND_OFFERED: u64 = bit(VHOST_BACKEND_F_IOTLB_MSG_V2);

/// Length of `struct virtio_net_hdr`.
pub const NET_HDR_LEN: usize = 10;
/// Length of `struct virtio_net_hdr_mrg_rxbuf` (adds `num_buffers`).
pub const NET_HDR_MRG_LEN: usize = 12;

/// Features a driver has acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features(u64);

impl Features {
    /// Accepts `requested` if it holds only offered bits; `EOPNOTSUPP` otherwise,
    /// as upstream.
    pub const fn negotiate(requested: u64) -> Result<Self, Errno> {
        if requested & !OFFERED != 0 {
            return Err(Errno::OpNotSupp);
        }
        Ok(Self(requested))
    }

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether feature bit `n` was acknowledged.
    pub const fn has(self, n: u32) -> bool {
        n < 64 && self.0 & bit(n) != 0
    }

    /// Length of the virtio-net header in guest buffers: 12 bytes with
    /// MRG_RXBUF or VERSION_1, else 10.
    pub const fn net_hdr_len(self) -> usize {
        if self.has(VIRTIO_NET_F_MRG_RXBUF) || self.has(VIRTIO_F_VERSION_1) {
            NET_HDR_MRG_LEN
        } else {
            NET_HDR_LEN
        }
    }

    /// Header bytes the device itself adds/strips: the whole header when
    /// `VHOST_NET_F_VIRTIO_NET_HDR` is set, none when the socket handles it.
    pub const fn device_hdr_len(self) -> usize {
        if self.has(VHOST_NET_F_VIRTIO_NET_HDR) {
            self.net_hdr_len()
        } else {
            0
        }
    }

    /// Whether ring and header fields are little-endian: always with
    /// VERSION_1; a legacy device uses the guest's byte order, which is the
    /// host's (cross-endian legacy guests are not supported, as upstream
    /// without `VHOST_SET_VRING_ENDIAN`).
    pub const fn little_endian(self) -> bool {
        self.has(VIRTIO_F_VERSION_1) || cfg!(target_endian = "little")
    }

    /// Header bytes the backend socket expects in front of each frame (the
    /// VMM set the tap up for them): the whole header unless the device
    /// handles it.
    pub const fn socket_hdr_len(self) -> usize {
        self.net_hdr_len() - self.device_hdr_len()
    }
}

/// Validates `VHOST_SET_BACKEND_FEATURES`.
pub const fn negotiate_backend(requested: u64) -> Result<u64, Errno> {
    if requested & !BACKEND_OFFERED != 0 {
        return Err(Errno::OpNotSupp);
    }
    Ok(requested)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_bits_are_accepted_and_others_refused() {
        assert_eq!(
            Features::negotiate(OFFERED).map(Features::bits),
            Ok(OFFERED)
        );
        assert_eq!(Features::negotiate(0).map(Features::bits), Ok(0));
        assert_eq!(Features::negotiate(1 << 63), Err(Errno::OpNotSupp));
        // Upstream vhost-net's set (VIRTIO_F_ACCESS_PLATFORM, bit 33, with it).
        assert_eq!(OFFERED, 0x0000_0103_3d00_8000);
        assert_eq!(
            Features::negotiate(OFFERED | bit(34)),
            Err(Errno::OpNotSupp)
        );
        assert!(Features::negotiate(bit(VHOST_F_LOG_ALL)).is_ok());
    }

    #[test]
    fn header_length_follows_features() {
        let legacy = Features::negotiate(bit(VHOST_NET_F_VIRTIO_NET_HDR)).unwrap();
        assert_eq!(legacy.net_hdr_len(), 10);
        assert_eq!(legacy.device_hdr_len(), 10);
        assert_eq!(legacy.socket_hdr_len(), 0);
        let v1 = Features::negotiate(bit(VIRTIO_F_VERSION_1)).unwrap();
        assert_eq!(v1.net_hdr_len(), 12);
        assert_eq!(v1.device_hdr_len(), 0);
        assert_eq!(v1.socket_hdr_len(), 12);
        let mrg = Features::negotiate(bit(VIRTIO_NET_F_MRG_RXBUF)).unwrap();
        assert_eq!(mrg.net_hdr_len(), 12);
        assert!(!mrg.has(64));
    }

    #[test]
    fn backend_features() {
        assert_eq!(negotiate_backend(BACKEND_OFFERED), Ok(BACKEND_OFFERED));
        assert_eq!(negotiate_backend(1 << 2), Err(Errno::OpNotSupp));
    }
}
