// SPDX-License-Identifier: GPL-2.0

//! The vhost-net character device: per-open-file state and ioctl dispatch.
//!
//! Dispatch follows upstream `drivers/vhost/net.c` step for step, because the
//! order of checks decides which errno a caller sees:
//!
//! 1. net-level requests (features, owner changes, backend attach) first, with
//!    no owner check of their own except where upstream makes one;
//! 2. everything else must come from the owner (`EPERM`), then device-wide
//!    requests are served;
//! 3. anything left reads a ring index from the argument (`EFAULT`, `ENOBUFS`
//!    for an index ≥ 2) before being served or refused as unknown (`ENOTTY`).

use crate::bindings;
use crate::logic::{
    errno::Errno,
    features::{self, Features},
    ioctl::{Stage, VhostIoctl},
    owner::Ownership,
};
use crate::miscdev::MiscDevice;
use crate::mm::MmGrab;
use crate::uarg::UserArg;
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex},
};

/// Number of virtqueues of a vhost-net device (RX = 0, TX = 1).
pub(crate) const NUM_VQS: u32 = 2;

/// Converts an ABI errno of the pure logic into a kernel error.
pub(crate) fn to_error(errno: Errno) -> Error {
    Error::from_errno(-errno.as_positive())
}

/// Device configuration guarded by the device mutex.
struct Control {
    owner: Ownership<MmGrab>,
    features: Features,
    backend_features: u64,
}

impl Control {
    fn new() -> Self {
        Self {
            owner: Ownership::new(),
            features: Features::default(),
            backend_features: 0,
        }
    }

    /// The owner check, for the calling task.
    fn check_owner(&self) -> Result {
        match MmGrab::current() {
            Some(caller) => self.owner.check(&caller).map_err(to_error),
            None => Err(EPERM),
        }
    }
}

/// One open `/dev/rvhost-net`: a vhost-net device.
#[pin_data]
pub(crate) struct VhostNet {
    #[pin]
    control: Mutex<Control>,
}

impl MiscDevice for VhostNet {
    fn open() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                control <- new_mutex!(Control::new(), "rvhost_net::control"),
            }),
            GFP_KERNEL,
        )
    }

    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize> {
        this.dispatch(cmd, UserArg::new(arg)).map(|()| 0)
    }
}

impl VhostNet {
    fn dispatch(&self, cmd: u32, arg: UserArg) -> Result {
        match VhostIoctl::decode(cmd) {
            Some(req) if req.stage() == Stage::Net => self.net_request(req, arg),
            req => {
                let control = self.control.lock();
                control.check_owner()?;
                match req {
                    Some(req) if req.stage() == Stage::Device => Err(ENOTTY),
                    _ => {
                        let index: u32 = arg.read()?;
                        if index >= NUM_VQS {
                            return Err(to_error(Errno::NoBufs));
                        }
                        // No ring request is served yet.
                        Err(ENOTTY)
                    }
                }
            }
        }
    }

    fn net_request(&self, req: VhostIoctl, arg: UserArg) -> Result {
        match req {
            VhostIoctl::GetFeatures => arg.write(&features::OFFERED),
            VhostIoctl::SetFeatures => {
                let acked = Features::negotiate(arg.read()?).map_err(to_error)?;
                self.control.lock().features = acked;
                Ok(())
            }
            VhostIoctl::GetBackendFeatures => arg.write(&features::BACKEND_OFFERED),
            VhostIoctl::SetBackendFeatures => {
                let acked = features::negotiate_backend(arg.read()?).map_err(to_error)?;
                self.control.lock().backend_features = acked;
                Ok(())
            }
            VhostIoctl::SetOwner => {
                let caller = MmGrab::current().ok_or(EPERM)?;
                self.control.lock().owner.set(caller).map_err(to_error)
            }
            VhostIoctl::ResetOwner => {
                let caller = MmGrab::current().ok_or(EPERM)?;
                let mut control = self.control.lock();
                let old_owner = control.owner.reset(&caller).map_err(to_error)?;
                control.features = Features::default();
                drop(control);
                drop(old_owner);
                Ok(())
            }
            VhostIoctl::NetSetBackend => {
                let backend: bindings::vhost_vring_file = arg.read()?;
                let control = self.control.lock();
                control.check_owner()?;
                if backend.index >= NUM_VQS {
                    return Err(to_error(Errno::NoBufs));
                }
                // Upstream checks ring access before the socket; no ring is
                // accessible until a memory table is set, which is not served yet.
                Err(to_error(Errno::Fault))
            }
            _ => Err(ENOTTY),
        }
    }
}
