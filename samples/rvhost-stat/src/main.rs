//! `rvhost-stat`: every open `/dev/rvhost-net` device and its counters, read
//! from debugfs (`/sys/kernel/debug/rvhost_net/dev<N>/state`, one
//! `name: value` per line; Documentation/operations.md), as a table like
//! `ethtool -S`, as rates per second (`--watch`), or as JSON (`--json`).
//! Needs root (debugfs), not the device's owner.

use anyhow::{ensure, Context as _, Result};
use clap::Parser;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Counters of every /dev/rvhost-net device (from debugfs)")]
struct Args {
    /// The module's debugfs directory.
    #[arg(long, default_value = "/sys/kernel/debug/rvhost_net")]
    dir: PathBuf,
    /// One JSON object: {"dev0": {"owner_pid": 123, "rx.packets": ...}, ...}.
    #[arg(long)]
    json: bool,
    /// Print rates (per second) every SECONDS, until interrupted (or
    /// --count times).
    #[arg(long, value_name = "SECONDS")]
    watch: Option<f64>,
    /// With --watch: how many intervals.
    #[arg(long)]
    count: Option<u64>,
    /// Only this device (`dev<N>`).
    #[arg(long)]
    device: Option<String>,
}

/// One device's `state`: names in file order, values as text.
type State = Vec<(String, String)>;

/// Reads every device's state, by device name.
fn read_all(dir: &Path, only: Option<&str>) -> Result<BTreeMap<String, State>> {
    let mut devices = BTreeMap::new();
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "{} (is rvhost_net loaded and debugfs mounted? root needed)",
            dir.display()
        )
    })?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if only.is_some_and(|o| o != name) {
            continue;
        }
        // A device closed meanwhile has gone: skip it.
        let Ok(text) = std::fs::read_to_string(entry.path().join("state")) else {
            continue;
        };
        let state = text
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect();
        devices.insert(name, state);
    }
    Ok(devices)
}

fn as_json(devices: &BTreeMap<String, State>) -> serde_json::Value {
    let value = |v: &str| {
        v.parse::<u64>()
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| serde_json::Value::from(v))
    };
    devices
        .iter()
        .map(|(dev, state)| {
            let fields: serde_json::Map<_, _> =
                state.iter().map(|(k, v)| (k.clone(), value(v))).collect();
            (dev.clone(), serde_json::Value::Object(fields))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn print_table(devices: &BTreeMap<String, State>) {
    for (dev, state) in devices {
        println!("{dev}:");
        for (name, value) in state {
            println!("     {name}: {value}");
        }
    }
}

/// Counters that only grow (rates make sense for them).
fn is_counter(name: &str) -> bool {
    [
        "kicks",
        "interrupts",
        "interrupts_suppressed",
        "interrupts_held",
        "packets",
        "bytes",
        "rounds",
        "drops",
        "errors",
    ]
    .iter()
    .any(|c| name.ends_with(&format!(".{c}")))
}

fn watch(args: &Args, every: f64) -> Result<()> {
    ensure!(every > 0.0, "--watch needs a positive interval");
    let mut before = read_all(&args.dir, args.device.as_deref())?;
    let mut at = Instant::now();
    let mut n = 0;
    while args.count.is_none_or(|c| n < c) {
        std::thread::sleep(Duration::from_secs_f64(every));
        let now = read_all(&args.dir, args.device.as_deref())?;
        let secs = at.elapsed().as_secs_f64();
        at = Instant::now();
        for (dev, state) in &now {
            let old: BTreeMap<_, _> = before.get(dev).into_iter().flatten().cloned().collect();
            let rates: Vec<String> = state
                .iter()
                .filter(|(k, _)| is_counter(k))
                .filter_map(|(k, v)| {
                    let (new, old) = (v.parse::<u64>().ok()?, old.get(k)?.parse::<u64>().ok()?);
                    let rate = new.saturating_sub(old) as f64 / secs;
                    (rate > 0.0).then(|| format!("{k} {rate:.0}/s"))
                })
                .collect();
            if args.json {
                let fields: serde_json::Map<_, _> = rates
                    .iter()
                    .filter_map(|r| r.split_once(' '))
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            serde_json::Value::from(v.trim_end_matches("/s")),
                        )
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({ "device": dev, "seconds": secs, "rates": fields })
                );
            } else if rates.is_empty() {
                println!("{dev}: idle");
            } else {
                println!("{dev}: {}", rates.join(", "));
            }
        }
        before = now;
        n += 1;
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(every) = args.watch {
        return watch(&args, every);
    }
    let devices = read_all(&args.dir, args.device.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&as_json(&devices))?);
    } else if devices.is_empty() {
        println!("no rvhost-net device is open");
    } else {
        print_table(&devices);
    }
    Ok(())
}
