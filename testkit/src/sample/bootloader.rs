//! The sample OS's boot loader packages, repackaged from Debian's signed
//! binaries and laid out as bootupd expects them in an OSTree commit
//! (Fedora CoreOS's tree is the model):
//!
//! - `shim-signed`: Debian's Microsoft-signed shim as the removable-media
//!   loader `/usr/lib/bootupd/updates/EFI/BOOT/BOOT<ARCH>.EFI` and as
//!   `EFI/debian/shim<arch>.efi`, with the Debian-signed MokManager and
//!   fallback (`shim-helpers-<debarch>-signed`) and the fallback's
//!   `BOOT<ARCH>.CSV` (from `shim-unsigned`).
//! - `grub-efi-<debarch>-signed`: Debian's signed monolithic GRUB as
//!   `EFI/debian/grub<arch>.efi` (its built-in prefix is `/EFI/debian`).
//! - `grub-pc-bin` (x86_64): GRUB's BIOS modules and `boot.img`, left where
//!   Debian puts them (`/usr/lib/grub/i386-pc`), from which the image stage
//!   assembles the BIOS core image.
//!
//! The update metadata (`EFI.json`, `BIOS.json`) is written at compose time
//! from the installed packages, as `bootupctl backend
//! generate-update-metadata` does (see `cosa::compose::bootupd`).

use std::path::Path;

use anyhow::{Context, Result, ensure};

use super::{debian, rpm_version};
use crate::fixture::{FileSpec, PkgSpec};

/// bootupd's update payload directory in the tree.
pub const UPDATES: &str = "/usr/lib/bootupd/updates";
/// The EFI vendor directory of Debian's binaries.
pub const VENDOR: &str = "debian";

/// Per architecture: (EFI file suffix, Debian arch of the signed packages).
fn efi_arch(arch: &str) -> Option<(&'static str, &'static str)> {
    match arch {
        "x86_64" => Some(("x64", "amd64")),
        "aarch64" => Some(("aa64", "arm64")),
        _ => None,
    }
}

/// A file unpacked from a Debian package, read whole.
fn deb_file(package: &str, debarch: &str, path: &str) -> Result<(Vec<u8>, String)> {
    let cache = debian::cache_dir()?;
    let deb = debian::fetch_deb(&cache, package, debarch)
        .with_context(|| format!("fetching Debian's {package} ({debarch})"))?;
    let version = debian::control_field(&deb, "Version")?;
    let root = debian::extract_deb(&cache, &deb)?;
    let p = root.join(path.trim_start_matches('/'));
    let data = std::fs::read(&p)
        .with_context(|| format!("reading {} of Debian's {package}", p.display()))?;
    Ok((data, version))
}

fn dirs(mut p: PkgSpec, dirs: &[&str]) -> PkgSpec {
    for d in dirs {
        p = p.file(FileSpec::dir(d));
    }
    p
}

/// The boot loader packages of the sample OS for `arch` (none for
/// architectures without UEFI shim and GRUB packages here).
pub fn packages(arch: &str) -> Result<Vec<PkgSpec>> {
    let Some((efi, debarch)) = efi_arch(arch) else {
        return Ok(Vec::new());
    };
    let upper = efi.to_uppercase();
    let efi_dir = format!("{UPDATES}/EFI");
    let boot_dir = format!("{efi_dir}/BOOT");
    let vendor_dir = format!("{efi_dir}/{VENDOR}");
    let common_dirs = [
        "/usr/lib/bootupd",
        UPDATES,
        efi_dir.as_str(),
        vendor_dir.as_str(),
    ];

    // shim: the Microsoft-signed binary, with Debian's signed helpers.
    let (shim, shim_version) = deb_file(
        "shim-signed",
        debarch,
        &format!("usr/lib/shim/shim{efi}.efi.signed"),
    )?;
    let helpers = format!("shim-helpers-{debarch}-signed");
    let (mm, _) = deb_file(
        &helpers,
        debarch,
        &format!("usr/lib/shim/mm{efi}.efi.signed"),
    )?;
    let (fb, _) = deb_file(
        &helpers,
        debarch,
        &format!("usr/lib/shim/fb{efi}.efi.signed"),
    )?;
    let (csv, _) = deb_file(
        "shim-unsigned",
        debarch,
        &format!("usr/lib/shim/BOOT{upper}.CSV"),
    )?;
    let (v, r) = rpm_version(&shim_version);
    let shim_pkg = dirs(
        PkgSpec::new("shim-signed", &v)
            .release(&format!("{r}.sample"))
            .arch(arch)
            .requires("filesystem"),
        &common_dirs,
    )
    .file(FileSpec::dir(&boot_dir))
    .file(FileSpec::file(&format!("{boot_dir}/BOOT{upper}.EFI"), shim.clone()).mode(0o644))
    .file(FileSpec::file(&format!("{boot_dir}/fb{efi}.efi"), fb).mode(0o644))
    .file(FileSpec::file(&format!("{vendor_dir}/shim{efi}.efi"), shim).mode(0o644))
    .file(FileSpec::file(&format!("{vendor_dir}/mm{efi}.efi"), mm).mode(0o644))
    .file(FileSpec::file(&format!("{vendor_dir}/BOOT{upper}.CSV"), csv).mode(0o644));

    // GRUB: Debian's signed monolithic image.
    let grub_signed = format!("grub-efi-{debarch}-signed");
    let platform = if arch == "x86_64" { "x86_64" } else { "arm64" };
    let (grub, grub_version) = deb_file(
        &grub_signed,
        debarch,
        &format!("usr/lib/grub/{platform}-efi-signed/grub{efi}.efi.signed"),
    )?;
    let (v, r) = rpm_version(&grub_version);
    let grub_pkg = dirs(
        PkgSpec::new(&grub_signed, &v)
            .release(&format!("{r}.sample"))
            .arch(arch)
            .requires("filesystem"),
        &common_dirs,
    )
    .file(FileSpec::file(&format!("{vendor_dir}/grub{efi}.efi"), grub).mode(0o644));

    let mut out = vec![shim_pkg, grub_pkg];
    if arch == "x86_64" {
        out.push(grub_pc_bin(arch)?);
    }
    Ok(out)
}

/// Debian's `grub-pc-bin`: the i386-pc modules, images and lists.
fn grub_pc_bin(arch: &str) -> Result<PkgSpec> {
    let cache = debian::cache_dir()?;
    let deb = debian::fetch_deb(&cache, "grub-pc-bin", "amd64")
        .context("fetching Debian's grub-pc-bin (amd64)")?;
    let version = debian::control_field(&deb, "Version")?;
    let root = debian::extract_deb(&cache, &deb)?;
    let dir = root.join("usr/lib/grub/i386-pc");
    let (v, r) = rpm_version(&version);
    let mut p = PkgSpec::new("grub-pc-bin", &v)
        .release(&format!("{r}.sample"))
        .arch(arch)
        .requires("filesystem")
        .file(FileSpec::dir("/usr/lib/grub"))
        .file(FileSpec::dir("/usr/lib/grub/i386-pc"));
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    names.sort();
    for n in names {
        let src = dir.join(&n);
        ensure!(
            src.is_file(),
            "{} is not a plain file (grub-pc-bin's i386-pc directory is flat)",
            src.display()
        );
        let data = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        let name = n.to_string_lossy();
        p = p.file(FileSpec::file(&format!("/usr/lib/grub/i386-pc/{name}"), data).mode(0o644));
    }
    ensure!(
        Path::new(&dir).join("boot.img").is_file(),
        "grub-pc-bin has no i386-pc/boot.img"
    );
    Ok(p)
}
