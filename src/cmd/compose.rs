//! `cosa compose rootfs`: resolve, fetch, install into a directory, apply
//! overlays, write the rpm database.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cli::{GlobalOpts, RootfsOpts};
use crate::compose::{resolve, rpmdb, tree};
use crate::config::workdir::Workdir;
use crate::rpm::download::Downloader;
use crate::util;

pub fn rootfs(global: &GlobalOpts, opts: RootfsOpts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    wd.ensure_dirs()?;
    let arch = util::target_arch(opts.resolve.arch.as_deref())?;
    let dest = absolute(&opts.dest)?;
    check_dest(&dest)?;
    let dl = Downloader::new(opts.resolve.jobs)?;
    let resolved = resolve::resolve(&wd, &arch, opts.resolve.strict, &dl)?;
    let pkgs = resolve::fetch(&wd, &dl, &resolved)?;

    // Build next to DEST and rename at the end: DEST is never half-made.
    let parent = dest.parent().context("DEST has no parent directory")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".cosa-rootfs-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a staging directory in {}", parent.display()))?;
    let tree = staging.path().join("root");
    std::fs::create_dir(&tree)?;

    let t = Instant::now();
    let report = tree::compose_tree(&wd, &resolved, &pkgs, opts.skip_scripts, None, &tree)?;
    rpmdb::write_tree_rpmdb(
        &tree,
        rpmdb::Layout::Rootfs,
        &resolved,
        &pkgs,
        util::time::now_secs(),
    )?;

    // Record what was done: the generated lockfile and the compose report.
    let lock_path = wd
        .tmp_dir()
        .join(format!("manifest-lock.generated.{arch}.json"));
    resolved.lockfile().write(&lock_path)?;
    let report_path = wd.tmp_dir().join(format!("compose-report.{arch}.json"));
    util::write_json_atomic(&report_path, &report)?;

    if dest.exists() {
        std::fs::remove_dir(&dest)
            .with_context(|| format!("replacing empty {}", dest.display()))?;
    }
    std::fs::rename(&tree, &dest)
        .with_context(|| format!("moving the tree into {}", dest.display()))?;
    eprintln!(
        "Composed {} packages ({} files, {}) into {} in {:.1}s",
        report.packages,
        report.files,
        indicatif::HumanBytes(report.bytes),
        dest.display(),
        t.elapsed().as_secs_f64()
    );
    if !report.scripts_skipped.is_empty() {
        eprintln!(
            "warning: {} scriptlet(s) were NOT run (see {}): {}",
            report.scripts_skipped.len(),
            report_path.display(),
            report
                .scripts_skipped
                .iter()
                .take(5)
                .map(|(s, why)| format!("{s} ({why})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !report.owners_unresolved.is_empty() {
        eprintln!(
            "warning: {} file(s) left owned by root because their owner does not exist without the skipped scriptlets (see {})",
            report.owners_unresolved.len(),
            report_path.display()
        );
    }
    eprintln!("Wrote {}", lock_path.display());
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// DEST must be missing or an empty directory: nothing of the user's is overwritten.
fn check_dest(dest: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dest) {
        Err(_) => Ok(()),
        Ok(md) if md.is_dir() => {
            if std::fs::read_dir(dest)?.next().is_some() {
                bail!(
                    "{} is not empty; compose rootfs wants a new or empty directory",
                    dest.display()
                );
            }
            Ok(())
        }
        Ok(_) => bail!("{} exists and is not a directory", dest.display()),
    }
}
