//! The operations of a fuzz case. Arguments are abstract (offsets into a
//! side's own mapping, kinds of descriptor) so that one operation means the
//! same thing to both devices, each resolving it against its own resources.

/// An address argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addr {
    /// This offset into the side's mapping: read-write guest memory, then a
    /// read-only page, then an inaccessible one (see `side::MAP_SIZE`).
    Mem(u64),
    /// This exact value for both devices (never inside either mapping).
    Raw(u64),
}

/// A descriptor argument, resolved to the side's own file of that kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fd {
    /// `-1`: unbind.
    Unbind,
    /// A number no file is open under.
    Closed,
    /// The kick, call or error eventfd of queue 0 or 1.
    Kick(u8),
    Call(u8),
    Err(u8),
    /// An eventfd no queue uses.
    Spare,
    /// A file that is neither an eventfd nor a socket.
    DevNull,
    /// A tap (`IFF_TAP | IFF_NO_PI`).
    Tap,
    /// A tap that carries a 12-byte virtio-net header (`IFF_VNET_HDR`).
    TapVnetHdr,
    /// A raw `AF_PACKET` socket bound to one end of a veth pair.
    RawPacket,
    /// An `AF_PACKET`, `SOCK_DGRAM` socket (no backend).
    DgramPacket,
    /// A UDP socket (no backend).
    Udp,
    /// The vhost device's own file.
    Device,
}

/// One `struct vhost_memory_region`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub gpa: u64,
    pub size: u64,
    pub user: Addr,
}

#[derive(Clone, Debug)]
pub enum Op {
    SetOwner,
    ResetOwner,
    GetFeatures,
    /// Acks `mask` restricted to the features both devices offer.
    SetFeatures {
        mask: u64,
    },
    /// Acks bits neither device offers (restricted to those at run time).
    SetUnknownFeatures(u64),
    GetBackendFeatures,
    SetBackendFeatures(u64),
    SetMemTable {
        regions: Vec<Region>,
        padding: u32,
    },
    SetLogBase(Addr),
    SetLogFd(Fd),
    SetVringNum {
        index: u32,
        num: u32,
    },
    SetVringBase {
        index: u32,
        num: u32,
    },
    GetVringBase {
        index: u32,
    },
    SetVringAddr {
        index: u32,
        flags: u32,
        desc: Addr,
        avail: Addr,
        used: Addr,
        log: u64,
    },
    SetVringKick {
        index: u32,
        fd: Fd,
    },
    SetVringCall {
        index: u32,
        fd: Fd,
    },
    SetVringErr {
        index: u32,
        fd: Fd,
    },
    NetSetBackend {
        index: u32,
        fd: Fd,
    },
    SetBusyloop {
        index: u32,
        num: u32,
    },
    GetBusyloop {
        index: u32,
    },
    /// rvhost's own statistics ioctl (`rust/rvhost_uapi.h`).
    GetVringStats {
        index: u32,
    },
    /// A request number neither device defines; with `Some(index)` the
    /// argument is a zeroed 64-byte buffer starting with `index`, else NULL.
    Unknown {
        request: u64,
        arg: Option<u32>,
    },
    /// The ioctl made by a forked child (another address space, not the
    /// owner's unless it takes ownership itself; it exits right after).
    InChild(Box<Op>),
    /// Guest memory contents (ring entries, descriptors, buffers).
    Write {
        what: &'static str,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// Signals queue `0`'s or `1`'s kick eventfd.
    Kick(u8),
    /// Sends `count` test frames of `size` bytes into the backend `via`
    /// from its far side (RX work for the device).
    SendFrames {
        via: Fd,
        count: u8,
        size: u16,
    },
    /// Lets the workers run for a while.
    Settle {
        ms: u16,
    },
    /// Reads the used index at `offset` (compared, informational).
    ReadUsed {
        offset: u64,
    },
    /// Closes the device (with whatever is running) and opens it again.
    Reopen,
}

impl Op {
    /// Whether the operation is an ioctl whose answers are compared.
    pub fn is_ioctl(&self) -> bool {
        !matches!(
            self,
            Op::Write { .. }
                | Op::Kick(_)
                | Op::SendFrames { .. }
                | Op::Settle { .. }
                | Op::ReadUsed { .. }
                | Op::Reopen
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Op::SetOwner => "SET_OWNER",
            Op::ResetOwner => "RESET_OWNER",
            Op::GetFeatures => "GET_FEATURES",
            Op::SetFeatures { .. } => "SET_FEATURES",
            Op::SetUnknownFeatures(_) => "SET_FEATURES(unknown bits)",
            Op::GetBackendFeatures => "GET_BACKEND_FEATURES",
            Op::SetBackendFeatures(_) => "SET_BACKEND_FEATURES",
            Op::SetMemTable { .. } => "SET_MEM_TABLE",
            Op::SetLogBase(_) => "SET_LOG_BASE",
            Op::SetLogFd(_) => "SET_LOG_FD",
            Op::SetVringNum { .. } => "SET_VRING_NUM",
            Op::SetVringBase { .. } => "SET_VRING_BASE",
            Op::GetVringBase { .. } => "GET_VRING_BASE",
            Op::SetVringAddr { .. } => "SET_VRING_ADDR",
            Op::SetVringKick { .. } => "SET_VRING_KICK",
            Op::SetVringCall { .. } => "SET_VRING_CALL",
            Op::SetVringErr { .. } => "SET_VRING_ERR",
            Op::NetSetBackend { .. } => "NET_SET_BACKEND",
            Op::SetBusyloop { .. } => "SET_VRING_BUSYLOOP_TIMEOUT",
            Op::GetBusyloop { .. } => "GET_VRING_BUSYLOOP_TIMEOUT",
            Op::GetVringStats { .. } => "RVHOST_GET_VRING_STATS",
            Op::Unknown { .. } => "unknown ioctl",
            Op::InChild(op) => match **op {
                Op::SetOwner => "SET_OWNER in a child",
                _ => "ioctl in a child",
            },
            Op::Write { .. } => "write guest memory",
            Op::Kick(_) => "kick",
            Op::SendFrames { .. } => "send frames",
            Op::Settle { .. } => "settle",
            Op::ReadUsed { .. } => "read used index",
            Op::Reopen => "close and reopen",
        }
    }

    /// A one-line description for findings and `--verbose` (guest memory
    /// writes are summarised, not dumped).
    pub fn describe(&self) -> String {
        match self {
            Op::Write {
                what,
                offset,
                bytes,
            } => format!("write {what} at {offset:#x} ({} bytes)", bytes.len()),
            Op::SetMemTable { regions, padding } => {
                let shown: Vec<String> = regions
                    .iter()
                    .take(4)
                    .map(|r| format!("{{gpa {:#x} size {:#x} user {:?}}}", r.gpa, r.size, r.user))
                    .collect();
                let more = regions.len().saturating_sub(shown.len());
                format!(
                    "SET_MEM_TABLE nregions {} padding {padding} [{}{}]",
                    regions.len(),
                    shown.join(", "),
                    if more > 0 {
                        format!(", +{more} more")
                    } else {
                        String::new()
                    }
                )
            }
            other => format!("{other:?}"),
        }
    }
}
