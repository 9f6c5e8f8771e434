//! A GUID Partition Table writer: protective MBR, primary header and entry
//! array, backup entry array and header, for 512- or 4096-byte sectors.
//! Written by hand (rather than with the `gpt` crate) so that every GUID is
//! chosen by the caller and the result is byte-for-byte reproducible.

use std::fs::File;
use std::os::unix::fs::FileExt;

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

pub const ENTRIES: usize = 128;
pub const ENTRY_SIZE: usize = 128;

/// A GUID in its textual form, stored as the 16 bytes GPT uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Parse `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (any case).
    pub fn parse(s: &str) -> Result<Guid> {
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        ensure!(
            hex.len() == 32 && s.len() == 36,
            "invalid GUID {s:?}: expected 8-4-4-4-12 hex digits"
        );
        let mut b = [0u8; 16];
        hex::decode_to_slice(&hex, &mut b).with_context(|| format!("invalid GUID {s:?}"))?;
        Ok(Guid::from_text_bytes(b))
    }

    /// The first three fields are stored little-endian.
    fn from_text_bytes(b: [u8; 16]) -> Guid {
        let mut o = b;
        o[0..4].reverse();
        o[4..6].reverse();
        o[6..8].reverse();
        Guid(o)
    }

    /// A random-looking (version 4, variant 1) GUID derived from `seed`, so
    /// that the same build gives the same disk.
    pub fn derived(seed: &str) -> Guid {
        let h = Sha256::digest(seed.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&h[..16]);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Guid::from_text_bytes(b)
    }

    pub fn to_text(&self) -> String {
        let mut b = self.0;
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        let h = hex::encode(b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// One partition: `index` is its 1-based entry number (entries may be left
/// empty, as on s390x where boot and root are 3 and 4).
#[derive(Clone, Debug)]
pub struct GptPartition {
    pub index: usize,
    pub name: String,
    pub type_guid: Guid,
    pub guid: Guid,
    pub first_lba: u64,
    pub last_lba: u64,
    pub attributes: u64,
}

/// Sectors the entry array takes.
pub fn entry_sectors(sector: u64) -> u64 {
    ((ENTRIES * ENTRY_SIZE) as u64).div_ceil(sector)
}

/// First and last usable LBA of a disk of `total` sectors.
pub fn usable(sector: u64, total: u64) -> (u64, u64) {
    let es = entry_sectors(sector);
    (2 + es, total - 2 - es)
}

fn entry_array(parts: &[GptPartition]) -> Result<Vec<u8>> {
    let mut a = vec![0u8; ENTRIES * ENTRY_SIZE];
    for p in parts {
        ensure!(
            (1..=ENTRIES).contains(&p.index),
            "partition number {} out of range",
            p.index
        );
        let e = &mut a[(p.index - 1) * ENTRY_SIZE..p.index * ENTRY_SIZE];
        ensure!(
            e[..16].iter().all(|b| *b == 0),
            "partition number {} used twice",
            p.index
        );
        e[0..16].copy_from_slice(&p.type_guid.0);
        e[16..32].copy_from_slice(&p.guid.0);
        e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
        e[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
        e[48..56].copy_from_slice(&p.attributes.to_le_bytes());
        let name: Vec<u16> = p.name.encode_utf16().collect();
        ensure!(name.len() <= 36, "partition name {:?} is too long", p.name);
        for (i, c) in name.iter().enumerate() {
            e[56 + 2 * i..58 + 2 * i].copy_from_slice(&c.to_le_bytes());
        }
    }
    Ok(a)
}

fn header(
    sector: u64,
    current: u64,
    backup: u64,
    first: u64,
    last: u64,
    disk: Guid,
    entries_lba: u64,
    entries_crc: u32,
) -> Vec<u8> {
    let mut h = vec![0u8; sector as usize];
    h[0..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&current.to_le_bytes());
    h[32..40].copy_from_slice(&backup.to_le_bytes());
    h[40..48].copy_from_slice(&first.to_le_bytes());
    h[48..56].copy_from_slice(&last.to_le_bytes());
    h[56..72].copy_from_slice(&disk.0);
    h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
    h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
    h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
    h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
    let crc = crc32fast::hash(&h[..92]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Write the protective MBR (keeping any boot code already in its first 440
/// bytes), both headers and both entry arrays into `disk`, a file of exactly
/// `total` sectors.
pub fn write(
    file: &File,
    sector: u64,
    total: u64,
    disk: Guid,
    parts: &[GptPartition],
) -> Result<()> {
    ensure!(
        sector == 512 || sector == 4096,
        "unsupported sector size {sector}"
    );
    let (first, last) = usable(sector, total);
    let mut sorted: Vec<&GptPartition> = parts.iter().collect();
    sorted.sort_by_key(|p| p.first_lba);
    for w in sorted.windows(2) {
        if w[0].last_lba >= w[1].first_lba {
            bail!("partitions {} and {} overlap", w[0].name, w[1].name);
        }
    }
    for p in parts {
        ensure!(
            p.first_lba >= first && p.last_lba <= last && p.first_lba <= p.last_lba,
            "partition {} ({}..{}) is outside the usable sectors {first}..{last}",
            p.name,
            p.first_lba,
            p.last_lba
        );
    }
    let array = entry_array(parts)?;
    let crc = crc32fast::hash(&array);
    let es = entry_sectors(sector);

    // Protective MBR.
    let mut mbr = vec![0u8; 512];
    file.read_exact_at(&mut mbr, 0).context("reading the MBR")?;
    mbr[440..510].fill(0);
    let e = &mut mbr[446..462];
    e[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    e[4] = 0xee;
    e[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    e[8..12].copy_from_slice(&1u32.to_le_bytes());
    e[12..16].copy_from_slice(&((total - 1).min(0xffff_ffff) as u32).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    file.write_all_at(&mbr, 0)
        .context("writing the protective MBR")?;

    let primary = header(sector, 1, total - 1, first, last, disk, 2, crc);
    let backup = header(sector, total - 1, 1, first, last, disk, total - 1 - es, crc);
    file.write_all_at(&primary, sector)
        .context("writing the GPT header")?;
    file.write_all_at(&array, 2 * sector)
        .context("writing the GPT entries")?;
    file.write_all_at(&array, (total - 1 - es) * sector)
        .context("writing the backup GPT entries")?;
    file.write_all_at(&backup, (total - 1) * sector)
        .context("writing the backup GPT header")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_text_round_trips_and_is_mixed_endian() {
        let g = Guid::parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B").unwrap();
        assert_eq!(&g.0[..4], &[0x28, 0x73, 0x2a, 0xc1]);
        assert_eq!(g.to_text(), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        assert!(Guid::parse("nope").is_err());
        let d = Guid::derived("x").to_text();
        assert_eq!(&d[14..15], "4");
        assert_eq!(d, Guid::derived("x").to_text());
        assert_ne!(d, Guid::derived("y").to_text());
    }

    #[test]
    fn usable_range_depends_on_sector_size() {
        assert_eq!(usable(512, 10_000), (34, 9966));
        assert_eq!(usable(4096, 10_000), (6, 9994));
    }
}
