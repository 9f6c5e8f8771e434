//! Live media, as coreos-assembler's `buildextend-live` ships them: the
//! deployed sysroot as a squashfs wrapped in a newc cpio (`live-rootfs`,
//! appendable as a second initrd for PXE), the OS's own kernel and initramfs
//! (`live-kernel`, `live-initramfs`; the sample OS's initramfs has a live
//! mode), and an ISO holding all three that boots by BIOS (GRUB El Torito),
//! by UEFI (an El Torito FAT image with `EFI/BOOT/BOOTX64.EFI`) and, being
//! isohybrid with an MBR and a GPT, as a disk too.
//!
//! The ISO's volume label is passed as `coreos.liveiso=<label>`: the
//! initramfs finds the ISO by it and loop-mounts the squashfs inside
//! `images/pxeboot/rootfs.img`.
//!
//! The boot loader comes from the tree, as for disks ([`super::bootloader`]):
//! a commit with bootupd's `/usr/lib/bootupd/updates/EFI` gets those files,
//! byte for byte, in the EFI El Torito image (`images/efiboot.img`) and in
//! the ISO's `/EFI` (shim as `EFI/BOOT/BOOTX64.EFI`, the vendor directory
//! with the signed GRUB), plus a grub.cfg stub at that GRUB's built-in prefix
//! which finds the ISO by its label and loads `boot/grub/grub.cfg`: the ISO
//! boots under Secure Boot. The BIOS El Torito image is made from the tree's
//! i386-pc modules when it has them. A tree without the EFI payload gets the
//! build host's GRUB (unsigned, unless image.yaml names a signing key), with
//! a warning.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

use super::bootloader::{self, Stub};
use super::{ImageBuild, grub};
use crate::compose::bootupd::UPDATES_DIR;
use crate::config::image::{EfiSigning, ImageConfig, Platforms};
use crate::ostree::deploy::BOOTVERSION;
use crate::util::cmd::CommandRunExt;

/// The meta.json keys of the live artifacts, in the order they are made.
pub const KEYS: [&str; 4] = ["live-iso", "live-kernel", "live-initramfs", "live-rootfs"];

/// Where the PXE files sit on the ISO (upstream's layout).
pub const ISO_KERNEL: &str = "images/pxeboot/vmlinuz";
pub const ISO_INITRAMFS: &str = "images/pxeboot/initrd.img";
pub const ISO_ROOTFS: &str = "images/pxeboot/rootfs.img";
const ISO_EFIBOOT: &str = "images/efiboot.img";
const ISO_ELTORITO: &str = "boot/grub/i386-pc/eltorito.img";
const ISO_GRUB_CFG: &str = "boot/grub/grub.cfg";

/// The squashfs's name inside the rootfs cpio (upstream's).
pub const SQUASHFS_NAME: &str = "root.squashfs";

/// The file name of live artifact `key` (one of [`KEYS`]), as upstream
/// names them: `<name>-<id>-live-iso.<arch>.iso`, `-live-kernel.<arch>`,
/// `-live-initramfs.<arch>.img`, `-live-rootfs.<arch>.img`.
pub fn artifact_file(name: &str, buildid: &str, arch: &str, key: &str) -> Result<String> {
    let ext = match key {
        "live-iso" => ".iso",
        "live-kernel" => "",
        "live-initramfs" | "live-rootfs" => ".img",
        other => bail!(
            "{other:?} is not a live artifact (known: {})",
            KEYS.join(", ")
        ),
    };
    Ok(format!("{name}-{buildid}-{key}.{arch}{ext}"))
}

/// The ISO volume label: `<name>-<id>`, at most 32 characters (ISO 9660's
/// limit), the build id kept whole when the name must be shortened.
pub fn volume_label(name: &str, buildid: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let (name, id) = (clean(name), clean(buildid));
    let full = format!("{name}-{id}");
    if full.len() <= 32 {
        return full;
    }
    if id.len() < 31 {
        let keep = 31 - id.len();
        return format!("{}-{id}", &name[..keep.min(name.len())]);
    }
    full[..32].to_string()
}

/// The deployment's `ostree=` argument from the kernel and initramfs it
/// boots: ostree names the boot directory after the sha256 of both.
pub fn ostree_karg(osname: &str, kernel: &[u8], initramfs: &[u8]) -> String {
    format!(
        "ostree=/ostree/boot.{BOOTVERSION}/{osname}/{}/0",
        crate::ostree::deploy::boot_checksum(kernel, Some(initramfs))
    )
}

/// The live kernel arguments (PXE; the ISO adds `coreos.liveiso=`):
/// image.yaml's extra-kargs, `ignition.firstboot`,
/// `ignition.platform.id=metal`, metal's console kargs from platforms.yaml,
/// and `ostree=`.
pub fn live_kargs(
    image: &ImageConfig,
    platforms: &Platforms,
    arch: &str,
    ostree: &str,
) -> Vec<String> {
    let mut k = image.extra_kargs.clone();
    k.push("ignition.firstboot".to_string());
    k.push("ignition.platform.id=metal".to_string());
    k.extend(platforms.get(arch, "metal").kernel_arguments);
    k.push(ostree.to_string());
    k
}

/// The PXE kernel arguments of a build's live kernel and initramfs files:
/// what `cosa kola run basic --platform live-pxe` boots with.
pub fn pxe_kargs(
    config_dir: &Path,
    arch: &str,
    default_osname: &str,
    kernel: &Path,
    initramfs: &Path,
) -> Result<Vec<String>> {
    let image = ImageConfig::load(config_dir)?;
    let plat = Platforms::load(config_dir)?;
    let osname = image
        .osname
        .clone()
        .unwrap_or_else(|| default_osname.to_string());
    let k = fs::read(kernel).with_context(|| format!("reading {}", kernel.display()))?;
    let i = fs::read(initramfs).with_context(|| format!("reading {}", initramfs.display()))?;
    Ok(live_kargs(
        &image,
        &plat,
        arch,
        &ostree_karg(&osname, &k, &i),
    ))
}

/// Wrap `squashfs` into a newc cpio archive at `out` holding only
/// `/root.squashfs` (mode 0644, owner root, mtime `mtime`), as upstream's
/// live rootfs image. The squashfs starts at byte 124.
pub fn write_rootfs_cpio(squashfs: &Path, out: &Path, mtime: i64) -> Result<()> {
    let what = || format!("writing {}", out.display());
    let mut src =
        File::open(squashfs).with_context(|| format!("opening {}", squashfs.display()))?;
    let size = src
        .metadata()
        .with_context(|| format!("reading {}", squashfs.display()))?
        .len();
    let mut w = BufWriter::new(File::create(out).with_context(what)?);
    crate::util::cpio::write_header(&mut w, 1, SQUASHFS_NAME, 0o100644, size, mtime)
        .with_context(what)?;
    let copied = std::io::copy(&mut src, &mut w).with_context(what)?;
    ensure!(
        copied == size,
        "{} changed while copying",
        squashfs.display()
    );
    w.write_all(crate::util::cpio::data_padding(size))
        .with_context(what)?;
    crate::util::cpio::write_header(&mut w, 0, crate::util::cpio::TRAILER, 0, 0, 0)
        .with_context(what)?;
    // Pad to 512 bytes, as cpio(1) does.
    let len = 124 + size.div_ceil(4) * 4 + 124;
    w.write_all(&vec![0u8; ((512 - len % 512) % 512) as usize])
        .with_context(what)?;
    w.into_inner()
        .map_err(|e| e.into_error())
        .with_context(what)?
        .sync_all()
        .with_context(what)?;
    Ok(())
}

/// `mksquashfs` of `dir` into `out`: owners, modes and xattrs kept, every
/// time stamp set to `mtime`, so the same tree makes the same bytes.
pub fn make_squashfs(dir: &Path, out: &Path, compression: &str, mtime: i64) -> Result<()> {
    let mut cmd = Command::new("mksquashfs");
    cmd.arg(dir)
        .arg(out)
        .args(["-noappend", "-no-progress", "-comp", compression])
        .arg("-mkfs-time")
        .arg(mtime.max(0).to_string())
        .arg("-all-time")
        .arg(mtime.max(0).to_string())
        // mksquashfs refuses its time options when the caller's
        // environment has SOURCE_DATE_EPOCH; ours say the same.
        .env_remove("SOURCE_DATE_EPOCH");
    cmd.run_capture("making the live squashfs (install Debian's squashfs-tools)")?;
    Ok(())
}

/// GRUB modules the live ISO's images add to the disk images' set.
const ISO_MODULES: &[&str] = &["iso9660", "part_msdos"];

/// Modules the tree's (signed) GRUB must have built in to boot the ISO: read
/// the stub from the FAT El Torito image, find the ISO by label, read it and
/// load the menu's kernel (Secure Boot forbids loading modules from disk).
const TREE_GRUB_MODULES: &[&str] = &[
    "fat",
    "iso9660",
    "search",
    "search_label",
    "configfile",
    "normal",
    "linux",
];

/// The embedded config of the ISO's GRUB images: the file system labelled
/// `label` (the ISO, as a CD-ROM or as a disk) and its boot/grub/grub.cfg.
pub fn early_cfg(label: &str) -> String {
    format!(
        "search --no-floppy --label '{label}' --set root\n\
         set prefix=($root)/boot/grub\n\
         configfile ($root)/{ISO_GRUB_CFG}\n"
    )
}

/// `grub-mkimage` for `target` from the modules in `dir` (the host's or the
/// tree's), with [`early_cfg`] embedded.
fn grub_image(
    target: &str,
    dir: &Path,
    extra: &[&str],
    label: &str,
    out: &Path,
    work: &Path,
) -> Result<()> {
    ensure!(
        dir.join("normal.mod").exists(),
        "{} holds no GRUB modules for {target} (no normal.mod)",
        dir.display()
    );
    let cfg = work.join(format!("early-{target}.cfg"));
    fs::write(&cfg, early_cfg(label)).with_context(|| format!("writing {}", cfg.display()))?;
    let mut cmd = Command::new("grub-mkimage");
    cmd.arg("-O")
        .arg(target)
        .arg("-d")
        .arg(dir)
        .arg("-o")
        .arg(out)
        .arg("-p")
        .arg("/boot/grub")
        .arg("-c")
        .arg(&cfg)
        .args(super::grub::COMMON_MODULES)
        .args(ISO_MODULES)
        .args(extra);
    cmd.run_capture(&format!(
        "making the GRUB {target} image from {}",
        dir.display()
    ))?;
    Ok(())
}

/// The ISO's grub.cfg: console commands, then one entry booting the live
/// kernel with `kargs`.
pub fn grub_cfg(console: &[String], title: &str, kargs: &[String]) -> String {
    let mut s = String::from("# Generated by cosa buildextend-live\n");
    for c in console {
        s.push_str(c);
        s.push('\n');
    }
    s.push_str("set timeout=1\nset default=0\n");
    s.push_str(&format!(
        "menuentry '{}' --id live {{\n  linux /{ISO_KERNEL} {}\n  initrd /{ISO_INITRAMFS}\n}}\n",
        title.replace('\'', ""),
        kargs.join(" ")
    ));
    s
}

/// The total size of the regular files under `dir`.
fn tree_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e.with_context(|| format!("reading {}", d.display()))?;
            let m = e
                .metadata()
                .with_context(|| format!("reading {}", e.path().display()))?;
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    Ok(total)
}

/// A FAT image (the UEFI El Torito image) holding the `EFI` directory of
/// `root`, every file's time `mtime`.
fn make_efiboot(root: &Path, out: &Path, mtime: i64) -> Result<()> {
    let efi = root.join("EFI");
    let size = tree_size(&efi)?;
    // Room for the files, FAT tables and directories; whole MiB.
    let kib = (size / 1024 + 1024).div_ceil(1024) * 1024;
    let mut mkfs = Command::new("mkfs.fat");
    mkfs.args(["--invariant", "-i", "12345678", "-n", "EFIBOOT", "-C"])
        .arg(out)
        .arg(kib.to_string());
    mkfs.run_capture("making the EFI boot image (mkfs.fat)")?;
    super::disk::fat_copy_tree(
        &out.display().to_string(),
        &efi,
        "::/EFI",
        mtime,
        "the EFI boot image",
    )
}

/// The live ISO's boot loader, ready for the ISO.
#[derive(Debug)]
pub struct LiveBootLoader {
    /// GRUB's i386-pc modules for the BIOS El Torito image (None without
    /// BIOS boot).
    pub bios_modules: Option<PathBuf>,
    /// meta.json's `bootloader` of the ISO: `from: tree|host`, as disks.
    pub record: serde_json::Value,
}

/// The live ISO's boot loader from the deployed tree `deployed`, as
/// bootupd's payload lays it out, or else the host's GRUB (with a warning,
/// signed when image.yaml names a key), written into `efi_root/EFI` (the
/// ISO's root: its `/EFI`, and what efiboot.img is made of). `work` is a
/// scratch directory.
pub fn prepare_boot_loader(
    deployed: &Path,
    arch: &str,
    bios: bool,
    label: &str,
    efi_root: &Path,
    work: &Path,
    signing: Option<&EfiSigning>,
) -> Result<LiveBootLoader> {
    let (target, file) = grub::efi_target(arch)?;
    fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let mut record = if deployed.join(UPDATES_DIR).join("EFI").is_dir() {
        let cfg = early_cfg(label);
        let stub = Stub {
            cfg: &cfg,
            required_modules: TREE_GRUB_MODULES,
            replace_tree_stub: true,
            target: "the live ISO",
        };
        let (_, stub_path) = bootloader::fill_esp(deployed, arch, efi_root, &stub)
            .context("installing the tree's EFI boot loader on the live ISO")?;
        let mut r = serde_json::json!({"from": "tree", "grub-cfg-stub": stub_path});
        if let Some(m) = bootloader::read_metadata(deployed, "EFI")? {
            r["EFI"] = serde_json::to_value(&m)?;
        }
        r
    } else {
        let signed = match signing {
            Some(s) => format!("signed with {}", s.cert.display()),
            None => "not signed (the ISO cannot boot under Secure Boot)".to_string(),
        };
        eprintln!(
            "warning: the tree has no /{UPDATES_DIR}/EFI (bootupd's boot loader payload): \
             the live ISO gets the build host's GRUB, {signed}"
        );
        let boot = efi_root.join("EFI/BOOT");
        fs::create_dir_all(&boot).with_context(|| format!("creating {}", boot.display()))?;
        let host = grub::host_modules(target)?;
        grub_image(
            target,
            &host,
            &["efi_gop", "all_video"],
            label,
            &boot.join(file),
            work,
        )?;
        if let Some(s) = signing {
            bootloader::sign_efi(&boot.join(file), s)?;
        }
        serde_json::json!({
            "from": "host",
            "reason": format!("the tree has no /{UPDATES_DIR}/EFI"),
            "signed": signing.is_some(),
        })
    };
    let bios_modules = if !bios {
        None
    } else if let Some(modules) = bootloader::tree_bios_modules(deployed) {
        if let Some(m) = bootloader::read_metadata(deployed, "BIOS")? {
            record["BIOS"] = serde_json::to_value(&m)?;
        }
        Some(modules)
    } else {
        if record["from"] == "tree" {
            eprintln!(
                "warning: the tree has no GRUB BIOS modules (/{}/boot.img): the live ISO's \
                 BIOS boot uses the build host's GRUB",
                bootloader::TREE_BIOS_MODULES
            );
            record["BIOS"] = serde_json::json!({"from": "host"});
        }
        Some(grub::host_modules("i386-pc")?)
    };
    Ok(LiveBootLoader {
        bios_modules,
        record,
    })
}

/// Link `src` to `dest`, or copy it when linking fails.
fn place(src: &Path, dest: &Path) -> Result<()> {
    if let Some(d) = dest.parent() {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    fs::hard_link(src, dest)
        .or_else(|_| fs::copy(src, dest).map(|_| ()))
        .with_context(|| format!("placing {} at {}", src.display(), dest.display()))
}

/// Make the ISO at `out` from the tree `root`; `bios` is the directory of
/// the i386-pc modules the El Torito image was made from (its
/// `boot_hybrid.img` is the isohybrid MBR).
fn make_iso(
    root: &Path,
    out: &Path,
    label: &str,
    bios: Option<&Path>,
    efi: bool,
    mtime: i64,
) -> Result<()> {
    let mut cmd = Command::new("xorriso");
    cmd.args(["-as", "mkisofs", "-r", "-V", label])
        .arg(format!(
            "--modification-date={}",
            crate::util::time::format_rfc3339(mtime.max(0))
                .chars()
                .filter(|c| c.is_ascii_digit())
                .collect::<String>()
                + "00"
        ))
        .env("SOURCE_DATE_EPOCH", mtime.max(0).to_string());
    if let Some(modules) = bios {
        let mbr = modules.join("boot_hybrid.img");
        ensure!(mbr.exists(), "{} is missing (grub-pc-bin)", mbr.display());
        cmd.args(["-b", ISO_ELTORITO, "-c", "boot/grub/boot.cat"])
            .args(["-no-emul-boot", "-boot-load-size", "4", "-boot-info-table"])
            .arg("--grub2-boot-info")
            .arg("--grub2-mbr")
            .arg(mbr);
    }
    if efi {
        cmd.args([
            "--efi-boot",
            ISO_EFIBOOT,
            "-efi-boot-part",
            "--efi-boot-image",
        ]);
    }
    cmd.arg("-o").arg(out).arg(root);
    cmd.run_capture("making the live ISO (install Debian's xorriso)")?;
    Ok(())
}

/// What [`build_live`] made: file names in the build directory by meta.json
/// key, the ISO label and the kernel arguments.
#[derive(Clone, Debug)]
pub struct MadeLive {
    pub files: Vec<(String, String)>,
    pub label: String,
    pub kargs: Vec<String>,
    pub seconds: f64,
    /// meta.json's `bootloader` of the ISO (see [`LiveBootLoader::record`]).
    pub bootloader: serde_json::Value,
}

/// Make the live artifacts of a build into its build directory (each under
/// a temporary name, renamed into place when all are complete).
pub fn build_live(b: &ImageBuild) -> Result<MadeLive> {
    let t0 = Instant::now();
    let bios = match b.arch {
        "x86_64" => true,
        "aarch64" => false,
        other => bail!(
            "live media for {other} are not made: x86_64 and aarch64 only (upstream's s390x ISO boots \
             with zipl, which is not available here; the ppc64le ISO's Open Firmware boot, CHRP \
             bootinfo.txt and a powerpc-ieee1275 GRUB, is not made yet)"
        ),
    };
    let image = ImageConfig::load(b.config_dir)?;
    let plat = Platforms::load(b.config_dir)?;
    let osname = image.osname.clone().unwrap_or_else(|| b.name.to_string());
    let compression = image.squashfs_compression.clone();

    let (sysroot, boot, dep) = super::deploy_build(b, &image, &osname)?;
    let aleph = serde_json::json!({
        "build": b.buildid,
        "ref": b.ostree_ref,
        "ostree-commit": b.commit,
        "imgid": artifact_file(b.name, b.buildid, b.arch, "live-iso")?,
    });
    fs::write(
        sysroot.join(".coreos-aleph-version.json"),
        serde_json::to_vec_pretty(&aleph)?,
    )
    .context("writing .coreos-aleph-version.json")?;
    eprintln!(
        "Deployed {} (kernel {}) in {:.1}s",
        &b.commit[..12.min(b.commit.len())],
        dep.kver,
        t0.elapsed().as_secs_f64()
    );
    let kernel = boot.join(dep.bls.linux.trim_start_matches('/'));
    let initramfs = boot.join(
        dep.bls
            .initrd
            .as_deref()
            .context("the commit has no initramfs (usr/lib/modules/<kver>/initramfs.img); live media need one")?
            .trim_start_matches('/'),
    );
    // The same boot checksum `cosa kola run --platform live-pxe` derives.
    let ostree = ostree_karg(
        &osname,
        &fs::read(&kernel).with_context(|| format!("reading {}", kernel.display()))?,
        &fs::read(&initramfs).with_context(|| format!("reading {}", initramfs.display()))?,
    );
    ensure!(
        ostree == dep.ostree_karg,
        "internal: live ostree karg {ostree} differs from the deployment's {}",
        dep.ostree_karg
    );

    let t = Instant::now();
    let squashfs = b.work.join(SQUASHFS_NAME);
    make_squashfs(&sysroot, &squashfs, &compression, b.timestamp)?;
    let rootfs = b.work.join("rootfs.img");
    write_rootfs_cpio(&squashfs, &rootfs, b.timestamp)?;
    fs::remove_file(&squashfs).with_context(|| format!("removing {}", squashfs.display()))?;
    eprintln!(
        "Made the live rootfs ({} MiB squashfs, {compression}) in {:.1}s",
        fs::metadata(&rootfs)?.len() / (1024 * 1024),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let label = volume_label(b.name, b.buildid);
    let pxe = live_kargs(&image, &plat, b.arch, &ostree);
    let mut iso_kargs = vec![format!("coreos.liveiso={label}")];
    iso_kargs.extend(pxe.iter().cloned());
    let iso = b.work.join("iso");
    place(&kernel, &iso.join(ISO_KERNEL))?;
    place(&initramfs, &iso.join(ISO_INITRAMFS))?;
    place(&rootfs, &iso.join(ISO_ROOTFS))?;
    let title = format!(
        "{} (live)",
        dep.bls.title.trim_end_matches(" (ostree:0)").trim()
    );
    let cfg = grub_cfg(&plat.get(b.arch, "metal").grub_commands, &title, &iso_kargs);
    let cfg_path = iso.join(ISO_GRUB_CFG);
    fs::create_dir_all(cfg_path.parent().context("grub.cfg has a parent")?)?;
    fs::write(&cfg_path, &cfg).with_context(|| format!("writing {}", cfg_path.display()))?;
    let grub_work = b.work.join("grub");
    let deployed = sysroot.join(&dep.deploy_path);
    let bl = prepare_boot_loader(
        &deployed,
        b.arch,
        bios,
        &label,
        &iso,
        &grub_work,
        image.efi_signing.as_ref(),
    )
    .context("preparing the live ISO's boot loader")?;
    if let Some(modules) = &bl.bios_modules {
        let el = iso.join(ISO_ELTORITO);
        fs::create_dir_all(el.parent().context("eltorito.img has a parent")?)?;
        grub_image(
            "i386-pc-eltorito",
            modules,
            &["biosdisk"],
            &label,
            &el,
            &grub_work,
        )?;
    }
    // The boot loader is on the ISO file system (`/EFI`, as upstream, for
    // firmware that reads it) and in the El Torito image.
    make_efiboot(&iso, &iso.join(ISO_EFIBOOT), b.timestamp)?;
    super::disk::set_mtimes(&iso, b.timestamp)?;
    let iso_out = b.work.join("live.iso");
    make_iso(
        &iso,
        &iso_out,
        &label,
        bl.bios_modules.as_deref(),
        true,
        b.timestamp,
    )?;
    eprintln!(
        "Made the live ISO (label {label}, {} MiB) in {:.1}s",
        fs::metadata(&iso_out)?.len() / (1024 * 1024),
        t.elapsed().as_secs_f64()
    );

    let sources: [(&str, PathBuf); 4] = [
        ("live-iso", iso_out),
        ("live-kernel", kernel),
        ("live-initramfs", initramfs),
        ("live-rootfs", rootfs),
    ];
    let mut staged = Vec::new();
    for (key, src) in &sources {
        let file = artifact_file(b.name, b.buildid, b.arch, key)?;
        let tmp = b.build_dir.join(format!(".tmp-{file}"));
        let _ = fs::remove_file(&tmp);
        fs::rename(src, &tmp)
            .or_else(|_| fs::copy(src, &tmp).map(|_| ()))
            .with_context(|| format!("moving {} to {}", src.display(), tmp.display()))?;
        staged.push((key.to_string(), file, tmp));
    }
    let mut files = Vec::new();
    for (key, file, tmp) in staged {
        fs::rename(&tmp, b.build_dir.join(&file))
            .with_context(|| format!("renaming {} into place", tmp.display()))?;
        files.push((key, file));
    }
    Ok(MadeLive {
        files,
        label,
        kargs: iso_kargs,
        seconds: t0.elapsed().as_secs_f64(),
        bootloader: bl.record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_label() {
        assert_eq!(
            artifact_file("fcos", "1.2", "x86_64", "live-iso").unwrap(),
            "fcos-1.2-live-iso.x86_64.iso"
        );
        assert_eq!(
            artifact_file("fcos", "1.2", "x86_64", "live-kernel").unwrap(),
            "fcos-1.2-live-kernel.x86_64"
        );
        assert_eq!(
            artifact_file("fcos", "1.2", "x86_64", "live-rootfs").unwrap(),
            "fcos-1.2-live-rootfs.x86_64.img"
        );
        assert!(artifact_file("fcos", "1.2", "x86_64", "live-foo").is_err());
        assert_eq!(
            volume_label("cosa", "1.20260101.dev.0"),
            "cosa-1.20260101.dev.0"
        );
        let l = volume_label("fedora-coreos-very-long-name", "41.20260101.3.0");
        assert_eq!(l.len(), 32);
        assert!(l.ends_with("-41.20260101.3.0"), "{l}");
        assert_eq!(volume_label("a b", "1"), "a_b-1");
    }

    #[test]
    fn rootfs_cpio_layout() {
        let t = tempfile::tempdir().unwrap();
        let sq = t.path().join("sq");
        fs::write(&sq, b"hsqs12345").unwrap();
        let out = t.path().join("rootfs.img");
        write_rootfs_cpio(&sq, &out, 7).unwrap();
        let data = fs::read(&out).unwrap();
        assert_eq!(&data[..6], b"070701");
        assert_eq!(&data[110..124], b"root.squashfs\0");
        assert_eq!(&data[124..133], b"hsqs12345");
        assert_eq!(data.len() % 512, 0);
        let trailer = 124 + 12;
        assert_eq!(&data[trailer + 110..trailer + 120], b"TRAILER!!!");
    }

    #[test]
    fn kargs_and_grub_cfg() {
        let k = ostree_karg("os", b"k", b"i");
        assert!(k.starts_with("ostree=/ostree/boot.1/os/"), "{k}");
        assert_eq!(k.len(), "ostree=/ostree/boot.1/os/".len() + 64 + 2);
        let c = grub_cfg(
            &["serial --speed=115200".into()],
            "OS 1 (live)",
            &["coreos.liveiso=L".into(), k.clone()],
        );
        assert!(c.contains("serial --speed=115200\n"));
        assert!(c.contains(&format!(
            "  linux /images/pxeboot/vmlinuz coreos.liveiso=L {k}\n"
        )));
        assert!(c.contains("  initrd /images/pxeboot/initrd.img\n"));
        assert!(early_cfg("L").contains("--label 'L'"));
    }

    /// A tree with bootupd's EFI payload whose GRUB (made here with the
    /// host's grub-mkimage, prefix /EFI/debian) has `modules` built in.
    fn tree_with_grub(root: &Path, modules: &[&str]) -> PathBuf {
        let efi = root.join(UPDATES_DIR).join("EFI");
        fs::create_dir_all(efi.join("BOOT")).unwrap();
        fs::create_dir_all(efi.join("debian")).unwrap();
        fs::write(efi.join("BOOT/BOOTX64.EFI"), b"shim").unwrap();
        fs::write(efi.join("debian/mmx64.efi"), b"mok").unwrap();
        let g = efi.join("debian/grubx64.efi");
        let mut cmd = Command::new("grub-mkimage");
        cmd.args(["-O", "x86_64-efi", "-p", "/EFI/debian", "-o"])
            .arg(&g)
            .args(modules);
        cmd.run_capture("grub-mkimage").unwrap();
        g
    }

    #[test]
    fn the_iso_takes_the_trees_efi_files_and_a_stub_at_grubs_prefix() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("tree");
        let grub = tree_with_grub(&tree, TREE_GRUB_MODULES);
        let root = t.path().join("iso");
        let bl = prepare_boot_loader(
            &tree,
            "x86_64",
            false,
            "L-1",
            &root,
            &t.path().join("w"),
            None,
        )
        .unwrap();
        assert_eq!(bl.record["from"], "tree");
        assert_eq!(bl.record["grub-cfg-stub"], "/EFI/debian/grub.cfg");
        assert!(bl.bios_modules.is_none());
        let efi = root.join("EFI");
        assert_eq!(fs::read(efi.join("BOOT/BOOTX64.EFI")).unwrap(), b"shim");
        assert_eq!(
            fs::read(efi.join("debian/grubx64.efi")).unwrap(),
            fs::read(&grub).unwrap()
        );
        let stub = fs::read_to_string(efi.join("debian/grub.cfg")).unwrap();
        assert_eq!(stub, early_cfg("L-1"));
        assert!(
            stub.contains("configfile ($root)/boot/grub/grub.cfg"),
            "{stub}"
        );
    }

    #[test]
    fn a_tree_without_bootupds_payload_gets_the_hosts_grub() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("tree");
        fs::create_dir_all(&tree).unwrap();
        let root = t.path().join("iso");
        let bl = prepare_boot_loader(&tree, "x86_64", true, "L", &root, &t.path().join("w"), None)
            .unwrap();
        assert_eq!(bl.record["from"], "host");
        assert_eq!(bl.record["signed"], false);
        assert_eq!(bl.bios_modules, Some(grub::platform_dir("i386-pc")));
        let efi = fs::read(root.join("EFI/BOOT/BOOTX64.EFI")).unwrap();
        let info = grub::read_image_info(&efi).unwrap();
        assert_eq!(info.config.as_deref(), Some(early_cfg("L").as_str()));
    }

    #[test]
    fn a_tree_grub_without_iso9660_is_refused_by_name() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("tree");
        let without: Vec<&str> = TREE_GRUB_MODULES
            .iter()
            .copied()
            .filter(|m| *m != "iso9660")
            .collect();
        tree_with_grub(&tree, &without);
        let (root, w) = (t.path().join("iso"), t.path().join("w"));
        let e = prepare_boot_loader(&tree, "x86_64", false, "L", &root, &w, None).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("[\"iso9660\"]"), "{msg}");
        assert!(msg.contains("debian/grubx64.efi"), "{msg}");
        assert!(msg.contains("the live ISO"), "{msg}");
    }
}
