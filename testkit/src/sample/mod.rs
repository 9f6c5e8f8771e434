//! The sample OS's packages, made with the `rpm` crate from Debian
//! binaries: static busybox (package busybox-static), so the tree has a real
//! shell and its scriptlets really run, and the cloud kernel with an
//! initramfs of our own that boots an OSTree deployment (see
//! [`initramfs`]), whose init ([`OS_INIT`]) reports what booted, and
//! Debian's SELinux reference policy (see [`selinux`]). On ppc64le the tree
//! also carries GRUB's Open Firmware modules (see [`grub_ieee1275`]).

pub mod bootloader;
pub mod cpio;
pub mod debian;
pub mod fcos;
pub mod grub_ieee1275;
pub mod initramfs;
pub mod kernel;
pub mod selinux;

use std::path::Path;

use anyhow::{Context, Result};

use crate::fixture::{FileKind, FileSpec, PkgSpec, RepoCompression, check_with_rpm, createrepo};

const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "mkdir", "chmod", "chown", "id", "grep", "sed", "printf", "test",
    "[", "mount", "umount", "readlink", "basename", "sync", "poweroff", "reboot", "sleep", "uname",
    "dmesg", "od", "insmod",
];

/// The OS's /sbin/init: prints
/// `COSA-BOOTED version=<version> commit=<commit> secureboot=<0|1>
/// lockdown=<mode> cmdline=<cmdline>` to the console and powers off.
pub const OS_INIT: &str = include_str!("os-init.sh");

/// Debian's static busybox for `arch`: the host's /bin/busybox when the
/// arches match, else busybox-static for that arch from the Debian mirror.
pub fn busybox(arch: &str) -> Result<Vec<u8>> {
    if arch == cosa::util::host_arch() {
        return std::fs::read("/bin/busybox")
            .context("reading /bin/busybox (install Debian's busybox-static)");
    }
    let debarch = debian::deb_arch(arch)?;
    let cache = debian::cache_dir()?;
    let deb = debian::fetch_deb(&cache, "busybox-static", debarch)?;
    let root = debian::extract_deb(&cache, &deb)?;
    let p = root.join("bin/busybox");
    std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
}

/// The kernel package: Debian's cloud kernel, the boot modules and our
/// initramfs, under /usr/lib/modules/<kver>/.
pub fn kernel_package(arch: &str, k: &kernel::Kernel, busybox: &[u8]) -> Result<PkgSpec> {
    let (version, release) = rpm_version(&k.deb_version);
    let dir = format!("/usr/lib/modules/{}", k.kver);
    let vmlinuz =
        std::fs::read(&k.vmlinuz).with_context(|| format!("reading {}", k.vmlinuz.display()))?;
    let initramfs = initramfs::build(k, busybox)?;
    let mut p = PkgSpec::new("kernel", &version)
        .release(&format!("{release}.sample"))
        .arch(arch)
        .requires("filesystem")
        .provides(&format!("kernel-uname-r = {}", k.kver))
        .file(FileSpec::dir("/usr/lib/modules"))
        .file(FileSpec::dir(&dir))
        .file(FileSpec::file(&format!("{dir}/vmlinuz"), vmlinuz).mode(0o755))
        .file(FileSpec::file(&format!("{dir}/initramfs.img"), initramfs).mode(0o644))
        .file(FileSpec::file(
            &format!("{dir}/modules.dep"),
            k.modules_dep(),
        ));
    let mut dirs = std::collections::BTreeSet::new();
    for m in k.modules.iter().chain(&k.os_modules) {
        let mut d = Path::new(&m.rel).parent();
        while let Some(x) = d.filter(|x| !x.as_os_str().is_empty()) {
            dirs.insert(x.to_string_lossy().into_owned());
            d = x.parent();
        }
    }
    for d in dirs {
        p = p.file(FileSpec::dir(&format!("{dir}/{d}")));
    }
    for m in k.modules.iter().chain(&k.os_modules) {
        p = p.file(FileSpec::file(&format!("{dir}/{}", m.rel), m.data.clone()));
    }
    Ok(p)
}

/// rpm version and release from a Debian version: `6.1.192-2` ->
/// (`6.1.192`, `2`); the epoch is dropped and `-`/`:` become `_`.
pub fn rpm_version(deb: &str) -> (String, String) {
    let deb = deb.split_once(':').map(|x| x.1).unwrap_or(deb);
    let (v, r) = deb.rsplit_once('-').unwrap_or((deb, "0"));
    (v.replace(['-', ':'], "_"), r.replace(['-', ':'], "_"))
}

/// `filesystem` (as Fedora's): the directories every tree has (`dirs`),
/// `/tmp` (1777), `/root` (`root_mode`) and the merged /usr's top-level
/// links (`/bin -> usr/bin` for each of `links`).
pub(crate) fn filesystem_package(
    arch: &str,
    dirs: &[&str],
    root_mode: u16,
    links: &[&str],
) -> PkgSpec {
    let p = dirs.iter().fold(
        PkgSpec::new("filesystem", "3.18")
            .release("1.sample")
            .arch(arch),
        |p, d| p.file(FileSpec::dir(d)),
    );
    let p = p
        .file(FileSpec::dir("/tmp").mode(0o1777))
        .file(FileSpec::dir("/root").mode(root_mode));
    links.iter().fold(p, |p, l| {
        p.file(FileSpec::symlink(&format!("/{l}"), &format!("usr/{l}")))
    })
}

/// The package specs of the sample OS for `arch`.
pub fn packages(arch: &str) -> Result<Vec<PkgSpec>> {
    let arch = arch.to_string();
    let busybox = busybox(&arch)?;
    let kernel = kernel::load(&arch).context("preparing the sample OS's kernel")?;
    let kernel_pkg = kernel_package(&arch, &kernel, &busybox)?;

    let filesystem = filesystem_package(
        &arch,
        &[
            "/usr",
            "/usr/bin",
            "/usr/sbin",
            "/usr/lib",
            "/usr/share",
            "/etc",
            "/var",
            "/home",
            "/srv",
            "/opt",
            "/mnt",
        ],
        0o550,
        &["bin", "lib", "sbin"],
    );

    let setup = PkgSpec::new("setup", "2.14.5")
        .release("1.sample")
        .arch("noarch")
        .requires("filesystem")
        .file(FileSpec::file("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n").config())
        .file(FileSpec::file("/etc/group", "root:x:0:\nwheel:x:10:\n").config())
        .file(
            FileSpec::file("/etc/shadow", "root:!::0:99999:7:::\n")
                .mode(0)
                .config(),
        );

    let mut bb = PkgSpec::new("busybox", "1.35.0")
        .release("1.sample")
        .arch(&arch)
        .requires("filesystem")
        .provides("/bin/sh")
        .file(FileSpec::file("/usr/bin/busybox", busybox).mode(0o755));
    for a in APPLETS {
        bb = bb.file(FileSpec::symlink(&format!("/usr/bin/{a}"), "busybox"));
    }

    let init = PkgSpec::new("sample-init", "1")
        .release("1.sample")
        .arch("noarch")
        .requires("busybox")
        .requires("/bin/sh")
        .file(FileSpec::file("/usr/sbin/init", OS_INIT).mode(0o755));

    let release = PkgSpec::new("sample-release", "1")
        .release("1.sample")
        .arch("noarch")
        .provides("system-release = 1")
        .file(FileSpec::file(
            "/usr/lib/os-release",
            "NAME=\"cosa sample OS\"\nID=cosa-sample\nVERSION_ID=1\nPRETTY_NAME=\"cosa sample OS 1\"\n",
        ))
        .file(FileSpec::symlink("/etc/os-release", "../usr/lib/os-release"));

    let daemon = PkgSpec::new("sample-daemon", "0.3")
        .release("2.sample")
        .arch(&arch)
        .requires("system-release >= 1")
        .requires_pre("/bin/sh")
        .requires_pre("setup")
        .recommends("sample-extras")
        .pre("grep -q '^sampled:' /etc/passwd || { echo 'sampled:x:990:990:sample daemon:/var/lib/sampled:/sbin/nologin' >> /etc/passwd; echo 'sampled:x:990:' >> /etc/group; }")
        .post("echo \"configured by %post of sample-daemon ($1)\" > /etc/sample-daemon.conf")
        .file(FileSpec::file("/usr/bin/sampled", "#!/bin/sh\necho sampled running as $(id -un)\n").mode(0o755).caps("cap_net_bind_service=ep"))
        .file(FileSpec::dir("/usr/lib/sampled").owner("sampled", "sampled").mode(0o750))
        .file(FileSpec::file("/usr/lib/sampled/state", "ready\n").owner("sampled", "sampled"));

    let extras = PkgSpec::new("sample-extras", "0.3")
        .release("2.sample")
        .arch("noarch")
        .file(FileSpec::file(
            "/usr/share/sample-extras/README",
            "only installed with recommends: true\n",
        ));

    let policy =
        selinux::policy_package(false).context("preparing the sample OS's SELinux policy")?;

    let mut all = vec![
        filesystem, setup, bb, release, daemon, extras, kernel_pkg, init, policy,
    ];
    all.extend(bootloader::packages(&arch).context("preparing the sample OS's boot loader")?);
    if arch == "ppc64le" {
        all.push(grub_ieee1275::package(&arch)?);
    }
    Ok(all)
}

/// Build the sample repository into `dir/<arch>/` (replacing what was there).
pub fn make_sample_repo(dir: &Path, arch: &str) -> Result<()> {
    let out = dir.join(arch);
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let specs = packages(arch)?;
    let cache = debian::cache_dir()?;
    let pkgs = specs
        .iter()
        .map(|s| {
            // Large payloads: built once per content (see build_cached).
            if ["kernel", "selinux-policy", "shim-signed", "grub-pc-bin"].contains(&s.name.as_str())
                || s.name.starts_with("grub-efi-")
            {
                build_cached(s, &cache, &out)
            } else {
                s.build(&out)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    check_with_rpm(&pkgs, &specs)?;
    createrepo(&out, RepoCompression::Gz)?;
    eprintln!(
        "Wrote {} packages and repodata to {}",
        pkgs.len(),
        out.display()
    );
    Ok(())
}

/// Build a (large) package into `dir` through a cache: the rpm crate takes
/// seconds for the kernel's payload in a debug build, and the package is
/// the same for the same spec, builder code and rpm crate.
fn build_cached(spec: &PkgSpec, cache: &Path, dir: &Path) -> Result<std::path::PathBuf> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut put = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    // The code that turns a spec into bytes, and the rpm crate's version.
    put(include_str!("../fixture.rs").as_bytes());
    put(include_str!("../../../Cargo.lock").as_bytes());
    put(format!(
        "{} {} {} {} {} {} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        spec.name,
        spec.epoch,
        spec.version,
        spec.release,
        spec.arch,
        spec.compression,
        spec.level,
        spec.provides,
        spec.requires,
        spec.requires_pre,
        spec.recommends,
        spec.pre,
        spec.post,
        spec.posttrans
    )
    .as_bytes());
    put(format!(
        "{:?} {:?} {:?} {:?} {:?}",
        spec.summary, spec.description, spec.license, spec.url, spec.source_date
    )
    .as_bytes());
    if !(spec.conflicts.is_empty()
        && spec.obsoletes.is_empty()
        && spec.suggests.is_empty()
        && spec.supplements.is_empty()
        && spec.enhances.is_empty())
    {
        // Not used by the kernel package: build without the cache.
        return spec.build(dir);
    }
    for f in &spec.files {
        put(format!(
            "{} {:o} {} {} {:?} {:?} {} {} {:?}",
            f.path, f.mode, f.user, f.group, f.caps, f.hardlink_set, f.config, f.noreplace, f.mtime
        )
        .as_bytes());
        match &f.kind {
            FileKind::File(c) => {
                put(b"f");
                put(c);
            }
            FileKind::Dir => put(b"d"),
            FileKind::Symlink(t) => {
                put(b"l");
                put(t.as_bytes());
            }
            FileKind::Ghost => put(b"g"),
        }
    }
    let key = hex::encode(h.finalize());
    let prefix = format!("built-{}-{}-", spec.name, spec.arch);
    let cached = cache.join(format!("{prefix}{}.rpm", &key[..32]));
    let dest = dir.join(spec.filename());
    if !cached.is_file() {
        let tmp = tempfile::Builder::new()
            .prefix(".build-")
            .tempdir_in(cache)
            .with_context(|| format!("creating a build directory in {}", cache.display()))?;
        let built = spec.build(tmp.path())?;
        std::fs::rename(&built, &cached)
            .with_context(|| format!("moving {} to {}", built.display(), cached.display()))?;
        // Builds from other sources (other checkouts share the cache) go
        // once they have not been used for a day.
        let day = std::time::Duration::from_secs(86_400);
        for e in std::fs::read_dir(cache).with_context(|| format!("reading {}", cache.display()))? {
            let e = e?;
            let n = e.file_name().to_string_lossy().into_owned();
            let old = e
                .metadata()
                .and_then(|m| m.accessed())
                .is_ok_and(|t| t.elapsed().is_ok_and(|a| a > day));
            if n.starts_with(&prefix) && e.path() != cached && old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    match std::fs::copy(&cached, &dest) {
        Ok(_) => Ok(dest),
        // Pruned by another process meanwhile: build it here.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => spec.build(dir),
        Err(e) => {
            Err(e).with_context(|| format!("copying {} to {}", cached.display(), dest.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debian_versions_become_rpm_versions() {
        assert_eq!(
            super::rpm_version("6.1.192-2"),
            ("6.1.192".into(), "2".into())
        );
        assert_eq!(
            super::rpm_version("1:1.35.0-4+deb12u1+b1"),
            ("1.35.0".into(), "4+deb12u1+b1".into())
        );
        assert_eq!(super::rpm_version("2.0"), ("2.0".into(), "0".into()));
        assert_eq!(
            super::rpm_version("1.0-rc1-3"),
            ("1.0_rc1".into(), "3".into())
        );
    }
}
