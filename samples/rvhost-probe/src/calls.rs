//! The ioctls a probe makes, each with the argument it passes.

use crate::context::{Context, Fd};
use std::fs::File;
use vhost::vhost_kern::vhost_binding::{
    vhost_memory_region, vhost_vring_addr, vhost_vring_file, vhost_vring_state,
    VHOST_GET_BACKEND_FEATURES, VHOST_GET_FEATURES, VHOST_GET_VRING_BASE, VHOST_NET_SET_BACKEND,
    VHOST_RESET_OWNER, VHOST_SET_BACKEND_FEATURES, VHOST_SET_FEATURES, VHOST_SET_LOG_BASE,
    VHOST_SET_LOG_FD, VHOST_SET_MEM_TABLE, VHOST_SET_OWNER, VHOST_SET_VRING_ADDR,
    VHOST_SET_VRING_BASE, VHOST_SET_VRING_CALL, VHOST_SET_VRING_ERR, VHOST_SET_VRING_KICK,
    VHOST_SET_VRING_NUM,
};
use vmm_sys_util::ioctl::{ioctl, ioctl_with_mut_ref, ioctl_with_ptr, ioctl_with_ref};
use vmm_sys_util::ioctl_iow_nr;

// Not in the vhost crate's list.
ioctl_iow_nr!(
    VHOST_SET_VRING_BUSYLOOP_TIMEOUT,
    0xaf,
    0x23,
    vhost_vring_state
);
ioctl_iow_nr!(
    VHOST_GET_VRING_BUSYLOOP_TIMEOUT,
    0xaf,
    0x24,
    vhost_vring_state
);

/// An address argument: inside the probe's guest memory, or a raw value.
#[derive(Clone, Copy, Debug)]
pub enum Addr {
    /// The user address of this guest-physical address of the probe's memory.
    Gpa(u64),
    /// This exact value.
    Raw(u64),
}

impl Addr {
    fn resolve(self, ctx: &Context) -> u64 {
        match self {
            Addr::Gpa(gpa) => ctx.uaddr(gpa),
            Addr::Raw(v) => v,
        }
    }
}

/// One `struct vhost_memory_region`.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub gpa: u64,
    pub size: u64,
    pub user: Addr,
}

/// One ioctl of a probe sequence.
#[derive(Clone, Copy, Debug)]
pub enum Ioctl {
    GetFeatures,
    GetFeaturesNull,
    SetFeatures(u64),
    SetFeaturesNull,
    GetBackendFeatures,
    SetBackendFeatures(u64),
    SetOwner,
    ResetOwner,
    /// `nregions` defaults to the number of regions given.
    SetMemTable {
        regions: &'static [Region],
        padding: u32,
        nregions: Option<u32>,
    },
    SetMemTableNull,
    SetLogBase(u64),
    SetLogFd(Fd),
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
        desc: Addr,
        avail: Addr,
        used: Addr,
        log: u64,
    },
    SetVringKick {
        index: u32,
        fd: Fd,
    },
    SetVringCall {
        index: u32,
        fd: Fd,
    },
    SetVringErr {
        index: u32,
        fd: Fd,
    },
    SetBusyloop {
        index: u32,
        num: u32,
    },
    GetBusyloop {
        index: u32,
    },
    NetSetBackend {
        index: u32,
        fd: Fd,
    },
    Unknown {
        request: u64,
        index: Option<u32>,
    },
}

/// What a call returned: the return value or errno, plus any value read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub ret: i32,
    pub errno: i32,
    pub value: Option<u64>,
}

fn state_call(dev: &File, req: u64, index: u32, num: u32) -> i32 {
    let state = vhost_vring_state { index, num };
    // SAFETY: the request reads one vhost_vring_state.
    unsafe { ioctl_with_ref(dev, req, &state) }
}

fn file_call(dev: &File, req: u64, index: u32, fd: i32) -> i32 {
    let file = vhost_vring_file { index, fd };
    // SAFETY: the request reads one vhost_vring_file.
    unsafe { ioctl_with_ref(dev, req, &file) }
}

/// A request that reads `{index, num}` and writes it back.
fn state_get(dev: &File, req: u64, index: u32) -> (i32, Option<u64>) {
    let mut state = vhost_vring_state { index, num: 0 };
    // SAFETY: the request reads and writes one vhost_vring_state.
    let ret = unsafe { ioctl_with_mut_ref(dev, req, &mut state) };
    (ret, (ret == 0).then_some(state.num.into()))
}

impl Ioctl {
    pub fn run(self, dev: &File, ctx: &Context) -> Outcome {
        let mut value = None;
        let ret = match self {
            Ioctl::GetFeatures | Ioctl::GetBackendFeatures => {
                let mut bits = 0u64;
                let req = match self {
                    Ioctl::GetFeatures => VHOST_GET_FEATURES(),
                    _ => VHOST_GET_BACKEND_FEATURES(),
                };
                // SAFETY: the request writes one u64 into `bits`.
                let ret = unsafe { ioctl_with_mut_ref(dev, req, &mut bits) };
                value = (ret == 0).then_some(bits);
                ret
            }
            // SAFETY: the kernel checks the NULL pointer; nothing of ours is written.
            Ioctl::GetFeaturesNull => unsafe {
                ioctl_with_ptr(dev, VHOST_GET_FEATURES(), std::ptr::null_mut::<u64>())
            },
            // SAFETY: the request reads one u64.
            Ioctl::SetFeatures(bits) => unsafe { ioctl_with_ref(dev, VHOST_SET_FEATURES(), &bits) },
            // SAFETY: the kernel checks the NULL pointer.
            Ioctl::SetFeaturesNull => unsafe {
                ioctl_with_ptr(dev, VHOST_SET_FEATURES(), std::ptr::null::<u64>())
            },
            Ioctl::SetBackendFeatures(bits) => {
                // SAFETY: the request reads one u64.
                unsafe { ioctl_with_ref(dev, VHOST_SET_BACKEND_FEATURES(), &bits) }
            }
            // SAFETY: no argument.
            Ioctl::SetOwner => unsafe { ioctl(dev, VHOST_SET_OWNER()) },
            // SAFETY: no argument.
            Ioctl::ResetOwner => unsafe { ioctl(dev, VHOST_RESET_OWNER()) },
            Ioctl::SetMemTable {
                regions,
                padding,
                nregions,
            } => {
                // struct vhost_memory: nregions, padding, then the regions.
                let mut buf = vec![0u64; 1 + 4 * regions.len().max(1)];
                let n = nregions.unwrap_or(regions.len() as u32);
                buf[0] = u64::from(n) | (u64::from(padding) << 32);
                for (i, r) in regions.iter().enumerate() {
                    let region = vhost_memory_region {
                        guest_phys_addr: r.gpa,
                        memory_size: r.size,
                        userspace_addr: r.user.resolve(ctx),
                        flags_padding: 0,
                    };
                    buf[1 + 4 * i..5 + 4 * i].copy_from_slice(&[
                        region.guest_phys_addr,
                        region.memory_size,
                        region.userspace_addr,
                        region.flags_padding,
                    ]);
                }
                // SAFETY: the kernel reads the header and at most `n` regions; a
                // larger `n` than provided is only used for counts it refuses.
                unsafe { ioctl_with_ptr(dev, VHOST_SET_MEM_TABLE(), buf.as_ptr()) }
            }
            // SAFETY: the kernel checks the NULL pointer.
            Ioctl::SetMemTableNull => unsafe {
                ioctl_with_ptr(dev, VHOST_SET_MEM_TABLE(), std::ptr::null::<u64>())
            },
            // SAFETY: the request reads one u64.
            Ioctl::SetLogBase(base) => unsafe { ioctl_with_ref(dev, VHOST_SET_LOG_BASE(), &base) },
            Ioctl::SetLogFd(fd) => {
                let fd: i32 = ctx.fd(fd);
                // SAFETY: the request reads one int.
                unsafe { ioctl_with_ref(dev, VHOST_SET_LOG_FD(), &fd) }
            }
            Ioctl::SetVringNum { index, num } => state_call(dev, VHOST_SET_VRING_NUM(), index, num),
            Ioctl::SetVringBase { index, num } => {
                state_call(dev, VHOST_SET_VRING_BASE(), index, num)
            }
            Ioctl::SetBusyloop { index, num } => {
                state_call(dev, VHOST_SET_VRING_BUSYLOOP_TIMEOUT(), index, num)
            }
            Ioctl::GetVringBase { index } => {
                let (ret, v) = state_get(dev, VHOST_GET_VRING_BASE(), index);
                value = v;
                ret
            }
            Ioctl::GetBusyloop { index } => {
                let (ret, v) = state_get(dev, VHOST_GET_VRING_BUSYLOOP_TIMEOUT(), index);
                value = v;
                ret
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
                    desc_user_addr: desc.resolve(ctx),
                    used_user_addr: used.resolve(ctx),
                    avail_user_addr: avail.resolve(ctx),
                    log_guest_addr: log,
                };
                // SAFETY: the request reads one vhost_vring_addr.
                unsafe { ioctl_with_ref(dev, VHOST_SET_VRING_ADDR(), &addr) }
            }
            Ioctl::SetVringKick { index, fd } => {
                file_call(dev, VHOST_SET_VRING_KICK(), index, ctx.fd(fd))
            }
            Ioctl::SetVringCall { index, fd } => {
                file_call(dev, VHOST_SET_VRING_CALL(), index, ctx.fd(fd))
            }
            Ioctl::SetVringErr { index, fd } => {
                file_call(dev, VHOST_SET_VRING_ERR(), index, ctx.fd(fd))
            }
            Ioctl::NetSetBackend { index, fd } => {
                file_call(dev, VHOST_NET_SET_BACKEND(), index, ctx.fd(fd))
            }
            Ioctl::Unknown { request, index } => match index {
                // SAFETY: an unknown request: the kernel only reads a u32 index, if anything.
                None => unsafe { ioctl_with_ptr(dev, request, std::ptr::null::<u32>()) },
                Some(i) => {
                    let mut buf = [i, 0, 0, 0];
                    // SAFETY: as above; 16 writable bytes cover any read of an index.
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
