//! KVM's coalesced MMIO ring: guest writes to registered zones are queued
//! there by KVM without an exit to rvmm, and rvmm applies them later, in
//! order. The ring is a page of the vCPU's mmap (at the page offset that
//! `KVM_CAP_COALESCED_MMIO` reports); rvmm maps it a second time, on its
//! own, so that its I/O thread can drain it too (kvm-ioctls keeps its
//! mapping private to the `VcpuFd`).
//!
//! Layout (`struct kvm_coalesced_mmio_ring`): `u32 first` (consumer),
//! `u32 last` (producer, KVM), then 24-byte entries `{u64 phys_addr; u32
//! len; u32 pio; u8 data[8]}`. KVM writes an entry, then `last`; the
//! consumer reads entries up to `last`, then publishes `first`.

use anyhow::{ensure, Context, Result};
use kvm_ioctls::{Cap, Kvm, VcpuFd};
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use vm_memory::mmap::MmapRegion;
use vm_memory::{FileOffset, VolatileMemory};

const PAGE_SIZE: usize = 4096;
const HEADER: usize = 8;
const ENTRY: usize = 24;
/// Entries in one page (KVM_COALESCED_MMIO_MAX).
const MAX_ENTRIES: u32 = ((PAGE_SIZE - HEADER) / ENTRY) as u32;

/// One queued guest write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuedWrite {
    /// Guest-physical address (absolute).
    pub addr: u64,
    /// The bytes written (1 to 8 of them).
    pub data: [u8; 8],
    pub len: usize,
}

/// A second mapping of one vCPU's coalesced MMIO ring page. Callers
/// serialize `drain` (rvmm holds the device lock around it): one consumer.
pub struct CoalescedRing {
    page: MmapRegion<()>,
}

impl CoalescedRing {
    /// Maps `vcpu`'s ring; `None` if KVM has no coalesced MMIO.
    pub fn map(kvm: &Kvm, vcpu: &VcpuFd) -> Result<Option<Self>> {
        let page_offset = kvm.check_extension_int(Cap::CoalescedMmio);
        if page_offset <= 0 {
            return Ok(None);
        }
        // SAFETY: `vcpu` owns this fd and is alive for the whole call.
        let borrowed = unsafe { BorrowedFd::borrow_raw(vcpu.as_raw_fd()) };
        let fd = borrowed
            .try_clone_to_owned()
            .context("dup of the vCPU fd")?;
        let file_offset = FileOffset::new(File::from(fd), page_offset as u64 * PAGE_SIZE as u64);
        let page = MmapRegion::from_file(file_offset, PAGE_SIZE)
            .context("mapping the coalesced MMIO ring")?;
        Ok(Some(Self { page }))
    }

    fn index(&self, offset: usize) -> Result<&AtomicU32> {
        Ok(self.page.get_atomic_ref::<AtomicU32>(offset)?)
    }

    /// Hands every queued write to `apply`, oldest first, and frees its
    /// slot. Returns how many there were.
    pub fn drain(&self, mut apply: impl FnMut(QueuedWrite)) -> Result<usize> {
        let (first_ref, last_ref) = (self.index(0)?, self.index(4)?);
        let last = last_ref.load(Ordering::Acquire);
        let mut first = first_ref.load(Ordering::Relaxed);
        ensure!(
            first < MAX_ENTRIES && last < MAX_ENTRIES,
            "coalesced MMIO ring indexes out of range ({first}, {last})"
        );
        let mut taken = 0;
        while first != last {
            let entry = self
                .page
                .get_slice(HEADER + ENTRY * first as usize, ENTRY)?;
            let mut raw = [0u8; ENTRY];
            entry.copy_to(&mut raw[..]);
            let addr = u64::from_le_bytes(raw[0..8].try_into().expect("8 bytes"));
            let len = u32::from_le_bytes(raw[8..12].try_into().expect("4 bytes")) as usize;
            let mut data = [0u8; 8];
            data.copy_from_slice(&raw[16..24]);
            apply(QueuedWrite {
                addr,
                data,
                len: len.min(8),
            });
            first = (first + 1) % MAX_ENTRIES;
            // The slot is free once KVM sees the new `first`.
            first_ref.store(first, Ordering::Release);
            taken += 1;
        }
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_holds_170_entries_as_in_kvm() {
        assert_eq!(MAX_ENTRIES, 170);
    }
}
