//! Feature bits as the masks a driver acks, from rust-vmm's bindings of the
//! kernel's uapi headers (`virtio-bindings`, and the vhost crate's for the
//! two vhost-only bits): one place for every host test program and rvmm,
//! independent of rvhost's own table (`rust/logic/features.rs`).

use vhost::vhost_kern::vhost_binding as vhost;
use virtio_bindings::{virtio_config, virtio_net, virtio_ring};

const fn bit(n: u32) -> u64 {
    1 << n
}

pub const VIRTIO_NET_F_MAC: u64 = bit(virtio_net::VIRTIO_NET_F_MAC);
pub const VIRTIO_NET_F_MRG_RXBUF: u64 = bit(virtio_net::VIRTIO_NET_F_MRG_RXBUF);
pub const VIRTIO_F_NOTIFY_ON_EMPTY: u64 = bit(virtio_config::VIRTIO_F_NOTIFY_ON_EMPTY);
pub const VIRTIO_F_ANY_LAYOUT: u64 = bit(virtio_config::VIRTIO_F_ANY_LAYOUT);
pub const VIRTIO_RING_F_INDIRECT_DESC: u64 = bit(virtio_ring::VIRTIO_RING_F_INDIRECT_DESC);
pub const VIRTIO_RING_F_EVENT_IDX: u64 = bit(virtio_ring::VIRTIO_RING_F_EVENT_IDX);
pub const VIRTIO_F_VERSION_1: u64 = bit(virtio_config::VIRTIO_F_VERSION_1);
pub const VIRTIO_F_ACCESS_PLATFORM: u64 = bit(virtio_config::VIRTIO_F_ACCESS_PLATFORM);
pub const VIRTIO_F_RING_RESET: u64 = bit(virtio_config::VIRTIO_F_RING_RESET);
pub const VHOST_F_LOG_ALL: u64 = bit(vhost::VHOST_F_LOG_ALL);
pub const VHOST_NET_F_VIRTIO_NET_HDR: u64 = bit(vhost::VHOST_NET_F_VIRTIO_NET_HDR);
