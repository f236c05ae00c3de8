//! What a stuck guest's interrupt path looks like, for the watchdog's
//! message: where the vCPU is and whether it can take interrupts, what the
//! local APIC has requested/in service, and the IOAPIC pin of a level line.
//! A lost interrupt shows here as a line the device holds high that never
//! reached the vCPU (or a remote IRR never cleared by an EOI).

use kvm_bindings::{kvm_irqchip, KVM_IRQCHIP_IOAPIC};
use kvm_ioctls::{VcpuFd, VmFd};

/// Offsets of the 256-bit vector sets in the local APIC register page.
const APIC_ISR: usize = 0x100;
const APIC_TMR: usize = 0x180;
const APIC_IRR: usize = 0x200;
const RFLAGS_IF: u64 = 1 << 9;

/// The vCPU: RIP, IF, run state, events KVM holds for injection, and the
/// local APIC's IRR/ISR/TMR vectors.
pub fn describe_vcpu(vcpu: &VcpuFd) -> String {
    let mut out = String::new();
    match vcpu.get_regs() {
        Ok(r) => {
            out += &format!(
                "rip {:#x} IF {}",
                r.rip,
                u8::from(r.rflags & RFLAGS_IF != 0)
            )
        }
        Err(e) => out += &format!("regs: {e}"),
    }
    if let Ok(mp) = vcpu.get_mp_state() {
        // 0 runnable, 3 halted (KVM_MP_STATE_*).
        out += &format!("; mp_state {}", mp.mp_state);
    }
    if let Ok(ev) = vcpu.get_vcpu_events() {
        out += &format!(
            "; event interrupt injected {} nr {} shadow {}",
            ev.interrupt.injected, ev.interrupt.nr, ev.interrupt.shadow
        );
    }
    if let Ok(lapic) = vcpu.get_lapic() {
        let page: Vec<u8> = lapic.regs.iter().map(|&b| b as u8).collect();
        for (name, base) in [("IRR", APIC_IRR), ("ISR", APIC_ISR), ("TMR", APIC_TMR)] {
            out += &format!("; {name} {:?}", vectors(&page, base));
        }
    }
    out
}

/// The vectors set in the 256-bit register at `base` (8 dwords, 16 bytes apart).
fn vectors(page: &[u8], base: usize) -> Vec<u32> {
    let mut set = Vec::new();
    for word in 0..8u32 {
        let at = base + 0x10 * word as usize;
        let Some(bytes) = page.get(at..at + 4) else {
            break;
        };
        let bits = u32::from_le_bytes(bytes.try_into().unwrap_or_default());
        set.extend(
            (0..32)
                .filter(|b| bits & (1 << b) != 0)
                .map(|b| word * 32 + b),
        );
    }
    set
}

/// One IOAPIC pin: its vector, mask, trigger mode and the remote IRR (set
/// while a level interrupt awaits its EOI), and the pin's input level.
pub fn describe_ioapic_pin(vm: &VmFd, pin: usize) -> String {
    let mut chip = kvm_irqchip {
        chip_id: KVM_IRQCHIP_IOAPIC,
        ..Default::default()
    };
    if let Err(e) = vm.get_irqchip(&mut chip) {
        return format!("IOAPIC: {e}");
    }
    // SAFETY: chip_id IOAPIC selects the union's ioapic member, which KVM filled.
    let ioapic = unsafe { chip.chip.ioapic };
    let Some(entry) = ioapic.redirtbl.get(pin) else {
        return format!("IOAPIC: no pin {pin}");
    };
    // SAFETY: every bit pattern is a valid u64.
    let bits = unsafe { entry.bits };
    format!(
        "IOAPIC pin {pin}: vector {} level-triggered {} remote IRR {} masked {} input {}",
        bits & 0xff,
        bits >> 15 & 1,
        bits >> 14 & 1,
        bits >> 16 & 1,
        ioapic.irr >> pin & 1
    )
}
