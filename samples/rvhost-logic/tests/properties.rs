//! Property tests of rvhost's pure logic: each function against a reference
//! model written here from the rule it implements (upstream vhost's, the
//! virtio spec's), on arbitrary input, including everything a hostile guest
//! controls.
//!
//! Each property runs a modest number of cases (500 to 2000, set per block
//! below) so that `cargo test` stays at a few seconds; `PROPTEST_CASES`
//! overrides them all, to run longer:
//! `PROPTEST_CASES=100000 cargo test --release -p rvhost-logic --test properties`.
//! Failures are kept in `proptest-regressions/` (commit them) and replayed
//! first on every run.

use proptest::prelude::*;
use rvhost_logic::errno::Errno;
use rvhost_logic::memtable::{MemTable, Region, MAX_REGIONS};
use rvhost_logic::ratelimit::RateLimit;
use rvhost_logic::ring_fault::RingFault;
use rvhost_logic::round::{
    RoundBudget, PACKET_DESC_LIMIT, ROUND_BYTES, ROUND_DESCS, ROUND_PACKETS,
};
use rvhost_logic::split_ring::{
    need_event, pending, walk_chain, CallSuppression, Chain, Desc, DescReader, DriverState,
    Segment, DESC_SIZE, MAX_INDIRECT, VRING_AVAIL_F_NO_INTERRUPT, VRING_DESC_F_INDIRECT,
    VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};

/// `default_cases` unless `PROPTEST_CASES` says otherwise.
fn config(default_cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config
}

// ---------------------------------------------------------------------------
// Descriptor chains

/// A ring's descriptor table, the indirect tables its descriptors may point
/// at, and ring entries whose reads fail (an unmapped page).
#[derive(Clone, Debug)]
struct Tables {
    ring: Vec<Desc>,
    unreadable: Vec<u16>,
    indirect: Vec<(u64, Vec<Desc>)>,
}

/// Counts every read `walk_chain` makes.
struct CountingReader<'a> {
    t: &'a Tables,
    ring_reads: u32,
    indirect_reads: u32,
}

impl Tables {
    fn ring_desc(&self, index: u16) -> Result<Desc, RingFault> {
        if self.unreadable.contains(&index) {
            return Err(RingFault::DescUnreadable);
        }
        self.ring
            .get(usize::from(index))
            .copied()
            .ok_or(RingFault::DescUnreadable)
    }

    /// A table at an address we do not know, or an entry past the end of
    /// the one we have, is unreadable (like memory outside the table).
    fn indirect_desc(&self, table: u64, index: u16) -> Result<Desc, RingFault> {
        let (_, entries) = self
            .indirect
            .iter()
            .find(|(addr, _)| *addr == table)
            .ok_or(RingFault::IndirectUnreadable)?;
        entries
            .get(usize::from(index))
            .copied()
            .ok_or(RingFault::IndirectUnreadable)
    }
}

impl DescReader for CountingReader<'_> {
    fn ring_desc(&mut self, index: u16) -> Result<Desc, RingFault> {
        self.ring_reads += 1;
        self.t.ring_desc(index)
    }

    fn indirect_desc(&mut self, table: u64, index: u16) -> Result<Desc, RingFault> {
        self.indirect_reads += 1;
        self.t.indirect_desc(table, index)
    }
}

/// Raw material for one descriptor; `decode` turns it into a descriptor
/// biased toward the interesting cases (small lengths, zero lengths, the
/// three meaningful flags, `next` near the ring size, indirect descriptors
/// that point at a real table) while any value stays possible.
type RawDesc = (u8, u64, u32, u16, u16);

fn decode(raw: RawDesc, num: usize, tables: &[(u64, usize)]) -> Desc {
    let (sel, a, l, f, n) = raw;
    let flags = if sel & 0x80 != 0 { f } else { f & 7 };
    let next = if sel & 0x40 != 0 {
        n
    } else {
        (usize::from(n) % (num + 2)) as u16
    };
    let (addr, len) = if flags & VRING_DESC_F_INDIRECT != 0 && sel & 0x20 == 0 && !tables.is_empty()
    {
        let (addr, entries) = tables[a as usize % tables.len()];
        let len = if sel & 0x10 != 0 {
            l
        } else {
            // Often the table's real size, sometimes more or less.
            16 * (l % (entries as u32 + 2))
        };
        (addr, len)
    } else {
        let len = if sel & 0x08 != 0 { l } else { l % 64 };
        (a, len)
    };
    Desc {
        addr,
        len,
        flags,
        next,
    }
}

/// A chain walk to run: the tables, a ring size (a power of two up to 256),
/// a head, how many segments the caller has room for, and a read budget.
#[derive(Clone, Debug)]
struct Walk {
    tables: Tables,
    num: u16,
    head: u16,
    room: usize,
    budget: u32,
}

fn walk_strategy() -> impl Strategy<Value = Walk> {
    (0u32..=8).prop_flat_map(|log2| {
        let num = 1usize << log2;
        (
            proptest::collection::vec(any::<RawDesc>(), num),
            proptest::collection::vec(any::<u16>(), 0..3),
            proptest::collection::vec(
                (
                    any::<u64>(),
                    proptest::collection::vec(any::<RawDesc>(), 0..40),
                ),
                0..3,
            ),
            prop_oneof![4 => 0..(num as u16 + 2), 1 => any::<u16>()],
            0usize..=16,
            prop_oneof![3 => 0u32..64, 3 => 0u32..2048, 1 => any::<u32>()],
        )
            .prop_map(move |(ring, unreadable, indirect, head, room, budget)| {
                let layout: Vec<(u64, usize)> =
                    indirect.iter().map(|(a, e)| (*a, e.len())).collect();
                let indirect = indirect
                    .into_iter()
                    .map(|(addr, raws)| {
                        let count = raws.len();
                        let entries = raws
                            .into_iter()
                            .map(|r| decode(r, count, &layout))
                            .collect();
                        (addr, entries)
                    })
                    .collect();
                Walk {
                    tables: Tables {
                        ring: ring.into_iter().map(|r| decode(r, num, &layout)).collect(),
                        unreadable: unreadable
                            .into_iter()
                            .map(|u| u % (num as u16 + 1))
                            .collect(),
                        indirect,
                    },
                    num: num as u16,
                    head,
                    room,
                    budget,
                }
            })
    })
}

/// The reference: the chain rules of upstream's `vhost_get_vq_desc` and
/// `get_indirect`, written out plainly, plus rvhost's two bounds (a budget
/// of descriptor reads, the caller's room for segments). Returns the
/// segments and the budget left.
fn reference_walk(w: &Walk) -> (Result<Vec<Segment>, RingFault>, u32) {
    let mut budget = w.budget;
    let result = reference_chain(w, &mut budget);
    (result, budget)
}

fn reference_chain(w: &Walk, budget: &mut u32) -> Result<Vec<Segment>, RingFault> {
    let has = |d: &Desc, f: u16| d.flags & f != 0;
    // One read from the budget, refused when it is spent.
    fn spend(budget: &mut u32) -> Result<(), RingFault> {
        if *budget == 0 {
            return Err(RingFault::TooManyDescriptors);
        }
        *budget -= 1;
        Ok(())
    }
    // A buffer joins the chain: readable ones only before writable ones
    // (counting buffers that carry bytes, as upstream counts iovecs);
    // zero-length ones carry nothing and take no room.
    fn add(out: &mut Vec<Segment>, room: usize, d: &Desc) -> Result<(), RingFault> {
        let writable = d.flags & VRING_DESC_F_WRITE != 0;
        if !writable && out.iter().any(|s| s.writable) {
            return Err(RingFault::ReadableAfterWritable);
        }
        if d.len == 0 {
            return Ok(());
        }
        if out.len() == room {
            return Err(RingFault::TooManySegments);
        }
        out.push(Segment {
            addr: d.addr,
            len: d.len,
            writable,
        });
        Ok(())
    }

    if w.num == 0 || w.head >= w.num {
        return Err(RingFault::HeadOutOfRange);
    }
    let mut out = Vec::new();
    let mut at = w.head;
    for _ring_step in 0..w.num {
        spend(budget)?;
        let d = w.tables.ring_desc(at)?;
        if has(&d, VRING_DESC_F_INDIRECT) {
            if has(&d, VRING_DESC_F_NEXT) {
                return Err(RingFault::IndirectChained);
            }
            if d.len == 0 || u64::from(d.len) % DESC_SIZE != 0 {
                return Err(RingFault::IndirectBadLength);
            }
            let count = u64::from(d.len) / DESC_SIZE;
            if count > MAX_INDIRECT {
                return Err(RingFault::IndirectTooBig);
            }
            let mut i: u64 = 0;
            let mut steps = 0;
            loop {
                if steps == count {
                    return Err(RingFault::ChainLoop);
                }
                steps += 1;
                spend(budget)?;
                let e = w.tables.indirect_desc(d.addr, i as u16)?;
                if has(&e, VRING_DESC_F_INDIRECT) {
                    return Err(RingFault::IndirectNested);
                }
                add(&mut out, w.room, &e)?;
                if !has(&e, VRING_DESC_F_NEXT) {
                    break;
                }
                i = u64::from(e.next);
                if i >= count {
                    return Err(RingFault::NextOutOfRange);
                }
            }
        } else {
            add(&mut out, w.room, &d)?;
        }
        if !has(&d, VRING_DESC_F_NEXT) {
            return Ok(out);
        }
        if d.next >= w.num {
            return Err(RingFault::NextOutOfRange);
        }
        at = d.next;
    }
    // More ring descriptors than the ring has: a loop.
    Err(RingFault::ChainLoop)
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn walk_chain_is_bounded_and_agrees_with_the_reference(w in walk_strategy()) {
        let mut reader = CountingReader { t: &w.tables, ring_reads: 0, indirect_reads: 0 };
        let mut segments = vec![Segment::default(); w.room];
        let mut budget = w.budget;
        let result = walk_chain(&mut reader, w.num, w.head, &mut segments, &mut budget);

        // Every read was paid for, and nothing more was taken.
        let reads = reader.ring_reads + reader.indirect_reads;
        prop_assert!(reads <= w.budget, "{reads} reads on a budget of {}", w.budget);
        prop_assert_eq!(w.budget - budget, reads, "budget taken != reads made");
        // The loop bounds: the ring at most once round, an indirect table at
        // most once through.
        prop_assert!(reader.ring_reads <= u32::from(w.num));
        prop_assert!(u64::from(reader.indirect_reads) <= MAX_INDIRECT);

        if let Ok(chain) = result {
            prop_assert_eq!(chain.head, w.head);
            prop_assert!(chain.len() <= w.room);
            let used = &segments[..chain.len()];
            prop_assert!(used[..chain.readable].iter().all(|s| !s.writable && s.len > 0));
            prop_assert!(used[chain.readable..].iter().all(|s| s.writable && s.len > 0));
        }

        let (expected, budget_left) = reference_walk(&w);
        match (&result, &expected) {
            (Ok(chain), Ok(segs)) => {
                let readable = segs.iter().filter(|s| !s.writable).count();
                prop_assert_eq!(
                    *chain,
                    Chain { head: w.head, readable, writable: segs.len() - readable }
                );
                prop_assert_eq!(&segments[..chain.len()], &segs[..]);
            }
            (Err(got), Err(want)) => prop_assert_eq!(got, want),
            _ => prop_assert!(false, "walk_chain {:?}, reference {:?}", result, expected),
        }
        prop_assert_eq!(budget, budget_left);
    }
}

// ---------------------------------------------------------------------------
// Memory table

/// A table over a small window of guest-physical space (at 0, at 2^40, or
/// at the very top, where ranges wrap), so that a byte map can model it.
const WINDOW: u64 = 640;

#[derive(Clone, Debug)]
struct TableCase {
    regions: Vec<Region>,
    queries: Vec<(u64, u64)>,
}

fn table_strategy() -> impl Strategy<Value = TableCase> {
    let base = prop_oneof![Just(0u64), Just(1u64 << 40), Just(u64::MAX - (WINDOW - 1))];
    let size = prop_oneof![
        1 => Just(0u64),
        8 => 1u64..80,
        1 => prop_oneof![Just(u64::MAX), Just(1u64 << 63), Just(WINDOW)],
    ];
    let region = (0u64..560, size, any::<u64>());
    (
        base,
        proptest::collection::vec(region, 0..(MAX_REGIONS + 6)),
        proptest::collection::vec((0u64..WINDOW, 0u64..700), 1..40),
    )
        .prop_map(|(base, regions, queries)| TableCase {
            regions: regions
                .into_iter()
                .map(|(offset, size, user)| Region {
                    guest_phys_addr: base.wrapping_add(offset),
                    memory_size: size,
                    userspace_addr: user,
                })
                .collect(),
            queries: queries
                .into_iter()
                .map(|(offset, len)| (base + offset, len))
                .collect(),
        })
}

/// The size of region `r` as upstream computes its range (`last = start +
/// size - 1`): the empty region at 0 is the whole 64-bit space.
fn size_of(r: &Region) -> u128 {
    if r.guest_phys_addr == 0 && r.memory_size == 0 {
        1u128 << 64
    } else {
        u128::from(r.memory_size)
    }
}

/// Whether region `r` holds byte `gpa` (in 128-bit arithmetic: no wrap).
fn holds(r: &Region, gpa: u64) -> bool {
    let (start, gpa) = (u128::from(r.guest_phys_addr), u128::from(gpa));
    gpa >= start && gpa < start + size_of(r)
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn memtable_agrees_with_a_byte_map(case in table_strategy()) {
        // Building: empty and wrapping regions are refused (EFAULT), a 65th
        // region too (E2BIG); the rest are kept in order.
        let mut table = MemTable::new();
        let mut kept: Vec<Region> = Vec::new();
        for r in &case.regions {
            let wraps = u128::from(r.guest_phys_addr) + size_of(r) > 1u128 << 64;
            let expected = if size_of(r) == 0 || wraps {
                Err(Errno::Fault)
            } else if kept.len() == MAX_REGIONS {
                Err(Errno::TooBig)
            } else {
                Ok(())
            };
            prop_assert_eq!(table.push(*r), expected);
            if expected.is_ok() {
                kept.push(*r);
            }
        }
        prop_assert_eq!(table.regions(), &kept[..]);

        for &(gpa, len) in &case.queries {
            // translate: the first region holding `gpa` wins; the chunk runs
            // byte by byte while that region holds them, at most `len`.
            let expected = match kept.iter().find(|r| holds(r, gpa)) {
                None => Err(Errno::Fault),
                Some(r) => {
                    let mut chunk = 0u64;
                    while chunk < len && gpa.checked_add(chunk).is_some_and(|b| holds(r, b)) {
                        chunk += 1;
                    }
                    Ok((r.userspace_addr.wrapping_add(gpa - r.guest_phys_addr), chunk))
                }
            };
            prop_assert_eq!(table.translate(gpa, len), expected, "translate({:#x}, {})", gpa, len);

            // covers: every byte of the range in some region, no wrap.
            let covered = gpa.checked_add(len).is_some()
                && (0..len).all(|i| kept.iter().any(|r| holds(r, gpa + i)));
            prop_assert_eq!(table.covers(gpa, len), covered, "covers({:#x}, {})", gpa, len);
        }
    }

    #[test]
    fn memtable_header_checks(nregions in any::<u32>(), padding in any::<u32>(), max in 0usize..80) {
        let expected = if padding != 0 {
            Err(Errno::OpNotSupp)
        } else if nregions as usize > max || max > MAX_REGIONS {
            Err(Errno::TooBig)
        } else {
            Ok(nregions as usize)
        };
        prop_assert_eq!(MemTable::check_header(nregions, padding, max), expected);
    }
}

// ---------------------------------------------------------------------------
// Ring indexes and event suppression

/// The virtio spec's rule, by distances rather than `vring_need_event`'s
/// expression: the driver wants a notification once the device moves the
/// index past `event`, i.e. when `event` is one of the indexes
/// `old, old + 1, ..., new - 1` (mod 2^16) that this update moved past.
fn spec_need_event(event: u16, new: u16, old: u16) -> bool {
    let moved = (i32::from(new) - i32::from(old)).rem_euclid(1 << 16);
    let behind = (i32::from(event) - i32::from(old)).rem_euclid(1 << 16);
    behind < moved
}

/// Indexes on both sides of every wrap: 0, the top, the middle.
fn wrap_points() -> Vec<u16> {
    let mut v: Vec<u16> = Vec::new();
    for centre in [0u16, 0x7fff, 0x8000, 0xffff] {
        for d in 0..=20u16 {
            v.push(centre.wrapping_add(d));
            v.push(centre.wrapping_sub(d));
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn need_event_matches_the_spec_around_every_wrap() {
    let points = wrap_points();
    for &old in &points {
        for &new in &points {
            for &event in &points {
                assert_eq!(
                    need_event(event, new, old),
                    spec_need_event(event, new, old),
                    "need_event({event:#x}, {new:#x}, {old:#x})"
                );
            }
        }
    }
}

#[test]
fn pending_for_every_avail_index() {
    // Every avail index against last_avail values at the wraps, for every
    // ring size: the distance mod 2^16, refused past the ring size.
    let lasts = [0u16, 1, 2, 0x7fff, 0x8000, 0xfffe, 0xffff];
    for log2 in 0..=15u32 {
        let num = 1u16 << log2;
        for &last in &lasts {
            for avail in 0..=u16::MAX {
                let distance = (i32::from(avail) - i32::from(last)).rem_euclid(1 << 16);
                let expected = if distance > i32::from(num) {
                    Err(RingFault::AvailIndexJump)
                } else {
                    Ok(distance as u16)
                };
                assert_eq!(pending(avail, last, num), expected);
            }
        }
    }
}

/// Upstream's `vhost_notify`, as the reference for `CallSuppression`.
#[derive(Default)]
struct ReferenceNotify {
    signalled_used: u16,
    signalled_used_valid: bool,
}

impl ReferenceNotify {
    fn notify(&mut self, used: u16, d: DriverState) -> bool {
        if d.notify_on_empty && d.avail_empty {
            return true;
        }
        if !d.event_idx {
            return d.avail_flags & VRING_AVAIL_F_NO_INTERRUPT == 0;
        }
        let old = self.signalled_used;
        let valid = self.signalled_used_valid;
        self.signalled_used = used;
        self.signalled_used_valid = true;
        !valid || spec_need_event(d.used_event, used, old)
    }
}

#[derive(Clone, Debug)]
enum NotifyStep {
    Reset,
    Publish { advance: u16, driver: DriverState },
}

fn driver_state() -> impl Strategy<Value = DriverState> {
    (
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop_oneof![Just(0u16), Just(VRING_AVAIL_F_NO_INTERRUPT), any::<u16>()],
        any::<u16>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(event_idx, notify_on_empty, avail_flags, used_event, avail_empty)| DriverState {
                event_idx,
                notify_on_empty,
                avail_flags,
                used_event,
                avail_empty,
            },
        )
}

fn notify_steps() -> impl Strategy<Value = (u16, Vec<NotifyStep>)> {
    let step = prop_oneof![
        1 => Just(NotifyStep::Reset),
        12 => (
            prop_oneof![4 => 0u16..8, 1 => any::<u16>()],
            driver_state()
        )
            .prop_map(|(advance, driver)| NotifyStep::Publish { advance, driver }),
    ];
    (any::<u16>(), proptest::collection::vec(step, 1..60))
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn need_event_matches_the_spec(event in any::<u16>(), new in any::<u16>(), old in any::<u16>()) {
        prop_assert_eq!(need_event(event, new, old), spec_need_event(event, new, old));
    }

    #[test]
    fn pending_is_the_distance_up_to_the_ring_size(
        avail in any::<u16>(),
        last in any::<u16>(),
        log2 in 0u32..=15,
    ) {
        let num = 1u16 << log2;
        let distance = (i32::from(avail) - i32::from(last)).rem_euclid(1 << 16);
        let expected = if distance > i32::from(num) {
            Err(RingFault::AvailIndexJump)
        } else {
            Ok(distance as u16)
        };
        prop_assert_eq!(pending(avail, last, num), expected);
    }

    #[test]
    fn call_suppression_matches_upstream((start, steps) in notify_steps()) {
        let mut ours = CallSuppression::default();
        let mut reference = ReferenceNotify::default();
        let mut used = start;
        for step in steps {
            match step {
                NotifyStep::Reset => {
                    ours.reset();
                    reference.signalled_used_valid = false;
                }
                NotifyStep::Publish { advance, driver } => {
                    used = used.wrapping_add(advance);
                    prop_assert_eq!(
                        ours.should_signal(used, driver),
                        reference.notify(used, driver),
                        "used {:#x}, {:?}", used, driver
                    );
                }
            }
        }
    }

    #[test]
    fn with_event_idx_a_driver_waiting_at_a_fixed_index_hears_once(
        start in any::<u16>(),
        event in any::<u16>(),
        advances in proptest::collection::vec(1u16..16, 1..200),
    ) {
        // The driver asks to hear when the used index passes `event` and
        // never moves it: after the first signal (always sent), exactly the
        // updates whose window [old, new) holds `event` signal.
        let driver = DriverState {
            event_idx: true,
            notify_on_empty: false,
            avail_flags: VRING_AVAIL_F_NO_INTERRUPT,
            used_event: event,
            avail_empty: false,
        };
        let mut s = CallSuppression::default();
        let mut used = start;
        prop_assert!(s.should_signal(used, driver));
        for advance in advances {
            let old = used;
            used = used.wrapping_add(advance);
            let crossed = (0..advance).any(|k| old.wrapping_add(k) == event);
            prop_assert_eq!(s.should_signal(used, driver), crossed);
        }
    }
}

// ---------------------------------------------------------------------------
// Rate limit and round budget

#[derive(Clone, Debug)]
struct RateCase {
    interval: u64,
    burst: u32,
    /// Clock steps between messages (a few backwards).
    steps: Vec<i64>,
}

fn rate_strategy() -> impl Strategy<Value = RateCase> {
    (
        1u64..1_000_000,
        0u32..20,
        proptest::collection::vec(
            prop_oneof![
                10 => 0i64..50_000,
                2 => 0i64..2_000_000,
                1 => -50_000i64..0,
            ],
            1..400,
        ),
    )
        .prop_map(|(interval, burst, steps)| RateCase {
            interval,
            burst,
            steps,
        })
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn ratelimit_never_lets_more_than_burst_through_per_interval(case in rate_strategy()) {
        let mut rl = RateLimit::new(case.interval, case.burst);
        let mut now: u64 = 1 << 40;
        // The windows as the rule defines them: one opens at the first
        // message at least `interval` after the current one opened.
        let mut window: Option<(u64, u32)> = None;
        let mut allowed_at: Vec<u64> = Vec::new();
        let (mut denied, mut reported) = (0u64, 0u64);
        let mut denied_since_last = 0u64;
        for step in &case.steps {
            now = now.saturating_add_signed(*step);
            let opens = window.is_none_or(|(start, _)| now.saturating_sub(start) >= case.interval);
            if opens {
                window = Some((now, 0));
            }
            let answer = rl.allow(now);
            let (start, count) = window.as_mut().expect("opened above");
            match answer {
                Some(suppressed) => {
                    *count += 1;
                    prop_assert!(*count <= case.burst, "window at {} let {} through", start, count);
                    // The count of left-out messages comes with the next one.
                    prop_assert_eq!(u64::from(suppressed), denied_since_last);
                    reported += u64::from(suppressed);
                    denied_since_last = 0;
                    allowed_at.push(now);
                }
                None => {
                    prop_assert!(*count >= case.burst, "denied with {} of {} used", count, case.burst);
                    denied += 1;
                    denied_since_last += 1;
                }
            }
        }
        prop_assert_eq!(reported + denied_since_last, denied);
        // On a clock that only moves forward, any span of one interval
        // meets at most two windows.
        if case.steps.iter().all(|s| *s >= 0) {
            for (i, &t) in allowed_at.iter().enumerate() {
                let within = allowed_at[i..].iter().take_while(|&&u| u < t + case.interval).count();
                prop_assert!(within as u64 <= 2 * u64::from(case.burst));
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Work {
    Packet(u64),
    Descs(u32),
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn a_round_ends_within_its_bounds(
        work in proptest::collection::vec(
            prop_oneof![
                3 => prop_oneof![4 => 0u64..2000, 1 => 0u64..=65536, 1 => any::<u64>()].prop_map(Work::Packet),
                2 => (0u32..=PACKET_DESC_LIMIT).prop_map(Work::Descs),
            ],
            0..300,
        )
    ) {
        // The worker's loop: check between packets, stop once exhausted.
        let mut b = RoundBudget::new();
        let (mut packets, mut bytes, mut descs) = (0u64, 0u128, 0u64);
        let (mut max_packet, mut was_exhausted) = (0u128, false);
        for w in work {
            if b.exhausted() {
                break;
            }
            match w {
                Work::Packet(n) => {
                    b.packet(n);
                    packets += 1;
                    bytes += u128::from(n);
                    max_packet = max_packet.max(u128::from(n));
                }
                Work::Descs(n) => {
                    b.read(n);
                    descs += u64::from(n);
                }
            }
            let expected = packets >= u64::from(ROUND_PACKETS)
                || bytes >= u128::from(ROUND_BYTES)
                || descs >= u64::from(ROUND_DESCS);
            prop_assert_eq!(b.exhausted(), expected);
            // Once over a bound, always over it.
            prop_assert!(!was_exhausted || b.exhausted());
            was_exhausted = b.exhausted();
        }
        prop_assert_eq!(u64::from(b.packets()), packets);
        prop_assert_eq!(u128::from(b.bytes()), bytes.min(u128::from(u64::MAX)));
        prop_assert_eq!(u64::from(b.descs()), descs);
        prop_assert!(packets <= u64::from(ROUND_PACKETS));
        prop_assert!(bytes < u128::from(ROUND_BYTES) + max_packet.max(1));
        prop_assert!(descs < u64::from(ROUND_DESCS) + u64::from(PACKET_DESC_LIMIT));
    }
}
