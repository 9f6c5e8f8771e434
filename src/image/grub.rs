//! GRUB for the disk images, made with Debian's `grub-mkimage` and installed
//! by our own code (no `grub-install`, which wants a block device):
//!
//! - BIOS (x86_64): a core image with every module it needs built in, written
//!   into the BIOS-BOOT partition, and `boot.img` in the MBR's boot code with
//!   the core image's sector patched in, as `grub-bios-setup` does when it
//!   embeds into a BIOS boot partition.
//! - UEFI: `EFI/BOOT/BOOTX64.EFI` (x86_64) or `BOOTAA64.EFI` (aarch64) with
//!   the same modules built in.
//! - Open Firmware (ppc64le): a `powerpc-ieee1275` core image (an ELF file)
//!   assembled from the modules in the deployed tree's
//!   `/usr/lib/grub/powerpc-ieee1275`, written raw into the PReP partition,
//!   as `grub2-install --target=powerpc-ieee1275` does there.
//!
//! Both carry a small embedded config that finds the file system labelled
//! `boot` and loads its `grub2/grub.cfg`. Debian's GRUB has no `blscfg`, so
//! grub.cfg holds a menu entry generated from each BLS entry, after the
//! platform's console commands. A tree with ostree's GRUB hook gets
//! `sysroot.bootloader=grub2` ([`crate::ostree::deploy::sysroot_bootloader`]):
//! each later deployment on the machine writes `/loader/grub.cfg` with
//! `grub-mkconfig`, and grub.cfg loads that menu once it exists.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use crate::ostree::deploy::BlsEntry;
use crate::util::cmd::CommandRunExt;

/// Modules built into every image: enough to find the boot partition by
/// label, read ext4, show a menu on a serial console and boot Linux.
pub const COMMON_MODULES: &[&str] = &[
    "part_gpt",
    "ext2",
    "fat",
    "search",
    "search_label",
    "search_fs_uuid",
    "configfile",
    "normal",
    "linux",
    "echo",
    "test",
    "serial",
    "terminal",
    "gzio",
    "reboot",
    "halt",
    "sleep",
    "cat",
    "ls",
];
/// `all_video`: what the `load_video` of a grub-mkconfig menu loads.
const BIOS_MODULES: &[&str] = &["biosdisk", "all_video"];
const EFI_MODULES: &[&str] = &["efi_gop", "all_video"];

/// The embedded config: boot from the partition labelled `boot`.
pub const EARLY_CFG: &str = "search --no-floppy --label boot --set root\n\
set prefix=($root)/grub2\n\
configfile ($root)/grub2/grub.cfg\n";

/// Where Debian installs a GRUB platform's modules.
pub fn platform_dir(platform: &str) -> PathBuf {
    let base = std::env::var_os("COSA_GRUB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/grub"));
    base.join(platform)
}

/// GRUB's name for the UEFI target of `arch` and the removable-media file name.
pub fn efi_target(arch: &str) -> Result<(&'static str, &'static str)> {
    Ok(match arch {
        "x86_64" => ("x86_64-efi", "BOOTX64.EFI"),
        "aarch64" => ("arm64-efi", "BOOTAA64.EFI"),
        other => bail!("no UEFI GRUB for {other}"),
    })
}

/// The host's modules for a GRUB platform (`target`), checked to be there.
pub fn host_modules(target: &str) -> Result<PathBuf> {
    let dir = platform_dir(target);
    ensure!(
        dir.join("normal.mod").exists(),
        "GRUB modules for {target} are not installed in {} (Debian package {}); \
         ship the boot loader in the tree (/usr/lib/bootupd/updates) or set \
         COSA_GRUB_DIR to a directory holding <platform>/normal.mod",
        dir.display(),
        match target {
            "i386-pc" => "grub-pc-bin",
            "x86_64-efi" => "grub-efi-amd64-bin",
            "arm64-efi" => "grub-efi-arm64-bin",
            "powerpc-ieee1275" => "grub-ieee1275-bin",
            _ => "grub",
        }
    );
    Ok(dir)
}

/// `grub-mkimage` for `target` from the modules in `dir`, with
/// [`EARLY_CFG`] embedded and [`COMMON_MODULES`] plus `extra` built in.
fn mkimage(target: &str, dir: &Path, extra: &[&str], out: &Path, work: &Path) -> Result<()> {
    ensure!(
        dir.join("normal.mod").exists(),
        "{} holds no GRUB {target} modules (no normal.mod)",
        dir.display()
    );
    let cfg = work.join(format!("early-{target}.cfg"));
    std::fs::write(&cfg, EARLY_CFG).with_context(|| format!("writing {}", cfg.display()))?;
    let mut cmd = std::process::Command::new("grub-mkimage");
    cmd.arg("-O")
        .arg(target)
        .arg("-d")
        .arg(dir)
        .arg("-o")
        .arg(out)
        .arg("-p")
        .arg("/grub2")
        .arg("-c")
        .arg(&cfg)
        .args(COMMON_MODULES)
        .args(extra);
    cmd.run_capture(&format!(
        "making the GRUB {target} image from {}",
        dir.display()
    ))?;
    Ok(())
}

/// Make the UEFI GRUB image for `arch` at `out`, from the host's modules.
pub fn make_efi(arch: &str, out: &Path, work: &Path) -> Result<()> {
    let (target, _) = efi_target(arch)?;
    mkimage(target, &host_modules(target)?, EFI_MODULES, out, work)
}

/// Make the BIOS core image at `out` from the i386-pc modules in `modules`
/// (the tree's, or the host's from [`host_modules`]).
pub fn make_bios_core(modules: &Path, out: &Path, work: &Path) -> Result<()> {
    mkimage("i386-pc", modules, BIOS_MODULES, out, work)
}

/// GRUB's target for Open Firmware on ppc64le.
pub const IEEE1275_TARGET: &str = "powerpc-ieee1275";

/// Where a tree keeps GRUB's Open Firmware modules (Fedora's
/// grub2-ppc64le-modules, Debian's grub-ieee1275-bin).
pub const IEEE1275_TREE_DIR: &str = "usr/lib/grub/powerpc-ieee1275";

/// The Open Firmware modules to build the ppc64le core image from: the
/// deployed tree's (`deploy` is the deployment's root), else the host's
/// with a warning, else an error that says what the tree lacks.
pub fn ieee1275_modules(deploy: &Path) -> Result<PathBuf> {
    let tree = deploy.join(IEEE1275_TREE_DIR);
    if tree.join("normal.mod").is_file() {
        return Ok(tree);
    }
    let host = platform_dir(IEEE1275_TARGET);
    if host.join("normal.mod").is_file() {
        eprintln!(
            "warning: the tree has no /{IEEE1275_TREE_DIR}: the PReP partition gets the build \
             host's GRUB from {} instead of the OS's own",
            host.display()
        );
        return Ok(host);
    }
    bail!(
        "the tree has no GRUB for Open Firmware (/{IEEE1275_TREE_DIR}/normal.mod), and neither has \
         this host ({}): add the OS's GRUB modules package to the treefile (Fedora's \
         grub2-ppc64le-modules)",
        host.display()
    )
}

/// Make the ppc64le core image at `out` from the modules in `modules`.
pub fn make_ieee1275_core(modules: &Path, out: &Path, work: &Path) -> Result<()> {
    mkimage(IEEE1275_TARGET, modules, &[], out, work)
}

/// Write the Open Firmware core image `core` (an ELF file) into the PReP
/// partition at byte `offset` of `disk`, `size` bytes long.
pub fn install_prep(disk: &File, core: &Path, offset: u64, size: u64) -> Result<()> {
    let img = std::fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    ensure!(
        img.starts_with(b"\x7fELF"),
        "{} is not an ELF image: not a GRUB core image for Open Firmware",
        core.display()
    );
    ensure!(
        img.len() as u64 <= size,
        "the GRUB core image ({} bytes) does not fit the PReP partition ({size} bytes)",
        img.len()
    );
    disk.write_all_at(&img, offset)
        .context("writing the GRUB core image into the PReP partition")
}

// Offsets in boot.img and diskboot.img (grub's include/grub/i386/pc/boot.h).
const KERNEL_SECTOR: usize = 0x5c;
const BOOT_DRIVE: usize = 0x64;
const DRIVE_CHECK: usize = 0x66;
const BPB_START: usize = 0x3;
const BPB_END: usize = 0x5a;
const MBR_CODE_END: usize = 0x1b8;
const KERNEL_SEG: u16 = 0x800;

/// Install BIOS GRUB into `disk` (512-byte sectors): `core` goes at
/// `core_lba` (the BIOS-BOOT partition, `max_sectors` long), `boot.img`
/// (from the same modules as the core image) into the MBR, keeping the
/// partition table.
pub fn install_bios(
    disk: &File,
    core: &Path,
    boot_path: &Path,
    core_lba: u64,
    max_sectors: u64,
) -> Result<()> {
    let mut core_img =
        std::fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    let boot_img =
        std::fs::read(boot_path).with_context(|| format!("reading {}", boot_path.display()))?;
    ensure!(
        boot_img.len() == 512,
        "{} is not 512 bytes",
        boot_path.display()
    );
    ensure!(
        core_img.len() > 512,
        "{} is too small for a core image",
        core.display()
    );
    let sectors = (core_img.len() as u64).div_ceil(512);
    ensure!(
        sectors <= max_sectors && sectors - 1 <= u16::MAX as u64,
        "the GRUB core image ({sectors} sectors) does not fit the BIOS boot partition ({max_sectors} sectors)"
    );
    core_img.resize((sectors * 512) as usize, 0);
    // diskboot.img's block list (the last 12 bytes of the first sector):
    // the rest of the core image, contiguous after it.
    let bl = 512 - 12;
    core_img[bl..bl + 8].copy_from_slice(&(core_lba + 1).to_le_bytes());
    core_img[bl + 8..bl + 10].copy_from_slice(&((sectors - 1) as u16).to_le_bytes());
    core_img[bl + 10..bl + 12].copy_from_slice(&(KERNEL_SEG + (512 >> 4)).to_le_bytes());
    disk.write_all_at(&core_img, core_lba * 512)
        .context("writing the GRUB core image into the BIOS boot partition")?;

    let mut mbr = vec![0u8; 512];
    disk.read_exact_at(&mut mbr, 0).context("reading the MBR")?;
    let mut code = boot_img;
    code[BPB_START..BPB_END].copy_from_slice(&mbr[BPB_START..BPB_END]);
    code[KERNEL_SECTOR..KERNEL_SECTOR + 8].copy_from_slice(&core_lba.to_le_bytes());
    code[BOOT_DRIVE] = 0xff;
    code[DRIVE_CHECK] = 0x90;
    code[DRIVE_CHECK + 1] = 0x90;
    mbr[..MBR_CODE_END].copy_from_slice(&code[..MBR_CODE_END]);
    disk.write_all_at(&mbr, 0)
        .context("writing the MBR boot code")?;
    Ok(())
}

/// What a GRUB UEFI image (a PE file made by `grub-mkimage`) carries in its
/// `mods` section: the built-in prefix, the embedded config and the names
/// of the built-in modules. Read from a distribution's signed GRUB to know
/// where it looks for grub.cfg and what it can do without loading modules
/// (which Secure Boot forbids).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageInfo {
    /// `-p` of grub-mkimage, e.g. `/EFI/debian`.
    pub prefix: Option<String>,
    /// The embedded config (`-c`).
    pub config: Option<String>,
    pub modules: Vec<String>,
}

fn le(b: &[u8], off: usize, len: usize) -> Option<u64> {
    let s = b.get(off..off + len)?;
    Some(s.iter().rev().fold(0u64, |v, x| (v << 8) | *x as u64))
}

/// The `.modname` of a module (an ELF object, 32- or 64-bit little-endian).
fn elf_modname(e: &[u8]) -> Option<String> {
    if e.get(..4)? != b"\x7fELF" || *e.get(5)? != 1 {
        return None;
    }
    let is64 = *e.get(4)? == 2;
    let (shoff, shentsize, shnum, shstrndx) = if is64 {
        (
            le(e, 0x28, 8)?,
            le(e, 0x3a, 2)?,
            le(e, 0x3c, 2)?,
            le(e, 0x3e, 2)?,
        )
    } else {
        (
            le(e, 0x20, 4)?,
            le(e, 0x2e, 2)?,
            le(e, 0x30, 2)?,
            le(e, 0x32, 2)?,
        )
    };
    let sect = |i: u64| -> Option<(u64, u64, u64)> {
        let h = (shoff + i * shentsize) as usize;
        let name = le(e, h, 4)?;
        if is64 {
            Some((name, le(e, h + 0x18, 8)?, le(e, h + 0x20, 8)?))
        } else {
            Some((name, le(e, h + 0x10, 4)?, le(e, h + 0x14, 4)?))
        }
    };
    let (_, stroff, _) = sect(shstrndx)?;
    for i in 0..shnum {
        let (name, off, size) = sect(i)?;
        let n = &e[(stroff + name) as usize..];
        let n = &n[..n.iter().position(|b| *b == 0)?];
        if n == b".modname" {
            let v = e.get(off as usize..(off + size) as usize)?;
            return Some(
                String::from_utf8_lossy(v)
                    .trim_end_matches('\0')
                    .to_string(),
            );
        }
    }
    None
}

/// Read [`ImageInfo`] from a 64-bit GRUB UEFI image.
pub fn read_image_info(pe: &[u8]) -> Result<ImageInfo> {
    let bad = || anyhow::anyhow!("not a GRUB UEFI image (no readable `mods` PE section)");
    let pe_off = le(pe, 0x3c, 4).ok_or_else(bad)? as usize;
    ensure!(
        pe.get(pe_off..pe_off + 4) == Some(b"PE\0\0"),
        "not a PE file"
    );
    let nsect = le(pe, pe_off + 6, 2).ok_or_else(bad)? as usize;
    let opt = le(pe, pe_off + 20, 2).ok_or_else(bad)? as usize;
    let table = pe_off + 24 + opt;
    let mods = (0..nsect)
        .map(|i| table + i * 40)
        .find(|h| pe.get(*h..h + 8).is_some_and(|n| n.starts_with(b"mods")))
        .ok_or_else(bad)?;
    let start = le(pe, mods + 20, 4).ok_or_else(bad)? as usize;
    ensure!(
        pe.get(start..start + 4) == Some(b"mimg"),
        "the GRUB image's mods section has no module info"
    );
    let off = le(pe, start + 8, 8).ok_or_else(bad)? as usize;
    let size = le(pe, start + 16, 8).ok_or_else(bad)? as usize;
    let end = (start + size).min(pe.len());
    let mut info = ImageInfo::default();
    let mut p = start + off;
    while p + 8 <= end {
        let kind = le(pe, p, 4).ok_or_else(bad)?;
        let len = le(pe, p + 4, 4).ok_or_else(bad)? as usize;
        ensure!(
            len >= 8 && p + len <= end,
            "corrupt module list in the GRUB image"
        );
        let body = &pe[p + 8..p + len];
        let text = || {
            String::from_utf8_lossy(body)
                .trim_end_matches('\0')
                .to_string()
        };
        match kind {
            0 => info.modules.extend(elf_modname(body)),
            2 => info.config = Some(text()),
            3 => info.prefix = Some(text()),
            _ => {}
        }
        p += len;
    }
    info.modules.sort();
    Ok(info)
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The first-boot stamp, as CoreOS systems have it: while
/// `/ignition.firstboot` exists on the boot file system, the BLS options'
/// `$ignition_firstboot` becomes `ignition.firstboot` plus the networking
/// arguments the stamp file sets (image.yaml's `ignition-network-kcmdline`).
pub const FIRSTBOOT_CFG: &str = "set ignition_firstboot=\"\"\n\
if [ -f \"/ignition.firstboot\" ]; then\n\
  set ignition_network_kcmdline=\"\"\n\
  source \"/ignition.firstboot\"\n\
  set ignition_firstboot=\"ignition.firstboot ${ignition_network_kcmdline}\"\n\
fi\n";

/// Once ostree on the machine has deployed again, the menu is the one its
/// grub2 backend wrote (`sysroot.bootloader=grub2`: `grub-mkconfig` with
/// the tree's 15_ostree hook, into `/loader/grub.cfg`, which follows the
/// `loader` link to the current boot version); until then, the entries
/// written at build time.
pub const FOLLOW_CFG: &str = "if [ -f /loader/grub.cfg ]; then\n\
  configfile /loader/grub.cfg\n\
fi\n";

/// grub.cfg for the boot partition: console commands, the first-boot
/// stamp, ostree's own menu when it wrote one ([`FOLLOW_CFG`]), else one
/// entry per BLS entry (what `blscfg` would show).
pub fn grub_cfg(console: &[String], entries: &[BlsEntry]) -> String {
    let mut s = String::from(
        "# Generated by cosa from the BLS entries in /loader/entries\n\
         # (Debian's GRUB has no blscfg).\n",
    );
    s.push_str("# CONSOLE-SETTINGS-START\n");
    for c in console {
        s.push_str(c);
        s.push('\n');
    }
    s.push_str("# CONSOLE-SETTINGS-END\n");
    s.push_str(FIRSTBOOT_CFG);
    s.push_str(FOLLOW_CFG);
    s.push_str("set timeout=1\nset default=0\n");
    for (i, e) in entries.iter().enumerate() {
        s.push_str(&format!(
            "menuentry {} --id ostree-{i} {{\n  linux {} {}\n",
            quote(&e.title),
            e.linux,
            e.options
        ));
        if let Some(i) = &e.initrd {
            s.push_str(&format!("  initrd {i}\n"));
        }
        s.push_str("}\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_cfg_has_console_and_entry() {
        let e = BlsEntry {
            title: "OS 1 (ostree:0)".into(),
            version: "1".into(),
            options: "rw ostree=/ostree/boot.1/os/ab/0".into(),
            linux: "/ostree/os-ab/vmlinuz-6".into(),
            initrd: Some("/ostree/os-ab/initramfs-6.img".into()),
        };
        let c = grub_cfg(&["serial --speed=115200".into()], &[e]);
        assert!(c.contains("serial --speed=115200\n"));
        assert!(c.contains("source \"/ignition.firstboot\"\n"), "{c}");
        // ostree's later menus win over the build-time entries.
        let follow = c.find("configfile /loader/grub.cfg").unwrap();
        assert!(follow < c.find("menuentry").unwrap(), "{c}");
        assert!(c.contains("menuentry 'OS 1 (ostree:0)' --id ostree-0 {"));
        assert!(c.contains("  linux /ostree/os-ab/vmlinuz-6 rw ostree=/ostree/boot.1/os/ab/0\n"));
        assert!(c.contains("  initrd /ostree/os-ab/initramfs-6.img\n"));
        assert_eq!(quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn ieee1275_modules_come_from_the_tree() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join(IEEE1275_TREE_DIR);
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join("normal.mod"), "m").unwrap();
        assert_eq!(ieee1275_modules(t.path()).unwrap(), tree);
        // A tree without them: the host's, or an error naming the package.
        let bare = tempfile::tempdir().unwrap();
        match ieee1275_modules(bare.path()) {
            Ok(d) => assert_eq!(d, platform_dir(IEEE1275_TARGET)),
            Err(e) => {
                let e = format!("{e:#}");
                assert!(
                    e.contains("grub2-ppc64le-modules") && e.contains("normal.mod"),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn the_prep_partition_takes_an_elf_core_image_that_fits() {
        let t = tempfile::tempdir().unwrap();
        let disk = t.path().join("disk");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&disk)
            .unwrap();
        f.set_len(8192).unwrap();
        let core = t.path().join("core.elf");
        std::fs::write(&core, b"\x7fELF-core").unwrap();
        install_prep(&f, &core, 1024, 4096).unwrap();
        let d = std::fs::read(&disk).unwrap();
        assert_eq!(&d[1024..1033], b"\x7fELF-core");
        assert!(install_prep(&f, &core, 1024, 4).is_err());
        std::fs::write(&core, b"not elf").unwrap();
        let e = install_prep(&f, &core, 1024, 4096).unwrap_err();
        assert!(format!("{e:#}").contains("not an ELF image"), "{e:#}");
    }
}
