// SPDX-License-Identifier: GPL-2.0

//! The guest memory table (`VHOST_SET_MEM_TABLE`): guest-physical ranges
//! mapped to the owner's user addresses. Descriptor buffer addresses are
//! guest-physical and reach guest memory only through [`MemTable::translate`].

use super::errno::Errno;

/// Upstream's default `max_mem_regions`.
pub const MAX_REGIONS: usize = 64;

/// One `struct vhost_memory_region`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// First guest-physical address.
    pub guest_phys_addr: u64,
    /// Length in bytes.
    pub memory_size: u64,
    /// The owner's user address of the first byte.
    pub userspace_addr: u64,
}

impl Region {
    /// Last guest-physical address, or `None` for an empty or wrapping region
    /// (which upstream refuses with `EFAULT`). Upstream's arithmetic
    /// (`last = start + size - 1`) makes the one empty region at 0 cover the
    /// whole space instead (`last` = `u64::MAX`): accepted, as upstream
    /// accepts it, and never accessible (its size does not fit 64 bits).
    fn last(&self) -> Option<u64> {
        if self.is_whole_space() {
            return Some(u64::MAX);
        }
        if self.memory_size == 0 {
            return None;
        }
        self.guest_phys_addr.checked_add(self.memory_size - 1)
    }

    /// The region `{0, size 0}`, which upstream reads as all 2^64 bytes.
    fn is_whole_space(&self) -> bool {
        self.guest_phys_addr == 0 && self.memory_size == 0
    }
}

/// A validated memory table, at most [`MAX_REGIONS`] regions, no allocation.
#[derive(Clone, Debug)]
pub struct MemTable {
    regions: [Region; MAX_REGIONS],
    len: usize,
}

impl Default for MemTable {
    fn default() -> Self {
        Self::new()
    }
}

impl MemTable {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            regions: [Region {
                guest_phys_addr: 0,
                memory_size: 0,
                userspace_addr: 0,
            }; MAX_REGIONS],
            len: 0,
        }
    }

    /// Checks a table header as upstream does: padding must be 0
    /// (`EOPNOTSUPP`), at most `max` regions (`E2BIG`).
    pub const fn check_header(nregions: u32, padding: u32, max: usize) -> Result<usize, Errno> {
        if padding != 0 {
            return Err(Errno::OpNotSupp);
        }
        if nregions as usize > max || max > MAX_REGIONS {
            return Err(Errno::TooBig);
        }
        Ok(nregions as usize)
    }

    /// Adds a region: `EFAULT` if it is empty or wraps the guest-physical
    /// space. Overlaps are allowed (as upstream); the first match wins in
    /// [`MemTable::translate`]. User ranges are checked separately
    /// ([`MemTable::user_ranges_ok`]) when a ring becomes active, as upstream does.
    pub fn push(&mut self, region: Region) -> Result<(), Errno> {
        if region.last().is_none() {
            return Err(Errno::Fault);
        }
        let slot = self.regions.get_mut(self.len).ok_or(Errno::TooBig)?;
        *slot = region;
        self.len += 1;
        Ok(())
    }

    /// Whether every region's user range passes `access_ok(addr, size)`
    /// (upstream's `vq_memory_access_ok`, made when a backend is attached or
    /// the table changes under an active ring). Ranges that wrap always fail.
    pub fn user_ranges_ok(&self, access_ok: impl Fn(u64, u64) -> bool) -> bool {
        self.regions().iter().all(|r| {
            !r.is_whole_space()
                && r.userspace_addr.checked_add(r.memory_size).is_some()
                && access_ok(r.userspace_addr, r.memory_size)
        })
    }

    /// Whether the dirty-log bitmap starting at `log_base` covers every
    /// region accessibly (`access_ok(addr, size)` of its part of the bitmap):
    /// needed with `VHOST_F_LOG_ALL` (upstream's `vq_memory_access_ok` with
    /// `log_all`). A bitmap whose address arithmetic overflows fails.
    pub fn log_ranges_ok(&self, log_base: u64, access_ok: impl Fn(u64, u64) -> bool) -> bool {
        self.regions().iter().all(|r| {
            matches!(
                super::ring_config::log_bitmap_range(log_base, r.guest_phys_addr, r.memory_size),
                Some((start, len)) if access_ok(start, len)
            )
        })
    }

    /// The regions, in the order given.
    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.len]
    }

    /// Translates the guest-physical `gpa` to a user address and the number of
    /// bytes (at most `len`) contiguous from there within one region. `EFAULT`
    /// if `gpa` is in no region. A buffer crossing into another region needs
    /// another call for the rest.
    pub fn translate(&self, gpa: u64, len: u64) -> Result<(u64, u64), Errno> {
        for r in self.regions() {
            let Some(last) = r.last() else { continue };
            if gpa < r.guest_phys_addr || gpa > last {
                continue;
            }
            let offset = gpa - r.guest_phys_addr;
            // Bytes from `gpa` to the end of the region, less one (which
            // fits 64 bits even for the whole space).
            let rest = last - gpa;
            let chunk = if len == 0 || len - 1 <= rest {
                len
            } else {
                rest + 1
            };
            // A user range that wraps is refused by `user_ranges_ok` before use.
            return Ok((r.userspace_addr.wrapping_add(offset), chunk));
        }
        Err(Errno::Fault)
    }

    /// The guest-physical ranges, `(gpa, len)` each, of every region whose
    /// user memory overlaps `[uaddr, uaddr + len)`: more than one guest range
    /// may map the same user memory, as upstream's `log_write_hva` notes.
    pub fn guest_ranges(&self, uaddr: u64, len: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let end = uaddr.saturating_add(len);
        self.regions().iter().filter_map(move |r| {
            let region_end = r.userspace_addr.checked_add(r.memory_size)?;
            let start = uaddr.max(r.userspace_addr);
            let stop = end.min(region_end);
            (start < stop).then(|| {
                let gpa = r.guest_phys_addr.wrapping_add(start - r.userspace_addr);
                (gpa, stop - start)
            })
        })
    }

    /// Whether every byte of `[gpa, gpa + len)` is covered by the table
    /// (possibly across several regions); `false` if the range wraps.
    pub fn covers(&self, gpa: u64, len: u64) -> bool {
        if gpa.checked_add(len).is_none() {
            return false;
        }
        let (mut at, mut left) = (gpa, len);
        while left > 0 {
            match self.translate(at, left) {
                Ok((_, chunk)) => {
                    at += chunk;
                    left -= chunk;
                }
                Err(_) => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 0x0000_7fff_ffff_f000;

    fn user(addr: u64, size: u64) -> bool {
        addr + size <= LIMIT
    }

    fn table(regions: &[Region]) -> MemTable {
        let mut t = MemTable::new();
        for r in regions {
            t.push(*r).unwrap();
        }
        t
    }

    #[test]
    fn user_ranges_map_back_to_every_guest_range() {
        let t = table(&[
            Region {
                guest_phys_addr: 0x10_0000,
                memory_size: 0x2000,
                userspace_addr: 0x7000_0000,
            },
            Region {
                guest_phys_addr: 0x90_0000,
                memory_size: 0x1000,
                userspace_addr: 0x7000_1000,
            },
        ]);
        let mut out = [(0u64, 0u64); 4];
        let mut n = 0;
        for r in t.guest_ranges(0x7000_0ff0, 0x20) {
            out[n] = r;
            n += 1;
        }
        assert_eq!(&out[..n], &[(0x10_0ff0, 0x20), (0x90_0000, 0x10)]);
        assert_eq!(t.guest_ranges(0x6fff_0000, 0x100).count(), 0);
        assert_eq!(t.guest_ranges(0x7000_1fff, 0x100).count(), 2);
    }

    #[test]
    fn header_checks_follow_upstream() {
        assert_eq!(MemTable::check_header(0, 0, 64), Ok(0));
        assert_eq!(MemTable::check_header(64, 0, 64), Ok(64));
        assert_eq!(MemTable::check_header(65, 0, 64), Err(Errno::TooBig));
        assert_eq!(MemTable::check_header(1, 1, 64), Err(Errno::OpNotSupp));
    }

    #[test]
    fn the_empty_region_at_zero_is_the_whole_space_as_upstream_reads_it() {
        let mut t = MemTable::new();
        let whole = Region {
            guest_phys_addr: 0,
            memory_size: 0,
            userspace_addr: 0x1000,
        };
        assert_eq!(t.push(whole), Ok(()));
        assert_eq!(
            t.translate(u64::MAX, 10),
            Ok((0x1000u64.wrapping_add(u64::MAX), 1))
        );
        assert_eq!(t.translate(5, 10), Ok((0x1005, 10)));
        // Never accessible: a queue cannot be attached with it.
        assert!(!t.user_ranges_ok(|_, _| true));
    }

    #[test]
    fn bad_regions_are_refused() {
        let mut t = MemTable::new();
        let empty = Region {
            guest_phys_addr: 0x1000,
            memory_size: 0,
            userspace_addr: 0x10000,
        };
        assert_eq!(t.push(empty), Err(Errno::Fault));
        let wraps = Region {
            guest_phys_addr: u64::MAX - 10,
            memory_size: 100,
            userspace_addr: 0x10000,
        };
        assert_eq!(t.push(wraps), Err(Errno::Fault));
        assert!(t.regions().is_empty());
        // Kernel or wrapping user ranges are accepted into the table but fail
        // the check made when a ring goes live.
        let kernel = Region {
            guest_phys_addr: 0,
            memory_size: 0x2000,
            userspace_addr: LIMIT - 0x1000,
        };
        t.push(kernel).unwrap();
        assert!(!t.user_ranges_ok(user));
        let mut t = MemTable::new();
        let user_wrap = Region {
            guest_phys_addr: 0,
            memory_size: 0x2000,
            userspace_addr: u64::MAX - 0x1000,
        };
        t.push(user_wrap).unwrap();
        assert!(!t.user_ranges_ok(user));
        let mut t = MemTable::new();
        t.push(Region {
            guest_phys_addr: 0,
            memory_size: 0x2000,
            userspace_addr: 0x1000_0000,
        })
        .unwrap();
        assert!(t.user_ranges_ok(user));
    }

    #[test]
    fn translation_stays_inside_one_region() {
        let t = table(&[
            Region {
                guest_phys_addr: 0,
                memory_size: 0x1000,
                userspace_addr: 0x7000_0000,
            },
            Region {
                guest_phys_addr: 0x1000,
                memory_size: 0x1000,
                userspace_addr: 0x9000_0000,
            },
        ]);
        assert_eq!(t.translate(0x10, 0x20), Ok((0x7000_0010, 0x20)));
        // Crossing a region boundary: only the part in the first region.
        assert_eq!(t.translate(0xff0, 0x20), Ok((0x7000_0ff0, 0x10)));
        assert_eq!(t.translate(0x1000, 0x20), Ok((0x9000_0000, 0x20)));
        assert_eq!(t.translate(0x2000, 1), Err(Errno::Fault));
        assert!(t.covers(0xff0, 0x20));
        assert!(!t.covers(0x1ff0, 0x20));
        assert!(!t.covers(u64::MAX, 2));
        assert!(t.covers(0x2000, 0));
    }

    #[test]
    fn dirty_log_must_cover_every_region() {
        let t = table(&[Region {
            guest_phys_addr: 0x10_0000,
            memory_size: 0x10_0000,
            userspace_addr: 0x1000_0000,
        }]);
        // 256 pages from page 256: bytes 32..64 of the bitmap.
        let seen = core::cell::Cell::new((0, 0));
        assert!(t.log_ranges_ok(0x5000, |a, l| {
            seen.set((a, l));
            true
        }));
        assert_eq!(seen.get(), (0x5000 + 32, 32));
        assert!(!t.log_ranges_ok(LIMIT - 16, user));
        assert!(!t.log_ranges_ok(u64::MAX - 8, |_, _| true));
    }

    #[test]
    fn at_most_max_regions() {
        let mut t = MemTable::new();
        for i in 0..MAX_REGIONS as u64 {
            let r = Region {
                guest_phys_addr: i << 20,
                memory_size: 1 << 20,
                userspace_addr: 0x1000_0000 + (i << 20),
            };
            t.push(r).unwrap();
        }
        let extra = Region {
            guest_phys_addr: 1 << 40,
            memory_size: 1,
            userspace_addr: 0x1000,
        };
        assert_eq!(t.push(extra), Err(Errno::TooBig));
    }
}
