// SPDX-License-Identifier: GPL-2.0
/*
 * What rvhost_net's Rust cannot call or reach in 6.12, each with its reason
 * (contracts in rvhost_helpers.h): forwarders to inline functions and
 * macros, reads of structures kernel::bindings leaves opaque (struct sock),
 * and two pieces of glue: the file poll (its callbacks are reached through
 * container_of from wait-queue entries set up by inline functions) and the
 * worker handle's irq-safe lock. The logic is in Rust (rust/sys, rust/logic).
 */
#include <linux/highmem.h>
#include <linux/if_tap.h>
#include <linux/if_tun.h>
#include <linux/if_vlan.h>
#include <linux/mm.h>
#include <linux/net.h>
#include <linux/poll.h>
#include <linux/ptr_ring.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/vhost_task.h>
#include <linux/skb_array.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <net/sock.h>
#include <net/xdp.h>
#include "rvhost_helpers.h"

/* current and mmgrab() are a macro and an inline function. */
struct mm_struct *rvhost_current_mm_grab(void)
{
	struct mm_struct *mm = current->mm;

	if (mm)
		mmgrab(mm);
	return mm;
}

/* mmdrop() is inline. */
void rvhost_mmdrop(struct mm_struct *mm)
{
	mmdrop(mm);
}

/* access_ok() is a macro. */
bool rvhost_access_ok(u64 addr, u64 size)
{
	return access_ok((void __user *)(unsigned long)addr, size);
}

/* tun_get_socket() and tap_get_socket() are inline stubs without CONFIG_TUN/CONFIG_TAP. */
struct socket *rvhost_tap_socket(struct file *file)
{
	struct socket *sock = tun_get_socket(file);

	return IS_ERR(sock) ? tap_get_socket(file) : sock;
}

/* struct sock is opaque in kernel::bindings. */
bool rvhost_sock_is_raw_packet(struct socket *sock)
{
	return sock->sk->sk_type == SOCK_RAW && sock->sk->sk_family == AF_PACKET;
}

/*
 * Polls a file for the worker, as upstream's vhost_poll: allocated when the
 * file is bound (so the data path never allocates), holding its own
 * reference to the file, started and stopped as the worker needs it. C
 * because poll tables and wait entries are set up by inline functions
 * (init_poll_funcptr, init_waitqueue_func_entry, vfs_poll, get_file).
 */
struct rvhost_poll {
	poll_table table;
	wait_queue_head_t *wqh;		/* NULL while stopped */
	wait_queue_entry_t wait;
	struct file *file;
	__poll_t mask;
	void (*wake)(void *data);
	void *data;
};

static void rvhost_poll_queue(struct file *file, wait_queue_head_t *wqh, poll_table *pt)
{
	struct rvhost_poll *p = container_of(pt, struct rvhost_poll, table);

	p->wqh = wqh;
	add_wait_queue(wqh, &p->wait);
}

static int rvhost_poll_wakeup(wait_queue_entry_t *wait, unsigned int mode, int sync, void *key)
{
	struct rvhost_poll *p = container_of(wait, struct rvhost_poll, wait);

	if (!key || (key_to_poll(key) & p->mask))
		p->wake(p->data);
	return 0;
}

struct rvhost_poll *rvhost_poll_new(struct file *file, bool writable,
				    void (*wake)(void *data), void *data)
{
	struct rvhost_poll *p = kzalloc(sizeof(*p), GFP_KERNEL);

	if (!p)
		return NULL;
	init_poll_funcptr(&p->table, rvhost_poll_queue);
	init_waitqueue_func_entry(&p->wait, rvhost_poll_wakeup);
	p->file = get_file(file);
	p->mask = writable ? EPOLLOUT : EPOLLIN;
	p->wake = wake;
	p->data = data;
	return p;
}

void rvhost_poll_start(struct rvhost_poll *p)
{
	if (p->wqh)
		return;
	if (vfs_poll(p->file, &p->table) & p->mask)
		p->wake(p->data);
}

void rvhost_poll_stop(struct rvhost_poll *p)
{
	if (p->wqh) {
		remove_wait_queue(p->wqh, &p->wait);
		p->wqh = NULL;
	}
}

void rvhost_poll_free(struct rvhost_poll *p)
{
	rvhost_poll_stop(p);
	fput(p->file);
	kfree(p);
}

/*
 * The worker's handle (struct rvhost_worker, in rvhost_helpers.h): wakers run
 * in any context (socket wake-ups in softirq, eventfd signals with
 * interrupts off), so the task pointer they use is guarded by an irq-safe
 * spinlock, which 6.12's Rust locks are not.
 */
void rvhost_worker_init(struct rvhost_worker *w)
{
	spin_lock_init(&w->lock);
	w->task = NULL;
}

void rvhost_worker_publish(struct rvhost_worker *w, struct vhost_task *task)
{
	unsigned long flags;

	spin_lock_irqsave(&w->lock, flags);
	w->task = task;
	spin_unlock_irqrestore(&w->lock, flags);
}

void rvhost_worker_unpublish(struct rvhost_worker *w)
{
	rvhost_worker_publish(w, NULL);
}

void rvhost_worker_wake(struct rvhost_worker *w)
{
	unsigned long flags;

	spin_lock_irqsave(&w->lock, flags);
	if (w->task)
		vhost_task_wake(w->task);
	spin_unlock_irqrestore(&w->lock, flags);
}

/* init_waitqueue_head() is a macro (with a lock class of its own). */
void rvhost_waitqueue_init(struct wait_queue_head *head)
{
	init_waitqueue_head(head);
}

/* poll_wait() is inline. */
void rvhost_poll_wait(struct file *file, struct wait_queue_head *head,
		      struct poll_table_struct *pt)
{
	poll_wait(file, head, pt);
}

/* wake_up_interruptible_poll() is a macro. */
void rvhost_waitqueue_wake_readable(struct wait_queue_head *head)
{
	wake_up_interruptible_poll(head, EPOLLIN | EPOLLRDNORM);
}

/* __set_current_state() is a macro. */
void rvhost_set_current_running(void)
{
	__set_current_state(TASK_RUNNING);
}

/* cond_resched() is a macro. */
void rvhost_cond_resched(void)
{
	cond_resched();
}

/* need_resched() and signal_pending() are inline. */
bool rvhost_busy_poll_must_end(void)
{
	return need_resched() || signal_pending(current);
}

/* cpu_relax() is inline. */
void rvhost_cpu_relax(void)
{
	cpu_relax();
}

/* skb_peek() and skb_vlan_tag_present() are inline, struct sock opaque to Rust. */
int rvhost_sock_queue_head_len(struct socket *sock)
{
	struct sk_buff_head *queue = &sock->sk->sk_receive_queue;
	struct sk_buff *head;
	unsigned long flags;
	int len = 0;

	spin_lock_irqsave(&queue->lock, flags);
	head = skb_peek(queue);
	if (head)
		len = head->len + (skb_vlan_tag_present(head) ? VLAN_HLEN : 0);
	spin_unlock_irqrestore(&queue->lock, flags);
	return len;
}

/* tun_get_tx_ring() and tap_get_ptr_ring() are inline stubs without CONFIG_TUN/CONFIG_TAP. */
struct ptr_ring *rvhost_tap_rx_ring(struct file *file)
{
	struct ptr_ring *ring = tun_get_tx_ring(file);

	if (IS_ERR(ring))
		ring = tap_get_ptr_ring(file);
	return IS_ERR(ring) ? NULL : ring;
}

/* ptr_ring_consume_batched() is inline. */
int rvhost_ptr_ring_consume_batched(struct ptr_ring *ring, void **packets, int n)
{
	return ptr_ring_consume_batched(ring, packets, n);
}

/* ptr_ring_unconsume() is inline; tun_ptr_free() frees skbs and tun's XDP frames alike. */
void rvhost_ptr_ring_unconsume(struct ptr_ring *ring, void **packets, int n)
{
	ptr_ring_unconsume(ring, packets, n, tun_ptr_free);
}

/* tun_is_xdp_frame(), tun_ptr_to_xdp() and __skb_array_len_with_tag() are inline. */
int rvhost_tap_ptr_len(void *packet)
{
	if (tun_is_xdp_frame(packet))
		return tun_ptr_to_xdp(packet)->len;
	return __skb_array_len_with_tag(packet);
}

/* get_user() and put_user() are macros (one access, where copy_from_user() may tear). */
int rvhost_get_user_u16(u16 *value, const void __user *addr)
{
	return get_user(*value, (const u16 __user *)addr);
}

int rvhost_put_user_u16(u16 value, void __user *addr)
{
	return put_user(value, (u16 __user *)addr);
}

/* kmap_local_page() and set_bit() are inline; upstream's set_bit_to_user() is static. */
int rvhost_set_user_bit(u64 addr, unsigned int bit)
{
	unsigned long uaddr = (unsigned long)addr;
	struct page *page;
	void *base;
	int r;

	if (uaddr != addr || bit >= BITS_PER_BYTE)
		return -EFAULT;
	r = pin_user_pages_fast(uaddr, 1, FOLL_WRITE, &page);
	if (r < 0)
		return r;
	if (r != 1)
		return -EFAULT;
	base = kmap_local_page(page);
	set_bit(bit + offset_in_page(uaddr) * BITS_PER_BYTE, base);
	kunmap_local(base);
	unpin_user_pages_dirty_lock(&page, 1, true);
	return 0;
}

/*
 * TX batching into a tap (rust/sys/tap_batch.rs lays the fragments out and
 * sends the batch): what Rust cannot reach in 6.12.
 */

/* struct sock is opaque in kernel::bindings: the tap's send buffer is read here. */
bool rvhost_tap_can_batch(struct socket *sock)
{
	return READ_ONCE(sock->sk->sk_sndbuf) == INT_MAX;
}

/* sock_flag() is inline and struct sock opaque to Rust. */
bool rvhost_sock_has_xdp(struct socket *sock)
{
	return sock_flag(sock->sk, SOCK_XDP);
}

/* NET_SKB_PAD is max(32, L1_CACHE_BYTES), which is no constant expression in 6.12. */
unsigned int rvhost_net_skb_pad(void)
{
	return NET_SKB_PAD;
}

/* page_frag_alloc_align() is inline. */
void *rvhost_page_frag_alloc(struct page_frag_cache *cache, unsigned int size)
{
	return page_frag_alloc_align(cache, size, GFP_KERNEL, SMP_CACHE_BYTES);
}

/* xdp_init_buff() and xdp_prepare_buff() are inline. */
void rvhost_xdp_buff_init(struct xdp_buff *xdp, void *buf, unsigned int buflen,
			  unsigned int headroom, unsigned int frame)
{
	xdp_init_buff(xdp, buflen, NULL);
	xdp_prepare_buff(xdp, buf, headroom, frame, true);
}
