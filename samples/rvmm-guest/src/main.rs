//! rvmm's guest: a bare-metal x86-64 program. It talks to the VMM through
//! port I/O (no firmware): characters to the console port, results to the
//! result port, its status to the exit port; devices interrupt it through
//! the IOAPIC and its local APIC.

#![no_std]
#![no_main]

mod e1000;
mod echo;
mod frames;
mod interrupts;
mod virtio;

use core::arch::asm;
use core::panic::PanicInfo;

use frames::FrameCount;
use rvmm_abi::{
    workload, GuestConfig, CONFIG_ADDR, CONSOLE_PORT, EXIT_PORT, MARK_PORT, RESULT_PORT,
};

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

/// The steady-state mark ([`MARK_PORT`]): the warm-up is over. The frame
/// count goes last: rvmm samples its counters on that write.
pub(crate) fn mark(kicks: u32, frames: u32) {
    out32(MARK_PORT, kicks);
    out32(MARK_PORT, interrupts::count());
    out32(MARK_PORT, frames);
}

/// Reports a workload's outcome (kicks to the result port) and exits.
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

/// Interrupts (set up here) or polling, as the config page says.
fn completion(config: &GuestConfig) -> virtio::Completion {
    if config.interrupts != 0 {
        interrupts::init(virtio::IRQ_LINE, interrupts::Trigger::Edge);
        virtio::Completion::Interrupt
    } else {
        virtio::Completion::Poll
    }
}

/// Reads the config page.
fn config() -> GuestConfig {
    // SAFETY: rvmm maps guest RAM over the config page and fills it before
    // entry; it is aligned and any bit pattern is a valid `GuestConfig`.
    unsafe { core::ptr::read_volatile(CONFIG_ADDR as *const GuestConfig) }
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
    let config = config();
    let (frames, size) = (config.frames, config.frame_size as usize);
    let count = FrameCount {
        total: frames,
        warmup: config.warmup,
    };
    let (base, event_idx) = (config.net_mmio_base() as usize, config.event_idx != 0);
    match config.workload {
        workload::HELLO => {
            print("rvmm-guest: running in 64-bit long mode\n");
            exit(0)
        }
        // Never finishes: rvmm's watchdog must end the run.
        workload::SPIN => loop {
            core::hint::spin_loop();
        },
        w @ (workload::VIRTIO_TX | workload::VIRTIO_BAD_RING | workload::VIRTIO_BAD_BUFFER) => {
            let mistake = match w {
                workload::VIRTIO_BAD_RING => virtio::Mistake::RingOutsideRam,
                workload::VIRTIO_BAD_BUFFER => virtio::Mistake::BufferOutsideRam,
                _ => virtio::Mistake::None,
            };
            let result = virtio::tx(
                base,
                count,
                size,
                event_idx,
                config.indirect != 0,
                completion(&config),
                mistake,
            );
            finish(result, "virtio-net TX done", frames)
        }
        workload::VIRTIO_RX => finish(
            virtio::rx(
                base,
                count,
                size,
                event_idx,
                config.mrg_rxbuf != 0,
                completion(&config),
            ),
            "virtio-net RX done, checked",
            frames,
        ),
        workload::VIRTIO_ECHO => finish(
            echo::echo(
                base,
                count,
                size,
                event_idx,
                config.mrg_rxbuf != 0,
                completion(&config),
            ),
            "virtio-net echo done, answered",
            frames,
        ),
        workload::E1000_TX => {
            let result = e1000::tx(count, size, config.tdt_deferral != 0);
            finish(result, "e1000 TX done", frames)
        }
        workload::E1000_RX => finish(e1000::rx(count, size), "e1000 RX done, checked", frames),
        workload::E1000_ORDER => finish(e1000::order(), "e1000 ordering pattern written", 0),
        workload::E1000_BAD => finish(e1000::bad_input(size), "e1000 bad input survived", 1),
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
