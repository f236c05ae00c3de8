//! The Markdown report: meta header, virtio-net and e1000 tables, plots and
//! the perf cross-check.

use crate::perf::{Agreement, PerfRow, PERF_EXIT_EVENT, TOLERANCE};
use crate::plots::PlotOutcome;
use crate::summary::{E1000Table, Group, Stats, VirtioCase};
use serde_json::{Map, Value};
use std::fmt::Write;

/// Everything the report shows.
pub struct Report<'a> {
    pub meta: &'a Map<String, Value>,
    pub run_count: usize,
    pub virtio: &'a [VirtioCase],
    pub e1000: &'a [E1000Table],
    pub perf: &'a [PerfRow],
    pub plots: &'a [PlotOutcome],
}

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
        let virtio: usize = self
            .virtio
            .iter()
            .flat_map(|c| &c.backends)
            .map(|(_, g)| g.pps.n)
            .sum();
        let e1000: usize = self
            .e1000
            .iter()
            .flat_map(|t| &t.modes)
            .map(|(_, g)| g.pps.n)
            .sum();
        let _ = writeln!(
            md,
            "\n{} runs: {virtio} virtio-net, {e1000} e1000. pps cells: median (min–max over repetitions, n); \
             other cells: medians over repetitions.\n",
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

    fn virtio_section(&self, md: &mut String) {
        md.push_str("## virtio-net\n\n");
        if self.virtio.is_empty() {
            md.push_str("No virtio-net runs.\n\n");
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
    use crate::summary::tests::run;
    use crate::summary::{e1000_tables, virtio_cases};

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
        let meta: Map<String, Value> =
            serde_json::from_str(r#"{"date":"today","kernel":"6.19","extra":"x"}"#).unwrap();
        let virtio = virtio_cases(&runs);
        let e1000 = e1000_tables(&runs);
        let perf = crate::perf::check_runs(&runs);
        let md = Report {
            meta: &meta,
            run_count: runs.len(),
            virtio: &virtio,
            e1000: &e1000,
            perf: &perf,
            plots: &[],
        }
        .render();
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
}
