//! Soak: traffic both ways through one device for a long time, every frame
//! carrying its direction and a sequence number, and frame sizes moving
//! across buffer boundaries. On the device path nothing may be lost,
//! duplicated or reordered: TX frames arrive on the tap in the order sent,
//! RX frames land in the guest's buffers in the order injected. The guest
//! keeps its RX buffers posted and the injector never has more than a
//! window in flight, so there is no legitimate reason to drop.

use crate::rig::{Duplex, Setup, RX, TX};
use crate::rx::{try_inject, RxRing};
use crate::tx::TxDriver;
use crate::{stats, Backend};
use anyhow::{bail, ensure, Result};
use nettest::features::VIRTIO_NET_F_MRG_RXBUF;
use nettest::ETHERTYPE;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most RX frames injected and not yet seen by the guest.
const RX_WINDOW: u32 = 128;
/// Size of the mergeable RX buffers: frames cross one or more of them.
const RX_BUF: u32 = 512;

const DIR_TX: u8 = b'T';
const DIR_RX: u8 = b'R';

/// Frame `seq` of direction `dir`: broadcast, our EtherType, then the
/// direction, the sequence number and a pattern; 60 to 1514 bytes.
pub fn soak_frame(dir: u8, seq: u32) -> Vec<u8> {
    let size = 60 + (seq as usize * 37) % (1514 - 60 + 1);
    let mut f = vec![0u8; size];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[14] = dir;
    f[15..19].copy_from_slice(&seq.to_le_bytes());
    for (j, b) in f[19..].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(13).wrapping_add(j) as u8;
    }
    f
}

/// Checks frames of one direction arriving in order.
#[derive(Default, Debug)]
struct SeqCheck {
    next: u32,
    received: u32,
    lost: u32,
    duplicated_or_reordered: u32,
    corrupt: u32,
}

impl SeqCheck {
    fn see(&mut self, dir: u8, bytes: &[u8]) {
        let seq = match bytes.get(14..19) {
            Some([d, a, b, c, e]) if *d == dir => u32::from_le_bytes([*a, *b, *c, *e]),
            _ => {
                self.corrupt += 1;
                return;
            }
        };
        if bytes != soak_frame(dir, seq) {
            self.corrupt += 1;
        }
        self.received += 1;
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            self.lost += seq - self.next;
            self.next = seq + 1;
        } else {
            self.duplicated_or_reordered += 1;
        }
    }

    fn clean(&self) -> bool {
        self.lost == 0 && self.duplicated_or_reordered == 0 && self.corrupt == 0
    }
}

/// Runs traffic both ways for `seconds`.
pub fn run(device: &str, seconds: u64, event_idx: bool, vnet_hdr: Option<i32>) -> Result<()> {
    let setup = Setup {
        vnet_hdr,
        ..Setup::new(event_idx, VIRTIO_NET_F_MRG_RXBUF, Backend::Tap)
    };
    let hdr = setup.net_hdr_len();
    let rig = Duplex::new(device, setup)?;

    let stop = AtomicBool::new(false);
    // Set once the injector has stopped: no RX frame comes after it.
    let injected_all = AtomicBool::new(false);
    let rx_injected = AtomicU32::new(0);
    let rx_seen = AtomicU32::new(0);
    let tx_check = Mutex::new(SeqCheck::default());
    let mut tx_sent = 0u32;
    let mut rx_check = SeqCheck::default();
    let started = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let (stop, injected_all) = (&stop, &injected_all);
        let (rx_injected, rx_seen, tx_check) = (&rx_injected, &rx_seen, &tx_check);
        let sniffer = &rig.sniffer;
        // The far side of the tap: injects RX frames, checks TX frames.
        let far = s.spawn(move || -> Result<()> {
            let mut buf = vec![0u8; 4096];
            let mut seq = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if seq.wrapping_sub(rx_seen.load(Ordering::Acquire)) < RX_WINDOW {
                    let f = soak_frame(DIR_RX, seq);
                    if try_inject(sniffer, &f) {
                        seq += 1;
                        rx_injected.store(seq, Ordering::Release);
                    }
                }
                loop {
                    // SAFETY: receives into our buffer without waiting.
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
                    tx_check.lock().unwrap().see(DIR_TX, &buf[..n as usize]);
                }
                std::thread::yield_now();
            }
            Ok(())
        });
        // The guest's RX side.
        let mem = &rig.mem;
        let rx_kick = &rig.rx_fds.kick;
        let guest_rx = s.spawn(move || -> Result<SeqCheck> {
            let mut ring = RxRing::new(mem, rig.rx_layout, rx_kick, event_idx, RX_BUF);
            ring.queue.no_interrupts();
            ring.post_all()?;
            let mut check = SeqCheck::default();
            loop {
                let seen = rx_seen.load(Ordering::Relaxed);
                if seen >= rx_injected.load(Ordering::Acquire) {
                    if injected_all.load(Ordering::Acquire)
                        && seen >= rx_injected.load(Ordering::Acquire)
                    {
                        return Ok(check);
                    }
                    std::thread::yield_now();
                    continue;
                }
                // A frame was injected: it must land (buffers are posted).
                let (bufs, bytes) = ring.next_packet(true)?;
                ensure!(bytes.len() >= hdr, "RX buffer shorter than the header");
                check.see(DIR_RX, &bytes[hdr..]);
                rx_seen.fetch_add(1, Ordering::Release);
                ring.repost(&bufs)?;
            }
        });
        // The guest's TX side (this thread).
        let mut tx = TxDriver::new(mem, rig.tx_layout, &rig.tx_fds.kick, event_idx, false);
        let end = started + Duration::from_secs(seconds);
        let result = (|| {
            while Instant::now() < end {
                tx.wait_room(Duration::from_secs(10), || {
                    format!(
                        "TX stopped after {tx_sent} frames: {}",
                        stats::describe(stats::read(&rig.dev, TX), tx_sent)
                    )
                })?;
                if event_idx {
                    mem.write_u16(
                        rig.tx_layout.used_event(),
                        tx.queue.avail_idx().wrapping_sub(1),
                    );
                }
                tx.send(&vec![0u8; hdr], &soak_frame(DIR_TX, tx_sent))?;
                tx_sent += 1;
            }
            // Everything sent must be used, and arrive.
            tx.wait_room(Duration::from_secs(10), String::new)?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while tx.queue.in_flight() > 0 || tx_check.lock().unwrap().received < tx_sent {
                if Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok::<_, anyhow::Error>(())
        })();
        stop.store(true, Ordering::Relaxed);
        let far_result = far.join().unwrap_or_else(|_| bail!("far side panicked"));
        injected_all.store(true, Ordering::Release);
        rx_check = guest_rx
            .join()
            .unwrap_or_else(|_| bail!("guest RX panicked"))?;
        result.and(far_result)
    })?;
    let tx_check = tx_check.into_inner().unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{device}: soak {seconds} s both ways (event_idx {event_idx}, header {hdr} B {}): \
         TX {tx_sent} sent, {} received, {} lost, {} duplicated/reordered, {} corrupt; \
         RX {} injected, {} received, {} lost, {} duplicated/reordered, {} corrupt ({:.0} frames/s)",
        if vnet_hdr.is_some() { "on the tap" } else { "by the device" },
        tx_check.received,
        tx_check.lost + tx_sent.saturating_sub(tx_check.next),
        tx_check.duplicated_or_reordered,
        tx_check.corrupt,
        rx_injected.load(Ordering::Relaxed),
        rx_check.received,
        rx_check.lost,
        rx_check.duplicated_or_reordered,
        rx_check.corrupt,
        f64::from(tx_sent + rx_check.received) / secs,
    );
    println!(
        "  TX {}",
        stats::describe(stats::read(&rig.dev, TX), tx_sent)
    );
    println!(
        "  RX {}",
        stats::describe(stats::read(&rig.dev, RX), rx_check.received)
    );
    ensure!(
        tx_check.clean() && tx_check.received == tx_sent,
        "TX frames lost, duplicated, reordered or corrupt"
    );
    ensure!(
        rx_check.clean() && rx_check.received == rx_injected.load(Ordering::Relaxed),
        "RX frames lost, duplicated, reordered or corrupt"
    );
    for (queue, name) in [(TX, "TX"), (RX, "RX")] {
        if let Some(st) = stats::read(&rig.dev, queue) {
            ensure!(
                st.drops == 0 && st.errors == 0,
                "{name}: device counted drops or errors: {st:?}"
            );
        }
    }
    Ok(())
}
