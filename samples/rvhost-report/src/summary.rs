//! Grouping runs into the report's cases, medians and spreads over
//! repetitions (whole runs and their steady-state windows, request/response
//! latencies), and ratios between groups.

use crate::run::{backend_key, direction_key, mode_key, Latency, OrderKey, Run, SteadyState};
use crate::schema::REQUEST_RESPONSE;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// Median and spread of one quantity over a group's repetitions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Stats {
    /// `None` for no values. The median of an even count is the mean of
    /// the two middle values.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }
}

/// The median of `values` (0 for none).
pub fn median(values: &[f64]) -> f64 {
    Stats::of(values).map_or(0.0, |s| s.median)
}

/// `num / den`, or `None` when there is no meaningful ratio.
pub fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0 && num.is_finite() && den.is_finite()).then(|| num / den)
}

/// Issue 14's target at saturation, for exits and for interrupts: at most
/// one per 64 packets.
pub const SATURATION_TARGET_PER_PACKET: f64 = 1.0 / 64.0;

/// Whether a median figure per packet meets [`SATURATION_TARGET_PER_PACKET`].
pub fn meets_saturation_target(per_packet: f64) -> bool {
    per_packet <= SATURATION_TARGET_PER_PACKET
}

/// The steady-state windows of a configuration's repetitions (of those
/// that carry one), summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct Steady {
    pub pps: Stats,
    pub device_cpu_ns_per_packet: Stats,
    pub vcpu_cpu_ns_per_packet: Stats,
    pub exits_per_packet: f64,
    pub interrupts_per_packet: f64,
    pub kicks_per_packet: f64,
}

impl Steady {
    /// `None` when no run carries a window.
    pub fn of(runs: &[&Run]) -> Option<Self> {
        let windows: Vec<&SteadyState> = runs
            .iter()
            .filter_map(|r| r.steady_state.as_ref())
            .collect();
        let pick = |f: fn(&SteadyState) -> f64| windows.iter().map(|w| f(w)).collect::<Vec<_>>();
        Some(Self {
            pps: Stats::of(&pick(|w| w.pps))?,
            device_cpu_ns_per_packet: Stats::of(&pick(|w| w.device_cpu_ns_per_packet))?,
            vcpu_cpu_ns_per_packet: Stats::of(&pick(|w| w.vcpu_cpu_ns_per_packet))?,
            exits_per_packet: median(&pick(|w| w.exits_per_packet)),
            interrupts_per_packet: median(&pick(|w| w.interrupts_per_packet)),
            kicks_per_packet: median(&pick(|w| w.kicks_per_packet)),
        })
    }
}

/// One row of a table: the repetitions of one configuration, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub pps: Stats,
    pub exits_per_packet: f64,
    pub interrupts_per_packet: f64,
    pub kicks_per_packet: f64,
    /// Median exits per packet by reason, for every reason but "total"
    /// (a reason a repetition lacks counts 0 there).
    pub reasons: BTreeMap<String, f64>,
    /// The steady-state windows, where runs carry them.
    pub steady: Option<Steady>,
}

impl Group {
    pub fn of(runs: &[&Run]) -> Option<Self> {
        let pick = |f: fn(&Run) -> f64| runs.iter().map(|r| f(r)).collect::<Vec<_>>();
        let pps = Stats::of(&pick(|r| r.pps))?;
        let names: BTreeSet<&str> = runs
            .iter()
            .flat_map(|r| r.exits.keys().map(String::as_str))
            .filter(|k| *k != "total")
            .collect();
        let reasons = names
            .into_iter()
            .map(|name| {
                let per_packet: Vec<f64> = runs
                    .iter()
                    .map(|r| r.exits.get(name).copied().unwrap_or(0.0) / r.packets as f64)
                    .collect();
                (name.to_string(), median(&per_packet))
            })
            .collect();
        Some(Self {
            pps,
            exits_per_packet: median(&pick(|r| r.exits_per_packet)),
            interrupts_per_packet: median(&pick(|r| r.interrupts_per_packet)),
            kicks_per_packet: median(&pick(|r| r.kicks_per_packet)),
            reasons,
            steady: Steady::of(runs),
        })
    }
}

/// A (direction, size) pair, ordered tx before rx, then by size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub direction: String,
    pub size: u64,
}

impl Ord for Shape {
    fn cmp(&self, other: &Self) -> Ordering {
        direction_key(&self.direction)
            .cmp(&direction_key(&other.direction))
            .then(self.size.cmp(&other.size))
    }
}

impl PartialOrd for Shape {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Shape {
    fn of(run: &Run) -> Self {
        Self {
            direction: run.direction.clone(),
            size: run.size,
        }
    }

    pub fn label(&self) -> String {
        format!("{} {}B", self.direction, self.size)
    }
}

/// A virtio-net case: one (direction, size, mode), a row per backend.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtioCase {
    pub shape: Shape,
    pub mode: String,
    /// In backend order (rvhost, vhost, user).
    pub backends: Vec<(String, Group)>,
}

impl VirtioCase {
    pub fn label(&self) -> String {
        format!("{} {}", self.shape.label(), self.mode)
    }

    pub fn backend(&self, name: &str) -> Option<&Group> {
        self.backends
            .iter()
            .find(|(b, _)| b == name)
            .map(|(_, g)| g)
    }

    /// `value` of backend `num` over `value` of backend `den`.
    fn backend_ratio(&self, num: &str, den: &str, value: fn(&Group) -> Option<f64>) -> Option<f64> {
        ratio(value(self.backend(num)?)?, value(self.backend(den)?)?)
    }

    /// Median pps of backend `num` over median pps of backend `den`.
    pub fn pps_ratio(&self, num: &str, den: &str) -> Option<f64> {
        self.backend_ratio(num, den, |g| Some(g.pps.median))
    }

    /// The same over the steady-state windows.
    pub fn steady_pps_ratio(&self, num: &str, den: &str) -> Option<f64> {
        self.backend_ratio(num, den, |g| Some(g.steady.as_ref()?.pps.median))
    }

    /// Median device CPU time per packet in the steady state, backend
    /// `num`'s over backend `den`'s.
    pub fn steady_cpu_ratio(&self, num: &str, den: &str) -> Option<f64> {
        self.backend_ratio(num, den, |g| {
            Some(g.steady.as_ref()?.device_cpu_ns_per_packet.median)
        })
    }
}

/// Whether any of a table's rows has steady-state figures.
pub fn has_steady_state(rows: &[(String, Group)]) -> bool {
    rows.iter().any(|(_, g)| g.steady.is_some())
}

/// An e1000 table: one (direction, size), a row per mode.
#[derive(Debug, Clone, PartialEq)]
pub struct E1000Table {
    pub shape: Shape,
    /// In mode order (baseline first).
    pub modes: Vec<(String, Group)>,
    /// virtio-net with rvhost, event-idx, same direction and size.
    pub contrast: Option<Group>,
    /// Exit reasons (but "total") present in any row, contrast included.
    pub reasons: Vec<String>,
}

impl E1000Table {
    pub fn mode(&self, name: &str) -> Option<&Group> {
        self.modes.iter().find(|(m, _)| m == name).map(|(_, g)| g)
    }

    /// A row's median pps over the baseline mode's.
    pub fn ratio_vs_baseline(&self, row: &Group) -> Option<f64> {
        ratio(row.pps.median, self.mode("baseline")?.pps.median)
    }
}

/// Groups `runs` by `key`, dropping runs `key` maps to `None`.
fn group_by<K: Ord>(runs: &[Run], key: impl Fn(&Run) -> Option<K>) -> BTreeMap<K, Vec<&Run>> {
    let mut map: BTreeMap<K, Vec<&Run>> = BTreeMap::new();
    for run in runs {
        if let Some(k) = key(run) {
            map.entry(k).or_default().push(run);
        }
    }
    map
}

/// The virtio-net streaming cases (TX, RX), ordered by direction, size,
/// mode; request/response runs are [`latency_cases`].
pub fn virtio_cases(runs: &[Run]) -> Vec<VirtioCase> {
    let cases = group_by(runs, |r| {
        (r.device == "virtio-net" && r.direction != REQUEST_RESPONSE)
            .then(|| (Shape::of(r), mode_key(&r.mode)))
    });
    cases
        .into_iter()
        .map(|((shape, mode), runs)| {
            let backends = by_key(&runs, |r| backend_key(&r.backend));
            VirtioCase {
                shape,
                mode: mode.1,
                backends,
            }
        })
        .collect()
}

/// The e1000 tables, ordered by direction, size.
pub fn e1000_tables(runs: &[Run]) -> Vec<E1000Table> {
    let tables = group_by(runs, |r| (r.device == "e1000").then(|| Shape::of(r)));
    let contrasts = group_by(runs, |r| {
        (r.device == "virtio-net" && r.backend == "rvhost" && r.mode == "event-idx")
            .then(|| Shape::of(r))
    });
    tables
        .into_iter()
        .map(|(shape, runs)| {
            let modes = by_key(&runs, |r| mode_key(&r.mode));
            let contrast = contrasts.get(&shape).and_then(|c| Group::of(c));
            let reasons: BTreeSet<String> = modes
                .iter()
                .map(|(_, g)| g)
                .chain(contrast.as_ref())
                .flat_map(|g| g.reasons.keys().cloned())
                .collect();
            E1000Table {
                shape,
                modes,
                contrast,
                reasons: reasons.into_iter().collect(),
            }
        })
        .collect()
}

/// The round trips of one backend's repetitions of a request/response
/// case, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyGroup {
    pub p50_us: Stats,
    pub p99_us: Stats,
    pub per_second: Stats,
    /// Medians over the steady-state windows, per round trip, where runs
    /// carry them.
    pub exits_per_round_trip: Option<f64>,
    pub interrupts_per_round_trip: Option<f64>,
}

impl LatencyGroup {
    /// `None` when no run carries a latency.
    pub fn of(runs: &[&Run]) -> Option<Self> {
        let timed: Vec<&Latency> = runs.iter().filter_map(|r| r.latency.as_ref()).collect();
        let pick = |f: fn(&Latency) -> f64| timed.iter().map(|l| f(l)).collect::<Vec<_>>();
        let windows: Vec<&SteadyState> = runs
            .iter()
            .filter_map(|r| r.steady_state.as_ref())
            .collect();
        let window_median = |f: fn(&SteadyState) -> f64| {
            let values: Vec<f64> = windows.iter().map(|w| f(w)).collect();
            Stats::of(&values).map(|s| s.median)
        };
        Some(Self {
            p50_us: Stats::of(&pick(|l| l.p50_us))?,
            p99_us: Stats::of(&pick(|l| l.p99_us))?,
            per_second: Stats::of(&pick(|l| l.per_second))?,
            exits_per_round_trip: window_median(|w| w.exits_per_packet),
            interrupts_per_round_trip: window_median(|w| w.interrupts_per_packet),
        })
    }
}

/// A virtio-net request/response case: one (size, requests in flight,
/// mode), a row per backend.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyCase {
    pub size: u64,
    pub depth: u64,
    pub mode: String,
    /// In backend order (rvhost, vhost, user).
    pub backends: Vec<(String, LatencyGroup)>,
}

impl LatencyCase {
    pub fn label(&self) -> String {
        format!(
            "{} {}B {}, {} in flight",
            REQUEST_RESPONSE, self.size, self.mode, self.depth
        )
    }

    pub fn backend(&self, name: &str) -> Option<&LatencyGroup> {
        self.backends
            .iter()
            .find(|(b, _)| b == name)
            .map(|(_, g)| g)
    }

    /// Median p50 of backend `num` over median p50 of backend `den`
    /// (below 1: `num` answers sooner).
    pub fn p50_ratio(&self, num: &str, den: &str) -> Option<f64> {
        ratio(
            self.backend(num)?.p50_us.median,
            self.backend(den)?.p50_us.median,
        )
    }
}

/// The virtio-net request/response cases that carry latencies, ordered by
/// size, requests in flight, mode.
pub fn latency_cases(runs: &[Run]) -> Vec<LatencyCase> {
    let cases = group_by(runs, |r| {
        let depth = r.latency.as_ref()?.depth;
        (r.device == "virtio-net" && r.direction == REQUEST_RESPONSE)
            .then(|| (r.size, depth, mode_key(&r.mode)))
    });
    cases
        .into_iter()
        .map(|((size, depth, mode), runs)| {
            let mut by_backend: BTreeMap<OrderKey, Vec<&Run>> = BTreeMap::new();
            for run in runs {
                by_backend
                    .entry(backend_key(&run.backend))
                    .or_default()
                    .push(run);
            }
            let backends = by_backend
                .into_iter()
                .filter_map(|((_, name), rs)| LatencyGroup::of(&rs).map(|g| (name, g)))
                .collect();
            LatencyCase {
                size,
                depth,
                mode: mode.1,
                backends,
            }
        })
        .collect()
}

/// Splits `runs` by the name `key` picks, in key order, summarising each.
fn by_key(runs: &[&Run], key: fn(&Run) -> OrderKey) -> Vec<(String, Group)> {
    let mut map: BTreeMap<OrderKey, Vec<&Run>> = BTreeMap::new();
    for run in runs {
        map.entry(key(run)).or_default().push(run);
    }
    map.into_iter()
        .filter_map(|((_, name), rs)| Group::of(&rs).map(|g| (name, g)))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A run with the given identity and numbers; `exits` is per run.
    pub(crate) fn run(
        device: &str,
        backend: &str,
        mode: &str,
        direction: &str,
        size: u64,
        pps: f64,
        rep: u64,
    ) -> Run {
        let packets = 1000;
        Run {
            device: device.into(),
            backend: backend.into(),
            mode: mode.into(),
            direction: direction.into(),
            size,
            packets,
            pps,
            exits: [("total".to_string(), 100.0), ("mmio".to_string(), 40.0)].into(),
            exits_per_packet: 0.1,
            interrupts_per_packet: 0.01,
            kicks_per_packet: 0.02,
            perf: [("kvm:kvm_exit".to_string(), 100.0)].into(),
            repetition: rep,
            steady_state: None,
            coalesce: None,
            latency: None,
        }
    }

    /// A virtio-net request/response run of `backend` whose timed round
    /// trips had `p50_us` and three times that at the 99th percentile, with
    /// a steady-state window at `exits` per round trip.
    pub(crate) fn rr_run(backend: &str, p50_us: f64, exits: f64, rep: u64) -> Run {
        let mut window = steady(1e6 / p50_us, 0.0);
        window.exits_per_packet = exits;
        Run {
            latency: Some(Latency {
                transactions: 900,
                depth: 1,
                p50_us,
                p99_us: 3.0 * p50_us,
                mean_us: 1.2 * p50_us,
                per_second: 1e6 / p50_us,
            }),
            steady_state: Some(window),
            ..run(
                "virtio-net",
                backend,
                "event-idx",
                REQUEST_RESPONSE,
                64,
                100.0,
                rep,
            )
        }
    }

    /// A steady-state window of 1000 packets at `pps`, with `device_ns` of
    /// device CPU and twice that of vCPU per packet.
    pub(crate) fn steady(pps: f64, device_ns: f64) -> SteadyState {
        let packets = 1000;
        SteadyState {
            packets,
            seconds: packets as f64 / pps,
            pps,
            exits: [("total".to_string(), 10.0)].into(),
            exits_per_packet: 0.01,
            interrupts_per_packet: 0.005,
            guest_interrupts_per_packet: 0.005,
            kicks_per_packet: 0.002,
            device_cpu_ns_per_packet: device_ns,
            vcpu_cpu_ns_per_packet: 2.0 * device_ns,
        }
    }

    /// `run(...)` with a steady-state window.
    pub(crate) fn steady_run(
        device: &str,
        backend: &str,
        mode: &str,
        pps: f64,
        device_ns: f64,
        rep: u64,
    ) -> Run {
        Run {
            steady_state: Some(steady(pps, device_ns)),
            ..run(device, backend, mode, "tx", 64, pps * 0.9, rep)
        }
    }

    #[test]
    fn median_and_spread() {
        assert_eq!(Stats::of(&[]), None);
        assert_eq!(
            Stats::of(&[3.0, 1.0, 2.0]),
            Some(Stats {
                median: 2.0,
                min: 1.0,
                max: 3.0,
                n: 3
            })
        );
        assert_eq!(
            Stats::of(&[10.0, 4.0, 1.0, 2.0]),
            Some(Stats {
                median: 3.0,
                min: 1.0,
                max: 10.0,
                n: 4
            })
        );
        assert_eq!(Stats::of(&[7.0]).map(|s| (s.median, s.n)), Some((7.0, 1)));
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(ratio(0.0, 4.0), Some(0.0));
    }

    #[test]
    fn groups_virtio_repetitions_and_computes_ratios() {
        let runs = vec![
            run("virtio-net", "vhost", "event-idx", "tx", 64, 1000.0, 1),
            run("virtio-net", "rvhost", "event-idx", "tx", 64, 1800.0, 1),
            run("virtio-net", "rvhost", "event-idx", "tx", 64, 2200.0, 2),
            run("virtio-net", "vhost", "event-idx", "tx", 64, 1000.0, 2),
            run("virtio-net", "user", "event-idx", "tx", 64, 500.0, 1),
            run("virtio-net", "rvhost", "no-event-idx", "rx", 64, 900.0, 1),
            run("e1000", "user", "baseline", "tx", 64, 100.0, 1),
        ];
        let cases = virtio_cases(&runs);
        let labels: Vec<String> = cases.iter().map(VirtioCase::label).collect();
        assert_eq!(labels, vec!["tx 64B event-idx", "rx 64B no-event-idx"]);
        let tx = &cases[0];
        let names: Vec<&str> = tx.backends.iter().map(|(b, _)| b.as_str()).collect();
        assert_eq!(names, vec!["rvhost", "vhost", "user"]);
        let rv = tx.backend("rvhost").unwrap();
        assert_eq!(
            (rv.pps.median, rv.pps.min, rv.pps.max, rv.pps.n),
            (2000.0, 1800.0, 2200.0, 2)
        );
        assert_eq!(rv.reasons.get("mmio"), Some(&0.04));
        assert!(!rv.reasons.contains_key("total"));
        assert_eq!(tx.pps_ratio("rvhost", "vhost"), Some(2.0));
        assert_eq!(tx.pps_ratio("rvhost", "user"), Some(4.0));
        assert_eq!(cases[1].pps_ratio("rvhost", "vhost"), None);
    }

    #[test]
    fn builds_e1000_tables_with_baseline_ratio_and_contrast() {
        let runs = vec![
            run("e1000", "user", "mitigation", "tx", 64, 300.0, 1),
            run("e1000", "user", "baseline", "tx", 64, 100.0, 1),
            run("e1000", "user", "baseline", "tx", 64, 140.0, 2),
            run("e1000", "user", "coalesced", "rx", 64, 50.0, 1),
            run("virtio-net", "rvhost", "event-idx", "tx", 64, 2400.0, 1),
            run("virtio-net", "rvhost", "no-event-idx", "rx", 64, 900.0, 1),
        ];
        let tables = e1000_tables(&runs);
        assert_eq!(tables.len(), 2);
        let tx = &tables[0];
        assert_eq!(tx.shape.label(), "tx 64B");
        let modes: Vec<&str> = tx.modes.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(modes, vec!["baseline", "mitigation"]);
        assert_eq!(tx.reasons, vec!["mmio"]);
        let mitigation = tx.mode("mitigation").unwrap();
        assert_eq!(tx.ratio_vs_baseline(mitigation), Some(2.5));
        let contrast = tx.contrast.as_ref().unwrap();
        assert_eq!(tx.ratio_vs_baseline(contrast), Some(20.0));
        // rx has no baseline and no event-idx rvhost run.
        let rx = &tables[1];
        assert_eq!(rx.ratio_vs_baseline(&rx.modes[0].1), None);
        assert!(rx.contrast.is_none());
    }

    #[test]
    fn summarises_steady_state_windows_and_their_ratios() {
        let mut runs = vec![
            steady_run("virtio-net", "rvhost", "event-idx", 3000.0, 400.0, 1),
            steady_run("virtio-net", "rvhost", "event-idx", 2000.0, 600.0, 2),
            steady_run("virtio-net", "vhost", "event-idx", 1250.0, 1000.0, 1),
            steady_run("virtio-net", "user", "event-idx", 500.0, 2000.0, 1),
            // A repetition without a window is left out of the steady figures.
            run("virtio-net", "user", "event-idx", "tx", 64, 100.0, 2),
            run("virtio-net", "rvhost", "no-event-idx", "tx", 64, 900.0, 1),
        ];
        runs[1].steady_state.as_mut().unwrap().exits_per_packet = 0.03;
        let cases = virtio_cases(&runs);
        let tx = &cases[0];
        let rv = tx.backend("rvhost").unwrap().steady.as_ref().unwrap();
        assert_eq!(
            rv.pps,
            Stats {
                median: 2500.0,
                min: 2000.0,
                max: 3000.0,
                n: 2
            }
        );
        assert_eq!(rv.device_cpu_ns_per_packet.median, 500.0);
        assert_eq!(rv.vcpu_cpu_ns_per_packet.max, 1200.0);
        assert_eq!(rv.exits_per_packet, 0.02);
        assert_eq!(
            (rv.interrupts_per_packet, rv.kicks_per_packet),
            (0.005, 0.002)
        );
        let user = tx.backend("user").unwrap();
        assert_eq!(user.pps.n, 2);
        assert_eq!(user.steady.as_ref().unwrap().pps.n, 1);
        assert_eq!(tx.steady_cpu_ratio("rvhost", "vhost"), Some(0.5));
        assert_eq!(tx.steady_cpu_ratio("rvhost", "user"), Some(0.25));
        assert_eq!(tx.steady_pps_ratio("rvhost", "vhost"), Some(2.0));
        assert_eq!(tx.steady_pps_ratio("rvhost", "user"), Some(5.0));
        assert!(has_steady_state(&tx.backends));
        // No window anywhere: no steady figures, no ratios.
        let plain = &cases[1];
        assert!(plain.backends[0].1.steady.is_none());
        assert!(!has_steady_state(&plain.backends));
        assert_eq!(plain.steady_cpu_ratio("rvhost", "vhost"), None);
    }

    #[test]
    fn request_response_runs_are_latency_cases_only() {
        let runs = vec![
            rr_run("user", 8000.0, 3.5, 1),
            rr_run("rvhost", 4000.0, 3.0, 1),
            rr_run("rvhost", 6000.0, 3.4, 2),
            rr_run("rvhost", 5000.0, 3.2, 3),
            rr_run("vhost", 2500.0, 3.3, 1),
            run("virtio-net", "rvhost", "event-idx", "tx", 64, 2000.0, 1),
        ];
        let streams = virtio_cases(&runs);
        let labels: Vec<String> = streams.iter().map(VirtioCase::label).collect();
        assert_eq!(labels, vec!["tx 64B event-idx"]);
        let cases = latency_cases(&runs);
        assert_eq!(cases.len(), 1);
        let rr = &cases[0];
        assert_eq!(rr.label(), "rr 64B event-idx, 1 in flight");
        let names: Vec<&str> = rr.backends.iter().map(|(b, _)| b.as_str()).collect();
        assert_eq!(names, vec!["rvhost", "vhost", "user"]);
        let rv = rr.backend("rvhost").unwrap();
        assert_eq!(
            rv.p50_us,
            Stats {
                median: 5000.0,
                min: 4000.0,
                max: 6000.0,
                n: 3
            }
        );
        assert_eq!(rv.p99_us.median, 15000.0);
        assert_eq!(rv.per_second.max, 250.0);
        assert_eq!(rv.exits_per_round_trip, Some(3.2));
        assert_eq!(rr.p50_ratio("rvhost", "vhost"), Some(2.0));
        assert_eq!(rr.p50_ratio("rvhost", "user"), Some(0.625));
        assert_eq!(rr.p50_ratio("rvhost", "qemu"), None);
    }

    #[test]
    fn request_response_cases_split_by_depth_and_need_latencies() {
        let mut untimed = rr_run("vhost", 2500.0, 3.3, 1);
        untimed.latency = None;
        let mut deeper = rr_run("rvhost", 9000.0, 1.0, 1);
        deeper.latency.as_mut().unwrap().depth = 8;
        let cases = latency_cases(&[deeper, rr_run("rvhost", 4000.0, 3.0, 1), untimed]);
        let labels: Vec<String> = cases.iter().map(LatencyCase::label).collect();
        assert_eq!(
            labels,
            vec![
                "rr 64B event-idx, 1 in flight",
                "rr 64B event-idx, 8 in flight"
            ]
        );
        let names: Vec<&str> = cases[0].backends.iter().map(|(b, _)| b.as_str()).collect();
        assert_eq!(names, vec!["rvhost"]);
        assert_eq!(cases[0].p50_ratio("rvhost", "vhost"), None);
        assert_eq!(cases[1].backend("rvhost").unwrap().p50_us.median, 9000.0);
    }

    #[test]
    fn saturation_target_is_one_per_64_packets() {
        assert!(meets_saturation_target(0.0));
        assert!(meets_saturation_target(1.0 / 64.0));
        assert!(!meets_saturation_target(0.016));
    }
}
