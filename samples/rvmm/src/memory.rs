//! Guest RAM and loading the guest program into it.

use anyhow::{bail, ensure, Context, Result};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest RAM: one region from guest-physical 0.
pub type GuestRam = GuestMemoryMmap<()>;

/// Allocates `size` bytes of guest RAM.
pub fn ram(size: usize) -> Result<GuestRam> {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size)]).context("allocating guest RAM")
}

/// Loads a static x86-64 ELF executable (its `PT_LOAD` segments at their
/// physical addresses) and returns its entry point.
pub fn load_elf(ram: &GuestRam, image: &[u8]) -> Result<u64> {
    ensure!(
        image.len() >= 64 && &image[..4] == b"\x7fELF",
        "not an ELF file"
    );
    ensure!(
        image[4] == 2 && image[5] == 1,
        "not a 64-bit little-endian ELF"
    );
    let u16_at = |o: usize| u16::from_le_bytes([image[o], image[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(image[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(image[o..o + 8].try_into().expect("8 bytes"));
    ensure!(u16_at(16) == 2, "not an executable (ET_EXEC) ELF");
    ensure!(u16_at(18) == 62, "not an x86-64 ELF");
    let entry = u64_at(24);
    let (phoff, phentsize, phnum) = (
        u64_at(32) as usize,
        usize::from(u16_at(54)),
        usize::from(u16_at(56)),
    );
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        ensure!(
            ph + 56 <= image.len(),
            "program header {i} outside the file"
        );
        if u32_at(ph) != 1 {
            continue; // not PT_LOAD
        }
        let (offset, paddr) = (u64_at(ph + 8) as usize, u64_at(ph + 24));
        let (filesz, memsz) = (u64_at(ph + 32) as usize, u64_at(ph + 40) as usize);
        let Some(bytes) = image.get(offset..offset + filesz) else {
            bail!("segment {i} outside the file");
        };
        ram.write_slice(bytes, GuestAddress(paddr))
            .with_context(|| format!("segment {i} at {paddr:#x} outside guest RAM"))?;
        // The rest of the segment (.bss) is zero: fresh RAM already is, but
        // say so explicitly for reloads.
        if memsz > filesz {
            let zeroes = vec![0u8; memsz - filesz];
            ram.write_slice(&zeroes, GuestAddress(paddr + filesz as u64))
                .with_context(|| format!("segment {i} .bss outside guest RAM"))?;
        }
    }
    Ok(entry)
}
