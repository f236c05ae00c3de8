//! Comparing the two devices' answers, the allow-list of intended
//! differences, and the figures printed at the end.

use crate::op::{Ioctl, Op};
use nettest::vhost_ioctl::Outcome;
use nettest::VringStats;
use std::collections::BTreeMap;
use std::time::Duration;

/// Findings printed as they happen (a systematic divergence would otherwise
/// print one line per case); the summary groups them all.
const SHOWN_FINDINGS: u64 = 50;

/// Known, intended differences. Everything not listed here that differs is
/// a finding.
fn allowed(op: &Op) -> Option<&'static str> {
    match op {
        // rvhost's own statistics ioctl (`_IOWR('r', 1, ...)`): upstream
        // does not know it and answers as for any unknown vring request
        // (ENOTTY, or EPERM / EFAULT / ENOBUFS from the checks made first).
        Op::Ioctl(Ioctl::GetVringStats { .. }) => {
            Some("RVHOST_GET_VRING_STATS is rvhost's own ioctl")
        }
        Op::Ioctl(Ioctl::SetVringCoalesce { .. }) => {
            Some("RVHOST_SET_VRING_COALESCE is rvhost's own ioctl")
        }
        _ => None,
    }
}

pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        0 => "0",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::E2BIG => "E2BIG",
        libc::ERANGE => "ERANGE",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENXIO => "ENXIO",
        libc::ENODEV => "ENODEV",
        _ => return format!("errno {errno}"),
    };
    name.into()
}

pub fn describe(o: &Outcome) -> String {
    match (o.ret, o.value) {
        (r, _) if r < 0 => errno_name(o.errno),
        (0, Some(v)) => format!("0 (value {v:#x})"),
        (r, _) => r.to_string(),
    }
}

/// Where an operation ran.
#[derive(Clone, Copy, Debug)]
pub struct At {
    pub seed: u64,
    pub case: u64,
    pub op: usize,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} case {} op {} (replay: --replay {})",
            self.seed,
            self.case,
            self.op,
            self.seed.wrapping_add(self.case)
        )
    }
}

#[derive(Default)]
struct PerOp {
    compared: u64,
    agreed: u64,
    /// The reference device's answers (errno names), to show what the
    /// generator reached.
    answers: BTreeMap<String, u64>,
}

#[derive(Default)]
pub struct Tally {
    pub cases: u64,
    pub ops: u64,
    pub compared: u64,
    pub agreed: u64,
    allowed: BTreeMap<&'static str, u64>,
    /// By operation, the two answers and whether it was the first of its
    /// case (later ones may only follow from the devices' states having
    /// parted): how often, and where first.
    divergences: BTreeMap<(String, String, String, bool), (u64, String)>,
    /// The last case that diverged, and how many cases did.
    diverged_case: Option<(u64, u64)>,
    diverged_cases: u64,
    /// Findings: all counted, the first `SHOWN_FINDINGS` printed.
    pub findings: u64,
    per_op: BTreeMap<&'static str, PerOp>,
    used_reads: u64,
    used_agreed: u64,
    bases: u64,
    bases_agreed: u64,
    /// Slowest device call per side: how long, and which.
    pub slowest: BTreeMap<&'static str, (Duration, String)>,
    /// rvhost's counters summed over cases, per queue.
    stats: [VringStats; 2],
    stats_seen: bool,
}

impl Tally {
    pub fn finding(&mut self, text: String) {
        self.findings += 1;
        if self.findings <= SHOWN_FINDINGS {
            println!("rvhost-fuzz: FINDING: {text}");
        } else if self.findings == SHOWN_FINDINGS + 1 {
            println!("rvhost-fuzz: further findings are counted, not printed");
        }
    }

    pub fn timing(&mut self, side: &'static str, took: Duration, what: impl FnOnce() -> String) {
        let entry = self
            .slowest
            .entry(side)
            .or_insert((Duration::ZERO, String::new()));
        if took > entry.0 {
            *entry = (took, what());
        }
    }

    /// Compares the answers of rvhost (`ours`) and upstream (`theirs`) to
    /// `op`; `both` are the feature bits both offer. Returns whether they
    /// agreed.
    pub fn compare(
        &mut self,
        at: At,
        op: &Op,
        ours: &Outcome,
        theirs: &Outcome,
        both: u64,
        verbose: bool,
    ) -> bool {
        let (v_ours, v_theirs) = match op {
            Op::Ioctl(Ioctl::GetFeatures) => {
                (ours.value.map(|v| v & both), theirs.value.map(|v| v & both))
            }
            Op::Ioctl(Ioctl::GetBackendFeatures | Ioctl::GetBusyloop { .. }) => {
                (ours.value, theirs.value)
            }
            // Where the device stopped depends on how far its worker got with
            // the data path: compared, counted apart, not a finding.
            Op::Ioctl(Ioctl::GetVringBase { .. }) => {
                if ours.ret == 0 && theirs.ret == 0 {
                    self.bases += 1;
                    if ours.value == theirs.value {
                        self.bases_agreed += 1;
                    } else if verbose {
                        println!(
                            "  GET_VRING_BASE values differ at {at}: {} vs {}",
                            describe(ours),
                            describe(theirs)
                        );
                    }
                }
                (None, None)
            }
            _ => (None, None),
        };
        let same = ours.ret == theirs.ret && ours.errno == theirs.errno && v_ours == v_theirs;
        self.compared += 1;
        let per = self.per_op.entry(op.name()).or_default();
        per.compared += 1;
        *per.answers.entry(errno_name(theirs.errno)).or_default() += 1;
        if same {
            self.agreed += 1;
            per.agreed += 1;
            return true;
        }
        if let Some(reason) = allowed(op) {
            *self.allowed.entry(reason).or_default() += 1;
            return true;
        }
        let (a, b) = (describe(ours), describe(theirs));
        let first = self.diverged_case != Some((at.seed, at.case));
        if first {
            self.diverged_case = Some((at.seed, at.case));
            self.diverged_cases += 1;
        }
        let key = (op.name().to_string(), a.clone(), b.clone(), first);
        let entry = self.divergences.entry(key).or_insert((0, at.to_string()));
        entry.0 += 1;
        self.finding(format!("{at}: {}: rvhost {a}, upstream {b}", op.describe()));
        false
    }

    /// Used indexes read from both sides' guest memory (informational: how
    /// far each worker got depends on timing and on rvhost's own limits).
    pub fn used(&mut self, ours: Option<u16>, theirs: Option<u16>) {
        self.used_reads += 1;
        if ours == theirs {
            self.used_agreed += 1;
        }
    }

    pub fn add_stats(&mut self, queue: usize, s: VringStats) {
        self.stats_seen = true;
        let t = &mut self.stats[queue];
        t.kicks += s.kicks;
        t.calls += s.calls;
        t.calls_suppressed += s.calls_suppressed;
        t.packets += s.packets;
        t.bytes += s.bytes;
        t.rounds += s.rounds;
        t.drops += s.drops;
        t.errors += s.errors;
    }

    pub fn print(&self, seed: u64, elapsed: Duration, per_op: bool) {
        let pct = |a: u64, b: u64| {
            if b == 0 {
                100.0
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        println!("rvhost-fuzz: seed {seed}");
        println!(
            "rvhost-fuzz: {} cases, {} operations, {} ioctls compared",
            self.cases, self.ops, self.compared
        );
        println!(
            "rvhost-fuzz: ioctl errno agreement {}/{} ({:.2} %)",
            self.agreed,
            self.compared,
            pct(self.agreed, self.compared)
        );
        for (reason, n) in &self.allowed {
            println!("rvhost-fuzz: allowed difference ({reason}): {n}");
        }
        let divergent: u64 = self.divergences.values().map(|(n, _)| n).sum();
        println!(
            "rvhost-fuzz: divergences: {divergent} in {} cases",
            self.diverged_cases
        );
        // The first divergence of each case first: the rest may follow from it.
        for later in [false, true] {
            for ((op, a, b, _), (n, at)) in self.divergences.iter().filter(|(k, _)| k.3 != later) {
                let what = if later {
                    "after an earlier divergence in its case"
                } else {
                    "first in its case"
                };
                println!("  {op}: rvhost {a}, upstream {b}: {n}, {what} (first at {at})");
            }
        }
        if per_op {
            println!("rvhost-fuzz: per ioctl (agreed/compared; upstream's answers):");
            for (name, p) in &self.per_op {
                let answers: Vec<String> =
                    p.answers.iter().map(|(e, n)| format!("{e} {n}")).collect();
                println!(
                    "  {name:<28} {:>6}/{:<6} {}",
                    p.agreed,
                    p.compared,
                    answers.join(", ")
                );
            }
        }
        if self.used_reads > 0 || self.bases > 0 {
            println!(
                "rvhost-fuzz: data path (informational): used index equal {}/{} reads, GET_VRING_BASE value equal {}/{}",
                self.used_agreed, self.used_reads, self.bases_agreed, self.bases
            );
        }
        if self.stats_seen {
            for (q, s) in self.stats.iter().enumerate() {
                println!(
                    "rvhost-fuzz: rvhost queue {q} ({}): kicks {}, packets {}, bytes {}, interrupts {}, suppressed {}, drops {}, ring errors {}",
                    if q == 0 { "RX" } else { "TX" },
                    s.kicks,
                    s.packets,
                    s.bytes,
                    s.calls,
                    s.calls_suppressed,
                    s.drops,
                    s.errors
                );
            }
        }
        for (side, (took, what)) in &self.slowest {
            println!(
                "rvhost-fuzz: slowest {side} call: {} ms ({what})",
                took.as_millis()
            );
        }
        println!("rvhost-fuzz: findings: {}", self.findings);
        println!("rvhost-fuzz: elapsed {:.1} s", elapsed.as_secs_f64());
    }
}
