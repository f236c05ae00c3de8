// SPDX-License-Identifier: GPL-2.0

//! KUnit suites of rvhost_net, run at `insmod` in the test kernel.
//!
//! They exercise the pure logic as compiled into the module (the same files
//! `cargo test` checks on the host) and the kernel-side glue around it.

use crate::ktest::TestResult;
use crate::logic::{
    coalesce::{CoalesceParams, Coalescer, Decision, F_ADAPTIVE, MAX_USECS},
    errno::Errno,
    features::{self, Features},
    ioctl::{stage_of, Stage, VhostIoctl},
    iotlb::{
        encode_miss, parse_written, Iotlb, Lookup, Mapping, Misses, ACCESS_RO, ACCESS_WO,
        MAX_MAPPINGS, MSG_V2,
    },
    memtable::{MemTable, Region, MAX_REGIONS},
    owner::Ownership,
    ratelimit::RateLimit,
    ring_config::{log_bitmap_range, RingSizes, VringAddr, VringConfig},
    ring_fault::RingFault,
    round::{RoundBudget, ROUND_PACKETS},
    split_ring::{
        need_event, pending, walk_chain, CallSuppression, Chain, Desc, DescReader, DriverState,
        Segment, PACKET_DESC_LIMIT, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
    },
    tap_frame::{header_fits, TapFrameError, TapFrameGeometry, VIRTIO_NET_HDR_LEN},
};
use crate::sys::access::user_access_ok;
use kernel::{alloc::KVVec, prelude::*};

// --- ioctl decoding ----------------------------------------------------------

fn decode_every_request() -> TestResult {
    for req in VhostIoctl::ALL {
        check_eq!(VhostIoctl::decode(req.number()), Some(req));
    }
    Ok(())
}

fn decode_rejects_foreign_numbers() -> TestResult {
    // Same request number with the wrong size or direction, another magic, garbage.
    check_eq!(VhostIoctl::decode(0x8004_af00), None);
    check_eq!(VhostIoctl::decode(0x4008_ae00), None);
    check_eq!(VhostIoctl::decode(0xffff_ffff), None);
    check_eq!(VhostIoctl::decode(0), None);
    Ok(())
}

fn dispatch_stages_follow_upstream() -> TestResult {
    check_eq!(VhostIoctl::SetOwner.stage(), Stage::Net);
    check_eq!(VhostIoctl::NetSetBackend.stage(), Stage::Net);
    check_eq!(VhostIoctl::SetMemTable.stage(), Stage::Device);
    check_eq!(VhostIoctl::SetVringNum.stage(), Stage::Vring);
    // Unknown numbers fall through to the ring path, as in vhost_vring_ioctl().
    check_eq!(stage_of(0x0000_af7f), Stage::Vring);
    Ok(())
}

kunit_suite!(
    ioctl_decode,
    [
        decode_every_request,
        decode_rejects_foreign_numbers,
        dispatch_stages_follow_upstream
    ]
);

// --- feature negotiation -----------------------------------------------------

fn offered_features_accepted() -> TestResult {
    check_eq!(
        Features::negotiate(features::OFFERED).map(Features::bits),
        Ok(features::OFFERED)
    );
    check_eq!(Features::negotiate(0).map(Features::bits), Ok(0));
    Ok(())
}

fn unknown_feature_bits_refused() -> TestResult {
    check_eq!(Features::negotiate(1 << 63), Err(Errno::OpNotSupp));
    // VIRTIO_F_ACCESS_PLATFORM (bit 33, an IOTLB) is offered, bit 34 is not.
    check!(Features::negotiate(1 << 33).is_ok());
    check_eq!(Features::negotiate(1 << 34), Err(Errno::OpNotSupp));
    check_eq!(features::negotiate_backend(1 << 5), Err(Errno::OpNotSupp));
    Ok(())
}

fn net_header_length() -> TestResult {
    let hdr = 1u64 << features::VHOST_NET_F_VIRTIO_NET_HDR;
    check_eq!(Features::negotiate(hdr).map(|f| f.device_hdr_len()), Ok(10));
    let v1 = hdr | 1 << features::VIRTIO_F_VERSION_1;
    check_eq!(Features::negotiate(v1).map(|f| f.device_hdr_len()), Ok(12));
    let sock_hdr = 1u64 << features::VIRTIO_NET_F_MRG_RXBUF;
    check_eq!(
        Features::negotiate(sock_hdr).map(|f| f.device_hdr_len()),
        Ok(0)
    );
    Ok(())
}

kunit_suite!(
    feature_negotiation,
    [
        offered_features_accepted,
        unknown_feature_bits_refused,
        net_header_length
    ]
);

// --- owner state machine and errnos -------------------------------------------

fn owner_set_once() -> TestResult {
    let mut owner = Ownership::new();
    check_eq!(owner.check(&1u32), Err(Errno::Perm));
    check_eq!(owner.set(1), Ok(()));
    check_eq!(owner.set(1), Err(Errno::Busy));
    check_eq!(owner.check(&1), Ok(()));
    check_eq!(owner.check(&2), Err(Errno::Perm));
    Ok(())
}

fn owner_reset_then_set_again() -> TestResult {
    let mut owner = Ownership::new();
    check_eq!(owner.reset(&1u32), Err(Errno::Perm));
    check_eq!(owner.set(1), Ok(()));
    check_eq!(owner.reset(&2), Err(Errno::Perm));
    check_eq!(owner.reset(&1), Ok(1));
    check!(!owner.is_owned());
    check_eq!(owner.set(2), Ok(()));
    Ok(())
}

fn errnos_reach_userspace_unchanged() -> TestResult {
    check_eq!(Error::from(Errno::Perm).to_errno(), EPERM.to_errno());
    check_eq!(Error::from(Errno::Busy).to_errno(), EBUSY.to_errno());
    check_eq!(Error::from(Errno::Fault).to_errno(), EFAULT.to_errno());
    check_eq!(Error::from(Errno::NoTty).to_errno(), ENOTTY.to_errno());
    check_eq!(Error::from(Errno::OpNotSupp).to_errno(), -95);
    check_eq!(Error::from(Errno::NoBufs).to_errno(), -105);
    check_eq!(Error::from(Errno::NotSock).to_errno(), -88);
    Ok(())
}

kunit_suite!(
    owner_state,
    [
        owner_set_once,
        owner_reset_then_set_again,
        errnos_reach_userspace_unchanged
    ]
);

// --- harness self-test (only in builds with RVHOST_KUNIT_SELFTEST_FAIL=1) ----

#[cfg(rvhost_kunit_selftest_fail)]
fn deliberately_fails() -> TestResult {
    check_eq!(1 + 1, 3);
    Ok(())
}

#[cfg(rvhost_kunit_selftest_fail)]
kunit_suite!(selftest, [deliberately_fails]);

// --- memory table --------------------------------------------------------------

fn memory_table_header() -> TestResult {
    check_eq!(MemTable::check_header(64, 0, MAX_REGIONS), Ok(64));
    check_eq!(
        MemTable::check_header(65, 0, MAX_REGIONS),
        Err(Errno::TooBig)
    );
    check_eq!(
        MemTable::check_header(1, 1, MAX_REGIONS),
        Err(Errno::OpNotSupp)
    );
    Ok(())
}

fn memory_table_refuses_empty_and_wrapping_regions() -> TestResult {
    let mut table = KBox::new(MemTable::new(), GFP_KERNEL).map_err(|_| alloc_failure())?;
    let empty = Region {
        guest_phys_addr: 0x1000,
        memory_size: 0,
        userspace_addr: 0x1000_0000,
    };
    check_eq!(table.push(empty), Err(Errno::Fault));
    let wraps = Region {
        guest_phys_addr: u64::MAX - 0xfff,
        memory_size: 0x2000,
        userspace_addr: 0x1000_0000,
    };
    check_eq!(table.push(wraps), Err(Errno::Fault));
    check!(table.regions().is_empty());
    // A kernel user address is stored but fails the check made when a ring goes live.
    let kernel = Region {
        guest_phys_addr: 0,
        memory_size: 0x1000,
        userspace_addr: 0xffff_8880_0000_0000,
    };
    check_eq!(table.push(kernel), Ok(()));
    check!(!table.user_ranges_ok(user_access_ok));
    Ok(())
}

fn memory_table_translation_edges() -> TestResult {
    let mut table = KBox::new(MemTable::new(), GFP_KERNEL).map_err(|_| alloc_failure())?;
    check_eq!(
        table.push(Region {
            guest_phys_addr: 0,
            memory_size: 0x1000,
            userspace_addr: 0x7000_0000
        }),
        Ok(())
    );
    check_eq!(
        table.push(Region {
            guest_phys_addr: 0x1000,
            memory_size: 0x1000,
            userspace_addr: 0x9000_0000
        }),
        Ok(())
    );
    check!(table.user_ranges_ok(user_access_ok));
    check_eq!(table.translate(0xff8, 0x10), Ok((0x7000_0ff8, 8)));
    check_eq!(table.translate(0x1000, 0x10), Ok((0x9000_0000, 0x10)));
    check_eq!(table.translate(0x2000, 1), Err(Errno::Fault));
    check!(table.covers(0xff8, 0x10));
    check!(!table.covers(0x1ff8, 0x10));
    check!(!table.covers(u64::MAX, 2));
    Ok(())
}

kunit_suite!(
    memory_table,
    [
        memory_table_header,
        memory_table_refuses_empty_and_wrapping_regions,
        memory_table_translation_edges
    ]
);

// --- vring configuration ---------------------------------------------------------

fn vring_num_rules() -> TestResult {
    let mut vq = VringConfig::new();
    for bad in [0, 3, 0x1_0000, u32::MAX] {
        check_eq!(vq.set_num(bad, false), Err(Errno::Inval));
    }
    check_eq!(vq.set_num(0x8000, false), Ok(()));
    check_eq!(vq.set_num(256, true), Err(Errno::Busy));
    check_eq!(vq.num, 0x8000);
    Ok(())
}

fn vring_addr_rules() -> TestResult {
    let mut vq = VringConfig::new();
    let good = VringAddr {
        flags: 0,
        desc_user_addr: 0x1000,
        avail_user_addr: 0x2002,
        used_user_addr: 0x3004,
        log_guest_addr: 0,
    };
    check_eq!(
        vq.set_addr(
            VringAddr { flags: 2, ..good },
            false,
            false,
            0,
            user_access_ok
        ),
        Err(Errno::OpNotSupp)
    );
    // Misaligned rings.
    for misaligned in [
        VringAddr {
            avail_user_addr: 0x2001,
            ..good
        },
        VringAddr {
            used_user_addr: 0x3002,
            ..good
        },
    ] {
        check_eq!(
            vq.set_addr(misaligned, false, false, 0, user_access_ok),
            Err(Errno::Inval)
        );
    }
    let kernel = VringAddr {
        desc_user_addr: 0xffff_8880_0000_0000,
        ..good
    };
    check_eq!(vq.set_addr(kernel, false, false, 0, user_access_ok), Ok(()));
    check_eq!(
        vq.set_addr(kernel, true, false, 0, user_access_ok),
        Err(Errno::Inval)
    );
    check_eq!(vq.set_addr(good, true, true, 0, user_access_ok), Ok(()));
    Ok(())
}

fn vring_base_rules_and_sizes() -> TestResult {
    let mut vq = VringConfig::new();
    check_eq!(vq.set_base(0x1_0000, false), Err(Errno::Inval));
    check_eq!(vq.set_base(7, true), Err(Errno::Busy));
    check_eq!(vq.set_base(0xffff, false), Ok(()));
    check_eq!(
        RingSizes::new(256, true),
        RingSizes {
            desc: 4096,
            avail: 518,
            used: 2054
        }
    );
    check_eq!(log_bitmap_range(0x1000, 0x8000, 1), Some((0x1001, 1)));
    check_eq!(log_bitmap_range(u64::MAX, 0x8000, 1), None);
    Ok(())
}

kunit_suite!(
    vring_config,
    [
        vring_num_rules,
        vring_addr_rules,
        vring_base_rules_and_sizes
    ]
);

/// A KUnit failure for an allocation that failed in a test.
fn alloc_failure() -> crate::ktest::Failure {
    crate::ktest::Failure {
        file: file!(),
        line: line!(),
        check: "allocation",
    }
}

// --- split ring parsing and event index -----------------------------------------

/// A descriptor table of 4 entries and one indirect table of 4, in arrays.
struct TestTables {
    ring: [Desc; 4],
    indirect: [Desc; 4],
}

impl DescReader for TestTables {
    fn ring_desc(&mut self, index: u16) -> core::result::Result<Desc, RingFault> {
        self.ring
            .get(usize::from(index))
            .copied()
            .ok_or(RingFault::DescUnreadable)
    }
    fn indirect_desc(&mut self, table: u64, index: u16) -> core::result::Result<Desc, RingFault> {
        if table != 0x9000 {
            return Err(RingFault::IndirectUnreadable);
        }
        self.indirect
            .get(usize::from(index))
            .copied()
            .ok_or(RingFault::IndirectUnreadable)
    }
}

/// Walks with the per-packet descriptor limit.
fn walk(
    t: &mut TestTables,
    num: u16,
    head: u16,
    segs: &mut [Segment],
) -> core::result::Result<Chain, RingFault> {
    let mut budget = PACKET_DESC_LIMIT;
    walk_chain(t, num, head, segs, &mut budget)
}

fn desc(addr: u64, len: u32, flags: u16, next: u16) -> Desc {
    Desc {
        addr,
        len,
        flags,
        next,
    }
}

const NEXT: u16 = VRING_DESC_F_NEXT;
const WRITE: u16 = VRING_DESC_F_WRITE;
const INDIRECT: u16 = VRING_DESC_F_INDIRECT;

fn chain_walk_direct_and_indirect() -> TestResult {
    let mut t = TestTables {
        ring: [Desc::default(); 4],
        indirect: [Desc::default(); 4],
    };
    t.ring[1] = desc(0x1000, 12, NEXT, 3);
    t.ring[3] = desc(0x9000, 32, INDIRECT, 0);
    t.indirect[0] = desc(0x2000, 100, NEXT | WRITE, 1);
    t.indirect[1] = desc(0x3000, 50, WRITE, 0);
    let mut segs = [Segment::default(); 4];
    let chain = walk(&mut t, 4, 1, &mut segs);
    check_eq!(
        chain,
        Ok(Chain {
            head: 1,
            readable: 1,
            writable: 2
        })
    );
    check_eq!(
        segs[2],
        Segment {
            addr: 0x3000,
            len: 50,
            writable: true
        }
    );
    check_eq!(Desc::from_le_bytes(t.ring[1].to_le_bytes()), t.ring[1]);
    Ok(())
}

fn chain_walk_refuses_hostile_rings() -> TestResult {
    let mut t = TestTables {
        ring: [Desc::default(); 4],
        indirect: [Desc::default(); 4],
    };
    let mut segs = [Segment::default(); 8];
    check_eq!(
        walk(&mut t, 4, 4, &mut segs),
        Err(RingFault::HeadOutOfRange)
    );
    t.ring[0] = desc(0x1000, 1, NEXT, 7);
    check_eq!(
        walk(&mut t, 4, 0, &mut segs),
        Err(RingFault::NextOutOfRange)
    );
    t.ring[0] = desc(0x1000, 1, NEXT, 1);
    t.ring[1] = desc(0x1000, 1, NEXT, 0);
    check_eq!(walk(&mut t, 4, 0, &mut segs), Err(RingFault::ChainLoop));
    t.ring[1] = desc(0x9000, 17, INDIRECT, 0);
    check_eq!(
        walk(&mut t, 4, 1, &mut segs),
        Err(RingFault::IndirectBadLength)
    );
    t.ring[1] = desc(0x9000, 32, INDIRECT, 0);
    t.indirect[0] = desc(0x9000, 16, INDIRECT, 0);
    check_eq!(
        walk(&mut t, 4, 1, &mut segs),
        Err(RingFault::IndirectNested)
    );
    t.ring[2] = desc(0x1000, 1, NEXT | WRITE, 3);
    t.ring[3] = desc(0x1000, 1, 0, 0);
    check_eq!(
        walk(&mut t, 4, 2, &mut segs),
        Err(RingFault::ReadableAfterWritable)
    );
    check_eq!(pending(13, 4, 8), Err(RingFault::AvailIndexJump));
    check_eq!(pending(12, 4, 8), Ok(8));
    Ok(())
}

fn chain_walk_is_bounded_by_its_budget() -> TestResult {
    let mut t = TestTables {
        ring: [Desc::default(); 4],
        indirect: [Desc::default(); 4],
    };
    // Zero-length descriptors: no segment, but every read costs.
    t.ring[0] = desc(0x1000, 0, NEXT, 1);
    t.ring[1] = desc(0x9000, 64, INDIRECT, 0);
    for i in 0..3u16 {
        t.indirect[usize::from(i)] = desc(0x2000, 0, NEXT, i + 1);
    }
    t.indirect[3] = desc(0x2000, 0, 0, 0);
    let mut segs = [Segment::default(); 4];
    let mut budget = 6;
    check_eq!(
        walk_chain(&mut t, 4, 0, &mut segs, &mut budget).map(|c| c.len()),
        Ok(0)
    );
    check_eq!(budget, 0);
    let mut budget = 5;
    check_eq!(
        walk_chain(&mut t, 4, 0, &mut segs, &mut budget),
        Err(RingFault::TooManyDescriptors)
    );
    Ok(())
}

fn round_budget_counts_drops() -> TestResult {
    let mut round = RoundBudget::new();
    for _ in 0..ROUND_PACKETS {
        check!(!round.exhausted());
        round.packet(0);
    }
    check!(round.exhausted());
    let mut limit = RateLimit::new(1000, 2);
    check_eq!(limit.allow(0), Some(0));
    check_eq!(limit.allow(1), Some(0));
    check_eq!(limit.allow(2), None);
    check_eq!(limit.allow(1000), Some(1));
    Ok(())
}

fn event_index_wraps() -> TestResult {
    check!(need_event(10, 15, 10));
    check!(!need_event(15, 15, 10));
    check!(need_event(0xffff, 2, 0xfffe));
    check!(need_event(1, 2, 0xfffe));
    check!(!need_event(2, 2, 0xfffe));
    check!(!need_event(0xfffd, 2, 0xfffe));
    let driver = DriverState {
        event_idx: true,
        notify_on_empty: false,
        avail_flags: 0,
        used_event: 3,
        avail_empty: false,
    };
    let mut calls = CallSuppression::default();
    check!(calls.should_signal(1, driver));
    check!(!calls.should_signal(3, driver));
    check!(calls.should_signal(4, driver));
    check!(!calls.should_signal(9, driver));
    Ok(())
}

fn coalescing_holds_within_its_bounds() -> TestResult {
    let mut c = Coalescer::default();
    let params = CoalesceParams::new(16, 50, 0);
    check!(params.is_ok());
    check!(!c.set(params.unwrap_or(CoalesceParams::OFF), 0));
    check_eq!(
        c.after_round(true, 10, false, || 0),
        Decision::Hold {
            arm_ns: Some(50_000)
        }
    );
    // Owed although the guest's index does not ask again.
    check_eq!(
        c.after_round(false, 5, false, || 0),
        Decision::Hold { arm_ns: None }
    );
    check_eq!(c.after_round(false, 1, false, || 0), Decision::Signal);
    check!(!c.timer_expired(0));
    check_eq!(
        c.after_round(true, 1, false, || 0),
        Decision::Hold {
            arm_ns: Some(50_000)
        }
    );
    check!(c.timer_expired(0));
    // Never held while the guest has no buffers left.
    check_eq!(c.after_round(true, 1, true, || 0), Decision::Signal);
    check!(CoalesceParams::new(0, MAX_USECS + 1, 0).is_err());
    check!(!c.set(CoalesceParams::OFF, 0));
    check_eq!(c.after_round(true, 1, false, || 0), Decision::Signal);
    // Adaptive: at once after a quiet 50 µs, held within 50 µs of the last.
    let adaptive = CoalesceParams::new(16, 50, F_ADAPTIVE);
    check!(!c.set(adaptive.unwrap_or(CoalesceParams::OFF), 0));
    check_eq!(c.after_round(true, 1, false, || 100_000), Decision::Signal);
    check_eq!(
        c.after_round(true, 1, false, || 130_000),
        Decision::Hold {
            arm_ns: Some(20_000)
        }
    );
    check!(c.timer_expired(150_000));
    Ok(())
}

kunit_suite!(
    split_ring,
    [
        chain_walk_direct_and_indirect,
        chain_walk_refuses_hostile_rings,
        chain_walk_is_bounded_by_its_budget,
        round_budget_counts_drops,
        event_index_wraps,
        coalescing_holds_within_its_bounds
    ]
);

// --- tap batch fragments -------------------------------------------------------

/// This kernel's fragment geometry (`NET_SKB_PAD` is `max(32, L1_CACHE_BYTES)`).
fn kernel_geometry() -> TapFrameGeometry {
    let cache_line = crate::sys::bindings::RVHOST_SMP_CACHE_BYTES;
    TapFrameGeometry {
        cache_line,
        skb_pad: core::cmp::max(32, cache_line),
        ip_align: crate::sys::bindings::RVHOST_NET_IP_ALIGN,
        xdp_headroom: crate::sys::bindings::RVHOST_XDP_PACKET_HEADROOM,
        shared_info: crate::sys::bindings::RVHOST_SKB_SHARED_INFO_SIZE,
        page_size: kernel::page::PAGE_SIZE,
    }
}

fn full_size_frames_fit_a_fragment() -> TestResult {
    let geometry = kernel_geometry();
    for sock_hlen in [0, 10, 12] {
        for xdp in [false, true] {
            let layout = geometry.layout(sock_hlen + 1514, sock_hlen, xdp);
            check!(layout.is_ok());
            let Ok(layout) = layout else { continue };
            check_eq!(layout.headroom % geometry.cache_line, 0);
            check!(layout.headroom + layout.frame + geometry.shared_info <= layout.buflen);
            check!(layout.buflen <= geometry.page_size);
        }
    }
    Ok(())
}

fn gso_frames_go_alone_and_short_ones_are_refused() -> TestResult {
    let geometry = kernel_geometry();
    check_eq!(
        geometry.layout(12 + 65_000, 12, false),
        Err(TapFrameError::TooBig)
    );
    check_eq!(
        geometry.layout(11, 12, false),
        Err(TapFrameError::ShortFrame)
    );
    let mut header = [0u8; VIRTIO_NET_HDR_LEN];
    header[2] = 60;
    check!(header_fits(&header, 60, true));
    check!(!header_fits(&header, 59, true));
    Ok(())
}

kunit_suite!(
    tap_frame,
    [
        full_size_frames_fit_a_fragment,
        gso_frames_go_alone_and_short_ones_are_refused
    ]
);

// --- IOTLB (VIRTIO_F_ACCESS_PLATFORM) ----------------------------------------

/// The IOTLB in kernel memory of upstream's size: updates, lookups with
/// access checks, invalidation, the oldest mapping forgotten when full.
fn iotlb_in_kernel_memory() -> TestResult {
    let storage = KVVec::from_elem(Mapping::default(), MAX_MAPPINGS, GFP_KERNEL);
    check!(storage.is_ok());
    let Ok(storage) = storage else { return Ok(()) };
    let mut tlb = Iotlb::new(storage);
    for page in 0..MAX_MAPPINGS as u64 + 1 {
        check!(tlb
            .update(page << 12, 0x1000, 0x10_0000 + (page << 12), ACCESS_RO)
            .is_ok());
    }
    check_eq!(tlb.mappings().len(), MAX_MAPPINGS);
    check_eq!(tlb.translate(0, 1, ACCESS_RO), Err(Lookup::Miss(0)));
    check_eq!(tlb.translate(0x1010, 8, ACCESS_RO), Ok((0x10_1010, 8)));
    check_eq!(tlb.translate(0x1010, 8, ACCESS_WO), Err(Lookup::Denied));
    check_eq!(tlb.translate_range(0x1ff0, 0x20, ACCESS_RO), Ok(0x10_1ff0));
    tlb.invalidate(0x1000, 0x2000);
    check_eq!(
        tlb.translate(0x1010, 8, ACCESS_RO),
        Err(Lookup::Miss(0x1010))
    );
    Ok(())
}

/// Messages are parsed in upstream's order and misses read back as written.
fn iotlb_messages() -> TestResult {
    let miss = encode_miss(MSG_V2, 0xabc0, ACCESS_WO);
    check_eq!(miss.len(), crate::sys::bindings::RVHOST_VHOST_MSG_V2_SIZE);
    let parsed = parse_written(&miss);
    check!(matches!(parsed, Ok((MSG_V2, m)) if m.iova == 0xabc0 && m.perm == ACCESS_WO));
    check_eq!(parse_written(&miss[..3]), Err(Errno::Inval));
    let mut misses = Misses::<2>::new();
    misses.record(1, 0x5000, ACCESS_RO);
    check_eq!(misses.next_unread(), Some((0x5000, ACCESS_RO)));
    check_eq!(misses.answered(0x5000, 0x1000), 0b10);
    Ok(())
}

kunit_suite!(iotlb, [iotlb_in_kernel_memory, iotlb_messages]);
