//! Making what `mkfs.ext4 -d` copies from the host the same on every host.
//!
//! `mkfs.ext4 -d DIR` takes every inode's atime, mtime and ctime from
//! stat(2) of the source file. mtime is the tree's (OSTree's 0, or what
//! cosa set), but ctime is when the host last changed the inode (hard
//! linking a checkout, writing the deployment) and atime when it was last
//! read: both differ from one run to the next and from one working
//! directory to another, so two builds of the same commit would differ in
//! every inode. `E2FSPROGS_FAKE_TIME` covers only what mke2fs itself
//! stamps (the superblock, crtime, the root and lost+found).
//!
//! [`normalize_inodes`] rewrites the atime and ctime of every in-use inode of a
//! file system to one time (the commit's) with zero nanoseconds, clamps
//! mtimes to it (files cosa wrote during the build are younger than the
//! commit; the commit's own files keep theirs, OSTree's 0), sorts the
//! extended attributes kept in the inode (mke2fs copies them in the order
//! the host lists them, and hosts differ), and recomputes the inode
//! checksum (`metadata_csum`: crc32c over the inode number, generation
//! and the inode with its checksum fields zeroed, as the ext4 disk format
//! specifies). Only the inode tables change; bitmaps,
//! group descriptors and the superblock stay as mke2fs wrote them, so
//! `e2fsck -fn` is clean afterwards.

use anyhow::{Context, Result, ensure};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

const MAGIC: u16 = 0xEF53;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
const BG_INODE_UNINIT: u16 = 0x1;
const GOOD_OLD_INODE_SIZE: usize = 128;

/// Little-endian fields of on-disk structures (also the vhdx and vmdk
/// fixups').
pub(super) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(super) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(super) fn le64(b: &[u8], at: usize) -> u64 {
    (le32(b, at + 4) as u64) << 32 | le32(b, at) as u64
}

/// crc32c as ext4 chains it: no pre- or post-inversion.
fn crc32c_raw(crc: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!crc, data)
}

/// The superblock fields this module needs.
struct Super {
    block_size: u64,
    inode_size: usize,
    inodes_per_group: u32,
    groups: u64,
    desc_size: usize,
    gdt: u64,
    /// The checksum seed when `metadata_csum` is on.
    csum_seed: Option<u32>,
}

fn read_super(f: &File, offset: u64, what: &str) -> Result<Super> {
    let mut sb = [0u8; 1024];
    f.read_exact_at(&mut sb, offset + 1024)
        .with_context(|| format!("reading the ext4 superblock of {what}"))?;
    ensure!(
        le16(&sb, 0x38) == MAGIC,
        "{what} has no ext4 superblock at byte {}",
        offset + 1024
    );
    let log = le32(&sb, 0x18);
    ensure!(log <= 6, "{what}: implausible ext4 block size (log {log})");
    let block_size = 1024u64 << log;
    let rev = le32(&sb, 0x4C);
    let inode_size = if rev == 0 {
        GOOD_OLD_INODE_SIZE
    } else {
        le16(&sb, 0x58) as usize
    };
    ensure!(
        inode_size >= GOOD_OLD_INODE_SIZE && inode_size.is_power_of_two(),
        "{what}: implausible ext4 inode size {inode_size}"
    );
    let incompat = le32(&sb, 0x60);
    let ro_compat = le32(&sb, 0x64);
    let blocks = if incompat & INCOMPAT_64BIT != 0 {
        (le32(&sb, 0x150) as u64) << 32 | le32(&sb, 0x4) as u64
    } else {
        le32(&sb, 0x4) as u64
    };
    let first_data_block = le32(&sb, 0x14) as u64;
    let blocks_per_group = le32(&sb, 0x20) as u64;
    let inodes_per_group = le32(&sb, 0x28);
    ensure!(
        blocks_per_group > 0 && inodes_per_group > 0,
        "{what}: ext4 superblock with empty groups"
    );
    let groups = (blocks - first_data_block).div_ceil(blocks_per_group);
    let desc_size = if incompat & INCOMPAT_64BIT != 0 {
        le16(&sb, 0xFE) as usize
    } else {
        32
    };
    ensure!(
        desc_size >= 32,
        "{what}: implausible ext4 group descriptor size {desc_size}"
    );
    let csum_seed = if ro_compat & RO_COMPAT_METADATA_CSUM != 0 {
        Some(if incompat & INCOMPAT_CSUM_SEED != 0 {
            le32(&sb, 0x270)
        } else {
            crc32c_raw(!0, &sb[0x68..0x78])
        })
    } else {
        None
    };
    Ok(Super {
        block_size,
        inode_size,
        inodes_per_group,
        groups,
        desc_size,
        gdt: offset + (first_data_block + 1) * block_size,
        csum_seed,
    })
}

/// Set the atime and ctime of every in-use inode of the ext4 file system
/// at byte `offset` of `disk` to `time` (nanoseconds zero), clamp its
/// mtime to `time` and sort its in-inode extended attributes, fixing inode
/// checksums. Returns how many inodes were rewritten.
pub fn normalize_inodes(disk: &Path, offset: u64, time: i64) -> Result<u64> {
    let what = format!("{} (file system at byte {offset})", disk.display());
    let f = File::options()
        .read(true)
        .write(true)
        .open(disk)
        .with_context(|| format!("opening {}", disk.display()))?;
    let sb = read_super(&f, offset, &what)?;
    let time = u32::try_from(time.max(0)).unwrap_or(u32::MAX);
    let mut gdt = vec![0u8; sb.groups as usize * sb.desc_size];
    f.read_exact_at(&mut gdt, sb.gdt)
        .with_context(|| format!("reading the ext4 group descriptors of {what}"))?;
    let ipg = sb.inodes_per_group as usize;
    let mut bitmap = vec![0u8; sb.block_size as usize];
    let mut pinned = 0;
    for g in 0..sb.groups as usize {
        let d = &gdt[g * sb.desc_size..(g + 1) * sb.desc_size];
        if le16(d, 0x12) & BG_INODE_UNINIT != 0 {
            continue;
        }
        let hi = |at: usize| -> u64 {
            if sb.desc_size >= 64 {
                (le32(d, at) as u64) << 32
            } else {
                0
            }
        };
        let bitmap_block = hi(0x24) | le32(d, 0x4) as u64;
        let table_block = hi(0x28) | le32(d, 0x8) as u64;
        f.read_exact_at(&mut bitmap, offset + bitmap_block * sb.block_size)
            .with_context(|| format!("reading the inode bitmap of group {g} of {what}"))?;
        let used = |i: usize| bitmap[i / 8] & (1 << (i % 8)) != 0;
        let Some(last) = (0..ipg.min(bitmap.len() * 8)).rev().find(|&i| used(i)) else {
            continue;
        };
        // The table up to the last inode in use.
        let mut table = vec![0u8; (last + 1) * sb.inode_size];
        let at = offset + table_block * sb.block_size;
        f.read_exact_at(&mut table, at)
            .with_context(|| format!("reading the inode table of group {g} of {what}"))?;
        let mut changed = false;
        for i in (0..=last).filter(|&i| used(i)) {
            let inode = &mut table[i * sb.inode_size..(i + 1) * sb.inode_size];
            if le16(inode, 0) == 0 {
                continue; // reserved, never set up
            }
            let ino = (g * ipg + i + 1) as u32;
            if normalize(inode, ino, time, sb.csum_seed) {
                changed = true;
                pinned += 1;
            }
        }
        if changed {
            f.write_all_at(&table, at)
                .with_context(|| format!("writing the inode table of group {g} of {what}"))?;
        }
    }
    f.sync_all()
        .with_context(|| format!("syncing {}", disk.display()))?;
    Ok(pinned)
}

/// Set one inode's atime and ctime, clamp its mtime, sort its in-inode
/// extended attributes; true if it changed.
fn normalize(inode: &mut [u8], ino: u32, time: u32, csum_seed: Option<u32>) -> bool {
    // Inodes are 128 to 1024 bytes in practice: a copy on the stack (a
    // larger one counts as changed).
    let mut before = [0u8; 1024];
    let keep = inode.len() <= before.len();
    if keep {
        before[..inode.len()].copy_from_slice(inode);
    }
    inode[0x8..0xC].copy_from_slice(&time.to_le_bytes()); // i_atime
    inode[0xC..0x10].copy_from_slice(&time.to_le_bytes()); // i_ctime
    let extra = if inode.len() > GOOD_OLD_INODE_SIZE {
        le16(inode, 0x80) as usize
    } else {
        0
    };
    // i_mtime clamped: what the build itself made is younger than the
    // commit; what came from the commit (OSTree's 0) is kept.
    if le32(inode, 0x10) >= time {
        inode[0x10..0x14].copy_from_slice(&time.to_le_bytes());
        if extra >= 0x8C - 0x80 {
            inode[0x88..0x8C].fill(0); // i_mtime_extra
        }
    }
    // i_ctime_extra at 0x84 and i_atime_extra at 0x8C, when the inode's
    // extra space holds them.
    if extra >= 0x88 - 0x80 {
        inode[0x84..0x88].fill(0);
    }
    if extra >= 0x90 - 0x80 {
        inode[0x8C..0x90].fill(0);
    }
    sort_inline_xattrs(inode, extra);
    if let Some(seed) = csum_seed {
        set_checksum(inode, ino, seed, extra);
    }
    !keep || inode != &before[..inode.len()]
}

const XATTR_MAGIC: u32 = 0xEA02_0000;

/// Rewrite the extended attributes kept in the inode's extra space in one
/// order: entries sorted by (name index, name length, name), as ext4 keeps
/// them in attribute blocks, and their values packed from the end of the
/// inode down in the same order. mke2fs keeps the order in which the host
/// file system listed them, and hosts differ (tmpfs lists
/// `security.selinux` first whatever the order of writing, ext4 in the
/// order written). An inode whose in-inode attributes do not parse as
/// expected (a value in an EA inode, offsets out of range) is left as it is.
fn sort_inline_xattrs(inode: &mut [u8], extra: usize) {
    let base = GOOD_OLD_INODE_SIZE + extra;
    if extra == 0 || base + 4 > inode.len() || le32(inode, base) != XATTR_MAGIC {
        return;
    }
    let start = base + 4; // the first entry; values are relative to it
    let area = inode.len() - start;
    let region = &inode[start..];
    struct Entry {
        header: [u8; 16],
        name: Vec<u8>,
        value: Vec<u8>,
    }
    let mut entries = Vec::new();
    let mut at = 0;
    loop {
        if at + 4 > area {
            return;
        }
        if le32(region, at) == 0 {
            break;
        }
        if at + 16 > area {
            return;
        }
        let name_len = region[at] as usize;
        let value_offs = le16(region, at + 2) as usize;
        let value_inum = le32(region, at + 4);
        let value_size = le32(region, at + 8) as usize;
        let len = (16 + name_len + 3) & !3;
        if value_inum != 0
            || at + len > area
            || value_offs.checked_add(value_size).is_none_or(|e| e > area)
        {
            return;
        }
        let mut header = [0u8; 16];
        header.copy_from_slice(&region[at..at + 16]);
        entries.push(Entry {
            header,
            name: region[at + 16..at + 16 + name_len].to_vec(),
            value: region[value_offs..value_offs + value_size].to_vec(),
        });
        at += len;
    }
    entries.sort_by(|a, b| {
        (a.header[1], a.name.len(), &a.name).cmp(&(b.header[1], b.name.len(), &b.name))
    });
    let mut out = vec![0u8; area];
    let mut at = 0;
    let mut end = area;
    for e in &entries {
        let padded = (e.value.len() + 3) & !3;
        end -= padded;
        let mut header = e.header;
        let offs = if e.value.is_empty() { 0 } else { end };
        header[2..4].copy_from_slice(&(offs as u16).to_le_bytes());
        out[at..at + 16].copy_from_slice(&header);
        out[at + 16..at + 16 + e.name.len()].copy_from_slice(&e.name);
        out[end..end + e.value.len()].copy_from_slice(&e.value);
        at += (16 + e.name.len() + 3) & !3;
    }
    inode[start..].copy_from_slice(&out);
}

/// Whether the inode's extra space holds `i_checksum_hi`.
fn has_checksum_hi(extra: usize) -> bool {
    extra >= 0x84 - 0x80
}

/// The `metadata_csum` checksum of inode `ino`: crc32c from the file
/// system's seed over the inode number, generation and the inode with its
/// checksum fields zeroed (which this leaves zeroed).
fn checksum(inode: &mut [u8], ino: u32, seed: u32, extra: usize) -> u32 {
    inode[0x7C..0x7E].fill(0);
    if has_checksum_hi(extra) {
        inode[0x82..0x84].fill(0);
    }
    let mut crc = crc32c_raw(seed, &ino.to_le_bytes());
    crc = crc32c_raw(crc, &inode[0x64..0x68]);
    crc32c_raw(crc, inode)
}

/// Write the inode's checksum into it.
fn set_checksum(inode: &mut [u8], ino: u32, seed: u32, extra: usize) {
    let crc = checksum(inode, ino, seed, extra);
    inode[0x7C..0x7E].copy_from_slice(&(crc as u16).to_le_bytes());
    if has_checksum_hi(extra) {
        inode[0x82..0x84].copy_from_slice(&((crc >> 16) as u16).to_le_bytes());
    }
}

/// Refuse a checksum this module would get wrong: used by the tests to
/// check our crc against e2fsprogs' on an untouched file system.
#[cfg(test)]
fn verify_inode(inode: &[u8], ino: u32, seed: u32) -> Result<()> {
    let mut copy = inode.to_vec();
    let extra = if copy.len() > GOOD_OLD_INODE_SIZE {
        le16(&copy, 0x80) as usize
    } else {
        0
    };
    let hi = has_checksum_hi(extra);
    let want = le16(&copy, 0x7C) as u32
        | if hi {
            (le16(&copy, 0x82) as u32) << 16
        } else {
            0
        };
    let crc = checksum(&mut copy, ino, seed, extra);
    let got = if hi { crc } else { crc & 0xFFFF };
    if got != want {
        anyhow::bail!("inode {ino}: checksum {got:#x}, e2fsprogs wrote {want:#x}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn mkfs(dir: &Path, img: &Path, offset: u64, block: &str) {
        File::create(img)
            .unwrap()
            .set_len(offset + (64 << 20))
            .unwrap();
        let st = Command::new("mkfs.ext4")
            .env("E2FSPROGS_FAKE_TIME", "1700000000")
            .args([
                "-q",
                "-F",
                "-b",
                block,
                "-U",
                "11111111-2222-3333-4444-555555555555",
            ])
            .arg("-E")
            .arg(format!(
                "offset={offset},hash_seed=11111111-2222-3333-4444-555555555555"
            ))
            .arg("-d")
            .arg(dir)
            .arg(img)
            .arg("16M")
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn tree(dir: &Path) {
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        for i in 0..300 {
            std::fs::write(dir.join(format!("a/f{i}")), format!("{i}")).unwrap();
        }
        std::fs::write(dir.join("a/b/x"), "x").unwrap();
        std::fs::hard_link(dir.join("a/b/x"), dir.join("x-link")).unwrap();
        std::os::unix::fs::symlink("a/b/x", dir.join("sym")).unwrap();
        // As from an OSTree checkout.
        let zero = filetime::FileTime::from_unix_time(0, 0);
        filetime::set_file_mtime(dir.join("a/f0"), zero).unwrap();
    }

    fn fsck(img: &Path, offset: u64) {
        let out = Command::new("e2fsck")
            .arg("-fn")
            .arg(format!("{}?offset={offset}", img.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "e2fsck: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn time_of(img: &Path, offset: u64, path: &str, field: &str) -> String {
        let out = Command::new("debugfs")
            .arg("-R")
            .arg(format!("stat {path}"))
            .arg(format!("{}?offset={offset}", img.display()))
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        s.lines()
            .find(|l| l.trim_start().starts_with(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} for {path}: {s}"))
            .trim()
            .to_string()
    }

    #[test]
    fn our_inode_checksum_is_e2fsprogs() {
        let t = tempfile::tempdir().unwrap();
        tree(&t.path().join("src"));
        let img = t.path().join("img");
        mkfs(&t.path().join("src"), &img, 0, "4096");
        let f = File::open(&img).unwrap();
        let sb = read_super(&f, 0, "img").unwrap();
        let seed = sb.csum_seed.expect("mke2fs enables metadata_csum");
        let mut d = vec![0u8; sb.desc_size];
        f.read_exact_at(&mut d, sb.gdt).unwrap();
        let table = le32(&d, 0x8) as u64 * sb.block_size;
        let mut checked = 0;
        for ino in [2u32, 11, 12, 13, 14, 100, 300] {
            let mut inode = vec![0u8; sb.inode_size];
            f.read_exact_at(&mut inode, table + (ino as u64 - 1) * sb.inode_size as u64)
                .unwrap();
            verify_inode(&inode, ino, seed).unwrap();
            checked += 1;
        }
        assert_eq!(checked, 7);
    }

    #[test]
    fn pinned_file_systems_are_identical_and_clean() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        tree(&src);
        for (block, offset) in [("4096", 1u64 << 20), ("1024", 512 * 34)] {
            let a = t.path().join(format!("a{block}"));
            let b = t.path().join(format!("b{block}"));
            mkfs(&src, &a, offset, block);
            // Change every ctime (and atimes) of the source in between.
            std::thread::sleep(std::time::Duration::from_millis(1100));
            assert!(
                Command::new("chmod")
                    .args(["-R", "u+w"])
                    .arg(&src)
                    .status()
                    .unwrap()
                    .success()
            );
            let _ = std::fs::read(src.join("a/f1")).unwrap();
            mkfs(&src, &b, offset, block);
            assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
            let n = normalize_inodes(&a, offset, 1_700_000_000).unwrap();
            assert!(n > 300, "{n} inodes pinned");
            normalize_inodes(&b, offset, 1_700_000_000).unwrap();
            fsck(&a, offset);
            assert!(
                std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
                "block size {block}: the pinned file systems differ"
            );
            // ctime and atime pinned, a young mtime clamped, mtime 0 kept.
            for (path, field, want) in [
                ("/a/f7", "ctime", "0x6553f100:00000000"),
                ("/a/f7", "atime", "0x6553f100:00000000"),
                ("/a/f7", "mtime", "0x6553f100:00000000"),
                ("/a/f0", "mtime", "0x00000000:00000000"),
                ("/a/f0", "ctime", "0x6553f100:00000000"),
            ] {
                let got = time_of(&a, offset, path, field);
                assert!(got.contains(want), "{path} {field}: {got}");
            }
            // Pinning again changes nothing.
            assert_eq!(normalize_inodes(&a, offset, 1_700_000_000).unwrap(), 0);
        }
    }

    /// Two trees whose files got the same attributes written in opposite
    /// orders (ext4 lists them in the order written) give one image.
    #[test]
    fn in_inode_xattrs_are_put_in_one_order() {
        let t = tempfile::tempdir().unwrap();
        let attrs = [
            ("user.zeta", "1"),
            ("user.alpha", "a longer value"),
            ("user.mid", ""),
        ];
        let mut imgs = Vec::new();
        for (n, rev) in [("x", false), ("y", true)] {
            let src = t.path().join(n);
            std::fs::create_dir_all(&src).unwrap();
            let f = src.join("f");
            std::fs::write(&f, "data").unwrap();
            let mut order: Vec<_> = attrs.to_vec();
            if rev {
                order.reverse();
            }
            for (k, v) in order {
                xattr::set(&f, k, v.as_bytes()).unwrap();
            }
            let img = t.path().join(format!("{n}.img"));
            File::create(&img).unwrap().set_len(16 << 20).unwrap();
            let st = Command::new("mkfs.ext4")
                .env("E2FSPROGS_FAKE_TIME", "1700000000")
                .args([
                    "-q",
                    "-F",
                    "-I",
                    "512",
                    "-U",
                    "11111111-2222-3333-4444-555555555555",
                ])
                .args(["-E", "hash_seed=11111111-2222-3333-4444-555555555555"])
                .arg("-d")
                .arg(&src)
                .arg(&img)
                .status()
                .unwrap();
            assert!(st.success());
            normalize_inodes(&img, 0, 1_700_000_000).unwrap();
            fsck(&img, 0);
            let out = Command::new("debugfs")
                .args(["-R", "ea_list /f"])
                .arg(&img)
                .output()
                .unwrap();
            let listed = String::from_utf8_lossy(&out.stdout).to_string();
            for (k, v) in attrs {
                assert!(
                    listed.contains(&format!("{k} ({}) = \"{v}\"", v.len()))
                        || (v.is_empty() && listed.contains(k)),
                    "{listed}"
                );
            }
            imgs.push(std::fs::read(&img).unwrap());
        }
        assert!(imgs[0] == imgs[1], "the images differ");
    }

    #[test]
    fn not_ext4_is_an_error_naming_the_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("zeros");
        File::create(&p).unwrap().set_len(1 << 20).unwrap();
        let e = format!("{:#}", normalize_inodes(&p, 0, 0).unwrap_err());
        assert!(
            e.contains("zeros") && e.contains("no ext4 superblock"),
            "{e}"
        );
    }
}
