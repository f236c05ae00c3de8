//! Turns a case seed into a sequence of operations. Generation depends on the
//! seed (and on the features both devices offer) only, never on answers, so
//! a seed replays the same sequence.
//!
//! Most cases start with the bring-up a VMM makes (owner, features, a valid
//! memory table, both rings, eventfds, a backend), sometimes with a step
//! swapped for a hostile one, so that the data path runs on the hostile ring
//! contents that follow; the rest start from nothing.

use crate::op::{Addr, Fd, Ioctl, Op, Region};
use crate::rng::Rng;
use crate::side::{MAP_SIZE, MEM_SIZE, NONE_PAGE, PAGE, RO_PAGE};
use nettest::features::{
    VIRTIO_F_ANY_LAYOUT, VIRTIO_F_NOTIFY_ON_EMPTY, VIRTIO_F_VERSION_1, VIRTIO_NET_F_MRG_RXBUF,
    VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
};
use rvhost_logic::split_ring::{
    used_event_offset, Desc, AVAIL_IDX_OFFSET, AVAIL_RING_OFFSET, USED_IDX_OFFSET,
    VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};

/// `VHOST_VRING_F_LOG` in `SET_VRING_ADDR` flags.
const VRING_F_LOG: u32 = 1;

/// Where each queue's rings go in guest memory: the descriptor table at the
/// start of its area, the avail ring and the used ring further in; room for
/// rings of up to 8192 entries.
const QUEUE_AREA: [u64; 2] = [0x4_0000, 0x8_0000];
const AVAIL_AT: u64 = 0x2_0000;
const USED_AT: u64 = 0x2_8000;
/// Indirect tables.
const INDIRECT_AREA: u64 = 0xc_0000;
const INDIRECT_END: u64 = 0x10_0000;
/// Packet buffers.
const BUF_AREA: u64 = 0x10_0000;

/// Values the same for both devices that nothing is mapped at: NULL, low
/// pages below `mmap_min_addr`, the first address past user space, a kernel
/// address, the top of the address space.
const BOGUS: [u64; 6] = [
    0,
    0x1000,
    0x8000,
    0x7fff_ffff_f000,
    0xffff_8880_0000_0000,
    u64::MAX - 0xfff,
];

/// vhost request numbers (`_IOC_NR`, magic 0xAF) defined by
/// `include/uapi/linux/vhost.h` in 6.12 (net, worker, endian, scsi, vsock,
/// vdpa ones): never drawn as "unknown".
const DEFINED_NRS: &[u64] = &[
    0x00, 0x01, 0x02, 0x03, 0x04, 0x07, 0x08, 0x09, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x20,
    0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x30, 0x40, 0x41, 0x42, 0x43, 0x44, 0x60, 0x61,
];

fn ioc(dir: u64, magic: u64, nr: u64, size: u64) -> u64 {
    (dir << 30) | (size << 16) | (magic << 8) | nr
}

/// The generator's belief about one queue (what it set up; the devices may
/// have refused some of it, which is fine: the data then is hostile too).
#[derive(Clone, Copy, Debug, Default)]
struct Queue {
    /// Ring size, 0 if no ring in guest memory was set up.
    num: u16,
    desc: u64,
    avail: u64,
    used: u64,
    /// The driver's avail index (entries published so far).
    avail_idx: u16,
    /// Where the next chain's descriptors go.
    next_slot: u16,
}

#[derive(Clone, Copy, Debug, Default)]
struct Model {
    features: u64,
    /// Guest-physical address of guest memory offset 0.
    gpa_base: u64,
    queues: [Queue; 2],
    backend: bool,
    /// Bump allocators for buffers and indirect tables.
    next_buf: u64,
    next_table: u64,
}

impl Model {
    fn ready(&self) -> bool {
        self.backend && self.queues.iter().all(|q| q.num > 0)
    }

    /// Bytes of virtio-net header in front of every packet in guest buffers.
    fn hdr_len(&self) -> usize {
        if self.features & (VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MRG_RXBUF) != 0 {
            12
        } else {
            10
        }
    }

    fn buf(&mut self, len: u64) -> u64 {
        if self.next_buf < BUF_AREA || self.next_buf + len > MEM_SIZE {
            self.next_buf = BUF_AREA;
        }
        let at = self.next_buf;
        self.next_buf = (at + len + 63) & !63;
        at
    }

    fn table(&mut self, len: u64) -> u64 {
        if self.next_table < INDIRECT_AREA || self.next_table + len > INDIRECT_END {
            self.next_table = INDIRECT_AREA;
        }
        let at = self.next_table;
        self.next_table = (at + len + 15) & !15;
        at
    }
}

struct Gen<'a> {
    rng: &'a mut Rng,
    ops: Vec<Op>,
    m: Model,
    both: u64,
}

/// The operations of the case with seed `seed`; `both` are the features
/// both devices offer.
pub fn generate(seed: u64, both: u64) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let mut g = Gen {
        rng: &mut rng,
        ops: Vec::new(),
        m: Model::default(),
        both,
    };
    if g.rng.chance(80) {
        g.bring_up();
    }
    let steps = g.rng.range(10, 140);
    for _ in 0..steps {
        g.step();
    }
    g.teardown();
    g.ops
}

impl Gen<'_> {
    fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// A queue index: mostly the two queues, sometimes out of range.
    fn index(&mut self) -> u32 {
        match self.rng.weighted(&[40, 40, 8, 4, 4, 4]) {
            0 => 0,
            1 => 1,
            2 => 2,
            3 => u32::MAX,
            4 => 0x100,
            _ => self.rng.next_u32(),
        }
    }

    fn ring_size(&mut self) -> u32 {
        match self.rng.weighted(&[50, 10, 10, 5, 5, 5, 5, 5]) {
            0 => self.rng.pick(&[64, 128, 256, 256, 512, 1024]),
            1 => 1 << self.rng.below(17),
            2 => self.rng.pick(&[0, 3, 255, 32769, 65535, 65536, 0x1_0100]),
            3 => self.rng.next_u32(),
            4 => 1,
            5 => 2,
            6 => 32768,
            _ => self.rng.below(1 << 16) as u32,
        }
    }

    fn vring_base(&mut self) -> u32 {
        match self.rng.weighted(&[50, 20, 10, 10, 10]) {
            0 => 0,
            1 => self.rng.below(1 << 16) as u32,
            2 => self.rng.pick(&[1, 255, 256, 0xffff]),
            3 => self.rng.pick(&[0x1_0000, 0x1_0001, u32::MAX]),
            _ => self.rng.next_u32(),
        }
    }

    fn fd(&mut self) -> Fd {
        let q = self.rng.below(2) as u8;
        match self
            .rng
            .weighted(&[15, 15, 15, 10, 5, 10, 8, 4, 4, 4, 4, 3, 3])
        {
            0 => Fd::Kick(q),
            1 => Fd::Call(q),
            2 => Fd::Err(q),
            3 => Fd::Unbind,
            4 => Fd::Spare,
            5 => Fd::Closed,
            6 => Fd::DevNull,
            7 => Fd::Tap,
            8 => Fd::TapVnetHdr,
            9 => Fd::RawPacket,
            10 => Fd::DgramPacket,
            11 => Fd::Udp,
            _ => Fd::Device,
        }
    }

    fn backend_fd(&mut self) -> Fd {
        match self.rng.weighted(&[30, 10, 15, 15, 5, 5, 4, 5, 5, 6]) {
            0 => Fd::Tap,
            1 => Fd::TapVnetHdr,
            2 => Fd::RawPacket,
            3 => Fd::Unbind,
            4 => Fd::Closed,
            5 => Fd::DevNull,
            6 => Fd::Kick(0),
            7 => Fd::DgramPacket,
            8 => Fd::Udp,
            _ => Fd::Device,
        }
    }

    /// A ring address: mostly inside a queue's area and aligned; else
    /// misaligned, in the read-only or the inaccessible page, or bogus.
    fn ring_addr(&mut self, align: u64) -> Addr {
        let area = self.rng.pick(&QUEUE_AREA) + self.rng.pick(&[0, AVAIL_AT, USED_AT]);
        match self.rng.weighted(&[60, 10, 5, 5, 5, 10, 5]) {
            0 => Addr::Mem(area + self.rng.below(64) * align.max(16)),
            1 => Addr::Mem(area + self.rng.range(1, 15)),
            2 => Addr::Mem(RO_PAGE + self.rng.below(PAGE / align) * align),
            3 => Addr::Mem(NONE_PAGE),
            4 => Addr::Mem(MEM_SIZE - PAGE),
            5 => Addr::Raw(self.rng.pick(&BOGUS)),
            _ => Addr::Mem(self.rng.below(MAP_SIZE) & !(align - 1)),
        }
    }

    /// `log_guest_addr`. Kept below 4 GiB on purpose: upstream sets dirty
    /// bits at `log base + log_guest_addr / 32768` when a used ring is logged
    /// (`VHOST_VRING_F_LOG`, even without `VHOST_F_LOG_ALL`), and a larger
    /// value would make it set bits in the fuzzer's own memory.
    fn log_addr(&mut self) -> u64 {
        match self.rng.weighted(&[60, 25, 15]) {
            0 => 0,
            1 => self.rng.below(1 << 32) & !3,
            _ => self.rng.below(1 << 32),
        }
    }

    /// `SET_LOG_BASE`: in guest memory, far enough from its end for the
    /// bits of any `log_addr` (above), or a bogus address.
    fn log_base(&mut self) -> Addr {
        match self.rng.weighted(&[50, 30, 20]) {
            0 => Addr::Mem(self.rng.below((MEM_SIZE - (1 << 18)) / 8) * 8),
            1 => Addr::Raw(self.rng.pick(&BOGUS)),
            _ => Addr::Mem(RO_PAGE),
        }
    }

    /// Feature bits: a random subset of what both devices offer (applied at
    /// run time), biased toward the combinations drivers use.
    fn features(&mut self) -> u64 {
        let mut mask = 0;
        for (bit, percent) in [
            (VIRTIO_F_VERSION_1, 70),
            (VIRTIO_RING_F_EVENT_IDX, 50),
            (VIRTIO_NET_F_MRG_RXBUF, 40),
            (VIRTIO_RING_F_INDIRECT_DESC, 50),
            (VIRTIO_F_ANY_LAYOUT, 60),
            (VIRTIO_F_NOTIFY_ON_EMPTY, 20),
        ] {
            if self.rng.chance(percent) {
                mask |= bit;
            }
        }
        if self.rng.chance(5) {
            mask = self.rng.next_u64();
        }
        mask
    }

    /// A memory table that maps all of guest memory, as one region or split
    /// at page boundaries into up to 8 listed in any order, at guest-physical
    /// 0 or higher; sometimes with an extra region overlapping the others.
    fn valid_table(&mut self) -> Vec<Region> {
        let base = match self.rng.weighted(&[70, 15, 15]) {
            0 => 0,
            1 => 1 << 32,
            _ => self.rng.below(1 << 28) * PAGE,
        };
        self.m.gpa_base = base;
        let pieces = if self.rng.chance(50) {
            1
        } else {
            self.rng.range(2, 8)
        };
        let mut cuts: Vec<u64> = (1..pieces)
            .map(|_| self.rng.range(1, MEM_SIZE / PAGE - 1) * PAGE)
            .collect();
        cuts.extend([0, MEM_SIZE]);
        cuts.sort_unstable();
        cuts.dedup();
        let mut regions: Vec<Region> = cuts
            .windows(2)
            .map(|w| Region {
                gpa: base + w[0],
                size: w[1] - w[0],
                user: Addr::Mem(w[0]),
            })
            .collect();
        for i in (1..regions.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            regions.swap(i, j);
        }
        if self.rng.chance(10) {
            let extra = self.region();
            let at = self.rng.below(regions.len() as u64 + 1) as usize;
            regions.insert(at, extra);
        }
        regions
    }

    /// A random region. Its user range stays inside the side's mapping or at
    /// addresses nothing is mapped at, so that whatever the devices write
    /// through it lands in guest memory or faults, never in the fuzzer.
    fn region(&mut self) -> Region {
        let gpa = match self.rng.weighted(&[30, 20, 15, 15, 10, 10]) {
            0 => self.m.gpa_base + self.rng.below(MEM_SIZE / PAGE) * PAGE,
            1 => self.rng.below(1 << 20) * PAGE,
            2 => self.rng.next_u64(),
            3 => u64::MAX - self.rng.below(4) * PAGE - self.rng.below(PAGE),
            4 => 0,
            _ => self.rng.pick(&[1 << 32, 1 << 40, 1 << 63, u64::MAX]),
        };
        let (user, room) = match self.rng.weighted(&[60, 10, 5, 5, 5, 5, 10]) {
            0 => {
                let at = self.rng.below(MEM_SIZE / PAGE) * PAGE;
                (Addr::Mem(at), MAP_SIZE - at)
            }
            1 => (Addr::Mem(RO_PAGE), PAGE),
            2 => (Addr::Mem(NONE_PAGE), PAGE),
            3 => (Addr::Raw(0x1000), 0xf000),
            4 => (Addr::Raw(0x7fff_ffff_f000), u64::MAX),
            5 => (Addr::Raw(0xffff_8880_0000_0000), u64::MAX),
            _ => (Addr::Raw(u64::MAX - 0xfff), u64::MAX),
        };
        let size = match self.rng.weighted(&[15, 25, 20, 15, 10, 10, 5]) {
            0 => 0,
            1 => self.rng.range(1, 64) * PAGE,
            2 => self.rng.range(1, room.min(MEM_SIZE)),
            3 => room.min(MEM_SIZE),
            4 => self.rng.range(1, PAGE),
            5 => self.rng.pick(&[u64::MAX, 1 << 40, 1 << 63]),
            _ => self.rng.next_u64(),
        };
        Region {
            gpa,
            size: size.min(room),
            user,
        }
    }

    fn hostile_table(&mut self) -> Vec<Region> {
        let count = match self.rng.weighted(&[10, 50, 25, 15]) {
            0 => 0,
            1 => self.rng.range(1, 4),
            2 => self.rng.range(5, 64),
            _ => self.rng.range(65, 70),
        };
        (0..count).map(|_| self.region()).collect()
    }

    fn mem_table(&mut self, valid: bool) -> Op {
        let regions = if valid {
            self.valid_table()
        } else {
            self.hostile_table()
        };
        let padding = if self.rng.chance(5) {
            self.rng.next_u32() | 1
        } else {
            0
        };
        Op::Ioctl(Ioctl::SetMemTable {
            regions,
            padding,
            nregions: None,
        })
    }

    /// What a VMM does to start a device, in QEMU's order, each step
    /// occasionally replaced by a random control operation.
    fn bring_up(&mut self) {
        self.m = Model {
            next_buf: self.m.next_buf,
            next_table: self.m.next_table,
            ..Model::default()
        };
        let mut plan = Vec::new();
        let owner = self.rng.chance(97);
        if owner {
            plan.push(Op::Ioctl(Ioctl::SetOwner));
        }
        if self.rng.chance(60) {
            plan.push(Op::Ioctl(Ioctl::GetFeatures));
        }
        for q in 0..2u8 {
            if self.rng.chance(50) {
                plan.push(Op::Ioctl(Ioctl::SetVringCall {
                    index: q.into(),
                    fd: Fd::Call(q),
                }));
                plan.push(Op::Ioctl(Ioctl::SetVringErr {
                    index: q.into(),
                    fd: Fd::Err(q),
                }));
            }
        }
        let mask = self.features();
        self.m.features = mask & self.both;
        plan.push(Op::SetFeatures { mask });
        plan.push(self.mem_table(true));
        for q in 0..2u8 {
            let index = u32::from(q);
            let num = if self.rng.chance(85) {
                self.rng.pick(&[64, 128, 256, 256, 512, 1024])
            } else {
                self.rng.pick(&[1, 2, 4, 8, 16, 32, 2048, 4096, 8192])
            };
            let area = QUEUE_AREA[usize::from(q)];
            let queue = Queue {
                num,
                desc: area,
                avail: area + AVAIL_AT,
                used: area + USED_AT,
                avail_idx: 0,
                next_slot: 0,
            };
            plan.push(Op::Ioctl(Ioctl::SetVringNum {
                index,
                num: num.into(),
            }));
            let base = if self.rng.chance(20) {
                self.rng.below(1 << 16) as u16
            } else {
                0
            };
            plan.push(Op::Ioctl(Ioctl::SetVringBase {
                index,
                num: base.into(),
            }));
            // The driver's avail index starts where the device's does.
            plan.push(Op::Write {
                what: "avail idx",
                offset: queue.avail + AVAIL_IDX_OFFSET,
                bytes: base.to_le_bytes().to_vec(),
            });
            plan.push(Op::Ioctl(Ioctl::SetVringAddr {
                index,
                flags: 0,
                desc: Addr::Mem(queue.desc),
                avail: Addr::Mem(queue.avail),
                used: Addr::Mem(queue.used),
                log: 0,
            }));
            plan.push(Op::Ioctl(Ioctl::SetVringKick {
                index,
                fd: Fd::Kick(q),
            }));
            plan.push(Op::Ioctl(Ioctl::SetVringCall {
                index,
                fd: Fd::Call(q),
            }));
            if self.rng.chance(70) {
                plan.push(Op::Ioctl(Ioctl::SetVringErr {
                    index,
                    fd: Fd::Err(q),
                }));
            }
            self.m.queues[usize::from(q)] = Queue {
                avail_idx: base,
                next_slot: base % num,
                ..queue
            };
        }
        let backend = match self.rng.weighted(&[60, 20, 20]) {
            0 => Fd::Tap,
            1 => Fd::TapVnetHdr,
            _ => Fd::RawPacket,
        };
        for q in 0..2 {
            if self.rng.chance(95) {
                plan.push(Op::Ioctl(Ioctl::NetSetBackend {
                    index: q,
                    fd: backend,
                }));
            }
        }
        // Without an owner nothing is set up (EPERM): little data to post.
        self.m.backend = owner;
        for op in plan {
            // SET_OWNER stays: its absence is decided above.
            if self.rng.chance(4) && !matches!(op, Op::Ioctl(Ioctl::SetOwner)) {
                self.control();
            } else {
                self.push(op);
            }
        }
    }

    fn step(&mut self) {
        let data_weight = if self.m.ready() { 60 } else { 15 };
        match self.rng.weighted(&[data_weight, 40, 1, 2]) {
            0 => self.data(),
            1 => {
                self.control();
                // A VMM that resets the device usually brings it up again.
                if matches!(self.ops.last(), Some(Op::Ioctl(Ioctl::ResetOwner)))
                    && self.rng.chance(60)
                {
                    self.bring_up();
                }
            }
            2 => {
                self.push(Op::Reopen);
                self.m.backend = false;
                self.m.queues = Default::default();
                if self.rng.chance(70) {
                    self.bring_up();
                }
            }
            _ => self.bring_up(),
        }
    }

    /// One random control ioctl; now and then made from a forked child,
    /// which may take ownership and then exit, leaving the device owned by
    /// an address space that is gone.
    fn control(&mut self) {
        if self.rng.chance(3) {
            let inner = if self.rng.chance(50) {
                Op::Ioctl(Ioctl::SetOwner)
            } else {
                self.control();
                self.ops.pop().expect("control pushed one")
            };
            self.push(Op::InChild(Box::new(inner)));
            return;
        }
        let op = match self.rng.weighted(&[
            3, 2, 4, 5, 3, 3, 3, 8, 2, 3, 6, 5, 6, 8, 5, 5, 4, 8, 3, 3, 2, 3, 4,
        ]) {
            0 => Op::Ioctl(Ioctl::SetOwner),
            1 => {
                // Everything goes back to the initial state; often a VMM
                // brings the device up again right after.
                self.m.backend = false;
                self.m.queues = Default::default();
                Op::Ioctl(Ioctl::ResetOwner)
            }
            2 => Op::Ioctl(Ioctl::GetFeatures),
            3 => {
                let mask = self.features();
                Op::SetFeatures { mask }
            }
            4 => Op::SetUnknownFeatures(match self.rng.weighted(&[30, 20, 20, 30]) {
                0 => 1 << 63,
                1 => 1 << self.rng.range(41, 63),
                2 => 1 << self.rng.below(15),
                _ => self.rng.next_u64(),
            }),
            5 => Op::Ioctl(Ioctl::GetBackendFeatures),
            6 => Op::Ioctl(Ioctl::SetBackendFeatures(
                match self.rng.weighted(&[30, 30, 20, 20]) {
                    0 => 0,
                    1 => 1 << 1,
                    2 => 1 << self.rng.below(64),
                    _ => self.rng.next_u64(),
                },
            )),
            7 => {
                let valid = self.rng.chance(40);
                self.mem_table(valid)
            }
            8 => Op::Ioctl(Ioctl::SetLogBase(self.log_base())),
            9 => Op::Ioctl(Ioctl::SetLogFd(
                match self.rng.weighted(&[30, 30, 20, 20]) {
                    0 => Fd::Spare,
                    1 => Fd::Unbind,
                    2 => Fd::Closed,
                    _ => Fd::DevNull,
                },
            )),
            10 => Op::Ioctl(Ioctl::SetVringNum {
                index: self.index(),
                num: self.ring_size(),
            }),
            11 => Op::Ioctl(Ioctl::SetVringBase {
                index: self.index(),
                num: self.vring_base(),
            }),
            12 => Op::Ioctl(Ioctl::GetVringBase {
                index: self.index(),
            }),
            13 => {
                let flags = match self.rng.weighted(&[80, 12, 8]) {
                    0 => 0,
                    1 => VRING_F_LOG,
                    _ => self.rng.next_u32(),
                };
                Op::Ioctl(Ioctl::SetVringAddr {
                    index: self.index(),
                    flags,
                    desc: self.ring_addr(16),
                    avail: self.ring_addr(2),
                    used: self.ring_addr(4),
                    log: self.log_addr(),
                })
            }
            14 => Op::Ioctl(Ioctl::SetVringKick {
                index: self.index(),
                fd: self.fd(),
            }),
            15 => Op::Ioctl(Ioctl::SetVringCall {
                index: self.index(),
                fd: self.fd(),
            }),
            16 => Op::Ioctl(Ioctl::SetVringErr {
                index: self.index(),
                fd: self.fd(),
            }),
            17 => {
                let fd = self.backend_fd();
                Op::Ioctl(Ioctl::NetSetBackend {
                    index: self.index(),
                    fd,
                })
            }
            18 => Op::Ioctl(Ioctl::SetBusyloop {
                index: self.index(),
                // Small values only: both workers busy-poll that long
                // whenever a queue runs empty, which under TCG would slow
                // every case.
                num: self.rng.pick(&[0, 0, 1, 10, 50]),
            }),
            19 => Op::Ioctl(Ioctl::GetBusyloop {
                index: self.index(),
            }),
            20 => Op::Ioctl(Ioctl::GetVringStats {
                index: self.index(),
            }),
            21 => Op::Ioctl(Ioctl::SetVringCoalesce {
                index: self.index(),
                // Holds up to 2 ms (and one past the limit): long enough to
                // cross rounds and timers, short enough for TCG.
                max_packets: self.rng.pick(&[0, 1, 2, 8, 64, u32::MAX]),
                max_usecs: self.rng.pick(&[0, 0, 10, 100, 2000, 1_000_001]),
                flags: self.rng.pick(&[0, 0, 1, 2]),
            }),
            _ => self.unknown(),
        };
        self.push(op);
    }

    fn unknown(&mut self) -> Op {
        let size = self.rng.pick(&[0, 4, 8, 16, 40, 64]);
        let dir = if size == 0 { 0 } else { self.rng.range(1, 3) };
        let request = match self.rng.weighted(&[70, 10, 10, 10]) {
            0 => {
                // Below the vdpa range (0x70..), skipping defined numbers.
                let nrs: Vec<u64> = (0..0x70).filter(|nr| !DEFINED_NRS.contains(nr)).collect();
                ioc(dir, 0xaf, self.rng.pick(&nrs), size)
            }
            // rvhost's own range, past its one request.
            1 => ioc(3, u64::from(b'r'), self.rng.range(2, 255), 72),
            // Requests of other subsystems: TCGETS, a tun request.
            2 => self.rng.pick(&[0x5401, ioc(0, u64::from(b'T'), 200, 0)]),
            // Past the last defined vhost number (0x85).
            _ => ioc(dir, 0xaf, self.rng.range(0x86, 0xff), size),
        };
        let arg = if self.rng.chance(40) {
            None
        } else {
            Some(self.index())
        };
        Op::Ioctl(Ioctl::Unknown {
            request,
            index: arg,
        })
    }

    /// Guest-side activity on a queue with rings in guest memory.
    fn data(&mut self) {
        let candidates: Vec<usize> = (0..2).filter(|&q| self.m.queues[q].num > 0).collect();
        if candidates.is_empty() {
            // No rings: only traffic into the backends and waiting.
            if self.rng.chance(50) {
                self.send_frames();
            } else {
                self.push(Op::Settle { ms: 5 });
            }
            return;
        }
        let q = self.rng.pick(&candidates);
        match self.rng.weighted(&[35, 15, 15, 12, 8, 8, 2, 3, 4]) {
            0 => {
                let chains = self.rng.range(1, 8);
                for _ in 0..chains {
                    self.post_chain(q);
                }
                self.publish(q);
                if self.rng.chance(70) {
                    self.push(Op::Kick(q as u8));
                }
            }
            1 => {
                self.post_hostile_chain(q);
                self.publish(q);
                self.push(Op::Kick(q as u8));
            }
            2 => self.push(Op::Kick(q as u8)),
            3 => self.send_frames(),
            4 => {
                let ms = self.rng.range(5, 50) as u16;
                self.push(Op::Settle { ms });
            }
            5 => {
                let offset = self.m.queues[q].used + USED_IDX_OFFSET;
                self.push(Op::ReadUsed { offset });
            }
            6 => {
                // The avail index jumps by more than the ring size.
                let queue = &mut self.m.queues[q];
                let jump = queue.num.wrapping_add(self.rng.range(1, 1000) as u16);
                queue.avail_idx = queue.avail_idx.wrapping_add(jump);
                let (offset, idx) = (queue.avail + AVAIL_IDX_OFFSET, queue.avail_idx);
                self.push(Op::Write {
                    what: "avail idx jump",
                    offset,
                    bytes: idx.to_le_bytes().to_vec(),
                });
                self.push(Op::Kick(q as u8));
            }
            7 => {
                // Garbage over part of the descriptor table.
                let queue = self.m.queues[q];
                let slot = self.rng.below(queue.num.into());
                let len = 16 * self.rng.range(1, 8);
                let bytes = (0..len).map(|_| self.rng.next_u32() as u8).collect();
                self.push(Op::Write {
                    what: "garbage descriptors",
                    offset: queue.desc + 16 * slot,
                    bytes,
                });
            }
            _ => {
                let queue = self.m.queues[q];
                if self.rng.chance(50) {
                    let flags = self.rng.pick(&[0u16, 1, 0xffff]);
                    self.push(Op::Write {
                        what: "avail flags",
                        offset: queue.avail,
                        bytes: flags.to_le_bytes().to_vec(),
                    });
                } else {
                    let event = match self.rng.weighted(&[50, 50]) {
                        0 => queue.avail_idx,
                        _ => self.rng.below(1 << 16) as u16,
                    };
                    self.push(Op::Write {
                        what: "used_event",
                        offset: queue.avail + used_event_offset(queue.num),
                        bytes: event.to_le_bytes().to_vec(),
                    });
                }
            }
        }
    }

    fn send_frames(&mut self) {
        let via = match self.rng.weighted(&[60, 20, 20]) {
            0 => Fd::Tap,
            1 => Fd::TapVnetHdr,
            _ => Fd::RawPacket,
        };
        let count = self.rng.range(1, 32) as u8;
        let size = match self.rng.weighted(&[40, 40, 20]) {
            0 => self.rng.range(14, 128),
            1 => self.rng.range(14, 1514),
            _ => 1514,
        } as u16;
        self.push(Op::SendFrames { via, count, size });
        if self.rng.chance(50) {
            self.push(Op::Settle { ms: 10 });
        }
    }

    /// Writes the descriptors `descs` of one chain at consecutive slots of
    /// queue `q` (their `next` fields are filled in) and adds its head to
    /// the avail ring (not yet published).
    fn place_chain(&mut self, q: usize, mut descs: Vec<Desc>) {
        let queue = self.m.queues[q];
        let num = queue.num;
        let head = queue.next_slot % num;
        let count = descs.len() as u16;
        for (i, d) in descs.iter_mut().enumerate() {
            let slot = (head + i as u16) % num;
            if i + 1 < usize::from(count) {
                d.flags |= VRING_DESC_F_NEXT;
                d.next = (slot + 1) % num;
            }
            self.push(Op::Write {
                what: "descriptor",
                offset: queue.desc + 16 * u64::from(slot),
                bytes: d.to_le_bytes().to_vec(),
            });
        }
        self.add_head(q, head);
        self.m.queues[q].next_slot = (head + count) % num;
    }

    fn add_head(&mut self, q: usize, head: u16) {
        let queue = &mut self.m.queues[q];
        let slot = queue.avail_idx % queue.num;
        let offset = queue.avail + AVAIL_RING_OFFSET + 2 * u64::from(slot);
        queue.avail_idx = queue.avail_idx.wrapping_add(1);
        self.push(Op::Write {
            what: "avail entry",
            offset,
            bytes: head.to_le_bytes().to_vec(),
        });
    }

    /// Publishes the heads added so far (the avail index).
    fn publish(&mut self, q: usize) {
        let queue = self.m.queues[q];
        self.push(Op::Write {
            what: "avail idx",
            offset: queue.avail + AVAIL_IDX_OFFSET,
            bytes: queue.avail_idx.to_le_bytes().to_vec(),
        });
    }

    /// A well-formed chain: on TX (queue 1) a header and a test frame in
    /// one to three readable buffers, on RX (queue 0) one to three writable
    /// buffers; sometimes behind an indirect table.
    fn post_chain(&mut self, q: usize) {
        let tx = q == 1;
        let pieces = self.rng.range(1, 3) as usize;
        let mut descs = Vec::new();
        if tx {
            let size = self.rng.range(14, 1514) as usize;
            let mut packet = vec![0u8; self.m.hdr_len()];
            packet.extend(nettest::frame(self.rng.next_u32(), size));
            let at = self.m.buf(packet.len() as u64);
            self.push(Op::Write {
                what: "TX packet",
                offset: at,
                bytes: packet.clone(),
            });
            let mut start = 0;
            for i in 0..pieces {
                let end = if i + 1 == pieces {
                    packet.len()
                } else {
                    self.rng.range(start as u64, packet.len() as u64) as usize
                };
                descs.push(Desc {
                    addr: self.m.gpa_base + at + start as u64,
                    len: (end - start) as u32,
                    flags: 0,
                    next: 0,
                });
                start = end;
            }
        } else {
            for _ in 0..pieces {
                let len = if self.rng.chance(70) {
                    self.rng.range(1526, 2048)
                } else {
                    self.rng.range(12, 2048)
                };
                let at = self.m.buf(len);
                descs.push(Desc {
                    addr: self.m.gpa_base + at,
                    len: len as u32,
                    flags: VRING_DESC_F_WRITE,
                    next: 0,
                });
            }
        }
        let indirect = self.m.features & VIRTIO_RING_F_INDIRECT_DESC != 0 && self.rng.chance(25);
        if indirect {
            let table = self.m.table(16 * descs.len() as u64);
            let mut bytes = Vec::new();
            let count = descs.len();
            for (i, d) in descs.iter_mut().enumerate() {
                if i + 1 < count {
                    d.flags |= VRING_DESC_F_NEXT;
                    d.next = i as u16 + 1;
                }
                bytes.extend(d.to_le_bytes());
            }
            self.push(Op::Write {
                what: "indirect table",
                offset: table,
                bytes,
            });
            let head = Desc {
                addr: self.m.gpa_base + table,
                len: 16 * count as u32,
                flags: VRING_DESC_F_INDIRECT,
                next: 0,
            };
            self.place_chain(q, vec![head]);
        } else {
            self.place_chain(q, descs);
        }
    }

    fn hostile_desc(&mut self) -> Desc {
        let num = 1u64 << 16;
        let addr = match self.rng.weighted(&[40, 15, 15, 10, 10, 10]) {
            0 => self.m.gpa_base + self.rng.range(BUF_AREA, MEM_SIZE - 1),
            1 => self.m.gpa_base + self.rng.below(MEM_SIZE),
            2 => self.rng.next_u64(),
            3 => u64::MAX - self.rng.below(4096),
            4 => self.m.gpa_base + MEM_SIZE - self.rng.range(1, 64),
            _ => self.m.gpa_base + INDIRECT_AREA + 16 * self.rng.below(64),
        };
        let len = match self.rng.weighted(&[30, 20, 15, 15, 10, 10]) {
            0 => self.rng.range(1, 2048) as u32,
            1 => 0,
            2 => 16 * self.rng.range(1, 64) as u32,
            3 => self.rng.next_u32(),
            4 => self.rng.pick(&[1, 11, 12, 17, 65536, 16 * 65537, u32::MAX]),
            _ => self.rng.range(1, 16) as u32,
        };
        let flags = match self.rng.weighted(&[60, 40]) {
            0 => self.rng.below(8) as u16,
            _ => self.rng.next_u32() as u16,
        };
        let next = match self.rng.weighted(&[70, 30]) {
            0 => self.rng.below(64) as u16,
            _ => self.rng.below(num) as u16,
        };
        Desc {
            addr,
            len,
            flags,
            next,
        }
    }

    /// Random descriptors at random slots (loops, out-of-range `next`,
    /// bad indirect tables, wrong directions, zero lengths), and random
    /// indirect table contents where they may point.
    fn post_hostile_chain(&mut self, q: usize) {
        let queue = self.m.queues[q];
        let count = self.rng.range(1, 6);
        let mut head = None;
        for _ in 0..count {
            let slot = if self.rng.chance(50) {
                (queue.next_slot + self.rng.below(8) as u16) % queue.num
            } else {
                self.rng.below(queue.num.into()) as u16
            };
            head.get_or_insert(slot);
            let d = self.hostile_desc();
            self.push(Op::Write {
                what: "hostile descriptor",
                offset: queue.desc + 16 * u64::from(slot),
                bytes: d.to_le_bytes().to_vec(),
            });
        }
        if self.rng.chance(40) {
            let entries = match self.rng.weighted(&[60, 40]) {
                0 => self.rng.range(1, 16),
                _ => self.rng.range(16, 1024),
            };
            let table = self.m.table(16 * entries);
            let mut bytes = Vec::new();
            for _ in 0..entries {
                let d = self.hostile_desc();
                bytes.extend(d.to_le_bytes());
            }
            self.push(Op::Write {
                what: "hostile indirect table",
                offset: table,
                bytes,
            });
        }
        let head = match self.rng.weighted(&[80, 20]) {
            0 => head.unwrap_or(0),
            _ => self.rng.next_u32() as u16,
        };
        self.add_head(q, head);
    }

    /// How the case ends: a VMM's stop (detach, read the bases), a reset,
    /// or just the close that follows every case.
    fn teardown(&mut self) {
        match self.rng.weighted(&[40, 20, 40]) {
            0 => {
                for index in 0..2 {
                    self.push(Op::Ioctl(Ioctl::NetSetBackend {
                        index,
                        fd: Fd::Unbind,
                    }));
                }
                for index in 0..2 {
                    self.push(Op::Ioctl(Ioctl::GetVringBase { index }));
                }
            }
            1 => self.push(Op::Ioctl(Ioctl::ResetOwner)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: u64 = 0x1_3800_8000;

    fn addr_ok(a: Addr) -> bool {
        match a {
            Addr::Mem(offset) => offset < MAP_SIZE,
            Addr::Raw(v) => BOGUS.contains(&v),
        }
    }

    #[test]
    fn a_seed_names_one_sequence() {
        for seed in 0..50 {
            let a = format!("{:?}", generate(seed, BOTH));
            let b = format!("{:?}", generate(seed, BOTH));
            assert_eq!(a, b, "seed {seed}");
        }
        assert_ne!(
            format!("{:?}", generate(1, BOTH)),
            format!("{:?}", generate(2, BOTH))
        );
    }

    /// What keeps the devices from writing into the fuzzer itself: guest
    /// memory writes inside guest memory, every address inside the side's
    /// mapping or at a bogus one, memory table user ranges too, and dirty
    /// log addresses small.
    #[test]
    fn every_address_stays_inside_the_mapping_or_unmapped() {
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..500 {
            for op in generate(seed, BOTH) {
                kinds.insert(op.name());
                match op {
                    Op::Write { offset, bytes, .. } => {
                        assert!(offset + bytes.len() as u64 <= MEM_SIZE, "seed {seed}")
                    }
                    Op::Ioctl(Ioctl::SetMemTable { regions, .. }) => {
                        assert!(regions.len() <= 70);
                        for r in regions {
                            assert!(addr_ok(r.user), "seed {seed}: {r:?}");
                            match r.user {
                                Addr::Mem(at) => {
                                    assert!(at + r.size <= MAP_SIZE, "seed {seed}: {r:?}")
                                }
                                Addr::Raw(0x1000) => assert!(r.size <= 0xf000),
                                Addr::Raw(_) => {}
                            }
                        }
                    }
                    Op::Ioctl(Ioctl::SetVringAddr {
                        desc,
                        avail,
                        used,
                        log,
                        ..
                    }) => {
                        assert!(
                            addr_ok(desc) && addr_ok(avail) && addr_ok(used),
                            "seed {seed}"
                        );
                        assert!(log < 1 << 32);
                    }
                    Op::Ioctl(Ioctl::SetLogBase(a)) => {
                        assert!(addr_ok(a));
                        // Bits land up to 128 KiB past the base: inside guest
                        // memory, or for the read-only page (where setting
                        // them fails) in the guard behind the mapping.
                        if let Addr::Mem(at) = a {
                            assert!(at == RO_PAGE || at + (1 << 17) <= MEM_SIZE);
                        }
                    }
                    _ => {}
                }
            }
        }
        // The generator reaches every kind of operation.
        assert_eq!(kinds.len(), 31, "{kinds:?}");
    }
}
