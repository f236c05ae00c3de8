// SPDX-License-Identifier: GPL-2.0

//! Build-time proof that the pure ioctl table (`logic::ioctl`) and the IOTLB
//! messages (`logic::iotlb`) agree with the real `include/uapi/linux/vhost.h`
//! and `vhost_types.h`, whose numbers bindgen extracted; and that the
//! coalescing flags agree with `rvhost_uapi.h`.

use crate::logic::ioctl::{VhostIoctl as V, VHOST_VIRTIO};
use crate::logic::iotlb as tlb;
use crate::sys::bindings as b;
use kernel::static_assert;

static_assert!(VHOST_VIRTIO == b::VHOST_VIRTIO);
static_assert!(V::GetFeatures.number() == b::RVHOST_VHOST_GET_FEATURES);
static_assert!(V::SetFeatures.number() == b::RVHOST_VHOST_SET_FEATURES);
static_assert!(V::SetOwner.number() == b::RVHOST_VHOST_SET_OWNER);
static_assert!(V::ResetOwner.number() == b::RVHOST_VHOST_RESET_OWNER);
static_assert!(V::SetMemTable.number() == b::RVHOST_VHOST_SET_MEM_TABLE);
static_assert!(V::SetLogBase.number() == b::RVHOST_VHOST_SET_LOG_BASE);
static_assert!(V::SetLogFd.number() == b::RVHOST_VHOST_SET_LOG_FD);
static_assert!(V::SetVringNum.number() == b::RVHOST_VHOST_SET_VRING_NUM);
static_assert!(V::SetVringAddr.number() == b::RVHOST_VHOST_SET_VRING_ADDR);
static_assert!(V::SetVringBase.number() == b::RVHOST_VHOST_SET_VRING_BASE);
static_assert!(V::GetVringBase.number() == b::RVHOST_VHOST_GET_VRING_BASE);
static_assert!(V::SetVringKick.number() == b::RVHOST_VHOST_SET_VRING_KICK);
static_assert!(V::SetVringCall.number() == b::RVHOST_VHOST_SET_VRING_CALL);
static_assert!(V::SetVringErr.number() == b::RVHOST_VHOST_SET_VRING_ERR);
static_assert!(V::SetVringBusyloopTimeout.number() == b::RVHOST_VHOST_SET_VRING_BUSYLOOP_TIMEOUT);
static_assert!(V::GetVringBusyloopTimeout.number() == b::RVHOST_VHOST_GET_VRING_BUSYLOOP_TIMEOUT);
static_assert!(V::SetBackendFeatures.number() == b::RVHOST_VHOST_SET_BACKEND_FEATURES);
static_assert!(V::GetBackendFeatures.number() == b::RVHOST_VHOST_GET_BACKEND_FEATURES);
static_assert!(V::NetSetBackend.number() == b::RVHOST_VHOST_NET_SET_BACKEND);

// The argument structs the pure table assumes sizes for.
static_assert!(core::mem::size_of::<b::vhost_vring_state>() == 8);
static_assert!(core::mem::size_of::<b::vhost_vring_file>() == 8);
static_assert!(core::mem::size_of::<b::vhost_vring_addr>() == 40);
static_assert!(core::mem::size_of::<b::vhost_memory>() == 8);
static_assert!(core::mem::size_of::<b::vhost_memory_region>() == 32);

// The IOTLB messages (both formats are the same size, body at the same offset).
static_assert!(tlb::MSG_LEN == b::RVHOST_VHOST_MSG_SIZE);
static_assert!(tlb::MSG_LEN == b::RVHOST_VHOST_MSG_V2_SIZE);
static_assert!(tlb::BODY_OFFSET == b::RVHOST_VHOST_MSG_IOTLB_OFFSET);
static_assert!(tlb::BODY_OFFSET == b::RVHOST_VHOST_MSG_V2_IOTLB_OFFSET);
static_assert!(tlb::BODY_LEN == b::RVHOST_VHOST_IOTLB_MSG_SIZE);
static_assert!(tlb::PERM_OFFSET == b::RVHOST_VHOST_IOTLB_MSG_PERM_OFFSET);
static_assert!(tlb::TYPE_OFFSET == b::RVHOST_VHOST_IOTLB_MSG_TYPE_OFFSET);
static_assert!(tlb::MSG_V1 == b::RVHOST_VHOST_IOTLB_MSG);
static_assert!(tlb::MSG_V2 == b::RVHOST_VHOST_IOTLB_MSG_V2);
static_assert!(tlb::IOTLB_MISS == b::RVHOST_VHOST_IOTLB_MISS);
static_assert!(tlb::IOTLB_UPDATE == b::RVHOST_VHOST_IOTLB_UPDATE);
static_assert!(tlb::IOTLB_INVALIDATE == b::RVHOST_VHOST_IOTLB_INVALIDATE);
static_assert!(tlb::ACCESS_RO == b::RVHOST_VHOST_ACCESS_RO);
static_assert!(tlb::ACCESS_WO == b::RVHOST_VHOST_ACCESS_WO);
static_assert!(crate::logic::coalesce::F_ADAPTIVE == b::RVHOST_IOCTL_COALESCE_F_ADAPTIVE);
