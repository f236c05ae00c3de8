// SPDX-License-Identifier: GPL-2.0

//! How much one worker round on a queue may do before it requeues itself
//! and lets everything else run (other queues, ioctls, other tasks).
//!
//! A round is bounded three ways, each checked between packets: packets
//! taken (sent, received or dropped: upstream's `vhost_exceeds_weight`
//! counts every packet taken off the socket, so a flood of packets that fit
//! nowhere cannot keep the worker), payload bytes (large frames), and
//! descriptors read (upstream does not bound these: a guest can make each
//! placement cost tens of thousands of reads with zero-length descriptors and
//! big indirect tables). One packet may overrun the round by at most
//! [`PACKET_DESC_LIMIT`] reads, which a packet that needs more is refused for.

pub use super::split_ring::PACKET_DESC_LIMIT;

/// Most packets taken per round and queue.
pub const ROUND_PACKETS: u32 = 64;
/// Most payload bytes per round and queue (upstream's `VHOST_NET_WEIGHT`).
pub const ROUND_BYTES: u64 = 0x8_0000;
/// Most descriptors read per round and queue: 64 well-formed packets need
/// one to three reads each, a 64 KiB packet in 1.5 KiB buffers 44 (and the
/// byte weight ends such a round after 8 of them).
pub const ROUND_DESCS: u32 = 1024;

/// Longest busy poll after a round (`VHOST_SET_VRING_BUSYLOOP_TIMEOUT`
/// asks for up to `u32::MAX` microseconds): the worker spins with the
/// device's lock held, so an ioctl or a stop waits at most this long.
pub const BUSY_POLL_MAX_US: u32 = 10_000;

/// How long the worker busy-polls a queue whose busy-loop timeout is
/// `timeout_us` microseconds, in nanoseconds (0: it does not).
pub const fn busy_poll_ns(timeout_us: u32) -> u64 {
    let us = if timeout_us < BUSY_POLL_MAX_US {
        timeout_us
    } else {
        BUSY_POLL_MAX_US
    };
    us as u64 * 1000
}

/// What a round has used of its budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundBudget {
    packets: u32,
    bytes: u64,
    descs: u32,
}

impl RoundBudget {
    /// A new round.
    pub const fn new() -> Self {
        Self {
            packets: 0,
            bytes: 0,
            descs: 0,
        }
    }

    /// One packet taken off the ring or the socket, with `bytes` of payload
    /// moved (0 for a dropped one).
    pub fn packet(&mut self, bytes: u64) {
        self.packets = self.packets.saturating_add(1);
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// `reads` descriptors read (for a packet, or for one that did not fit).
    pub fn read(&mut self, reads: u32) {
        self.descs = self.descs.saturating_add(reads);
    }

    /// Packets taken so far.
    pub const fn packets(&self) -> u32 {
        self.packets
    }

    /// Payload bytes moved so far.
    pub const fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Descriptors read so far.
    pub const fn descs(&self) -> u32 {
        self.descs
    }

    /// Whether the round must end and requeue itself.
    pub const fn exhausted(&self) -> bool {
        self.packets >= ROUND_PACKETS || self.bytes >= ROUND_BYTES || self.descs >= ROUND_DESCS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_poll_is_capped() {
        assert_eq!(busy_poll_ns(0), 0);
        assert_eq!(busy_poll_ns(50), 50_000);
        assert_eq!(busy_poll_ns(BUSY_POLL_MAX_US), 10_000_000);
        assert_eq!(busy_poll_ns(u32::MAX), 10_000_000);
    }

    #[test]
    fn dropped_packets_count_like_delivered_ones() {
        let mut b = RoundBudget::new();
        for _ in 0..ROUND_PACKETS - 1 {
            b.packet(0);
        }
        assert!(!b.exhausted());
        b.packet(0);
        assert!(b.exhausted());
    }

    #[test]
    fn bytes_and_descriptor_reads_end_a_round_too() {
        let mut b = RoundBudget::new();
        b.packet(ROUND_BYTES - 1);
        assert!(!b.exhausted());
        b.packet(1);
        assert!(b.exhausted());
        let mut b = RoundBudget::new();
        b.read(ROUND_DESCS - 1);
        assert!(!b.exhausted());
        b.read(1);
        assert!(b.exhausted());
        assert_eq!(b.packets(), 0);
    }

    #[test]
    fn worst_case_round_is_bounded() {
        // Checked between packets, a round reads at most ROUND_DESCS - 1
        // before its last packet and PACKET_DESC_LIMIT for it.
        let mut b = RoundBudget::new();
        let mut reads = 0u32;
        while !b.exhausted() {
            b.read(PACKET_DESC_LIMIT);
            reads += PACKET_DESC_LIMIT;
        }
        assert!(reads < ROUND_DESCS + PACKET_DESC_LIMIT);
    }
}
