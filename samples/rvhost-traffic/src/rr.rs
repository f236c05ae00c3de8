//! Request/response latency through one device: the guest sends a request
//! (TX), a program on the tap's far side answers it at once, the answer comes
//! back (RX); the round trip is timed from publishing the request to seeing
//! the answer in the used ring. With `depth` > 1, that many requests are in
//! flight. The guest polls its rings (no interrupts), as a busy-polling
//! guest driver would: what is measured is the device's two paths. With
//! `interrupts`, the guest instead asks for an interrupt on its next answer
//! and sleeps on the RX call eventfd until it comes, as an interrupt-driven
//! driver does; that is where interrupt coalescing shows its cost.

use crate::rig::{set_busyloop_timeout, Duplex, Setup, RX, TX};
use crate::rx::{inject, RxRing};
use crate::tx::TxDriver;
use crate::{cpu, Backend, NET_HDR_LEN};
use anyhow::{ensure, Result};
use nettest::ETHERTYPE;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const REQUEST: u8 = b'Q';
const ANSWER: u8 = b'A';

/// A 64-byte frame: `kind` and `seq` after the Ethernet header.
fn message(kind: u8, seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 3]);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[14] = kind;
    f[15..19].copy_from_slice(&seq.to_le_bytes());
    f
}

/// The result of a latency run.
pub struct Latency {
    pub transactions: u32,
    pub per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub worker_ns_per_transaction: f64,
    /// Times the worker went to sleep per round trip (busy polling spares
    /// it some).
    pub worker_sleeps_per_transaction: f64,
}

/// How a latency run drives the device.
pub struct Options {
    /// Requests in flight at once.
    pub depth: u32,
    /// Untimed round trips first.
    pub warmup: u32,
    /// `VHOST_SET_VRING_BUSYLOOP_TIMEOUT` of both queues.
    pub busyloop_us: u32,
    /// Wait for the RX interrupt instead of polling the used ring.
    pub interrupts: bool,
    /// rvhost's interrupt coalescing of both queues, `(packets, usecs, flags)`.
    pub coalesce: Option<nettest::CoalesceSpec>,
}

/// `transactions` round trips as `options` say.
pub fn run(device: &str, transactions: u32, options: &Options) -> Result<Latency> {
    let Options {
        depth,
        warmup,
        busyloop_us,
        interrupts,
        coalesce,
    } = *options;
    ensure!((1..=128).contains(&depth), "depth 1..=128");
    let setup = Setup::new(true, 0, Backend::Tap);
    let rig = Duplex::new(device, setup)?;
    if busyloop_us != 0 {
        for queue in [RX, TX] {
            set_busyloop_timeout(&rig.dev, queue, busyloop_us)?;
        }
    }
    if let Some(spec) = coalesce {
        for index in [RX, TX] {
            nettest::set_vring_coalesce(&rig.dev, spec.for_queue(index))
                .map_err(|e| anyhow::anyhow!("RVHOST_SET_VRING_COALESCE on {device}: {e}"))?;
        }
    }
    let worker = cpu::worker_tid()?;
    let stop = AtomicBool::new(false);
    let total = warmup + transactions;
    let result = std::thread::scope(|s| -> Result<Latency> {
        let (sniffer, stop) = (&rig.sniffer, &stop);
        // The far side: every request answered at once.
        s.spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: receives into our buffer (the socket has a 2 s timeout).
                let n = unsafe {
                    libc::recv(sniffer.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                };
                if n >= 19 && buf[14] == REQUEST {
                    let seq = u32::from_le_bytes([buf[15], buf[16], buf[17], buf[18]]);
                    let _ = inject(sniffer, &message(ANSWER, seq));
                }
            }
        });
        let outcome = (|| {
            let mut rx = RxRing::new(&rig.mem, rig.rx_layout, &rig.rx_fds.kick, true, 2048);
            rx.queue.no_interrupts();
            rx.post_all()?;
            let mut tx = TxDriver::new(&rig.mem, rig.tx_layout, &rig.tx_fds.kick, true, false);
            rig.mem.write_u16(rig.tx_layout.used_event(), 0xffff);
            let mut sent_at = vec![Instant::now(); total as usize];
            let mut rtts = Vec::with_capacity(transactions as usize);
            let (mut sent, mut answered) = (0u32, 0u32);
            let mut start = None;
            let deadline = Instant::now() + Duration::from_secs(60 + u64::from(total) / 50);
            while answered < total {
                ensure!(Instant::now() < deadline, "no answer to request {answered}");
                if answered == warmup && start.is_none() {
                    start = Some(cpu::Snapshot::take(worker)?);
                }
                while sent < total && sent - answered < depth && tx.queue.in_flight() < 200 {
                    sent_at[sent as usize] = Instant::now();
                    tx.send(&[0u8; NET_HDR_LEN], &message(REQUEST, sent))?;
                    sent += 1;
                }
                let used = match rx.queue.poll_used() {
                    Some(used) => Some(used),
                    None if interrupts => {
                        rx.queue.interrupt_on_next();
                        std::sync::atomic::fence(Ordering::SeqCst);
                        // An answer published before used_event was written
                        // raised no interrupt: look once more before sleeping.
                        let used = rx.queue.poll_used();
                        if used.is_none() {
                            wait_for_interrupt(&rig.rx_fds.call)?;
                        }
                        used
                    }
                    None => {
                        std::hint::spin_loop();
                        None
                    }
                };
                let Some((id, len)) = used else {
                    continue;
                };
                let bytes = rx.read_buf(id, len);
                ensure!(
                    bytes.len() >= NET_HDR_LEN + 19 && bytes[NET_HDR_LEN + 14] == ANSWER,
                    "not an answer"
                );
                let b = &bytes[NET_HDR_LEN + 15..NET_HDR_LEN + 19];
                let seq = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                ensure!(
                    seq == answered,
                    "answer {seq} out of order (expected {answered})"
                );
                if seq >= warmup {
                    rtts.push(sent_at[seq as usize].elapsed().as_secs_f64() * 1e6);
                }
                answered += 1;
                rx.repost(&[(id, len)])?;
            }
            let Some(start) = start else {
                anyhow::bail!("no measured window");
            };
            let end = cpu::Snapshot::take(worker)?;
            let cost = cpu::Cost::between(start, end, transactions);
            rtts.sort_by(f64::total_cmp);
            let pct = |p: f64| rtts[((rtts.len() - 1) as f64 * p) as usize];
            Ok(Latency {
                transactions,
                per_second: f64::from(transactions) / cost.seconds,
                p50_us: pct(0.5),
                p99_us: pct(0.99),
                worker_ns_per_transaction: cost.worker_ns_per_packet,
                worker_sleeps_per_transaction: cost.worker_sleeps_per_packet,
            })
        })();
        stop.store(true, Ordering::Relaxed);
        outcome
    })?;
    Ok(result)
}

/// Sleeps until the call eventfd is signalled (at most 100 ms, after which
/// the caller looks at the ring again) and consumes the signal.
fn wait_for_interrupt(call: &vmm_sys_util::eventfd::EventFd) -> Result<()> {
    let mut fd = libc::pollfd {
        fd: call.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polls one pollfd of ours.
    let ret = unsafe { libc::poll(&mut fd, 1, 100) };
    ensure!(ret >= 0, "poll: {}", std::io::Error::last_os_error());
    // Non-blocking: EAGAIN when nothing came.
    let _ = call.read();
    Ok(())
}
