//! The boot loader of a disk image, taken from the OS's own tree as bootupd
//! installs it (Fedora CoreOS's model):
//!
//! - UEFI: the ESP gets the deployed tree's `/usr/lib/bootupd/updates/EFI/`
//!   byte for byte (shim as `EFI/BOOT/BOOTX64.EFI`, the vendor directory with
//!   shim, GRUB, MokManager, ...), plus a `grub.cfg` stub where the tree's
//!   GRUB looks for it (its built-in prefix, read from the image), which
//!   finds the boot file system and loads its `grub2/grub.cfg`.
//! - BIOS (x86_64): the core image assembled by the host's `grub-mkimage`
//!   from the tree's own i386-pc modules, with the tree's `boot.img`.
//! - `/boot/bootupd-state.json` in bootupd's format: the installed
//!   components, their update metadata (`EFI.json`, `BIOS.json`) and the
//!   ESP's file tree with SHA-512 digests.
//!
//! A tree without `/usr/lib/bootupd/updates/EFI` gets the build host's GRUB
//! (unsigned: no Secure Boot), with a warning naming why; image.yaml's
//! `efi-signing-key`/`efi-signing-cert` sign that GRUB (sbsign, checked with
//! sbverify), for machines that enroll the config's certificate.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use super::grub;
use crate::compose::bootupd::{ContentMetadata, UPDATES_DIR};
use crate::config::image::EfiSigning;
use crate::util::cmd::CommandRunExt;

/// Modules the tree's GRUB must have built in to run the stub and our
/// grub.cfg without loading modules from disk (Secure Boot forbids that).
const REQUIRED_MODULES: &[&str] = &[
    "part_gpt",
    "ext2",
    "search",
    "search_label",
    "configfile",
    "normal",
    "linux",
    "test",
    "echo",
];

/// One file of bootupd's file tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMetadata {
    pub size: u64,
    /// `sha512:<hex>`.
    pub sha512: String,
}

/// bootupd's `FileTree`: paths relative to the ESP's `EFI/` directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTree {
    pub children: BTreeMap<String, FileMetadata>,
}

/// bootupd's `InstalledContent`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InstalledContent {
    pub meta: ContentMetadata,
    pub filetree: Option<FileTree>,
    pub adopted_from: Option<ContentMetadata>,
}

/// bootupd's `SavedState`, serialized into `/boot/bootupd-state.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SavedState {
    pub installed: BTreeMap<String, InstalledContent>,
    pub pending: Option<BTreeMap<String, ContentMetadata>>,
    /// cosa writes grub.cfg from the BLS entries, not bootupd's static
    /// configs: always null.
    pub static_configs: Option<ContentMetadata>,
}

/// The boot loader files of one build, ready for the disks.
#[derive(Debug)]
pub struct Prepared {
    /// The ESP's content (None for arches without one).
    pub esp: Option<PathBuf>,
    /// The BIOS core image and the `boot.img` it goes with (x86_64).
    pub bios: Option<(PathBuf, PathBuf)>,
    /// bootupd's state for `/boot/bootupd-state.json`, when from the tree.
    pub state: Option<SavedState>,
    /// What meta.json records for each image (an extra artifact field).
    pub record: serde_json::Value,
}

/// Where a tree keeps GRUB's BIOS modules (Debian's grub-pc-bin).
pub(crate) const TREE_BIOS_MODULES: &str = "usr/lib/grub/i386-pc";

/// The tree's GRUB BIOS modules directory, if it has one (with `boot.img`).
pub(crate) fn tree_bios_modules(tree: &Path) -> Option<PathBuf> {
    let d = tree.join(TREE_BIOS_MODULES);
    d.join("boot.img").is_file().then_some(d)
}

/// Read a component's update metadata (`EFI.json`, `BIOS.json`).
pub(crate) fn read_metadata(tree: &Path, component: &str) -> Result<Option<ContentMetadata>> {
    let p = tree.join(UPDATES_DIR).join(format!("{component}.json"));
    match fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .with_context(|| format!("parsing bootupd's update metadata {}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

/// Every regular file under `dir`, as paths relative to it, sorted.
fn files_under(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e.with_context(|| format!("reading {}", d.display()))?;
            let ft = e.file_type()?;
            let rel = e
                .path()
                .strip_prefix(dir)
                .context("a path under its directory")?
                .to_string_lossy()
                .into_owned();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(rel);
            } else {
                bail!(
                    "{} is neither a file nor a directory: bootupd's EFI payload goes on FAT",
                    e.path().display()
                );
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The GRUB image of an EFI payload: `grub<arch>.efi` outside `BOOT/`.
fn find_grub(files: &[String], arch: &str) -> Result<String> {
    let name = match arch {
        "x86_64" => "grubx64.efi",
        "aarch64" => "grubaa64.efi",
        other => bail!("no UEFI GRUB name for {other}"),
    };
    let found: Vec<&String> = files
        .iter()
        .filter(|f| {
            let p = Path::new(f);
            p.file_name().is_some_and(|n| n.eq_ignore_ascii_case(name))
                && !f.to_ascii_uppercase().starts_with("BOOT/")
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one.to_string()),
        [] => bail!("the tree's {UPDATES_DIR}/EFI has no {name} in a vendor directory"),
        many => bail!("the tree's {UPDATES_DIR}/EFI has several {name}: {many:?}"),
    }
}

/// The grub.cfg stub [`fill_esp`] writes at the tree's GRUB prefix, and the
/// modules that GRUB must have built in to follow it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stub<'a> {
    /// What the stub says (disks: [`grub::EARLY_CFG`]).
    pub cfg: &'a str,
    /// Modules the tree's GRUB needs built in for the stub and the config
    /// it loads (Secure Boot forbids loading modules from disk).
    pub required_modules: &'a [&'a str],
    /// A `grub.cfg` the tree ships at the prefix is replaced by `cfg`
    /// (the live ISO, whose stub must find the ISO) instead of kept (disks).
    pub replace_tree_stub: bool,
    /// What the stub leads to, in messages ("the boot partition", "the live ISO").
    pub target: &'a str,
}

/// The disks' stub: find the `boot` file system, load its grub2/grub.cfg.
const DISK_STUB: Stub<'static> = Stub {
    cfg: grub::EARLY_CFG,
    required_modules: REQUIRED_MODULES,
    replace_tree_stub: false,
    target: "the boot partition",
};

/// Fill `esp` from the tree's EFI payload: the files, the grub.cfg stub at
/// the GRUB image's prefix. Returns the file tree (bootupd's view) and where
/// the stub went.
pub(crate) fn fill_esp(
    tree: &Path,
    arch: &str,
    esp: &Path,
    stub_cfg: &Stub,
) -> Result<(FileTree, String)> {
    let src = tree.join(UPDATES_DIR).join("EFI");
    let files = files_under(&src)?;
    let efi = esp.join("EFI");
    let mut ft = FileTree::default();
    for f in &files {
        let from = src.join(f);
        let to = efi.join(f);
        if let Some(d) = to.parent() {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        let (hex, size) = crate::util::digest::file(&from, "sha512")?;
        ft.children.insert(
            f.clone(),
            FileMetadata {
                size,
                sha512: format!("sha512:{hex}"),
            },
        );
    }
    let (_, removable) = grub::efi_target(arch)?;
    ensure!(
        files
            .iter()
            .any(|f| f.eq_ignore_ascii_case(&format!("BOOT/{removable}"))),
        "the tree's {UPDATES_DIR}/EFI has no BOOT/{removable}: the firmware would find no \
         boot loader on the disk"
    );
    let grub_rel = find_grub(&files, arch)?;
    let grub_path = src.join(&grub_rel);
    let data = fs::read(&grub_path).with_context(|| format!("reading {}", grub_path.display()))?;
    let info = grub::read_image_info(&data)
        .with_context(|| format!("reading the GRUB image {}", grub_path.display()))?;
    let missing: Vec<&str> = stub_cfg
        .required_modules
        .iter()
        .copied()
        .filter(|m| !info.modules.iter().any(|x| x == m))
        .collect();
    ensure!(
        missing.is_empty(),
        "the tree's GRUB {} lacks built-in modules {missing:?}: it could not read {}'s \
         grub.cfg (it has {})",
        grub_path.display(),
        stub_cfg.target,
        info.modules.join(" ")
    );
    // Where the GRUB looks for grub.cfg: its prefix on the ESP (a prefix
    // naming a device is not ours to follow), else its own directory.
    let stub_dir = match info.prefix.as_deref() {
        Some(p) if p.starts_with('/') => p.trim_start_matches('/').to_string(),
        _ => Path::new(&grub_rel)
            .parent()
            .map(|d| format!("EFI/{}", d.display()))
            .unwrap_or_else(|| "EFI".into()),
    };
    let stub = esp.join(&stub_dir).join("grub.cfg");
    if stub.exists() && !stub_cfg.replace_tree_stub {
        eprintln!(
            "note: the tree ships {}/grub.cfg; it is used as the ESP's grub.cfg",
            stub_dir
        );
    } else {
        if stub.exists() {
            eprintln!(
                "note: the tree ships {stub_dir}/grub.cfg; replaced by a stub that loads {}'s \
                 grub.cfg",
                stub_cfg.target
            );
        }
        if let Some(d) = stub.parent() {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        fs::write(&stub, stub_cfg.cfg).with_context(|| format!("writing {}", stub.display()))?;
    }
    Ok((ft, format!("/{stub_dir}/grub.cfg")))
}

/// The boot loader for a build whose commit is deployed at `tree`
/// (the deployment's root): the tree's when it has bootupd's payload, else
/// the host's with a warning. `work` is a scratch directory.
pub fn prepare(
    tree: &Path,
    arch: &str,
    work: &Path,
    signing: Option<&EfiSigning>,
) -> Result<Prepared> {
    // Architectures without UEFI here (s390x boots with zipl) have none.
    if grub::efi_target(arch).is_err() {
        return Ok(Prepared {
            esp: None,
            bios: None,
            state: None,
            record: serde_json::json!({"from": "none"}),
        });
    }
    let esp = work.join("esp");
    let grub_dir = work.join("grub");
    fs::create_dir_all(&grub_dir).with_context(|| format!("creating {}", grub_dir.display()))?;
    let efi_payload = tree.join(UPDATES_DIR).join("EFI");
    if !efi_payload.is_dir() {
        return host(arch, &esp, &grub_dir, signing);
    }
    let efi_meta = read_metadata(tree, "EFI")?.with_context(|| {
        format!(
            "the tree has {UPDATES_DIR}/EFI but no {UPDATES_DIR}/EFI.json (bootupd's update \
             metadata, written at compose time)"
        )
    })?;
    let (filetree, stub) =
        fill_esp(tree, arch, &esp, &DISK_STUB).context("installing the tree's EFI boot loader")?;
    let mut installed = BTreeMap::new();
    installed.insert(
        "EFI".to_string(),
        InstalledContent {
            meta: efi_meta.clone(),
            filetree: Some(filetree),
            adopted_from: None,
        },
    );
    let mut record = serde_json::json!({
        "from": "tree",
        "EFI": efi_meta,
        "grub-cfg-stub": stub,
    });
    let mut bios = None;
    if arch == "x86_64" {
        let core = grub_dir.join("core.img");
        if let Some(modules) = tree_bios_modules(tree) {
            let bios_meta = read_metadata(tree, "BIOS")?;
            grub::make_bios_core(&modules, &core, &grub_dir)
                .context("assembling the BIOS core image from the tree's GRUB modules")?;
            bios = Some((core, modules.join("boot.img")));
            if let Some(m) = bios_meta {
                record["BIOS"] = serde_json::to_value(&m)?;
                installed.insert(
                    "BIOS".to_string(),
                    InstalledContent {
                        meta: m,
                        filetree: None,
                        adopted_from: None,
                    },
                );
            }
        } else {
            eprintln!(
                "warning: the tree has no GRUB BIOS modules (/{TREE_BIOS_MODULES}/boot.img): \
                 BIOS boot uses the build host's GRUB"
            );
            let host = grub::host_modules("i386-pc")?;
            grub::make_bios_core(&host, &core, &grub_dir)?;
            bios = Some((core, host.join("boot.img")));
            record["BIOS"] = serde_json::json!({"from": "host"});
        }
    }
    Ok(Prepared {
        esp: Some(esp),
        bios,
        state: Some(SavedState {
            installed,
            pending: None,
            static_configs: None,
        }),
        record,
    })
}

/// Sign the EFI binary `file` in place with sbsign, then check the
/// signature with sbverify against the certificate.
pub fn sign_efi(file: &Path, s: &EfiSigning) -> Result<()> {
    let signed = file.with_extension("signed");
    std::process::Command::new("sbsign")
        .arg("--key")
        .arg(&s.key)
        .arg("--cert")
        .arg(&s.cert)
        .arg("--output")
        .arg(&signed)
        .arg(file)
        .run_capture(&format!(
            "signing {} with {} (sbsign, Debian's sbsigntool)",
            file.display(),
            s.key.display()
        ))?;
    std::process::Command::new("sbverify")
        .arg("--cert")
        .arg(&s.cert)
        .arg(&signed)
        .run_capture(&format!(
            "verifying the signature of {} against {} (sbverify)",
            file.display(),
            s.cert.display()
        ))?;
    fs::rename(&signed, file).with_context(|| format!("replacing {}", file.display()))
}

/// The fallback: the host's GRUB built with `grub-mkimage`, unsigned unless
/// the config names a signing key.
fn host(arch: &str, esp: &Path, grub_dir: &Path, signing: Option<&EfiSigning>) -> Result<Prepared> {
    let signed = match signing {
        Some(s) => format!("signed with {}", s.cert.display()),
        None => "not signed (no Secure Boot)".to_string(),
    };
    eprintln!(
        "warning: the tree has no /{UPDATES_DIR}/EFI (bootupd's boot loader payload): \
         installing the build host's GRUB, {signed}"
    );
    let (_, file) = grub::efi_target(arch)?;
    let efi_boot = esp.join("EFI/BOOT");
    fs::create_dir_all(&efi_boot).with_context(|| format!("creating {}", efi_boot.display()))?;
    grub::make_efi(arch, &efi_boot.join(file), grub_dir)?;
    if let Some(s) = signing {
        sign_efi(&efi_boot.join(file), s)?;
    }
    fs::write(efi_boot.join("grub.cfg"), grub::EARLY_CFG)
        .with_context(|| format!("writing {}", efi_boot.join("grub.cfg").display()))?;
    let bios = if arch == "x86_64" {
        let modules = grub::host_modules("i386-pc")?;
        let core = grub_dir.join("core.img");
        grub::make_bios_core(&modules, &core, grub_dir)?;
        Some((core, modules.join("boot.img")))
    } else {
        None
    };
    Ok(Prepared {
        esp: Some(esp.to_path_buf()),
        bios,
        state: None,
        record: serde_json::json!({
            "from": "host",
            "reason": format!("the tree has no /{UPDATES_DIR}/EFI"),
            "signed": signing.is_some(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_is_found_in_the_vendor_directory() {
        let files: Vec<String> = ["BOOT/BOOTX64.EFI", "BOOT/fbx64.efi", "debian/grubx64.efi"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(find_grub(&files, "x86_64").unwrap(), "debian/grubx64.efi");
        let e = find_grub(&files, "aarch64").unwrap_err();
        assert!(format!("{e:#}").contains("no grubaa64.efi"), "{e:#}");
        let two = [files.clone(), vec!["other/grubx64.efi".into()]].concat();
        assert!(find_grub(&two, "x86_64").is_err());
    }

    #[test]
    fn state_has_bootupds_shape() {
        let meta = ContentMetadata {
            timestamp: "2025-08-20T08:48:03Z".into(),
            version: "grub-1-1.x86_64,shim-2-1.x86_64".into(),
            versions: None,
        };
        let mut children = BTreeMap::new();
        children.insert(
            "BOOT/BOOTX64.EFI".to_string(),
            FileMetadata {
                size: 3,
                sha512: "sha512:00".into(),
            },
        );
        let mut installed = BTreeMap::new();
        installed.insert(
            "EFI".to_string(),
            InstalledContent {
                meta,
                filetree: Some(FileTree { children }),
                adopted_from: None,
            },
        );
        let s = SavedState {
            installed,
            pending: None,
            static_configs: None,
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["installed"]["EFI"]["adopted-from"],
            serde_json::Value::Null
        );
        assert_eq!(
            v["installed"]["EFI"]["filetree"]["children"]["BOOT/BOOTX64.EFI"]["size"],
            3
        );
        assert!(v.get("static-configs").is_some() && v.get("pending").is_some());
    }
}
