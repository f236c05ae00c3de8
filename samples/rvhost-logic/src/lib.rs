//! Host build of rvhost's pure logic. The sources live with the kernel module in
//! `rust/logic/` and are compiled here unchanged, so `cargo test` checks exactly
//! the code the module runs.
#![no_std]

#[path = "../../../rust/logic/lib.rs"]
mod logic;

pub use logic::*;
