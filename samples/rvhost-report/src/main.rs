//! rvhost-report: turns the run matrix's runs.jsonl into results.json, a
//! Markdown report and SVG plots, and validates results.json files; also
//! summarises the net suite's runs (`bench-net`; `scripts/run --suites net`).

mod bench_net;
mod build;
mod markdown;
mod perf;
mod plots;
mod run;
mod schema;
mod summary;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status of `build --strict-perf` when a perf cross-check fails.
const EXIT_PERF: u8 = 3;

#[derive(Parser)]
#[command(about = "Reports on rvmm benchmark runs (rvhost, vhost, user, e1000)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write results.json, report.md and SVG plots into --out; print the
    /// report on stdout.
    Build {
        /// One JSON object per line, one per rvmm run.
        #[arg(long)]
        runs: PathBuf,
        /// {"kernel", "module_version", "git_commit", "machine", "date", ...}
        #[arg(long)]
        meta: PathBuf,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The device-level benchmark's runs (scripts/in-vm-bench's JSONL,
        /// as for bench-net): their tables go into report.md, their runs
        /// and summary into results.json's "bench_net".
        #[arg(long)]
        bench: Option<PathBuf>,
        /// Exit with status 3 when a run's exit count disagrees with perf's
        /// (beyond 5%) or has no perf count.
        #[arg(long)]
        strict_perf: bool,
    },
    /// Check a results.json against the schema; exit 1 listing every
    /// violation.
    Validate {
        /// The results.json to check.
        results: PathBuf,
    },
    /// Summarise the net suite's runs (rvhost beside upstream per case,
    /// medians, spreads and ratios; latency): print Markdown tables, write
    /// the runs and the summary as JSON.
    BenchNet {
        /// One JSON object per line, one per rvhost-traffic run.
        runs: PathBuf,
        /// The JSON to write.
        out: PathBuf,
    },
}

fn run() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Build {
            runs,
            meta,
            out,
            bench,
            strict_perf,
        } => {
            let built = build::build(&runs, &meta, bench.as_deref(), &out)?;
            print!("{}", built.markdown);
            if strict_perf && !built.perf_failures.is_empty() {
                eprintln!(
                    "rvhost-report: --strict-perf: {} run(s) failed the perf cross-check \
                     (exits.total vs {}):",
                    built.perf_failures.len(),
                    perf::PERF_EXIT_EVENT
                );
                for row in &built.perf_failures {
                    eprintln!(
                        "  {}: {} ({})",
                        row.label,
                        row.agreement,
                        row.agreement.diff_text()
                    );
                }
                return Ok(ExitCode::from(EXIT_PERF));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchNet { runs, out } => {
            print!("{}", bench_net::write(&runs, &out)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { results } => {
            let text = std::fs::read_to_string(&results)
                .with_context(|| format!("reading {}", results.display()))?;
            match schema::check_results_text(&text) {
                Ok(n) => {
                    println!("{}: {n} runs valid", results.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(violations) => {
                    eprintln!("{}: {} violation(s):", results.display(), violations.len());
                    for v in &violations {
                        eprintln!("  {v}");
                    }
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

fn main() -> ExitCode {
    run().unwrap_or_else(|e| {
        eprintln!("rvhost-report: error: {e:#}");
        ExitCode::FAILURE
    })
}
