// SPDX-License-Identifier: GPL-2.0
/*
 * Forwarders to static inline kernel functions for the Rust side of
 * rvhost_net (see rvhost_helpers.h).
 */
#include <kunit/test.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/net.h>
#include <linux/socket.h>
#include <linux/uaccess.h>
#include <net/sock.h>
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

void rvhost_kunit_set_failure(struct kunit *test)
{
	kunit_set_failure(test);
}
