//! The perf cross-check: KVM's own exit counter (`exits.total`, as rvmm read
//! it) against the `kvm:kvm_exit` tracepoint count perf stat saw.

use crate::run::Run;
use std::collections::BTreeMap;
use std::fmt;

/// The perf event compared with `exits.total`.
pub const PERF_EXIT_EVENT: &str = "kvm:kvm_exit";
/// Largest relative difference still counted as agreement.
pub const TOLERANCE: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agreement {
    /// Within [`TOLERANCE`]; the relative difference (perf − KVM) / KVM.
    Agree(f64),
    /// Beyond [`TOLERANCE`]; the relative difference (infinite when KVM
    /// counted no exits but perf did).
    Disagree(f64),
    /// No perf count for the run.
    NotAvailable,
}

impl Agreement {
    /// Compares `kvm_total` with the perf counters of a run.
    pub fn check(kvm_total: f64, perf: &BTreeMap<String, f64>) -> Self {
        let Some(&perf_exits) = perf.get(PERF_EXIT_EVENT) else {
            return Self::NotAvailable;
        };
        let diff = perf_exits - kvm_total;
        let rel = if kvm_total > 0.0 {
            diff / kvm_total
        } else if diff == 0.0 {
            0.0
        } else {
            f64::INFINITY
        };
        // Compare absolute counts so that exactly 5% is not lost to rounding.
        if diff.abs() <= TOLERANCE * kvm_total {
            Self::Agree(rel)
        } else {
            Self::Disagree(rel)
        }
    }

    /// Whether `--strict-perf` fails on this.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::Agree(_))
    }

    /// The relative difference as a signed percentage, or "n/a".
    pub fn diff_text(&self) -> String {
        match self {
            Self::Agree(d) | Self::Disagree(d) if d.is_finite() => format!("{:+.1}%", d * 100.0),
            Self::Agree(_) | Self::Disagree(_) => "∞".to_string(),
            Self::NotAvailable => "n/a".to_string(),
        }
    }
}

impl fmt::Display for Agreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Agree(_) => "ok",
            Self::Disagree(_) => "DISAGREE",
            Self::NotAvailable => "n/a",
        })
    }
}

/// One run's cross-check.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfRow {
    pub label: String,
    pub kvm_exits: f64,
    pub perf_exits: Option<f64>,
    pub agreement: Agreement,
}

/// Cross-checks every run, in input order.
pub fn check_runs(runs: &[Run]) -> Vec<PerfRow> {
    runs.iter()
        .map(|r| PerfRow {
            label: r.label(),
            kvm_exits: r.kvm_exits(),
            perf_exits: r.perf.get(PERF_EXIT_EVENT).copied(),
            agreement: Agreement::check(r.kvm_exits(), &r.perf),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perf(exits: f64) -> BTreeMap<String, f64> {
        [(PERF_EXIT_EVENT.to_string(), exits)].into()
    }

    #[test]
    fn flags_beyond_five_percent() {
        assert!(matches!(
            Agreement::check(1000.0, &perf(1049.0)),
            Agreement::Agree(_)
        ));
        assert!(matches!(
            Agreement::check(1000.0, &perf(951.0)),
            Agreement::Agree(_)
        ));
        assert!(matches!(
            Agreement::check(1000.0, &perf(1051.0)),
            Agreement::Disagree(_)
        ));
        assert!(matches!(
            Agreement::check(1000.0, &perf(949.0)),
            Agreement::Disagree(_)
        ));
        assert!(matches!(
            Agreement::check(100.0, &perf(105.0)),
            Agreement::Agree(_)
        ));
        assert_eq!(Agreement::check(1000.0, &perf(1049.0)).diff_text(), "+4.9%");
        assert_eq!(Agreement::check(1000.0, &perf(949.0)).diff_text(), "-5.1%");
        assert_eq!(
            Agreement::check(1000.0, &perf(1051.0)).to_string(),
            "DISAGREE"
        );
    }

    #[test]
    fn zero_and_missing_counts() {
        assert_eq!(Agreement::check(0.0, &perf(0.0)), Agreement::Agree(0.0));
        let none = Agreement::check(0.0, &perf(3.0));
        assert!(none.is_failure());
        assert_eq!(none.diff_text(), "∞");
        let na = Agreement::check(100.0, &BTreeMap::new());
        assert_eq!(na, Agreement::NotAvailable);
        assert!(na.is_failure());
        assert_eq!(
            (na.to_string(), na.diff_text()),
            ("n/a".into(), "n/a".into())
        );
        let other: BTreeMap<String, f64> = [("kvm:kvm_pio".to_string(), 3.0)].into();
        assert_eq!(Agreement::check(100.0, &other), Agreement::NotAvailable);
    }

    #[test]
    fn checks_runs_in_order() {
        use crate::summary::tests::run;
        let mut a = run("virtio-net", "rvhost", "event-idx", "tx", 64, 1000.0, 1);
        a.perf.insert(PERF_EXIT_EVENT.into(), 120.0);
        let mut b = run("e1000", "user", "baseline", "rx", 1500, 10.0, 2);
        b.perf.clear();
        let rows = check_runs(&[a, b]);
        assert_eq!(rows[0].label, "virtio-net/rvhost/event-idx tx 64B #1");
        assert_eq!(rows[0].agreement.to_string(), "DISAGREE");
        assert_eq!(rows[1].perf_exits, None);
        assert_eq!(rows[1].agreement, Agreement::NotAvailable);
    }
}
