// SPDX-License-Identifier: GPL-2.0

//! Per-virtqueue configuration set through the vring ioctls
//! (`SET_VRING_NUM/ADDR/BASE`, `GET_VRING_BASE`, busy-loop timeout), with
//! upstream's validation and errnos. Ring addresses are the owner's user
//! addresses (not guest-physical).

use super::errno::Errno;

/// `VHOST_VRING_F_LOG`: log writes to the used ring (the only flag allowed).
pub const VHOST_VRING_F_LOG: u32 = 0;
/// Largest ring size the split ring allows.
pub const MAX_NUM: u32 = 0xffff;

/// `struct vhost_vring_addr` as received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VringAddr {
    /// Flags: only `1 << VHOST_VRING_F_LOG`.
    pub flags: u32,
    /// User address of the descriptor table.
    pub desc_user_addr: u64,
    /// User address of the used ring (4-byte aligned).
    pub used_user_addr: u64,
    /// User address of the avail ring (2-byte aligned).
    pub avail_user_addr: u64,
    /// Guest-physical address of the used ring, for dirty logging.
    pub log_guest_addr: u64,
}

/// One virtqueue's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VringConfig {
    /// Ring size (a power of two, 1 before it is set, as upstream).
    pub num: u32,
    /// Ring addresses and logging flag.
    pub addr: VringAddr,
    /// Next avail index the device will read (`SET/GET_VRING_BASE`).
    pub last_avail_idx: u16,
    /// Busy-poll time in microseconds (stored; the worker may use it).
    pub busyloop_timeout: u32,
}

impl Default for VringConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Byte sizes of the three parts of a split ring of `num` entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSizes {
    /// Descriptor table: 16 bytes each.
    pub desc: u64,
    /// Avail ring: flags, idx, ring, optional `used_event`.
    pub avail: u64,
    /// Used ring: flags, idx, 8-byte elements, optional `avail_event`.
    pub used: u64,
}

impl RingSizes {
    /// Sizes for `num` entries, with `EVENT_IDX` adding the 2-byte event fields.
    pub const fn new(num: u32, event_idx: bool) -> Self {
        let event = if event_idx { 2 } else { 0 };
        let num = num as u64;
        Self {
            desc: 16 * num,
            avail: 4 + 2 * num + event,
            used: 4 + 8 * num + event,
        }
    }
}

impl VringConfig {
    /// A fresh (or reset) queue.
    pub const fn new() -> Self {
        Self {
            num: 1,
            addr: VringAddr {
                flags: 0,
                desc_user_addr: 0,
                used_user_addr: 0,
                avail_user_addr: 0,
                log_guest_addr: 0,
            },
            last_avail_idx: 0,
            busyloop_timeout: 0,
        }
    }

    /// `SET_VRING_NUM`: `EBUSY` with a backend attached; `EINVAL` unless a
    /// power of two in `1..=65535`.
    pub fn set_num(&mut self, num: u32, backend_attached: bool) -> Result<(), Errno> {
        if backend_attached {
            return Err(Errno::Busy);
        }
        if num == 0 || num > MAX_NUM || !num.is_power_of_two() {
            return Err(Errno::Inval);
        }
        self.num = num;
        Ok(())
    }

    /// `SET_VRING_ADDR`: `EOPNOTSUPP` for unknown flags; `EINVAL` for a
    /// misaligned avail (2), used (4) or log (4) address, or, with a backend
    /// attached, rings that `access_ok` refuses (`access_ok(addr, size)`) or,
    /// with used-ring logging asked for, a log bitmap at `log_base` that does
    /// not cover the used ring (upstream's `vq_log_used_access_ok`).
    pub fn set_addr(
        &mut self,
        addr: VringAddr,
        backend_attached: bool,
        event_idx: bool,
        log_base: u64,
        access_ok: impl Fn(u64, u64) -> bool,
    ) -> Result<(), Errno> {
        if addr.flags & !(1 << VHOST_VRING_F_LOG) != 0 {
            return Err(Errno::OpNotSupp);
        }
        if addr.avail_user_addr & 1 != 0
            || addr.used_user_addr & 3 != 0
            || addr.log_guest_addr & 3 != 0
        {
            return Err(Errno::Inval);
        }
        if backend_attached && !Self::rings_ok(&addr, self.num, event_idx, &access_ok) {
            return Err(Errno::Inval);
        }
        if backend_attached && !Self::used_log_ok(&addr, self.num, event_idx, log_base, &access_ok)
        {
            return Err(Errno::Inval);
        }
        self.addr = addr;
        Ok(())
    }

    /// Forgets the ring addresses (upstream's `vhost_vq_invalidate_access`,
    /// when the device switches between guest-physical and I/O virtual
    /// addresses): the queue does nothing until new ones are set.
    pub fn invalidate_addr(&mut self) {
        self.addr = VringAddr::default();
    }

    /// Whether the ring addresses are unset (all three 0, as
    /// [`VringConfig::invalidate_addr`] leaves them; one address 0 may be a
    /// valid I/O virtual address): a round then does nothing, as upstream's
    /// `vq_meta_prefetch` says.
    pub const fn addr_unset(&self) -> bool {
        self.addr.desc_user_addr == 0
            && self.addr.avail_user_addr == 0
            && self.addr.used_user_addr == 0
    }

    /// `SET_VRING_BASE`: `EBUSY` with a backend attached; `EINVAL` above 65535.
    pub fn set_base(&mut self, base: u32, backend_attached: bool) -> Result<(), Errno> {
        if backend_attached {
            return Err(Errno::Busy);
        }
        let base = u16::try_from(base).map_err(|_| Errno::Inval)?;
        self.last_avail_idx = base;
        Ok(())
    }

    /// Whether the three rings pass `access_ok` (upstream's `vq_access_ok`).
    pub fn access_ok(&self, event_idx: bool, access_ok: impl Fn(u64, u64) -> bool) -> bool {
        Self::rings_ok(&self.addr, self.num, event_idx, &access_ok)
    }

    /// Whether the used ring's part of the dirty log at `log_base` passes
    /// `access_ok`, if the ring logs its writes at all.
    pub fn used_log_ok(
        addr: &VringAddr,
        num: u32,
        event_idx: bool,
        log_base: u64,
        ok: &impl Fn(u64, u64) -> bool,
    ) -> bool {
        if addr.flags & (1 << VHOST_VRING_F_LOG) == 0 {
            return true;
        }
        let used = RingSizes::new(num, event_idx).used;
        matches!(log_bitmap_range(log_base, addr.log_guest_addr, used),
            Some((start, len)) if ok(start, len))
    }

    fn rings_ok(
        addr: &VringAddr,
        num: u32,
        event_idx: bool,
        ok: &impl Fn(u64, u64) -> bool,
    ) -> bool {
        let sizes = RingSizes::new(num, event_idx);
        ok(addr.desc_user_addr, sizes.desc)
            && ok(addr.avail_user_addr, sizes.avail)
            && ok(addr.used_user_addr, sizes.used)
    }
}

/// Page size of the dirty log (`VHOST_PAGE_SIZE`): one bit per 4 KiB page.
pub const LOG_PAGE_SIZE: u64 = 0x1000;

/// The user range of the dirty-log bitmap covering `[addr, addr + size)` of
/// guest memory when the bitmap starts at `log_base`; `None` if the address
/// arithmetic overflows (upstream's `log_access_ok` refuses those).
pub const fn log_bitmap_range(log_base: u64, addr: u64, size: u64) -> Option<(u64, u64)> {
    let offset = addr / LOG_PAGE_SIZE / 8;
    let Some(start) = log_base.checked_add(offset) else {
        return None;
    };
    let bytes = size.saturating_add(LOG_PAGE_SIZE * 8 - 1) / LOG_PAGE_SIZE / 8;
    Some((start, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(addr: u64, size: u64) -> bool {
        addr.checked_add(size)
            .is_some_and(|end| end <= 0x7fff_ffff_f000)
    }

    #[test]
    fn ring_size_rules() {
        let mut vq = VringConfig::new();
        assert_eq!(vq.num, 1);
        for bad in [0, 3, 100, 0x1_0000, u32::MAX] {
            assert_eq!(vq.set_num(bad, false), Err(Errno::Inval), "{bad}");
        }
        assert_eq!(vq.set_num(256, false), Ok(()));
        assert_eq!(vq.set_num(0x8000, false), Ok(()));
        assert_eq!(vq.set_num(256, true), Err(Errno::Busy));
        assert_eq!(vq.num, 0x8000);
    }

    #[test]
    fn addr_rules() {
        let mut vq = VringConfig::new();
        let good = VringAddr {
            flags: 0,
            desc_user_addr: 0x1000,
            avail_user_addr: 0x2002,
            used_user_addr: 0x3004,
            log_guest_addr: 0,
        };
        assert_eq!(
            vq.set_addr(VringAddr { flags: 2, ..good }, false, false, 0, user),
            Err(Errno::OpNotSupp)
        );
        // Misaligned rings and log address.
        for misaligned in [
            VringAddr {
                avail_user_addr: 0x2001,
                ..good
            },
            VringAddr {
                used_user_addr: 0x3002,
                ..good
            },
            VringAddr {
                log_guest_addr: 2,
                ..good
            },
        ] {
            assert_eq!(
                vq.set_addr(misaligned, false, false, 0, user),
                Err(Errno::Inval)
            );
        }
        // Inaccessible rings are only refused while a backend is attached.
        let kernel = VringAddr {
            desc_user_addr: 0xffff_8000_0000_0000,
            ..good
        };
        assert_eq!(vq.set_addr(kernel, false, false, 0, user), Ok(()));
        assert_eq!(vq.set_addr(kernel, true, false, 0, user), Err(Errno::Inval));
        assert_eq!(
            vq.set_addr(VringAddr { flags: 1, ..good }, true, false, 0x1000, user),
            Ok(())
        );
        assert!(vq.access_ok(true, user));
        // Used-ring logging asked for while attached: the log must cover it.
        assert_eq!(
            vq.set_addr(
                VringAddr { flags: 1, ..good },
                true,
                false,
                0xffff_8880_0000_0000,
                user
            ),
            Err(Errno::Inval)
        );
        // Not attached: checked when a backend is.
        assert_eq!(
            vq.set_addr(
                VringAddr { flags: 1, ..good },
                false,
                false,
                0xffff_8880_0000_0000,
                user
            ),
            Ok(())
        );
    }

    #[test]
    fn base_rules_and_sizes() {
        let mut vq = VringConfig::new();
        assert_eq!(vq.set_base(0x1_0000, false), Err(Errno::Inval));
        assert_eq!(vq.set_base(7, true), Err(Errno::Busy));
        assert_eq!(vq.set_base(0xffff, false), Ok(()));
        assert_eq!(vq.last_avail_idx, 0xffff);
        assert_eq!(
            RingSizes::new(256, false),
            RingSizes {
                desc: 4096,
                avail: 516,
                used: 2052
            }
        );
        assert_eq!(
            RingSizes::new(256, true),
            RingSizes {
                desc: 4096,
                avail: 518,
                used: 2054
            }
        );
    }

    #[test]
    fn dirty_log_bitmap_range() {
        // One bit per 4 KiB page: guest address 0x8000 is bit 8, byte 1.
        assert_eq!(log_bitmap_range(0x1000, 0x8000, 1), Some((0x1001, 1)));
        assert_eq!(log_bitmap_range(0x1000, 0, 0x8001), Some((0x1000, 2)));
        assert_eq!(log_bitmap_range(u64::MAX, 0x8000, 1), None);
    }
}
