//! The sample OS's initramfs: Debian's static busybox, the boot modules and
//! an /init that does what ostree-prepare-root does (see initramfs-init.sh).

use std::io::Write;

use anyhow::{Context, Result};

use super::cpio::{Archive, Kind};
use super::kernel::Kernel;

/// The initramfs's /init.
pub const INIT: &str = include_str!("initramfs-init.sh");

/// Busybox applets the initramfs uses.
pub const APPLETS: &[&str] = &[
    "sh",
    "cat",
    "dd",
    "echo",
    "findfs",
    "insmod",
    "losetup",
    "ls",
    "mkdir",
    "mount",
    "poweroff",
    "readlink",
    "reboot",
    "sleep",
    "switch_root",
    "sync",
    "umount",
    "usleep",
];

/// File listing the modules /init loads, in order, relative to /lib/modules.
pub const MODULE_LIST: &str = "etc/cosa-modules";

/// The initramfs as a cpio archive (not yet compressed).
pub fn archive(kernel: &Kernel, busybox: &[u8]) -> Result<Archive> {
    let mut a = Archive::new();
    a.add("init", Kind::File(INIT.as_bytes().to_vec()), 0o755)?;
    a.add("bin/busybox", Kind::File(busybox.to_vec()), 0o755)?;
    for app in APPLETS {
        a.add(
            &format!("bin/{app}"),
            Kind::Symlink("busybox".into()),
            0o777,
        )?;
    }
    a.add("sbin", Kind::Symlink("bin".into()), 0o777)?;
    // The kernel opens /dev/console for /init before anything is mounted.
    a.add("dev/console", Kind::CharDev(5, 1), 0o600)?;
    a.add("dev/null", Kind::CharDev(1, 3), 0o666)?;
    for d in ["proc", "sys", "sysroot", "run"] {
        a.add(d, Kind::Dir, 0o755)?;
    }
    a.add("tmp", Kind::Dir, 0o1777)?;
    let mut list = String::new();
    for m in &kernel.modules {
        let rel = format!("{}/{}", kernel.kver, m.rel);
        a.add(
            &format!("lib/modules/{rel}"),
            Kind::File(m.data.clone()),
            0o644,
        )
        .with_context(|| format!("adding module {}", m.name))?;
        list.push_str(&rel);
        list.push('\n');
    }
    a.add(
        &format!("lib/modules/{}/modules.dep", kernel.kver),
        Kind::File(kernel.modules_dep().into_bytes()),
        0o644,
    )?;
    a.add(MODULE_LIST, Kind::File(list.into_bytes()), 0o644)?;
    Ok(a)
}

/// The initramfs image: the archive, gzip-compressed (no name, mtime 0).
pub fn build(kernel: &Kernel, busybox: &[u8]) -> Result<Vec<u8>> {
    let cpio = archive(kernel, busybox)?.to_newc();
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    gz.write_all(&cpio).context("compressing the initramfs")?;
    gz.finish().context("compressing the initramfs")
}
