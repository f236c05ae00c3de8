//! What rvmm and its bare-metal guest (`samples/rvmm-guest`) agree on: the
//! I/O ports the guest reports through, the config page rvmm fills before
//! the guest starts, and the workload numbers. `no_std`, so that both the
//! host VMM and the `x86_64-unknown-none` guest build it. [`echo`] is the
//! request/response frame format of the `virtio-echo` workload.

#![no_std]

/// A byte written here ends the run with that status.
pub const EXIT_PORT: u16 = 0x401;
/// Each byte written here is one character of guest output.
pub const CONSOLE_PORT: u16 = 0x402;
/// 32-bit results for the VMM's report: the kicks the driver made, then the
/// device interrupts it took.
pub const RESULT_PORT: u16 = 0x404;
/// The steady-state mark: when the guest has moved
/// [`GuestConfig::warmup`] frames it writes, in order, its kicks so far, the
/// interrupts it took so far and the frames it moved; rvmm samples its
/// counters on the third write, so that bring-up stays outside the window.
pub const MARK_PORT: u16 = 0x405;

/// Guest-physical address of the config page (a [`GuestConfig`]).
pub const CONFIG_ADDR: u64 = 0x7000;

/// Workload numbers ([`GuestConfig::workload`]; rvmm's `--workload`).
pub mod workload {
    /// Print a line and exit 0.
    pub const HELLO: u32 = 0;
    /// Spin forever (the watchdog's test).
    pub const SPIN: u32 = 1;
    /// Send frames through the virtio-net device.
    pub const VIRTIO_TX: u32 = 2;
    /// Like `VIRTIO_TX`, with the TX ring outside guest RAM.
    pub const VIRTIO_BAD_RING: u32 = 3;
    /// Like `VIRTIO_TX`, with descriptors pointing outside guest RAM.
    pub const VIRTIO_BAD_BUFFER: u32 = 4;
    /// Receive frames rvmm sends into the tap and check each.
    pub const VIRTIO_RX: u32 = 5;
    /// Send frames through the e1000.
    pub const E1000_TX: u32 = 6;
    /// Receive frames through the e1000 and check each.
    pub const E1000_RX: u32 = 7;
    /// Interleave coalesced and exiting e1000 register writes.
    pub const E1000_ORDER: u32 = 8;
    /// Program the e1000 badly, then send one good frame.
    pub const E1000_BAD: u32 = 9;
    /// Answer every request frame rvmm sends into the tap ([`echo`]).
    pub const VIRTIO_ECHO: u32 = 10;
}

pub mod echo;

/// The config page: what the guest runs and how. Booleans are 0 or 1.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestConfig {
    /// One of [`workload`].
    pub workload: u32,
    /// Frames to send or receive.
    pub frames: u32,
    /// Frame size in bytes.
    pub frame_size: u32,
    /// virtio: negotiate `VIRTIO_RING_F_EVENT_IDX`.
    pub event_idx: u32,
    /// virtio: the device's MMIO base, low and high halves.
    pub net_mmio_base_lo: u32,
    pub net_mmio_base_hi: u32,
    /// Sleep on device interrupts (1) or poll used rings with interrupts off (0).
    pub interrupts: u32,
    /// e1000: defer TDT writes while a TX interrupt is pending.
    pub tdt_deferral: u32,
    /// virtio: send through indirect tables (TX).
    pub indirect: u32,
    /// virtio: negotiate `VIRTIO_NET_F_MRG_RXBUF` (RX).
    pub mrg_rxbuf: u32,
    /// Frames before the steady-state mark ([`MARK_PORT`]); 0: no mark.
    pub warmup: u32,
}

impl GuestConfig {
    /// The virtio-net device's MMIO base.
    pub const fn net_mmio_base(&self) -> u64 {
        (self.net_mmio_base_hi as u64) << 32 | self.net_mmio_base_lo as u64
    }

    /// Sets the virtio-net device's MMIO base.
    pub const fn with_net_mmio_base(mut self, base: u64) -> Self {
        self.net_mmio_base_lo = base as u32;
        self.net_mmio_base_hi = (base >> 32) as u32;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_eleven_words_without_padding() {
        assert_eq!(core::mem::size_of::<GuestConfig>(), 44);
        assert_eq!(core::mem::align_of::<GuestConfig>(), 4);
    }

    #[test]
    fn the_mmio_base_round_trips() {
        let c = GuestConfig::default().with_net_mmio_base(0x1_d000_0000);
        assert_eq!((c.net_mmio_base_lo, c.net_mmio_base_hi), (0xd000_0000, 1));
        assert_eq!(c.net_mmio_base(), 0x1_d000_0000);
    }
}
