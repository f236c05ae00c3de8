// SPDX-License-Identifier: GPL-2.0

//! Kernel bindings: everything in `kernel::bindings`, plus what bindgen
//! generated from `rust/rvhost_bindings.h` (misc devices, vhost uapi structs and
//! ioctl numbers, our C helpers).

#![allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    dead_code,
    improper_ctypes,
    missing_docs,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unreachable_pub,
    unsafe_op_in_unsafe_fn
)]

pub(crate) use kernel::bindings::*;

include!("../rvhost_bindings_generated.rs");

// SAFETY: the vhost uapi argument structs are plain integers without padding
// holes that matter for reading: every bit pattern is a valid value.
unsafe impl kernel::types::FromBytes for vhost_vring_state {}
// SAFETY: as above.
unsafe impl kernel::types::FromBytes for vhost_vring_file {}
// SAFETY: as above.
unsafe impl kernel::types::FromBytes for vhost_vring_addr {}
// SAFETY: as above.
unsafe impl kernel::types::FromBytes for vhost_memory_region {}
// SAFETY: as above (the flexible array of regions is zero-sized here).
unsafe impl kernel::types::FromBytes for vhost_memory {}
// SAFETY: `vhost_vring_state` is two `u32`s: no padding, so every byte is initialised.
unsafe impl kernel::types::AsBytes for vhost_vring_state {}
// SAFETY: `rvhost_vring_stats` is integers only, without padding holes
// (the explicit `padding` field is written like the rest).
unsafe impl kernel::types::AsBytes for rvhost_vring_stats {}
// SAFETY: every bit pattern is a valid `rvhost_vring_stats`.
unsafe impl kernel::types::FromBytes for rvhost_vring_stats {}
// SAFETY: `rvhost_vring_coalesce` is four `u32`s: no padding, every bit
// pattern valid, every byte initialised.
unsafe impl kernel::types::AsBytes for rvhost_vring_coalesce {}
// SAFETY: as above.
unsafe impl kernel::types::FromBytes for rvhost_vring_coalesce {}
