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
pub type Region = nettest::vhost_ioctl::Region<Addr>;

/// A vhost ioctl, made alike on both devices.
pub type Ioctl = nettest::vhost_ioctl::Ioctl<Addr, Fd, Vec<Region>>;

#[derive(Clone, Debug)]
pub enum Op {
    Ioctl(Ioctl),
    /// Acks `mask` restricted to the features both devices offer.
    SetFeatures {
        mask: u64,
    },
    /// Acks bits neither device offers (restricted to those at run time).
    SetUnknownFeatures(u64),
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
            Op::Ioctl(call) => call.name(),
            Op::SetFeatures { .. } => "SET_FEATURES",
            Op::SetUnknownFeatures(_) => "SET_FEATURES(unknown bits)",
            Op::InChild(op) => match **op {
                Op::Ioctl(Ioctl::SetOwner) => "SET_OWNER in a child",
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
            Op::Ioctl(Ioctl::SetMemTable {
                regions, padding, ..
            }) => {
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
            // Without the wrapper, as the call is named everywhere else.
            Op::Ioctl(call) => format!("{call:?}"),
            other => format!("{other:?}"),
        }
    }
}
