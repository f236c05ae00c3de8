// SPDX-License-Identifier: GPL-2.0

//! rvhost_net: an in-kernel virtio-net host ("vhost-net") written in Rust.
//!
//! `/dev/rvhost-net` speaks the vhost / vhost-net ioctl ABI of
//! `include/uapi/linux/vhost.h`, so a VMM that drives `/dev/vhost-net` can drive
//! it unchanged. See `Documentation/` in the repository.
//!
//! Layout (`Documentation/architecture.md` draws it): the crate denies
//! `unsafe` code; `sys` (`rust/sys/`) is the one place that may use it, thin
//! wrappers over kernel interfaces (the misc device, the owner's mm, user
//! access, eventfds, sockets, the tap batch, the worker and its polls, the
//! file's own poll queue, debugfs, tracepoints, extra bindings), each `unsafe` block with its safety
//! comment, over C helpers only for what Rust cannot reach in 6.12
//! (`helpers.c`, `observe.c`). `logic` is the pure, `no_std`,
//! allocation-free logic shared with the host test crate; in safe Rust,
//! `device` is the driver (ioctls, the IOTLB messages of the file's
//! read/write/poll in `device::iotlb`, then per round `device::tx` and
//! `device::rx` over `device::datapath`), `guest_space` the translation of
//! guest addresses (memory table or IOTLB), `user_ring` the split ring in
//! the owner's memory and `user_addr` typed access at a user address. The KUnit
//! suites are a module of their own (`rvhost_kunit.rs`), so this one runs no
//! tests when loaded.

#![deny(unsafe_code)]

use kernel::{c_str, prelude::*};
use sys::{debugfs, miscdev};

mod abi;
mod device;
mod errno;
mod guest_space;
#[path = "logic/lib.rs"]
pub mod logic;
#[allow(unsafe_code)]
mod sys;
mod user_addr;
mod user_ring;

module! {
    type: RvhostNet,
    name: "rvhost_net",
    author: "rvhost developers",
    description: "In-kernel virtio-net host (vhost-net ABI) in Rust",
    license: "GPL",
}

struct RvhostNet {
    _misc: Pin<KBox<miscdev::Registration<device::VhostNet>>>,
    /// `rvhost_net/` in debugfs; declared last, so removed after the device
    /// node is gone (open devices hold the module, so none is left by then).
    _debugfs: debugfs::Root,
}

impl kernel::Module for RvhostNet {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let debugfs = debugfs::Root::create(c_str!("rvhost_net"));
        let misc = KBox::pin_init(
            miscdev::Registration::register(c_str!("rvhost-net"), module),
            GFP_KERNEL,
        )?;
        pr_info!("/dev/rvhost-net registered\n");
        Ok(Self {
            _misc: misc,
            _debugfs: debugfs,
        })
    }
}
