/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for rvhost_net: static inline kernel functions and macros that
 * Rust cannot call directly. Each is a one-line forwarder; the logic lives in
 * Rust.
 */
#ifndef RVHOST_HELPERS_H
#define RVHOST_HELPERS_H

struct mm_struct;
struct kunit;
struct socket;

/* current->mm with an mmgrab() reference taken, or NULL for a kernel thread. */
struct mm_struct *rvhost_current_mm_grab(void);
/* mmdrop(): drops a reference taken by rvhost_current_mm_grab(). */
void rvhost_mmdrop(struct mm_struct *mm);
/* access_ok(): whether [addr, addr + size) is a user range. */
bool rvhost_access_ok(u64 addr, u64 size);
/* Whether @sock is an AF_PACKET SOCK_RAW socket. */
bool rvhost_sock_is_raw_packet(struct socket *sock);
/* kunit_set_failure(): marks the running KUnit case failed. */
void rvhost_kunit_set_failure(struct kunit *test);

#endif
