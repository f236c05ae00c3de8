//! The copper PHY (a Marvell 88E1011-class part at MDIO address 1) behind
//! MDIC. It reports a 1000 Mb/s full-duplex link that has finished
//! autonegotiation; writes are stored, reset and restart bits self-clear.

use super::regs::{
    MDIC_ERROR, MDIC_OP_READ, MDIC_OP_SHIFT, MDIC_OP_WRITE, MDIC_PHY_SHIFT, MDIC_READY,
    MDIC_REG_SHIFT,
};

/// The MDIO address the PHY answers at; others get MDIC.ERROR.
pub const PHY_ADDR: u32 = 1;

/// Control (reset, autonegotiation enable/restart, speed, duplex).
pub const PHY_CTRL: usize = 0x00;
/// Status: link up, autonegotiation complete.
pub const PHY_STATUS: usize = 0x01;
/// PHY identifier, high half (0x0141_0C20 in all for the 88E1011).
pub const PHY_ID1: usize = 0x02;
/// PHY identifier, low half.
pub const PHY_ID2: usize = 0x03;
/// Autonegotiation advertisement.
pub const PHY_AUTONEG_ADV: usize = 0x04;
/// Link partner ability.
pub const PHY_LP_ABILITY: usize = 0x05;
/// Autonegotiation expansion.
pub const PHY_AUTONEG_EXP: usize = 0x06;
/// 1000BASE-T control.
pub const PHY_1000T_CTRL: usize = 0x09;
/// 1000BASE-T status.
pub const PHY_1000T_STATUS: usize = 0x0A;
/// Extended status (1000BASE-T capabilities).
pub const PHY_EXT_STATUS: usize = 0x0F;
/// Vendor: specific control.
pub const M88_SPEC_CTRL: usize = 0x10;
/// Vendor: specific status (resolved speed/duplex, link).
pub const M88_SPEC_STATUS: usize = 0x11;
/// Vendor: extended specific control.
pub const M88_EXT_SPEC_CTRL: usize = 0x14;

/// PHY_CTRL: software reset (self-clearing).
const CTRL_RESET: u16 = 1 << 15;
/// PHY_CTRL: restart autonegotiation (self-clearing; completes at once).
const CTRL_RESTART_AN: u16 = 1 << 9;

/// Registers a write leaves alone (status and identification).
const READ_ONLY: [usize; 8] = [
    PHY_STATUS,
    PHY_ID1,
    PHY_ID2,
    PHY_LP_ABILITY,
    PHY_AUTONEG_EXP,
    PHY_1000T_STATUS,
    PHY_EXT_STATUS,
    M88_SPEC_STATUS,
];

/// The PHY's 32 registers.
pub struct Phy {
    regs: [u16; 32],
}

impl Phy {
    /// A PHY in its power-on state with the link up.
    pub fn new() -> Self {
        let mut regs = [0u16; 32];
        // Autoneg enabled, full duplex, speed 1000.
        regs[PHY_CTRL] = 0x1140;
        // 10/100 half/full, extended status, preamble suppression, autoneg
        // complete and able, link up, extended capabilities.
        regs[PHY_STATUS] = 0x796D;
        regs[PHY_ID1] = 0x0141;
        regs[PHY_ID2] = 0x0C20;
        regs[PHY_AUTONEG_ADV] = 0x0DE1;
        // The partner acknowledges and offers 10/100 half/full plus pause.
        regs[PHY_LP_ABILITY] = 0x45E1;
        regs[PHY_AUTONEG_EXP] = 0x0001;
        regs[PHY_1000T_CTRL] = 0x0E00;
        // Local and remote receivers OK; partner 1000 full/half.
        regs[PHY_1000T_STATUS] = 0x3C00;
        regs[PHY_EXT_STATUS] = 0x3000;
        regs[M88_SPEC_CTRL] = 0x0360;
        // 1000 Mb/s, full duplex, speed/duplex resolved, link up.
        regs[M88_SPEC_STATUS] = 0xAC00;
        regs[M88_EXT_SPEC_CTRL] = 0x0D60;
        Phy { regs }
    }

    /// Register `reg` (0..32).
    pub fn read(&self, reg: usize) -> u16 {
        self.regs.get(reg).copied().unwrap_or(0)
    }

    /// Writes register `reg`, honouring the self-clearing control bits.
    pub fn write(&mut self, reg: usize, value: u16) {
        if reg >= self.regs.len() || READ_ONLY.contains(&reg) {
            return;
        }
        if reg == PHY_CTRL {
            if value & CTRL_RESET != 0 {
                *self = Phy::new();
            }
            self.regs[PHY_CTRL] = value & !(CTRL_RESET | CTRL_RESTART_AN);
            return;
        }
        self.regs[reg] = value;
    }

    /// Carries out an MDIC write and returns what MDIC reads as afterwards:
    /// READY always (the access completes at once), the data for a read,
    /// ERROR for another PHY address or an invalid opcode.
    pub fn mdic(&mut self, value: u32) -> u32 {
        let reg = ((value >> MDIC_REG_SHIFT) & 0x1F) as usize;
        let phy = (value >> MDIC_PHY_SHIFT) & 0x1F;
        let op = (value >> MDIC_OP_SHIFT) & 0x3;
        let mut result = (value & !(MDIC_READY | MDIC_ERROR)) | MDIC_READY;
        if phy != PHY_ADDR {
            return result | MDIC_ERROR;
        }
        match op {
            MDIC_OP_READ => result = (result & !0xFFFF) | u32::from(self.read(reg)),
            MDIC_OP_WRITE => self.write(reg, value as u16),
            _ => result |= MDIC_ERROR,
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mdic_read(p: &mut Phy, phy: u32, reg: u32) -> u32 {
        p.mdic((MDIC_OP_READ << MDIC_OP_SHIFT) | (phy << MDIC_PHY_SHIFT) | (reg << MDIC_REG_SHIFT))
    }

    #[test]
    fn id_and_status_read() {
        let mut p = Phy::new();
        let id1 = mdic_read(&mut p, 1, 2);
        let id2 = mdic_read(&mut p, 1, 3);
        assert_ne!(id1 & MDIC_READY, 0);
        assert_eq!(id1 & MDIC_ERROR, 0);
        assert_eq!((id1 & 0xFFFF) << 16 | (id2 & 0xFFFF), 0x0141_0C20);
        assert_eq!(mdic_read(&mut p, 1, 1) & 0xFFFF, 0x796D);
        let other = mdic_read(&mut p, 2, 2);
        assert_ne!(other & MDIC_ERROR, 0);
        assert_ne!(other & MDIC_READY, 0);
    }

    #[test]
    fn writes_store_and_self_clear() {
        let mut p = Phy::new();
        let w = |reg: u32, data: u32| {
            (MDIC_OP_WRITE << MDIC_OP_SHIFT)
                | (1 << MDIC_PHY_SHIFT)
                | (reg << MDIC_REG_SHIFT)
                | data
        };
        assert_ne!(p.mdic(w(4, 0x01E1)) & MDIC_READY, 0);
        assert_eq!(p.read(PHY_AUTONEG_ADV), 0x01E1);
        p.mdic(w(0, 0x1340));
        assert_eq!(p.read(PHY_CTRL), 0x1140);
        p.mdic(w(1, 0));
        assert_eq!(p.read(PHY_STATUS), 0x796D);
        p.mdic(w(0, 0x8000 | 0x1140));
        assert_eq!(p.read(PHY_AUTONEG_ADV), 0x0DE1);
        assert_eq!(p.read(PHY_CTRL), 0x1140);
    }
}
