//! Guest RAM and loading the guest program into it.

use anyhow::{anyhow, Context, Result};
use linux_loader::loader::{elf::Elf, KernelLoader};
use std::fs::File;
use std::path::Path;
use vm_memory::{Address, GuestAddress, GuestMemoryMmap};

/// Guest RAM: one region from guest-physical 0.
pub type GuestRam = GuestMemoryMmap<()>;

/// Allocates `size` bytes of guest RAM.
pub fn ram(size: usize) -> Result<GuestRam> {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size)]).context("allocating guest RAM")
}

/// Loads a static x86-64 ELF executable (its `PT_LOAD` segments at their
/// physical addresses, with linux-loader) and returns its entry point.
pub fn load_elf(ram: &GuestRam, path: &Path) -> Result<u64> {
    let mut file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let loaded = Elf::load(ram, None, &mut file, None)
        .map_err(|e| anyhow!("{}: not an ELF file rvmm can load ({e})", path.display()))?;
    Ok(loaded.kernel_load.raw_value())
}
