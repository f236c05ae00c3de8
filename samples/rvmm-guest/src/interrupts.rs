//! Interrupts for the guest: an IDT, the local APIC (xAPIC, MMIO at its
//! reset address), the IOAPIC routing one device line to one vector, the
//! legacy PIC masked, and a handler that runs a device hook, counts and EOIs.
//!
//! Exceptions are fatal: any of vectors 0..32 prints a line and exits with
//! status 0xee, so a guest bug ends the run instead of triple-faulting.

use core::arch::{asm, global_asm};
use core::ptr::write_volatile;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// The vector the device line is routed to.
pub const DEVICE_VECTOR: u8 = 0x30;
const SPURIOUS_VECTOR: u8 = 0xff;

const LAPIC_BASE: usize = 0xfee0_0000;
const LAPIC_TPR: usize = 0x80;
const LAPIC_EOI: usize = 0xb0;
const LAPIC_SVR: usize = 0xf0;
const LAPIC_SVR_ENABLE: u32 = 1 << 8;

const IOAPIC_BASE: usize = 0xfec0_0000;
const IOAPIC_REDTBL: u32 = 0x10;
const IOAPIC_LEVEL: u32 = 1 << 15;

/// How the device signals its line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A pulse per interrupt (virtio-mmio through KVM's irqfd).
    Edge,
    /// Held until the device's cause is cleared (e1000's INTx).
    Level,
}

/// Interrupts taken on `DEVICE_VECTOR`.
static DEVICE_INTERRUPTS: AtomicU32 = AtomicU32::new(0);
/// The device's hook (a `fn()` as usize; 0 = none): runs in the handler
/// before the EOI, where a level-triggered device must drop its line.
static HOOK: AtomicUsize = AtomicUsize::new(0);

#[repr(C, packed)]
struct IdtPointer {
    limit: u16,
    base: u64,
}

/// 256 gates of 16 bytes.
static mut IDT: [[u64; 2]; 256] = [[0; 2]; 256];

extern "C" {
    fn rvmm_device_stub();
    fn rvmm_spurious_stub();
    fn rvmm_exception_stub();
}

// The device stub saves the registers the C ABI lets a callee clobber (the
// target has no SSE state in use), calls the Rust handler and returns from
// the interrupt. Nine pushes after the CPU's five keep the stack 16-byte
// aligned at the call.
global_asm!(
    ".global rvmm_device_stub",
    "rvmm_device_stub:",
    "push rax", "push rcx", "push rdx", "push rsi", "push rdi",
    "push r8", "push r9", "push r10", "push r11",
    "call {handler}",
    "pop r11", "pop r10", "pop r9", "pop r8",
    "pop rdi", "pop rsi", "pop rdx", "pop rcx", "pop rax",
    "iretq",
    ".global rvmm_spurious_stub",
    "rvmm_spurious_stub:",
    "iretq",
    ".global rvmm_exception_stub",
    "rvmm_exception_stub:",
    "and rsp, -16",
    "call {fatal}",
    handler = sym device_interrupt,
    fatal = sym exception,
);

extern "C" fn device_interrupt() {
    let hook = HOOK.load(Ordering::Relaxed);
    if hook != 0 {
        // SAFETY: HOOK only ever holds a `fn()` stored by `set_hook`.
        let hook: fn() = unsafe { core::mem::transmute::<usize, fn()>(hook) };
        hook();
    }
    DEVICE_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    lapic_write(LAPIC_EOI, 0);
}

extern "C" fn exception() -> ! {
    crate::print("rvmm-guest: CPU exception\n");
    crate::exit(0xee)
}

fn lapic_write(reg: usize, value: u32) {
    // SAFETY: the local APIC's registers, identity-mapped uncached by rvmm.
    unsafe { write_volatile((LAPIC_BASE + reg) as *mut u32, value) }
}

fn ioapic_write(reg: u32, value: u32) {
    // SAFETY: the IOAPIC's select and window registers, identity-mapped.
    unsafe {
        write_volatile(IOAPIC_BASE as *mut u32, reg);
        write_volatile((IOAPIC_BASE + 0x10) as *mut u32, value);
    }
}

fn outb(port: u16, value: u8) {
    // SAFETY: port I/O to the (in-kernel) PIC's mask registers.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack)) };
}

fn set_gate(vector: u8, handler: unsafe extern "C" fn()) {
    let addr = handler as usize as u64;
    // Present, DPL 0, 64-bit interrupt gate, code selector 0x8, no IST.
    let low = (addr & 0xffff) | (0x8 << 16) | (0x8e00 << 32) | ((addr >> 16) & 0xffff) << 48;
    // SAFETY: only `init` writes the IDT, before interrupts are enabled.
    unsafe { (*core::ptr::addr_of_mut!(IDT))[usize::from(vector)] = [low, addr >> 32] };
}

/// Sets up the IDT and the APICs so that IOAPIC pin `line` raises
/// `DEVICE_VECTOR` on CPU 0; interrupts stay disabled (IF = 0) until a
/// `wait_for_interrupt`.
pub fn init(line: u8, trigger: Trigger) {
    for vector in 0..32 {
        set_gate(vector, rvmm_exception_stub);
    }
    set_gate(DEVICE_VECTOR, rvmm_device_stub);
    set_gate(SPURIOUS_VECTOR, rvmm_spurious_stub);
    let idt = IdtPointer {
        limit: (core::mem::size_of::<[[u64; 2]; 256]>() - 1) as u16,
        base: core::ptr::addr_of!(IDT) as u64,
    };
    // SAFETY: loads a valid IDT that lives for the whole run.
    unsafe { asm!("lidt [{}]", in(reg) &idt, options(readonly, nostack)) };
    // The legacy PIC would also see the line: mask it entirely.
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | u32::from(SPURIOUS_VECTOR));
    let mut entry = u32::from(DEVICE_VECTOR); // fixed delivery, physical, active high
    if trigger == Trigger::Level {
        entry |= IOAPIC_LEVEL;
    }
    ioapic_write(IOAPIC_REDTBL + 2 * u32::from(line) + 1, 0); // destination APIC 0
    ioapic_write(IOAPIC_REDTBL + 2 * u32::from(line), entry);
}

/// Runs `hook` in the interrupt handler before each EOI.
pub fn set_hook(hook: fn()) {
    HOOK.store(hook as usize, Ordering::Relaxed);
}

/// Interrupts taken on the device vector so far.
pub fn count() -> u32 {
    DEVICE_INTERRUPTS.load(Ordering::Relaxed)
}

/// Sleeps (HLT with interrupts enabled) until `ready()` holds. The check
/// runs with interrupts off and `sti; hlt` is one window, so an interrupt
/// arriving between the check and the HLT still wakes it.
pub fn wait_until(mut ready: impl FnMut() -> bool) {
    loop {
        // SAFETY: masks interrupts; the handler is the only other code.
        unsafe { asm!("cli", options(nomem, nostack)) };
        if ready() {
            // SAFETY: re-enables interrupts.
            unsafe { asm!("sti", options(nomem, nostack)) };
            return;
        }
        // SAFETY: STI's one-instruction shadow covers HLT, so a pending
        // interrupt is taken after the HLT starts and ends it.
        unsafe { asm!("sti", "hlt", options(nomem, nostack)) };
    }
}
