//! Differential ioctl probe: runs the same vhost call sequences against
//! `/dev/rvhost-net` and upstream `/dev/vhost-net` in the same boot and compares
//! return value and errno call by call.
//!
//! Each sequence runs on a freshly opened file of each device. Exit status 0
//! only if every call agreed.

use anyhow::{Context, Result};
use clap::Parser;
use std::fs::{File, OpenOptions};
use vhost::vhost_kern::vhost_binding::{
    vhost_memory, vhost_vring_file, vhost_vring_state, VHOST_GET_BACKEND_FEATURES,
    VHOST_GET_FEATURES, VHOST_GET_VRING_BASE, VHOST_NET_SET_BACKEND, VHOST_RESET_OWNER,
    VHOST_SET_BACKEND_FEATURES, VHOST_SET_FEATURES, VHOST_SET_MEM_TABLE, VHOST_SET_OWNER,
    VHOST_SET_VRING_KICK, VHOST_SET_VRING_NUM,
};
use vmm_sys_util::ioctl::{ioctl, ioctl_with_mut_ref, ioctl_with_ptr, ioctl_with_ref};

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
    let outcome = Call::GetFeatures.run(&dev);
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

/// An unknown request in the vhost range (`_IO(0xAF, 0x7f)`).
const UNKNOWN_VHOST_IO: u64 = 0xaf7f;
/// A request from another subsystem's range (`TCGETS`).
const FOREIGN_TCGETS: u64 = 0x5401;
const VIRTIO_F_VERSION_1: u64 = 1 << 32;
const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;

/// One ioctl of a probe sequence.
#[derive(Clone, Copy)]
enum Call {
    GetFeatures,
    GetFeaturesNull,
    SetFeatures(u64),
    SetFeaturesNull,
    GetBackendFeatures,
    SetBackendFeatures(u64),
    SetOwner,
    ResetOwner,
    SetMemTableEmpty,
    SetVringNum { index: u32, num: u32 },
    GetVringBase { index: u32 },
    SetVringKick { index: u32, fd: i32 },
    NetSetBackend { index: u32, fd: i32 },
    Unknown { request: u64, index: Option<u32> },
}

/// What a call returned: the return value or errno, plus any value read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Outcome {
    ret: i32,
    errno: i32,
    value: Option<u64>,
}

impl Call {
    fn name(self) -> String {
        match self {
            Call::GetFeatures => "GET_FEATURES".into(),
            Call::GetFeaturesNull => "GET_FEATURES(NULL)".into(),
            Call::SetFeatures(f) => format!("SET_FEATURES({f:#x})"),
            Call::SetFeaturesNull => "SET_FEATURES(NULL)".into(),
            Call::GetBackendFeatures => "GET_BACKEND_FEATURES".into(),
            Call::SetBackendFeatures(f) => format!("SET_BACKEND_FEATURES({f:#x})"),
            Call::SetOwner => "SET_OWNER".into(),
            Call::ResetOwner => "RESET_OWNER".into(),
            Call::SetMemTableEmpty => "SET_MEM_TABLE(0 regions)".into(),
            Call::SetVringNum { index, num } => format!("SET_VRING_NUM({index}, {num})"),
            Call::GetVringBase { index } => format!("GET_VRING_BASE({index})"),
            Call::SetVringKick { index, fd } => format!("SET_VRING_KICK({index}, fd {fd})"),
            Call::NetSetBackend { index, fd } => format!("NET_SET_BACKEND({index}, fd {fd})"),
            Call::Unknown {
                request,
                index: None,
            } => format!("ioctl {request:#x}(NULL)"),
            Call::Unknown {
                request,
                index: Some(i),
            } => format!("ioctl {request:#x}(&{i})"),
        }
    }

    fn run(self, dev: &File) -> Outcome {
        let mut value = None;
        let ret = match self {
            Call::GetFeatures | Call::GetBackendFeatures => {
                let mut bits = 0u64;
                let req = match self {
                    Call::GetFeatures => VHOST_GET_FEATURES(),
                    _ => VHOST_GET_BACKEND_FEATURES(),
                };
                // SAFETY: the request writes one u64 into `bits`.
                let ret = unsafe { ioctl_with_mut_ref(dev, req, &mut bits) };
                value = (ret == 0).then_some(bits);
                ret
            }
            // SAFETY: the kernel checks the NULL pointer; nothing of ours is written.
            Call::GetFeaturesNull => unsafe {
                ioctl_with_ptr(dev, VHOST_GET_FEATURES(), std::ptr::null_mut::<u64>())
            },
            // SAFETY: the request reads one u64.
            Call::SetFeatures(bits) => unsafe { ioctl_with_ref(dev, VHOST_SET_FEATURES(), &bits) },
            // SAFETY: the kernel checks the NULL pointer.
            Call::SetFeaturesNull => unsafe {
                ioctl_with_ptr(dev, VHOST_SET_FEATURES(), std::ptr::null::<u64>())
            },
            Call::SetBackendFeatures(bits) => {
                // SAFETY: the request reads one u64.
                unsafe { ioctl_with_ref(dev, VHOST_SET_BACKEND_FEATURES(), &bits) }
            }
            // SAFETY: no argument.
            Call::SetOwner => unsafe { ioctl(dev, VHOST_SET_OWNER()) },
            // SAFETY: no argument.
            Call::ResetOwner => unsafe { ioctl(dev, VHOST_RESET_OWNER()) },
            Call::SetMemTableEmpty => {
                let mem = vhost_memory::default();
                // SAFETY: the request reads the header (0 regions follow).
                unsafe { ioctl_with_ref(dev, VHOST_SET_MEM_TABLE(), &mem) }
            }
            Call::SetVringNum { index, num } => {
                let state = vhost_vring_state { index, num };
                // SAFETY: the request reads one vhost_vring_state.
                unsafe { ioctl_with_ref(dev, VHOST_SET_VRING_NUM(), &state) }
            }
            Call::GetVringBase { index } => {
                let mut state = vhost_vring_state { index, num: 0 };
                // SAFETY: the request reads and writes one vhost_vring_state.
                let ret = unsafe { ioctl_with_mut_ref(dev, VHOST_GET_VRING_BASE(), &mut state) };
                value = (ret == 0).then_some(state.num.into());
                ret
            }
            Call::SetVringKick { index, fd } => {
                let file = vhost_vring_file { index, fd };
                // SAFETY: the request reads one vhost_vring_file.
                unsafe { ioctl_with_ref(dev, VHOST_SET_VRING_KICK(), &file) }
            }
            Call::NetSetBackend { index, fd } => {
                let file = vhost_vring_file { index, fd };
                // SAFETY: the request reads one vhost_vring_file.
                unsafe { ioctl_with_ref(dev, VHOST_NET_SET_BACKEND(), &file) }
            }
            Call::Unknown { request, index } => match index {
                // SAFETY: an unknown request: the kernel only reads a u32 index, if anything.
                None => unsafe { ioctl_with_ptr(dev, request, std::ptr::null::<u32>()) },
                Some(i) => {
                    let mut buf = [i, 0, 0, 0];
                    // SAFETY: as above; 16 writable bytes cover any read of an index.
                    unsafe { ioctl_with_mut_ref(dev, request, &mut buf) }
                }
            },
        };
        let errno = if ret < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        };
        Outcome { ret, errno, value }
    }
}

/// A named call sequence; `in_child` runs it from a forked child (another mm)
/// after the parent's calls `setup`.
struct Probe {
    name: &'static str,
    setup: &'static [Call],
    calls: &'static [Call],
    in_child: bool,
}

const PROBES: &[Probe] = &[
    Probe {
        name: "before SET_OWNER only features pass",
        setup: &[],
        calls: &[
            Call::GetFeaturesNull,
            Call::SetFeaturesNull,
            Call::SetFeatures(0),
            Call::GetBackendFeatures,
            Call::SetMemTableEmpty,
            Call::SetVringNum { index: 0, num: 256 },
            Call::GetVringBase { index: 0 },
            Call::SetVringKick { index: 0, fd: -1 },
            Call::NetSetBackend { index: 0, fd: -1 },
            Call::ResetOwner,
            Call::Unknown {
                request: UNKNOWN_VHOST_IO,
                index: None,
            },
            Call::Unknown {
                request: UNKNOWN_VHOST_IO,
                index: Some(0),
            },
            Call::Unknown {
                request: FOREIGN_TCGETS,
                index: Some(0),
            },
        ],
        in_child: false,
    },
    Probe {
        name: "second SET_OWNER",
        setup: &[],
        calls: &[Call::SetOwner, Call::SetOwner],
        in_child: false,
    },
    Probe {
        name: "feature bits",
        setup: &[],
        calls: &[
            Call::SetFeatures(1 << 63),
            Call::SetFeatures(1 << 50),
            Call::SetFeatures(VIRTIO_F_VERSION_1 | VIRTIO_RING_F_EVENT_IDX),
            Call::SetBackendFeatures(1 << 5),
            Call::SetBackendFeatures(1 << 1),
            Call::SetBackendFeatures(0),
        ],
        in_child: false,
    },
    Probe {
        name: "unknown ioctls after SET_OWNER",
        setup: &[],
        calls: &[
            Call::SetOwner,
            Call::Unknown {
                request: UNKNOWN_VHOST_IO,
                index: None,
            },
            Call::Unknown {
                request: UNKNOWN_VHOST_IO,
                index: Some(0),
            },
            Call::Unknown {
                request: UNKNOWN_VHOST_IO,
                index: Some(1),
            },
            Call::Unknown {
                request: UNKNOWN_VHOST_IO,
                index: Some(2),
            },
            Call::Unknown {
                request: FOREIGN_TCGETS,
                index: None,
            },
            Call::Unknown {
                request: FOREIGN_TCGETS,
                index: Some(0),
            },
        ],
        in_child: false,
    },
    Probe {
        name: "RESET_OWNER then SET_OWNER again",
        setup: &[],
        calls: &[
            Call::SetOwner,
            Call::ResetOwner,
            Call::ResetOwner,
            Call::SetOwner,
        ],
        in_child: false,
    },
    Probe {
        name: "backend before rings are set",
        setup: &[],
        calls: &[
            Call::SetOwner,
            Call::NetSetBackend { index: 0, fd: -1 },
            Call::NetSetBackend { index: 1, fd: 0 },
            Call::NetSetBackend { index: 2, fd: -1 },
        ],
        in_child: false,
    },
    Probe {
        name: "another process (not the owner)",
        setup: &[Call::SetOwner],
        calls: &[
            Call::SetOwner,
            Call::ResetOwner,
            Call::SetMemTableEmpty,
            Call::NetSetBackend { index: 0, fd: -1 },
            Call::SetFeatures(0),
        ],
        in_child: true,
    },
];

/// Runs `calls` in a forked child and returns its outcomes through a pipe.
fn run_in_child(dev: &File, calls: &[Call]) -> Result<Vec<Outcome>> {
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
            let o = call.run(dev);
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
    for call in probe.setup {
        let o = call.run(&dev);
        anyhow::ensure!(
            o.ret == 0,
            "{path}: set-up call {} failed: errno {}",
            call.name(),
            o.errno
        );
    }
    if probe.in_child {
        run_in_child(&dev, probe.calls)
    } else {
        Ok(probe.calls.iter().map(|c| c.run(&dev)).collect())
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

    // Feature bits: reported side by side; they differ where rvhost does not
    // (yet) offer a feature, but rvhost must offer nothing upstream does not.
    let ours = run_probe(
        &args.device,
        &Probe {
            name: "",
            setup: &[],
            calls: &[Call::GetFeatures],
            in_child: false,
        },
    )?[0];
    let theirs = run_probe(
        &args.reference,
        &Probe {
            name: "",
            setup: &[],
            calls: &[Call::GetFeatures],
            in_child: false,
        },
    )?[0];
    let (ours_bits, theirs_bits) = (ours.value.unwrap_or(0), theirs.value.unwrap_or(0));
    println!(
        "GET_FEATURES: {} {ours_bits:#x}, {} {theirs_bits:#x}",
        args.device, args.reference
    );
    if ours.ret != 0 || theirs.ret != 0 || ours_bits & !theirs_bits != 0 {
        println!("  MISMATCH: rvhost must answer and offer a subset of upstream's features");
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
                "  {:<34} {:<28} {:<28} {}",
                call.name(),
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
