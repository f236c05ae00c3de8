//! Differential ioctl probe: runs the same vhost call sequences against
//! `/dev/rvhost-net` and upstream `/dev/vhost-net` in the same boot and compares
//! return value and errno call by call.
//!
//! Each sequence runs on a freshly opened file of each device. Exit status 0
//! only if every call agreed.

mod calls;
mod context;
mod probes;

use anyhow::{Context as _, Result};
use calls::{Ioctl, Outcome};
use clap::Parser;
use context::Context;
use probes::{Probe, PROBES};
use std::fs::{File, OpenOptions};

#[derive(Parser)]
#[command(about = "Compare /dev/rvhost-net with upstream /dev/vhost-net, ioctl by ioctl")]
struct Args {
    /// The device under test.
    #[arg(long, default_value = "/dev/rvhost-net")]
    device: String,
    /// The reference device (upstream vhost_net.ko).
    #[arg(long, default_value = "/dev/vhost-net")]
    reference: String,
    /// Only show the feature bits each device offers (VHOST_GET_FEATURES), by name.
    #[arg(long)]
    features_only: bool,
}

/// Feature bits a vhost-net device may offer, by name.
const FEATURE_NAMES: &[(u32, &str)] = &[
    (15, "VIRTIO_NET_F_MRG_RXBUF"),
    (24, "VIRTIO_F_NOTIFY_ON_EMPTY"),
    (26, "VHOST_F_LOG_ALL"),
    (27, "VIRTIO_F_ANY_LAYOUT / VHOST_NET_F_VIRTIO_NET_HDR"),
    (28, "VIRTIO_RING_F_INDIRECT_DESC"),
    (29, "VIRTIO_RING_F_EVENT_IDX"),
    (32, "VIRTIO_F_VERSION_1"),
    (33, "VIRTIO_F_ACCESS_PLATFORM"),
    (40, "VIRTIO_F_RING_RESET"),
];

/// Prints the features `path` offers, one per line.
fn show_features(path: &str) -> Result<()> {
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {path}"))?;
    let outcome = Ioctl::GetFeatures.run(&dev, &Context::new()?);
    anyhow::ensure!(
        outcome.ret == 0,
        "{path}: VHOST_GET_FEATURES failed: {}",
        errno_name(outcome.errno)
    );
    let bits = outcome.value.unwrap_or(0);
    println!("{path}: VHOST_GET_FEATURES = {bits:#x}");
    for bit in 0..64 {
        if bits & (1 << bit) != 0 {
            let name = FEATURE_NAMES
                .iter()
                .find(|(b, _)| *b == bit)
                .map_or("(unnamed)", |(_, n)| n);
            println!("  bit {bit:2}  {name}");
        }
    }
    Ok(())
}

/// Runs `calls` in a forked child and returns its outcomes through a pipe.
fn run_in_child(dev: &File, ctx: &Context, calls: &[Ioctl]) -> Result<Vec<Outcome>> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe");
    }
    // SAFETY: the child only makes ioctls and writes to the pipe before _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    if pid == 0 {
        for call in calls {
            let o = call.run(dev, ctx);
            let rec = [
                o.ret as i64,
                o.errno as i64,
                o.value.map_or(-1, |v| v as i64),
            ];
            // SAFETY: writes 24 bytes from `rec` to the pipe.
            unsafe { libc::write(fds[1], rec.as_ptr().cast(), 24) };
        }
        // SAFETY: terminate the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(fds[1]) };
    let mut out = Vec::new();
    for _ in calls {
        let mut rec = [0i64; 3];
        // SAFETY: reads at most 24 bytes into `rec`.
        let n = unsafe { libc::read(fds[0], rec.as_mut_ptr().cast(), 24) };
        anyhow::ensure!(n == 24, "short read from probe child");
        out.push(Outcome {
            ret: rec[0] as i32,
            errno: rec[1] as i32,
            value: (rec[2] >= 0).then_some(rec[2] as u64),
        });
    }
    let mut status = 0;
    // SAFETY: reaping our own child; closing our read end.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
        libc::close(fds[0]);
    }
    Ok(out)
}

fn run_probe(path: &str, probe: &Probe) -> Result<Vec<Outcome>> {
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {path}"))?;
    let ctx = Context::new()?;
    for call in probe.setup {
        let o = call.run(&dev, &ctx);
        anyhow::ensure!(
            o.ret == 0,
            "{path}: set-up call {call:?} failed: {}",
            errno_name(o.errno)
        );
    }
    if probe.in_child {
        run_in_child(&dev, &ctx, probe.calls)
    } else {
        Ok(probe.calls.iter().map(|c| c.run(&dev, &ctx)).collect())
    }
}

fn describe(o: &Outcome) -> String {
    match (o.ret, o.value) {
        (0, Some(v)) => format!("0 (value {v:#x})"),
        (0, None) => "0".into(),
        _ => format!("{} {}", o.ret, errno_name(o.errno)),
    }
}

fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::EBADF => "EBADF",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::E2BIG => "E2BIG",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENOMEM => "ENOMEM",
        _ => return format!("errno {errno}"),
    };
    name.into()
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.features_only {
        show_features(&args.device)?;
        if std::path::Path::new(&args.reference).exists() {
            show_features(&args.reference)?;
        }
        return Ok(());
    }
    let mut agreed = 0;
    let mut differed = 0;

    // Feature bits: rvhost offers exactly upstream's set.
    let features = Probe {
        name: "",
        setup: &[],
        calls: &[Ioctl::GetFeatures],
        in_child: false,
    };
    let ours = run_probe(&args.device, &features)?[0];
    let theirs = run_probe(&args.reference, &features)?[0];
    let (ours_bits, theirs_bits) = (ours.value.unwrap_or(0), theirs.value.unwrap_or(0));
    println!(
        "GET_FEATURES: {} {ours_bits:#x}, {} {theirs_bits:#x}",
        args.device, args.reference
    );
    if ours.ret != 0 || theirs.ret != 0 || ours_bits != theirs_bits {
        println!("  MISMATCH: rvhost must answer and offer upstream's features");
        differed += 1;
    } else {
        agreed += 1;
    }

    for probe in PROBES {
        println!("probe: {}", probe.name);
        let ours = run_probe(&args.device, probe)?;
        let theirs = run_probe(&args.reference, probe)?;
        for ((call, o), t) in probe.calls.iter().zip(&ours).zip(&theirs) {
            let same = o == t;
            println!(
                "  {:<60} {:<22} {:<22} {}",
                format!("{call:?}"),
                describe(o),
                describe(t),
                if same { "same" } else { "DIFFERENT" }
            );
            if same {
                agreed += 1
            } else {
                differed += 1
            }
        }
    }
    println!("rvhost-probe: {agreed} passed, {differed} failed");
    anyhow::ensure!(
        differed == 0,
        "{differed} calls answered differently from upstream"
    );
    Ok(())
}
