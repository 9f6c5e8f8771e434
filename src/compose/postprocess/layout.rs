//! The OSTree top level (rpm-ostree's `compose_prepare_rootfs`,
//! `rootfs_prepare_links`, `postprocess_devices`, `postprocess_useradd`).

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::settings::{OptUsrLocal, Settings};
use super::{PostprocessReport, exists, remove_any};

/// Top-level entries kept from the composed tree; rpm-ostree builds a fresh
/// root and moves only these into it.
const KEEP: &[&str] = &["usr", "boot", "var", "lib", "lib64", "lib32", "bin", "sbin"];

/// Empty mount points, mode 0755.
const MOUNT_POINTS: &[&str] = &["dev", "proc", "run", "sys", "var", "sysroot"];

/// Refuse a tree with both /etc and /usr/etc: which one is the truth?
pub fn refuse_both_etc(tree: &Path) -> Result<()> {
    if exists(&tree.join("etc")) && exists(&tree.join("usr/etc")) {
        bail!(
            "the tree has both /etc and /usr/etc; a composed tree must have only /etc \
             (postprocessing moves it to /usr/etc)"
        );
    }
    Ok(())
}

/// `/etc` becomes `/usr/etc`.
pub fn move_etc(tree: &Path, r: &mut PostprocessReport) -> Result<()> {
    refuse_both_etc(tree)?;
    let etc = tree.join("etc");
    if !exists(&etc) {
        return Ok(());
    }
    if !std::fs::symlink_metadata(&etc)?.is_dir() {
        bail!("/etc in the tree is not a directory");
    }
    std::fs::create_dir_all(tree.join("usr"))
        .with_context(|| format!("creating {}/usr", tree.display()))?;
    std::fs::rename(&etc, tree.join("usr/etc")).context("moving /etc to /usr/etc")?;
    r.moved("etc", "usr/etc");
    Ok(())
}

fn mkdir_mode(path: &Path, mode: u32) -> Result<()> {
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        remove_any(path)?;
        std::fs::DirBuilder::new()
            .mode(mode)
            .create(path)
            .with_context(|| format!("creating {}", path.display()))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// Rebuild the top level: drop everything but [`KEEP`], then make the mount
/// points, `tmp`, and the symlinks into /var, /run and /sysroot.
pub fn prepare_toplevel(tree: &Path, s: &Settings, r: &mut PostprocessReport) -> Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(tree)
        .with_context(|| format!("reading {}", tree.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", tree.display()))?;
    names.sort();
    for name in names.iter().filter(|n| !KEEP.contains(&n.as_str())) {
        let p = tree.join(name);
        let md = std::fs::symlink_metadata(&p)?;
        if !(md.is_symlink() || md.is_dir() && is_empty_dir(&p)) {
            r.warn(format!(
                "dropping /{name}: only /usr, /boot, /var and the compat links are kept at the top level"
            ));
        }
        remove_any(&p)?;
        r.removed.push(format!("/{name}"));
    }
    std::fs::set_permissions(tree, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("setting the mode of {}", tree.display()))?;
    for d in MOUNT_POINTS {
        mkdir_mode(&tree.join(d), 0o755)?;
    }
    let mut links: Vec<(&str, &str)> = vec![
        ("var/roothome", "root"),
        ("var/home", "home"),
        ("sysroot/ostree", "ostree"),
        ("var/srv", "srv"),
        ("var/mnt", "mnt"),
        ("run/media", "media"),
    ];
    if s.tmp_is_dir {
        mkdir_mode(&tree.join("tmp"), 0o1777)?;
    } else {
        links.push(("sysroot/tmp", "tmp"));
    }
    match s.opt_usrlocal {
        OptUsrLocal::Var => links.push(("var/opt", "opt")),
        OptUsrLocal::StateOverlay => links.push(("usr/lib/opt", "opt")),
        OptUsrLocal::Root => mkdir_mode(&tree.join("opt"), 0o755)?,
    }
    for (target, link) in links {
        symlink(target, tree.join(link)).with_context(|| format!("creating /{link}"))?;
    }
    Ok(())
}

/// `HOME=/var/home` in /usr/etc/default/useradd, so that `useradd` on the
/// booted system puts homes where /home points.
pub fn useradd_home(tree: &Path) -> Result<()> {
    let p = tree.join("usr/etc/default/useradd");
    if !std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
        return Ok(());
    }
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(if line.starts_with("HOME=") {
            "HOME=/var/home"
        } else {
            line
        });
        out.push('\n');
    }
    super::write_mode(&p, out.as_bytes(), 0o644)
}

/// overlayfs whiteouts (char 0:0) become empty `.ostree-wh.<name>` files, as
/// ostree expects; other device nodes are refused (or dropped with
/// `ignore-devices: true`).
pub fn check_devices(tree: &Path, ignore: bool, r: &mut PostprocessReport) -> Result<()> {
    let mut found = Vec::new();
    walk_devices(tree, Path::new(""), ignore, &mut found, r)?;
    if !found.is_empty() && !ignore {
        bail!(
            "the tree holds device node(s), which OSTree cannot store: {} \
             (remove them with remove-files, or set ignore-devices: true)",
            found.join(", ")
        );
    }
    if !found.is_empty() {
        r.warn(format!(
            "removed {} device node(s) (ignore-devices): {}",
            found.len(),
            found.join(", ")
        ));
    }
    Ok(())
}

fn walk_devices(
    tree: &Path,
    rel: &Path,
    ignore: bool,
    found: &mut Vec<String>,
    r: &mut PostprocessReport,
) -> Result<()> {
    let dir = tree.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let ft = e.file_type()?;
        let name = e.file_name();
        let rel = rel.join(&name);
        if ft.is_dir() {
            walk_devices(tree, &rel, ignore, found, r)?;
            continue;
        }
        if !(ft.is_char_device() || ft.is_block_device()) {
            continue;
        }
        let md = e.metadata()?;
        if ft.is_char_device() && md.rdev() == 0 {
            let wh = e
                .path()
                .with_file_name(format!(".ostree-wh.{}", name.to_string_lossy()));
            std::fs::remove_file(e.path())
                .with_context(|| format!("removing whiteout /{}", rel.display()))?;
            super::write_mode(&wh, b"", md.mode() & 0o7777)?;
            r.moved(
                &rel.display().to_string(),
                &rel.with_file_name(wh.file_name().unwrap_or_default())
                    .display()
                    .to_string(),
            );
            continue;
        }
        found.push(format!("/{}", rel.display()));
        if ignore {
            std::fs::remove_file(e.path())
                .with_context(|| format!("removing device /{}", rel.display()))?;
        }
    }
    Ok(())
}

/// `/usr/local -> ../var/usrlocal` (unless `opt-usrlocal` keeps it in the
/// commit); /var/lib/alternatives and /var/lib/vagrant move to /usr/lib with
/// a link left in their place.
pub fn prepare_links(tree: &Path, s: &Settings, r: &mut PostprocessReport) -> Result<()> {
    let usrlocal = tree.join("usr/local");
    if s.opt_usrlocal == OptUsrLocal::Var {
        let is_link = std::fs::symlink_metadata(&usrlocal).is_ok_and(|m| m.is_symlink());
        if !is_link {
            if exists(&usrlocal) && !is_empty_dir(&usrlocal) {
                r.warn("dropping the content of /usr/local: it becomes a link to /var/usrlocal");
            }
            remove_any(&usrlocal)?;
            symlink("../var/usrlocal", &usrlocal).context("creating /usr/local")?;
        }
    } else {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&usrlocal)
            .context("creating /usr/local")?;
    }
    for entry in ["alternatives", "vagrant"] {
        let varlib = tree.join("var/lib").join(entry);
        if !std::fs::symlink_metadata(&varlib).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let usrlib = tree.join("usr/lib").join(entry);
        remove_any(&usrlib)?;
        std::fs::create_dir_all(tree.join("usr/lib"))?;
        std::fs::rename(&varlib, &usrlib)
            .with_context(|| format!("moving /var/lib/{entry} to /usr/lib/{entry}"))?;
        symlink(format!("../../usr/lib/{entry}"), &varlib)
            .with_context(|| format!("creating /var/lib/{entry}"))?;
        r.moved(&format!("var/lib/{entry}"), &format!("usr/lib/{entry}"));
    }
    Ok(())
}
