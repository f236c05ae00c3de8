//! A userspace "guest driver" for a vhost-net device: it keeps "guest memory"
//! in its own address space, builds split rings there, attaches a tap device
//! (in a network namespace of its own) and sends frames through the device's
//! TX queue, checking that each arrives on the tap byte for byte, in order.
//!
//! The same program runs against `/dev/rvhost-net` and upstream
//! `/dev/vhost-net`: passing against both is the ABI-compatibility check.

mod churn;
mod cpu;
mod dirty_log;
mod errors;
mod flood;
mod guest;
mod hog;
mod hostile;
mod iotlb;
mod rig;
mod ring_reset;
mod rr;
mod rx;
mod soak;
mod stats;
mod sweep;
mod tx;

pub use guest::{DriverQueue, GuestMemory, Layout, BUF_SIZE, MEM_SIZE, QUEUE_SIZE};
pub use nettest::{check, frame, set_file, sniffer_drops, Backend, TUNSETSNDBUF};
pub use rig::{Setup, TxRig, RX, TX};

use anyhow::{ensure, Result};
use clap::Parser;
use std::time::{Duration, Instant};
use tx::{Arrivals, TxDriver};
use vhost::vhost_kern::vhost_binding::{VHOST_NET_SET_BACKEND, VHOST_RESET_OWNER};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::ioctl::{ioctl, ioctl_with_ref};

/// The virtio-net header with VERSION_1 (the device strips it on TX).
pub const NET_HDR_LEN: usize = 12;
/// The ring layout of single-queue tests.
pub const L0: Layout = Layout::nth(0);
pub const DESC_GPA: u64 = L0.desc;
pub const AVAIL_GPA: u64 = L0.avail;
pub const USED_GPA: u64 = L0.used;
pub const BUF_GPA: u64 = L0.buf;

#[derive(Parser)]
#[command(about = "Send frames through a vhost-net device's TX queue into a tap and check them")]
pub struct Args {
    /// The vhost-net device.
    #[arg(long, default_value = "/dev/rvhost-net")]
    pub device: String,
    /// Frames to send.
    #[arg(long, default_value_t = 1000)]
    pub frames: u32,
    /// Frame size in bytes (Ethernet header included).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Negotiate VIRTIO_RING_F_EVENT_IDX.
    #[arg(long)]
    pub event_idx: bool,
    /// Instead of traffic, post malformed chains and check the device refuses
    /// each one (nothing consumed, error eventfd signalled) and recovers.
    #[arg(long)]
    hostile: bool,
    /// Receive instead: frames sent into the tap must land in the RX buffers.
    #[arg(long)]
    rx: bool,
    /// With --rx: negotiate VIRTIO_NET_F_MRG_RXBUF and post buffers of this
    /// many bytes, so that larger frames span several buffers.
    #[arg(long)]
    pub mergeable: Option<u32>,
    /// With --rx: frames arrive in bursts of this many while the guest has
    /// no buffers posted, then it posts buffers for all of them at once (a
    /// guest slower than the network: each round drains a full socket).
    #[arg(long, value_name = "FRAMES", value_parser = clap::value_parser!(u32).range(1..=256))]
    rx_burst: Option<u32>,
    /// With --rx: check that a frame larger than the posted buffers is
    /// dropped without writing past them.
    #[arg(long)]
    oversize: bool,
    /// Set the tap's send buffer (TUNSETSNDBUF); below INT_MAX it turns off
    /// upstream vhost-net's batched (XDP) transmit, for comparisons.
    #[arg(long)]
    tap_sndbuf: Option<i32>,
    /// TX: put each frame behind an indirect descriptor table (header and
    /// frame in two descriptors), negotiating VIRTIO_RING_F_INDIRECT_DESC.
    #[arg(long)]
    indirect: bool,
    /// The device's backend.
    #[arg(long, value_enum, default_value = "tap")]
    pub backend: Backend,
    /// Print the result as one JSON object (for the net suite of scripts/run).
    #[arg(long)]
    json: bool,
    /// Frames sent before the measured window starts (set-up and warm-up
    /// are then outside the figures --json reports).
    #[arg(long, default_value_t = 0)]
    warmup: u32,
    /// Halfway through, with frames in flight, detach the backend or reset
    /// the owner, then stop: the device must survive it (teardown test).
    #[arg(long, value_enum)]
    disrupt: Option<Disrupt>,
    /// The tap carries a virtio-net header of this many bytes (10: legacy
    /// device, 12: VERSION_1), as QEMU sets taps up; the device does not
    /// handle the header (`VHOST_NET_F_VIRTIO_NET_HDR` not acked).
    #[arg(long, value_parser = clap::value_parser!(i32).range(10..=12))]
    vnet_hdr: Option<i32>,
    /// Send (or with --rx, receive) one frame of every size in turn,
    /// checking each (RX: frames that cannot fit are dropped).
    #[arg(long, value_name = "FIRST..LAST[/STEP],...")]
    sweep: Option<String>,
    /// With --rx --sweep and no --mergeable: the RX buffer size.
    #[arg(long, default_value_t = 1024)]
    rx_buf: u32,
    /// Flood the tap while the guest's RX buffers fit nothing; ioctls and
    /// close must stay prompt (see --seconds, --max-ms).
    #[arg(long, value_enum)]
    flood: Option<flood::FloodRing>,
    /// Sustained TX with a CPU hog pinned beside the worker for this many
    /// seconds: the hog must get the CPU (see --max-ms).
    #[arg(long, value_name = "SECONDS")]
    hog: Option<u64>,
    /// Traffic both ways for this many seconds, every frame numbered: none
    /// lost, duplicated or reordered.
    #[arg(long, value_name = "SECONDS")]
    soak: Option<u64>,
    /// Error paths: failing requests leave the device as it was.
    #[arg(long)]
    error_paths: bool,
    /// Dirty logging (`VHOST_F_LOG_ALL`): traffic both ways must set exactly
    /// the bits of the pages the device wrote.
    #[arg(long)]
    dirty_log: bool,
    /// `VIRTIO_F_ACCESS_PLATFORM`: the test is the IOMMU, answering the
    /// device's IOTLB misses; the file's message ABI, traffic both ways,
    /// invalidation and mappings without the access the device needs.
    #[arg(long)]
    iotlb: bool,
    /// `VIRTIO_F_RING_RESET`: one queue reset onto a new ring while the
    /// other keeps running.
    #[arg(long)]
    ring_reset: bool,
    /// Backend swaps and owner resets mid-traffic, this many rounds.
    #[arg(long, value_name = "ROUNDS")]
    churn: Option<u32>,
    /// Request/response latency: this many round trips (a request out, the
    /// tap's far side answers, the answer in), timed; see --rr-depth, --warmup.
    #[arg(long, value_name = "TRANSACTIONS")]
    rr: Option<u32>,
    /// With --rr: requests in flight at once.
    #[arg(long, default_value_t = 1)]
    rr_depth: u32,
    /// With --rr: the device busy-polls each queue this many microseconds
    /// after it runs empty (VHOST_SET_VRING_BUSYLOOP_TIMEOUT, QEMU's poll-us).
    #[arg(long, default_value_t = 0, value_name = "MICROSECONDS")]
    busyloop_us: u32,
    /// With --rr: the guest sleeps until the RX interrupt (call eventfd)
    /// instead of polling its used ring.
    #[arg(long)]
    rr_interrupts: bool,
    /// With --rr: rvhost's interrupt coalescing of both queues
    /// (RVHOST_SET_VRING_COALESCE), PACKETS:USECS[:adaptive].
    #[arg(long, value_name = "PACKETS:USECS[:adaptive]", value_parser = nettest::parse_coalesce)]
    coalesce: Option<nettest::CoalesceSpec>,
    /// After a TX run, keep the device open this many seconds (so that
    /// another process can read its counters), saying so on stdout.
    #[arg(long, value_name = "SECONDS")]
    hold: Option<u64>,
    /// Length of --flood.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// --flood: longest ioctl or close allowed; --hog: longest the hog may
    /// wait for the CPU.
    #[arg(long, default_value_t = 1000)]
    max_ms: u64,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Disrupt {
    /// VHOST_NET_SET_BACKEND(-1).
    Detach,
    /// VHOST_RESET_OWNER.
    Reset,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.size >= 14 && args.size as u64 + NET_HDR_LEN as u64 <= BUF_SIZE,
        "bad --size"
    );
    let setup = Setup {
        vnet_hdr: args.vnet_hdr,
        ..Setup::new(
            args.event_idx,
            args.mergeable
                .map_or(0, |_| nettest::features::VIRTIO_NET_F_MRG_RXBUF),
            args.backend,
        )
    };
    if let Some(spec) = &args.sweep {
        let sizes = sweep::sizes(spec)?;
        return if args.rx {
            sweep::rx(
                &args.device,
                setup,
                args.mergeable.unwrap_or(args.rx_buf),
                &sizes,
            )
        } else {
            sweep::tx(&args.device, setup, &sizes)
        };
    }
    if let Some(ring) = args.flood {
        return flood::run(&args.device, ring, args.seconds, args.max_ms);
    }
    if let Some(seconds) = args.hog {
        return hog::run(&args.device, seconds, args.max_ms);
    }
    if let Some(seconds) = args.soak {
        return soak::run(&args.device, seconds, args.event_idx, args.vnet_hdr);
    }
    if args.error_paths {
        return errors::run(&args.device);
    }
    if let Some(transactions) = args.rr {
        let options = rr::Options {
            depth: args.rr_depth,
            warmup: args.warmup,
            busyloop_us: args.busyloop_us,
            interrupts: args.rr_interrupts,
            coalesce: args.coalesce,
        };
        let l = rr::run(&args.device, transactions, &options)?;
        let coalesce = args.coalesce.map_or("off".to_string(), |c| c.to_string());
        println!(
            "{}: {} request/response round trips, {} in flight, busy poll {} µs, {}, coalescing {coalesce}: {:.0}/s, p50 {:.1} µs, p99 {:.1} µs, worker {:.0} ns and {:.2} sleeps each",
            args.device, l.transactions, args.rr_depth, args.busyloop_us,
            if args.rr_interrupts { "interrupts" } else { "polling" }, l.per_second, l.p50_us,
            l.p99_us, l.worker_ns_per_transaction, l.worker_sleeps_per_transaction
        );
        if args.json {
            println!(
                "RVHOST-RR {{\"device\":\"{}\",\"depth\":{},\"busyloop_us\":{},\"interrupts\":{},\"coalesce\":\"{coalesce}\",\"transactions\":{},\"per_second\":{:.1},\"p50_us\":{:.2},\"p99_us\":{:.2},\"worker_ns_per_transaction\":{:.1},\"worker_sleeps_per_transaction\":{:.3}}}",
                args.device, args.rr_depth, args.busyloop_us, args.rr_interrupts, l.transactions, l.per_second,
                l.p50_us, l.p99_us, l.worker_ns_per_transaction, l.worker_sleeps_per_transaction
            );
        }
        return Ok(());
    }
    if args.ring_reset {
        return ring_reset::run(&args.device);
    }
    if args.dirty_log {
        return dirty_log::run(&args.device);
    }
    if args.iotlb {
        return iotlb::run(&args.device);
    }
    if let Some(rounds) = args.churn {
        return churn::run(&args.device, rounds);
    }
    if args.hostile {
        return hostile::run(&args.device);
    }
    if args.rx && args.oversize {
        return rx::oversize(&args.device);
    }
    if let (true, Some(burst)) = (args.rx, args.rx_burst) {
        return rx::bursts(&args, burst);
    }
    if args.rx {
        return rx::run(&args);
    }
    transmit(&args)
}

/// The TX run: `--frames` frames through the device, all checked.
fn transmit(args: &Args) -> Result<()> {
    let extra = if args.indirect {
        nettest::features::VIRTIO_RING_F_INDIRECT_DESC
    } else {
        0
    };
    let rig = TxRig::for_queue(&args.device, TX, args.event_idx, extra, args.backend)?;
    if let Some(sndbuf) = args.tap_sndbuf {
        // SAFETY: TUNSETSNDBUF reads one int.
        let ret = unsafe { ioctl_with_ref(&rig.tap, TUNSETSNDBUF(), &sndbuf) };
        check(ret, "TUNSETSNDBUF")?;
    }
    let mut tx = TxDriver::new(&rig.mem, L0, &rig.kick, args.event_idx, args.indirect);
    let mut arrivals = Arrivals::new(&rig.sniffer);
    let expected = |n| frame(n, args.size);
    let worker = cpu::worker_tid()?;
    let mut window = None;
    let start = Instant::now();
    for i in 0..args.frames {
        if i == args.warmup {
            window = Some(Window::open(worker, tx.queue.kicks, &rig.call)?);
        }
        if let (Some(how), true) = (args.disrupt, i == args.frames / 2) {
            match how {
                Disrupt::Detach => set_file(&rig.dev, VHOST_NET_SET_BACKEND(), TX, -1)?,
                Disrupt::Reset => {
                    // SAFETY: no argument.
                    let ret = unsafe { ioctl(&rig.dev, VHOST_RESET_OWNER()) };
                    check(ret, "RESET_OWNER")?
                }
            }
            println!(
                "{}: {how:?} after {i} frames with frames in flight: survived",
                args.device
            );
            return Ok(());
        }
        tx.wait_room(Duration::from_secs(5), || {
            format!(
                "device stopped consuming at frame {i}: avail idx {}, used idx {}, used flags {}, \
                 avail_event {}, error eventfd {}, {}",
                tx.queue.avail_idx(),
                tx.queue.used_idx(),
                rig.mem.read_u16(L0.used),
                rig.mem.read_u16(L0.avail_event()),
                if rig.err.read().is_ok() {
                    "signalled"
                } else {
                    "quiet"
                },
                stats::describe(stats::read(&rig.dev, TX), i)
            )
        })?;
        if args.event_idx {
            // Interrupts are not waited for: the used ring is polled.
            rig.mem
                .write_u16(L0.used_event(), tx.queue.avail_idx().wrapping_sub(1));
        }
        tx.send(&[0u8; NET_HDR_LEN], &expected(i))?;
        arrivals.take(false, expected)?;
    }
    arrivals.wait_for(args.frames, expected)?;
    let measured = window
        .map(|w| w.close(args, tx.queue.kicks, &rig.call))
        .transpose()?;
    let kicks = tx.queue.kicks;
    let device_stats = stats::read(&rig.dev, TX);
    // The device's own counts must agree with what was sent and kicked.
    stats::verify(device_stats, args.frames, Some(kicks))?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}: TX {} frames of {} B (event_idx {}): all arrived in order, byte for byte; {:.0} pps, {} kicks ({:.3}/frame)",
        args.device,
        args.frames,
        args.size,
        args.event_idx,
        f64::from(args.frames) / secs,
        kicks,
        f64::from(kicks) / f64::from(args.frames)
    );
    println!("  {}", stats::describe(device_stats, args.frames));
    report(args, "tx", measured);
    if let Some(seconds) = args.hold {
        println!("RVHOST-HOLD: device open for {seconds} s more");
        std::thread::sleep(Duration::from_secs(seconds));
    }
    Ok(())
}

/// Guest interrupts the device raised: the call eventfd's counter (read and reset).
pub fn interrupts(call: &EventFd) -> u64 {
    call.read().unwrap_or(0)
}

/// The measured part of a run (after `--warmup` frames): counters and CPU
/// time at its start.
pub struct Window {
    worker: i32,
    kicks: u32,
    cpu: cpu::Snapshot,
}

/// What the measured window of a run gave.
pub struct Measured {
    packets: u32,
    cost: cpu::Cost,
    kicks: u32,
    interrupts: u64,
}

impl Window {
    /// Opens the window: the call eventfd's count is read (and so reset).
    pub fn open(worker: i32, kicks: u32, call: &EventFd) -> Result<Self> {
        let _ = interrupts(call);
        Ok(Self {
            worker,
            kicks,
            cpu: cpu::Snapshot::take(worker)?,
        })
    }

    /// Closes it after the last frame of the run.
    pub fn close(self, args: &Args, kicks: u32, call: &EventFd) -> Result<Measured> {
        let packets = args.frames - args.warmup;
        Ok(Measured {
            packets,
            cost: cpu::Cost::between(self.cpu, cpu::Snapshot::take(self.worker)?, packets),
            kicks: kicks - self.kicks,
            interrupts: interrupts(call),
        })
    }
}

/// With `--json`, one line describing the run's measured window.
pub fn report(args: &Args, direction: &str, measured: Option<Measured>) {
    let (true, Some(m)) = (args.json, measured) else {
        return;
    };
    let packets = f64::from(m.packets.max(1));
    println!(
        "RVHOST-BENCH {{\"device\":\"{}\",\"direction\":\"{}\",\"size\":{},\"packets\":{},\"warmup\":{},\"event_idx\":{},\"seconds\":{:.6},\"pps\":{:.1},\"kicks_per_packet\":{:.4},\"interrupts_per_packet\":{:.4},\"worker_ns_per_packet\":{:.1},\"driver_ns_per_packet\":{:.1}}}",
        args.device,
        direction,
        args.size,
        m.packets,
        args.warmup,
        args.event_idx,
        m.cost.seconds,
        packets / m.cost.seconds,
        f64::from(m.kicks) / packets,
        m.interrupts as f64 / packets,
        m.cost.worker_ns_per_packet,
        m.cost.driver_ns_per_packet,
    );
}
