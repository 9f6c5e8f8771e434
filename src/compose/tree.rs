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
        install_langs: install_langs(tf),
        sysusers: super::sysusers::Sysusers::from_treefile(
            tf.other.get("sysusers").and_then(|v| v.as_str()),
        )?,
    };
    let report = install::install(tree, pkgs, &iopts)?;
    for f in super::bootupd::generate_update_metadata(tree, pkgs)? {
        eprintln!("Wrote bootupd's update metadata /{f}");
    }
    let overlays = overlay_dirs(wd)?;
    let (config_overlays, rootfs_override) = overlays.split_at(overlays.len() - 1);
    overlay::apply(tree, config_overlays)?;
    apply_ostree_layers(wd, tf, tree)?;
    overlay::apply(tree, rootfs_override)?;

    Ok(report)
}

/// `ostree-layers` then `ostree-override-layers`: refs in the working
/// directory's repository checked out over the tree (a file the tree has is
/// an error for the first, replaced for the second). `overlay/NAME` entries
/// whose `overlay.d/NAME` exists in the config are that directory, which
/// coreos-assembler commits as ref `overlay/NAME` and which is applied with
/// the other overlay.d directories.
fn apply_ostree_layers(
    wd: &Workdir,
    tf: &crate::config::treefile::Treefile,
    tree: &Path,
) -> Result<()> {
    use crate::ostree::deploy::{LayerConflict, checkout_layer};
    let list = |key: &str| -> Vec<String> {
        tf.other
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut repo = None;
    for (key, conflict) in [
        ("ostree-layers", LayerConflict::Error),
        ("ostree-override-layers", LayerConflict::Override),
    ] {
        for layer in list(key) {
            if let Some(name) = layer.strip_prefix("overlay/")
                && !name.is_empty()
                && !name.contains('/')
                && wd.config_dir().join("overlay.d").join(name).is_dir()
            {
                continue;
            }
            if repo.is_none() {
                repo = Some(crate::ostree::Repo::open(&wd.repo_dir()).with_context(|| {
                    format!("{key}: {layer} is not an overlay.d directory, and the repository holding refs cannot be opened")
                })?);
            }
            let r = repo.as_ref().expect("opened above");
            let commit = r.resolve_ref(&layer)?.with_context(|| {
                format!(
                    "treefile key {key}: layer {layer:?} is neither overlay.d/{} of the config nor a ref in {}",
                    layer.trim_start_matches("overlay/"),
                    wd.repo_dir().display()
                )
            })?;
            let n = checkout_layer(r, &commit, tree, conflict)
                .with_context(|| format!("treefile key {key}: applying layer {layer}"))?;
            eprintln!("Applied layer {layer} ({n} files)");
        }
    }
    Ok(())
}

/// The previous build's `/usr/lib/passwd` and `/usr/lib/group` to put in
/// place before the scriptlets, unless the treefile's `preserve-passwd`
/// (default true) is false.
pub fn previous_ids(
    tf: &Treefile,
    passwd: Option<String>,
    group: Option<String>,
) -> Option<(String, String)> {
    let preserve = tf.other.get("preserve-passwd").and_then(|v| v.as_bool()) != Some(false);
    if preserve { passwd.zip(group) } else { None }
}

/// The treefile's `install-langs` (`None`: every language).
pub(crate) fn install_langs(tf: &Treefile) -> Option<Vec<String>> {
    tf.other
        .get("install-langs")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preserve_passwd_decides_whether_previous_ids_carry_over() {
        let d = tempfile::tempdir().unwrap();
        let load = |text: &str| {
            let p = d.path().join("m.yaml");
            std::fs::write(&p, text).unwrap();
            crate::config::treefile::load(&p, "x86_64").unwrap()
        };
        let ids = || (Some("p".to_string()), Some("g".to_string()));
        let tf = load("ref: r\n");
        assert_eq!(
            previous_ids(&tf, ids().0, ids().1),
            Some(("p".into(), "g".into()))
        );
        let tf = load("ref: r\npreserve-passwd: false\n");
        assert_eq!(previous_ids(&tf, ids().0, ids().1), None);
        let tf = load("ref: r\ncontainer: true\n");
        assert_eq!(
            previous_ids(&tf, ids().0, ids().1),
            None,
            "container: true implies it"
        );
        assert_eq!(previous_ids(&load("ref: r\n"), None, ids().1), None);
    }
}
