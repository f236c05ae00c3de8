//! Running the vCPU: the exit loop, rvmm's ports, exit accounting, and a
//! watchdog that ends a guest that does not finish.

use crate::interrupt_state;
use crate::kvm_stats::VcpuStats;
use crate::window::Sample;
use anyhow::{bail, Result};
use kvm_ioctls::{VcpuExit, VcpuFd};
use std::collections::BTreeMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

// The guest's console, exit, result and mark ports (what it reports through).
use rvmm_abi::{CONSOLE_PORT, EXIT_PORT, MARK_PORT, RESULT_PORT};

/// Devices on guest-physical MMIO addresses.
pub trait MmioBus {
    /// A guest read; `Ok(false)` if nothing is mapped at `addr`.
    fn read(&mut self, addr: u64, data: &mut [u8]) -> Result<bool>;
    /// A guest write; `Ok(false)` if nothing is mapped at `addr`.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<bool>;
    /// A guest port read; `Ok(false)` if no device has `port`.
    fn pio_read(&mut self, _port: u16, _data: &mut [u8]) -> Result<bool> {
        Ok(false)
    }
    /// A guest port write; `Ok(false)` if no device has `port`.
    fn pio_write(&mut self, _port: u16, _data: &[u8]) -> Result<bool> {
        Ok(false)
    }
    /// Something to say once the run is over (e.g. device statistics).
    fn summary(&mut self) -> Option<serde_json::Value> {
        None
    }
    /// A problem a device noticed on its own, if any (reported when the
    /// watchdog ends a run).
    fn fault(&self) -> Option<String> {
        None
    }
}

/// The little-endian value of an access's data (up to four bytes).
pub fn data_value(data: &[u8]) -> u32 {
    let mut bytes = [0u8; 4];
    let n = data.len().min(4);
    bytes[..n].copy_from_slice(&data[..n]);
    u32::from_le_bytes(bytes)
}

/// No MMIO devices.
pub struct NoDevices;

impl MmioBus for NoDevices {
    fn read(&mut self, _: u64, _: &mut [u8]) -> Result<bool> {
        Ok(false)
    }
    fn write(&mut self, _: u64, _: &[u8]) -> Result<bool> {
        Ok(false)
    }
}

/// The guest runs identity-mapped below 4 GiB: a RIP above cannot be its own.
const GUEST_ADDRESS_LIMIT: u64 = 1 << 32;

/// The watchdog found the vCPU at an address the guest cannot reach: its CPU
/// state was replaced below rvmm, in the virtualization stack. Under QEMU's
/// TCG emulating SVM for the test kernel's KVM this was seen with the RIP of
/// the host kernel's `__svm_vcpu_run` and the interrupted device vector left
/// in service (`Documentation/e1000.md`, "Known problem"). rvmm exits with
/// [`VcpuStateLost::EXIT_CODE`] so that a harness can tell it from a device
/// or guest failure.
#[derive(Debug, thiserror::Error)]
#[error("the guest's CPU state was lost below rvmm (RIP {rip:#x} is outside the guest's address space): {message}")]
pub struct VcpuStateLost {
    pub rip: u64,
    pub message: String,
}

impl VcpuStateLost {
    pub const EXIT_CODE: u8 = 4;
}

/// How a run ended and what it cost.
#[derive(Debug, Default)]
pub struct RunReport {
    /// The status the guest wrote to the exit port.
    pub status: u8,
    /// What the guest wrote to the console port.
    pub console: String,
    /// What the guest wrote to the result port, in order.
    pub results: Vec<u32>,
    /// The counters at each steady-state mark (the window's start and end).
    pub marks: Vec<Sample>,
    /// Exits to userspace, by reason.
    pub exits: BTreeMap<&'static str, u64>,
    /// Wall time of the run.
    pub seconds: f64,
}

/// A reason to end the run before the guest finishes, given by another
/// thread (the echo workload's far side, when an answer does not come):
/// the watchdog then stops the vCPU at once and the run fails with it.
#[derive(Clone, Debug, Default)]
pub struct RunAbort(Arc<OnceLock<String>>);

impl RunAbort {
    /// Ends the run with `reason` (the first reason given stands).
    pub fn abort(&self, reason: String) {
        let _ = self.0.set(reason);
    }

    pub fn reason(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// How often the watchdog looks whether the run was aborted.
const ABORT_CHECK: Duration = Duration::from_millis(50);

/// Stops a vCPU thread stuck in `KVM_RUN` after a deadline, or as soon as
/// the run is aborted: it signals the thread, whose `KVM_RUN` then returns
/// `EINTR`.
struct Watchdog {
    done: mpsc::Sender<()>,
}

impl Watchdog {
    fn arm(timeout: Duration, abort: RunAbort) -> Result<Self> {
        extern "C" fn ignore(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}
        register_signal_handler(SIGRTMIN(), ignore)?;
        // SAFETY: pthread_self has no preconditions.
        let vcpu_thread = unsafe { libc::pthread_self() };
        let (done, wait) = mpsc::channel();
        let deadline = Instant::now() + timeout;
        std::thread::spawn(move || {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || abort.reason().is_some() {
                    break;
                }
                if wait.recv_timeout(left.min(ABORT_CHECK)) != Err(RecvTimeoutError::Timeout) {
                    return;
                }
            }
            // Keep poking until the vCPU thread notices (it may be between runs).
            while wait.recv_timeout(Duration::from_millis(50)).is_err() {
                // SAFETY: signals a live thread of ours; the handler does nothing.
                if unsafe { libc::pthread_kill(vcpu_thread, SIGRTMIN()) } != 0 {
                    return;
                }
            }
        });
        Ok(Self { done })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.done.send(());
    }
}

/// Runs `vcpu` until the guest writes the exit port, fails, `timeout`
/// passes or the run is aborted; samples `stats` (and the threads' CPU
/// time) at each mark.
pub fn run(
    vcpu: &mut VcpuFd,
    bus: &mut dyn MmioBus,
    timeout: Duration,
    stats: &VcpuStats,
    abort: &RunAbort,
) -> Result<RunReport> {
    let start = Instant::now();
    let _watchdog = Watchdog::arm(timeout, abort.clone())?;
    let mut report = RunReport::default();
    let mut count = |reason| *report.exits.entry(reason).or_insert(0) += 1;
    let mut console = Vec::new();
    let mut results = Vec::new();
    let mut marks = Vec::new();
    let mut mark_words = Vec::with_capacity(3);
    let status = loop {
        match vcpu.run() {
            Ok(VcpuExit::IoOut(CONSOLE_PORT, data)) => {
                count("io_out");
                console.extend_from_slice(data);
            }
            Ok(VcpuExit::IoOut(RESULT_PORT, data)) => {
                count("io_out");
                results.push(data_value(data));
            }
            Ok(VcpuExit::IoOut(MARK_PORT, data)) => {
                count("io_out");
                mark_words.push(data_value(data));
                if let [kicks, interrupts, frames] = mark_words[..] {
                    marks.push(Sample::take(stats, [kicks, interrupts, frames])?);
                    mark_words.clear();
                }
            }
            Ok(VcpuExit::IoOut(EXIT_PORT, data)) => {
                count("io_out");
                break data.first().copied().unwrap_or(0);
            }
            Ok(VcpuExit::IoOut(port, data)) => {
                count("io_out");
                if !bus.pio_write(port, data)? {
                    bail!("guest wrote to unknown port {port:#x}");
                }
            }
            Ok(VcpuExit::IoIn(port, data)) => {
                count("io_in");
                if !bus.pio_read(port, data)? {
                    bail!("guest read from unknown port {port:#x}");
                }
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                count("mmio_read");
                if !bus.read(addr, data)? {
                    bail!("guest read unmapped MMIO at {addr:#x}");
                }
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                count("mmio_write");
                if !bus.write(addr, data)? {
                    bail!("guest wrote unmapped MMIO at {addr:#x}");
                }
            }
            Ok(VcpuExit::Hlt) => bail!("guest halted without writing the exit port"),
            Ok(VcpuExit::Shutdown) => bail!("guest triple-faulted (KVM_EXIT_SHUTDOWN)"),
            Ok(other) => bail!("unexpected exit: {other:?}"),
            Err(e) if e.errno() == libc::EINTR => {
                if let Some(reason) = abort.reason() {
                    bail!("{reason}");
                }
                if start.elapsed() >= timeout {
                    let why = bus.fault().map(|f| format!(" ({f})")).unwrap_or_default();
                    let vcpu_state = interrupt_state::describe_vcpu(vcpu);
                    let message = format!(
                        "watchdog: the guest did not finish within {} s{why} (vCPU: {vcpu_state})",
                        timeout.as_secs()
                    );
                    match vcpu.get_regs() {
                        Ok(regs) if regs.rip >= GUEST_ADDRESS_LIMIT => {
                            return Err(VcpuStateLost {
                                rip: regs.rip,
                                message,
                            }
                            .into())
                        }
                        _ => bail!(message),
                    }
                }
            }
            Err(e) => bail!("KVM_RUN: {e}"),
        }
    };
    report.status = status;
    report.console = String::from_utf8_lossy(&console).into_owned();
    report.results = results;
    report.marks = marks;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abort_signals_the_vcpu_thread_long_before_the_deadline() {
        let abort = RunAbort::default();
        let watchdog = Watchdog::arm(Duration::from_secs(60), abort.clone()).unwrap();
        let started = Instant::now();
        let aborter = {
            let abort = abort.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                abort.abort("the far side lost an answer".into());
            })
        };
        // Stands in for KVM_RUN: a sleep that the watchdog's signal ends
        // early, with EINTR.
        // SAFETY: sleep(3) has no preconditions.
        let left = unsafe { libc::sleep(30) };
        drop(watchdog);
        aborter.join().unwrap();
        assert!(left > 0, "the sleep was not interrupted");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(abort.reason(), Some("the far side lost an answer"));
        // The first reason stands.
        abort.abort("another".into());
        assert_eq!(abort.reason(), Some("the far side lost an answer"));
    }
}
