// SPDX-License-Identifier: GPL-2.0
/*
 * Forwarders to static inline kernel functions for rvhost_net_kunit (the
 * module of rvhost's KUnit suites); the same as helpers.c's, which belong to
 * the other module.
 */
#include <kunit/test.h>
#include <linux/uaccess.h>
#include "rvhost_helpers.h"

void rvhost_kunit_set_failure(struct kunit *test)
{
	kunit_set_failure(test);
}

bool rvhost_access_ok(u64 addr, u64 size)
{
	return access_ok((void __user *)(unsigned long)addr, size);
}
