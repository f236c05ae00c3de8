// SPDX-License-Identifier: GPL-2.0

//! The thin unsafe layer: wrappers over kernel interfaces the `kernel` crate
//! of 6.12 does not offer, each exposing a safe API to the driver. The only
//! modules of the crate allowed `unsafe` code (the crate root denies it).

pub(crate) mod access;
pub(crate) mod bindings;
pub(crate) mod debugfs;
pub(crate) mod eventfd;
pub(crate) mod miscdev;
pub(crate) mod mm;
pub(crate) mod poll_queue;
pub(crate) mod socket;
pub(crate) mod tap_batch;
pub(crate) mod tap_rx_ring;
pub(crate) mod trace;
pub(crate) mod uaccess_once;
pub(crate) mod worker;
