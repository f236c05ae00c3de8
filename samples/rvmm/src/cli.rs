//! rvmm's command line: what to run, over which NIC and data path. Bad
//! combinations are refused here, with clap's usage error, before anything
//! is set up.

use crate::e1000::Mitigation;
use clap::{error::ErrorKind, Args, CommandFactory, Parser, Subcommand};
use rvmm_abi::{echo, workload};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The most requests virtio-echo's far side keeps in flight: half the
/// guest's RX ring, so that requests never wait for a buffer.
pub const MAX_RR_DEPTH: i64 = 128;

#[derive(Parser)]
#[command(about = "A small KVM VMM for rvhost's experiments")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the guest program until it writes the exit port.
    Run(RunArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The guest: a static x86-64 ELF executable (samples/rvmm-guest).
    #[arg(long)]
    pub guest: PathBuf,
    /// Guest RAM in MiB.
    #[arg(long, default_value_t = 64)]
    pub mem_mib: usize,
    /// End the run (as a failure) after this many seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// What the guest runs.
    #[arg(long, value_enum, default_value = "hello")]
    pub workload: Workload,
    /// Offer a virtio-net device whose data path is this vhost-net
    /// device, with a tap backend in a network namespace of rvmm's own.
    #[arg(long, value_enum)]
    pub net: Option<NetBackend>,
    /// Traffic workloads: frames the guest sends, receives or (virtio-echo)
    /// answers: the round trips.
    #[arg(long, default_value_t = 100)]
    pub frames: u32,
    /// Traffic workloads: frame size in bytes.
    #[arg(long, default_value_t = 64)]
    pub size: u32,
    /// Traffic workloads: frames before the steady-state window, whose
    /// per-packet figures (`steady_state` in the JSON) leave out bring-up
    /// and the guest's report; 0: no window. virtio-echo: also the round
    /// trips left out of the latency figures.
    #[arg(long, default_value_t = 0)]
    pub warmup: u32,
    /// virtio-echo: requests the far side keeps in flight.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=MAX_RR_DEPTH))]
    pub rr_depth: u32,
    /// virtio-tx: the guest negotiates VIRTIO_RING_F_EVENT_IDX.
    #[arg(long)]
    pub event_idx: bool,
    /// virtio-tx: the guest sends each frame through an indirect table
    /// (VIRTIO_RING_F_INDIRECT_DESC).
    #[arg(long)]
    pub indirect: bool,
    /// virtio-rx, virtio-echo: the guest negotiates VIRTIO_NET_F_MRG_RXBUF.
    #[arg(long)]
    pub mrg_rxbuf: bool,
    /// --net rvhost: rvhost's interrupt coalescing of the RX queue
    /// (RVHOST_SET_VRING_COALESCE, virtio-net's NOTF_COAL semantics):
    /// PACKETS:USECS[:adaptive].
    #[arg(long, value_name = "PACKETS:USECS[:adaptive]", value_parser = nettest::parse_coalesce)]
    pub coalesce: Option<nettest::CoalesceSpec>,
    /// The guest polls used rings with interrupts off instead of
    /// sleeping until the device interrupts it.
    #[arg(long)]
    pub poll: bool,
    /// e1000: the mode of the seeds' table (the name results carry):
    /// baseline, coalesced (BAR0's side-effect-free registers in KVM's
    /// coalesced MMIO ring), mitigation (ITR/TADV/RADV as QEMU), or
    /// mitigation-batch (Rizzo's deferred handler), the last two optionally
    /// +coalesced and +tdt-deferral (the guest defers TDT writes while a TX
    /// interrupt is pending), e.g. mitigation+coalesced+tdt-deferral.
    #[arg(long, default_value = "baseline")]
    pub e1000_mode: E1000Mode,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl RunArgs {
    /// Refuses combinations that cannot run, as a usage error.
    pub fn check(&self) -> Result<(), clap::Error> {
        let conflict = |msg: &str| Err(Cli::command().error(ErrorKind::ArgumentConflict, msg));
        if self.workload.e1000() && self.net.is_some() {
            return conflict("the e1000 workloads bring their own NIC: drop --net");
        }
        if self.workload.virtio() && self.net.is_none() {
            return conflict("the virtio workloads need a data path: add --net");
        }
        if self.warmup >= self.frames && self.warmup != 0 {
            return conflict("--warmup must be below --frames (the window would be empty)");
        }
        if self.workload == Workload::VirtioEcho && (self.size as usize) < echo::MIN_FRAME {
            return conflict(&format!(
                "virtio-echo's frames carry a kind byte and a number: --size must be at least {}",
                echo::MIN_FRAME
            ));
        }
        Ok(())
    }
}

/// Guest workloads, handed over in the config page.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[repr(u32)]
pub enum Workload {
    /// Print a line and exit 0.
    Hello = workload::HELLO,
    /// Spin forever (tests the watchdog).
    Spin = workload::SPIN,
    /// Send frames through the virtio-net device (needs --net).
    VirtioTx = workload::VIRTIO_TX,
    /// Like virtio-tx, but put the TX ring outside guest RAM.
    VirtioBadRing = workload::VIRTIO_BAD_RING,
    /// Like virtio-tx, but point descriptors outside guest RAM.
    VirtioBadBuffer = workload::VIRTIO_BAD_BUFFER,
    /// Receive frames rvmm sends into the tap; the guest checks each.
    VirtioRx = workload::VIRTIO_RX,
    /// Answer each request rvmm's far side sends into the tap, on TX; rvmm
    /// times the round trips (latency).
    VirtioEcho = workload::VIRTIO_ECHO,
    /// Send frames through the e1000.
    E1000Tx = workload::E1000_TX,
    /// Receive frames through the e1000; the guest checks each.
    E1000Rx = workload::E1000_RX,
    /// Interleave coalesced and exiting e1000 register writes; rvmm checks
    /// that the device applied them in program order.
    E1000Order = workload::E1000_ORDER,
    /// Program the e1000 badly (TDLEN not a multiple of 128, TDT beyond
    /// the ring, a descriptor outside RAM), then send one good frame.
    E1000Bad = workload::E1000_BAD,
}

impl Workload {
    pub fn e1000(self) -> bool {
        matches!(
            self,
            Workload::E1000Tx | Workload::E1000Rx | Workload::E1000Order | Workload::E1000Bad
        )
    }

    pub fn virtio(self) -> bool {
        matches!(
            self,
            Workload::VirtioTx
                | Workload::VirtioBadRing
                | Workload::VirtioBadBuffer
                | Workload::VirtioRx
                | Workload::VirtioEcho
        )
    }

    /// Frames the guest sends that should arrive on the tap, if it sends.
    pub fn frames_sent(self, frames: u32) -> Option<u32> {
        match self {
            Workload::VirtioTx | Workload::E1000Tx => Some(frames),
            Workload::E1000Bad => Some(1),
            _ => None,
        }
    }
}

/// Which vhost-net device carries the virtio-net data path.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetBackend {
    /// `/dev/rvhost-net`.
    Rvhost,
    /// Upstream `/dev/vhost-net`.
    Vhost,
    /// rvmm's own userspace loop (the baseline).
    User,
}

impl NetBackend {
    pub fn name(self) -> &'static str {
        match self {
            NetBackend::Rvhost => "rvhost",
            NetBackend::Vhost => "vhost",
            NetBackend::User => "user",
        }
    }
}

/// An e1000 mode of the seeds' table: the device's interrupt mitigation,
/// KVM's coalesced MMIO for BAR0, the guest's TDT deferral.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E1000Mode {
    pub mitigation: Mitigation,
    pub coalesced: bool,
    pub tdt_deferral: bool,
}

impl FromStr for E1000Mode {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        let mut parts = name.split('+');
        let mut mode = match parts.next() {
            Some("baseline") => Self::with(Mitigation::Off, false),
            Some("coalesced") => Self::with(Mitigation::Off, true),
            Some("mitigation") => Self::with(Mitigation::Itr, false),
            Some("mitigation-batch") => Self::with(Mitigation::Batch, false),
            _ => return Err(format!("unknown e1000 mode {name:?}")),
        };
        for part in parts {
            match part {
                "coalesced" if mode.mitigation != Mitigation::Off && !mode.coalesced => {
                    mode.coalesced = true
                }
                "tdt-deferral" if !mode.tdt_deferral => mode.tdt_deferral = true,
                _ => return Err(format!("unknown e1000 mode {name:?}")),
            }
        }
        // One name per mode: the order is fixed, as results spell it.
        if mode.to_string() != name {
            return Err(format!("e1000 mode {name:?} is spelled {mode}"));
        }
        Ok(mode)
    }
}

impl E1000Mode {
    const fn with(mitigation: Mitigation, coalesced: bool) -> Self {
        Self {
            mitigation,
            coalesced,
            tdt_deferral: false,
        }
    }
}

impl fmt::Display for E1000Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = match (self.mitigation, self.coalesced) {
            (Mitigation::Off, false) => "baseline",
            (Mitigation::Off, true) => "coalesced",
            (Mitigation::Itr, _) => "mitigation",
            (Mitigation::Batch, _) => "mitigation-batch",
        };
        f.write_str(base)?;
        if self.coalesced && self.mitigation != Mitigation::Off {
            f.write_str("+coalesced")?;
        }
        if self.tdt_deferral {
            f.write_str("+tdt-deferral")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_of_the_table_round_trips() {
        for name in [
            "baseline",
            "coalesced",
            "mitigation",
            "mitigation+coalesced",
            "mitigation+coalesced+tdt-deferral",
            "mitigation-batch",
            "mitigation-batch+coalesced+tdt-deferral",
            "baseline+tdt-deferral",
        ] {
            let mode: E1000Mode = name.parse().unwrap();
            assert_eq!(mode.to_string(), name);
        }
        let mode: E1000Mode = "mitigation+coalesced+tdt-deferral".parse().unwrap();
        assert_eq!(
            mode,
            E1000Mode {
                mitigation: Mitigation::Itr,
                coalesced: true,
                tdt_deferral: true
            }
        );
    }

    #[test]
    fn unknown_or_misspelled_modes_are_refused() {
        for name in [
            "",
            "fast",
            "mitigation+turbo",
            "mitigation+tdt-deferral+coalesced",
            "coalesced+coalesced",
            "mitigation+coalesced+coalesced",
        ] {
            assert!(name.parse::<E1000Mode>().is_err(), "{name}");
        }
    }

    #[test]
    fn e1000_workloads_refuse_a_virtio_data_path() {
        let parse = |args: &[&str]| {
            let Command::Run(run) = Cli::try_parse_from(args).unwrap().command;
            run.check()
        };
        assert!(parse(&["rvmm", "run", "--guest", "g", "--workload", "e1000-tx"]).is_ok());
        let refused = parse(&[
            "rvmm",
            "run",
            "--guest",
            "g",
            "--workload",
            "e1000-tx",
            "--net",
            "rvhost",
        ]);
        assert_eq!(refused.unwrap_err().kind(), ErrorKind::ArgumentConflict);
        let refused = parse(&["rvmm", "run", "--guest", "g", "--workload", "virtio-tx"]);
        assert_eq!(refused.unwrap_err().kind(), ErrorKind::ArgumentConflict);
    }

    #[test]
    fn echo_frames_hold_a_kind_and_a_number_and_depth_is_bounded() {
        let echo = |extra: &[&str]| {
            let args = [
                "rvmm",
                "run",
                "--guest",
                "g",
                "--workload",
                "virtio-echo",
                "--net",
                "user",
            ];
            let Command::Run(run) = Cli::try_parse_from(args.iter().chain(extra))?.command;
            run.check()
        };
        assert!(echo(&[]).is_ok());
        let smallest = echo::MIN_FRAME.to_string();
        assert!(echo(&["--size", &smallest, "--rr-depth", "128"]).is_ok());
        let too_small = (echo::MIN_FRAME - 1).to_string();
        let refused = echo(&["--size", &too_small]).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ArgumentConflict);
        for depth in ["0", "129"] {
            let refused = echo(&["--rr-depth", depth]).unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::ValueValidation, "{depth}");
        }
    }
}
