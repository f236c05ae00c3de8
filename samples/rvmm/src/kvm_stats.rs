//! KVM's per-vCPU binary statistics (`KVM_GET_STATS_FD`): exits by reason,
//! interrupt injections, counted by KVM itself, so they include the exits
//! the kernel handles without coming out to rvmm.

use anyhow::{ensure, Context, Result};
use kvm_bindings::{kvm_stats_desc, kvm_stats_header};
use kvm_ioctls::VcpuFd;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;
use vmm_sys_util::ioctl::ioctl;
use vmm_sys_util::ioctl_io_nr;

ioctl_io_nr!(KVM_GET_STATS_FD, kvm_bindings::KVMIO, 0xce);

/// The counters rvmm reports.
pub const WANTED: &[&str] = &[
    "exits",
    "io_exits",
    "mmio_exits",
    "halt_exits",
    "irq_exits",
    "irq_injections",
    "irq_window_exits",
    "request_irq_exits",
    "signal_exits",
];

/// An open statistics file of one vCPU and where each wanted counter lives.
pub struct VcpuStats {
    file: File,
    /// Name → byte offset of the counter in the file.
    offsets: Vec<(&'static str, u64)>,
}

fn read_at<T: Default>(file: &File, offset: u64) -> Result<T> {
    let mut value = T::default();
    // SAFETY: `T` is a plain C struct of integers; any bytes are a valid value.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(
            (&mut value as *mut T).cast::<u8>(),
            std::mem::size_of::<T>(),
        )
    };
    file.read_exact_at(bytes, offset)
        .context("reading the KVM stats file")?;
    Ok(value)
}

impl VcpuStats {
    pub fn open(vcpu: &VcpuFd) -> Result<Self> {
        // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new fd.
        let fd = unsafe { ioctl(vcpu, KVM_GET_STATS_FD()) };
        ensure!(
            fd >= 0,
            "KVM_GET_STATS_FD: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: `fd` is a new descriptor we own.
        let file = unsafe { File::from_raw_fd(fd) };
        let header: kvm_stats_header = read_at(&file, 0)?;
        let desc_size = std::mem::size_of::<kvm_stats_desc>() as u64 + u64::from(header.name_size);
        let mut offsets = Vec::new();
        for i in 0..u64::from(header.num_desc) {
            let at = u64::from(header.desc_offset) + i * desc_size;
            let desc: kvm_stats_desc = read_at(&file, at)?;
            let mut name = vec![0u8; header.name_size as usize];
            file.read_exact_at(&mut name, at + std::mem::size_of::<kvm_stats_desc>() as u64)?;
            let name = name.split(|b| *b == 0).next().unwrap_or_default();
            if let Some(wanted) = WANTED.iter().find(|w| w.as_bytes() == name) {
                offsets.push((
                    *wanted,
                    u64::from(header.data_offset) + u64::from(desc.offset),
                ));
            }
        }
        Ok(Self { file, offsets })
    }

    /// The current value of each wanted counter.
    pub fn read(&self) -> Result<BTreeMap<&'static str, u64>> {
        let mut out = BTreeMap::new();
        for (name, offset) in &self.offsets {
            out.insert(*name, read_at::<u64>(&self.file, *offset)?);
        }
        Ok(out)
    }
}

/// `after - before`, counter by counter.
pub fn delta(
    before: &BTreeMap<&'static str, u64>,
    after: &BTreeMap<&'static str, u64>,
) -> BTreeMap<&'static str, u64> {
    after
        .iter()
        .map(|(k, v)| (*k, v.saturating_sub(before.get(k).copied().unwrap_or(0))))
        .collect()
}
