//! In-kernel KVM smoke test: create a VM with one vCPU in the booted test kernel
//! (nested KVM under TCG), run three real-mode instructions and check the exits.
//!
//! Guest code at 0x1000: `mov al, 0x2a; out 0x10, al; hlt`. Expected: an I/O-out
//! exit on port 0x10 carrying 0x2a, then a HLT exit.

use anyhow::{bail, Context, Result};
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuExit};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

const CODE_ADDR: u64 = 0x1000;
const MEM_SIZE: usize = 0x10000;
const GUEST_CODE: [u8; 5] = [0xb0, 0x2a, 0xe6, 0x10, 0xf4];

fn main() -> Result<()> {
    let kvm = Kvm::new().context("opening /dev/kvm")?;
    let vm = kvm.create_vm().context("KVM_CREATE_VM")?;

    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE)])
        .context("allocating guest memory")?;
    mem.write_slice(&GUEST_CODE, GuestAddress(CODE_ADDR))?;
    let region = mem.iter().next().context("no guest memory region")?;
    let slot = kvm_userspace_memory_region {
        slot: 0,
        guest_phys_addr: 0,
        memory_size: MEM_SIZE as u64,
        userspace_addr: mem.get_host_address(GuestAddress(0))? as u64,
        flags: 0,
    };
    debug_assert_eq!(region.len(), MEM_SIZE as u64);
    // SAFETY: the region is backed by `mem`, which outlives the VM and its vCPU.
    unsafe { vm.set_user_memory_region(slot) }.context("KVM_SET_USER_MEMORY_REGION")?;

    let mut vcpu = vm.create_vcpu(0).context("KVM_CREATE_VCPU")?;
    let mut sregs = vcpu.get_sregs()?;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    vcpu.set_sregs(&sregs)?;
    let mut regs = vcpu.get_regs()?;
    regs.rip = CODE_ADDR;
    regs.rflags = 0x2;
    vcpu.set_regs(&regs)?;

    match vcpu.run().context("KVM_RUN")? {
        VcpuExit::IoOut(0x10, data) if data == [0x2a] => {
            println!("kvm-smoke: exit 1: I/O out port 0x10 data 0x2a (expected)")
        }
        other => bail!("kvm-smoke: unexpected first exit {other:?}"),
    }
    match vcpu.run().context("KVM_RUN")? {
        VcpuExit::Hlt => println!("kvm-smoke: exit 2: HLT (expected)"),
        other => bail!("kvm-smoke: unexpected second exit {other:?}"),
    }
    println!("kvm-smoke: PASS (nested KVM runs guest code)");
    Ok(())
}
