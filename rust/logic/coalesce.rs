// SPDX-License-Identifier: GPL-2.0

//! Interrupt coalescing per queue, with the semantics of virtio-net's
//! `VIRTIO_NET_F_NOTF_COAL` (max packets / max microseconds per used-buffer
//! notification), set by the VMM with rvhost's own
//! `RVHOST_SET_VRING_COALESCE`.
//!
//! Event index (or `NO_INTERRUPT`) decides whether the guest *asked* for a
//! signal; coalescing decides *when* an asked-for signal goes out: it is
//! held while fewer than `max_packets` packets wait for it, for at most
//! `max_usecs` (a timer), and never while the guest's avail ring is empty
//! (the device can do nothing more until the guest acts, and the guest may
//! be waiting for exactly this signal). Once held, a signal is owed: later
//! rounds that the guest's index would not signal for still count towards
//! it, and it is sent even if the guest's `used_event` has not moved.
//!
//! Adaptive coalescing (rvhost's own flag) holds a signal only while the
//! device has more work on the queue right away (the round ended with its
//! budget spent): at low load every signal goes out at the end of its
//! round, as without coalescing, so only saturation is coalesced.

/// Longest hold a VMM may ask for: 1 s (`EINVAL` beyond).
pub const MAX_USECS: u32 = 1_000_000;

/// Flag of adaptive coalescing (`RVHOST_COALESCE_F_ADAPTIVE`).
pub const F_ADAPTIVE: u32 = 1;

/// Why coalescing parameters are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoalesceError {
    /// `max_usecs` above [`MAX_USECS`].
    TooLong,
    /// A flag this version does not know.
    UnknownFlags,
}

/// What the VMM asked for: a held signal goes out once `max_packets`
/// packets wait for it (0: no packet bound) or `max_usecs` after it was
/// first held. `max_usecs` 0 turns coalescing off (every asked-for signal
/// goes out at once), as does `max_packets` 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoalesceParams {
    max_packets: u32,
    max_usecs: u32,
    flags: u32,
}

impl CoalesceParams {
    /// No coalescing (the default, and upstream's behaviour).
    pub const OFF: Self = Self {
        max_packets: 0,
        max_usecs: 0,
        flags: 0,
    };

    /// Checked parameters.
    pub const fn new(max_packets: u32, max_usecs: u32, flags: u32) -> Result<Self, CoalesceError> {
        if max_usecs > MAX_USECS {
            return Err(CoalesceError::TooLong);
        }
        if flags & !F_ADAPTIVE != 0 {
            return Err(CoalesceError::UnknownFlags);
        }
        Ok(Self {
            max_packets,
            max_usecs,
            flags,
        })
    }

    /// Packets a held signal waits for at most (0: no bound).
    pub const fn max_packets(&self) -> u32 {
        self.max_packets
    }

    /// Longest hold, in microseconds (0: coalescing off).
    pub const fn max_usecs(&self) -> u32 {
        self.max_usecs
    }

    /// The flags ([`F_ADAPTIVE`]).
    pub const fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether a signal may be held at all.
    pub const fn holds(&self) -> bool {
        self.max_usecs != 0 && self.max_packets != 1
    }
}

/// What the end of a round does about the guest's interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing asked for, nothing owed.
    Quiet,
    /// Signal the call eventfd now.
    Signal,
    /// Hold the signal; start the timer for `arm_ns` nanoseconds if given
    /// (it is not running yet).
    Hold {
        /// Nanoseconds until the held signal is due, when the timer must start.
        arm_ns: Option<u64>,
    },
}

/// One queue's coalescing state.
///
/// # Invariants
///
/// `held_packets` is 0 unless `owed`; `owed` implies the parameters hold
/// signals, or held one when they were set (see [`Coalescer::set`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coalescer {
    params: CoalesceParams,
    /// A signal the guest asked for has not gone out yet.
    owed: bool,
    /// Packets used since the owed signal was first held.
    held_packets: u32,
    /// The timer was started and has not been reported expired.
    timer_running: bool,
}

impl Coalescer {
    /// The parameters in force.
    pub const fn params(&self) -> CoalesceParams {
        self.params
    }

    /// New parameters; returns whether a held signal must go out now (so
    /// that turning coalescing off or down never strands the guest). A
    /// running timer is left to expire, which finds nothing owed.
    pub fn set(&mut self, params: CoalesceParams) -> bool {
        self.params = params;
        self.take_owed()
    }

    /// The end of a round that used `packets` packets: `asked` is what the
    /// guest's event index or flags say, `avail_empty` whether the guest has
    /// no buffers left for the device, `more_work` whether the device goes
    /// on with the queue at once (its round ran out of budget).
    pub fn after_round(
        &mut self,
        asked: bool,
        packets: u32,
        avail_empty: bool,
        more_work: bool,
    ) -> Decision {
        if !self.params.holds() {
            // Nothing is owed (`set` handed it back).
            return match asked {
                true => Decision::Signal,
                false => Decision::Quiet,
            };
        }
        if !asked && !self.owed {
            return Decision::Quiet;
        }
        // INVARIANT: owed from here on, until it goes out below or later.
        self.owed = true;
        self.held_packets = self.held_packets.saturating_add(packets);
        let enough = self.params.max_packets != 0 && self.held_packets >= self.params.max_packets;
        let idle = self.params.flags & F_ADAPTIVE != 0 && !more_work;
        if enough || avail_empty || idle {
            self.take_owed();
            return Decision::Signal;
        }
        if self.timer_running {
            return Decision::Hold { arm_ns: None };
        }
        self.timer_running = true;
        Decision::Hold {
            arm_ns: Some(u64::from(self.params.max_usecs) * 1000),
        }
    }

    /// The timer expired; returns whether the owed signal goes out now.
    pub fn timer_expired(&mut self) -> bool {
        self.timer_running = false;
        self.take_owed()
    }

    /// The queue (re)starts: nothing is owed any more, the VMM takes over
    /// the interrupt state. Returns whether a signal was owed.
    pub fn reset(&mut self) -> bool {
        self.take_owed()
    }

    fn take_owed(&mut self) -> bool {
        let owed = self.owed;
        // INVARIANT: nothing owed, nothing held.
        self.owed = false;
        self.held_packets = 0;
        owed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coalescer(max_packets: u32, max_usecs: u32) -> Coalescer {
        let mut c = Coalescer::default();
        assert!(!c.set(CoalesceParams::new(max_packets, max_usecs, 0).unwrap()));
        c
    }

    #[test]
    fn off_signals_exactly_what_the_guest_asks_for() {
        for mut c in [coalescer(0, 0), coalescer(1, 50), coalescer(64, 0)] {
            assert_eq!(c.after_round(true, 5, false, true), Decision::Signal);
            assert_eq!(c.after_round(false, 5, false, true), Decision::Quiet);
            assert_eq!(c.after_round(false, 5, true, true), Decision::Quiet);
        }
    }

    #[test]
    fn params_are_bounded() {
        assert_eq!(
            CoalesceParams::new(0, MAX_USECS + 1, 0),
            Err(CoalesceError::TooLong)
        );
        assert!(CoalesceParams::new(u32::MAX, MAX_USECS, F_ADAPTIVE).is_ok());
        assert!(!CoalesceParams::OFF.holds());
        assert_eq!(
            CoalesceParams::new(0, 1, 2),
            Err(CoalesceError::UnknownFlags)
        );
    }

    #[test]
    fn adaptive_holds_only_while_more_work_follows() {
        let mut c = Coalescer::default();
        assert!(!c.set(CoalesceParams::new(64, 50, F_ADAPTIVE).unwrap()));
        // Low load: the round ends with nothing left, the signal goes out.
        assert_eq!(c.after_round(true, 1, false, false), Decision::Signal);
        // Saturation: held while rounds requeue, out when they stop.
        assert_eq!(
            c.after_round(true, 20, false, true),
            Decision::Hold {
                arm_ns: Some(50_000)
            }
        );
        assert_eq!(
            c.after_round(false, 20, false, true),
            Decision::Hold { arm_ns: None }
        );
        assert_eq!(c.after_round(false, 3, false, false), Decision::Signal);
        assert_eq!(c.after_round(false, 3, false, false), Decision::Quiet);
    }

    #[test]
    fn a_held_signal_goes_out_at_max_packets() {
        let mut c = coalescer(64, 50);
        assert_eq!(
            c.after_round(true, 30, false, true),
            Decision::Hold {
                arm_ns: Some(50_000)
            }
        );
        // The guest's index does not ask again; the signal is still owed.
        assert_eq!(
            c.after_round(false, 30, false, true),
            Decision::Hold { arm_ns: None }
        );
        assert_eq!(c.after_round(false, 4, false, true), Decision::Signal);
        assert_eq!(c.after_round(false, 64, false, true), Decision::Quiet);
        // The timer started by the first hold expires with nothing owed.
        assert!(!c.timer_expired());
    }

    #[test]
    fn a_held_signal_goes_out_when_the_timer_expires() {
        let mut c = coalescer(64, 20);
        assert_eq!(
            c.after_round(true, 1, false, true),
            Decision::Hold {
                arm_ns: Some(20_000)
            }
        );
        assert!(c.timer_expired());
        assert!(!c.timer_expired());
        // The next hold starts the timer again.
        assert_eq!(
            c.after_round(true, 1, false, true),
            Decision::Hold {
                arm_ns: Some(20_000)
            }
        );
    }

    #[test]
    fn time_only_coalescing_holds_any_number_of_packets() {
        let mut c = coalescer(0, 20);
        assert_eq!(
            c.after_round(true, 1000, false, true),
            Decision::Hold {
                arm_ns: Some(20_000)
            }
        );
        assert_eq!(
            c.after_round(true, u32::MAX, false, true),
            Decision::Hold { arm_ns: None }
        );
        assert!(c.timer_expired());
    }

    #[test]
    fn an_empty_avail_ring_never_holds() {
        let mut c = coalescer(64, 50);
        assert_eq!(c.after_round(true, 1, true, true), Decision::Signal);
        assert_eq!(
            c.after_round(true, 1, false, true),
            Decision::Hold {
                arm_ns: Some(50_000)
            }
        );
        assert_eq!(c.after_round(false, 1, true, true), Decision::Signal);
    }

    #[test]
    fn turning_it_off_or_resetting_hands_back_what_is_owed() {
        let mut c = coalescer(64, 50);
        c.after_round(true, 1, false, true);
        assert!(c.set(CoalesceParams::OFF));
        assert!(!c.set(CoalesceParams::OFF));
        let mut c = coalescer(64, 50);
        c.after_round(true, 1, false, true);
        assert!(c.reset());
        assert!(!c.reset());
        assert_eq!(c.after_round(false, 1, false, true), Decision::Quiet);
    }

    #[test]
    fn no_signal_is_lost_and_none_waits_past_its_bound() {
        // Every round asks, or not, by a simple pattern; whatever the pattern,
        // an owed signal is out within max_packets packets or one timer.
        let mut c = coalescer(8, 10);
        let mut since_signal = 0u32;
        for round in 0..1000u32 {
            let asked = round % 3 == 0;
            let packets = round % 5;
            match c.after_round(asked, packets, round % 97 == 0, true) {
                Decision::Signal => since_signal = 0,
                Decision::Hold { .. } => since_signal += packets,
                Decision::Quiet => {}
            }
            assert!(since_signal < 8 + 4);
            if round % 7 == 0 && c.timer_expired() {
                since_signal = 0;
            }
        }
    }
}
