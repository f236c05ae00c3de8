/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel interfaces rvhost_net needs beyond what kernel::bindings carries.
 * scripts/module-bindgen runs bindgen on this header with the flags the
 * kernel's own bindgen run used, so layouts come from the real headers.
 */
#include <linux/cache.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/miscdevice.h>
#include <linux/poll.h>
#include <linux/sched/vhost_task.h>
#include <linux/skbuff.h>
#include <linux/vhost.h>
#include <net/xdp.h>
#include "rvhost_helpers.h"
#include "rvhost_uapi.h"

/*
 * Function-like macros are invisible to bindgen; constant variables are not.
 * Only bindgen reads these definitions (this header is not compiled into C).
 */
const int RVHOST_MISC_DYNAMIC_MINOR = MISC_DYNAMIC_MINOR;
const unsigned int RVHOST_IOCTL_GET_VRING_STATS = RVHOST_GET_VRING_STATS;
const unsigned int RVHOST_IOCTL_SET_VRING_COALESCE = RVHOST_SET_VRING_COALESCE;
const unsigned int RVHOST_IOCTL_GET_VRING_COALESCE = RVHOST_GET_VRING_COALESCE;
const unsigned int RVHOST_IOCTL_COALESCE_F_ADAPTIVE = RVHOST_COALESCE_F_ADAPTIVE;
const unsigned int RVHOST_VHOST_GET_FEATURES = VHOST_GET_FEATURES;
const unsigned int RVHOST_VHOST_SET_FEATURES = VHOST_SET_FEATURES;
const unsigned int RVHOST_VHOST_SET_OWNER = VHOST_SET_OWNER;
const unsigned int RVHOST_VHOST_RESET_OWNER = VHOST_RESET_OWNER;
const unsigned int RVHOST_VHOST_SET_MEM_TABLE = VHOST_SET_MEM_TABLE;
const unsigned int RVHOST_VHOST_SET_LOG_BASE = VHOST_SET_LOG_BASE;
const unsigned int RVHOST_VHOST_SET_LOG_FD = VHOST_SET_LOG_FD;
const unsigned int RVHOST_VHOST_SET_VRING_NUM = VHOST_SET_VRING_NUM;
const unsigned int RVHOST_VHOST_SET_VRING_ADDR = VHOST_SET_VRING_ADDR;
const unsigned int RVHOST_VHOST_SET_VRING_BASE = VHOST_SET_VRING_BASE;
const unsigned int RVHOST_VHOST_GET_VRING_BASE = VHOST_GET_VRING_BASE;
const unsigned int RVHOST_VHOST_SET_VRING_KICK = VHOST_SET_VRING_KICK;
const unsigned int RVHOST_VHOST_SET_VRING_CALL = VHOST_SET_VRING_CALL;
const unsigned int RVHOST_VHOST_SET_VRING_ERR = VHOST_SET_VRING_ERR;
const unsigned int RVHOST_VHOST_SET_VRING_BUSYLOOP_TIMEOUT = VHOST_SET_VRING_BUSYLOOP_TIMEOUT;
const unsigned int RVHOST_VHOST_GET_VRING_BUSYLOOP_TIMEOUT = VHOST_GET_VRING_BUSYLOOP_TIMEOUT;
const unsigned int RVHOST_VHOST_SET_BACKEND_FEATURES = VHOST_SET_BACKEND_FEATURES;
const unsigned int RVHOST_VHOST_GET_BACKEND_FEATURES = VHOST_GET_BACKEND_FEATURES;
const unsigned int RVHOST_VHOST_NET_SET_BACKEND = VHOST_NET_SET_BACKEND;
/* The IOTLB messages' layout and values (rust/logic/iotlb.rs, checked in abi.rs). */
const unsigned long RVHOST_VHOST_MSG_SIZE = sizeof(struct vhost_msg);
const unsigned long RVHOST_VHOST_MSG_V2_SIZE = sizeof(struct vhost_msg_v2);
const unsigned long RVHOST_VHOST_MSG_IOTLB_OFFSET = offsetof(struct vhost_msg, iotlb);
const unsigned long RVHOST_VHOST_MSG_V2_IOTLB_OFFSET = offsetof(struct vhost_msg_v2, iotlb);
const unsigned long RVHOST_VHOST_IOTLB_MSG_SIZE = sizeof(struct vhost_iotlb_msg);
const unsigned long RVHOST_VHOST_IOTLB_MSG_PERM_OFFSET = offsetof(struct vhost_iotlb_msg, perm);
const unsigned long RVHOST_VHOST_IOTLB_MSG_TYPE_OFFSET = offsetof(struct vhost_iotlb_msg, type);
const unsigned int RVHOST_VHOST_IOTLB_MSG = VHOST_IOTLB_MSG;
const unsigned int RVHOST_VHOST_IOTLB_MSG_V2 = VHOST_IOTLB_MSG_V2;
const unsigned char RVHOST_VHOST_IOTLB_MISS = VHOST_IOTLB_MISS;
const unsigned char RVHOST_VHOST_IOTLB_UPDATE = VHOST_IOTLB_UPDATE;
const unsigned char RVHOST_VHOST_IOTLB_INVALIDATE = VHOST_IOTLB_INVALIDATE;
const unsigned char RVHOST_VHOST_ACCESS_RO = VHOST_ACCESS_RO;
const unsigned char RVHOST_VHOST_ACCESS_WO = VHOST_ACCESS_WO;
const unsigned int RVHOST_EPOLLIN_RDNORM = (__force unsigned int)(EPOLLIN | EPOLLRDNORM);

/* What a tap batch's fragment layout depends on (rust/logic/tap_frame.rs). */
const unsigned long RVHOST_SMP_CACHE_BYTES = SMP_CACHE_BYTES;
const unsigned long RVHOST_NET_IP_ALIGN = NET_IP_ALIGN;
const unsigned long RVHOST_XDP_PACKET_HEADROOM = XDP_PACKET_HEADROOM;
const unsigned long RVHOST_SKB_SHARED_INFO_SIZE = sizeof(struct skb_shared_info);
const unsigned short RVHOST_TUN_MSG_PTR = TUN_MSG_PTR;
