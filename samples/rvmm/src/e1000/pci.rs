//! The e1000's PCI configuration space (type 0 header, no capabilities).
//!
//! Config accesses are dword-based: `read`/`write` take the dword at
//! `offset & !3`; `read_sized`/`write_sized` serve byte and word accesses
//! (as the 0xCFC data port sees them) by shifting and merging.

/// Intel.
pub const VENDOR_ID: u16 = 0x8086;
/// 82540EM (desktop).
pub const DEVICE_ID: u16 = 0x100E;
/// Ethernet controller.
pub const CLASS_CODE: u32 = 0x02_00_00;
/// Revision the 82540EM reports.
pub const REVISION: u8 = 3;
/// Subsystem vendor / device.
pub const SUBSYS_VENDOR_ID: u16 = 0x8086;
/// Subsystem id the 82540EM-A desktop adapter uses.
pub const SUBSYS_ID: u16 = 0x001E;
/// BAR0: register window size.
pub const BAR0_SIZE: u32 = 0x2_0000;
/// BAR1: I/O window size (IOADDR/IODATA).
pub const BAR1_SIZE: u32 = 0x40;

/// Command: I/O space decoding.
pub const CMD_IO: u16 = 1 << 0;
/// Memory space decoding.
pub const CMD_MEMORY: u16 = 1 << 1;
/// The device may master the bus (DMA).
pub const CMD_BUS_MASTER: u16 = 1 << 2;
/// Bits of the command register software may set: I/O, memory, bus
/// master, parity error response, SERR, INTx disable (stored only: the
/// Linux driver never sets it, and the model's line ignores it).
const CMD_WRITABLE: u16 = CMD_IO | CMD_MEMORY | CMD_BUS_MASTER | (1 << 6) | (1 << 8) | (1 << 10);

const OFF_COMMAND: usize = 0x04;
const OFF_BAR0: usize = 0x10;
const OFF_BAR1: usize = 0x14;
const OFF_CACHE_LINE: usize = 0x0C;
const OFF_INTERRUPT: usize = 0x3C;
/// BAR1 type bit: I/O space.
const BAR_IO: u32 = 1;

/// The 256-byte configuration header.
#[derive(Clone, Debug)]
pub struct PciConfig {
    command: u16,
    /// BAR0 as stored (base bits only; type bits are 0: 32-bit, non-prefetchable memory).
    bar0: u32,
    /// BAR1 as stored (base bits only; the I/O bit is added on read).
    bar1: u32,
    cache_line: u8,
    latency: u8,
    interrupt_line: u8,
}

impl Default for PciConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl PciConfig {
    /// An unconfigured function: decoding off, BARs zero.
    pub fn new() -> Self {
        PciConfig {
            command: 0,
            bar0: 0,
            bar1: 0,
            cache_line: 0,
            latency: 0,
            interrupt_line: 0,
        }
    }

    /// Reads the dword containing `offset` (offsets past 0xFF read 0).
    pub fn read(&self, offset: usize) -> u32 {
        match offset & !3 {
            0x00 => u32::from(DEVICE_ID) << 16 | u32::from(VENDOR_ID),
            // Status 0: no capabilities list, nothing latched.
            OFF_COMMAND => u32::from(self.command),
            0x08 => CLASS_CODE << 8 | u32::from(REVISION),
            // Header type 0, single function, no BIST.
            OFF_CACHE_LINE => u32::from(self.latency) << 8 | u32::from(self.cache_line),
            OFF_BAR0 => self.bar0,
            OFF_BAR1 => self.bar1 | BAR_IO,
            0x2C => u32::from(SUBSYS_ID) << 16 | u32::from(SUBSYS_VENDOR_ID),
            // Interrupt pin A; MIN_GNT / MAX_LAT 0.
            OFF_INTERRUPT => 1 << 8 | u32::from(self.interrupt_line),
            _ => 0,
        }
    }

    /// Writes the dword at `offset & !3`. Read-only fields ignore writes; a
    /// BAR keeps only the bits its size allows, so writing all-ones and
    /// reading back gives the size mask.
    pub fn write(&mut self, offset: usize, value: u32) {
        match offset & !3 {
            // The status half is read-only here (nothing to clear).
            OFF_COMMAND => self.command = value as u16 & CMD_WRITABLE,
            OFF_CACHE_LINE => {
                self.cache_line = value as u8;
                self.latency = (value >> 8) as u8;
            }
            OFF_BAR0 => self.bar0 = value & !(BAR0_SIZE - 1),
            OFF_BAR1 => self.bar1 = value & !(BAR1_SIZE - 1),
            OFF_INTERRUPT => self.interrupt_line = value as u8,
            _ => {}
        }
    }

    /// Reads `size` (1, 2 or 4) bytes at `offset`, as the data port
    /// returns them (the containing dword, shifted).
    pub fn read_sized(&self, offset: usize, size: usize) -> u32 {
        let shift = (offset & 3) * 8;
        let v = self.read(offset) >> shift;
        match size {
            1 => v & 0xFF,
            2 => v & 0xFFFF,
            _ => v,
        }
    }

    /// Writes `size` (1, 2 or 4) bytes at `offset` by merging them into
    /// the containing dword. Sub-dword writes to a BAR merge with the
    /// current base, as on a real function.
    pub fn write_sized(&mut self, offset: usize, size: usize, value: u32) {
        let shift = (offset & 3) * 8;
        let mask: u32 = match size {
            1 => 0xFF,
            2 => 0xFFFF,
            _ => u32::MAX,
        };
        let mask = mask.checked_shl(shift as u32).unwrap_or(0);
        let old = self.read(offset);
        let merged = (old & !mask) | ((value << shift) & mask);
        self.write(offset, merged);
    }

    /// Whether DMA is allowed (command: bus master).
    pub fn bus_master(&self) -> bool {
        self.command & CMD_BUS_MASTER != 0
    }

    /// BAR0's base when memory decoding is on and the BAR holds an
    /// address (not 0, not the all-ones sizing pattern).
    pub fn bar0(&self) -> Option<u64> {
        let programmed = self.bar0 != 0 && self.bar0 != !(BAR0_SIZE - 1);
        (self.command & CMD_MEMORY != 0 && programmed).then_some(u64::from(self.bar0))
    }

    /// BAR1's I/O base when I/O decoding is on and the BAR is programmed
    /// (below 64 KiB, not the sizing pattern).
    pub fn bar1(&self) -> Option<u16> {
        let programmed = self.bar1 != 0 && self.bar1 <= 0xFFFF;
        (self.command & CMD_IO != 0 && programmed).then_some(self.bar1 as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_class() {
        let p = PciConfig::new();
        assert_eq!(p.read(0), 0x100E_8086);
        assert_eq!(p.read(8), 0x0200_0003);
        assert_eq!(p.read(0x2C), 0x001E_8086);
        assert_eq!(p.read_sized(0x3D, 1), 1);
        assert_eq!(p.read_sized(2, 2), 0x100E);
        assert_eq!(p.read(0x100), 0);
    }

    #[test]
    fn bar_sizing() {
        let mut p = PciConfig::new();
        p.write(0x10, u32::MAX);
        assert_eq!(p.read(0x10), 0xFFFE_0000);
        p.write(0x14, u32::MAX);
        assert_eq!(p.read(0x14), 0xFFFF_FFC1);
        p.write(0x18, u32::MAX);
        assert_eq!(p.read(0x18), 0);
        assert_eq!(p.bar0(), None);
        p.write(0x10, 0xFEB8_0000);
        p.write(0x14, 0xC001);
        assert_eq!(p.bar0(), None, "memory decoding still off");
        p.write_sized(4, 2, u32::from(CMD_MEMORY | CMD_IO | CMD_BUS_MASTER));
        assert_eq!(p.bar0(), Some(0xFEB8_0000));
        assert_eq!(p.bar1(), Some(0xC000));
        assert!(p.bus_master());
    }

    #[test]
    fn command_and_interrupt_line() {
        let mut p = PciConfig::new();
        p.write(4, 0xFFFF_FFFF);
        assert_eq!(p.read(4), u32::from(CMD_WRITABLE));
        p.write_sized(0x3C, 1, 11);
        assert_eq!(p.read(0x3c) & 0xff, 11);
        assert_eq!(p.read(0x3C), 0x0000_010B);
        p.write(0x3C, 0xFFFF_FF05);
        assert_eq!(p.read(0x3C), 0x0000_0105);
    }
}
