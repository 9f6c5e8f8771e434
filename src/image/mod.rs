//! Disk images from a build's OSTree commit: deploy the commit into a sysroot
//! (src/ostree/deploy.rs), then per platform write the boot partition's BLS
//! entry and grub.cfg with the platform's kernel arguments and console, and
//! assemble the disk (GPT, ESP with GRUB, boot, root) without mounts.

pub mod compress;
pub mod disk;
pub mod gpt;
pub mod grub;
pub mod layout;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::config::image::{ImageConfig, Platforms};
use crate::ostree::Repo;
use crate::ostree::deploy::{self, BlsEntry, DeployOptions, Deployment};
use layout::{Layout, MIB};

/// How one platform's image is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub platform: &'static str,
    pub sector: u64,
    /// File extension of the artifact.
    pub ext: &'static str,
    /// Root partition sized to its content (metal) rather than image.yaml's size.
    pub fit_content: bool,
    pub qcow2: bool,
}

/// The platforms this stage makes.
pub const TARGETS: &[Target] = &[
    Target {
        platform: "qemu",
        sector: 512,
        ext: "qcow2",
        fit_content: false,
        qcow2: true,
    },
    Target {
        platform: "metal",
        sector: 512,
        ext: "raw",
        fit_content: true,
        qcow2: false,
    },
    Target {
        platform: "metal4k",
        sector: 4096,
        ext: "raw",
        fit_content: true,
        qcow2: false,
    },
];

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
    pub arch: &'a str,
    pub config_dir: &'a Path,
    /// The build's directory: artifacts land here.
    pub build_dir: &'a Path,
    /// An empty scratch directory (removed by the caller).
    pub work: &'a Path,
    pub timestamp: i64,
}

/// One finished artifact.
#[derive(Clone, Debug)]
pub struct MadeImage {
    pub platform: String,
    /// File name in the build directory.
    pub file: String,
    pub layout: Layout,
    pub seconds: f64,
}

/// The ignition platform's kernel arguments for an image: image.yaml's
/// extra-kargs, `ignition.platform.id`, the platform's console kargs, `rw`,
/// and `ostree=`.
pub fn platform_kargs(
    image: &ImageConfig,
    platforms: &Platforms,
    arch: &str,
    platform: &str,
    ostree_karg: &str,
) -> Vec<String> {
    let platform_id = if platform == "metal4k" {
        "metal"
    } else {
        platform
    };
    let mut k = image.extra_kargs.clone();
    k.push(format!("ignition.platform.id={platform_id}"));
    k.extend(platforms.get(arch, platform_id).kernel_arguments);
    k.push("rw".to_string());
    k.push(ostree_karg.to_string());
    k
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

/// Rewrite the boot directory for `platform`: BLS options, grub.cfg,
/// `coreos/platforms.json` and `ignition.firstboot`, as upstream leaves them.
fn prepare_boot(
    boot: &Path,
    dep: &Deployment,
    image: &ImageConfig,
    platforms: &Platforms,
    arch: &str,
    platform: &str,
) -> Result<BlsEntry> {
    let platform_id = if platform == "metal4k" {
        "metal"
    } else {
        platform
    };
    let bls = BlsEntry {
        options: platform_kargs(image, platforms, arch, platform, &dep.ostree_karg).join(" "),
        ..dep.bls.clone()
    };
    write_file(&boot.join(&dep.bls_path), bls.render().as_bytes())?;
    let cfg = grub::grub_cfg(
        &platforms.get(arch, platform_id).grub_commands,
        &[bls.clone()],
    );
    write_file(&boot.join("grub2/grub.cfg"), cfg.as_bytes())?;
    fs::set_permissions(boot.join("grub2"), fs::Permissions::from_mode(0o700))
        .context("setting the mode of grub2/")?;
    if let Some(table) = platforms.0.get(arch) {
        write_file(
            &boot.join("coreos/platforms.json"),
            &serde_json::to_vec_pretty(table)?,
        )?;
    }
    write_file(&boot.join("ignition.firstboot"), b"")?;
    Ok(bls)
}

/// Make the images of `platforms` for a build. Artifacts are written under a
/// temporary name and renamed into the build directory when complete.
pub fn build_images(b: &ImageBuild, platforms: &[String]) -> Result<Vec<MadeImage>> {
    let targets: Vec<Target> = platforms.iter().map(|p| target(p)).collect::<Result<_>>()?;
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let image = ImageConfig::load(b.config_dir)?;
    if image.rootfs_substituted() {
        eprintln!(
            "note: image.yaml asks for rootfs {:?}; cosa makes ext4 (built from a directory, no mounts)",
            image.rootfs
        );
    }
    let plat = Platforms::load(b.config_dir)?;
    let osname = image.osname.clone().unwrap_or_else(|| b.name.to_string());

    let t = Instant::now();
    let sysroot = b.work.join("sysroot");
    let boot = b.work.join("boot");
    let dep = deploy::deploy(
        b.repo,
        b.commit,
        &sysroot,
        &boot,
        &DeployOptions {
            osname: osname.clone(),
            refspec: b.ostree_ref.to_string(),
            kargs: Vec::new(),
        },
    )
    .with_context(|| format!("deploying commit {} into a sysroot", b.commit))?;
    eprintln!(
        "Deployed {} ({} objects, kernel {}) in {:.1}s",
        &b.commit[..12.min(b.commit.len())],
        dep.objects,
        dep.kver,
        t.elapsed().as_secs_f64()
    );

    // GRUB images, once per build.
    let grub_dir = b.work.join("grub");
    fs::create_dir_all(&grub_dir).with_context(|| format!("creating {}", grub_dir.display()))?;
    let bios_core = if b.arch == "x86_64" {
        let core = grub_dir.join("core.img");
        grub::make_bios_core(&core, &grub_dir)?;
        Some(core)
    } else {
        None
    };
    let esp = if b.arch == "s390x" {
        None
    } else {
        let esp = b.work.join("esp");
        let (_, file) = grub::efi_target(b.arch)?;
        let efi_boot = esp.join("EFI/BOOT");
        fs::create_dir_all(&efi_boot)
            .with_context(|| format!("creating {}", efi_boot.display()))?;
        grub::make_efi(b.arch, &efi_boot.join(file), &grub_dir)?;
        write_file(&efi_boot.join("grub.cfg"), grub::EARLY_CFG.as_bytes())?;
        Some(esp)
    };

    let mut made = Vec::new();
    for tg in targets {
        let t = Instant::now();
        let file = artifact_name(b.name, b.buildid, tg.platform, b.arch, tg.ext);
        prepare_boot(&boot, &dep, &image, &plat, b.arch, tg.platform)?;
        let aleph = serde_json::json!({
            "build": b.buildid,
            "ref": b.ostree_ref,
            "ostree-commit": b.commit,
            "imgid": file,
        });
        write_file(
            &sysroot.join(".coreos-aleph-version.json"),
            &serde_json::to_vec_pretty(&aleph)?,
        )?;
        let raw = b.work.join(format!("{}.raw", tg.platform));
        let seed = format!("{}/{}/{}", b.commit, b.arch, tg.platform);
        let layout = disk::make_raw(
            &raw,
            &disk::DiskInput {
                arch: b.arch,
                sysroot: &sysroot,
                boot: &boot,
                esp: esp.as_deref(),
                bios_core: bios_core.as_deref(),
                sector: tg.sector,
                disk_size: (!tg.fit_content).then_some(image.size * 1024 * MIB),
                seed: &seed,
                timestamp: b.timestamp,
            },
        )
        .with_context(|| format!("making the {} disk", tg.platform))?;
        let tmp = b.build_dir.join(format!(".tmp-{file}"));
        if tg.qcow2 {
            disk::to_qcow2(&raw, &tmp)?;
            fs::remove_file(&raw).with_context(|| format!("removing {}", raw.display()))?;
        } else {
            fs::rename(&raw, &tmp)
                .or_else(|_| fs::copy(&raw, &tmp).map(|_| ()))
                .with_context(|| format!("moving {} to {}", raw.display(), tmp.display()))?;
        }
        fs::rename(&tmp, b.build_dir.join(&file))
            .with_context(|| format!("renaming {} into place", tmp.display()))?;
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "Made {file} ({} MiB disk, {}-byte sectors) in {secs:.1}s",
            layout.total / MIB,
            layout.sector
        );
        made.push(MadeImage {
            platform: tg.platform.to_string(),
            file,
            layout,
            seconds: secs,
        });
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
pub fn scratch_dir(tmp: &Path) -> Result<tempfile::TempDir> {
    fs::create_dir_all(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    tempfile::Builder::new()
        .prefix("image-")
        .tempdir_in(tmp)
        .with_context(|| format!("creating a scratch directory in {}", tmp.display()))
}
