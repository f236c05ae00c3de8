// SPDX-License-Identifier: GPL-2.0
/*
 * Forwarders to static inline kernel functions for the Rust side of
 * rvhost_net (see rvhost_helpers.h).
 */
#include <kunit/test.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
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

void rvhost_kunit_set_failure(struct kunit *test)
{
	kunit_set_failure(test);
}
