//! Compose a root tree from a resolved, fetched package set: install the
//! packages (with scriptlets), then lay the overlays over it. Shared by
//! `cosa compose rootfs` and `cosa build`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::install::{self, InstallOptions, InstallReport, ScriptPolicy};
use super::overlay;
use super::resolve::Resolved;
use crate::config::treefile::Treefile;
use crate::config::workdir::Workdir;
use crate::rpm::PackageMeta;

/// Install `pkgs` into the empty directory `tree` and apply the overlays.
pub fn compose_tree(
    wd: &Workdir,
    resolved: &Resolved,
    pkgs: &[(PackageMeta, PathBuf)],
    skip_scripts: bool,
    previous_ids: Option<(String, String)>,
    tree: &Path,
) -> Result<InstallReport> {
    let tf = &resolved.treefile;
    let remove_from_packages = remove_from_packages(tf)?;
    let iopts = InstallOptions {
        documentation: tf.documentation,
        remove_from_packages,
        scripts: if skip_scripts {
            ScriptPolicy::Skip("--skip-scripts".into())
        } else {
            ScriptPolicy::Run
        },
        basearch: resolved.arch.clone(),
        previous_ids,
    };
    let report = install::install(tree, pkgs, &iopts)?;
    let overlays = overlay_dirs(wd)?;
    overlay::apply(tree, &overlays)?;

    Ok(report)
}

/// The treefile's `remove-from-packages`: (package name, path regexes).
pub(crate) fn remove_from_packages(tf: &Treefile) -> Result<Vec<(String, Vec<regex::Regex>)>> {
    tf.remove_from_packages
        .iter()
        .map(|(pkg, res)| {
            let res = res
                .iter()
                .map(|r| {
                    regex::Regex::new(r)
                        .with_context(|| format!("remove-from-packages: bad regex {r:?} for {pkg}"))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((pkg.clone(), res))
        })
        .collect()
}

/// `overlay.d/*` of the config (sorted), then `overrides/rootfs`.
fn overlay_dirs(wd: &Workdir) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    let od = wd.config_dir().join("overlay.d");
    if od.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&od)
            .with_context(|| format!("reading {}", od.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        v.sort();
        dirs.extend(v);
    }
    dirs.push(wd.overrides_rootfs());
    Ok(dirs)
}
