//! A userspace "guest driver" for a vhost-net device: it keeps "guest memory"
//! in its own address space, builds split rings there, attaches a tap device
//! (in a network namespace of its own) and sends frames through the device's
//! TX queue, checking that each arrives on the tap byte for byte, in order.
//!
//! The same program runs against `/dev/rvhost-net` and upstream
//! `/dev/vhost-net`: passing against both is the ABI-compatibility check.

mod hostile;

pub use nettest::{
    backend_and_sniffer, check, frame, set_file, set_state, sniffer_drops, Backend, TUNSETSNDBUF,
};
mod rx;
mod stats;

use anyhow::{bail, ensure, Context as _, Result};
use clap::Parser;
use rvhost_logic::split_ring::{
    need_event, Desc, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_USED_F_NO_NOTIFY,
};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};
use vhost::vhost_kern::vhost_binding::{
    vhost_vring_addr, VHOST_NET_SET_BACKEND, VHOST_RESET_OWNER, VHOST_SET_FEATURES,
    VHOST_SET_MEM_TABLE, VHOST_SET_OWNER, VHOST_SET_VRING_ADDR, VHOST_SET_VRING_BASE,
    VHOST_SET_VRING_CALL, VHOST_SET_VRING_ERR, VHOST_SET_VRING_KICK, VHOST_SET_VRING_NUM,
};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::ioctl::{ioctl, ioctl_with_ptr, ioctl_with_ref};

const VIRTIO_F_VERSION_1: u64 = 1 << 32;
const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;
const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;
const VHOST_NET_F_VIRTIO_NET_HDR: u64 = 1 << 27;
/// The virtio-net header with VERSION_1 (the device strips it on TX).
pub const NET_HDR_LEN: usize = 12;

pub const MEM_SIZE: usize = 4 << 20;
pub const TX: u32 = 1;
pub const QUEUE_SIZE: u16 = 256;
pub const DESC_GPA: u64 = 0x1_0000;
pub const AVAIL_GPA: u64 = 0x1_1000;
pub const USED_GPA: u64 = 0x1_2000;
/// Indirect tables, 32 bytes per ring slot.
pub const INDIRECT_GPA: u64 = 0x1_4000;
pub const BUF_GPA: u64 = 0x2_0000;
pub const BUF_SIZE: u64 = 2048;

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
    /// Print the result as one JSON object (for scripts/bench-net).
    #[arg(long)]
    json: bool,
    /// Halfway through, with frames in flight, detach the backend or reset
    /// the owner, then stop: the device must survive it (teardown test).
    #[arg(long, value_enum)]
    disrupt: Option<Disrupt>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Disrupt {
    /// VHOST_NET_SET_BACKEND(-1).
    Detach,
    /// VHOST_RESET_OWNER.
    Reset,
}

/// Guest memory: an anonymous mapping; guest-physical 0 is its first byte.
pub struct GuestMemory {
    base: *mut u8,
}

impl GuestMemory {
    fn new() -> Result<Self> {
        // SAFETY: anonymous private mapping, unmapped in Drop.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MEM_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        ensure!(
            base != libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        Ok(Self { base: base.cast() })
    }

    pub fn uaddr(&self, gpa: u64) -> u64 {
        self.base as u64 + gpa
    }

    /// Writes guest memory. Volatile, so that the compiler keeps these
    /// stores before the index that publishes them (memory the device reads
    /// concurrently is not ordinary Rust memory).
    pub fn write(&self, gpa: u64, bytes: &[u8]) {
        assert!(gpa as usize + bytes.len() <= MEM_SIZE);
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: in bounds of our mapping (checked above).
            unsafe { std::ptr::write_volatile(self.base.add(gpa as usize + i), *b) };
        }
    }

    /// A volatile read of a byte the device may write.
    pub fn read_u8(&self, gpa: u64) -> u8 {
        assert!((gpa as usize) < MEM_SIZE);
        // SAFETY: in bounds of our mapping.
        unsafe { std::ptr::read_volatile(self.base.add(gpa as usize)) }
    }

    /// A volatile read of a little-endian u16 the device may write.
    pub fn read_u16(&self, gpa: u64) -> u16 {
        assert!(gpa as usize + 2 <= MEM_SIZE);
        // SAFETY: in bounds and 2-aligned by construction of the ring layout.
        u16::from_le(unsafe { std::ptr::read_volatile(self.base.add(gpa as usize).cast::<u16>()) })
    }

    pub fn write_u16(&self, gpa: u64, v: u16) {
        assert!(gpa as usize + 2 <= MEM_SIZE);
        // SAFETY: as above.
        unsafe { std::ptr::write_volatile(self.base.add(gpa as usize).cast::<u16>(), v.to_le()) };
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: our mapping.
        unsafe { libc::munmap(self.base.cast(), MEM_SIZE) };
    }
}

/// A device with its TX queue set up on guest memory of ours and attached to
/// a tap (in a network namespace of its own) that a packet socket watches.
pub struct TxRig {
    pub queue: u32,
    pub dev: File,
    pub mem: GuestMemory,
    pub kick: EventFd,
    pub call: EventFd,
    pub err: EventFd,
    /// The backend: a tap, or a packet socket on a veth.
    pub tap: OwnedFd,
    pub sniffer: OwnedFd,
}

impl TxRig {
    pub fn new(device: &str, event_idx: bool) -> Result<Self> {
        Self::for_queue(device, TX, event_idx, 0, Backend::Tap)
    }

    /// Sets up queue `queue` (0 = RX, 1 = TX) with `extra` feature bits.
    pub fn for_queue(
        device: &str,
        queue: u32,
        event_idx: bool,
        extra: u64,
        backend: Backend,
    ) -> Result<Self> {
        // A network namespace of our own: the tap is invisible to everything else.
        // SAFETY: plain unshare(2).
        let ret = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        check(ret, "unshare(CLONE_NEWNET)")?;
        let (tap, sniffer) = backend_and_sniffer(backend)?;
        let mem = GuestMemory::new()?;
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open(device)
            .with_context(|| device.to_string())?;
        let kick = EventFd::new(libc::EFD_NONBLOCK)?;
        let call = EventFd::new(libc::EFD_NONBLOCK)?;
        let err = EventFd::new(libc::EFD_NONBLOCK)?;

        // SAFETY: no argument.
        check(unsafe { ioctl(&dev, VHOST_SET_OWNER()) }, "SET_OWNER")?;
        let mut features = VIRTIO_F_VERSION_1 | VHOST_NET_F_VIRTIO_NET_HDR | extra;
        if event_idx {
            features |= VIRTIO_RING_F_EVENT_IDX;
        }
        // SAFETY: reads one u64.
        let ret = unsafe { ioctl_with_ref(&dev, VHOST_SET_FEATURES(), &features) };
        check(ret, "SET_FEATURES")?;
        let table: [u64; 5] = [1, 0, MEM_SIZE as u64, mem.uaddr(0), 0];
        // SAFETY: a vhost_memory header and one region.
        let ret = unsafe { ioctl_with_ptr(&dev, VHOST_SET_MEM_TABLE(), table.as_ptr()) };
        check(ret, "SET_MEM_TABLE")?;
        set_state(&dev, VHOST_SET_VRING_NUM(), queue, QUEUE_SIZE.into())?;
        set_state(&dev, VHOST_SET_VRING_BASE(), queue, 0)?;
        let addr = vhost_vring_addr {
            index: queue,
            flags: 0,
            desc_user_addr: mem.uaddr(DESC_GPA),
            used_user_addr: mem.uaddr(USED_GPA),
            avail_user_addr: mem.uaddr(AVAIL_GPA),
            log_guest_addr: 0,
        };
        // SAFETY: reads one vhost_vring_addr.
        let ret = unsafe { ioctl_with_ref(&dev, VHOST_SET_VRING_ADDR(), &addr) };
        check(ret, "SET_VRING_ADDR")?;
        set_file(&dev, VHOST_SET_VRING_KICK(), queue, kick.as_raw_fd())?;
        set_file(&dev, VHOST_SET_VRING_CALL(), queue, call.as_raw_fd())?;
        set_file(&dev, VHOST_SET_VRING_ERR(), queue, err.as_raw_fd())?;
        set_file(&dev, VHOST_NET_SET_BACKEND(), queue, tap.as_raw_fd())?;

        Ok(Self {
            queue,
            dev,
            mem,
            kick,
            call,
            err,
            tap,
            sniffer,
        })
    }

    /// Detaches the backend, moves the queue's base to `base`, re-attaches:
    /// how a VMM recovers a queue the device stopped on.
    pub fn rebase(&self, base: u16) -> Result<()> {
        set_file(&self.dev, VHOST_NET_SET_BACKEND(), self.queue, -1)?;
        set_state(&self.dev, VHOST_SET_VRING_BASE(), self.queue, base.into())?;
        set_file(
            &self.dev,
            VHOST_NET_SET_BACKEND(),
            self.queue,
            self.tap.as_raw_fd(),
        )
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.size >= 14 && args.size as u64 + NET_HDR_LEN as u64 <= BUF_SIZE,
        "bad --size"
    );
    if args.hostile {
        return hostile::run(&args.device);
    }
    if args.rx && args.oversize {
        return rx::oversize(&args.device);
    }
    if args.rx {
        return rx::run(&args);
    }
    let extra = if args.indirect {
        VIRTIO_RING_F_INDIRECT_DESC
    } else {
        0
    };
    let rig = TxRig::for_queue(&args.device, TX, args.event_idx, extra, args.backend)?;
    if let Some(sndbuf) = args.tap_sndbuf {
        // SAFETY: TUNSETSNDBUF reads one int.
        let ret = unsafe { ioctl_with_ref(&rig.tap, TUNSETSNDBUF(), &sndbuf) };
        check(ret, "TUNSETSNDBUF")?;
    }
    let TxRig {
        mem,
        kick,
        sniffer,
        dev,
        ..
    } = &rig;
    let used_event_gpa = AVAIL_GPA + 4 + 2 * u64::from(QUEUE_SIZE);
    let mut avail_idx: u16 = 0;
    let mut kicks = 0u32;
    let mut received = 0u32;
    let mut buf = vec![0u8; 4096];
    let start = Instant::now();
    for i in 0..args.frames {
        if let (Some(how), true) = (args.disrupt, i == args.frames / 2) {
            match how {
                Disrupt::Detach => set_file(dev, VHOST_NET_SET_BACKEND(), TX, -1)?,
                Disrupt::Reset => {
                    // SAFETY: no argument.
                    let ret = unsafe { ioctl(dev, VHOST_RESET_OWNER()) };
                    check(ret, "RESET_OWNER")?
                }
            }
            println!(
                "{}: {how:?} after {i} frames with frames in flight: survived",
                args.device
            );
            return Ok(());
        }
        // Keep at most a ring's worth in flight: wait for the device to catch up.
        let deadline = Instant::now() + Duration::from_secs(5);
        while avail_idx.wrapping_sub(mem.read_u16(USED_GPA + 2)) >= QUEUE_SIZE {
            ensure!(
                Instant::now() < deadline,
                "device stopped consuming at frame {i}: avail idx {avail_idx}, used idx {}, used flags {}, \
                 avail_event {}, error eventfd {}, {}",
                mem.read_u16(USED_GPA + 2),
                mem.read_u16(USED_GPA),
                mem.read_u16(USED_GPA + 4 + 8 * u64::from(QUEUE_SIZE)),
                if rig.err.read().is_ok() { "signalled" } else { "quiet" },
                stats::describe(stats::read(dev, TX), i)
            );
            std::thread::yield_now();
        }
        let slot = avail_idx % QUEUE_SIZE;
        let gpa = BUF_GPA + u64::from(slot) * BUF_SIZE;
        let f = frame(i, args.size);
        mem.write(gpa, &[0u8; NET_HDR_LEN]);
        mem.write(gpa + NET_HDR_LEN as u64, &f);
        let desc = if args.indirect {
            // An indirect table of two descriptors: the header, then the frame.
            let table = INDIRECT_GPA + 32 * u64::from(slot);
            let hdr = Desc {
                addr: gpa,
                len: NET_HDR_LEN as u32,
                flags: VRING_DESC_F_NEXT,
                next: 1,
            };
            let data = Desc {
                addr: gpa + NET_HDR_LEN as u64,
                len: f.len() as u32,
                flags: 0,
                next: 0,
            };
            mem.write(table, &hdr.to_le_bytes());
            mem.write(table + 16, &data.to_le_bytes());
            Desc {
                addr: table,
                len: 32,
                flags: VRING_DESC_F_INDIRECT,
                next: 0,
            }
        } else {
            Desc {
                addr: gpa,
                len: (NET_HDR_LEN + f.len()) as u32,
                flags: 0,
                next: 0,
            }
        };
        mem.write(DESC_GPA + 16 * u64::from(slot), &desc.to_le_bytes());
        mem.write_u16(AVAIL_GPA + 4 + 2 * u64::from(slot), slot);
        if args.event_idx {
            // Interrupts are not used: poll the used ring, never ask for one.
            mem.write_u16(used_event_gpa, avail_idx.wrapping_sub(1));
        }
        fence(Ordering::Release);
        let old = avail_idx;
        avail_idx = avail_idx.wrapping_add(1);
        mem.write_u16(AVAIL_GPA + 2, avail_idx);
        // Publishing avail.idx before reading avail_event needs a full barrier.
        fence(Ordering::SeqCst);
        if needs_kick(mem, args.event_idx, avail_idx, old) {
            kick.write(1)?;
            kicks += 1;
        }
        // Drain what arrived so far, checking order and content.
        loop {
            // SAFETY: receives into our buffer.
            let n = unsafe {
                libc::recv(
                    sniffer.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                break;
            }
            let want = frame(received, args.size);
            if buf[..n as usize] != want[..] {
                ensure!(
                    sniffer_drops(sniffer) == 0,
                    "the test's packet socket dropped frames (receive buffer)"
                );
                bail!(
                    "frame {received}: got {} bytes that differ from the {} sent",
                    n,
                    want.len()
                );
            }
            received += 1;
        }
    }
    while received < args.frames {
        // SAFETY: receives into our buffer (2 s timeout).
        let n = unsafe { libc::recv(sniffer.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        ensure!(
            n >= 0,
            "only {received} of {} frames arrived on the tap",
            args.frames
        );
        let want = frame(received, args.size);
        ensure!(buf[..n as usize] == want[..], "frame {received} differs");
        received += 1;
    }
    let device_stats = stats::read(dev, TX);
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
    report(&args, "tx", secs, kicks, interrupts(&rig.call));
    Ok(())
}

/// Guest interrupts the device raised: the call eventfd's counter (read and reset).
pub fn interrupts(call: &EventFd) -> u64 {
    call.read().unwrap_or(0)
}

/// With `--json`, one line describing the run.
pub fn report(args: &Args, direction: &str, secs: f64, kicks: u32, interrupts: u64) {
    if !args.json {
        return;
    }
    let frames = f64::from(args.frames);
    println!(
        "RVHOST-BENCH {{\"device\":\"{}\",\"direction\":\"{}\",\"size\":{},\"packets\":{},\"event_idx\":{},\"seconds\":{:.6},\"pps\":{:.1},\"kicks_per_packet\":{:.4},\"interrupts_per_packet\":{:.4}}}",
        args.device,
        direction,
        args.size,
        args.frames,
        args.event_idx,
        secs,
        frames / secs,
        f64::from(kicks) / frames,
        interrupts as f64 / frames
    );
}

/// Whether the driver must kick after publishing avail index `new` (from
/// `old`): with `EVENT_IDX`, when `avail_event` lies in between; otherwise
/// unless the device set `VRING_USED_F_NO_NOTIFY`.
pub fn needs_kick(mem: &GuestMemory, event_idx: bool, new: u16, old: u16) -> bool {
    if event_idx {
        need_event(
            mem.read_u16(USED_GPA + 4 + 8 * u64::from(QUEUE_SIZE)),
            new,
            old,
        )
    } else {
        mem.read_u16(USED_GPA) & VRING_USED_F_NO_NOTIFY == 0
    }
}
