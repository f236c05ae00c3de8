//! Putting a vCPU straight into 64-bit long mode: a GDT with a 64-bit code
//! segment, identity-mapped page tables (2 MiB pages over the first 4 GiB,
//! so that the guest reaches RAM, device windows and the LAPIC/IOAPIC),
//! CR0.PE|PG, CR4.PAE, EFER.LME|LMA.

use crate::memory::GuestRam;
use anyhow::{Context, Result};
use kvm_bindings::{kvm_segment, CpuId};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress};

/// Where the VMM puts its boot structures (below the guest program at 1 MiB).
const GDT_ADDR: u64 = 0x500;
const PML4_ADDR: u64 = 0x9000;
const PDPT_ADDR: u64 = 0xa000;
/// Four page directories, one per GiB, from here.
const PD_ADDR: u64 = 0xb000;
const MAPPED_GIB: u64 = 4;
/// The guest's initial stack pointer (grows down, below the program).
pub const STACK_TOP: u64 = 0x8_0000;

const CR0_PE: u64 = 1;
const CR0_ET: u64 = 1 << 4;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

/// GDT entries: null, 64-bit code (selector 0x8), data (selector 0x10).
const GDT: [u64; 3] = [0, 0x00af_9a00_0000_ffff, 0x00cf_9200_0000_ffff];

fn segment(selector: u16, code: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 0xb } else { 0x3 },
        present: 1,
        dpl: 0,
        db: u8::from(!code),
        s: 1,
        l: u8::from(code),
        g: 1,
        ..Default::default()
    }
}

/// Writes the GDT and page tables into guest RAM.
pub fn write_boot_tables(ram: &GuestRam) -> Result<()> {
    for (i, entry) in GDT.iter().enumerate() {
        ram.write_obj(*entry, GuestAddress(GDT_ADDR + 8 * i as u64))?;
    }
    // PML4[0] -> PDPT, PDPT[g] -> PD g, PD g[i] -> 2 MiB page (present,
    // writable, large); pages at and above 3 GiB are device memory, so
    // uncached (PCD|PWT), as firmware would leave them.
    ram.write_obj(PDPT_ADDR | 0x3, GuestAddress(PML4_ADDR))?;
    for gib in 0..MAPPED_GIB {
        let pd = PD_ADDR + 0x1000 * gib;
        ram.write_obj(pd | 0x3, GuestAddress(PDPT_ADDR + 8 * gib))?;
        let cache = if gib >= 3 { 0x18 } else { 0 };
        for i in 0..512u64 {
            let page = (gib << 30) | (i << 21);
            ram.write_obj(page | 0x83 | cache, GuestAddress(pd + 8 * i))?;
        }
    }
    Ok(())
}

/// Puts `vcpu` in long mode at `entry`.
pub fn enter_long_mode(vcpu: &VcpuFd, cpuid: &CpuId, entry: u64) -> Result<()> {
    // EFER.LME is only accepted if the guest's CPUID has long mode.
    vcpu.set_cpuid2(cpuid).context("KVM_SET_CPUID2")?;
    let mut sregs = vcpu.get_sregs().context("KVM_GET_SREGS")?;
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = (8 * GDT.len() - 1) as u16;
    sregs.cs = segment(0x8, true);
    let data = segment(0x10, false);
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.cr3 = PML4_ADDR;
    sregs.cr4 |= CR4_PAE;
    sregs.cr0 |= CR0_PE | CR0_ET | CR0_PG;
    sregs.efer |= EFER_LME | EFER_LMA;
    vcpu.set_sregs(&sregs).context("KVM_SET_SREGS")?;
    let mut regs = vcpu.get_regs().context("KVM_GET_REGS")?;
    regs.rip = entry;
    regs.rsp = STACK_TOP;
    regs.rflags = 0x2;
    vcpu.set_regs(&regs).context("KVM_SET_REGS")
}
