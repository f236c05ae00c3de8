//! `VIRTIO_F_RING_RESET`: the guest resets one queue while the other keeps
//! running. For a vhost device the VMM does it as QEMU does: detach the
//! queue's backend, read its base, program a fresh ring (new addresses, base
//! 0), re-attach. TX must go on undisturbed while RX is reset, and RX must
//! work on its new ring; then the same the other way round.

use crate::guest::Layout;
use crate::rig::{Duplex, Setup, RX, TX};
use crate::rx::{inject, RxRing};
use crate::tx::{Arrivals, TxDriver};
use crate::{frame, Backend, NET_HDR_LEN};
use anyhow::{ensure, Result};
use nettest::features::VIRTIO_F_RING_RESET;
use nettest::{check, set_file};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use vhost::vhost_kern::vhost_binding::{
    vhost_vring_state, VHOST_GET_VRING_BASE, VHOST_NET_SET_BACKEND,
};
use vmm_sys_util::ioctl::ioctl_with_mut_ref;

/// Resets queue `queue` onto `layout` (zeroed first) as a VMM does.
fn reset_queue(rig: &Duplex, queue: u32, layout: Layout) -> Result<()> {
    set_file(&rig.dev, VHOST_NET_SET_BACKEND(), queue, -1)?;
    let mut state = vhost_vring_state {
        index: queue,
        num: 0,
    };
    // SAFETY: reads and writes one vhost_vring_state.
    let ret = unsafe { ioctl_with_mut_ref(&rig.dev, VHOST_GET_VRING_BASE(), &mut state) };
    check(ret, "GET_VRING_BASE")?;
    rig.mem.write(layout.desc, &[0u8; 0x4000]);
    rig.setup_queue(queue, layout)
}

pub fn run(device: &str) -> Result<()> {
    let rig = Duplex::new(device, Setup::new(true, VIRTIO_F_RING_RESET, Backend::Tap))?;
    let (mem, sniffer) = (&rig.mem, &rig.sniffer);
    // RX on its first ring.
    let mut rx = RxRing::new(mem, Layout::nth(0), &rig.rx_fds.kick, true, 2048);
    rx.queue.no_interrupts();
    rx.post_all()?;
    inject(sniffer, &frame(0, 100))?;
    rx.next_packet(false)?;
    // TX keeps sending (checked on the tap, in order) while RX is reset.
    let stop = AtomicBool::new(false);
    let sent = std::thread::scope(|s| -> Result<u32> {
        let (tx_kick, stop) = (&rig.tx_fds.kick, &stop);
        let sender = s.spawn(move || -> Result<u32> {
            let mut tx = TxDriver::new(mem, Layout::nth(1), tx_kick, true, false);
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) || sent < 200 {
                tx.wait_room(Duration::from_secs(5), || format!("TX stopped at {sent}"))?;
                tx.send(&[0u8; NET_HDR_LEN], &frame(sent, 64))?;
                sent += 1;
            }
            Ok(sent)
        });
        std::thread::sleep(Duration::from_millis(50));
        reset_queue(&rig, RX, Layout::nth(2))?;
        std::thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
        sender
            .join()
            .map_err(|_| anyhow::anyhow!("TX sender panicked"))?
    })?;
    // The TX frames arrived in order (the RX frames injected later are not
    // seen by the sniffer: it does not receive its own sends).
    Arrivals::new(sniffer).wait_for(sent, |n| frame(n, 64))?;
    // RX on its new ring.
    let mut rx = RxRing::new(mem, Layout::nth(2), &rig.rx_fds.kick, true, 2048);
    rx.queue.no_interrupts();
    rx.post_all()?;
    for i in 1..20 {
        inject(sniffer, &frame(i, 500))?;
        let (bufs, got) = rx.next_packet(false)?;
        ensure!(
            got[NET_HDR_LEN..] == frame(i, 500)[..],
            "RX frame {i} after the reset differs"
        );
        rx.repost(&bufs)?;
    }
    // Now TX is reset while RX runs; then TX works on its new ring.
    reset_queue(&rig, TX, Layout::nth(3))?;
    inject(sniffer, &frame(20, 500))?;
    rx.next_packet(false)?;
    let mut tx = TxDriver::new(mem, Layout::nth(3), &rig.tx_fds.kick, true, false);
    for i in 0..100 {
        tx.wait_room(Duration::from_secs(5), String::new)?;
        tx.send(&[0u8; NET_HDR_LEN], &frame(i, 80))?;
    }
    Arrivals::new(sniffer).wait_for(100, |n| frame(n, 80))?;
    println!(
        "{device}: ring reset: RX reset onto a new ring while {sent} TX frames went on in order, \
         then TX reset while RX ran; both work on their new rings"
    );
    Ok(())
}
