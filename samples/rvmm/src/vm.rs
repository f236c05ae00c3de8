//! The VM: KVM, guest RAM holding the guest program and its config page,
//! the boot tables, one vCPU entering the program in 64-bit long mode.

use crate::memory::{self, GuestRam};
use crate::vhost_net::RamMap;
use crate::x86_64;
use anyhow::{Context, Result};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use rvmm_abi::{GuestConfig, CONFIG_ADDR};
use std::path::Path;
use std::sync::Arc;
use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryBackend};

/// Where Intel's VMX wants its TSS (below 4 GiB, out of RAM's way).
const TSS_ADDR: usize = 0xfffb_d000;

/// A VM ready to run its one vCPU.
///
/// Fields drop in order: the vCPU, then the VM, then the RAM KVM maps.
pub struct Vm {
    pub vcpu: VcpuFd,
    pub fd: Arc<VmFd>,
    pub kvm: Kvm,
    pub ram: GuestRam,
    /// Where guest RAM lives in rvmm (for vhost's memory table).
    pub ram_map: RamMap,
}

/// The config page as guest memory sees it.
#[derive(Clone, Copy, Default)]
#[repr(transparent)]
struct ConfigPage(GuestConfig);

// SAFETY: `GuestConfig` is `repr(C)` with `u32` fields only (no padding, as
// rvmm-abi's tests check), so every byte is initialised and every bit
// pattern valid.
unsafe impl ByteValued for ConfigPage {}

impl Vm {
    /// Creates the VM with `mem_mib` MiB of RAM, loads the static ELF
    /// program `guest`, writes `config` at the config page and points the
    /// vCPU at the program's entry in long mode.
    pub fn new(guest: &Path, mem_mib: usize, config: GuestConfig) -> Result<Self> {
        let kvm = Kvm::new().context("opening /dev/kvm (is KVM available?)")?;
        anyhow::ensure!(
            kvm.get_api_version() == 12,
            "/dev/kvm does not answer as KVM (KVM_GET_API_VERSION)"
        );
        let fd = Arc::new(kvm.create_vm().context("KVM_CREATE_VM")?);
        fd.set_tss_address(TSS_ADDR).context("KVM_SET_TSS_ADDR")?;
        // The in-kernel IOAPIC and local APIC: what irqfd needs.
        fd.create_irq_chip().context("KVM_CREATE_IRQCHIP")?;
        let size = mem_mib << 20;
        let ram = memory::ram(size)?;
        let entry = memory::load_elf(&ram, guest)?;
        x86_64::write_boot_tables(&ram)?;
        ram.write_obj(ConfigPage(config), GuestAddress(CONFIG_ADDR))
            .context("writing the config page")?;
        let ram_map = RamMap {
            host_addr: ram.get_host_address(GuestAddress(0))? as u64,
            size: size as u64,
        };
        let region = kvm_bindings::kvm_userspace_memory_region {
            slot: 0,
            guest_phys_addr: 0,
            memory_size: ram_map.size,
            userspace_addr: ram_map.host_addr,
            flags: 0,
        };
        // SAFETY: the region is `ram`'s mapping, which outlives the VM (both
        // are fields of the returned value, `ram` dropped last).
        unsafe { fd.set_user_memory_region(region) }.context("KVM_SET_USER_MEMORY_REGION")?;
        let cpuid = kvm
            .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
            .context("KVM_GET_SUPPORTED_CPUID")?;
        let vcpu = fd.create_vcpu(0).context("KVM_CREATE_VCPU")?;
        x86_64::enter_long_mode(&vcpu, &cpuid, entry)?;
        Ok(Self {
            vcpu,
            fd,
            kvm,
            ram,
            ram_map,
        })
    }
}
