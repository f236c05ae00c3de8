//! The virtio-mmio (version 2) transport's registers for a virtio-net device
//! with an RX and a TX queue. The data path is not here: it is the vhost
//! device's (rvhost or upstream vhost-net), handed the rings at DRIVER_OK.

/// Size of the register window.
pub const MMIO_SIZE: u64 = 0x1000;
/// `QueueNotify`: the register the guest kicks through (an ioeventfd).
pub const QUEUE_NOTIFY: u64 = 0x50;
/// Queues of a virtio-net device without multiqueue: RX = 0, TX = 1.
pub const NUM_QUEUES: usize = 2;
/// Largest ring rvmm offers.
pub const QUEUE_NUM_MAX: u32 = 256;

const MAGIC: u32 = 0x7472_6976; // "virt"
const VERSION: u32 = 2;
const DEVICE_ID_NET: u32 = 1;
const VENDOR_ID: u32 = 0x554d_4551; // as QEMU's: "QEMU"

/// `DRIVER_OK` in the status register.
pub const STATUS_DRIVER_OK: u32 = 4;

/// One queue as the driver configured it (guest-physical ring addresses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueConfig {
    pub num: u32,
    pub ready: bool,
    pub desc: u64,
    pub driver: u64,
    pub device: u64,
}

/// What a register write asks of the VMM.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The driver set DRIVER_OK: start the data path with these queues.
    DriverOk,
    /// The driver reset the device (status 0).
    Reset,
}

/// The transport's register state.
#[derive(Debug, Default)]
pub struct VirtioMmio {
    pub device_features: u64,
    pub driver_features: u64,
    pub queues: [QueueConfig; NUM_QUEUES],
    pub status: u32,
    pub interrupt_status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    queue_sel: u32,
    config: [u8; 8],
}

fn set_half(value: &mut u64, high: bool, half: u32) {
    if high {
        *value = (*value & 0xffff_ffff) | (u64::from(half) << 32);
    } else {
        *value = (*value & !0xffff_ffff) | u64::from(half);
    }
}

impl VirtioMmio {
    /// A device offering `features`, with MAC address `mac`.
    pub fn new(features: u64, mac: [u8; 6]) -> Self {
        let mut config = [0u8; 8];
        config[..6].copy_from_slice(&mac);
        config[6] = 1; // VIRTIO_NET_S_LINK_UP
        Self {
            device_features: features,
            config,
            ..Default::default()
        }
    }

    fn queue(&mut self) -> Option<&mut QueueConfig> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    /// A guest read of `data.len()` bytes at `offset`.
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        if offset >= 0x100 {
            let start = (offset - 0x100) as usize;
            for (i, b) in data.iter_mut().enumerate() {
                *b = self.config.get(start + i).copied().unwrap_or(0);
            }
            return;
        }
        let queue = self.queues.get(self.queue_sel as usize);
        let value: u32 = match offset {
            0x00 => MAGIC,
            0x04 => VERSION,
            0x08 => DEVICE_ID_NET,
            0x0c => VENDOR_ID,
            0x10 => match self.device_features_sel {
                0 => self.device_features as u32,
                1 => (self.device_features >> 32) as u32,
                _ => 0,
            },
            0x34 => queue.map_or(0, |_| QUEUE_NUM_MAX),
            0x44 => queue.map_or(0, |q| u32::from(q.ready)),
            0x60 => self.interrupt_status,
            0x70 => self.status,
            0xfc => 0, // config generation
            _ => 0,
        };
        let bytes = value.to_le_bytes();
        let n = data.len().min(4);
        data[..n].copy_from_slice(&bytes[..n]);
    }

    /// A guest write at `offset`; registers are 32-bit.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Option<Event> {
        let mut bytes = [0u8; 4];
        let n = data.len().min(4);
        bytes[..n].copy_from_slice(&data[..n]);
        let value = u32::from_le_bytes(bytes);
        match offset {
            0x14 => self.device_features_sel = value,
            0x20 => match self.driver_features_sel {
                // Only bits the device offers can be acked.
                0 => set_half(
                    &mut self.driver_features,
                    false,
                    value & self.device_features as u32,
                ),
                1 => set_half(
                    &mut self.driver_features,
                    true,
                    value & (self.device_features >> 32) as u32,
                ),
                _ => {}
            },
            0x24 => self.driver_features_sel = value,
            0x30 => self.queue_sel = value,
            0x38 => {
                if let Some(q) = self.queue() {
                    q.num = value.min(QUEUE_NUM_MAX);
                }
            }
            0x44 => {
                if let Some(q) = self.queue() {
                    q.ready = value == 1;
                }
            }
            0x64 => self.interrupt_status &= !value,
            0x70 => {
                if value == 0 {
                    *self = Self::new(
                        self.device_features,
                        self.config[..6].try_into().unwrap_or_default(),
                    );
                    return Some(Event::Reset);
                }
                let was = self.status;
                self.status = value;
                if value & STATUS_DRIVER_OK != 0 && was & STATUS_DRIVER_OK == 0 {
                    return Some(Event::DriverOk);
                }
            }
            0x80 | 0x84 | 0x90 | 0x94 | 0xa0 | 0xa4 => {
                let high = offset & 4 != 0;
                if let Some(q) = self.queue() {
                    let field = match offset & !4 {
                        0x80 => &mut q.desc,
                        0x90 => &mut q.driver,
                        _ => &mut q.device,
                    };
                    set_half(field, high, value);
                }
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS_FEATURES_OK: u32 = 8;

    fn w(dev: &mut VirtioMmio, offset: u64, value: u32) -> Option<Event> {
        dev.write(offset, &value.to_le_bytes())
    }

    fn r(dev: &VirtioMmio, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        dev.read(offset, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn identification_and_features() {
        let mut dev = VirtioMmio::new((1 << 32) | (1 << 29), [2, 0, 0, 0, 0, 1]);
        assert_eq!(r(&dev, 0), MAGIC);
        assert_eq!(r(&dev, 8), 1);
        w(&mut dev, 0x14, 1);
        assert_eq!(r(&dev, 0x10), 1);
        w(&mut dev, 0x24, 0);
        w(&mut dev, 0x20, 0xffff_ffff);
        w(&mut dev, 0x24, 1);
        w(&mut dev, 0x20, 1);
        assert_eq!(
            dev.driver_features,
            (1 << 32) | (1 << 29),
            "only offered bits are acked"
        );
        let mut mac = [0u8; 6];
        dev.read(0x100, &mut mac);
        assert_eq!(mac, [2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn queue_setup_and_driver_ok() {
        let mut dev = VirtioMmio::new(1 << 32, [0; 6]);
        w(&mut dev, 0x30, 1);
        assert_eq!(r(&dev, 0x34), QUEUE_NUM_MAX);
        w(&mut dev, 0x38, 4096);
        w(&mut dev, 0x80, 0x20_0000);
        w(&mut dev, 0x84, 1);
        w(&mut dev, 0x90, 0x20_1000);
        w(&mut dev, 0xa0, 0x20_2000);
        w(&mut dev, 0x44, 1);
        let q = dev.queues[1];
        assert_eq!(
            (q.num, q.ready, q.desc, q.driver, q.device),
            (256, true, 0x1_0020_0000, 0x20_1000, 0x20_2000)
        );
        assert_eq!(w(&mut dev, 0x70, 1 | 2 | STATUS_FEATURES_OK), None);
        assert_eq!(
            w(
                &mut dev,
                0x70,
                1 | 2 | STATUS_FEATURES_OK | STATUS_DRIVER_OK
            ),
            Some(Event::DriverOk)
        );
        assert_eq!(w(&mut dev, 0x70, 0), Some(Event::Reset));
        assert!(!dev.queues[1].ready);
        w(&mut dev, 0x30, 7);
        assert_eq!(r(&dev, 0x34), 0, "no queue 7");
    }
}
