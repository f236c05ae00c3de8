/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * rvhost_net's own ioctls, beside the standard vhost ABI: per-queue
 * statistics and interrupt coalescing. Magic 'r', outside vhost's 0xAF range.
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

/*
 * Interrupt coalescing of one queue, as virtio-net's VIRTIO_NET_F_NOTF_COAL:
 * a used-buffer signal the guest asked for (event index or flags) is held
 * until max_packets packets wait for it (0: no packet bound) or max_usecs
 * have passed since it was first held, and never while the guest's avail
 * ring is empty. max_usecs 0 (the default) or max_packets 1 turns it off.
 * With RVHOST_COALESCE_F_ADAPTIVE max_usecs is a rate limit instead: a
 * signal goes out at once when none went out in the last max_usecs (a quiet
 * queue is not delayed), else it is held until max_usecs after the last one
 * (or max_packets packets).
 * max_usecs at most 1000000 and unknown flags: EINVAL. Owner only (EPERM);
 * index beyond the queues: ENOBUFS.
 */
#define RVHOST_COALESCE_F_ADAPTIVE	(1U << 0)

struct rvhost_vring_coalesce {
	__u32 index;			/* queue, 0 = RX, 1 = TX */
	__u32 max_packets;
	__u32 max_usecs;
	__u32 flags;			/* RVHOST_COALESCE_F_* */
};

#define RVHOST_SET_VRING_COALESCE _IOW('r', 0x02, struct rvhost_vring_coalesce)
#define RVHOST_GET_VRING_COALESCE _IOWR('r', 0x03, struct rvhost_vring_coalesce)

#endif
