// SPDX-License-Identifier: GPL-2.0

//! What can be wrong with a ring the guest set up: one value per kind of
//! malformation, so the data path can stop the queue with a reason and the
//! rate-limited diagnostic can say which rule the guest broke.

/// A malformed ring or chain (the guest's fault, never the host's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingFault {
    /// The avail ring (index, flags, entries or `used_event`) is unreadable.
    AvailUnreadable,
    /// The guest moved the avail index by more than the ring size.
    AvailIndexJump,
    /// A head taken from the avail ring is not below the ring size.
    HeadOutOfRange,
    /// A descriptor's `next` lies outside the ring or its indirect table.
    NextOutOfRange,
    /// A chain longer than the ring or its indirect table: a loop.
    ChainLoop,
    /// More descriptors read for one packet than any well-formed packet needs.
    TooManyDescriptors,
    /// More non-empty buffers in one chain than the device gathers.
    TooManySegments,
    /// The descriptor table is unreadable.
    DescUnreadable,
    /// An indirect table whose length is 0 or not a multiple of 16.
    IndirectBadLength,
    /// An indirect table of more than 65536 entries.
    IndirectTooBig,
    /// An indirect descriptor inside an indirect table.
    IndirectNested,
    /// An indirect descriptor that also chains (`NEXT`).
    IndirectChained,
    /// An indirect table outside guest memory or across two regions.
    IndirectUnreadable,
    /// A device-readable buffer after a device-writable one.
    ReadableAfterWritable,
    /// A device-writable buffer on the transmit queue, or a readable one on
    /// the receive queue.
    WrongDirection,
    /// A buffer outside the memory table.
    BufferOutsideMemory,
    /// Buffers shorter than the virtio-net header.
    ShortHeader,
    /// The used ring (elements, index, flags or `avail_event`) is unwritable.
    UsedUnwritable,
    /// With an IOTLB (`VIRTIO_F_ACCESS_PLATFORM`): no mapping covers `iova`.
    /// Not the guest's fault: the device asks the VMM and the queue waits
    /// for the answer (needing `access`).
    IotlbMiss {
        /// The address without a mapping.
        iova: u64,
        /// `ACCESS_RO` or `ACCESS_WO` (`logic::iotlb`).
        access: u8,
    },
    /// With an IOTLB: a buffer or ring whose mapping lacks the access the
    /// device needs (reading what it sends, writing what it receives).
    AccessDenied,
    /// With an IOTLB: a ring part whose mappings are not contiguous in the
    /// owner's memory.
    RingNotContiguous,
}

impl RingFault {
    /// A short description for the kernel log and the tracepoint.
    pub const fn c_description(self) -> &'static core::ffi::CStr {
        match self {
            Self::AvailUnreadable => c"avail ring unreadable",
            Self::AvailIndexJump => c"avail index moved by more than the ring size",
            Self::HeadOutOfRange => c"avail head out of range",
            Self::NextOutOfRange => c"descriptor next out of range",
            Self::ChainLoop => c"descriptor chain loops",
            Self::TooManyDescriptors => c"too many descriptors for one packet",
            Self::TooManySegments => c"too many buffers in one chain",
            Self::DescUnreadable => c"descriptor table unreadable",
            Self::IndirectBadLength => c"indirect table length not a multiple of 16",
            Self::IndirectTooBig => c"indirect table too big",
            Self::IndirectNested => c"indirect descriptor inside an indirect table",
            Self::IndirectChained => c"indirect descriptor with NEXT",
            Self::IndirectUnreadable => c"indirect table outside guest memory",
            Self::ReadableAfterWritable => c"readable buffer after a writable one",
            Self::WrongDirection => c"buffer of the wrong direction",
            Self::BufferOutsideMemory => c"buffer outside guest memory",
            Self::ShortHeader => c"buffers shorter than the virtio-net header",
            Self::UsedUnwritable => c"used ring unwritable",
            Self::IotlbMiss { .. } => c"IOTLB miss",
            Self::AccessDenied => c"IOTLB mapping without the access needed",
            Self::RingNotContiguous => c"ring not contiguous in the owner's memory",
        }
    }

    /// The same, as `str`.
    pub fn description(self) -> &'static str {
        self.c_description().to_str().unwrap_or("malformed ring")
    }
}
