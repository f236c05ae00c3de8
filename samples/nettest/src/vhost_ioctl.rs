//! The vhost-net ioctls the differential tools (rvhost-probe, rvhost-fuzz)
//! make, each with its argument, defined once. Arguments that name guest
//! memory (`A`) or a descriptor (`F`) are the tool's own abstract values; a
//! [`Resolve`] turns them into what the kernel gets, so that one call means
//! the same thing to both devices under comparison.

use crate::{VringStats, RVHOST_GET_VRING_STATS};
use crate::{VHOST_GET_VRING_BUSYLOOP_TIMEOUT, VHOST_SET_VRING_BUSYLOOP_TIMEOUT};
use std::fs::File;
use std::os::fd::RawFd;
use vhost::vhost_kern::vhost_binding::{
    vhost_vring_addr, vhost_vring_file, vhost_vring_state, VHOST_GET_BACKEND_FEATURES,
    VHOST_GET_FEATURES, VHOST_GET_VRING_BASE, VHOST_NET_SET_BACKEND, VHOST_RESET_OWNER,
    VHOST_SET_BACKEND_FEATURES, VHOST_SET_FEATURES, VHOST_SET_LOG_BASE, VHOST_SET_LOG_FD,
    VHOST_SET_MEM_TABLE, VHOST_SET_OWNER, VHOST_SET_VRING_ADDR, VHOST_SET_VRING_BASE,
    VHOST_SET_VRING_CALL, VHOST_SET_VRING_ERR, VHOST_SET_VRING_KICK, VHOST_SET_VRING_NUM,
};
use vmm_sys_util::ioctl::{ioctl, ioctl_with_mut_ref, ioctl_with_ptr, ioctl_with_ref};

/// The buffer an unknown request gets, in `u32`s: larger than any size an
/// `_IOC` number the tools make up carries (at most 72 bytes).
const UNKNOWN_ARG_WORDS: usize = 64;

/// Turns a tool's address and descriptor arguments into the numbers the
/// kernel gets.
pub trait Resolve<A, F> {
    /// The user address `addr` names.
    fn address(&self, addr: A) -> u64;
    /// The descriptor `fd` names (`-1` or a closed one included).
    fn descriptor(&self, fd: F) -> RawFd;
}

/// One `struct vhost_memory_region`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region<A> {
    pub gpa: u64,
    pub size: u64,
    pub user: A,
}

/// One vhost-net ioctl; `M` holds the regions of a memory table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ioctl<A, F, M> {
    SetOwner,
    ResetOwner,
    GetFeatures,
    /// `VHOST_GET_FEATURES` with a NULL pointer.
    GetFeaturesNull,
    SetFeatures(u64),
    /// `VHOST_SET_FEATURES` with a NULL pointer.
    SetFeaturesNull,
    GetBackendFeatures,
    SetBackendFeatures(u64),
    /// `nregions` defaults to the number of regions given.
    SetMemTable {
        regions: M,
        padding: u32,
        nregions: Option<u32>,
    },
    /// `VHOST_SET_MEM_TABLE` with a NULL pointer.
    SetMemTableNull,
    SetLogBase(A),
    SetLogFd(F),
    SetVringNum {
        index: u32,
        num: u32,
    },
    SetVringBase {
        index: u32,
        num: u32,
    },
    GetVringBase {
        index: u32,
    },
    SetVringAddr {
        index: u32,
        flags: u32,
        desc: A,
        avail: A,
        used: A,
        log: u64,
    },
    SetVringKick {
        index: u32,
        fd: F,
    },
    SetVringCall {
        index: u32,
        fd: F,
    },
    SetVringErr {
        index: u32,
        fd: F,
    },
    NetSetBackend {
        index: u32,
        fd: F,
    },
    SetBusyloop {
        index: u32,
        num: u32,
    },
    GetBusyloop {
        index: u32,
    },
    /// rvhost's own statistics ioctl (`rust/rvhost_uapi.h`).
    GetVringStats {
        index: u32,
    },
    /// rvhost's own interrupt coalescing ioctl (`rust/rvhost_uapi.h`).
    SetVringCoalesce {
        index: u32,
        max_packets: u32,
        max_usecs: u32,
        flags: u32,
    },
    /// A request number neither device defines; with `Some(index)` the
    /// argument is a zeroed buffer starting with `index`, else NULL.
    Unknown {
        request: u64,
        index: Option<u32>,
    },
}

/// What a call returned: the return value, the errno when negative, and the
/// value it reported back, if it reports one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub ret: i32,
    pub errno: i32,
    pub value: Option<u64>,
}

fn set_state(dev: &File, req: u64, index: u32, num: u32) -> i32 {
    let state = vhost_vring_state { index, num };
    // SAFETY: the request reads one vhost_vring_state.
    unsafe { ioctl_with_ref(dev, req, &state) }
}

/// A request that reads `{index, num}` and writes it back.
fn get_state(dev: &File, req: u64, index: u32) -> (i32, Option<u64>) {
    let mut state = vhost_vring_state { index, num: 0 };
    // SAFETY: the request reads and writes one vhost_vring_state.
    let ret = unsafe { ioctl_with_mut_ref(dev, req, &mut state) };
    (ret, (ret == 0).then_some(state.num.into()))
}

fn set_file(dev: &File, req: u64, index: u32, fd: RawFd) -> i32 {
    let file = vhost_vring_file { index, fd };
    // SAFETY: the request reads one vhost_vring_file.
    unsafe { ioctl_with_ref(dev, req, &file) }
}

fn set_u64(dev: &File, req: u64, bits: u64) -> i32 {
    // SAFETY: the request reads one u64.
    unsafe { ioctl_with_ref(dev, req, &bits) }
}

fn get_u64(dev: &File, req: u64) -> (i32, Option<u64>) {
    let mut bits = 0u64;
    // SAFETY: the request writes one u64 into `bits`.
    let ret = unsafe { ioctl_with_mut_ref(dev, req, &mut bits) };
    (ret, (ret == 0).then_some(bits))
}

/// A request made with a NULL pointer (the kernel checks it).
fn null_arg(dev: &File, req: u64) -> i32 {
    // SAFETY: a NULL pointer: nothing of ours is read or written.
    unsafe { ioctl_with_ptr(dev, req, std::ptr::null::<u8>()) }
}

impl<A, F, M> Ioctl<A, F, M> {
    /// The request's name, as the tools print it.
    pub fn name(&self) -> &'static str {
        match self {
            Ioctl::SetOwner => "SET_OWNER",
            Ioctl::ResetOwner => "RESET_OWNER",
            Ioctl::GetFeatures => "GET_FEATURES",
            Ioctl::GetFeaturesNull => "GET_FEATURES(NULL)",
            Ioctl::SetFeatures(_) => "SET_FEATURES",
            Ioctl::SetFeaturesNull => "SET_FEATURES(NULL)",
            Ioctl::GetBackendFeatures => "GET_BACKEND_FEATURES",
            Ioctl::SetBackendFeatures(_) => "SET_BACKEND_FEATURES",
            Ioctl::SetMemTable { .. } => "SET_MEM_TABLE",
            Ioctl::SetMemTableNull => "SET_MEM_TABLE(NULL)",
            Ioctl::SetLogBase(_) => "SET_LOG_BASE",
            Ioctl::SetLogFd(_) => "SET_LOG_FD",
            Ioctl::SetVringNum { .. } => "SET_VRING_NUM",
            Ioctl::SetVringBase { .. } => "SET_VRING_BASE",
            Ioctl::GetVringBase { .. } => "GET_VRING_BASE",
            Ioctl::SetVringAddr { .. } => "SET_VRING_ADDR",
            Ioctl::SetVringKick { .. } => "SET_VRING_KICK",
            Ioctl::SetVringCall { .. } => "SET_VRING_CALL",
            Ioctl::SetVringErr { .. } => "SET_VRING_ERR",
            Ioctl::NetSetBackend { .. } => "NET_SET_BACKEND",
            Ioctl::SetBusyloop { .. } => "SET_VRING_BUSYLOOP_TIMEOUT",
            Ioctl::GetBusyloop { .. } => "GET_VRING_BUSYLOOP_TIMEOUT",
            Ioctl::GetVringStats { .. } => "RVHOST_GET_VRING_STATS",
            Ioctl::SetVringCoalesce { .. } => "RVHOST_SET_VRING_COALESCE",
            Ioctl::Unknown { .. } => "unknown ioctl",
        }
    }
}

impl<A: Copy, F: Copy, M: AsRef<[Region<A>]>> Ioctl<A, F, M> {
    /// Makes the call on `dev`, its arguments resolved by `args`.
    pub fn run(&self, dev: &File, args: &impl Resolve<A, F>) -> Outcome {
        let mut value = None;
        // For the requests that report a value back.
        let mut keep_value = |(ret, reported): (i32, Option<u64>)| {
            value = reported;
            ret
        };
        let ret = match *self {
            // SAFETY: no argument.
            Ioctl::SetOwner => unsafe { ioctl(dev, VHOST_SET_OWNER()) },
            // SAFETY: no argument.
            Ioctl::ResetOwner => unsafe { ioctl(dev, VHOST_RESET_OWNER()) },
            Ioctl::GetFeatures => keep_value(get_u64(dev, VHOST_GET_FEATURES())),
            Ioctl::GetFeaturesNull => null_arg(dev, VHOST_GET_FEATURES()),
            Ioctl::SetFeatures(bits) => set_u64(dev, VHOST_SET_FEATURES(), bits),
            Ioctl::SetFeaturesNull => null_arg(dev, VHOST_SET_FEATURES()),
            Ioctl::GetBackendFeatures => keep_value(get_u64(dev, VHOST_GET_BACKEND_FEATURES())),
            Ioctl::SetBackendFeatures(bits) => set_u64(dev, VHOST_SET_BACKEND_FEATURES(), bits),
            Ioctl::SetMemTable {
                ref regions,
                padding,
                nregions,
            } => {
                let regions = regions.as_ref();
                // struct vhost_memory: nregions, padding, then the regions
                // (guest_phys_addr, memory_size, userspace_addr, flags_padding).
                let mut buf = vec![0u64; 1 + 4 * regions.len().max(1)];
                let n = nregions.unwrap_or(regions.len() as u32);
                buf[0] = u64::from(n) | (u64::from(padding) << 32);
                for (i, r) in regions.iter().enumerate() {
                    buf[1 + 4 * i] = r.gpa;
                    buf[2 + 4 * i] = r.size;
                    buf[3 + 4 * i] = args.address(r.user);
                }
                // SAFETY: the kernel reads the header and at most `n` regions; a
                // larger `n` than provided is only used for counts it refuses.
                unsafe { ioctl_with_ptr(dev, VHOST_SET_MEM_TABLE(), buf.as_ptr()) }
            }
            Ioctl::SetMemTableNull => null_arg(dev, VHOST_SET_MEM_TABLE()),
            Ioctl::SetLogBase(addr) => set_u64(dev, VHOST_SET_LOG_BASE(), args.address(addr)),
            Ioctl::SetLogFd(fd) => {
                let fd: libc::c_int = args.descriptor(fd);
                // SAFETY: the request reads one int.
                unsafe { ioctl_with_ref(dev, VHOST_SET_LOG_FD(), &fd) }
            }
            Ioctl::SetVringNum { index, num } => set_state(dev, VHOST_SET_VRING_NUM(), index, num),
            Ioctl::SetVringBase { index, num } => {
                set_state(dev, VHOST_SET_VRING_BASE(), index, num)
            }
            Ioctl::GetVringBase { index } => {
                keep_value(get_state(dev, VHOST_GET_VRING_BASE(), index))
            }
            Ioctl::SetVringAddr {
                index,
                flags,
                desc,
                avail,
                used,
                log,
            } => {
                let addr = vhost_vring_addr {
                    index,
                    flags,
                    desc_user_addr: args.address(desc),
                    used_user_addr: args.address(used),
                    avail_user_addr: args.address(avail),
                    log_guest_addr: log,
                };
                // SAFETY: the request reads one vhost_vring_addr.
                unsafe { ioctl_with_ref(dev, VHOST_SET_VRING_ADDR(), &addr) }
            }
            Ioctl::SetVringKick { index, fd } => {
                set_file(dev, VHOST_SET_VRING_KICK(), index, args.descriptor(fd))
            }
            Ioctl::SetVringCall { index, fd } => {
                set_file(dev, VHOST_SET_VRING_CALL(), index, args.descriptor(fd))
            }
            Ioctl::SetVringErr { index, fd } => {
                set_file(dev, VHOST_SET_VRING_ERR(), index, args.descriptor(fd))
            }
            Ioctl::NetSetBackend { index, fd } => {
                set_file(dev, VHOST_NET_SET_BACKEND(), index, args.descriptor(fd))
            }
            Ioctl::SetBusyloop { index, num } => {
                set_state(dev, VHOST_SET_VRING_BUSYLOOP_TIMEOUT(), index, num)
            }
            Ioctl::GetBusyloop { index } => {
                keep_value(get_state(dev, VHOST_GET_VRING_BUSYLOOP_TIMEOUT(), index))
            }
            Ioctl::GetVringStats { index } => {
                let mut stats = VringStats {
                    index,
                    ..Default::default()
                };
                // SAFETY: the request reads and writes one rvhost_vring_stats.
                unsafe { ioctl_with_mut_ref(dev, RVHOST_GET_VRING_STATS(), &mut stats) }
            }
            Ioctl::SetVringCoalesce {
                index,
                max_packets,
                max_usecs,
                flags,
            } => {
                let c = crate::VringCoalesce {
                    index,
                    max_packets,
                    max_usecs,
                    flags,
                };
                // SAFETY: the request reads one rvhost_vring_coalesce.
                unsafe { ioctl_with_ref(dev, crate::RVHOST_SET_VRING_COALESCE(), &c) }
            }
            Ioctl::Unknown { request, index } => match index {
                None => null_arg(dev, request),
                Some(index) => {
                    let mut buf = [0u32; UNKNOWN_ARG_WORDS];
                    buf[0] = index;
                    // SAFETY: the kernel reads or writes at most the
                    // request's size from the start of `buf`.
                    unsafe { ioctl_with_mut_ref(dev, request, &mut buf) }
                }
            },
        };
        let errno = if ret < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        };
        Outcome { ret, errno, value }
    }
}
