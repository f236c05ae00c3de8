/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rvhost's tracepoints (`perf list 'rvhost:*'`), beside kvm's: one event per
 * worker round that used buffers, one per notification decision, one per
 * malformed ring. Emitted from Rust through the forwarders in observe.c.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM rvhost

#if !defined(RVHOST_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define RVHOST_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(rvhost_round,
	TP_PROTO(u32 dev, u32 queue, u32 packets, u64 bytes, u32 descs, u16 used_idx, bool requeued),
	TP_ARGS(dev, queue, packets, bytes, descs, used_idx, requeued),
	TP_STRUCT__entry(
		__field(u32, dev)
		__field(u32, queue)
		__field(u32, packets)
		__field(u64, bytes)
		__field(u32, descs)
		__field(u16, used_idx)
		__field(bool, requeued)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->queue = queue;
		__entry->packets = packets;
		__entry->bytes = bytes;
		__entry->descs = descs;
		__entry->used_idx = used_idx;
		__entry->requeued = requeued;
	),
	TP_printk("dev=%u queue=%s packets=%u bytes=%llu descs=%u used_idx=%u requeued=%d",
		  __entry->dev, __entry->queue ? "tx" : "rx", __entry->packets, __entry->bytes,
		  __entry->descs, __entry->used_idx, __entry->requeued)
);

TRACE_EVENT(rvhost_notify,
	TP_PROTO(u32 dev, u32 queue, u16 used_idx, bool signalled),
	TP_ARGS(dev, queue, used_idx, signalled),
	TP_STRUCT__entry(
		__field(u32, dev)
		__field(u32, queue)
		__field(u16, used_idx)
		__field(bool, signalled)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->queue = queue;
		__entry->used_idx = used_idx;
		__entry->signalled = signalled;
	),
	TP_printk("dev=%u queue=%s used_idx=%u %s", __entry->dev, __entry->queue ? "tx" : "rx",
		  __entry->used_idx, __entry->signalled ? "signalled" : "suppressed")
);

TRACE_EVENT(rvhost_ring_error,
	TP_PROTO(u32 dev, u32 queue, const char *what),
	TP_ARGS(dev, queue, what),
	TP_STRUCT__entry(
		__field(u32, dev)
		__field(u32, queue)
		__string(what, what)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->queue = queue;
		__assign_str(what);
	),
	TP_printk("dev=%u queue=%s %s", __entry->dev, __entry->queue ? "tx" : "rx",
		  __get_str(what))
);

#endif

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE rvhost_trace
#include <trace/define_trace.h>
