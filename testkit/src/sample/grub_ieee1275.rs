//! The sample OS's boot loader for ppc64le: Debian's `grub-ieee1275-bin`
//! for ppc64el (GRUB for Open Firmware: SLOF, PowerVM), repackaged as
//! Fedora's `grub2-ppc64le-modules` is laid out, so the tree carries
//! `/usr/lib/grub/powerpc-ieee1275/` and cosa's image stage builds the
//! core image that goes into the PReP partition from the tree's own modules.

use std::path::Path;

use anyhow::{Context, Result, ensure};

use super::debian;
use crate::fixture::{FileSpec, PkgSpec};

/// Where the modules live, in the Debian package and in the tree.
pub const MODULE_DIR: &str = "usr/lib/grub/powerpc-ieee1275";

/// The package's name, as Fedora calls the same files.
pub const PACKAGE: &str = "grub2-ppc64le-modules";

/// The package, from Debian's ppc64el `grub-ieee1275-bin` (fetched once
/// into the sample cache through its private apt state).
pub fn package(arch: &str) -> Result<PkgSpec> {
    let debarch = debian::deb_arch(arch)?;
    let cache = debian::cache_dir()?;
    let deb = debian::fetch_deb(&cache, "grub-ieee1275-bin", debarch)
        .context("fetching Debian's grub-ieee1275-bin (GRUB for Open Firmware)")?;
    let version = debian::control_field(&deb, "Version")?;
    let root = debian::extract_deb(&cache, &deb)?;
    from_unpacked(&root, arch, &version).with_context(|| format!("repackaging {}", deb.display()))
}

/// The package spec from an unpacked `grub-ieee1275-bin`: every file of
/// its module directory, with its mode.
pub fn from_unpacked(root: &Path, arch: &str, deb_version: &str) -> Result<PkgSpec> {
    use std::os::unix::fs::PermissionsExt;
    let dir = root.join(MODULE_DIR);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    names.sort();
    for needed in ["kernel.img", "moddep.lst", "normal.mod"] {
        ensure!(
            names.iter().any(|n| n == needed),
            "{} has no {needed}: not GRUB's powerpc-ieee1275 modules",
            dir.display()
        );
    }
    let (version, release) = super::rpm_version(deb_version);
    let mut p = PkgSpec::new(PACKAGE, &version)
        .release(&format!("{release}.sample"))
        .arch(arch)
        .requires("filesystem")
        .file(FileSpec::dir("/usr/lib/grub"))
        .file(FileSpec::dir(&format!("/{MODULE_DIR}")));
    for n in names {
        let path = dir.join(&n);
        let md = std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        ensure!(md.is_file(), "{} is not a regular file", path.display());
        let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let mode = (md.permissions().mode() & 0o7777) as u16;
        p = p.file(FileSpec::file(&format!("/{MODULE_DIR}/{n}"), data).mode(mode));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_directory_becomes_a_package() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join(MODULE_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["kernel.img", "moddep.lst", "normal.mod"] {
            std::fs::write(dir.join(f), f).unwrap();
        }
        let p = from_unpacked(t.path(), "ppc64le", "2.06-13+deb12u2").unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), (PACKAGE, "2.06"));
        assert_eq!(p.release, "13+deb12u2.sample");
        let paths: Vec<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
        assert!(
            paths.contains(&"/usr/lib/grub/powerpc-ieee1275/normal.mod"),
            "{paths:?}"
        );
        std::fs::remove_file(dir.join("normal.mod")).unwrap();
        let e = from_unpacked(t.path(), "ppc64le", "2.06-1").unwrap_err();
        assert!(format!("{e:#}").contains("no normal.mod"), "{e:#}");
    }
}
