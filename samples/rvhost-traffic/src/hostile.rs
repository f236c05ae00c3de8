//! Hostile rings: each case posts one malformed TX chain and checks that the
//! device does not consume it (the used index stays), signals the error
//! eventfd, and that after the VMM re-bases the queue (detach, SET_VRING_BASE,
//! re-attach) a well-formed frame goes through again.

use crate::{
    frame, TxRig, AVAIL_GPA, BUF_GPA, DESC_GPA, MEM_SIZE, NET_HDR_LEN, QUEUE_SIZE, USED_GPA,
};
use anyhow::{ensure, Result};
use rvhost_logic::split_ring::{
    Desc, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const NEXT: u16 = VRING_DESC_F_NEXT;
const WRITE: u16 = VRING_DESC_F_WRITE;
const INDIRECT: u16 = VRING_DESC_F_INDIRECT;
/// Where indirect tables go.
const TABLE_GPA: u64 = 0x3_0000;

/// A malformed chain: descriptors for the ring table, for the indirect table,
/// and how far the avail index moves.
struct Case {
    name: &'static str,
    ring: &'static [(u16, Desc)],
    indirect: &'static [Desc],
    avail_step: u16,
}

const fn d(addr: u64, len: u32, flags: u16, next: u16) -> Desc {
    Desc {
        addr,
        len,
        flags,
        next,
    }
}

const CASES: &[Case] = &[
    Case {
        name: "descriptor loop",
        ring: &[(0, d(BUF_GPA, 64, NEXT, 1)), (1, d(BUF_GPA, 64, NEXT, 0))],
        indirect: &[],
        avail_step: 1,
    },
    Case {
        name: "next >= num",
        ring: &[(0, d(BUF_GPA, 64, NEXT, 300))],
        indirect: &[],
        avail_step: 1,
    },
    Case {
        name: "indirect length not a multiple of 16",
        ring: &[(0, d(TABLE_GPA, 20, INDIRECT, 0))],
        indirect: &[d(BUF_GPA, 64, 0, 0), d(BUF_GPA, 64, 0, 0)],
        avail_step: 1,
    },
    Case {
        name: "indirect inside indirect",
        ring: &[(0, d(TABLE_GPA, 32, INDIRECT, 0))],
        indirect: &[d(BUF_GPA, 64, NEXT, 1), d(TABLE_GPA, 16, INDIRECT, 0)],
        avail_step: 1,
    },
    Case {
        name: "loop inside an indirect table",
        ring: &[(0, d(TABLE_GPA, 32, INDIRECT, 0))],
        indirect: &[d(BUF_GPA, 64, NEXT, 1), d(BUF_GPA, 64, NEXT, 0)],
        avail_step: 1,
    },
    Case {
        name: "buffer outside the memory table",
        ring: &[(0, d(1 << 40, 64, 0, 0))],
        indirect: &[],
        avail_step: 1,
    },
    Case {
        name: "addr + len wraps",
        ring: &[(0, d(u64::MAX - 15, 64, 0, 0))],
        indirect: &[],
        avail_step: 1,
    },
    Case {
        name: "buffer straddling the end of the table",
        ring: &[(0, d(MEM_SIZE as u64 - 32, 64, 0, 0))],
        indirect: &[],
        avail_step: 1,
    },
    Case {
        name: "avail index jumps past the ring",
        ring: &[(0, d(BUF_GPA, 64, 0, 0))],
        indirect: &[],
        avail_step: QUEUE_SIZE + 1,
    },
    Case {
        name: "writable descriptor on TX",
        ring: &[(0, d(BUF_GPA, 64, WRITE, 0))],
        indirect: &[],
        avail_step: 1,
    },
    Case {
        name: "chain shorter than the virtio-net header",
        ring: &[(0, d(BUF_GPA, 4, 0, 0))],
        indirect: &[],
        avail_step: 1,
    },
];

fn wait_for(deadline: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn run_case(device: &str, case: &Case) -> Result<()> {
    let rig = TxRig::new(device, false)?;
    let mem = &rig.mem;
    for (slot, desc) in case.ring {
        mem.write(DESC_GPA + 16 * u64::from(*slot), &desc.to_le_bytes());
    }
    for (i, desc) in case.indirect.iter().enumerate() {
        mem.write(TABLE_GPA + 16 * i as u64, &desc.to_le_bytes());
    }
    mem.write_u16(AVAIL_GPA + 4, 0);
    mem.write_u16(AVAIL_GPA + 2, case.avail_step);
    rig.kick.write(1)?;
    let signalled = wait_for(Duration::from_secs(2), || rig.err.read().is_ok());
    ensure!(signalled, "{}: error eventfd not signalled", case.name);
    ensure!(
        mem.read_u16(USED_GPA + 2) == 0,
        "{}: the used index moved",
        case.name
    );

    // Recovery: re-base past the bad entries and send a good frame.
    let base = case.avail_step;
    rig.rebase(base)?;
    let slot = base % QUEUE_SIZE;
    let f = frame(0, 64);
    let buf = BUF_GPA + 0x1000;
    mem.write(buf, &[0u8; NET_HDR_LEN]);
    mem.write(buf + NET_HDR_LEN as u64, &f);
    let good = d(buf, (NET_HDR_LEN + f.len()) as u32, 0, 0);
    mem.write(DESC_GPA + 16 * u64::from(slot), &good.to_le_bytes());
    mem.write_u16(AVAIL_GPA + 4 + 2 * u64::from(slot), slot);
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    mem.write_u16(AVAIL_GPA + 2, base.wrapping_add(1));
    rig.kick.write(1)?;
    let mut got = vec![0u8; 2048];
    // SAFETY: receives into our buffer (the socket has a 2 s timeout).
    let n = unsafe {
        libc::recv(
            rig.sniffer.as_raw_fd(),
            got.as_mut_ptr().cast(),
            got.len(),
            0,
        )
    };
    ensure!(n >= 0, "{}: no frame after re-basing the queue", case.name);
    ensure!(
        got[..n as usize] == f[..],
        "{}: wrong frame after re-basing",
        case.name
    );
    Ok(())
}

pub fn run(device: &str) -> Result<()> {
    let mut failed = 0;
    for case in CASES {
        match run_case(device, case) {
            Ok(()) => println!(
                "{device}: hostile: {}: refused, error eventfd signalled, recovered",
                case.name
            ),
            Err(e) => {
                println!("{device}: hostile: FAILED: {e:#}");
                failed += 1;
            }
        }
    }
    ensure!(
        failed == 0,
        "{failed} of {} hostile cases failed",
        CASES.len()
    );
    println!("{device}: hostile: {} passed, 0 failed", CASES.len());
    Ok(())
}
