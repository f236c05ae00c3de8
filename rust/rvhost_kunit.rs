// SPDX-License-Identifier: GPL-2.0

//! rvhost_net_kunit: the KUnit suites of rvhost_net, in a module of their
//! own so that the shipped module runs no tests when it is loaded. They run
//! when this one is (`insmod rvhost_net_kunit.ko`; `make check` does), on
//! the pure logic as compiled for the kernel (the same files `cargo test`
//! checks on the host) and on the kernel-side glue around it.

use kernel::prelude::*;

#[macro_use]
mod ktest;

mod errno;
#[path = "logic/lib.rs"]
#[deny(unsafe_code)]
pub mod logic;
/// The part of `rust/sys/` the suites use.
mod sys {
    pub(crate) mod access;
    pub(crate) mod bindings;
}
#[deny(unsafe_code)]
mod tests;

module! {
    type: RvhostNetKunit,
    name: "rvhost_net_kunit",
    author: "rvhost developers",
    description: "KUnit suites of rvhost_net",
    license: "GPL",
}

struct RvhostNetKunit;

impl kernel::Module for RvhostNetKunit {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // The suites are in `.kunit_test_suites`: KUnit runs them once this
        // returns and the module is live.
        Ok(Self)
    }
}
