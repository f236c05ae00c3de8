//! The ordering check for coalesced MMIO: the guest's `e1000-order`
//! workload writes a fixed pattern of registers KVM queues in the coalesced
//! ring (the multicast table): first more in a row than the ring holds (so
//! KVM falls back to ordinary exits when it is full), then mixed with
//! writes that exit at once (IMC, with a value that changes nothing); the
//! device must see exactly the program order. The guest side is
//! samples/rvmm-guest/src/e1000.rs (`order_pattern`): keep them equal.

use crate::e1000_device::AppliedWrite;
use anyhow::{bail, Result};

/// Multicast-table writes in the pattern.
pub const WRITES: u32 = 400;
/// The first this many come in a row (the ring holds 169).
pub const IN_A_ROW: u32 = 200;
const MTA: u64 = 0x5200;
const IMC: u64 = 0xd8;

/// The pattern: MTA[k % 128] = k, and from `IN_A_ROW` on, IMC = 0 after
/// every third.
pub fn pattern() -> impl Iterator<Item = (u64, u32)> {
    (0..WRITES).flat_map(|k| {
        let mta = (MTA + 4 * u64::from(k % 128), k);
        let imc = (k >= IN_A_ROW && k % 3 == 2).then_some((IMC, 0));
        std::iter::once(mta).chain(imc)
    })
}

/// Checks that `applied` contains the pattern, in order, with nothing of
/// it missing or moved (other writes of the bring-up may come before).
/// Returns how many multicast-table writes arrived by exit (KVM's ring was
/// full) rather than through the ring.
pub fn check(applied: &[AppliedWrite]) -> Result<usize> {
    let first_mta = applied
        .iter()
        .position(|w| w.offset == MTA && w.value == 0)
        .ok_or_else(|| anyhow::anyhow!("the ordering pattern never started"))?;
    let seen = applied[first_mta..]
        .iter()
        .filter(|w| w.offset == IMC || (MTA..MTA + 512).contains(&w.offset));
    for (i, (want, got)) in pattern().zip(seen).enumerate() {
        if want != (got.offset, got.value) {
            bail!(
                "write {i} of the pattern out of order: expected {:#x} = {}, the device saw {:#x} = {}",
                want.0,
                want.1,
                got.offset,
                got.value
            );
        }
    }
    let expected = pattern().count();
    let got = applied[first_mta..]
        .iter()
        .filter(|w| w.offset == IMC || (MTA..MTA + 512).contains(&w.offset))
        .count();
    if got < expected {
        bail!("only {got} of the pattern's {expected} writes reached the device");
    }
    Ok(applied[first_mta..]
        .iter()
        .filter(|w| (MTA..MTA + 512).contains(&w.offset) && !w.coalesced)
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(pairs: impl Iterator<Item = (u64, u32)>) -> Vec<AppliedWrite> {
        pairs
            .map(|(offset, value)| AppliedWrite {
                offset,
                value,
                coalesced: offset != IMC,
            })
            .collect()
    }

    #[test]
    fn the_pattern_in_order_passes() {
        assert!(check(&applied(pattern())).is_ok());
    }

    #[test]
    fn an_exit_applied_before_queued_writes_fails() {
        let mut writes = applied(pattern());
        // IMC (the first exiting write) overtakes the MTA write before it.
        let imc = writes
            .iter()
            .position(|w| w.offset == IMC)
            .expect("an IMC write");
        writes.swap(imc - 1, imc);
        assert!(check(&writes).is_err());
    }

    #[test]
    fn a_lost_write_fails() {
        let mut writes = applied(pattern());
        writes.remove(10);
        assert!(check(&writes).is_err());
    }
}
