// SPDX-License-Identifier: GPL-2.0

//! rvhost's pure logic: no allocation, no kernel types, `no_std`.
//!
//! The same files are compiled into `rvhost_net.ko` (as modules of the kernel
//! crate, tested there with KUnit) and into the host crate `rvhost-logic`
//! (`samples/rvhost-logic`, tested with `cargo test`).

pub mod coalesce;
pub mod dirty_log;
pub mod errno;
pub mod features;
pub mod ioctl;
pub mod iotlb;
pub mod memtable;
pub mod owner;
pub mod ratelimit;
pub mod ring_config;
pub mod ring_fault;
pub mod round;
pub mod split_ring;
pub mod tap_frame;
