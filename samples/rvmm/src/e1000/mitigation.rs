//! Interrupt causes (ICR), the mask (IMS) and the INTx line, under one of
//! three mitigation policies:
//!
//! - `Off`: the line follows `ICR & IMS` at all times.
//! - `Itr`: QEMU's scheme since 2013. A rising `ICR & IMS` raises the line
//!   and arms a timer (smallest non-zero of ITR, TADV·4, RADV·4, in 256 ns
//!   units, at least 500 units); causes arriving while it runs are latched
//!   but raise the line only when it expires.
//! - `Batch`: Rizzo's 2012 patch. RX delivers its first interrupt at once;
//!   later RX causes and all TX causes wait for a "bottom half" (here a
//!   deadline `BATCH_BH_DELAY_NS` later) unless the TX ring is nearly full
//!   or RX crosses the descriptor minimum threshold.
//!
//! In every mode the line is level-triggered: once up it stays up until
//! the guest reads ICR (or masks the causes), whatever the timers do.

use super::regs::{ICR_CAUSES, ICR_INT_ASSERTED, ICR_RXDMT0, ICR_RXT0, ICR_TXDW, ICR_TXQE};

/// Which interrupt mitigation the device applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mitigation {
    /// None: the line is `(ICR & IMS) != 0`.
    Off,
    /// Timer-based, from ITR/TADV/RADV (QEMU's behaviour since 2013).
    Itr,
    /// Rizzo's batching into a deferred handler (the 2012 patch).
    Batch,
}

/// One ITR unit, in nanoseconds.
pub const ITR_UNIT_NS: u64 = 256;
/// The shortest mitigation interval in ITR units (128 µs: at most 7813
/// interrupts per second, the rate the manual guarantees).
pub const ITR_MIN_UNITS: u64 = 500;
/// How long after being scheduled the Batch bottom half runs. QEMU ran it
/// from its main loop "soon"; a fixed short delay stands in for that.
pub const BATCH_BH_DELAY_NS: u64 = 50_000;
/// TX batching starts deferring TDT work once this many descriptors'
/// worth of interrupts are pending.
pub const BATCH_TX_FREE_COUNT: u32 = 4;
/// The ring is "nearly full" within this many descriptors of its size.
pub const BATCH_RING_SLACK: u32 = 5;
/// rx_ics_count value meaning "RXDMT0 already sent since the last bottom
/// half": large, so that further RXDMT0s wait for the bottom half.
const RXDMT0_SENT: u32 = 100_000;

/// The delay registers the Itr policy reads (raw register values).
#[derive(Clone, Copy, Debug, Default)]
pub struct Delays {
    /// ITR, 256 ns units.
    pub itr: u32,
    /// TADV, 1.024 µs units.
    pub tadv: u32,
    /// RADV, 1.024 µs units.
    pub radv: u32,
    /// RDTR; non-zero enables RADV.
    pub rdtr: u32,
}

/// Cause/mask/line state plus the timers of the chosen policy.
pub struct Interrupts {
    mode: Mitigation,
    icr: u32,
    ims: u32,
    line: bool,
    raised: u64,
    // Itr.
    itr_deadline: Option<u64>,
    /// A TX descriptor asked for a delayed interrupt (IDE) since the timer
    /// was last armed: only then does TADV count.
    tx_delay_asked: bool,
    itr_fires: u64,
    // Batch.
    /// TX descriptors processed since the last delivery.
    tx_ics_count: u32,
    /// RX interrupts requested since the last bottom half.
    rx_ics_count: u32,
    /// Causes held for the bottom half.
    deferred: u32,
    bh_deadline: Option<u64>,
    bh_runs: u64,
}

impl Interrupts {
    /// No causes, mask empty, line low.
    pub fn new(mode: Mitigation) -> Self {
        Interrupts {
            mode,
            icr: 0,
            ims: 0,
            line: false,
            raised: 0,
            itr_deadline: None,
            tx_delay_asked: false,
            itr_fires: 0,
            tx_ics_count: 0,
            rx_ics_count: 0,
            deferred: 0,
            bh_deadline: None,
            bh_runs: 0,
        }
    }

    /// Device reset: clears causes, mask, timers and batching state; keeps
    /// the policy and the counters.
    pub fn reset(&mut self) {
        self.icr = 0;
        self.ims = 0;
        self.line = false;
        self.itr_deadline = None;
        self.tx_delay_asked = false;
        self.tx_ics_count = 0;
        self.rx_ics_count = 0;
        self.deferred = 0;
        self.bh_deadline = None;
    }

    /// The policy.
    pub fn mode(&self) -> Mitigation {
        self.mode
    }

    /// ICR as software would read it (without clearing): the causes, plus
    /// INT_ASSERTED while an unmasked cause is pending.
    pub fn icr(&self) -> u32 {
        if self.icr & self.ims != 0 {
            self.icr | ICR_INT_ASSERTED
        } else {
            self.icr
        }
    }

    /// The mask.
    pub fn ims(&self) -> u32 {
        self.ims
    }

    /// The INTx line now.
    pub fn line(&self) -> bool {
        self.line
    }

    /// Rising edges of the line so far.
    pub fn raised(&self) -> u64 {
        self.raised
    }

    /// Itr timer expiries so far.
    pub fn itr_fires(&self) -> u64 {
        self.itr_fires
    }

    /// Batch bottom-half runs so far.
    pub fn bh_runs(&self) -> u64 {
        self.bh_runs
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        match (self.itr_deadline, self.bh_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sets causes now (ICS writes, MDAC, and TX/RX outside Batch).
    pub fn raise(&mut self, causes: u32, now: u64, d: Delays) {
        self.icr |= causes & ICR_CAUSES;
        self.update(now, d);
    }

    /// ICR write: clears the causes written as 1.
    pub fn clear(&mut self, causes: u32, now: u64, d: Delays) {
        self.icr &= !causes;
        self.update(now, d);
    }

    /// ICR read: returns it and clears every cause, which drops the line.
    pub fn read_and_clear(&mut self, now: u64, d: Delays) -> u32 {
        let v = self.icr();
        self.icr = 0;
        self.update(now, d);
        v
    }

    /// IMS write.
    pub fn mask_set(&mut self, bits: u32, now: u64, d: Delays) {
        self.ims |= bits & ICR_CAUSES;
        self.update(now, d);
    }

    /// IMC write.
    pub fn mask_clear(&mut self, bits: u32, now: u64, d: Delays) {
        self.ims &= !bits;
        self.update(now, d);
    }

    /// A TX descriptor had IDE set: TADV may delay the next interrupt.
    pub fn note_tx_delay_asked(&mut self) {
        self.tx_delay_asked = true;
    }

    fn set_line(&mut self, level: bool) {
        if level && !self.line {
            self.raised += 1;
        }
        self.line = level;
    }

    /// The Itr interval for `pending` causes, in ITR units; 0 when no
    /// delay register applies (then the policy acts like Off).
    fn itr_units(&self, pending: u32, d: Delays) -> u64 {
        let mut best = 0u64;
        let mut consider = |v: u64| {
            if v != 0 && (best == 0 || v < best) {
                best = v;
            }
        };
        if self.tx_delay_asked && pending & (ICR_TXDW | ICR_TXQE) != 0 {
            consider(u64::from(d.tadv & 0xFFFF) * 4);
        }
        if d.rdtr != 0 && pending & ICR_RXT0 != 0 {
            consider(u64::from(d.radv & 0xFFFF) * 4);
        }
        consider(u64::from(d.itr & 0xFFFF));
        if best == 0 {
            0
        } else {
            best.max(ITR_MIN_UNITS)
        }
    }

    /// Recomputes the line after ICR or IMS changed.
    fn update(&mut self, now: u64, d: Delays) {
        let pending = self.icr & self.ims;
        if self.mode != Mitigation::Itr || pending == 0 || self.line {
            self.set_line(pending != 0);
            return;
        }
        // A rising edge under Itr.
        if self.itr_deadline.is_some() {
            // Inside the window: latch only; the timer raises it later.
            return;
        }
        let units = self.itr_units(pending, d);
        if units != 0 {
            self.itr_deadline = Some(now.saturating_add(units * ITR_UNIT_NS));
            self.tx_delay_asked = false;
        }
        self.set_line(true);
    }

    /// Fires the Itr timer if it is due: raises what was held and re-arms.
    pub fn on_itr_timer(&mut self, now: u64, d: Delays) {
        if matches!(self.itr_deadline, Some(t) if t <= now) {
            self.itr_deadline = None;
            self.itr_fires += 1;
            self.update(now, d);
        }
    }

    /// Batch: whether a TDT write with `pending` descriptors should be
    /// left for the bottom half (enough interrupts' worth already pending
    /// and the ring not near full).
    pub fn batch_defer_tx(&self, pending: u32, ring: u32) -> bool {
        self.tx_ics_count > BATCH_TX_FREE_COUNT
            && self.tx_ics_count.saturating_add(pending) < ring.saturating_sub(BATCH_RING_SLACK)
    }

    /// Batch: TX processed `processed` descriptors raising `causes`. They
    /// go out now if the ring is nearly full, else with the bottom half.
    pub fn batch_tx_done(&mut self, causes: u32, processed: u32, ring: u32, now: u64, d: Delays) {
        self.deferred |= causes;
        self.tx_ics_count = self.tx_ics_count.saturating_add(processed);
        if self.tx_ics_count >= ring.saturating_sub(BATCH_RING_SLACK) {
            self.tx_ics_count = 0;
            self.deliver_deferred(now, d);
        } else {
            self.schedule_bh(now);
        }
    }

    /// Batch: RX raised `causes`. The first interrupt since the last bottom
    /// half goes out now, as does the first RXDMT0; the rest wait.
    pub fn batch_rx(&mut self, causes: u32, now: u64, d: Delays) {
        self.deferred |= causes;
        if self.rx_ics_count == 0 {
            self.rx_ics_count = 1;
            self.deliver_deferred(now, d);
        } else if causes & ICR_RXDMT0 != 0 && self.rx_ics_count < RXDMT0_SENT {
            self.rx_ics_count = RXDMT0_SENT;
            self.deliver_deferred(now, d);
        } else {
            self.rx_ics_count = self.rx_ics_count.saturating_add(1);
            self.schedule_bh(now);
        }
    }

    /// Batch: make sure the bottom half will run (an already scheduled run
    /// keeps its deadline).
    pub fn schedule_bh(&mut self, now: u64) {
        if self.bh_deadline.is_none() {
            self.bh_deadline = Some(now.saturating_add(BATCH_BH_DELAY_NS));
        }
    }

    /// Batch: if the bottom half is due, consumes its deadline and returns
    /// whether it has work (then the counters restart from zero; the
    /// caller runs TX and then `end_bh`).
    pub fn begin_bh(&mut self, now: u64) -> bool {
        if !matches!(self.bh_deadline, Some(t) if t <= now) {
            return false;
        }
        self.bh_deadline = None;
        self.bh_runs += 1;
        if self.tx_ics_count == 0 && self.rx_ics_count == 0 && self.deferred == 0 {
            return false;
        }
        self.tx_ics_count = 0;
        self.rx_ics_count = 0;
        true
    }

    /// Batch: the bottom half delivers what was held.
    pub fn end_bh(&mut self, now: u64, d: Delays) {
        self.deliver_deferred(now, d);
    }

    fn deliver_deferred(&mut self, now: u64, d: Delays) {
        let causes = std::mem::take(&mut self.deferred);
        self.raise(causes, now, d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_DELAYS: Delays = Delays {
        itr: 0,
        tadv: 0,
        radv: 0,
        rdtr: 0,
    };

    #[test]
    fn off_follows_icr_and_mask() {
        let mut i = Interrupts::new(Mitigation::Off);
        i.raise(ICR_TXDW, 0, NO_DELAYS);
        assert!(!i.line(), "masked");
        i.mask_set(ICR_TXDW, 0, NO_DELAYS);
        assert!(i.line());
        i.mask_clear(ICR_TXDW, 0, NO_DELAYS);
        assert!(!i.line());
        i.mask_set(ICR_TXDW, 0, NO_DELAYS);
        assert_eq!(i.read_and_clear(0, NO_DELAYS), ICR_TXDW | ICR_INT_ASSERTED);
        assert!(!i.line());
        assert_eq!(i.raised(), 2);
        assert_eq!(i.next_deadline(), None);
    }

    #[test]
    fn itr_delay_is_smallest_nonzero_clamped() {
        let mut i = Interrupts::new(Mitigation::Itr);
        let d = Delays {
            itr: 1000,
            tadv: 200,
            radv: 150,
            rdtr: 1,
        };
        assert_eq!(i.itr_units(ICR_RXT0, d), 600);
        assert_eq!(i.itr_units(ICR_TXDW, d), 1000, "TADV only with IDE");
        i.note_tx_delay_asked();
        assert_eq!(i.itr_units(ICR_TXDW, d), 800);
        let small = Delays {
            itr: 10,
            ..NO_DELAYS
        };
        assert_eq!(i.itr_units(ICR_TXDW, small), ITR_MIN_UNITS);
        assert_eq!(i.itr_units(ICR_RXT0, NO_DELAYS), 0);
    }

    #[test]
    fn itr_with_zero_registers_acts_like_off() {
        let mut i = Interrupts::new(Mitigation::Itr);
        i.mask_set(ICR_CAUSES, 0, NO_DELAYS);
        i.raise(ICR_RXT0, 0, NO_DELAYS);
        assert!(i.line());
        i.read_and_clear(1, NO_DELAYS);
        i.raise(ICR_RXT0, 2, NO_DELAYS);
        assert!(i.line());
        assert_eq!(i.next_deadline(), None);
    }
}
