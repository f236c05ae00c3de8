//! Register offsets (bytes from the start of BAR0) and the bits the model
//! looks at, from the 8254x family manual's register summary. The map is
//! kept whole (a few entries are only documentation).
#![allow(dead_code)]

// General registers.
/// Device control.
pub const CTRL: u64 = 0x0000;
/// Device status (read-only).
pub const STATUS: u64 = 0x0008;
/// EEPROM/flash control: the microwire bit-bang interface.
pub const EECD: u64 = 0x0010;
/// EEPROM read: a word at a time, without bit-banging.
pub const EERD: u64 = 0x0014;
/// Extended device control.
pub const CTRL_EXT: u64 = 0x0018;
/// MDI control: PHY register access.
pub const MDIC: u64 = 0x0020;
/// Flow control address low.
pub const FCAL: u64 = 0x0028;
/// Flow control address high.
pub const FCAH: u64 = 0x002C;
/// Flow control type.
pub const FCT: u64 = 0x0030;
/// VLAN ether type.
pub const VET: u64 = 0x0038;

// Interrupts.
/// Interrupt cause read (read clears).
pub const ICR: u64 = 0x00C0;
/// Interrupt throttling rate (256 ns units).
pub const ITR: u64 = 0x00C4;
/// Interrupt cause set.
pub const ICS: u64 = 0x00C8;
/// Interrupt mask set (write ORs; read returns the mask).
pub const IMS: u64 = 0x00D0;
/// Interrupt mask clear.
pub const IMC: u64 = 0x00D8;

// Receive.
/// Receive control.
pub const RCTL: u64 = 0x0100;
/// Flow control transmit timer value.
pub const FCTTV: u64 = 0x0170;
/// Transmit configuration word (fiber; stored only).
pub const TXCW: u64 = 0x0178;
/// LED control.
pub const LEDCTL: u64 = 0x0E00;
/// Packet buffer allocation.
pub const PBA: u64 = 0x1000;
/// Flow control receive threshold low.
pub const FCRTL: u64 = 0x2160;
/// Flow control receive threshold high.
pub const FCRTH: u64 = 0x2168;
/// RX descriptor base low.
pub const RDBAL: u64 = 0x2800;
/// RX descriptor base high.
pub const RDBAH: u64 = 0x2804;
/// RX descriptor ring length in bytes.
pub const RDLEN: u64 = 0x2808;
/// RX descriptor head.
pub const RDH: u64 = 0x2810;
/// RX descriptor tail.
pub const RDT: u64 = 0x2818;
/// RX delay timer (1.024 µs units); non-zero enables RADV in ITR mode.
pub const RDTR: u64 = 0x2820;
/// RX descriptor control.
pub const RXDCTL: u64 = 0x2828;
/// RX absolute delay (1.024 µs units).
pub const RADV: u64 = 0x282C;
/// RX small packet detect.
pub const RSRPD: u64 = 0x2C00;
/// RX checksum control.
pub const RXCSUM: u64 = 0x5000;

// Transmit.
/// Transmit control.
pub const TCTL: u64 = 0x0400;
/// Transmit inter-packet gap.
pub const TIPG: u64 = 0x0410;
/// Adaptive IFS throttle.
pub const AIT: u64 = 0x0458;
/// TX descriptor base low.
pub const TDBAL: u64 = 0x3800;
/// TX descriptor base high.
pub const TDBAH: u64 = 0x3804;
/// TX descriptor ring length in bytes.
pub const TDLEN: u64 = 0x3808;
/// TX descriptor head.
pub const TDH: u64 = 0x3810;
/// TX descriptor tail.
pub const TDT: u64 = 0x3818;
/// TX interrupt delay (1.024 µs units).
pub const TIDV: u64 = 0x3820;
/// TX descriptor control.
pub const TXDCTL: u64 = 0x3828;
/// TX absolute interrupt delay (1.024 µs units).
pub const TADV: u64 = 0x382C;

// Statistics: 0x4000..0x4100, every register clears when read.
/// First statistics register.
pub const STATS_START: u64 = 0x4000;
/// One past the last statistics register.
pub const STATS_END: u64 = 0x4100;
/// Receive no buffers count.
pub const RNBC: u64 = 0x40A0;
/// Good packets received.
pub const GPRC: u64 = 0x4074;
/// Broadcast packets received.
pub const BPRC: u64 = 0x4078;
/// Multicast packets received.
pub const MPRC: u64 = 0x407C;
/// Good packets transmitted.
pub const GPTC: u64 = 0x4080;
/// Good octets received (64 bits), low.
pub const GORCL: u64 = 0x4088;
/// Good octets received, high.
pub const GORCH: u64 = 0x408C;
/// Good octets transmitted (64 bits), low.
pub const GOTCL: u64 = 0x4090;
/// Good octets transmitted, high.
pub const GOTCH: u64 = 0x4094;
/// Total octets received (64 bits), low.
pub const TORL: u64 = 0x40C0;
/// Total octets received, high.
pub const TORH: u64 = 0x40C4;
/// Total octets transmitted (64 bits), low.
pub const TOTL: u64 = 0x40C8;
/// Total octets transmitted, high.
pub const TOTH: u64 = 0x40CC;
/// Total packets received.
pub const TPR: u64 = 0x40D0;
/// Total packets transmitted.
pub const TPT: u64 = 0x40D4;
/// Multicast packets transmitted.
pub const MPTC: u64 = 0x40F0;
/// Broadcast packets transmitted.
pub const BPTC: u64 = 0x40F4;

// Address filtering.
/// Multicast table array: 128 dwords.
pub const MTA: u64 = 0x5200;
/// One past the multicast table.
pub const MTA_END: u64 = 0x5400;
/// Receive address pairs (RAL n at RA + 8n, RAH n at RA + 8n + 4), 16 pairs.
pub const RA: u64 = 0x5400;
/// One past the receive addresses.
pub const RA_END: u64 = 0x5480;
/// VLAN filter table array: 128 dwords.
pub const VFTA: u64 = 0x5600;
/// One past the VLAN filter table.
pub const VFTA_END: u64 = 0x5800;
/// Wake-up control.
pub const WUC: u64 = 0x5800;
/// Wake-up filter control.
pub const WUFC: u64 = 0x5808;
/// Management control.
pub const MANC: u64 = 0x5820;

/// Size of BAR0 (the register window).
pub const BAR0_SIZE: u64 = 0x2_0000;

// I/O BAR (BAR1): an address/data pair into the register window.
/// IOADDR: the register offset the next IODATA access goes to.
pub const IOADDR: u64 = 0x0;
/// IODATA: reads/writes the register IOADDR names.
pub const IODATA: u64 = 0x4;

// CTRL bits.
/// Set link up.
pub const CTRL_SLU: u32 = 1 << 6;
/// Speed selection 1000 Mb/s.
pub const CTRL_SPD_1000: u32 = 1 << 9;
/// Software-definable pin 0 (set at power-on, with pin 2).
pub const CTRL_SWDPIN0: u32 = 1 << 18;
/// Software-definable pin 2.
pub const CTRL_SWDPIN2: u32 = 1 << 20;
/// Device reset (self-clearing).
pub const CTRL_RST: u32 = 1 << 26;
/// PHY reset.
pub const CTRL_PHY_RST: u32 = 1 << 31;

/// STATUS as the model always reports it: full duplex, link up, 1000 Mb/s,
/// ASDV = 1000, MTXCKOK, GIO master enabled, bit 31 as on the real part.
pub const STATUS_VALUE: u32 = 0x8008_0783;

// EECD bits.
/// Clock input to the EEPROM.
pub const EECD_SK: u32 = 1 << 0;
/// Chip select.
pub const EECD_CS: u32 = 1 << 1;
/// Data into the EEPROM.
pub const EECD_DI: u32 = 1 << 2;
/// Data out of the EEPROM.
pub const EECD_DO: u32 = 1 << 3;
/// Flash write enable (two bits, stored only).
pub const EECD_FWE: u32 = 3 << 4;
/// Software asks for the EEPROM.
pub const EECD_REQ: u32 = 1 << 6;
/// Hardware grants it.
pub const EECD_GNT: u32 = 1 << 7;
/// An EEPROM is present.
pub const EECD_PRES: u32 = 1 << 8;

// EERD bits.
/// Start a read.
pub const EERD_START: u32 = 1 << 0;
/// The read finished; data valid.
pub const EERD_DONE: u32 = 1 << 4;
/// Word address field shift (8 bits).
pub const EERD_ADDR_SHIFT: u32 = 8;
/// Data field shift (16 bits).
pub const EERD_DATA_SHIFT: u32 = 16;

// MDIC bits.
/// PHY register field shift (5 bits).
pub const MDIC_REG_SHIFT: u32 = 16;
/// PHY address field shift (5 bits).
pub const MDIC_PHY_SHIFT: u32 = 21;
/// Opcode field shift (2 bits): 01 write, 10 read.
pub const MDIC_OP_SHIFT: u32 = 26;
/// Opcode: write.
pub const MDIC_OP_WRITE: u32 = 1;
/// Opcode: read.
pub const MDIC_OP_READ: u32 = 2;
/// The access finished.
pub const MDIC_READY: u32 = 1 << 28;
/// Raise MDAC when done.
pub const MDIC_INT_EN: u32 = 1 << 29;
/// The access failed.
pub const MDIC_ERROR: u32 = 1 << 30;

// Interrupt causes (ICR/ICS/IMS/IMC).
/// TX descriptor written back.
pub const ICR_TXDW: u32 = 1 << 0;
/// TX queue empty.
pub const ICR_TXQE: u32 = 1 << 1;
/// Link status change.
pub const ICR_LSC: u32 = 1 << 2;
/// RX descriptor minimum threshold reached.
pub const ICR_RXDMT0: u32 = 1 << 4;
/// Receiver overrun.
pub const ICR_RXO: u32 = 1 << 6;
/// Receiver timer: frames arrived.
pub const ICR_RXT0: u32 = 1 << 7;
/// MDI access complete.
pub const ICR_MDAC: u32 = 1 << 9;
/// All cause bits the 82540 defines (bits 0..16).
pub const ICR_CAUSES: u32 = 0x0001_FFFF;
/// Set in ICR whenever a cause is pending (reads as the summary bit).
pub const ICR_INT_ASSERTED: u32 = 1 << 31;

// RCTL bits.
/// Receiver enable.
pub const RCTL_EN: u32 = 1 << 1;
/// Unicast promiscuous.
pub const RCTL_UPE: u32 = 1 << 3;
/// Multicast promiscuous.
pub const RCTL_MPE: u32 = 1 << 4;
/// Long packet enable (frames over 1522 bytes).
pub const RCTL_LPE: u32 = 1 << 5;
/// RX descriptor minimum threshold size field (2 bits).
pub const RCTL_RDMTS_SHIFT: u32 = 8;
/// Multicast offset field (2 bits): which address bits the MTA hash uses.
pub const RCTL_MO_SHIFT: u32 = 12;
/// Broadcast accept.
pub const RCTL_BAM: u32 = 1 << 15;
/// Buffer size field (2 bits).
pub const RCTL_BSIZE_SHIFT: u32 = 16;
/// Buffer size extension (×16).
pub const RCTL_BSEX: u32 = 1 << 25;
/// Strip the Ethernet CRC.
pub const RCTL_SECRC: u32 = 1 << 26;

// TCTL bits.
/// Transmitter enable.
pub const TCTL_EN: u32 = 1 << 1;

// RAH bits.
/// Address valid.
pub const RAH_AV: u32 = 1 << 31;

/// Whether `offset` is a register the model just stores (reads give back
/// what was written, under `mask`), and the mask of its writable bits.
/// Registers with side effects are handled by name in `mod.rs`.
pub fn plain_mask(offset: u64) -> Option<u32> {
    Some(match offset {
        CTRL_EXT | FCT | VET | FCTTV | TXCW | LEDCTL | PBA | FCRTL | FCRTH | RXDCTL | RSRPD
        | RXCSUM | TIPG | AIT | TXDCTL | WUC | WUFC | MANC | RDBAH | TDBAH => u32::MAX,
        FCAL => u32::MAX,
        FCAH => 0xFFFF,
        // Descriptor bases are 16-byte aligned.
        RDBAL | TDBAL => !0xF,
        // Ring lengths are multiples of 128 bytes, at most 20 bits.
        RDLEN | TDLEN => 0x000F_FF80,
        RDH | TDH => 0xFFFF,
        ITR | RDTR | RADV | TIDV | TADV => 0xFFFF,
        o if (MTA..MTA_END).contains(&o) || (VFTA..VFTA_END).contains(&o) => u32::MAX,
        // RAH: 16 address bits, address select, valid.
        o if (RA..RA_END).contains(&o) && o % 8 == 4 => 0x8003_FFFF,
        o if (RA..RA_END).contains(&o) => u32::MAX,
        _ => return None,
    })
}
