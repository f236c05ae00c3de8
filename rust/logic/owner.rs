// SPDX-License-Identifier: GPL-2.0

//! The owner state machine of a vhost device.
//!
//! A device is owned by the address space that called `VHOST_SET_OWNER`; only
//! that address space may configure it, and `VHOST_RESET_OWNER` returns it to
//! the unowned state. The owner token `O` is whatever identifies an address
//! space (the kernel side uses a counted `mm_struct` reference), so the logic
//! is the same in the kernel and in host tests.

use super::errno::Errno;

/// Who owns a device.
#[derive(Debug, Default)]
pub struct Ownership<O> {
    owner: Option<O>,
}

impl<O: PartialEq> Ownership<O> {
    /// An unowned device.
    pub const fn new() -> Self {
        Self { owner: None }
    }

    /// Whether an owner is set.
    pub fn is_owned(&self) -> bool {
        self.owner.is_some()
    }

    /// The owner, if any.
    pub fn owner(&self) -> Option<&O> {
        self.owner.as_ref()
    }

    /// `VHOST_SET_OWNER`: `EBUSY` if an owner is already set, whoever asks.
    pub fn set(&mut self, caller: O) -> Result<(), Errno> {
        if self.owner.is_some() {
            return Err(Errno::Busy);
        }
        self.owner = Some(caller);
        Ok(())
    }

    /// The owner check every configuring request makes: `EPERM` unless `caller`
    /// is the owner (so also `EPERM` while there is none).
    pub fn check(&self, caller: &O) -> Result<(), Errno> {
        match &self.owner {
            Some(owner) if owner == caller => Ok(()),
            _ => Err(Errno::Perm),
        }
    }

    /// `VHOST_RESET_OWNER`: only the owner may reset; returns the old owner
    /// token so the caller can release it outside any lock.
    pub fn reset(&mut self, caller: &O) -> Result<O, Errno> {
        self.check(caller)?;
        self.owner.take().ok_or(Errno::Perm)
    }

    /// Drops ownership unconditionally (device release).
    pub fn take(&mut self) -> Option<O> {
        self.owner.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_once_then_busy() {
        let mut own = Ownership::new();
        assert!(!own.is_owned());
        assert_eq!(own.set(1), Ok(()));
        assert_eq!(own.set(1), Err(Errno::Busy));
        assert_eq!(own.set(2), Err(Errno::Busy));
    }

    #[test]
    fn only_the_owner_passes_the_check() {
        let mut own = Ownership::new();
        assert_eq!(own.check(&1), Err(Errno::Perm));
        own.set(1).unwrap();
        assert_eq!(own.check(&1), Ok(()));
        assert_eq!(own.check(&2), Err(Errno::Perm));
    }

    #[test]
    fn reset_by_owner_only_and_set_works_again() {
        let mut own = Ownership::new();
        assert_eq!(own.reset(&1), Err(Errno::Perm));
        own.set(1).unwrap();
        assert_eq!(own.reset(&2), Err(Errno::Perm));
        assert_eq!(own.reset(&1), Ok(1));
        assert!(!own.is_owned());
        assert_eq!(own.set(2), Ok(()));
        assert_eq!(own.take(), Some(2));
    }
}
