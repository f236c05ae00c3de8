//! rvmm's e1000 on KVM: the device model (`crate::e1000`), its
//! configuration space a [`PciFunction`] (reached through `crate::pci`'s
//! bus in slot [`PCI_SLOT`]), its BAR0 registers
//! reached by MMIO exits and, when enabled, through KVM's coalesced MMIO
//! ring; its level-triggered INTx line driven with `KVM_IRQ_LINE`; an I/O
//! thread that moves frames from the tap into the RX ring and fires the
//! mitigation timers.
//!
//! Ordering: every path that touches the device (an exit of the vCPU
//! thread, the I/O thread's RX and timers) takes the device lock and first
//! drains the coalesced ring, so queued writes are applied before anything
//! that follows them in program order. A full ring makes KVM fall back to
//! an ordinary exit, which drains the ring before it is applied.

use crate::coalesced_ring::{CoalescedRing, QueuedWrite};
use crate::e1000::{Dma, Mitigation, RxOutcome, Wire, E1000};
use crate::interrupt_state;
use crate::memory::GuestRam;
use crate::pci::PciFunction;
use crate::vcpu::{data_value, MmioBus};
use anyhow::{Context, Result};
use kvm_ioctls::{IoEventAddress, VmFd};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::EventFd;

/// The IOAPIC pin (GSI) the card's INTA# is wired to; the "firmware"
/// (rvmm) writes it into the interrupt-line register.
pub const IRQ_GSI: u32 = 11;
/// Bus 0, device 3, function 0 (where QEMU puts its e1000 too).
pub const PCI_SLOT: u32 = 3;
/// The I/O thread's longest sleep while it holds a frame for a full RX
/// ring: the guest's RDT write may sit in the coalesced ring, unseen,
/// until someone drains it.
const HELD_FRAME_RETRY_NS: u64 = 1_000_000;
/// Its longest sleep otherwise: it wakes for the tap and the vCPU, so this
/// is only a backstop (and long enough that it does not drain the
/// coalesced ring behind the vCPU's back in the ordering test).
const IDLE_NS: u64 = 1_000_000_000;
/// At most this many writes are kept for `--trace-writes`.
const TRACE_LIMIT: usize = 100_000;

/// How the card is run.
#[derive(Clone, Copy)]
pub struct Options {
    pub mitigation: Mitigation,
    /// Register BAR0 (minus the registers with side effects) as coalesced.
    pub coalesced: bool,
    /// Record every register write as applied, for the ordering test.
    pub trace_writes: bool,
}

/// One register write as the device saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppliedWrite {
    pub offset: u64,
    pub value: u32,
    /// It came through the coalesced ring (not an exit).
    pub coalesced: bool,
}

struct GuestDma(GuestRam);

impl Dma for GuestDma {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        self.0.read_slice(buf, GuestAddress(gpa)).is_ok()
    }
    fn write(&self, gpa: u64, buf: &[u8]) -> bool {
        self.0.write_slice(buf, GuestAddress(gpa)).is_ok()
    }
}

/// The tap, as the device's wire.
struct TapWire {
    fd: RawFd,
    errors: u64,
}

impl Wire for TapWire {
    fn send(&mut self, frame: &[u8]) {
        // SAFETY: writes our buffer to the tap fd, which outlives the device.
        let n = unsafe { libc::write(self.fd, frame.as_ptr().cast(), frame.len()) };
        if n != frame.len() as isize {
            self.errors += 1;
        }
    }
}

/// Everything behind the device lock.
struct State {
    model: E1000,
    dma: GuestDma,
    wire: TapWire,
    ring: Option<CoalescedRing>,
    /// Coalesced zones registered with KVM now.
    zones: Vec<(u64, u64)>,
    /// The level last given to KVM.
    line: bool,
    trace: Option<Vec<AppliedWrite>>,
    /// A frame read from the tap while the RX ring was full.
    held: Option<Vec<u8>>,
    /// When the sleeping I/O thread means to wake up (ns); 0 while awake.
    io_wake_at: u64,
    /// Coalesced writes outside BAR0 (after the BAR moved): dropped.
    stray_writes: u64,
}

struct Shared {
    state: Mutex<State>,
    vm: Arc<VmFd>,
    /// Wakes the I/O thread (an earlier deadline, or room for a held frame).
    wake: EventFd,
    clock: Instant,
    coalesced: bool,
    stop: AtomicBool,
    /// Frames written into the RX ring so far (for whoever feeds the tap).
    delivered: Arc<AtomicU64>,
}

impl Shared {
    fn now(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Takes the device lock and applies what the coalesced ring holds.
    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("e1000 lock poisoned"))?;
        state.drain(self.now())?;
        Ok(state)
    }

    /// After any device call: the INTx line, the log, the I/O thread.
    fn settle(&self, state: &mut State) -> Result<()> {
        let level = state.model.irq_level();
        if level != state.line {
            self.vm
                .set_irq_line(IRQ_GSI, level)
                .context("KVM_IRQ_LINE")?;
            state.line = level;
        }
        while let Some(message) = state.model.take_log() {
            eprintln!("rvmm: {message}");
        }
        // An awake I/O thread (io_wake_at 0) looks at both before it sleeps.
        let sleeping_until = state.io_wake_at;
        let earlier = state
            .model
            .next_deadline()
            .is_some_and(|d| d < sleeping_until);
        let room = state.held.is_some() && state.model.can_receive();
        if sleeping_until != 0 && (earlier || room) {
            self.wake.write(1).context("waking the e1000 I/O thread")?;
        }
        Ok(())
    }
}

impl State {
    fn bar0(&mut self) -> Option<u64> {
        self.model.pci().bar0()
    }

    /// Applies the queued coalesced writes, oldest first.
    fn drain(&mut self, now: u64) -> Result<()> {
        let bar0 = self.bar0();
        let State {
            ring,
            model,
            dma,
            wire,
            trace,
            stray_writes,
            ..
        } = self;
        let Some(ring) = ring else { return Ok(()) };
        ring.drain(|w: QueuedWrite| {
            let Some(offset) = bar0.and_then(|b| w.addr.checked_sub(b)) else {
                *stray_writes += 1;
                return;
            };
            for (i, chunk) in w.data[..w.len].chunks_exact(4).enumerate() {
                let value = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
                let offset = offset + 4 * i as u64;
                model.mmio_write(offset, value, now, dma, wire);
                if let Some(t) = trace.as_mut().filter(|t| t.len() < TRACE_LIMIT) {
                    t.push(AppliedWrite {
                        offset,
                        value,
                        coalesced: true,
                    });
                }
            }
        })?;
        Ok(())
    }
}

/// The card as rvmm's vCPU loop sees it (configuration space, BAR0, BAR1).
pub struct E1000Device {
    shared: Arc<Shared>,
    io_thread: Option<JoinHandle<Result<()>>>,
    _tap: OwnedFd,
}

impl E1000Device {
    /// Creates the card on `tap`; `ring` is the vCPU's coalesced MMIO ring
    /// (needed when `options.coalesced`).
    pub fn new(
        vm: Arc<VmFd>,
        ram: &GuestRam,
        tap: OwnedFd,
        ring: Option<CoalescedRing>,
        options: Options,
    ) -> Result<Self> {
        anyhow::ensure!(
            ring.is_some() || !options.coalesced,
            "KVM has no coalesced MMIO (KVM_CAP_COALESCED_MMIO)"
        );
        // SAFETY: fcntl on the tap fd we own.
        let ret = unsafe { libc::fcntl(tap.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        nettest::check(ret, "fcntl(tap, O_NONBLOCK)")?;
        let mut model = E1000::new([0x02, 0, 0, 0, 0, 0x03], options.mitigation);
        // What firmware would do: route INTA# and say so in config space.
        model.pci().write(0x3c, IRQ_GSI);
        let state = State {
            model,
            dma: GuestDma(ram.clone()),
            wire: TapWire {
                fd: tap.as_raw_fd(),
                errors: 0,
            },
            ring: if options.coalesced { ring } else { None },
            zones: Vec::new(),
            line: false,
            trace: options.trace_writes.then(Vec::new),
            held: None,
            io_wake_at: 0,
            stray_writes: 0,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            vm,
            wake: EventFd::new(libc::EFD_NONBLOCK)?,
            clock: Instant::now(),
            coalesced: options.coalesced,
            stop: AtomicBool::new(false),
            delivered: Arc::new(AtomicU64::new(0)),
        });
        let io_shared = shared.clone();
        let tap_fd = tap.as_raw_fd();
        let io_thread = std::thread::Builder::new()
            .name("e1000-io".into())
            .spawn(move || io_loop(&io_shared, tap_fd))?;
        Ok(Self {
            shared,
            io_thread: Some(io_thread),
            _tap: tap,
        })
    }

    /// Frames delivered into the guest's RX ring so far.
    pub fn delivered(&self) -> Arc<AtomicU64> {
        self.shared.delivered.clone()
    }

    /// The register writes applied, in order (with `trace_writes`),
    /// after applying what is still queued in the coalesced ring.
    pub fn applied_writes(&self) -> Result<Vec<AppliedWrite>> {
        Ok(self.shared.lock()?.trace.clone().unwrap_or_default())
    }

    /// Keeps KVM's coalesced zones on BAR0 wherever the guest put it.
    fn place_zones(&self, state: &mut State) -> Result<()> {
        if !self.shared.coalesced {
            return Ok(());
        }
        let wanted = state.bar0().map(E1000::coalesced_zones).unwrap_or_default();
        if wanted == state.zones {
            return Ok(());
        }
        for (addr, size) in std::mem::take(&mut state.zones) {
            self.shared
                .vm
                .unregister_coalesced_mmio(IoEventAddress::Mmio(addr), size as u32)
                .context("KVM_UNREGISTER_COALESCED_MMIO")?;
        }
        for &(addr, size) in &wanted {
            self.shared
                .vm
                .register_coalesced_mmio(IoEventAddress::Mmio(addr), size as u32)
                .context("KVM_REGISTER_COALESCED_MMIO")?;
        }
        state.zones = wanted;
        Ok(())
    }

    fn bar0_offset(state: &mut State, addr: u64) -> Option<u64> {
        let base = state.bar0()?;
        (base..base + crate::e1000::BAR0_SIZE)
            .contains(&addr)
            .then(|| addr - base)
    }

    fn bar1_offset(state: &mut State, port: u16) -> Option<u64> {
        let base = state.model.pci().bar1()?;
        (base..base.saturating_add(crate::e1000::BAR1_SIZE as u16))
            .contains(&port)
            .then(|| u64::from(port - base))
    }
}

impl PciFunction for E1000Device {
    fn config_read(&mut self, offset: usize, size: usize) -> Result<u32> {
        let shared = self.shared.clone();
        let mut state = shared.lock()?;
        let value = state.model.pci().read_sized(offset, size);
        shared.settle(&mut state)?;
        Ok(value)
    }

    fn config_write(&mut self, offset: usize, size: usize, value: u32) -> Result<()> {
        let shared = self.shared.clone();
        let mut state = shared.lock()?;
        state.model.pci().write_sized(offset, size, value);
        // The BARs may have moved: the coalesced zones follow BAR0.
        self.place_zones(&mut state)?;
        shared.settle(&mut state)
    }
}

impl MmioBus for E1000Device {
    fn read(&mut self, addr: u64, data: &mut [u8]) -> Result<bool> {
        let shared = self.shared.clone();
        let mut state = shared.lock()?;
        let Some(offset) = Self::bar0_offset(&mut state, addr) else {
            return Ok(false);
        };
        // Registers are dwords; a narrower read takes its bytes of one.
        let value = state.model.mmio_read(offset & !3, shared.now());
        let bytes = value.to_le_bytes();
        let start = (offset & 3) as usize;
        for (i, b) in data.iter_mut().enumerate() {
            *b = bytes.get(start + i).copied().unwrap_or(0);
        }
        shared.settle(&mut state)?;
        Ok(true)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<bool> {
        let shared = self.shared.clone();
        let mut state = shared.lock()?;
        let Some(offset) = Self::bar0_offset(&mut state, addr) else {
            return Ok(false);
        };
        let now = shared.now();
        for (i, chunk) in data.chunks(4).enumerate() {
            let (offset, value) = (offset + 4 * i as u64, data_value(chunk));
            let State {
                model,
                dma,
                wire,
                trace,
                ..
            } = &mut *state;
            model.mmio_write(offset, value, now, dma, wire);
            if let Some(t) = trace.as_mut().filter(|t| t.len() < TRACE_LIMIT) {
                t.push(AppliedWrite {
                    offset,
                    value,
                    coalesced: false,
                });
            }
        }
        shared.settle(&mut state)?;
        Ok(true)
    }

    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> Result<bool> {
        let shared = self.shared.clone();
        let mut state = shared.lock()?;
        let Some(offset) = Self::bar1_offset(&mut state, port) else {
            return Ok(false);
        };
        let value = state.model.io_read(offset, shared.now());
        data.copy_from_slice(&value.to_le_bytes()[..data.len().min(4)]);
        shared.settle(&mut state)?;
        Ok(true)
    }

    fn pio_write(&mut self, port: u16, data: &[u8]) -> Result<bool> {
        let shared = self.shared.clone();
        let mut state = shared.lock()?;
        let Some(offset) = Self::bar1_offset(&mut state, port) else {
            return Ok(false);
        };
        let now = shared.now();
        let State {
            model, dma, wire, ..
        } = &mut *state;
        model.io_write(offset, data_value(data), now, dma, wire);
        shared.settle(&mut state)?;
        Ok(true)
    }

    fn fault(&self) -> Option<String> {
        let state = self.shared.state.lock().ok()?;
        Some(format!(
            "e1000 at {} ns: {}; INTx given to KVM {}; I/O thread sleeping until {}; {}",
            self.shared.now(),
            state.model.describe(),
            state.line,
            state.io_wake_at,
            interrupt_state::describe_ioapic_pin(&self.shared.vm, IRQ_GSI as usize)
        ))
    }

    fn summary(&mut self) -> Option<serde_json::Value> {
        let state = self.shared.lock().ok()?;
        let s = state.model.stats();
        Some(serde_json::json!({
            "tx_packets": s.tx_packets, "rx_packets": s.rx_packets,
            "rx_no_buffer": s.rx_no_buffer, "tx_dropped": s.tx_dropped, "rx_dropped": s.rx_dropped,
            "interrupts_raised": s.interrupts_raised, "tdt_writes": s.tdt_writes,
            "tdt_deferred": s.tdt_deferred, "rdt_writes": s.rdt_writes, "icr_reads": s.icr_reads,
            "register_reads": s.mmio_reads, "register_writes": s.mmio_writes,
            "itr_timer_fires": s.itr_timer_fires, "bh_runs": s.bh_runs,
            "bad_input_events": s.bad_input_events, "tap_write_errors": state.wire.errors,
            "stray_coalesced_writes": state.stray_writes,
        }))
    }
}

impl Drop for E1000Device {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = self.shared.wake.write(1);
        if let Some(t) = self.io_thread.take() {
            if let Ok(Err(e)) = t.join() {
                eprintln!("rvmm: e1000 I/O thread: {e:#}");
            }
        }
    }
}

/// Sleeps until the tap is readable (when `want_tap`), the wake eventfd
/// fires, or `timeout_ns` passes.
fn sleep(tap: RawFd, want_tap: bool, wake: &EventFd, timeout_ns: u64) {
    let mut fds = [
        libc::pollfd {
            fd: wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: tap,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let timeout = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    let n = if want_tap { 2 } else { 1 };
    // SAFETY: polls our own fds with a timeout; the array outlives the call.
    unsafe { libc::ppoll(fds.as_mut_ptr(), n, &timeout, std::ptr::null()) };
    let _ = wake.read();
}

/// Reads one frame from the (non-blocking) tap, if there is one.
fn read_frame(tap: RawFd, buf: &mut [u8]) -> Option<Vec<u8>> {
    // SAFETY: reads into our buffer from the tap fd.
    let n = unsafe { libc::read(tap, buf.as_mut_ptr().cast(), buf.len()) };
    (n > 0).then(|| buf[..n as usize].to_vec())
}

/// The I/O thread: tap → RX ring, and the device's timers.
fn io_loop(shared: &Shared, tap: RawFd) -> Result<()> {
    let mut buf = vec![0u8; 65536];
    while !shared.stop.load(Ordering::Acquire) {
        let (timeout, want_tap) = {
            let mut state = shared.lock()?;
            let now = shared.now();
            let mut timeout = if state.held.is_some() {
                HELD_FRAME_RETRY_NS
            } else {
                IDLE_NS
            };
            if let Some(deadline) = state.model.next_deadline() {
                timeout = timeout.min(deadline.saturating_sub(now));
            }
            state.io_wake_at = now + timeout;
            (timeout, state.held.is_none())
        };
        if timeout > 0 {
            sleep(tap, want_tap, &shared.wake, timeout);
        }
        let mut state = shared.lock()?;
        let now = shared.now();
        state.io_wake_at = 0;
        if state.model.next_deadline().is_some_and(|d| d <= now) {
            let State {
                model, dma, wire, ..
            } = &mut *state;
            model.on_timer(now, dma, wire);
        }
        // At most a ring's worth per pass, so the vCPU gets the lock too.
        for _ in 0..256 {
            let Some(frame) = state.held.take().or_else(|| read_frame(tap, &mut buf)) else {
                break;
            };
            let State { model, dma, .. } = &mut *state;
            match model.receive(&frame, now, dma) {
                RxOutcome::Delivered => {
                    shared.delivered.fetch_add(1, Ordering::Release);
                }
                RxOutcome::NoBuffer => {
                    state.held = Some(frame);
                    break;
                }
                RxOutcome::Dropped | RxOutcome::Filtered => {}
            }
        }
        shared.settle(&mut state)?;
    }
    Ok(())
}
