//! The sample OS's kernel: Debian's cloud kernel (amd64, arm64; s390x and
//! ppc64el have no cloud flavour, so their generic
//! `linux-image-<abi>-s390x` and `linux-image-<abi>-powerpc64le`), with only
//! the modules needed to boot from a virtio disk or live media, found from
//! the kernel's config and each module's `.modinfo` ELF section.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::debian;

/// Kernel features the sample OS boots with: (config symbol, module name,
/// required). Those built as modules (`=m`) go into the initramfs with their
/// dependencies; `=y` ones need nothing. The virtio transport comes first,
/// per architecture ([`virtio_transport`]).
const BOOT_FEATURES: &[(&str, &str, bool)] = &[
    ("CONFIG_VIRTIO_BLK", "virtio_blk", true),
    ("CONFIG_SCSI_VIRTIO", "virtio_scsi", false),
    ("CONFIG_BLK_DEV_SD", "sd_mod", false),
    // pseries' own virtual SCSI adapter (QEMU's spapr-vscsi, PowerVM's
    // vSCSI): ppc64le disks may sit on it instead of virtio.
    ("CONFIG_SCSI_IBMVSCSI", "ibmvscsi", false),
    ("CONFIG_EXT4_FS", "ext4", true),
    ("CONFIG_CRYPTO_CRC32C", "crc32c_generic", true),
    // Live media (`cosa buildextend-live`): the root is a squashfs, loop
    // mounted from the ISO or from the initramfs, with a tmpfs overlay.
    ("CONFIG_SQUASHFS", "squashfs", true),
    ("CONFIG_OVERLAY_FS", "overlay", true),
    ("CONFIG_BLK_DEV_LOOP", "loop", true),
    ("CONFIG_ISO9660_FS", "isofs", true),
    // The ISO as a CD-ROM: SCSI (virtio-scsi, which QEMU's firmware boots
    // from), IDE (PIIX) or SATA (AHCI; not in Debian's cloud kernel).
    ("CONFIG_BLK_DEV_SR", "sr_mod", false),
    ("CONFIG_ATA_PIIX", "ata_piix", false),
    ("CONFIG_SATA_AHCI", "ahci", false),
];

/// Modules the booted OS loads itself (not the initramfs): efivarfs, to
/// read the `SecureBoot` EFI variable (its init fails without UEFI).
const OS_FEATURES: &[(&str, &str)] = &[("CONFIG_EFIVAR_FS", "efivarfs")];

/// The virtio transport QEMU gives `arch`'s disks: PCI, except on s390x,
/// whose virtio devices sit on the channel subsystem (virtio-ccw, built by
/// `CONFIG_S390_GUEST`; Debian builds it in).
pub fn virtio_transport(arch: &str) -> (&'static str, &'static str, bool) {
    match arch {
        "s390x" => ("CONFIG_S390_GUEST", "virtio_ccw", true),
        _ => ("CONFIG_VIRTIO_PCI", "virtio_pci", true),
    }
}

/// The end of Debian's kernel package names for `debarch`: `-cloud-amd64`,
/// `-cloud-arm64`, and `-s390x` and `-powerpc64le` (Debian has no cloud
/// flavour for these two).
pub fn flavour_suffix(debarch: &str) -> String {
    match debarch {
        "s390x" => "-s390x".to_string(),
        "ppc64el" => "-powerpc64le".to_string(),
        d => format!("-cloud-{d}"),
    }
}

/// Options the initramfs itself depends on: must be `=y`.
const BUILTIN_NEEDED: &[&str] = &[
    "CONFIG_BLK_DEV_INITRD",
    "CONFIG_RD_GZIP",
    "CONFIG_DEVTMPFS",
    "CONFIG_PROC_FS",
    "CONFIG_SYSFS",
];

/// A kernel unpacked from Debian's package.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The module directory name, e.g. `6.1.0-56-cloud-amd64`.
    pub kver: String,
    /// Debian's package version, e.g. `6.1.192-2`.
    pub deb_version: String,
    pub vmlinuz: PathBuf,
    /// Modules to load, in load order (dependencies first).
    pub modules: Vec<Module>,
    /// Modules the booted OS loads when it needs them (see `OS_FEATURES`),
    /// in the package but not in the initramfs.
    pub os_modules: Vec<Module>,
}

/// One kernel module that goes into the image.
#[derive(Debug, Clone)]
pub struct Module {
    pub name: String,
    /// Path relative to the module directory, e.g. `kernel/drivers/block/virtio_blk.ko`.
    pub rel: String,
    pub data: Vec<u8>,
    /// Direct dependencies (module names).
    pub depends: Vec<String>,
}

impl Kernel {
    /// `modules.dep` for the selected modules: each with its transitive
    /// dependencies, the last one listed being loaded first (as depmod does).
    pub fn modules_dep(&self) -> String {
        let by_name: BTreeMap<&str, &Module> =
            self.modules.iter().map(|m| (m.name.as_str(), m)).collect();
        let pos: BTreeMap<&str, usize> = self
            .modules
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.as_str(), i))
            .collect();
        let mut out = String::new();
        for m in &self.modules {
            let mut deps = BTreeSet::new();
            let mut stack: Vec<&str> = m.depends.iter().map(String::as_str).collect();
            while let Some(d) = stack.pop() {
                if deps.insert(d)
                    && let Some(dm) = by_name.get(d)
                {
                    stack.extend(dm.depends.iter().map(String::as_str));
                }
            }
            let mut deps: Vec<&str> = deps.into_iter().collect();
            deps.sort_by_key(|d| std::cmp::Reverse(pos.get(d).copied().unwrap_or(0)));
            out.push_str(&m.rel);
            out.push(':');
            for d in deps {
                out.push(' ');
                out.push_str(by_name.get(d).map(|m| m.rel.as_str()).unwrap_or(d));
            }
            out.push('\n');
        }
        out
    }
}

/// The kernel .deb: `$COSA_SAMPLE_KERNEL_DEB`, else a cached
/// `linux-image-<abi><flavour>`, else the one Debian's
/// `linux-image<flavour>` metapackage depends on, downloaded (flavour
/// from [`flavour_suffix`]: `linux-image-cloud-amd64`, `linux-image-s390x`).
pub fn kernel_deb(cache: &Path, debarch: &str) -> Result<PathBuf> {
    kernel_deb_from(
        std::env::var_os("COSA_SAMPLE_KERNEL_DEB").map(PathBuf::from),
        cache,
        debarch,
    )
}

/// [`kernel_deb`] with the `COSA_SAMPLE_KERNEL_DEB` value given.
pub fn kernel_deb_from(local: Option<PathBuf>, cache: &Path, debarch: &str) -> Result<PathBuf> {
    if let Some(p) = local {
        if !p.is_file() {
            bail!(
                "COSA_SAMPLE_KERNEL_DEB={} is not a file (point it at a linux-image-*{} .deb)",
                p.display(),
                flavour_suffix(debarch)
            );
        }
        return Ok(p);
    }
    let suffix = flavour_suffix(debarch);
    let is_image = |n: &str| {
        n.strip_prefix("linux-image-")
            .and_then(|r| r.strip_suffix(&suffix))
            .is_some_and(|abi| abi.starts_with(|c: char| c.is_ascii_digit()))
    };
    let meta = format!("linux-image{suffix}");
    let found = std::fs::read_dir(cache)
        .with_context(|| format!("reading {}", cache.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(&format!("_{debarch}.deb")))
        .filter(|f| f.split('_').next().is_some_and(is_image))
        .max();
    let package = match found {
        Some(f) => f.split('_').next().unwrap_or_default().to_string(),
        None => debian::resolve_dependency(cache, &meta, debarch, is_image).with_context(|| {
            format!(
                "finding Debian's kernel through {meta} (set COSA_SAMPLE_KERNEL_DEB to a \
                 local .deb when the mirror cannot be reached)"
            )
        })?,
    };
    debian::fetch_deb(cache, &package, debarch)
}

/// Unpack the kernel .deb for `arch` and select the boot modules.
pub fn load(arch: &str) -> Result<Kernel> {
    let debarch = debian::deb_arch(arch)?;
    let cache = debian::cache_dir()?;
    let deb = kernel_deb(&cache, debarch)?;
    let deb_version = debian::control_field(&deb, "Version")?;
    let root = debian::extract_deb(&cache, &deb)?;
    from_unpacked(&root, arch, deb_version)
        .with_context(|| format!("reading the kernel unpacked from {}", deb.display()))
}

/// Select the kernel and its boot modules for `arch` from an unpacked
/// kernel package.
pub fn from_unpacked(root: &Path, arch: &str, deb_version: String) -> Result<Kernel> {
    let moddirs = ["usr/lib/modules", "lib/modules"];
    let (moddir, kver) = moddirs
        .iter()
        .filter_map(|d| {
            let dir = root.join(d);
            let kvers: Vec<String> = std::fs::read_dir(&dir)
                .ok()?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("kernel").is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            Some((dir, kvers))
        })
        .find(|(_, k)| !k.is_empty())
        .map(|(dir, mut k)| {
            k.sort();
            (dir, k)
        })
        .context("no lib/modules/<kver>/kernel directory in the package")?;
    if kver.len() != 1 {
        bail!("the package holds several kernels: {kver:?}");
    }
    let kver = kver.into_iter().next().context("one kver")?;
    // ppc64el's kernel is the uncompressed ELF `vmlinux`, which Open
    // Firmware's GRUB loads as it is; the tree calls it vmlinuz all the same.
    let vmlinuz = ["vmlinuz", "vmlinux"]
        .iter()
        .map(|n| root.join(format!("boot/{n}-{kver}")))
        .find(|p| p.is_file())
        .with_context(|| format!("no boot/vmlinuz-{kver} or boot/vmlinux-{kver} in the package"))?;
    let config_path = root.join(format!("boot/config-{kver}"));
    let config = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading the kernel config {}", config_path.display()))?;
    let config = parse_config(&config);
    for sym in BUILTIN_NEEDED {
        if config.get(*sym).map(String::as_str) != Some("y") {
            bail!("kernel {kver} does not have {sym}=y, which the sample initramfs needs");
        }
    }
    let mut roots = Vec::new();
    let transport = virtio_transport(arch);
    for (sym, module, required) in std::iter::once(&transport).chain(BOOT_FEATURES) {
        match config.get(*sym).map(String::as_str) {
            Some("m") => roots.push(module.to_string()),
            Some("y") => {}
            _ if *required => bail!("kernel {kver} has neither {sym}=y nor {sym}=m"),
            _ => {}
        }
    }
    let modules = select_modules(&moddir.join(&kver), &roots)?;
    let os_roots: Vec<String> = OS_FEATURES
        .iter()
        .filter(|(sym, _)| config.get(*sym).map(String::as_str) == Some("m"))
        .map(|(_, m)| m.to_string())
        .collect();
    let os_modules = select_modules(&moddir.join(&kver), &os_roots)?
        .into_iter()
        .filter(|m| !modules.iter().any(|b| b.name == m.name))
        .collect();
    Ok(Kernel {
        kver,
        deb_version,
        vmlinuz,
        modules,
        os_modules,
    })
}

/// `CONFIG_X=value` lines of a kernel config.
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| l.starts_with("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every `.ko` under `dir/kernel`: module name (`-` as `_`) -> relative path.
fn index_modules(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.join("kernel")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e.with_context(|| format!("reading {}", d.display()))?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p);
            } else if let Some(stem) = e.file_name().to_string_lossy().strip_suffix(".ko") {
                let rel = p
                    .strip_prefix(dir)
                    .context("module path under its directory")?
                    .to_string_lossy()
                    .into_owned();
                out.insert(stem.replace('-', "_"), rel);
            }
        }
    }
    Ok(out)
}

/// The modules `roots` and everything they depend on (from `.modinfo`),
/// in load order: dependencies first, ties by name.
pub fn select_modules(dir: &Path, roots: &[String]) -> Result<Vec<Module>> {
    let index = index_modules(dir)?;
    let mut found: BTreeMap<String, Module> = BTreeMap::new();
    let mut todo: Vec<String> = roots.to_vec();
    while let Some(name) = todo.pop() {
        if found.contains_key(&name) {
            continue;
        }
        let rel = index
            .get(&name)
            .with_context(|| format!("module {name} is not in {}", dir.display()))?;
        let path = dir.join(rel);
        let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let info =
            modinfo(&data).with_context(|| format!("reading .modinfo of {}", path.display()))?;
        if let Some(n) = info.get("name").and_then(|v| v.first())
            && *n != name
        {
            bail!("{} calls itself {n}, not {name}", path.display());
        }
        let depends: Vec<String> = info
            .get("depends")
            .and_then(|v| v.first())
            .map(|d| {
                // modpost may name a dependency by its file name
                // (`t10-pi`); module names have `_` for `-`.
                d.split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.replace('-', "_"))
                    .collect()
            })
            .unwrap_or_default();
        todo.extend(depends.iter().cloned());
        found.insert(
            name.clone(),
            Module {
                name,
                rel: rel.clone(),
                data,
                depends,
            },
        );
    }
    // Topological order, smallest name first among the ready ones.
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    while done.len() < found.len() {
        let ready = found
            .values()
            .find(|m| !done.contains(&m.name) && m.depends.iter().all(|d| done.contains(d)))
            .with_context(|| {
                format!(
                    "module dependency cycle among {:?}",
                    found
                        .keys()
                        .filter(|k| !done.contains(*k))
                        .collect::<Vec<_>>()
                )
            })?;
        done.insert(ready.name.clone());
        order.push(ready.clone());
    }
    Ok(order)
}

/// The `key=value` strings of a kernel module's `.modinfo` ELF section.
pub fn modinfo(elf: &[u8]) -> Result<BTreeMap<String, Vec<String>>> {
    let section = elf_section(elf, ".modinfo")?.context("no .modinfo section")?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in section.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let s = String::from_utf8_lossy(s);
        if let Some((k, v)) = s.split_once('=') {
            out.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    Ok(out)
}

/// The contents of the section called `name` in a 64-bit ELF file (either
/// byte order), or None when there is no such section.
pub fn elf_section<'a>(elf: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
        bail!("not an ELF file");
    }
    if elf[4] != 2 {
        bail!("not a 64-bit ELF file (class {})", elf[4]);
    }
    let be = match elf[5] {
        1 => false,
        2 => true,
        d => bail!("bad ELF data encoding {d}"),
    };
    let get = |off: usize, len: usize| -> Result<u64> {
        let b = elf
            .get(off..off + len)
            .with_context(|| format!("ELF file truncated at {off}"))?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if be { b[i] } else { b[len - 1 - i] };
            v = (v << 8) | byte as u64;
        }
        Ok(v)
    };
    let shoff = get(0x28, 8)? as usize;
    let shentsize = get(0x3a, 2)? as usize;
    let shnum = get(0x3c, 2)? as usize;
    let shstrndx = get(0x3e, 2)? as usize;
    if shentsize < 64 || shstrndx >= shnum {
        bail!("bad ELF section table");
    }
    let section = |i: usize| -> Result<(u32, &'a [u8])> {
        let h = shoff + i * shentsize;
        let name = get(h, 4)? as u32;
        let kind = get(h + 4, 4)?;
        let off = get(h + 24, 8)? as usize;
        let size = get(h + 32, 8)? as usize;
        if kind == 8 {
            // SHT_NOBITS has no contents in the file.
            return Ok((name, &[]));
        }
        let data = elf
            .get(off..off.checked_add(size).context("ELF section size")?)
            .with_context(|| format!("ELF section {i} is outside the file"))?;
        Ok((name, data))
    };
    let (_, strtab) = section(shstrndx)?;
    for i in 0..shnum {
        let (n, data) = section(i)?;
        let s = strtab.get(n as usize..).unwrap_or_default();
        let s = &s[..s.iter().position(|b| *b == 0).unwrap_or(s.len())];
        if s == name.as_bytes() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little- or big-endian ELF64 with a .modinfo section.
    pub fn tiny_elf(modinfo: &[u8], be: bool) -> Vec<u8> {
        let strtab = b"\0.shstrtab\0.modinfo\0";
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = if be { 2 } else { 1 };
        let put = |f: &mut Vec<u8>, off: usize, len: usize, v: u64| {
            for i in 0..len {
                let shift = if be { 8 * (len - 1 - i) } else { 8 * i };
                f[off + i] = (v >> shift) as u8;
            }
        };
        let str_off = f.len();
        f.extend_from_slice(strtab);
        let mi_off = f.len();
        f.extend_from_slice(modinfo);
        while !f.len().is_multiple_of(8) {
            f.push(0);
        }
        let shoff = f.len();
        f.resize(shoff + 3 * 64, 0);
        put(&mut f, 0x28, 8, shoff as u64);
        put(&mut f, 0x3a, 2, 64);
        put(&mut f, 0x3c, 2, 3);
        put(&mut f, 0x3e, 2, 1);
        // [1] .shstrtab
        let h = shoff + 64;
        put(&mut f, h, 4, 1);
        put(&mut f, h + 4, 4, 3);
        put(&mut f, h + 24, 8, str_off as u64);
        put(&mut f, h + 32, 8, strtab.len() as u64);
        // [2] .modinfo
        let h = shoff + 128;
        put(&mut f, h, 4, 11);
        put(&mut f, h + 4, 4, 1);
        put(&mut f, h + 24, 8, mi_off as u64);
        put(&mut f, h + 32, 8, modinfo.len() as u64);
        f
    }

    #[test]
    fn modinfo_reads_both_byte_orders() {
        let mi = b"license=GPL\0depends=virtio,virtio_ring\0\0name=virtio_blk\0alias=a\0alias=b\0";
        for be in [false, true] {
            let info = modinfo(&tiny_elf(mi, be)).unwrap();
            assert_eq!(info["depends"], ["virtio,virtio_ring"]);
            assert_eq!(info["name"], ["virtio_blk"]);
            assert_eq!(info["alias"], ["a", "b"]);
        }
        assert!(modinfo(b"not an elf file at all, but long enough to have a header.....").is_err());
        let mut cut = tiny_elf(mi, false);
        cut.truncate(100);
        assert!(modinfo(&cut).is_err());
    }

    #[test]
    fn modules_are_selected_with_dependencies_in_order() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let mk = |rel: &str, name: &str, deps: &str| {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let mi = format!("depends={deps}\0name={name}\0");
            std::fs::write(p, tiny_elf(mi.as_bytes(), false)).unwrap();
        };
        mk(
            "kernel/drivers/block/virtio_blk.ko",
            "virtio_blk",
            "virtio,virtio_ring",
        );
        mk("kernel/drivers/virtio/virtio.ko", "virtio", "");
        mk(
            "kernel/drivers/virtio/virtio_ring.ko",
            "virtio_ring",
            "virtio",
        );
        mk("kernel/crypto/crc32c-generic.ko", "crc32c_generic", "");
        mk("kernel/unused/other.ko", "other", "");
        let mods = select_modules(dir, &["virtio_blk".into(), "crc32c_generic".into()]).unwrap();
        let names: Vec<&str> = mods.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["crc32c_generic", "virtio", "virtio_ring", "virtio_blk"]
        );
        assert_eq!(mods[0].rel, "kernel/crypto/crc32c-generic.ko");
        let k = Kernel {
            kver: "k".into(),
            deb_version: "1-1".into(),
            vmlinuz: PathBuf::new(),
            modules: mods,
            os_modules: Vec::new(),
        };
        let dep = k.modules_dep();
        assert!(
            dep.contains(
                "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko \
                 kernel/drivers/virtio/virtio.ko\n"
            ),
            "{dep}"
        );
        mk("kernel/x/broken.ko", "broken", "missing_mod");
        let e = select_modules(dir, &["broken".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("missing_mod"), "{e:#}");
    }

    #[test]
    fn a_local_kernel_deb_is_checked() {
        let t = tempfile::tempdir().unwrap();
        let e = kernel_deb_from(Some(t.path().join("nope.deb")), t.path(), "amd64").unwrap_err();
        assert!(
            format!("{e:#}").contains("COSA_SAMPLE_KERNEL_DEB")
                && format!("{e:#}").contains("nope.deb"),
            "{e:#}"
        );
        let deb = t.path().join("k.deb");
        std::fs::write(&deb, "x").unwrap();
        assert_eq!(
            kernel_deb_from(Some(deb.clone()), t.path(), "amd64").unwrap(),
            deb
        );
        // A cached ABI package is used without asking apt; the metapackage is not one.
        let cache = t.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        for f in [
            "linux-image-cloud-amd64_6.1.192-2_amd64.deb",
            "linux-image-6.1.0-56-cloud-amd64_6.1.192-2_amd64.deb",
            "linux-image-6.1.0-56-cloud-arm64_6.1.192-2_arm64.deb",
            "linux-image-s390x_6.1.192-2_s390x.deb",
            "linux-image-6.1.0-56-s390x_6.1.192-2_s390x.deb",
            "linux-image-6.1.0-56-s390x-dbg_6.1.192-2_s390x.deb",
            "linux-image-powerpc64le_6.1.192-2_ppc64el.deb",
            "linux-image-6.1.0-56-powerpc64le-64k_6.1.192-2_ppc64el.deb",
            "linux-image-6.1.0-56-powerpc64le_6.1.192-2_ppc64el.deb",
        ] {
            std::fs::write(cache.join(f), "x").unwrap();
        }
        assert_eq!(
            kernel_deb_from(None, &cache, "amd64").unwrap(),
            cache.join("linux-image-6.1.0-56-cloud-amd64_6.1.192-2_amd64.deb")
        );
        // s390x has no cloud flavour: the generic kernel, not its metapackage or -dbg.
        assert_eq!(
            kernel_deb_from(None, &cache, "s390x").unwrap(),
            cache.join("linux-image-6.1.0-56-s390x_6.1.192-2_s390x.deb")
        );
        // Nor has ppc64el; its 64k-page flavour is another kernel.
        assert_eq!(
            kernel_deb_from(None, &cache, "ppc64el").unwrap(),
            cache.join("linux-image-6.1.0-56-powerpc64le_6.1.192-2_ppc64el.deb")
        );
        assert_eq!(virtio_transport("s390x").1, "virtio_ccw");
        assert_eq!(virtio_transport("aarch64").1, "virtio_pci");
    }

    #[test]
    fn config_is_parsed() {
        let c = parse_config("# CONFIG_A is not set\nCONFIG_B=m\nCONFIG_C=y\nCONFIG_D=\"x=y\"\n");
        assert_eq!(c.get("CONFIG_A"), None);
        assert_eq!(c["CONFIG_B"], "m");
        assert_eq!(c["CONFIG_D"], "\"x=y\"");
    }
}
