//! PCI configuration mechanism #1 on bus 0: the host bridge's
//! `CONFIG_ADDRESS` register (port 0xCF8) selects bus, slot, function and
//! register; the data window (ports 0xCFC..0xCFF) reads and writes that
//! register of the function there, or reads all ones when none is. Every
//! other access goes to the device itself.

use crate::vcpu::{data_value, MmioBus};
use anyhow::Result;

/// The address register.
pub const CONFIG_ADDRESS: u16 = 0xcf8;
/// The data window's first port.
pub const CONFIG_DATA: u16 = 0xcfc;
/// The data window's last port.
const CONFIG_DATA_END: u16 = 0xcff;
/// `CONFIG_ADDRESS` bit 31: the access goes to configuration space.
const ENABLE: u32 = 1 << 31;
/// What a read of a function that is not there returns.
const NO_DEVICE: u32 = u32::MAX;

/// A PCI function's configuration space.
pub trait PciFunction {
    /// Reads `size` bytes (1, 2 or 4) at `offset`.
    fn config_read(&mut self, offset: usize, size: usize) -> Result<u32>;
    /// Writes the low `size` bytes of `value` at `offset`.
    fn config_write(&mut self, offset: usize, size: usize, value: u32) -> Result<()>;
}

/// What `CONFIG_ADDRESS` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Selection {
    bus: u32,
    slot: u32,
    function: u32,
    /// The dword-aligned register offset.
    register: usize,
}

impl Selection {
    /// Decodes the address register; `None` while configuration access is
    /// off (bit 31 clear).
    fn decode(address: u32) -> Option<Self> {
        (address & ENABLE != 0).then_some(Self {
            bus: (address >> 16) & 0xff,
            slot: (address >> 11) & 0x1f,
            function: (address >> 8) & 0x7,
            register: (address & 0xfc) as usize,
        })
    }
}

/// Bus 0 with one single-function device in `slot`.
pub struct PciBus<D> {
    address: u32,
    slot: u32,
    device: D,
}

impl<D: PciFunction + MmioBus> PciBus<D> {
    pub fn new(slot: u32, device: D) -> Self {
        Self {
            address: 0,
            slot,
            device,
        }
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    /// The register of our device the data port `port` reaches, if the
    /// address register selects it.
    fn selected(&self, port: u16) -> Option<usize> {
        let s = Selection::decode(self.address)?;
        (s.bus == 0 && s.slot == self.slot && s.function == 0)
            .then(|| s.register + usize::from(port - CONFIG_DATA))
    }
}

impl<D: PciFunction + MmioBus> MmioBus for PciBus<D> {
    fn read(&mut self, addr: u64, data: &mut [u8]) -> Result<bool> {
        self.device.read(addr, data)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<bool> {
        self.device.write(addr, data)
    }

    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> Result<bool> {
        let value = match port {
            CONFIG_ADDRESS if data.len() == 4 => self.address,
            CONFIG_DATA..=CONFIG_DATA_END => match self.selected(port) {
                Some(offset) => self.device.config_read(offset, data.len())?,
                None => NO_DEVICE,
            },
            _ => return self.device.pio_read(port, data),
        };
        let n = data.len().min(4);
        data[..n].copy_from_slice(&value.to_le_bytes()[..n]);
        Ok(true)
    }

    fn pio_write(&mut self, port: u16, data: &[u8]) -> Result<bool> {
        let value = data_value(data);
        match port {
            CONFIG_ADDRESS if data.len() == 4 => self.address = value,
            CONFIG_DATA..=CONFIG_DATA_END => {
                if let Some(offset) = self.selected(port) {
                    self.device.config_write(offset, data.len(), value)?;
                }
            }
            _ => return self.device.pio_write(port, data),
        }
        Ok(true)
    }

    fn summary(&mut self) -> Option<serde_json::Value> {
        self.device.summary()
    }

    fn fault(&self) -> Option<String> {
        self.device.fault()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function whose registers read as their offset and record writes.
    #[derive(Default)]
    struct Echo {
        writes: Vec<(usize, usize, u32)>,
    }

    impl PciFunction for Echo {
        fn config_read(&mut self, offset: usize, _size: usize) -> Result<u32> {
            Ok(offset as u32)
        }
        fn config_write(&mut self, offset: usize, size: usize, value: u32) -> Result<()> {
            self.writes.push((offset, size, value));
            Ok(())
        }
    }

    impl MmioBus for Echo {
        fn read(&mut self, _: u64, _: &mut [u8]) -> Result<bool> {
            Ok(false)
        }
        fn write(&mut self, _: u64, _: &[u8]) -> Result<bool> {
            Ok(false)
        }
    }

    fn select(bus: &mut PciBus<Echo>, slot: u32, function: u32, register: u32) {
        let address = ENABLE | slot << 11 | function << 8 | register;
        assert!(bus
            .pio_write(CONFIG_ADDRESS, &address.to_le_bytes())
            .unwrap());
    }

    fn read(bus: &mut PciBus<Echo>, port: u16, size: usize) -> u32 {
        let mut data = vec![0u8; size];
        assert!(bus.pio_read(port, &mut data).unwrap());
        data_value(&data)
    }

    #[test]
    fn the_data_window_reaches_the_selected_register() {
        let mut bus = PciBus::new(3, Echo::default());
        select(&mut bus, 3, 0, 0x10);
        assert_eq!(read(&mut bus, CONFIG_DATA, 4), 0x10);
        assert_eq!(read(&mut bus, CONFIG_DATA + 2, 2), 0x12);
        bus.pio_write(CONFIG_DATA + 1, &[0xab]).unwrap();
        assert_eq!(bus.device().writes, vec![(0x11, 1, 0xab)]);
        assert_eq!(read(&mut bus, CONFIG_ADDRESS, 4), ENABLE | 3 << 11 | 0x10);
    }

    #[test]
    fn empty_slots_functions_and_disabled_access_read_all_ones() {
        let mut bus = PciBus::new(3, Echo::default());
        select(&mut bus, 4, 0, 0);
        assert_eq!(read(&mut bus, CONFIG_DATA, 4), NO_DEVICE);
        select(&mut bus, 3, 1, 0);
        assert_eq!(read(&mut bus, CONFIG_DATA, 4), NO_DEVICE);
        bus.pio_write(CONFIG_ADDRESS, &(3u32 << 11).to_le_bytes())
            .unwrap();
        assert_eq!(read(&mut bus, CONFIG_DATA, 4), NO_DEVICE);
        bus.pio_write(CONFIG_DATA, &[1, 2, 3, 4]).unwrap();
        assert!(bus.device().writes.is_empty());
    }

    #[test]
    fn other_ports_go_to_the_device() {
        let mut bus = PciBus::new(3, Echo::default());
        assert!(!bus.pio_read(0xc000, &mut [0u8; 4]).unwrap());
    }
}
