// SPDX-License-Identifier: GPL-2.0
/*
 * What rvhost_net shows an operator, as far as it must be C: tracepoints
 * (TRACE_EVENT expands to C only; each trace_*() is an inline static-key
 * check, forwarded here) and debugfs files whose contents Rust writes (the
 * seq_file entry point single_open() and the file_operations table that
 * uses it are C interfaces without Rust abstractions in 6.12).
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>
#define CREATE_TRACE_POINTS
#include "rvhost_trace.h"
#include "rvhost_helpers.h"

void rvhost_trace_round(u32 dev, u32 queue, u32 packets, u64 bytes, u32 descs, u16 used_idx,
			bool requeued)
{
	trace_rvhost_round(dev, queue, packets, bytes, descs, used_idx, requeued);
}

void rvhost_trace_notify(u32 dev, u32 queue, u16 used_idx, bool signalled)
{
	trace_rvhost_notify(dev, queue, used_idx, signalled);
}

void rvhost_trace_ring_error(u32 dev, u32 queue, const char *what)
{
	trace_rvhost_ring_error(dev, queue, what);
}

/* single_open() passes the file's data in m->private, not as show's argument. */
static int rvhost_debugfs_seq_show(struct seq_file *m, void *unused)
{
	return rvhost_debugfs_show(m, m->private);
}

static int rvhost_debugfs_open(struct inode *inode, struct file *file)
{
	return single_open(file, rvhost_debugfs_seq_show, inode->i_private);
}

static const struct file_operations rvhost_debugfs_fops = {
	.owner = THIS_MODULE,
	.open = rvhost_debugfs_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = single_release,
};

struct dentry *rvhost_debugfs_dir(const char *name, struct dentry *parent)
{
	struct dentry *dir = debugfs_create_dir(name, parent);

	return IS_ERR(dir) ? NULL : dir;
}

struct dentry *rvhost_debugfs_file(const char *name, struct dentry *parent, void *data)
{
	struct dentry *file = debugfs_create_file(name, 0444, parent, data, &rvhost_debugfs_fops);

	return IS_ERR(file) ? NULL : file;
}

void rvhost_debugfs_remove(struct dentry *dentry)
{
	debugfs_remove(dentry);
}

void rvhost_seq_write(struct seq_file *m, const char *bytes, size_t len)
{
	seq_write(m, bytes, len);
}
