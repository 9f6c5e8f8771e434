//! The repository of the Fedora CoreOS-like sample OS (the config in
//! `sample-fcos/`): Debian's packages with their whole Depends closure,
//! converted to RPMs that keep the dependency graph ([`crate::deb`]), plus
//! the few packages Debian has no counterpart for in an OSTree OS:
//! `filesystem` (the /usr merge's top-level links, as Fedora's), the
//! SELinux policy built into its store ([`super::selinux`]), and the boot
//! loader laid out as bootupd installs it ([`super::bootloader`]).

use std::path::Path;

use anyhow::{Context, Result};

use super::{bootloader, build_cached, debian, selinux};
use crate::fixture::{FileSpec, PkgSpec};

/// What the OS is made of, by Debian package name; their Depends come too.
/// `usr-is-merged` first: apt takes the first alternative of `usrmerge |
/// usr-is-merged`, and usrmerge would bring perl.
pub const PACKAGES: &[&str] = &[
    "usr-is-merged",
    "base-files",
    "bash",
    "dash",
    "libc-bin",
    "coreutils",
    "sed",
    "grep",
    "findutils",
    "less",
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "openssh-server",
    "sudo",
    "ostree",
    "ostree-boot",
    // What ostree runs at each deployment on the machine: grub-mkconfig
    // (the menu, with ostree-boot's 15_ostree hook) and, in bubblewrap,
    // semodule (the SELinux policy after the /etc merge).
    "grub-common",
    "bubblewrap",
    "ignition",
    "rpm",
    "passwd",
    "login",
    "libnss-extrausers",
    "kmod",
    "util-linux",
    "iproute2",
    "procps",
    "policycoreutils",
];

/// The Debian kernel of each arch (the cloud flavour: virtio, no firmware).
fn kernel(debarch: &str) -> Result<&'static str> {
    Ok(match debarch {
        "amd64" => "linux-image-cloud-amd64",
        "arm64" => "linux-image-cloud-arm64",
        other => {
            anyhow::bail!("the FCOS-like sample OS is made for x86_64 and aarch64, not {other}")
        }
    })
}

/// `filesystem`: the top-level links of a merged /usr and the directories
/// every tree has.
fn filesystem(arch: &str) -> PkgSpec {
    super::filesystem_package(
        arch,
        &[
            "/usr",
            "/usr/bin",
            "/usr/sbin",
            "/usr/lib",
            "/usr/lib64",
            "/usr/share",
            "/etc",
            "/var",
            "/home",
            "/srv",
            "/opt",
            "/mnt",
            "/media",
        ],
        0o700,
        &["bin", "sbin", "lib", "lib64"],
    )
}

/// `sample-fcos-release`: the users and groups Debian's maintainer scripts
/// would create (they are not converted), as a sysusers.d file that cosa's
/// compose-time systemd-sysusers reads (a package's, so it is there before
/// the overlays, and for any arch).
fn release() -> PkgSpec {
    PkgSpec::new("sample-fcos-release", "1")
        .release("1.sample")
        .arch("noarch")
        .requires("systemd")
        .file(FileSpec::file(
            "/usr/lib/sysusers.d/sample-fcos.conf",
            "# Users and groups that Debian's maintainer scripts would create.\n\
             u sshd - \"sshd privilege separation\" /run/sshd /usr/sbin/nologin\n\
             u messagebus - \"System Message Bus\" /nonexistent /usr/sbin/nologin\n\
             g wheel -\n\
             g sudo -\n\
             g adm -\n",
        ))
}

/// Build the repository into `dir/<arch>/` (replacing what was there).
pub fn make_repo(dir: &Path, arch: &str) -> Result<()> {
    let debarch = debian::deb_arch(arch)?;
    let out = dir.join(arch);
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let cache = debian::cache_dir()?;
    let mut own = vec![
        filesystem(arch),
        release(),
        selinux::policy_package(true).context("preparing the SELinux policy package")?,
    ];
    own.extend(bootloader::packages(arch).context("preparing the boot loader packages")?);
    for spec in &own {
        build_cached(spec, &cache, &out)?;
    }
    let mut names: Vec<&str> = PACKAGES.to_vec();
    names.push(kernel(debarch)?);
    let debs = crate::deb::fetch_closure(&cache, &names, debarch)?;
    let conv = crate::deb::make_repo(&cache, &debs, &out)?;
    eprintln!(
        "Wrote {} converted Debian packages and {} of the sample's own, with repodata, to {}",
        conv.len(),
        own.len(),
        out.display()
    );
    Ok(())
}
