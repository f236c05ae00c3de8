// SPDX-License-Identifier: GPL-2.0

//! A rate limit for diagnostics a guest can trigger: at most `burst` messages
//! per `interval`, and a count of those left out, reported with the next one
//! let through (the kernel's `___ratelimit` rule, without its lock).

/// Decides whether one more message may be printed now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    interval_ns: u64,
    burst: u32,
    /// Start of the current interval; `None` before the first message.
    window_start: Option<u64>,
    printed: u32,
    suppressed: u32,
}

impl RateLimit {
    /// At most `burst` messages per `interval_ns` nanoseconds.
    pub const fn new(interval_ns: u64, burst: u32) -> Self {
        Self {
            interval_ns,
            burst,
            window_start: None,
            printed: 0,
            suppressed: 0,
        }
    }

    /// Whether a message may be printed at `now_ns` (a monotonic clock):
    /// `Some(n)` with the number of messages suppressed since the last one
    /// printed, `None` if this one must be suppressed too.
    pub fn allow(&mut self, now_ns: u64) -> Option<u32> {
        let expired = match self.window_start {
            None => true,
            Some(start) => now_ns.saturating_sub(start) >= self.interval_ns,
        };
        if expired {
            self.window_start = Some(now_ns);
            self.printed = 0;
        }
        if self.printed < self.burst {
            self.printed += 1;
            let suppressed = self.suppressed;
            self.suppressed = 0;
            Some(suppressed)
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn burst_then_silence_then_a_count_of_what_was_left_out() {
        let mut rl = RateLimit::new(5 * SEC, 3);
        assert_eq!(rl.allow(0), Some(0));
        assert_eq!(rl.allow(1), Some(0));
        assert_eq!(rl.allow(2), Some(0));
        for t in 3..1000 {
            assert_eq!(rl.allow(t), None);
        }
        // A new interval: the first message says how many were left out.
        assert_eq!(rl.allow(5 * SEC), Some(997));
        assert_eq!(rl.allow(5 * SEC + 1), Some(0));
    }

    #[test]
    fn a_flood_prints_at_most_burst_per_interval() {
        let mut rl = RateLimit::new(SEC, 10);
        let printed = (0..100 * SEC)
            .step_by(1_000_000)
            .filter(|&t| rl.allow(t).is_some())
            .count();
        assert_eq!(printed, 100 * 10);
    }

    #[test]
    fn a_clock_going_backwards_does_not_open_a_new_window() {
        let mut rl = RateLimit::new(SEC, 1);
        assert_eq!(rl.allow(10 * SEC), Some(0));
        assert_eq!(rl.allow(3 * SEC), None);
    }
}
