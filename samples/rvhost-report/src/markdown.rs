//! The Markdown report: meta header, the steady-state figures, the
//! request/response latencies, the device-level benchmark, whole-run
//! virtio-net and e1000 tables, plots and the perf cross-check.

use crate::perf::{Agreement, PerfRow, PERF_EXIT_EVENT, TOLERANCE};
use crate::plots::PlotOutcome;
use crate::run::COALESCED_RVHOST;
use crate::summary::{
    has_steady_state, meets_saturation_target, E1000Table, Group, LatencyCase, Stats, Steady,
    VirtioCase,
};
use serde_json::{Map, Value};
use std::fmt::Write;

/// Everything the report shows.
pub struct Report<'a> {
    pub meta: &'a Map<String, Value>,
    pub run_count: usize,
    pub virtio: &'a [VirtioCase],
    /// virtio-net's request/response cases.
    pub latency: &'a [LatencyCase],
    pub e1000: &'a [E1000Table],
    pub perf: &'a [PerfRow],
    pub plots: &'a [PlotOutcome],
    /// bench-net's tables, when `build --bench` was given its runs.
    pub bench_net: Option<&'a str>,
}

pub const STEADY_HEADING: &str = "## Steady state (after the warm-up)";
pub const LATENCY_HEADING: &str = "## Latency: virtio-net request/response";
pub const BENCH_HEADING: &str =
    "## Device level: rvhost-traffic against both devices (CPU per packet, latency)";

/// The target's name in the report, beside its value.
const TARGET_TEXT: &str = "1/64";

pub fn pps(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// "median (min–max, n=N)".
pub fn spread(s: &Stats) -> String {
    format!(
        "{} ({}–{}, n={})",
        pps(s.median),
        pps(s.min),
        pps(s.max),
        s.n
    )
}

pub fn per_packet(x: f64) -> String {
    if x == 0.0 || x >= 0.001 {
        format!("{x:.3}")
    } else {
        format!("{x:.1e}")
    }
}

pub fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "—".to_string(), |r| format!("{r:.2}×"))
}

fn table_row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

fn table_head(cells: &[&str]) -> String {
    let owned: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
    let rule: Vec<String> = cells.iter().map(|_| "---".to_string()).collect();
    table_row(&owned) + &table_row(&rule)
}

/// Head cells every steady-state table has, matching [`steady_cells`].
const STEADY_HEAD: [&str; 5] = [
    "pps",
    "device CPU ns/pkt",
    "vCPU ns/pkt",
    "exits/pkt",
    "irqs/pkt",
];

/// The cells every steady-state row has: pps, device CPU, vCPU, exits and
/// interrupts per packet.
fn steady_cells(s: &Steady) -> Vec<String> {
    vec![
        spread(&s.pps),
        spread(&s.device_cpu_ns_per_packet),
        pps(s.vcpu_cpu_ns_per_packet.median),
        per_packet(s.exits_per_packet),
        per_packet(s.interrupts_per_packet),
    ]
}

/// One row of a steady-state table: the cells before the common ones, the
/// window, the cells after.
type SteadyRow<'a> = (Vec<String>, &'a Steady, Vec<String>);

/// A steady-state table under `title`: `lead` and `tail` name the cells
/// before and after [`STEADY_HEAD`].
fn steady_table(md: &mut String, title: &str, lead: &[&str], tail: &[&str], rows: &[SteadyRow]) {
    let _ = writeln!(md, "### {title}\n");
    let head: Vec<&str> = lead
        .iter()
        .chain(&STEADY_HEAD)
        .chain(tail)
        .copied()
        .collect();
    md.push_str(&table_head(&head));
    for (before, s, after) in rows {
        let cells: Vec<String> = before
            .iter()
            .cloned()
            .chain(steady_cells(s))
            .chain(after.iter().cloned())
            .collect();
        md.push_str(&table_row(&cells));
    }
    md.push('\n');
}

/// rvhost's CPU and pps ratios against vhost and user (empty cells on the
/// other backends' rows).
fn rvhost_ratios(case: &VirtioCase, backend: &str) -> [String; 4] {
    if backend != "rvhost" {
        return Default::default();
    }
    [
        ratio(case.steady_cpu_ratio("rvhost", "vhost")),
        ratio(case.steady_cpu_ratio("rvhost", "user")),
        ratio(case.steady_pps_ratio("rvhost", "vhost")),
        ratio(case.steady_pps_ratio("rvhost", "user")),
    ]
}

/// A row per (direction, size, mode, backend) with a window; the ratios on
/// rvhost's row.
fn steady_virtio_table(md: &mut String, cases: &[&VirtioCase]) {
    let rows: Vec<SteadyRow> = cases
        .iter()
        .flat_map(|case| {
            case.backends.iter().filter_map(move |(backend, g)| {
                let lead = vec![
                    case.shape.direction.clone(),
                    case.shape.size.to_string(),
                    case.mode.clone(),
                    backend.clone(),
                ];
                let s = g.steady.as_ref()?;
                let mut tail = vec![per_packet(s.kicks_per_packet)];
                tail.extend(rvhost_ratios(case, backend));
                Some((lead, s, tail))
            })
        })
        .collect();
    steady_table(
        md,
        "virtio-net",
        &["dir", "size", "mode", "backend"],
        &[
            "kicks/pkt",
            "CPU/pkt rvhost/vhost",
            "CPU/pkt rvhost/user",
            "pps rvhost/vhost",
            "pps rvhost/user",
        ],
        &rows,
    );
}

/// "exits/pkt 0.010 ≤ 1/64: met".
fn target_verdict(name: &str, median: f64) -> String {
    if meets_saturation_target(median) {
        format!("{name} {} ≤ {TARGET_TEXT}: met", per_packet(median))
    } else {
        format!("{name} {} > {TARGET_TEXT}: not met", per_packet(median))
    }
}

/// Whether rvhost meets the saturation target, per event-idx case.
fn saturation_lines(md: &mut String, cases: &[&VirtioCase]) {
    let lines: Vec<String> = cases
        .iter()
        .filter(|c| c.mode == "event-idx")
        .flat_map(|c| {
            ["rvhost", COALESCED_RVHOST]
                .into_iter()
                .filter_map(|backend| {
                    let s = c.backend(backend)?.steady.as_ref()?;
                    Some(format!(
                        "- {}, {backend}: {}; {}.\n",
                        c.label(),
                        target_verdict("exits/pkt", s.exits_per_packet),
                        target_verdict("irqs/pkt", s.interrupts_per_packet)
                    ))
                })
        })
        .collect();
    if lines.is_empty() {
        md.push_str(
            "No event-idx rvhost run carries a window: the saturation target is not checked.\n\n",
        );
        return;
    }
    let _ = writeln!(
        md,
        "Target at saturation (issue 14): at most {TARGET_TEXT} ({}) exits and interrupts per \
         packet for rvhost with event-idx, from the medians above:\n",
        per_packet(crate::summary::SATURATION_TARGET_PER_PACKET)
    );
    md.push_str(&lines.concat());
    md.push('\n');
}

/// A row per (direction, size, mode) with a window.
fn steady_e1000_table(md: &mut String, tables: &[&E1000Table]) {
    let rows: Vec<SteadyRow> = tables
        .iter()
        .flat_map(|table| {
            table.modes.iter().filter_map(move |(mode, g)| {
                let lead = vec![
                    table.shape.direction.clone(),
                    table.shape.size.to_string(),
                    mode.clone(),
                ];
                Some((lead, g.steady.as_ref()?, Vec::new()))
            })
        })
        .collect();
    steady_table(md, "e1000", &["dir", "size", "mode"], &[], &rows);
}

fn meta_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Report<'_> {
    pub fn render(&self) -> String {
        let mut md = String::new();
        self.header(&mut md);
        self.steady_section(&mut md);
        self.latency_section(&mut md);
        self.bench_section(&mut md);
        self.virtio_section(&mut md);
        self.e1000_section(&mut md);
        self.perf_section(&mut md);
        md
    }

    fn header(&self, md: &mut String) {
        md.push_str("# rvhost benchmark report\n\n");
        let mut keys: Vec<&String> = self.meta.keys().collect();
        keys.sort_by_key(|k| {
            let pos = crate::schema::META_KEYS.iter().position(|m| m == k);
            (pos.unwrap_or(usize::MAX), k.as_str())
        });
        for key in keys {
            let _ = writeln!(md, "- **{key}**: {}", meta_value(&self.meta[key]));
        }
        let streams: usize = self
            .virtio
            .iter()
            .flat_map(|c| &c.backends)
            .map(|(_, g)| g.pps.n)
            .sum();
        let request_response: usize = self
            .latency
            .iter()
            .flat_map(|c| &c.backends)
            .map(|(_, g)| g.p50_us.n)
            .sum();
        let virtio = streams + request_response;
        let e1000: usize = self
            .e1000
            .iter()
            .flat_map(|t| &t.modes)
            .map(|(_, g)| g.pps.n)
            .sum();
        let _ = writeln!(
            md,
            "\n{} runs: {virtio} virtio-net ({request_response} request/response), {e1000} e1000. \
             pps cells: median (min–max over repetitions, n); other cells: medians over repetitions.\n",
            self.run_count
        );
    }

    fn plot_lines(&self, md: &mut String, files: &[&str]) {
        for plot in self.plots {
            match plot {
                PlotOutcome::Drawn { file, title } if files.contains(&file.as_str()) => {
                    let _ = writeln!(md, "![{title}]({file})\n");
                }
                PlotOutcome::Skipped { file, reason } if files.contains(&file.as_str()) => {
                    let _ = writeln!(md, "_{file} not drawn: {reason}._\n");
                }
                _ => {}
            }
        }
    }

    fn steady_section(&self, md: &mut String) {
        let _ = writeln!(md, "{STEADY_HEADING}\n");
        let virtio: Vec<&VirtioCase> = self
            .virtio
            .iter()
            .filter(|c| has_steady_state(&c.backends))
            .collect();
        let e1000: Vec<&E1000Table> = self
            .e1000
            .iter()
            .filter(|t| has_steady_state(&t.modes))
            .collect();
        if virtio.is_empty() && e1000.is_empty() {
            md.push_str(
                "No TX or RX run carries a steady-state window (`steady_state`, from `rvmm run --warmup`); \
                 the whole-run tables below include bring-up.\n\n",
            );
            return;
        }
        md.push_str(
            "Counters sampled when the guest's warm-up frames have moved (`rvmm run --warmup`) \
             and again when its last frame moved, so bring-up and the closing report are outside \
             these figures. Device CPU: the NIC's own threads (vhost worker, rvmm's userspace I/O threads, e1000 I/O thread); \
             vCPU: the vCPU thread (guest driver plus exit handling). pps and device CPU: median \
             (min–max over repetitions, n); other cells: medians; ratios: of medians.\n\n",
        );
        if virtio.is_empty() {
            md.push_str("No virtio-net TX or RX run carries a steady-state window.\n\n");
        } else {
            steady_virtio_table(md, &virtio);
            saturation_lines(md, &virtio);
        }
        if e1000.is_empty() {
            md.push_str("No e1000 run carries a steady-state window.\n\n");
        } else {
            steady_e1000_table(md, &e1000);
        }
        self.plot_lines(md, &[crate::plots::CPU_VIRTIO]);
    }

    fn latency_section(&self, md: &mut String) {
        let _ = writeln!(md, "{LATENCY_HEADING}\n");
        if self.latency.is_empty() {
            md.push_str(
                "No request/response runs (direction `rr`, rvmm's `virtio-echo` workload).\n\n",
            );
            return;
        }
        md.push_str(
            "rvmm's far side sends a request into the tap and times the guest's answer with \
             `Instant`: far side → tap → the device's RX → guest → the device's TX → tap → far \
             side, the warm-up round trips left out. p50 and p99: median (min–max over \
             repetitions, n); round trips/s: median; exits and interrupts per round trip: \
             medians over the steady-state windows; ratios: of the p50 medians (below 1: rvhost \
             answers sooner).\n\n",
        );
        for case in self.latency {
            let _ = writeln!(md, "### {}\n", case.label());
            md.push_str(&table_head(&[
                "backend",
                "p50 µs",
                "p99 µs",
                "round trips/s",
                "exits/trip",
                "irqs/trip",
                "p50 rvhost/vhost",
                "p50 rvhost/user",
            ]));
            let optional = |x: Option<f64>| x.map_or_else(|| "—".to_string(), per_packet);
            for (backend, g) in &case.backends {
                let (vs_vhost, vs_user) = if backend == "rvhost" {
                    (
                        ratio(case.p50_ratio("rvhost", "vhost")),
                        ratio(case.p50_ratio("rvhost", "user")),
                    )
                } else {
                    (String::new(), String::new())
                };
                md.push_str(&table_row(&[
                    backend.clone(),
                    spread(&g.p50_us),
                    spread(&g.p99_us),
                    pps(g.per_second.median),
                    optional(g.exits_per_round_trip),
                    optional(g.interrupts_per_round_trip),
                    vs_vhost,
                    vs_user,
                ]));
            }
            md.push('\n');
        }
    }

    fn bench_section(&self, md: &mut String) {
        let Some(tables) = self.bench_net else {
            return;
        };
        let _ = writeln!(md, "{BENCH_HEADING}\n");
        md.push_str(
            "rvhost-traffic drives /dev/rvhost-net and upstream /dev/vhost-net from the host, no \
             guest: packets/s and the worker's CPU time per packet per \
             stream, then request/response latency; medians (min–max) over repetitions. The same \
             figures are in results.json's `bench_net`.\n\n",
        );
        md.push_str(tables.trim_end());
        md.push_str("\n\n");
    }

    fn virtio_section(&self, md: &mut String) {
        md.push_str("## virtio-net\n\n");
        if self.virtio.is_empty() {
            md.push_str("No virtio-net TX or RX runs.\n\n");
        }
        for case in self.virtio {
            let _ = writeln!(md, "### {}, {}\n", case.shape.label(), case.mode);
            md.push_str(&table_head(&[
                "backend",
                "pps",
                "exits/pkt",
                "irqs/pkt",
                "kicks/pkt",
                "rvhost/vhost pps",
                "rvhost/user pps",
            ]));
            for (backend, g) in &case.backends {
                let (vs_vhost, vs_user) = if backend == "rvhost" {
                    (
                        ratio(case.pps_ratio("rvhost", "vhost")),
                        ratio(case.pps_ratio("rvhost", "user")),
                    )
                } else {
                    (String::new(), String::new())
                };
                md.push_str(&table_row(&[
                    backend.clone(),
                    spread(&g.pps),
                    per_packet(g.exits_per_packet),
                    per_packet(g.interrupts_per_packet),
                    per_packet(g.kicks_per_packet),
                    vs_vhost,
                    vs_user,
                ]));
            }
            md.push('\n');
        }
        self.plot_lines(md, &[crate::plots::PPS_VIRTIO, crate::plots::EXITS_VIRTIO]);
    }

    fn e1000_section(&self, md: &mut String) {
        md.push_str("## e1000 (emulated by rvmm)\n\n");
        if self.e1000.is_empty() {
            md.push_str("No e1000 runs.\n\n");
        }
        for table in self.e1000 {
            let _ = writeln!(md, "### {}\n", table.shape.label());
            let reason_heads: Vec<String> = table
                .reasons
                .iter()
                .map(|r| format!("{r} exits/pkt"))
                .collect();
            let mut head = vec!["mode", "pps", "exits/pkt"];
            head.extend(reason_heads.iter().map(String::as_str));
            head.extend(["irqs/pkt", "pps vs baseline"]);
            md.push_str(&table_head(&head));
            let row = |name: &str, g: &Group| {
                let mut cells = vec![
                    name.to_string(),
                    spread(&g.pps),
                    per_packet(g.exits_per_packet),
                ];
                cells.extend(
                    table
                        .reasons
                        .iter()
                        .map(|r| per_packet(g.reasons.get(r).copied().unwrap_or(0.0))),
                );
                cells.push(per_packet(g.interrupts_per_packet));
                cells.push(ratio(table.ratio_vs_baseline(g)));
                table_row(&cells)
            };
            for (mode, g) in &table.modes {
                md.push_str(&row(mode, g));
            }
            if let Some(g) = &table.contrast {
                md.push_str(&row("virtio-net/rvhost (event-idx)", g));
            }
            md.push('\n');
        }
        self.plot_lines(md, &[crate::plots::EXITS_E1000]);
    }

    fn perf_section(&self, md: &mut String) {
        md.push_str("## perf cross-check\n\n");
        let _ = writeln!(
            md,
            "KVM's own exit counter (`exits.total`, read by rvmm) against perf's `{PERF_EXIT_EVENT}` \
             count for the same run; DISAGREE when they differ by more than {:.0}%, n/a when perf \
             gave no count.\n",
            TOLERANCE * 100.0
        );
        md.push_str(&table_head(&[
            "run",
            "exits.total",
            PERF_EXIT_EVENT,
            "diff",
            "check",
        ]));
        for row in self.perf {
            md.push_str(&table_row(&[
                row.label.clone(),
                format!("{:.0}", row.kvm_exits),
                row.perf_exits
                    .map_or_else(|| "—".into(), |p| format!("{p:.0}")),
                row.agreement.diff_text(),
                match row.agreement {
                    Agreement::Agree(_) => "ok".into(),
                    other => format!("**{other}**"),
                },
            ]));
        }
        let count =
            |f: fn(&Agreement) -> bool| self.perf.iter().filter(|r| f(&r.agreement)).count();
        let ok = count(|a| matches!(a, Agreement::Agree(_)));
        let disagree = count(|a| matches!(a, Agreement::Disagree(_)));
        let na = count(|a| matches!(a, Agreement::NotAvailable));
        let _ = writeln!(md, "\n{ok} ok, {disagree} DISAGREE, {na} n/a.");
        if na > 0 {
            md.push_str(
                "\n**Flag:** some runs have no perf counts (perf stat unavailable?); \
                 their exit counts are not cross-checked.\n",
            );
        }
        if disagree > 0 {
            md.push_str(
                "\n**Flag:** some runs' exit counts disagree with perf beyond the tolerance.\n",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Run;
    use crate::summary::tests::{rr_run, run, steady_run};
    use crate::summary::{e1000_tables, latency_cases, virtio_cases};

    /// The report of `runs` with the given meta, plots and bench tables.
    fn render(runs: &[Run], meta: &str, plots: &[PlotOutcome], bench_net: Option<&str>) -> String {
        let meta: Map<String, Value> = serde_json::from_str(meta).unwrap();
        Report {
            meta: &meta,
            run_count: runs.len(),
            virtio: &virtio_cases(runs),
            latency: &latency_cases(runs),
            e1000: &e1000_tables(runs),
            perf: &crate::perf::check_runs(runs),
            plots,
            bench_net,
        }
        .render()
    }

    /// rvhost at 2000 pps and 500 device ns/pkt, vhost at 1000 and 1000,
    /// e1000 baseline; all with windows.
    fn steady_runs() -> Vec<Run> {
        vec![
            steady_run("virtio-net", "rvhost", "event-idx", 2000.0, 500.0, 1),
            steady_run("virtio-net", "vhost", "event-idx", 1000.0, 1000.0, 1),
            run("virtio-net", "user", "event-idx", "tx", 64, 300.0, 1),
            steady_run("e1000", "user", "baseline", 100.0, 4000.0, 1),
        ]
    }

    fn set_rvhost_window(runs: &mut [Run], exits_per_packet: f64, interrupts_per_packet: f64) {
        let w = runs[0].steady_state.as_mut().unwrap();
        w.exits_per_packet = exits_per_packet;
        w.interrupts_per_packet = interrupts_per_packet;
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(pps(4878.04), "4878");
        assert_eq!(pps(12.345), "12.3");
        assert_eq!(per_packet(0.09), "0.090");
        assert_eq!(per_packet(0.0), "0.000");
        assert_eq!(per_packet(0.00012), "1.2e-4");
        assert_eq!(ratio(Some(1.234)), "1.23×");
        assert_eq!(ratio(None), "—");
        let s = Stats::of(&[1000.0, 1200.0]).unwrap();
        assert_eq!(spread(&s), "1100 (1000–1200, n=2)");
    }

    #[test]
    fn renders_tables_and_flags() {
        let mut runs = vec![
            run("virtio-net", "rvhost", "event-idx", "tx", 64, 2000.0, 1),
            run("virtio-net", "vhost", "event-idx", "tx", 64, 1000.0, 1),
            run("e1000", "user", "baseline", "tx", 64, 100.0, 1),
            run("e1000", "user", "mitigation", "tx", 64, 150.0, 1),
        ];
        runs[3].perf.clear();
        let md = render(
            &runs,
            r#"{"date":"today","kernel":"6.19","extra":"x"}"#,
            &[],
            None,
        );
        assert!(
            md.contains("- **kernel**: 6.19\n- **date**: today\n- **extra**: x"),
            "{md}"
        );
        assert!(
            md.contains("| rvhost | 2000 (2000–2000, n=1) | 0.100 | 0.010 | 0.020 | 2.00× | — |"),
            "{md}"
        );
        assert!(
            md.contains("| vhost | 1000 (1000–1000, n=1) | 0.100 | 0.010 | 0.020 |  |  |"),
            "{md}"
        );
        assert!(
            md.contains("| mode | pps | exits/pkt | mmio exits/pkt | irqs/pkt | pps vs baseline |")
        );
        assert!(
            md.contains("| mitigation | 150 (150–150, n=1) | 0.100 | 0.040 | 0.010 | 1.50× |"),
            "{md}"
        );
        assert!(
            md.contains("| virtio-net/rvhost (event-idx) | 2000"),
            "{md}"
        );
        assert!(
            md.contains("| e1000/user/mitigation tx 64B #1 | 100 | — | n/a | **n/a** |"),
            "{md}"
        );
        assert!(md.contains("3 ok, 0 DISAGREE, 1 n/a."));
    }

    #[test]
    fn renders_the_steady_state_tables_before_the_whole_run_ones() {
        let mut runs = steady_runs();
        set_rvhost_window(&mut runs, 0.01, 0.02);
        let plots = [PlotOutcome::Drawn {
            file: crate::plots::CPU_VIRTIO.into(),
            title: "CPU".into(),
        }];
        let md = render(&runs, "{}", &plots, None);
        let steady = md.find(STEADY_HEADING).expect("steady-state section");
        assert!(steady < md.find("\n## virtio-net").unwrap(), "{md}");
        assert!(!md.contains(BENCH_HEADING));
        for row in [
            "| dir | size | mode | backend | pps | device CPU ns/pkt | vCPU ns/pkt | exits/pkt | irqs/pkt | kicks/pkt | CPU/pkt rvhost/vhost | CPU/pkt rvhost/user | pps rvhost/vhost | pps rvhost/user |",
            "| tx | 64 | event-idx | rvhost | 2000 (2000–2000, n=1) | 500 (500–500, n=1) | 1000 | 0.010 | 0.020 | 0.002 | 0.50× | — | 2.00× | — |",
            "| tx | 64 | event-idx | vhost | 1000 (1000–1000, n=1) | 1000 (1000–1000, n=1) | 2000 | 0.010 | 0.005 | 0.002 |  |  |  |  |",
            "| dir | size | mode | pps | device CPU ns/pkt | vCPU ns/pkt | exits/pkt | irqs/pkt |",
            "| tx | 64 | baseline | 100 (100–100, n=1) | 4000 (4000–4000, n=1) | 8000 | 0.010 | 0.005 |",
            "- tx 64B event-idx, rvhost: exits/pkt 0.010 ≤ 1/64: met; irqs/pkt 0.020 > 1/64: not met.",
            "![CPU](cpu-per-packet-virtio-net.svg)",
        ] {
            assert!(md.contains(row), "{row:?} not in\n{md}");
        }
        // The user backend has no window: no steady-state row.
        assert!(!md.contains("| tx | 64 | event-idx | user |"), "{md}");
    }

    #[test]
    fn coalesced_rvhost_gets_its_own_row_and_verdict() {
        let mut runs = steady_runs();
        let mut coalesced = runs[0].clone();
        coalesced.coalesce = Some("128:100".into());
        runs.push(coalesced.coalesced_as_backend());
        let w = runs[4].steady_state.as_mut().unwrap();
        w.interrupts_per_packet = 0.004;
        let md = render(&runs, "{}", &[], None);
        for row in [
            "| tx | 64 | event-idx | rvhost+coalesce | 2000 (2000–2000, n=1) |",
            "- tx 64B event-idx, rvhost: exits/pkt 0.010 ≤ 1/64: met; irqs/pkt 0.005 ≤ 1/64: met.",
            "- tx 64B event-idx, rvhost+coalesce: exits/pkt 0.010 ≤ 1/64: met; irqs/pkt 0.004 ≤ 1/64: met.",
        ] {
            assert!(md.contains(row), "{row:?} not in\n{md}");
        }
        // Shown after plain rvhost, before upstream.
        let at = |b: &str| md.find(&format!("| event-idx | {b} |")).unwrap();
        assert!(at("rvhost") < at("rvhost+coalesce") && at("rvhost+coalesce") < at("vhost"));
    }

    #[test]
    fn the_saturation_target_follows_the_medians() {
        let mut runs = steady_runs();
        set_rvhost_window(&mut runs, 0.05, 0.001);
        let md = render(&runs, "{}", &[], None);
        assert!(
            md.contains("exits/pkt 0.050 > 1/64: not met; irqs/pkt 0.001 ≤ 1/64: met."),
            "{md}"
        );
        set_rvhost_window(&mut runs, 0.0, 0.0);
        let md = render(&runs, "{}", &[], None);
        assert!(md.contains("exits/pkt 0.000 ≤ 1/64: met; irqs/pkt 0.000 ≤ 1/64: met."));
        // The target is for event-idx: no line for no-event-idx.
        for r in &mut runs {
            r.mode = r.mode.replace("event-idx", "no-event-idx");
        }
        let md = render(&runs, "{}", &[], None);
        assert!(!md.contains("1/64: met"), "{md}");
        assert!(md.contains("saturation target is not checked"), "{md}");
    }

    #[test]
    fn notes_the_absence_of_windows() {
        let runs = vec![run(
            "virtio-net",
            "rvhost",
            "event-idx",
            "tx",
            64,
            2000.0,
            1,
        )];
        let plots = [PlotOutcome::Skipped {
            file: crate::plots::CPU_VIRTIO.into(),
            reason: "none".into(),
        }];
        let md = render(&runs, "{}", &plots, None);
        let section = md.split(STEADY_HEADING).nth(1).unwrap();
        let section = section.split("\n## ").next().unwrap();
        assert_eq!(
            section.trim(),
            "No TX or RX run carries a steady-state window (`steady_state`, from `rvmm run --warmup`); \
             the whole-run tables below include bring-up."
        );
    }

    #[test]
    fn renders_the_latency_table_between_steady_state_and_whole_runs() {
        let mut runs = steady_runs();
        runs.extend([
            rr_run("vhost", 2500.0, 3.3, 1),
            rr_run("rvhost", 4000.0, 3.0, 1),
            rr_run("rvhost", 6000.0, 3.4, 2),
            rr_run("user", 8000.0, 3.5, 1),
        ]);
        let md = render(&runs, "{}", &[], None);
        let steady = md.find(STEADY_HEADING).unwrap();
        let latency = md.find(LATENCY_HEADING).expect("latency section");
        let virtio = md.find("\n## virtio-net").unwrap();
        assert!(steady < latency && latency < virtio, "{md}");
        for row in [
            "8 runs: 7 virtio-net (4 request/response), 1 e1000.",
            "### rr 64B event-idx, 1 in flight\n",
            "| backend | p50 µs | p99 µs | round trips/s | exits/trip | irqs/trip | p50 rvhost/vhost | p50 rvhost/user |",
            "| rvhost | 5000 (4000–6000, n=2) | 15000 (12000–18000, n=2) | 208 | 3.200 | 0.005 | 2.00× | 0.62× |",
            "| vhost | 2500 (2500–2500, n=1) | 7500 (7500–7500, n=1) | 400 | 3.300 | 0.005 |  |  |",
            "| user | 8000 (8000–8000, n=1) | 24000 (24000–24000, n=1) | 125 | 3.500 | 0.005 |  |  |",
        ] {
            assert!(md.contains(row), "{row:?} not in\n{md}");
        }
        // The request/response runs are in no streaming table.
        assert!(!md.contains("### rr 64B, event-idx"), "{md}");
        assert!(!md.contains("| rr | 64 |"), "{md}");
        // The saturation target is for streams only.
        assert_eq!(md.matches("1/64: ").count(), 2, "{md}");
    }

    #[test]
    fn a_report_of_request_response_runs_only() {
        let runs = [
            rr_run("rvhost", 4000.0, 3.0, 1),
            rr_run("user", 5000.0, 3.0, 1),
        ];
        let md = render(&runs, "{}", &[], None);
        for line in [
            "2 runs: 2 virtio-net (2 request/response), 0 e1000.",
            "No TX or RX run carries a steady-state window",
            "| rvhost | 4000 (4000–4000, n=1) | 12000 (12000–12000, n=1) | 250 | 3.000 | 0.005 | — | 0.80× |",
            "No virtio-net TX or RX runs.",
        ] {
            assert!(md.contains(line), "{line:?} not in\n{md}");
        }
    }

    #[test]
    fn notes_the_absence_of_request_response_runs() {
        let md = render(&steady_runs(), "{}", &[], None);
        let section = md.split(LATENCY_HEADING).nth(1).unwrap();
        let section = section.split("\n## ").next().unwrap();
        assert_eq!(
            section.trim(),
            "No request/response runs (direction `rr`, rvmm's `virtio-echo` workload)."
        );
    }

    #[test]
    fn places_the_device_level_tables_after_the_steady_state() {
        let bench = "| dir | size |\n|---|---|\n";
        let md = render(&steady_runs(), "{}", &[], Some(bench));
        let steady = md.find(STEADY_HEADING).unwrap();
        let device = md.find(BENCH_HEADING).expect("device-level section");
        let virtio = md.find("\n## virtio-net").unwrap();
        assert!(steady < device && device < virtio, "{md}");
        assert!(
            md.contains("`bench_net`.\n\n| dir | size |\n|---|---|\n\n## virtio-net"),
            "{md}"
        );
    }
}
