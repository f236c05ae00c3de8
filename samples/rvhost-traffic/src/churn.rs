//! Churn: while the guest keeps transmitting, the VMM swaps the backend
//! back and forth, detaches it, resets the owner and sets the device up
//! again on the same file (the same process owning it again, with a new
//! worker), over and over. After each reset the new set-up must carry
//! traffic: an old worker must never run on (or steal work from) the new
//! owner's state.

use crate::guest::{GuestMemory, Layout};
use crate::rig::{open_device, own_netns, setup_queue, QueueFds, Setup, TX};
use crate::tx::{Arrivals, TxDriver};
use crate::{frame, Backend, NET_HDR_LEN};
use anyhow::{ensure, Context as _, Result};
use nettest::{backend_and_sniffer, check, set_file};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use vhost::vhost_kern::vhost_binding::{
    VHOST_NET_SET_BACKEND, VHOST_RESET_OWNER, VHOST_SET_FEATURES, VHOST_SET_MEM_TABLE,
    VHOST_SET_OWNER,
};
use vmm_sys_util::ioctl::{ioctl, ioctl_with_ptr, ioctl_with_ref};

/// Sets an owned-again device up as `open_device` does, on the same file.
fn own_again(dev: &File, features: u64, mem: &GuestMemory) -> Result<()> {
    // SAFETY: no argument.
    check(unsafe { ioctl(dev, VHOST_SET_OWNER()) }, "SET_OWNER")?;
    // SAFETY: reads one u64.
    let ret = unsafe { ioctl_with_ref(dev, VHOST_SET_FEATURES(), &features) };
    check(ret, "SET_FEATURES")?;
    let table: [u64; 5] = [1, 0, crate::MEM_SIZE as u64, mem.uaddr(0), 0];
    // SAFETY: a vhost_memory header and one region.
    let ret = unsafe { ioctl_with_ptr(dev, VHOST_SET_MEM_TABLE(), table.as_ptr()) };
    check(ret, "SET_MEM_TABLE")
}

/// `rounds` rounds of churn.
pub fn run(device: &str, rounds: u32) -> Result<()> {
    let setup = Setup::new(true, 0, Backend::Tap);
    own_netns()?;
    let (tap_a, sniffer_a) = backend_and_sniffer(Backend::Tap, None)?;
    let (tap_b, _sniffer_b) = backend_and_sniffer(Backend::Tap, None)?;
    let mem = GuestMemory::new()?;
    let dev = open_device(device, setup.features(), &mem)?;
    let layout = Layout::nth(0);
    let mut checked = 0u32;
    for round in 0..rounds {
        if round > 0 {
            // SAFETY: no argument.
            check(unsafe { ioctl(&dev, VHOST_RESET_OWNER()) }, "RESET_OWNER")?;
            own_again(&dev, setup.features(), &mem)?;
        }
        // A fresh ring each round, from index 0.
        mem.write(layout.avail, &[0u8; 0x3000]);
        let fds = QueueFds::new()?;
        setup_queue(&dev, &mem, TX, layout, &fds, &tap_a)?;
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| -> Result<()> {
            let stop = &stop;
            let (mem, fds) = (&mem, &fds);
            // The guest transmits until told to stop (what arrives is not
            // checked while the backend changes under it).
            let guest = s.spawn(move || -> Result<u32> {
                let mut tx = TxDriver::new(mem, layout, &fds.kick, true, false);
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) {
                    if tx.queue.in_flight() < crate::QUEUE_SIZE {
                        tx.send(&[0u8; NET_HDR_LEN], &frame(sent, 64))?;
                        sent += 1;
                    } else {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                Ok(sent)
            });
            for swap in 0..6 {
                std::thread::sleep(Duration::from_millis(15));
                let fd = match swap % 3 {
                    0 => tap_b.as_raw_fd(),
                    1 => -1,
                    _ => tap_a.as_raw_fd(),
                };
                set_file(&dev, VHOST_NET_SET_BACKEND(), TX, fd)?;
            }
            stop.store(true, Ordering::Relaxed);
            guest
                .join()
                .map_err(|_| anyhow::anyhow!("guest panicked"))??;
            Ok(())
        })?;
        // A last reset, then what the churn sent to tap A is drained (the
        // reset stopped the worker: nothing of the old set-up comes later),
        // and a fresh set-up must carry traffic.
        // SAFETY: no argument.
        check(unsafe { ioctl(&dev, VHOST_RESET_OWNER()) }, "RESET_OWNER")?;
        let mut drain = [0u8; 2048];
        // SAFETY: receives into our buffer without waiting.
        while unsafe {
            libc::recv(
                sniffer_a.as_raw_fd(),
                drain.as_mut_ptr().cast(),
                drain.len(),
                libc::MSG_DONTWAIT,
            )
        } >= 0
        {}
        own_again(&dev, setup.features(), &mem)?;
        mem.write(layout.avail, &[0u8; 0x3000]);
        let fds = QueueFds::new()?;
        setup_queue(&dev, &mem, TX, layout, &fds, &tap_a)?;
        let mut tx = TxDriver::new(&mem, layout, &fds.kick, true, false);
        let mut arrivals = Arrivals::new(&sniffer_a);
        for i in 0..300 {
            tx.wait_room(Duration::from_secs(5), || {
                format!("round {round}: stopped at {i}")
            })?;
            tx.send(&[0u8; NET_HDR_LEN], &frame(i, 64))?;
            arrivals.take(false, |n| frame(n, 64))?;
        }
        arrivals
            .wait_for(300, |n| frame(n, 64))
            .with_context(|| format!("round {round}: traffic after the churn"))?;
        checked += 300;
    }
    ensure!(checked == 300 * rounds);
    println!(
        "{device}: churn: {rounds} rounds of backend swaps, detaches and owner resets mid-traffic; \
         after each, 300 frames arrived in order on a fresh set-up"
    );
    Ok(())
}
