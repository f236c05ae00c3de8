/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for rvhost_net: static inline kernel functions and macros that
 * Rust cannot call directly, mostly one-line forwarders; the logic lives in
 * Rust. The poll and the worker handle are glue of their own (see below).
 */
#ifndef RVHOST_HELPERS_H
#define RVHOST_HELPERS_H

#include <linux/spinlock_types.h>

struct mm_struct;
struct kunit;
struct socket;
struct iovec;
struct file;
struct rvhost_poll;

/*
 * A poll of @file (a kick eventfd, a backend socket; the poll holds its own
 * reference) that calls @wake(@data) from the file's wake-up (any context)
 * whenever it signals EPOLLIN (EPOLLOUT if @writable) while started. new:
 * NULL if out of memory; it does not start. start: also calls @wake at once
 * if the file is ready already; starting a started poll does nothing. stop:
 * no call of @wake after it returns. free: stops, drops the file, frees.
 * start, stop and free of one poll are serialised by the caller.
 */
struct rvhost_poll *rvhost_poll_new(struct file *file, bool writable,
				    void (*wake)(void *data), void *data);
void rvhost_poll_start(struct rvhost_poll *p);
void rvhost_poll_stop(struct rvhost_poll *p);
void rvhost_poll_free(struct rvhost_poll *p);

/*
 * The handle through which wakers (any context) reach the device's worker, a
 * vhost_task the Rust side creates, starts and stops: init sets it up
 * without a task; publish makes @task the one wake reaches; unpublish
 * (before the task is stopped) makes wake a no-op from its return on.
 */
struct vhost_task;
struct rvhost_worker {
	spinlock_t lock;
	struct vhost_task *task;	/* NULL when none is published */
};
void rvhost_worker_init(struct rvhost_worker *w);
void rvhost_worker_publish(struct rvhost_worker *w, struct vhost_task *task);
void rvhost_worker_unpublish(struct rvhost_worker *w);
void rvhost_worker_wake(struct rvhost_worker *w);
/*
 * The device file's own wait queue (IOTLB misses to read): init_waitqueue_head()
 * is a macro with its own lock class, which 6.12's Rust cannot supply
 * (LockClassKey::as_ptr is private to the kernel crate); poll_wait() is inline;
 * wake wakes poll()ers for EPOLLIN | EPOLLRDNORM.
 */
struct wait_queue_head;
struct poll_table_struct;
void rvhost_waitqueue_init(struct wait_queue_head *head);
void rvhost_poll_wait(struct file *file, struct wait_queue_head *head,
		      struct poll_table_struct *pt);
void rvhost_waitqueue_wake_readable(struct wait_queue_head *head);
/* __set_current_state(TASK_RUNNING): the worker found work. */
void rvhost_set_current_running(void);
/* cond_resched(): the worker yields between turns (a PREEMPT_NONE kernel preempts it nowhere else). */
void rvhost_cond_resched(void);
/* need_resched() || signal_pending(current): a busy poll ends for another task or a kill (inline functions). */
bool rvhost_busy_poll_must_end(void);
/* cpu_relax(): a busy poll's pause between looks (an inline function). */
void rvhost_cpu_relax(void);
/* Length of the skb at the head of @sock's receive queue (with its VLAN tag), 0 if none. */
int rvhost_sock_queue_head_len(struct socket *sock);
/*
 * get_user()/put_user() of a u16 in user memory: one 16-bit access, where a
 * two-byte copy_from_user() may copy byte by byte and so tear a field the
 * other side writes at the same time (ring indexes, flags, event indexes).
 * 0 or -EFAULT.
 */
int rvhost_get_user_u16(u16 *value, const void *addr);
int rvhost_put_user_u16(u16 value, void *addr);
/*
 * Sets bit @bit (0..7) of the byte at user address @addr atomically (the
 * VMM clears bits of the dirty log while the device sets them): pins the
 * page, set_bit() through a local kernel mapping, marks the page dirty, as
 * upstream's set_bit_to_user(). GUP and kmap_local_page() are not callable
 * from Rust in 6.12. 0 or -EFAULT.
 */
int rvhost_set_user_bit(u64 addr, unsigned int bit);

/* current->mm with an mmgrab() reference taken, or NULL for a kernel thread. */
struct mm_struct *rvhost_current_mm_grab(void);
/* mmdrop(): drops a reference taken by rvhost_current_mm_grab(). */
void rvhost_mmdrop(struct mm_struct *mm);
/* access_ok(): whether [addr, addr + size) is a user range. */
bool rvhost_access_ok(u64 addr, u64 size);
/*
 * The socket of a tap (tun) or macvtap (tap) device file, or an ERR_PTR:
 * tun_get_socket() and tap_get_socket() are inline stubs in a kernel built
 * without CONFIG_TUN or CONFIG_TAP, so the choice is made at build time here.
 */
struct socket *rvhost_tap_socket(struct file *file);
/* Whether @sock is an AF_PACKET SOCK_RAW socket. */
bool rvhost_sock_is_raw_packet(struct socket *sock);
/* kunit_set_failure(): marks the running KUnit case failed. */
void rvhost_kunit_set_failure(struct kunit *test);

/*
 * TX batching into a tap (rust/sys/tap_batch.rs): can_batch: the tap's send
 * buffer is unlimited (as upstream requires); has_xdp: an XDP program is
 * attached (tun wants XDP_PACKET_HEADROOM); net_skb_pad: NET_SKB_PAD, the
 * headroom tun keeps before a frame; page_frag_alloc: a fragment of
 * @size bytes aligned to SMP_CACHE_BYTES, NULL if out of memory;
 * xdp_buff_init: describes a fragment laid out as tun's XDP path expects.
 */
struct page_frag_cache;
struct xdp_buff;
bool rvhost_tap_can_batch(struct socket *sock);
bool rvhost_sock_has_xdp(struct socket *sock);
unsigned int rvhost_net_skb_pad(void);
void *rvhost_page_frag_alloc(struct page_frag_cache *cache, unsigned int size);
void rvhost_xdp_buff_init(struct xdp_buff *xdp, void *buf, unsigned int buflen,
			  unsigned int headroom, unsigned int frame);

/*
 * RX batching from a tap (rust/sys/tap_rx_ring.rs): tap_rx_ring: the
 * ptr_ring a tap (tun_get_tx_ring) or macvtap (tap_get_ptr_ring) queues its
 * packets on, NULL for other files (inline stubs without CONFIG_TUN or
 * CONFIG_TAP); consume_batched: takes up to @n packets off its head (an
 * inline function); unconsume: puts @n back at its head in order, freeing
 * what no longer fits (inline); tap_ptr_len: a packet's length with its
 * VLAN tag (skbs and tun's tagged XDP frames are told apart by inline
 * functions).
 */
struct ptr_ring;
struct ptr_ring *rvhost_tap_rx_ring(struct file *file);
int rvhost_ptr_ring_consume_batched(struct ptr_ring *ring, void **packets, int n);
void rvhost_ptr_ring_unconsume(struct ptr_ring *ring, void **packets, int n);
int rvhost_tap_ptr_len(void *packet);

/*
 * Tracepoints rvhost:rvhost_round, rvhost:rvhost_notify, rvhost:rvhost_ring_error
 * (rvhost_trace.h); queue 0 is RX, 1 TX; dev is the device's debugfs number.
 */
void rvhost_trace_round(u32 dev, u32 queue, u32 packets, u64 bytes, u32 descs, u16 used_idx,
			bool requeued);
void rvhost_trace_notify(u32 dev, u32 queue, u16 used_idx, bool signalled);
void rvhost_trace_ring_error(u32 dev, u32 queue, const char *what);

/*
 * debugfs: a directory, and read-only files under it whose contents
 * rvhost_debugfs_show() (Rust) writes with rvhost_seq_write() on every read,
 * given the file's @data. NULL when debugfs is unavailable (the device works
 * without it). rvhost_debugfs_remove() removes recursively and waits for
 * readers, so @data may go once it returns.
 */
struct dentry;
struct seq_file;
struct dentry *rvhost_debugfs_dir(const char *name, struct dentry *parent);
struct dentry *rvhost_debugfs_file(const char *name, struct dentry *parent, void *data);
void rvhost_debugfs_remove(struct dentry *dentry);
int rvhost_debugfs_show(struct seq_file *m, void *data);
void rvhost_seq_write(struct seq_file *m, const char *bytes, size_t len);

#endif
