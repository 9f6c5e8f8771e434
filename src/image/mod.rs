//! Disk images from a build's OSTree commit: deploy the commit into a sysroot
//! (src/ostree/deploy.rs), then per platform write the boot partition's BLS
//! entry and grub.cfg with the platform's kernel arguments and console, and
//! assemble the disk (GPT, ESP with the boot loader from the tree (see
//! [`bootloader`]), boot, root) without mounts.

pub mod bootloader;
pub mod compress;
pub mod disk;
pub mod ext4;
pub mod fixup;
pub mod formats;
pub mod gpt;
pub mod grub;
pub mod layout;
pub mod live;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use rayon::prelude::*;

use crate::config::image::{ImageConfig, Platforms};
use crate::ostree::Repo;
use crate::ostree::deploy::{self, BlsEntry, DeployOptions, Deployment};
pub use formats::Format;
use layout::MIB;

/// How one platform's image is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub platform: &'static str,
    pub sector: u64,
    /// File extension of the artifact.
    pub ext: &'static str,
    pub format: Format,
    /// Disk size: image.yaml's `size`, a fixed size in GiB, or fit to content.
    pub size: Size,
    /// Upstream ships it compressed already (`skip-compression` in meta.json).
    pub skip_compression: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// image.yaml's `size` (GiB).
    Config,
    Gib(u64),
    /// Root partition sized to the deployment (metal).
    FitContent,
}

const fn t(platform: &'static str, ext: &'static str, format: Format, size: Size) -> Target {
    Target {
        platform,
        sector: 512,
        ext,
        format,
        size,
        skip_compression: false,
    }
}

const QCOW2: Format = Format::Qcow2 { compressed: false };

/// Every platform this stage makes, with upstream's formats.
pub const TARGETS: &[Target] = &[
    t("qemu", "qcow2", QCOW2, Size::Config),
    t("openstack", "qcow2", QCOW2, Size::Config),
    t("aliyun", "qcow2", QCOW2, Size::Config),
    t("digitalocean", "qcow2", QCOW2, Size::Config),
    t("exoscale", "qcow2", QCOW2, Size::Config),
    t("oraclecloud", "qcow2", QCOW2, Size::Config),
    t("proxmoxve", "qcow2", QCOW2, Size::Config),
    t("ibmcloud", "qcow2", QCOW2, Size::Gib(100)),
    Target {
        skip_compression: true,
        ..t(
            "nutanix",
            "qcow2",
            Format::Qcow2 { compressed: true },
            Size::Config,
        )
    },
    t("aws", "vmdk", Format::Vmdk, Size::Config),
    t("azure", "vhd", Format::Vhd, Size::Config),
    t("azurestack", "vhd", Format::Vhd, Size::Config),
    Target {
        skip_compression: true,
        ..t("gcp", "tar.gz", Format::GcpTarGz, Size::Config)
    },
    t("hyperv", "vhdx", Format::Vhdx, Size::Config),
    t("metal", "raw", Format::Raw, Size::FitContent),
    Target {
        sector: 4096,
        ..t("metal4k", "raw", Format::Raw, Size::FitContent)
    },
    t("applehv", "raw", Format::Raw, Size::Config),
    t("hetzner", "raw", Format::Raw, Size::Config),
    t("vultr", "raw", Format::Raw, Size::Config),
    t(
        "vmware",
        "ova",
        Format::Ova { virtualbox: false },
        Size::Config,
    ),
    t(
        "virtualbox",
        "ova",
        Format::Ova { virtualbox: true },
        Size::Config,
    ),
    Target {
        skip_compression: true,
        ..t("kubevirt", "ociarchive", Format::KubevirtOci, Size::Config)
    },
    Target {
        skip_compression: true,
        ..t("powervs", "ova.gz", Format::PowervsOvaGz, Size::Config)
    },
];

/// Platforms made for one architecture only: (platform, arch).
const ARCH_ONLY: &[(&str, &str)] = &[("powervs", "ppc64le")];

impl Target {
    /// The Ignition platform id the image boots with.
    pub fn ignition_id(&self) -> &'static str {
        if self.platform == "metal4k" {
            "metal"
        } else {
            self.platform
        }
    }

    /// Whether `cosa kola` can attach the artifact as a disk directly.
    pub fn qemu_format(&self) -> Option<&'static str> {
        match self.format {
            Format::Raw => Some("raw"),
            Format::Qcow2 { .. } => Some("qcow2"),
            Format::Vmdk => Some("vmdk"),
            Format::Vhd => Some("vpc"),
            Format::Vhdx => Some("vhdx"),
            _ => None,
        }
    }
}

/// Platform names, for the command line.
pub fn platform_names() -> Vec<&'static str> {
    TARGETS.iter().map(|t| t.platform).collect()
}

/// The platforms made for `arch`: all but those made for another arch only.
pub fn platforms_for_arch(arch: &str) -> Vec<&'static str> {
    TARGETS
        .iter()
        .map(|t| t.platform)
        .filter(|p| ARCH_ONLY.iter().all(|(q, a)| q != p || *a == arch))
        .collect()
}

/// `cosa build` targets: ostree and every platform.
pub fn build_target_names() -> Vec<&'static str> {
    let mut v = vec!["ostree"];
    v.extend(platform_names());
    v
}

pub fn target(platform: &str) -> Result<Target> {
    TARGETS
        .iter()
        .find(|t| t.platform == platform)
        .copied()
        .with_context(|| {
            format!(
                "unknown image platform {platform:?} (known: {})",
                TARGETS
                    .iter()
                    .map(|t| t.platform)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// `<name>-<id>-<platform>.<arch>.<ext>`, coreos-assembler's artifact name.
pub fn artifact_name(name: &str, buildid: &str, platform: &str, arch: &str, ext: &str) -> String {
    format!("{name}-{buildid}-{platform}.{arch}.{ext}")
}

/// Which build and where things go.
pub struct ImageBuild<'a> {
    pub repo: &'a Repo,
    pub commit: &'a str,
    pub name: &'a str,
    pub buildid: &'a str,
    pub ostree_ref: &'a str,
    /// The file name of the build's ostree container (meta.json
    /// `images.ostree.path`), for `deploy-via-container` origins.
    pub ostree_archive: &'a str,
    pub arch: &'a str,
    pub config_dir: &'a Path,
    /// The build's directory: artifacts land here.
    pub build_dir: &'a Path,
    /// An empty scratch directory (removed by the caller).
    pub work: &'a Path,
    pub timestamp: i64,
}

/// Deploy the build's commit as `osname` into `work/sysroot`, its boot
/// files into `work/boot`, with the origin image.yaml asks for.
pub(crate) fn deploy_build(
    b: &ImageBuild,
    image: &ImageConfig,
    osname: &str,
) -> Result<(std::path::PathBuf, std::path::PathBuf, deploy::Deployment)> {
    let sysroot = b.work.join("sysroot");
    let boot = b.work.join("boot");
    let dep = deploy::deploy(
        b.repo,
        b.commit,
        &sysroot,
        &boot,
        &DeployOptions {
            osname: osname.to_string(),
            origin: image.origin(b.ostree_ref, b.ostree_archive).keyfile(),
            kargs: Vec::new(),
        },
    )
    .with_context(|| format!("deploying commit {} into a sysroot", b.commit))?;
    Ok((sysroot, boot, dep))
}

/// One finished artifact.
#[derive(Clone, Debug)]
pub struct MadeImage {
    pub platform: String,
    /// File name in the build directory.
    pub file: String,
    pub skip_compression: bool,
    /// Extra fields of its meta.json artifact (`bootloader`: where the boot
    /// loader came from and the versions of its packages).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The kernel arguments of a platform's image: image.yaml's extra-kargs,
/// `ignition.platform.id`, the platform's console kargs, `rw`,
/// `$ignition_firstboot` (expanded by GRUB, see [`grub::FIRSTBOOT_CFG`]),
/// `ostree=`.
pub fn platform_kargs(
    image: &ImageConfig,
    platforms: &Platforms,
    arch: &str,
    target: &Target,
    ostree_karg: &str,
) -> Vec<String> {
    let id = target.ignition_id();
    let mut k = image.extra_kargs.clone();
    k.push(format!("ignition.platform.id={id}"));
    k.extend(platforms.get(arch, id).kernel_arguments);
    k.push("rw".to_string());
    k.push("$ignition_firstboot".to_string());
    k.push(ostree_karg.to_string());
    k
}

/// Write a file as a new inode (the boot dirs share files by hardlink).
fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let _ = fs::remove_file(path);
    fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

/// Copy a directory tree with hardlinks for files (`cp -al`).
fn link_tree(src: &Path, dst: &Path) -> Result<()> {
    fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
    let md = fs::metadata(src).with_context(|| format!("reading {}", src.display()))?;
    fs::set_permissions(dst, md.permissions())?;
    for e in fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let e = e.with_context(|| format!("reading {}", src.display()))?;
        let (from, to) = (e.path(), dst.join(e.file_name()));
        let ft = e.file_type()?;
        if ft.is_dir() {
            link_tree(&from, &to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)
                .with_context(|| format!("creating {}", to.display()))?;
        } else {
            fs::hard_link(&from, &to).with_context(|| format!("linking {}", to.display()))?;
        }
    }
    Ok(())
}

/// The boot directory of one platform, from the deployment's: BLS options,
/// grub.cfg (and `grub -> grub2` for a tree with ostree's GRUB hook),
/// `coreos/platforms.json` and `ignition.firstboot`, as upstream.
fn prepare_boot(
    base: &Path,
    boot: &Path,
    dep: &Deployment,
    image: &ImageConfig,
    platforms: &Platforms,
    arch: &str,
    target: &Target,
) -> Result<BlsEntry> {
    link_tree(base, boot)?;
    let bls = BlsEntry {
        options: platform_kargs(image, platforms, arch, target, &dep.ostree_karg).join(" "),
        ..dep.bls.clone()
    };
    write_file(&boot.join(&dep.bls_path), bls.render().as_bytes())?;
    if arch != "s390x" {
        let console = platforms.get(arch, target.ignition_id()).grub_commands;
        let cfg = grub::grub_cfg(&console, std::slice::from_ref(&bls));
        write_file(&boot.join("grub2/grub.cfg"), cfg.as_bytes())?;
        fs::set_permissions(boot.join("grub2"), fs::Permissions::from_mode(0o700))
            .context("setting the mode of grub2/")?;
        // A tree whose menu grub-mkconfig writes on the machine (ostree's
        // grub2 backend) has Debian's GRUB tools, which work in /boot/grub
        // (05_debian_theme starts with `cd /boot/grub`): the same directory.
        if dep.bootloader == "grub2" {
            let link = boot.join("grub");
            if fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink("grub2", &link)
                    .with_context(|| format!("creating {}", link.display()))?;
            }
        }
    }
    if let Some(table) = platforms.0.get(arch) {
        write_file(
            &boot.join("coreos/platforms.json"),
            &serde_json::to_vec_pretty(table)?,
        )?;
    }
    write_file(
        &boot.join("ignition.firstboot"),
        image.ignition_firstboot().as_bytes(),
    )?;
    Ok(bls)
}

/// Make the images of `platforms` for a build. The commit is deployed once;
/// platforms with the same disk geometry share one base disk (GPT, ESP,
/// GRUB, root file system), copied sparsely, and differ only in their boot
/// partition; they are made in parallel. Artifacts are written under a
/// temporary name and renamed into the build directory when complete.
pub fn build_images(b: &ImageBuild, platforms: &[String]) -> Result<Vec<MadeImage>> {
    let targets: Vec<Target> = platforms.iter().map(|p| target(p)).collect::<Result<_>>()?;
    for tg in &targets {
        if let Some((_, only)) = ARCH_ONLY.iter().find(|(p, _)| *p == tg.platform) {
            ensure!(
                b.arch == *only,
                "{} images are made for {only} only, not {}",
                tg.platform,
                b.arch
            );
        }
    }
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let image = ImageConfig::load(b.config_dir)?;
    if image.rootfs_substituted() {
        eprintln!(
            "note: image.yaml asks for rootfs {:?}; cosa makes the root file system as ext4, because \
             it is built from a directory without mounts and mkfs.xfs cannot make an OSTree \
             deployment's hardlinks and xattrs that way (recorded in meta.json as rootfs-fstype)",
            image.rootfs
        );
    }
    let plat = Platforms::load(b.config_dir)?;
    let osname = image.osname.clone().unwrap_or_else(|| b.name.to_string());

    let t = Instant::now();
    let (sysroot, boot, dep) = deploy_build(b, &image, &osname)?;
    eprintln!(
        "Deployed {} ({} objects, kernel {}) in {:.1}s",
        &b.commit[..12.min(b.commit.len())],
        dep.objects,
        dep.kver,
        t.elapsed().as_secs_f64()
    );

    // The boot loader, once per build: the tree's (bootupd's payload), or
    // the host's GRUB for a tree without one.
    let deployed = sysroot.join(&dep.deploy_path);
    let bl = bootloader::prepare(&deployed, b.arch, b.work, image.efi_signing.as_ref())
        .context("preparing the boot loader")?;
    if let Some(state) = &bl.state {
        let mut json = serde_json::to_vec(state)?;
        json.push(b'\n');
        write_file(&boot.join("bootupd-state.json"), &json)?;
    }
    let mut record = serde_json::Map::new();
    record.insert("bootloader".into(), bl.record.clone());
    // image.yaml's `rootfs: xfs` is made as ext4: said where the image is
    // recorded (extra fields of the artifact, which the schema allows).
    if image.rootfs_substituted() {
        record.insert("rootfs-fstype".into(), "ext4".into());
        record.insert(
            "rootfs-fstype-requested".into(),
            image.rootfs.clone().into(),
        );
    }
    // ppc64le: the core image for the PReP partition, from the tree's own
    // GRUB modules.
    let prep_core = if b.arch == "ppc64le" {
        let grub_dir = b.work.join("grub-ieee1275");
        fs::create_dir_all(&grub_dir)
            .with_context(|| format!("creating {}", grub_dir.display()))?;
        let modules = grub::ieee1275_modules(&deployed)?;
        let core = grub_dir.join("core.elf");
        grub::make_ieee1275_core(&modules, &core, &grub_dir)?;
        Some(core)
    } else {
        None
    };

    // Base disks: one per (sector size, disk size).
    let disk_size = |tg: &Target| -> Option<u64> {
        match tg.size {
            Size::Config => Some(image.size * 1024 * MIB),
            Size::Gib(g) => Some(g * 1024 * MIB),
            Size::FitContent => None,
        }
    };
    let mut groups: Vec<((u64, Option<u64>), Vec<Target>)> = Vec::new();
    for tg in &targets {
        let key = (tg.sector, disk_size(tg));
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(*tg),
            None => groups.push((key, vec![*tg])),
        }
    }
    let ovf = formats::OvfInfo {
        name: b.name.to_string(),
        version: b.buildid.to_string(),
        arch: b.arch.to_string(),
        os_type: image.vmware_os_type.clone(),
        hw_version: image.vmware_hw_version,
        secure_boot: image.vmware_secure_boot,
    };
    let mut made = Vec::new();
    for (gi, ((sector, size), members)) in groups.iter().enumerate() {
        let t = Instant::now();
        // The aleph file names the base image of the group, as upstream's
        // platform variants keep the base image's: the first platform of
        // the arch with this geometry in the platform table, whichever
        // were asked for, so an image's bytes never depend on what else
        // was made in the same run.
        let first = platforms_for_arch(b.arch)
            .into_iter()
            .filter_map(|p| target(p).ok())
            .find(|t| (t.sector, disk_size(t)) == (*sector, *size))
            .unwrap_or(members[0]);
        let first = &first;
        let aleph = serde_json::json!({
            "build": b.buildid,
            "ref": b.ostree_ref,
            "ostree-commit": b.commit,
            "imgid": artifact_name(b.name, b.buildid, first.platform, b.arch, first.ext),
        });
        write_file(
            &sysroot.join(".coreos-aleph-version.json"),
            &serde_json::to_vec_pretty(&aleph)?,
        )?;
        let base = b.work.join(format!("base-{gi}.raw"));
        let seed = format!("{}/{}/{sector}/{size:?}", b.commit, b.arch);
        let layout = disk::make_raw(
            &base,
            &disk::DiskInput {
                arch: b.arch,
                sysroot: &sysroot,
                boot: None,
                esp: bl.esp.as_deref(),
                bios_core: bl.bios.as_ref().map(|(c, _)| c.as_path()),
                bios_boot_img: bl.bios.as_ref().map(|(_, i)| i.as_path()),
                prep_core: prep_core.as_deref(),
                sector: *sector,
                disk_size: *size,
                seed: &seed,
                timestamp: b.timestamp,
            },
        )
        .context("making the base disk")?;
        eprintln!(
            "Made the base disk for {} ({} MiB, {sector}-byte sectors) in {:.1}s",
            members
                .iter()
                .map(|m| m.platform)
                .collect::<Vec<_>>()
                .join(", "),
            layout.total / MIB,
            t.elapsed().as_secs_f64()
        );
        // Each member gets its own copy of the base disk (the last one takes
        // the base itself), then they are finished in parallel.
        let mut raws = Vec::new();
        for (i, tg) in members.iter().enumerate() {
            let pwork = b.work.join(format!("p-{}", tg.platform));
            fs::create_dir_all(&pwork).with_context(|| format!("creating {}", pwork.display()))?;
            let raw = pwork.join("disk.raw");
            if i + 1 == members.len() {
                fs::rename(&base, &raw).context("taking the base disk")?;
            } else {
                disk::copy_sparse(&base, &raw)?;
            }
            raws.push((pwork, raw));
        }
        let results: Vec<Result<MadeImage>> = members
            .par_iter()
            .zip(raws.par_iter())
            .map(|(tg, (pwork, raw))| -> Result<MadeImage> {
                let t = Instant::now();
                let pboot = pwork.join("boot");
                prepare_boot(&boot, &pboot, &dep, &image, &plat, b.arch, tg)?;
                disk::write_boot(raw, &layout, &pboot, &seed, b.timestamp)?;
                let file = artifact_name(b.name, b.buildid, tg.platform, b.arch, tg.ext);
                let tmp = b.build_dir.join(format!(".tmp-{file}"));
                let pseed = format!("{seed}/{}", tg.platform);
                formats::convert(tg.format, raw, &tmp, pwork, &ovf, &pseed, b.timestamp)
                    .with_context(|| format!("making the {} artifact", tg.platform))?;
                fs::rename(&tmp, b.build_dir.join(&file))
                    .with_context(|| format!("renaming {} into place", tmp.display()))?;
                let _ = fs::remove_dir_all(pwork);
                let secs = t.elapsed().as_secs_f64();
                eprintln!("Made {file} in {secs:.1}s");
                Ok(MadeImage {
                    platform: tg.platform.to_string(),
                    file,
                    skip_compression: tg.skip_compression,
                    extra: record.clone(),
                })
            })
            .collect();
        for r in results {
            made.push(r?);
        }
    }
    Ok(made)
}

/// The platforms a `cosa build` target list asks for (everything but `ostree`).
pub fn requested_platforms(targets: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for t in targets {
        if t == "ostree" {
            continue;
        }
        target(t)?;
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// Where the scratch work of an image build goes.
pub fn scratch_dir(tmp: &Path) -> Result<crate::util::scratch::ScratchDir> {
    // Locked while in use; a killed run's are removed by the next one.
    crate::util::scratch::ScratchDir::new(tmp, "image-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powervs_is_a_ppc64le_platform_shipped_compressed() {
        let p = target("powervs").unwrap();
        assert_eq!((p.ext, p.format), ("ova.gz", Format::PowervsOvaGz));
        assert!(p.skip_compression);
        assert!(platforms_for_arch("ppc64le").contains(&"powervs"));
        for arch in ["x86_64", "aarch64", "s390x"] {
            let ps = platforms_for_arch(arch);
            assert!(!ps.contains(&"powervs"), "{arch}");
            assert_eq!(ps.len(), TARGETS.len() - 1, "{arch}");
        }
    }
}
