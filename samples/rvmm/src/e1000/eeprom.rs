//! The 64-word serial EEPROM behind EECD (microwire bit-bang) and EERD.
//!
//! The image follows the 8254x EEPROM map: MAC address in words 0..=2,
//! initialization control words, PCI ids, and a checksum word chosen so
//! that all 64 words add up to 0xBABA, which drivers verify.

use super::regs::{EECD_CS, EECD_DI, EECD_DO, EECD_FWE, EECD_GNT, EECD_PRES, EECD_REQ, EECD_SK};

/// Number of 16-bit words (a 93C46-class part: 6 address bits).
pub const WORDS: usize = 64;
/// Index of the checksum word.
pub const CHECKSUM_WORD: usize = 0x3F;
/// What words 0..=0x3F must add up to (wrapping).
pub const CHECKSUM_TARGET: u16 = 0xBABA;
/// Microwire READ: start bit 1 then opcode 10.
const OP_READ: u16 = 0b110;
/// Address bits of a 64-word part.
const ADDR_BITS: u8 = 6;

/// Where the microwire state machine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    /// Waiting for the start bit (leading zeros are ignored, as on the part).
    Idle,
    /// Shifting in start bit + opcode + address; `n` bits so far.
    Command { bits: u16, n: u8 },
    /// Reading: after the address comes one dummy 0 (`bit` None), then the
    /// 16 bits of `addr` MSB-first; reads continue into the next word.
    Reading { addr: u8, bit: Option<u8> },
    /// A command we do not carry out (writes, erase: the EEPROM is
    /// read-only here); everything until CS drops is ignored.
    Ignoring,
}

/// The EEPROM contents and the bit-bang interface state.
pub struct Eeprom {
    words: [u16; WORDS],
    /// EECD bits software drives (SK, CS, DI, FWE, REQ), as last written.
    eecd: u32,
    wire: Wire,
}

impl Eeprom {
    /// Builds the image for `mac`, PCI ids 8086:100E, subsystem 8086:001E.
    pub fn new(mac: [u8; 6]) -> Self {
        let mut words = [0xFFFFu16; WORDS];
        for i in 0..3 {
            words[i] = u16::from_le_bytes([mac[2 * i], mac[2 * i + 1]]);
        }
        // 0x03 compatibility, 0x04 LED settings (0xFFFF: driver defaults),
        // 0x05..=0x07 reserved, 0x08/0x09 printed board assembly number.
        words[0x03] = 0x0000;
        words[0x05] = 0x0000;
        words[0x06] = 0x0000;
        words[0x07] = 0x0000;
        words[0x08] = 0xA540;
        words[0x09] = 0x0003;
        // Initialization control 1: signature 01b in bits 15:14.
        words[0x0A] = 0x4408;
        // Subsystem id, subsystem vendor, device id, vendor id.
        words[0x0B] = 0x001E;
        words[0x0C] = 0x8086;
        words[0x0D] = 0x100E;
        words[0x0E] = 0x8086;
        // Initialization control 2: both pause bits (full flow control).
        words[0x0F] = 0x3000;
        let sum = words[..CHECKSUM_WORD]
            .iter()
            .fold(0u16, |acc, w| acc.wrapping_add(*w));
        words[CHECKSUM_WORD] = CHECKSUM_TARGET.wrapping_sub(sum);
        Eeprom {
            words,
            eecd: 0,
            wire: Wire::Idle,
        }
    }

    /// Word `addr`, or None past the end.
    pub fn word(&self, addr: usize) -> Option<u16> {
        self.words.get(addr).copied()
    }

    /// Forgets any transfer in progress (device reset).
    pub fn reset(&mut self) {
        self.eecd = 0;
        self.wire = Wire::Idle;
    }

    /// EECD as software reads it: its own bits back, GNT as soon as REQ is
    /// set (there is no other master), PRES, and DO.
    pub fn read_eecd(&self) -> u32 {
        let mut v = self.eecd | EECD_PRES;
        if self.eecd & EECD_REQ != 0 {
            v |= EECD_GNT;
        }
        if self.data_out() {
            v |= EECD_DO;
        }
        v
    }

    /// What DO shows: data while reading, the dummy 0 before it, and 1
    /// (the line's idle level) otherwise.
    fn data_out(&self) -> bool {
        match self.wire {
            Wire::Reading { bit: None, .. } => false,
            Wire::Reading { addr, bit: Some(b) } => {
                (self.words[addr as usize] >> (15 - b)) & 1 != 0
            }
            _ => true,
        }
    }

    /// A write to EECD: CS low ends any transfer; while CS is high, each
    /// rising edge of SK shifts DI in (command phase) or moves DO to the
    /// next bit (read phase).
    pub fn write_eecd(&mut self, value: u32) {
        let old = self.eecd;
        self.eecd = value & (EECD_SK | EECD_CS | EECD_DI | EECD_FWE | EECD_REQ);
        if value & EECD_CS == 0 {
            self.wire = Wire::Idle;
            return;
        }
        if old & EECD_CS == 0 {
            // CS rising: a new transfer.
            self.wire = Wire::Idle;
        }
        let rising = value & EECD_SK != 0 && old & EECD_SK == 0;
        if !rising {
            return;
        }
        let di = u16::from(value & EECD_DI != 0);
        self.wire = match self.wire {
            Wire::Idle if di == 0 => Wire::Idle,
            Wire::Idle => Wire::Command { bits: 1, n: 1 },
            Wire::Command { bits, n } => {
                let bits = (bits << 1) | di;
                let n = n + 1;
                if n < 3 + ADDR_BITS {
                    Wire::Command { bits, n }
                } else if bits >> ADDR_BITS == OP_READ {
                    Wire::Reading {
                        addr: (bits & ((1 << ADDR_BITS) - 1)) as u8,
                        bit: None,
                    }
                } else {
                    Wire::Ignoring
                }
            }
            Wire::Reading { addr, bit } => match bit {
                None => Wire::Reading { addr, bit: Some(0) },
                Some(15) => Wire::Reading {
                    addr: (addr + 1) % WORDS as u8,
                    bit: Some(0),
                },
                Some(b) => Wire::Reading {
                    addr,
                    bit: Some(b + 1),
                },
            },
            Wire::Ignoring => Wire::Ignoring,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    /// Bit-bangs one word the way a driver does: CS up, clock out opcode
    /// and address on DI, clock in 16 bits reading DO after each rise.
    fn bitbang_read(e: &mut Eeprom, addr: u16) -> u16 {
        let mut eecd = EECD_REQ;
        e.write_eecd(eecd);
        assert_ne!(e.read_eecd() & EECD_GNT, 0);
        eecd |= EECD_CS;
        e.write_eecd(eecd);
        let out = (u32::from(OP_READ) << 6) | u32::from(addr);
        for i in (0..9).rev() {
            eecd = (eecd & !EECD_DI) | if out >> i & 1 != 0 { EECD_DI } else { 0 };
            e.write_eecd(eecd);
            e.write_eecd(eecd | EECD_SK);
            e.write_eecd(eecd);
        }
        // The dummy bit before the data.
        assert_eq!(e.read_eecd() & EECD_DO, 0);
        eecd &= !EECD_DI;
        let mut word = 0u16;
        for _ in 0..16 {
            e.write_eecd(eecd | EECD_SK);
            word = (word << 1) | u16::from(e.read_eecd() & EECD_DO != 0);
            e.write_eecd(eecd);
        }
        e.write_eecd(eecd & !EECD_CS);
        e.write_eecd(0);
        word
    }

    #[test]
    fn checksum_sums_to_baba() {
        let e = Eeprom::new(MAC);
        let sum = e.words.iter().fold(0u16, |a, w| a.wrapping_add(*w));
        assert_eq!(sum, CHECKSUM_TARGET);
        assert_eq!(e.word(0x0D), Some(0x100E));
        assert_eq!(e.word(0x0E), Some(0x8086));
        assert_eq!(e.word(WORDS), None);
    }

    #[test]
    fn microwire_reads_mac() {
        let mut e = Eeprom::new(MAC);
        let mut mac = Vec::new();
        for a in 0..3 {
            mac.extend_from_slice(&bitbang_read(&mut e, a).to_le_bytes());
        }
        assert_eq!(mac, MAC);
        assert_eq!(bitbang_read(&mut e, 0x3F), e.words[0x3F]);
        assert_ne!(e.read_eecd() & EECD_PRES, 0);
    }

    #[test]
    fn microwire_ignores_other_opcodes() {
        let mut e = Eeprom::new(MAC);
        e.write_eecd(EECD_CS);
        // Start bit + WRITE (01) + address 0.
        for bit in [1u32, 0, 1, 0, 0, 0, 0, 0, 0] {
            let di = if bit != 0 { EECD_DI } else { 0 };
            e.write_eecd(EECD_CS | di);
            e.write_eecd(EECD_CS | di | EECD_SK);
        }
        assert_eq!(e.wire, Wire::Ignoring);
        e.write_eecd(0);
        assert_eq!(e.wire, Wire::Idle);
        assert_eq!(e.word(0), Some(u16::from_le_bytes([MAC[0], MAC[1]])));
    }
}
