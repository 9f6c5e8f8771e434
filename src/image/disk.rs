//! Assemble a raw disk from directories without mounting anything: the file
//! is created sparse, the GPT written by `gpt`, each file system made in
//! place at its partition's offset (`mkfs.ext4 -E offset= -d DIR`,
//! `mkfs.fat --offset` and mtools' `mcopy -i disk@@offset`), and GRUB
//! installed by `grub` (BIOS boot code and core image, or the PReP
//! partition's core image on ppc64le).

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use super::gpt::{self, Guid};
use super::grub;
use super::layout::{self, Layout, MIB, Role};
use crate::util::cmd::CommandRunExt;

/// What goes into one disk.
pub struct DiskInput<'a> {
    pub arch: &'a str,
    /// Contents of the root file system (label `root`).
    pub sysroot: &'a Path,
    /// Contents of the boot file system (label `boot`); None leaves the boot
    /// partition empty for `write_boot` to fill per platform.
    pub boot: Option<&'a Path>,
    /// Contents of the EFI system partition, if the arch has one.
    pub esp: Option<&'a Path>,
    /// GRUB's BIOS core image, installed when the disk has 512-byte sectors
    /// and a BIOS boot partition.
    pub bios_core: Option<&'a Path>,
    /// GRUB's Open Firmware core image, written into the PReP partition
    /// (ppc64le).
    pub prep_core: Option<&'a Path>,
    /// GRUB's `boot.img` for the MBR, from the same modules as `bios_core`.
    pub bios_boot_img: Option<&'a Path>,
    pub sector: u64,
    /// Whole disk size; None sizes the root partition to its content.
    pub disk_size: Option<u64>,
    /// Seed for the partition GUIDs and file system hash seeds.
    pub seed: &'a str,
    /// Seconds since the epoch used for file system timestamps.
    pub timestamp: i64,
}

/// Bytes and inodes a directory tree needs (hardlinks counted once).
pub fn content_size(dir: &Path) -> Result<(u64, u64)> {
    let mut seen = HashSet::new();
    let mut bytes = 0u64;
    let mut inodes = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e.with_context(|| format!("reading {}", d.display()))?;
            let md = e
                .metadata()
                .with_context(|| format!("reading {}", e.path().display()))?;
            if !seen.insert((md.dev(), md.ino())) {
                continue;
            }
            inodes += 1;
            bytes += md.len().div_ceil(4096) * 4096;
            if md.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Ok((bytes, inodes))
}

fn mkfs_ext4(
    disk: &Path,
    offset: u64,
    size: u64,
    label: &str,
    uuid: &str,
    hash_seed: &str,
    inodes: Option<u64>,
    dir: &Path,
    timestamp: i64,
) -> Result<()> {
    let blocks = size / 4096;
    let mut cmd = Command::new("mkfs.ext4");
    cmd.env("E2FSPROGS_FAKE_TIME", timestamp.max(0).to_string())
        .arg("-q")
        .arg("-F")
        .arg("-b")
        .arg("4096")
        .arg("-T")
        .arg("default")
        // Room in every inode for its SELinux label and file capability
        // (XFS's inode size, which Fedora CoreOS's root uses): attributes
        // in the inode are put in one order afterwards, where ones that
        // spill into a block would keep the host's listing order.
        .arg("-I")
        .arg("512")
        .arg("-L")
        .arg(label)
        .arg("-U")
        .arg(uuid)
        .arg("-E")
        .arg(format!(
            "offset={offset},lazy_itable_init=1,lazy_journal_init=1,nodiscard,hash_seed={hash_seed}"
        ));
    if let Some(n) = inodes {
        cmd.arg("-N").arg(n.to_string());
    }
    cmd.arg("-d").arg(dir).arg(disk).arg(blocks.to_string());
    cmd.run_capture(&format!("making the {label} file system (mkfs.ext4 -d)"))?;
    // mkfs.ext4 -d copies the host's atime, ctime and xattr order.
    super::ext4::normalize_inodes(disk, offset, timestamp)
        .with_context(|| format!("normalizing the inodes of the {label} file system"))?;
    Ok(())
}

fn mkfs_esp(
    disk: &Path,
    offset: u64,
    size: u64,
    sector: u64,
    volid: &str,
    dir: &Path,
    timestamp: i64,
) -> Result<()> {
    let mut cmd = Command::new("mkfs.fat");
    // mkfs.fat 4.2 stamps the volume label with the clock whatever
    // SOURCE_DATE_EPOCH says; --invariant fixes it (-i keeps our id).
    cmd.arg("--invariant")
        .arg("--offset")
        .arg((offset / sector).to_string())
        .arg("-S")
        .arg(sector.to_string())
        .arg("-F")
        .arg("16")
        .arg("-n")
        .arg("EFI-SYSTEM")
        .arg("-i")
        .arg(volid)
        .arg(disk)
        .arg((size / 1024).to_string());
    cmd.run_capture("making the EFI system partition (mkfs.fat)")?;
    fat_copy_tree(
        &format!("{}@@{offset}", disk.display()),
        dir,
        "::",
        timestamp,
        "the EFI system partition",
    )
}

/// Copy the tree `dir` into the FAT file system `image` (an mtools `-i`
/// argument, `file@@offset` for a partition) under `target` (`::` or
/// `::/EFI`): directories first, with `mmd`, then each directory's files
/// with one `mcopy`, all in name order. `mcopy -s` would follow the host's
/// readdir order, which differs between file systems and gives a
/// different cluster layout. Every file's and directory's time is
/// `timestamp` (files: `mcopy -m` after setting it; directories:
/// `SOURCE_DATE_EPOCH`).
pub(crate) fn fat_copy_tree(
    image: &str,
    dir: &Path,
    target: &str,
    timestamp: i64,
    what: &str,
) -> Result<()> {
    set_mtimes(dir, timestamp)?;
    let target = target.trim_end_matches('/');
    // The target itself, unless it is the root.
    let mut dirs = match target.trim_start_matches("::") {
        "" => Vec::new(),
        _ => vec![target.to_string()],
    };
    let mut files: Vec<(String, Vec<std::path::PathBuf>)> = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), target.to_string())];
    while let Some((d, t)) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&d)
            .with_context(|| format!("reading {}", d.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", d.display()))?;
        entries.sort();
        let mut here = Vec::new();
        let mut subdirs = Vec::new();
        for e in entries {
            let name = e
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: not a UTF-8 name for FAT", e.display()))?
                .to_string();
            let md =
                fs::symlink_metadata(&e).with_context(|| format!("reading {}", e.display()))?;
            if md.is_dir() {
                let sub = format!("{t}/{name}");
                dirs.push(sub.clone());
                subdirs.push((e, sub));
            } else if md.is_file() {
                here.push(e);
            } else {
                bail!(
                    "{}: only files and directories can go into {what}",
                    e.display()
                );
            }
        }
        if !here.is_empty() {
            files.push((t, here));
        }
        // Popped in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    let epoch = timestamp.max(0).to_string();
    let mtools = |prog: &str| {
        let mut c = Command::new(prog);
        c.env("MTOOLS_SKIP_CHECK", "1")
            .env("SOURCE_DATE_EPOCH", &epoch)
            .env("TZ", "UTC")
            .arg("-i")
            .arg(image);
        c
    };
    if !dirs.is_empty() {
        mtools("mmd")
            .args(&dirs)
            .run_capture(&format!("making directories in {what} (mmd)"))?;
    }
    for (t, list) in files {
        mtools("mcopy")
            .args(["-p", "-m"])
            .args(&list)
            .arg(format!("{t}/"))
            .run_capture(&format!("copying files into {what} (mcopy)"))?;
    }
    Ok(())
}

/// Set the atime and mtime of `dir` and everything under it to `mtime`.
pub(crate) fn set_mtimes(dir: &Path, mtime: i64) -> Result<()> {
    let t = filetime::FileTime::from_unix_time(mtime.max(0), 0);
    let mut stack = vec![dir.to_path_buf()];
    let mut all = Vec::new();
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e
                .with_context(|| format!("reading {}", d.display()))?
                .path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            all.push(p);
        }
    }
    all.push(dir.to_path_buf());
    for p in all {
        filetime::set_file_times(&p, t, t)
            .with_context(|| format!("setting the time of {}", p.display()))?;
    }
    Ok(())
}

/// Make the raw disk `out` (replaced if present). Returns its layout.
pub fn make_raw(out: &Path, input: &DiskInput) -> Result<Layout> {
    let root_size = match input.disk_size {
        Some(_) => 0,
        None => {
            let (bytes, inodes) = content_size(input.sysroot)?;
            // Room for ext4's metadata and journal, and some to spare.
            let need = bytes + bytes / 5 + inodes * 512 + 96 * MIB;
            need.div_ceil(MIB) * MIB
        }
    };
    let layout = Layout::new(input.arch, input.sector, input.disk_size, root_size)?;
    let _ = fs::remove_file(out);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?;
    file.set_len(layout.total)
        .with_context(|| format!("sizing {}", out.display()))?;
    gpt::write(
        &file,
        layout.sector,
        layout.total / layout.sector,
        Guid::parse(layout::DISK_GUID)?,
        &layout.gpt_partitions(input.seed)?,
    )?;
    drop(file);

    let volid = &Guid::derived(&format!("{}/esp", input.seed)).to_text()[..8];
    for p in &layout.parts {
        match p.role {
            Role::Esp => {
                if let Some(dir) = input.esp {
                    mkfs_esp(
                        out,
                        p.offset,
                        p.size,
                        input.sector,
                        volid,
                        dir,
                        input.timestamp,
                    )?;
                }
            }
            Role::Boot => {
                if let Some(boot) = input.boot {
                    write_boot(out, &layout, boot, input.seed, input.timestamp)?
                }
            }
            Role::Root => {
                let inodes = match input.disk_size {
                    Some(_) => None,
                    None => Some(content_size(input.sysroot)?.1 * 2 + 4096),
                };
                mkfs_ext4(
                    out,
                    p.offset,
                    p.size,
                    "root",
                    layout::ROOTFS_UUID,
                    &Guid::derived(&format!("{}/root-hash", input.seed)).to_text(),
                    inodes,
                    input.sysroot,
                    input.timestamp,
                )?
            }
            Role::BiosBoot | Role::Reserved | Role::Prep => {}
        }
    }
    if let (Some(core), Some(prep)) = (input.prep_core, layout.part(Role::Prep)) {
        let file = OpenOptions::new()
            .write(true)
            .open(out)
            .with_context(|| format!("opening {}", out.display()))?;
        grub::install_prep(&file, core, prep.offset, prep.size)?;
        file.sync_all()
            .with_context(|| format!("syncing {}", out.display()))?;
    }
    if let (Some(core), Some(boot_img), Some(bios)) = (
        input.bios_core,
        input.bios_boot_img,
        layout.part(Role::BiosBoot),
    ) && input.sector == 512
    {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(out)
            .with_context(|| format!("opening {}", out.display()))?;
        grub::install_bios(&file, core, boot_img, bios.offset / 512, bios.size / 512)?;
        file.sync_all()
            .with_context(|| format!("syncing {}", out.display()))?;
    }
    let len = fs::metadata(out)
        .with_context(|| format!("reading {}", out.display()))?
        .len();
    ensure!(
        len == layout.total,
        "{} grew to {len} bytes while making file systems (expected {})",
        out.display(),
        layout.total
    );
    Ok(layout)
}

/// Make the boot file system (label `boot`) of `disk` from `dir`.
pub fn write_boot(
    disk: &Path,
    layout: &Layout,
    dir: &Path,
    seed: &str,
    timestamp: i64,
) -> Result<()> {
    let p = layout
        .part(Role::Boot)
        .context("the layout has no boot partition")?;
    mkfs_ext4(
        disk,
        p.offset,
        p.size,
        "boot",
        layout::BOOTFS_UUID,
        &Guid::derived(&format!("{seed}/boot-hash")).to_text(),
        None,
        dir,
        timestamp,
    )
}

/// Copy `src` to `dst` keeping holes: only the data extents are read and
/// written (SEEK_DATA / SEEK_HOLE), so copying a mostly empty 10 GiB disk
/// costs what its content costs.
pub fn copy_sparse(src: &Path, dst: &Path) -> Result<()> {
    use std::os::unix::fs::FileExt;
    use std::os::unix::io::AsRawFd;
    let from = fs::File::open(src).with_context(|| format!("opening {}", src.display()))?;
    let len = from
        .metadata()
        .with_context(|| format!("reading {}", src.display()))?
        .len();
    let _ = fs::remove_file(dst);
    let to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .with_context(|| format!("creating {}", dst.display()))?;
    to.set_len(len)
        .with_context(|| format!("sizing {}", dst.display()))?;
    let fd = from.as_raw_fd();
    let mut buf = vec![0u8; 4 << 20];
    let mut pos: i64 = 0;
    while (pos as u64) < len {
        // SAFETY: lseek on a valid, open file descriptor.
        let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if data < 0 {
            break; // ENXIO: no more data
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        let end = if hole < 0 { len as i64 } else { hole };
        let mut off = data as u64;
        while off < end as u64 {
            let n = ((end as u64 - off) as usize).min(buf.len());
            from.read_exact_at(&mut buf[..n], off)
                .with_context(|| format!("reading {}", src.display()))?;
            to.write_all_at(&buf[..n], off)
                .with_context(|| format!("writing {}", dst.display()))?;
            off += n as u64;
        }
        pos = end;
    }
    Ok(())
}

/// Convert a raw disk to qcow2 (compat 1.1, as upstream ships it).
pub fn to_qcow2(raw: &Path, out: &Path) -> Result<()> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["convert", "-f", "raw", "-O", "qcow2", "-o", "compat=1.1"])
        .arg(raw)
        .arg(out);
    cmd.run_capture("converting the disk to qcow2 (qemu-img convert)")?;
    Ok(())
}
