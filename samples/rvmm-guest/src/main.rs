//! rvmm's guest: a bare-metal x86-64 program. It talks to the VMM through
//! port I/O (no firmware): characters to the console port, results to the
//! result port, its status to the exit port; devices interrupt it through
//! the IOAPIC and its local APIC.

#![no_std]
#![no_main]

mod e1000;
mod frames;
mod interrupts;
mod virtio;

use core::arch::asm;
use core::panic::PanicInfo;

/// Each byte written here is one character of guest output.
const CONSOLE_PORT: u16 = 0x402;
/// A byte written here ends the run with that status.
const EXIT_PORT: u16 = 0x401;
/// 32-bit results for the VMM's report: the kicks the driver made, then the
/// device interrupts it took.
const RESULT_PORT: u16 = 0x404;
/// Where rvmm leaves the workload to run (a little-endian u32).
const CONFIG_ADDR: usize = 0x7000;
/// Workloads (see rvmm's `--workload`).
const WORKLOAD_HELLO: u32 = 0;
const WORKLOAD_SPIN: u32 = 1;
const WORKLOAD_VIRTIO_TX: u32 = 2;
const WORKLOAD_VIRTIO_BAD_RING: u32 = 3;
const WORKLOAD_VIRTIO_BAD_BUFFER: u32 = 4;
const WORKLOAD_VIRTIO_RX: u32 = 5;
const WORKLOAD_E1000_TX: u32 = 6;
const WORKLOAD_E1000_RX: u32 = 7;
const WORKLOAD_E1000_ORDER: u32 = 8;
const WORKLOAD_E1000_BAD: u32 = 9;

fn outb(port: u16, value: u8) {
    // SAFETY: port I/O to rvmm's own ports; it has no memory effects.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

fn out32(port: u16, value: u32) {
    // SAFETY: port I/O to rvmm's own ports; it has no memory effects.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    };
}

pub(crate) fn print(s: &str) {
    for b in s.bytes() {
        outb(CONSOLE_PORT, b);
    }
}

/// Prints `n` in decimal.
fn print_u32(mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in &digits[i..] {
        outb(CONSOLE_PORT, *d);
    }
}

/// Reports a virtio workload's outcome (kicks to the result port) and exits.
fn finish(result: Result<u32, &str>, done: &str, frames: u32) -> ! {
    match result {
        Ok(kicks) => {
            out32(RESULT_PORT, kicks);
            out32(RESULT_PORT, interrupts::count());
            print("rvmm-guest: ");
            print(done);
            print(": ");
            print_u32(frames);
            print(" frames, ");
            print_u32(kicks);
            print(" kicks, ");
            print_u32(interrupts::count());
            print(" interrupts\n");
            exit(0)
        }
        Err(why) => {
            print("rvmm-guest: ");
            print(why);
            print("\n");
            exit(3)
        }
    }
}

/// Word 6 of the config page: 1 = interrupts (set up here), 0 = polling.
fn completion() -> virtio::Completion {
    if config(6) != 0 {
        interrupts::init(virtio::IRQ_LINE, interrupts::Trigger::Edge);
        virtio::Completion::Interrupt
    } else {
        virtio::Completion::Poll
    }
}

/// Reads word `i` of the config page.
fn config(i: usize) -> u32 {
    // SAFETY: rvmm maps guest RAM over the config page and fills it before entry.
    unsafe { core::ptr::read_volatile((CONFIG_ADDR as *const u32).add(i)) }
}

pub(crate) fn exit(status: u8) -> ! {
    outb(EXIT_PORT, status);
    loop {
        // SAFETY: halting is what a finished guest does; rvmm stops it first.
        unsafe { asm!("hlt", options(nomem, nostack)) };
    }
}

/// The entry point rvmm jumps to in 64-bit mode.
#[no_mangle]
#[link_section = ".text.start"]
pub extern "C" fn _start() -> ! {
    match config(0) {
        WORKLOAD_HELLO => {
            print("rvmm-guest: running in 64-bit long mode\n");
            exit(0)
        }
        // Never finishes: rvmm's watchdog must end the run.
        WORKLOAD_SPIN => loop {
            core::hint::spin_loop();
        },
        w @ (WORKLOAD_VIRTIO_TX | WORKLOAD_VIRTIO_BAD_RING | WORKLOAD_VIRTIO_BAD_BUFFER) => {
            let mistake = match w {
                WORKLOAD_VIRTIO_BAD_RING => virtio::Mistake::RingOutsideRam,
                WORKLOAD_VIRTIO_BAD_BUFFER => virtio::Mistake::BufferOutsideRam,
                _ => virtio::Mistake::None,
            };
            let (frames, size, event_idx) = (config(1), config(2) as usize, config(3) != 0);
            let base = (u64::from(config(5)) << 32 | u64::from(config(4))) as usize;
            let indirect = config(8) & 1 != 0;
            let result = virtio::tx(
                base,
                frames,
                size,
                event_idx,
                indirect,
                completion(),
                mistake,
            );
            finish(result, "virtio-net TX done", frames)
        }
        WORKLOAD_VIRTIO_RX => {
            let (frames, size, event_idx) = (config(1), config(2) as usize, config(3) != 0);
            let base = (u64::from(config(5)) << 32 | u64::from(config(4))) as usize;
            finish(
                virtio::rx(
                    base,
                    frames,
                    size,
                    event_idx,
                    config(8) & 2 != 0,
                    completion(),
                ),
                "virtio-net RX done, checked",
                frames,
            )
        }
        WORKLOAD_E1000_TX => {
            let (frames, size) = (config(1), config(2) as usize);
            let result = e1000::tx(frames, size, config(7) != 0);
            finish(result, "e1000 TX done", frames)
        }
        WORKLOAD_E1000_RX => {
            let (frames, size) = (config(1), config(2) as usize);
            finish(e1000::rx(frames, size), "e1000 RX done, checked", frames)
        }
        WORKLOAD_E1000_ORDER => finish(e1000::order(), "e1000 ordering pattern written", 0),
        WORKLOAD_E1000_BAD => finish(
            e1000::bad_input(config(2) as usize),
            "e1000 bad input survived",
            1,
        ),
        _ => {
            print("rvmm-guest: unknown workload\n");
            exit(2)
        }
    }
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    print("rvmm-guest: panic\n");
    exit(0xff)
}
