//! Bad guest input is reported once per kind: the device queues one
//! message per kind for the VMM to print and counts every occurrence.

use std::collections::VecDeque;

/// What a guest got wrong (or asked for that the model does not do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadInput {
    /// TDT written at or past the end of the TX ring.
    TdtOutOfRange,
    /// TDH at or past the end of the TX ring.
    TdhOutOfRange,
    /// A TX descriptor outside guest RAM.
    TxDescriptorOutsideRam,
    /// A TX buffer outside guest RAM.
    TxBufferOutsideRam,
    /// Writing a TX descriptor's status back failed.
    TxWritebackFailed,
    /// A TX frame longer than `MAX_TX_FRAME`.
    TxFrameTooLong,
    /// An extended TX descriptor of a reserved type.
    TxUnknownDescriptor,
    /// TCP segmentation asked for (not emulated: the frame is dropped).
    TxSegmentation,
    /// Checksum insertion asked for (not emulated: sent as is).
    TxChecksumOffload,
    /// RDH or RDT outside the RX ring.
    RxRingInvalid,
    /// An RX descriptor outside guest RAM.
    RxDescriptorOutsideRam,
    /// An RX buffer outside guest RAM (or a null buffer address).
    RxBufferOutsideRam,
    /// A frame needs more RX buffers than the ring can ever hold.
    RxFrameTooBigForRing,
    /// TX or RX enabled while PCI bus mastering is off: no DMA.
    DmaWithoutBusMaster,
    /// EERD read of a word past the EEPROM.
    EerdAddress,
}

/// The once-per-kind log.
#[derive(Default)]
pub struct BadInputLog {
    seen: u32,
    pending: VecDeque<String>,
    events: u64,
}

impl BadInputLog {
    /// Records one occurrence of `kind`; the first one queues `message()`.
    pub fn report(&mut self, kind: BadInput, message: impl FnOnce() -> String) {
        self.events += 1;
        let bit = 1u32 << (kind as u32);
        if self.seen & bit == 0 {
            self.seen |= bit;
            self.pending
                .push_back(format!("e1000: {} (logged once)", message()));
        }
    }

    /// The next queued message.
    pub fn take(&mut self) -> Option<String> {
        self.pending.pop_front()
    }

    /// Occurrences of all kinds so far.
    pub fn events(&self) -> u64 {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_kind() {
        let mut l = BadInputLog::default();
        l.report(BadInput::TdtOutOfRange, || "a".into());
        l.report(BadInput::TdtOutOfRange, || "b".into());
        l.report(BadInput::EerdAddress, || "c".into());
        assert_eq!(l.events(), 3);
        assert!(l.take().is_some_and(|m| m.contains(": a")));
        assert!(l.take().is_some_and(|m| m.contains(": c")));
        assert_eq!(l.take(), None);
    }
}
