/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * rvhost_net's own ioctl, beside the standard vhost ABI: per-queue
 * statistics. Magic 'r', outside vhost's 0xAF range.
 */
#ifndef RVHOST_UAPI_H
#define RVHOST_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

struct rvhost_vring_stats {
	__u32 index;			/* in: queue, 0 = RX, 1 = TX */
	__u32 padding;			/* must be 0 */
	__u64 kicks;			/* kick eventfd signals seen */
	__u64 calls;			/* call eventfd signals (guest interrupts) */
	__u64 calls_suppressed;		/* used-ring updates the guest asked not to hear of */
	__u64 packets;			/* packets moved */
	__u64 bytes;			/* payload bytes moved (virtio-net header excluded) */
	__u64 rounds;			/* worker rounds that moved at least one packet */
	__u64 drops;			/* packets dropped (send errors, RX oversized/truncated) */
	__u64 errors;			/* malformed rings (error eventfd signals) */
};

#define RVHOST_GET_VRING_STATS _IOWR('r', 0x01, struct rvhost_vring_stats)

#endif
