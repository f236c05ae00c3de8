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
//! Adaptive coalescing (rvhost's own flag) is a rate limit instead, as an
//! e1000's interrupt throttling: a signal goes out at once when none went
//! out in the last `max_usecs`, so a quiet queue's next interrupt is never
//! delayed; within `max_usecs` of the last one it is held until
//! `max_packets` packets wait or `max_usecs` have passed since the last one.
//! At most one interrupt per `max_usecs` unless packets pile up.

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
    /// When the last signal went out (ns, the caller's clock), if any.
    last_signal_ns: Option<u64>,
}

impl Coalescer {
    /// The parameters in force.
    pub const fn params(&self) -> CoalesceParams {
        self.params
    }

    /// New parameters at `now_ns`; returns whether a held signal must go
    /// out now (so that turning coalescing off or down never strands the
    /// guest). A running timer is left to expire, which finds nothing owed.
    pub fn set(&mut self, params: CoalesceParams, now_ns: u64) -> bool {
        self.params = params;
        self.take_owed(now_ns)
    }

    /// The end of a round that used `packets` packets: `asked` is what the
    /// guest's event index or flags say, `avail_empty` whether the guest has
    /// no buffers left for the device. `now_ns` reads the clock, only when
    /// a signal may be held (not on the data path's common case).
    pub fn after_round(
        &mut self,
        asked: bool,
        packets: u32,
        avail_empty: bool,
        now_ns: impl FnOnce() -> u64,
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
        let now_ns = now_ns();
        // INVARIANT: owed from here on, until it goes out below or later.
        self.owed = true;
        self.held_packets = self.held_packets.saturating_add(packets);
        let hold_ns = u64::from(self.params.max_usecs) * 1000;
        let enough = self.params.max_packets != 0 && self.held_packets >= self.params.max_packets;
        // Adaptive: due `hold_ns` after the last signal (at once if that is
        // past); otherwise `hold_ns` after this first hold.
        let wait_ns = match (self.params.flags & F_ADAPTIVE != 0, self.last_signal_ns) {
            (true, Some(last)) => (last.saturating_add(hold_ns)).saturating_sub(now_ns),
            (true, None) => 0,
            (false, _) => hold_ns,
        };
        if enough || avail_empty || wait_ns == 0 {
            self.take_owed(now_ns);
            return Decision::Signal;
        }
        if self.timer_running {
            return Decision::Hold { arm_ns: None };
        }
        self.timer_running = true;
        Decision::Hold {
            arm_ns: Some(wait_ns),
        }
    }

    /// The timer expired at `now_ns`; returns whether the owed signal goes
    /// out now.
    pub fn timer_expired(&mut self, now_ns: u64) -> bool {
        self.timer_running = false;
        self.take_owed(now_ns)
    }

    /// The queue (re)starts at `now_ns`: nothing is owed any more, the VMM
    /// takes over the interrupt state. Returns whether a signal was owed.
    pub fn reset(&mut self, now_ns: u64) -> bool {
        self.take_owed(now_ns)
    }

    /// Hands back what is owed; if anything was, it goes out at `now_ns`.
    fn take_owed(&mut self, now_ns: u64) -> bool {
        let owed = self.owed;
        // INVARIANT: nothing owed, nothing held.
        self.owed = false;
        self.held_packets = 0;
        if owed {
            self.last_signal_ns = Some(now_ns);
        }
        owed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coalescer(max_packets: u32, max_usecs: u32) -> Coalescer {
        let mut c = Coalescer::default();
        assert!(!c.set(CoalesceParams::new(max_packets, max_usecs, 0).unwrap(), 0));
        c
    }

    #[test]
    fn off_signals_exactly_what_the_guest_asks_for() {
        for mut c in [coalescer(0, 0), coalescer(1, 50), coalescer(64, 0)] {
            assert_eq!(c.after_round(true, 5, false, || 0), Decision::Signal);
            assert_eq!(c.after_round(false, 5, false, || 0), Decision::Quiet);
            assert_eq!(c.after_round(false, 5, true, || 0), Decision::Quiet);
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
    fn adaptive_signals_a_quiet_queue_at_once_and_throttles_a_busy_one() {
        let mut c = Coalescer::default();
        assert!(!c.set(CoalesceParams::new(64, 50, F_ADAPTIVE).unwrap(), 0));
        // Nothing went out before: at once.
        assert_eq!(c.after_round(true, 1, false, || 1_000), Decision::Signal);
        // 200 µs later the queue was quiet for longer than 50 µs: at once.
        assert_eq!(c.after_round(true, 1, false, || 201_000), Decision::Signal);
        // 10 µs after that: held until 50 µs after the last signal.
        assert_eq!(
            c.after_round(true, 20, false, || 211_000),
            Decision::Hold {
                arm_ns: Some(40_000)
            }
        );
        assert_eq!(
            c.after_round(false, 20, false, || 221_000),
            Decision::Hold { arm_ns: None }
        );
        assert!(c.timer_expired(251_000));
        // Packets piling up still go out at max_packets.
        assert_eq!(
            c.after_round(true, 40, false, || 260_000),
            Decision::Hold {
                arm_ns: Some(41_000)
            }
        );
        assert_eq!(
            c.after_round(false, 30, false, || 270_000),
            Decision::Signal
        );
        assert!(!c.timer_expired(301_000));
    }

    #[test]
    fn a_held_signal_goes_out_at_max_packets() {
        let mut c = coalescer(64, 50);
        assert_eq!(
            c.after_round(true, 30, false, || 0),
            Decision::Hold {
                arm_ns: Some(50_000)
            }
        );
        // The guest's index does not ask again; the signal is still owed.
        assert_eq!(
            c.after_round(false, 30, false, || 0),
            Decision::Hold { arm_ns: None }
        );
        assert_eq!(c.after_round(false, 4, false, || 0), Decision::Signal);
        assert_eq!(c.after_round(false, 64, false, || 0), Decision::Quiet);
        // The timer started by the first hold expires with nothing owed.
        assert!(!c.timer_expired(0));
    }

    #[test]
    fn a_held_signal_goes_out_when_the_timer_expires() {
        let mut c = coalescer(64, 20);
        assert_eq!(
            c.after_round(true, 1, false, || 0),
            Decision::Hold {
                arm_ns: Some(20_000)
            }
        );
        assert!(c.timer_expired(0));
        assert!(!c.timer_expired(0));
        // The next hold starts the timer again.
        assert_eq!(
            c.after_round(true, 1, false, || 0),
            Decision::Hold {
                arm_ns: Some(20_000)
            }
        );
    }

    #[test]
    fn time_only_coalescing_holds_any_number_of_packets() {
        let mut c = coalescer(0, 20);
        assert_eq!(
            c.after_round(true, 1000, false, || 0),
            Decision::Hold {
                arm_ns: Some(20_000)
            }
        );
        assert_eq!(
            c.after_round(true, u32::MAX, false, || 0),
            Decision::Hold { arm_ns: None }
        );
        assert!(c.timer_expired(0));
    }

    #[test]
    fn an_empty_avail_ring_never_holds() {
        let mut c = coalescer(64, 50);
        assert_eq!(c.after_round(true, 1, true, || 0), Decision::Signal);
        assert_eq!(
            c.after_round(true, 1, false, || 0),
            Decision::Hold {
                arm_ns: Some(50_000)
            }
        );
        assert_eq!(c.after_round(false, 1, true, || 0), Decision::Signal);
    }

    #[test]
    fn turning_it_off_or_resetting_hands_back_what_is_owed() {
        let mut c = coalescer(64, 50);
        c.after_round(true, 1, false, || 0);
        assert!(c.set(CoalesceParams::OFF, 0));
        assert!(!c.set(CoalesceParams::OFF, 0));
        let mut c = coalescer(64, 50);
        c.after_round(true, 1, false, || 0);
        assert!(c.reset(0));
        assert!(!c.reset(0));
        assert_eq!(c.after_round(false, 1, false, || 0), Decision::Quiet);
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
            match c.after_round(asked, packets, round % 97 == 0, || 0) {
                Decision::Signal => since_signal = 0,
                Decision::Hold { .. } => since_signal += packets,
                Decision::Quiet => {}
            }
            assert!(since_signal < 8 + 4);
            if round % 7 == 0 && c.timer_expired(0) {
                since_signal = 0;
            }
        }
    }
}
