// SPDX-License-Identifier: GPL-2.0
/*
 * Forwarders to static inline kernel functions for the Rust side of
 * rvhost_net (see rvhost_helpers.h).
 */
#include <kunit/test.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/kthread.h>
#include <linux/net.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/socket.h>
#include <linux/uaccess.h>
#include <net/sock.h>
#include <linux/if_vlan.h>
#include <linux/skbuff.h>
#include "rvhost_helpers.h"

struct mm_struct *rvhost_current_mm_grab(void)
{
	struct mm_struct *mm = current->mm;

	if (mm)
		mmgrab(mm);
	return mm;
}

void rvhost_mmdrop(struct mm_struct *mm)
{
	mmdrop(mm);
}

bool rvhost_access_ok(u64 addr, u64 size)
{
	return access_ok((void __user *)(unsigned long)addr, size);
}

bool rvhost_sock_is_raw_packet(struct socket *sock)
{
	return sock->sk->sk_type == SOCK_RAW && sock->sk->sk_family == AF_PACKET;
}

struct rvhost_poll {
	poll_table table;
	wait_queue_head_t *wqh;
	wait_queue_entry_t wait;
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

struct rvhost_poll *rvhost_poll_create(struct file *file, bool writable,
				       void (*wake)(void *data), void *data)
{
	struct rvhost_poll *p = kzalloc(sizeof(*p), GFP_KERNEL);

	if (!p)
		return NULL;
	init_poll_funcptr(&p->table, rvhost_poll_queue);
	init_waitqueue_func_entry(&p->wait, rvhost_poll_wakeup);
	p->mask = writable ? EPOLLOUT : EPOLLIN;
	p->wake = wake;
	p->data = data;
	if (vfs_poll(file, &p->table) & p->mask)
		wake(data);
	return p;
}

void rvhost_poll_destroy(struct rvhost_poll *p)
{
	if (p->wqh)
		remove_wait_queue(p->wqh, &p->wait);
	kfree(p);
}

struct task_struct *rvhost_kthread_create(int (*fn)(void *data), void *data, const char *name)
{
	struct task_struct *task = kthread_create(fn, data, "%s", name);

	if (!IS_ERR(task))
		get_task_struct(task);
	return task;
}

void rvhost_get_task(struct task_struct *task)
{
	get_task_struct(task);
}

void rvhost_put_task(struct task_struct *task)
{
	put_task_struct(task);
}

void rvhost_set_current_interruptible(void)
{
	set_current_state(TASK_INTERRUPTIBLE);
}

void rvhost_set_current_running(void)
{
	__set_current_state(TASK_RUNNING);
}

bool rvhost_kthread_use_mm(struct mm_struct *mm)
{
	if (!mmget_not_zero(mm))
		return false;
	kthread_use_mm(mm);
	return true;
}

void rvhost_kthread_unuse_mm(struct mm_struct *mm)
{
	kthread_unuse_mm(mm);
	mmput(mm);
}

int rvhost_sock_send_user(struct socket *sock, struct iovec *iov, unsigned long nr, size_t len)
{
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT };

	iov_iter_init(&msg.msg_iter, ITER_SOURCE, iov, nr, len);
	return sock_sendmsg(sock, &msg);
}

int rvhost_sock_peek_len(struct socket *sock)
{
	struct sock *sk = sock->sk;
	struct sk_buff *head;
	unsigned long flags;
	int len = 0;

	if (sock->ops->peek_len)
		return sock->ops->peek_len(sock);
	spin_lock_irqsave(&sk->sk_receive_queue.lock, flags);
	head = skb_peek(&sk->sk_receive_queue);
	if (head)
		len = head->len + (skb_vlan_tag_present(head) ? VLAN_HLEN : 0);
	spin_unlock_irqrestore(&sk->sk_receive_queue.lock, flags);
	return len;
}

int rvhost_sock_recv_user(struct socket *sock, struct iovec *iov, unsigned long nr, size_t len)
{
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_TRUNC };

	iov_iter_init(&msg.msg_iter, ITER_DEST, iov, nr, len);
	return sock_recvmsg(sock, &msg, MSG_DONTWAIT | MSG_TRUNC);
}

int rvhost_sock_discard(struct socket *sock)
{
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_TRUNC };
	struct kvec vec;
	char byte;

	vec.iov_base = &byte;
	vec.iov_len = 1;
	iov_iter_kvec(&msg.msg_iter, ITER_DEST, &vec, 1, 1);
	return sock_recvmsg(sock, &msg, MSG_DONTWAIT | MSG_TRUNC);
}

void rvhost_kunit_set_failure(struct kunit *test)
{
	kunit_set_failure(test);
}

int rvhost_get_user_u16(u16 *value, const void __user *addr)
{
	return get_user(*value, (const u16 __user *)addr);
}

int rvhost_put_user_u16(u16 value, void __user *addr)
{
	return put_user(value, (u16 __user *)addr);
}
