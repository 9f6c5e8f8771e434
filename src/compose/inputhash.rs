//! The input hash of a compose (`rpmostree.inputhash`): everything that
//! decides the tree. When it equals the previous build's, nothing changed.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::rpm::PackageMeta;

/// sha256 over: the cosa version, the target arch, every package's name and
/// digest (in install order), the content of the config directory
/// (manifests, repo files, lockfiles, overlays, scripts; `.git` excluded)
/// and of `overrides/rootfs`, and the content of every file in `files` (the
/// treefiles and image.yaml files read, add-files sources, scripts, check
/// files) that lies outside those directories, such as an
/// `include: ../common.yaml`.
pub fn input_hash(
    arch: &str,
    pkgs: &[PackageMeta],
    dirs: &[&Path],
    files: &[PathBuf],
) -> Result<String> {
    let mut h = Sha256::new();
    h.update(format!("cosa {}\narch {arch}\n", env!("CARGO_PKG_VERSION")));
    for p in pkgs {
        h.update(format!(
            "pkg {} {}:{}\n",
            p.nevra(),
            p.checksum_type,
            p.checksum
        ));
    }
    for d in dirs {
        h.update(b"dir\n");
        if d.exists() {
            hash_dir(&mut h, d, d)?;
        }
    }
    let canon_dirs: Vec<PathBuf> = dirs.iter().filter_map(|d| d.canonicalize().ok()).collect();
    let mut n = 0;
    for f in files {
        let c = f
            .canonicalize()
            .with_context(|| format!("reading {} for the input hash", f.display()))?;
        if canon_dirs.iter().any(|d| c.starts_with(d)) {
            continue;
        }
        let data = std::fs::read(&c).with_context(|| format!("reading {}", c.display()))?;
        h.update(format!("outside {n} {}\n", data.len()));
        h.update(&data);
        n += 1;
    }
    Ok(hex::encode(h.finalize()))
}

fn hash_dir(h: &mut Sha256, root: &Path, dir: &Path) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if e.file_name() == ".git" {
            continue;
        }
        // Follow symlinks to directories (overlay.d -> ../overlays), hash the rest as links.
        let md = std::fs::metadata(&path).or_else(|_| std::fs::symlink_metadata(&path))?;
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        if md.is_dir() {
            h.update(format!("d {rel} {:o}\n", md.mode() & 0o7777));
            hash_dir(h, root, &path)?;
        } else if md.file_type().is_symlink() {
            let target = std::fs::read_link(&path)?;
            h.update(format!("l {rel} {}\n", target.display()));
        } else {
            h.update(format!("f {rel} {:o} {}\n", md.mode() & 0o7777, md.len()));
            let mut f = std::fs::File::open(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_content_and_not_with_git() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(d.join("manifest.yaml"), "packages: [a]\n").unwrap();
        let a = input_hash("x86_64", &[], &[d], &[]).unwrap();
        std::fs::create_dir(d.join(".git")).unwrap();
        std::fs::write(d.join(".git/HEAD"), "x").unwrap();
        assert_eq!(a, input_hash("x86_64", &[], &[d], &[]).unwrap());
        std::fs::write(d.join("manifest.yaml"), "packages: [b]\n").unwrap();
        assert_ne!(a, input_hash("x86_64", &[], &[d], &[]).unwrap());
        assert_ne!(a, input_hash("aarch64", &[], &[d], &[]).unwrap());
    }

    #[test]
    fn files_outside_the_config_count_inside_ones_do_not_twice() {
        let t = tempfile::tempdir().unwrap();
        let cfg = t.path().join("config");
        std::fs::create_dir(&cfg).unwrap();
        std::fs::write(cfg.join("manifest.yaml"), "include: ../common.yaml\n").unwrap();
        let common = t.path().join("common.yaml");
        std::fs::write(&common, "packages: [a]\n").unwrap();
        let files = [cfg.join("manifest.yaml"), common.clone()];
        let a = input_hash("x86_64", &[], &[&cfg], &files).unwrap();
        // Listing the inside file changes nothing: the directory covers it.
        assert_eq!(a, input_hash("x86_64", &[], &[&cfg], &files[1..]).unwrap());
        std::fs::write(&common, "packages: [b]\n").unwrap();
        assert_ne!(a, input_hash("x86_64", &[], &[&cfg], &files).unwrap());
    }
}
