//! Round trips summarised: the median and the 99th percentile (nearest
//! rank), the mean, and how many round trips a second the window held.

use serde_json::{json, Value};
use std::time::Duration;

/// What a request/response run measured over its timed round trips.
#[derive(Clone, Debug, PartialEq)]
pub struct Latency {
    /// Round trips timed (the warm-up ones are not).
    pub transactions: u32,
    /// Requests the far side kept in flight.
    pub depth: u32,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
    /// Timed round trips over the time from the first timed request's
    /// sending to the last answer.
    pub per_second: f64,
}

/// The smallest sample with at least `percent` % of `sorted` at or below it.
fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

impl Latency {
    /// The summary of `round_trips` made `depth` at a time over `window`;
    /// `None` for no round trips.
    pub fn of(round_trips: &[Duration], depth: u32, window: Duration) -> Option<Self> {
        if round_trips.is_empty() {
            return None;
        }
        let mut sorted = round_trips.to_vec();
        sorted.sort_unstable();
        let total: Duration = sorted.iter().sum();
        let transactions = u32::try_from(sorted.len()).ok()?;
        Some(Self {
            transactions,
            depth,
            p50_us: micros(percentile(&sorted, 50)),
            p99_us: micros(percentile(&sorted, 99)),
            mean_us: micros(total) / f64::from(transactions),
            per_second: f64::from(transactions) / window.as_secs_f64().max(f64::MIN_POSITIVE),
        })
    }

    /// The run's `latency` object in its JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "transactions": self.transactions,
            "depth": self.depth,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "mean_us": self.mean_us,
            "per_second": self.per_second,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<Duration> = (1..=200).map(us).collect();
        assert_eq!(percentile(&sorted, 50), us(100));
        assert_eq!(percentile(&sorted, 99), us(198));
        assert_eq!(percentile(&sorted, 100), us(200));
        assert_eq!(percentile(&sorted[..1], 50), us(1));
        assert_eq!(percentile(&sorted[..1], 99), us(1));
        // 3 samples: the median is the middle one, p99 the largest.
        assert_eq!(percentile(&[us(1), us(2), us(30)], 50), us(2));
        assert_eq!(percentile(&[us(1), us(2), us(30)], 99), us(30));
    }

    #[test]
    fn summarises_unsorted_round_trips() {
        // 99 round trips of 100 µs and one of 10 ms, in any order.
        let mut trips = vec![us(100); 99];
        trips.insert(17, us(10_000));
        let l = Latency::of(&trips, 1, Duration::from_millis(20)).unwrap();
        assert_eq!((l.transactions, l.depth), (100, 1));
        assert_eq!((l.p50_us, l.p99_us), (100.0, 100.0));
        assert!((l.mean_us - 199.0).abs() < 1e-9, "{}", l.mean_us);
        assert!((l.per_second - 5000.0).abs() < 1e-6, "{}", l.per_second);
        trips.push(us(20_000));
        let l = Latency::of(&trips, 1, Duration::from_millis(40)).unwrap();
        assert_eq!(l.p99_us, 10_000.0);
    }

    #[test]
    fn no_round_trips_no_latency() {
        assert_eq!(Latency::of(&[], 1, Duration::from_secs(1)), None);
    }

    #[test]
    fn json_carries_every_field() {
        let l = Latency::of(&[us(50), us(150)], 2, Duration::from_millis(1)).unwrap();
        let j = l.to_json();
        assert_eq!(j["transactions"], 2);
        assert_eq!(j["depth"], 2);
        assert_eq!(j["p50_us"], 50.0);
        assert_eq!(j["p99_us"], 150.0);
        assert_eq!(j["mean_us"], 100.0);
        assert_eq!(j["per_second"], 2000.0);
        assert_eq!(j.as_object().unwrap().len(), 6);
    }
}
