//! Seeded, reproducible differential syscall fuzzer: random sequences of
//! vhost operations (ioctls with valid and hostile arguments, hostile ring
//! contents, kicks, traffic into the backends), each applied to
//! `/dev/rvhost-net` and upstream `/dev/vhost-net` alike, every ioctl's
//! answer compared.
//!
//! Case N of seed S is generated from seed S + N alone, and a marker
//! `rvhost-fuzz: seed S case N` goes to the kernel log before it runs, so a
//! kernel report can be tied to its case and `--replay S+N` runs that case
//! again. Exit status 0 only if every answer agreed (or differed as the
//! allow-list in `report.rs` says), no device call took longer than
//! `--hang-ms`, and nothing failed.

mod generate;
mod op;
mod report;
mod rng;
mod side;
mod watchdog;

use anyhow::{Context as _, Result};
use clap::{Parser, ValueEnum};
use nettest::vhost_ioctl::Outcome;
use op::{Ioctl, Op};
use report::{At, Tally};
use side::{Offers, Side};
use std::time::{Duration, Instant};
use watchdog::{Call, Kmsg, Watchdog};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Devices {
    /// rvhost and upstream, answers compared.
    Both,
    /// rvhost alone (no comparison: kernel reports and hangs only).
    Rvhost,
    /// Upstream alone.
    Upstream,
}

#[derive(Parser)]
#[command(
    about = "Differential fuzzer: random vhost sequences against rvhost and upstream vhost-net"
)]
struct Args {
    /// Seed of the run (case N uses seed + N); default: from the clock.
    #[arg(long)]
    seed: Option<u64>,
    /// Run the one case with this seed (as `--seed X --cases 1`).
    #[arg(long, conflicts_with_all = ["seed", "cases"])]
    replay: Option<u64>,
    /// Number of cases to run.
    #[arg(long)]
    cases: Option<u64>,
    /// Run for this long (default 60 s when --cases is not given).
    #[arg(long)]
    seconds: Option<u64>,
    /// Which devices to drive.
    #[arg(long, value_enum, default_value = "both")]
    devices: Devices,
    /// The device under test.
    #[arg(long, default_value = "/dev/rvhost-net")]
    device: String,
    /// The reference device (upstream vhost_net.ko).
    #[arg(long, default_value = "/dev/vhost-net")]
    reference: String,
    /// A device call taking longer than this is a finding.
    #[arg(long, default_value_t = 2000)]
    hang_ms: u64,
    /// Print every operation and both answers.
    #[arg(long)]
    verbose: bool,
    /// Print the per-ioctl table at the end.
    #[arg(long)]
    per_op: bool,
}

/// The features each device offers, from a freshly opened file.
fn offered(side: &mut Side) -> Result<u64> {
    side.open()?;
    let o = side.ioctl(
        &Op::Ioctl(Ioctl::GetFeatures),
        &Offers { both: 0, either: 0 },
    );
    side.close();
    anyhow::ensure!(
        o.ret == 0,
        "{}: VHOST_GET_FEATURES: {}",
        side.path,
        report::errno_name(o.errno)
    );
    Ok(o.value.unwrap_or(0))
}

struct Fuzzer {
    sides: Vec<Side>,
    offers: Offers,
    watchdog: Watchdog,
    tally: Tally,
    verbose: bool,
    /// Whether sides[0] is rvhost and sides[1] upstream (answers compared).
    comparing: bool,
}

impl Fuzzer {
    fn call<T>(
        &mut self,
        side: usize,
        at: At,
        what: &'static str,
        f: impl FnOnce(&mut Side) -> T,
    ) -> T {
        let s = &mut self.sides[side];
        let call = Call {
            side: s.label,
            what,
            seed: at.seed,
            case: at.case,
            op: at.op,
        };
        let (result, took) = self.watchdog.run(call, || f(s));
        let label = s.label;
        if took > self.watchdog.limit() {
            self.tally.finding(format!(
                "{at}: {label} took {} ms to answer {what}",
                took.as_millis()
            ));
        }
        self.tally.timing(label, took, || format!("{what} at {at}"));
        result
    }

    fn run_case(&mut self, seed: u64, case: u64) -> Result<()> {
        let case_seed = seed.wrapping_add(case);
        let ops = generate::generate(case_seed, self.offers.both);
        let start = At { seed, case, op: 0 };
        for i in 0..self.sides.len() {
            self.sides[i].reset();
            self.call(i, start, "open", |s| s.open())?;
        }
        for (index, op) in ops.iter().enumerate() {
            let at = At {
                seed,
                case,
                op: index,
            };
            self.run_op(at, op)?;
            self.tally.ops += 1;
        }
        for i in 0..self.sides.len() {
            if self.sides[i].label == "rvhost" {
                for q in 0..2 {
                    if let Some(s) = self.sides[i].stats(q as u32) {
                        self.tally.add_stats(q, s);
                    }
                }
            }
            let end = At {
                seed,
                case,
                op: ops.len(),
            };
            self.call(i, end, "close", |s| s.close());
        }
        self.tally.cases += 1;
        Ok(())
    }

    fn run_op(&mut self, at: At, op: &Op) -> Result<()> {
        if op.is_ioctl() {
            let offers = self.offers;
            let outcomes: Vec<Outcome> = (0..self.sides.len())
                .map(|i| self.call(i, at, op.name(), |s| s.ioctl(op, &offers)))
                .collect();
            if self.verbose {
                let answers: Vec<String> = self
                    .sides
                    .iter()
                    .zip(&outcomes)
                    .map(|(s, o)| format!("{} {}", s.label, report::describe(o)))
                    .collect();
                println!("  {}: {}: {}", at.op, op.describe(), answers.join(", "));
            }
            if self.comparing {
                let verbose = self.verbose;
                self.tally.compare(
                    at,
                    op,
                    &outcomes[0],
                    &outcomes[1],
                    self.offers.both,
                    verbose,
                );
            }
            return Ok(());
        }
        if self.verbose {
            println!("  {}: {}", at.op, op.describe());
        }
        match op {
            Op::Settle { ms } => std::thread::sleep(Duration::from_millis((*ms).into())),
            Op::Reopen => {
                for i in 0..self.sides.len() {
                    self.call(i, at, "close", |s| s.close());
                    self.call(i, at, "open", |s| s.open())?;
                }
            }
            Op::ReadUsed { offset } => {
                let values: Vec<Option<u16>> =
                    self.sides.iter().map(|s| s.read_u16(*offset)).collect();
                if self.verbose {
                    println!("    used index: {values:?}");
                }
                if self.comparing {
                    self.tally.used(values[0], values[1]);
                }
            }
            _ => {
                for s in &self.sides {
                    s.data(op);
                }
            }
        }
        Ok(())
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let seed = args.replay.or(args.seed).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let cases = if args.replay.is_some() {
        Some(1)
    } else {
        args.cases
    };
    let seconds = match (args.seconds, cases) {
        (Some(s), _) => Some(s),
        (None, Some(_)) => None,
        (None, None) => Some(60),
    };
    println!(
        "rvhost-fuzz: seed {seed} ({})",
        match (cases, seconds) {
            (Some(c), Some(s)) => format!("{c} cases or {s} s"),
            (Some(c), None) => format!("{c} cases"),
            (None, Some(s)) => format!("{s} s"),
            (None, None) => unreachable!(),
        }
    );

    // Taps and veths of our own, invisible to the rest of the system.
    // SAFETY: plain unshare(2).
    let ret = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    nettest::check(ret, "unshare(CLONE_NEWNET)")?;

    let mut sides = Vec::new();
    if args.devices != Devices::Upstream {
        sides.push(Side::new("rvhost", &args.device, "a").context("rvhost side")?);
    }
    if args.devices != Devices::Rvhost {
        sides.push(Side::new("upstream", &args.reference, "b").context("upstream side")?);
    }
    let features: Vec<u64> = sides.iter_mut().map(offered).collect::<Result<_>>()?;
    let offers = Offers {
        both: features.iter().fold(u64::MAX, |a, f| a & f),
        either: features.iter().fold(0, |a, f| a | f),
    };
    let comparing = sides.len() == 2;
    let mut tally = Tally::default();
    for (s, f) in sides.iter().zip(&features) {
        println!(
            "rvhost-fuzz: {} ({}) offers features {f:#x}",
            s.label, s.path
        );
    }
    if comparing {
        // rvhost offers exactly upstream's features: any difference is a finding.
        let (ours, theirs) = (features[0], features[1]);
        let unexpected = ours ^ theirs;
        if unexpected != 0 {
            tally.finding(format!(
                "GET_FEATURES: rvhost {ours:#x}, upstream {theirs:#x}: bits {unexpected:#x} differ"
            ));
        }
    }

    let kmsg = Kmsg::open();
    if !kmsg.available() {
        println!("rvhost-fuzz: /dev/kmsg not writable: no case markers in the kernel log");
    }
    let mut fuzzer = Fuzzer {
        sides,
        offers,
        watchdog: Watchdog::start(
            Duration::from_millis(args.hang_ms),
            Duration::from_secs(120),
        ),
        tally,
        verbose: args.verbose,
        comparing,
    };

    let started = Instant::now();
    let deadline = seconds.map(|s| started + Duration::from_secs(s));
    let mut last_progress = started;
    let mut failure = None;
    for case in 0.. {
        if cases.is_some_and(|c| case >= c) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let marker = format!(
            "rvhost-fuzz: seed {seed} case {case} (replay: --replay {})",
            seed.wrapping_add(case)
        );
        kmsg.line(&marker);
        if args.verbose {
            println!("{marker}");
        }
        if let Err(e) = fuzzer.run_case(seed, case) {
            let text = format!("seed {seed} case {case}: {e:#}");
            fuzzer.tally.finding(text.clone());
            failure = Some(text);
            break;
        }
        if last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            let t = &fuzzer.tally;
            println!(
                "rvhost-fuzz: {:.0} s: {} cases, {} operations, agreement {}/{}, findings {}",
                started.elapsed().as_secs_f64(),
                t.cases,
                t.ops,
                t.agreed,
                t.compared,
                t.findings
            );
        }
    }
    kmsg.line(&format!("rvhost-fuzz: seed {seed} done"));
    fuzzer
        .tally
        .print(seed, started.elapsed(), args.per_op || args.verbose);
    if let Some(f) = failure {
        anyhow::bail!("stopped: {f}");
    }
    let findings = fuzzer.tally.findings;
    anyhow::ensure!(findings == 0, "{findings} findings (see above)");
    Ok(())
}
