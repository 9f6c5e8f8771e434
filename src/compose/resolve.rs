//! From the config repo to a verified package set: load the treefile and its
//! repos, layer the lockfiles, add `overrides/rpm`, resolve, and fetch.
//! `cosa fetch` stops after this; `cosa compose rootfs` installs the result.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rayon::prelude::*;

use crate::config::repofile::{self, RepoDef};
use crate::config::treefile::{self, Treefile};
use crate::config::workdir::Workdir;
use crate::rpm::PackageMeta;
use crate::rpm::download::{self, Downloader};
use crate::rpm::lockfile::{self, Lockfile};
use crate::rpm::repodata::{self, LoadedRepo};
use crate::rpm::solver::{self, Request};

/// The id of the repository made from `overrides/rpm`.
pub const OVERRIDES_REPO: &str = "cosa-overrides";

/// A resolved compose: what to install, in install order.
pub struct Resolved {
    pub arch: String,
    pub treefile: Treefile,
    pub repos: Vec<LoadedRepo>,
    /// The layered lockfile in force, if any.
    pub lock: Option<Lockfile>,
    /// In install order.
    pub packages: Vec<PackageMeta>,
}

impl Resolved {
    /// The lockfile describing this set (for `--update-lockfile` and the generated one).
    pub fn lockfile(&self) -> Lockfile {
        let repos: Vec<LoadedRepo> = self
            .repos
            .iter()
            .filter(|r| r.id != OVERRIDES_REPO)
            .cloned()
            .collect();
        let pkgs: Vec<PackageMeta> = self
            .packages
            .iter()
            .filter(|p| p.repo != OVERRIDES_REPO)
            .cloned()
            .collect();
        Lockfile::from_resolved(&pkgs, &repos)
    }
}

/// Load the manifest for `arch` and the repo definitions it names.
fn load_config(wd: &Workdir, arch: &str) -> Result<(Treefile, Vec<RepoDef>)> {
    let manifest = wd.manifest()?;
    let tf = treefile::load(&manifest, arch)?;
    let repovars: BTreeMap<String, String> = match tf.other.get("repovars") {
        Some(v) => serde_json::from_value(v.clone()).with_context(|| {
            format!("{}: repovars must map names to strings", manifest.display())
        })?,
        None => BTreeMap::new(),
    };
    let vars = repofile::repo_vars(arch, tf.releasever.as_deref(), &repovars, std::env::vars())?;
    let dir = manifest
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| wd.config_dir());
    let defs = repofile::load_repo_dir(&dir, &vars)?;
    let mut seen = std::collections::BTreeSet::new();
    let wanted: Vec<&String> = tf
        .repos
        .iter()
        .chain(tf.lockfile_repos.iter())
        .filter(|id| seen.insert(id.as_str()))
        .collect();
    let mut chosen = Vec::new();
    for id in wanted {
        match defs.iter().find(|d| &d.id == id) {
            Some(d) => {
                if !d.enabled {
                    // rpm-ostree enables every repo the manifest names
                    // (enable_one_repo in rpmostree-core.cxx), whatever
                    // the file says; say so, since dnf would not use it.
                    eprintln!(
                        "Note: repo {id} has enabled=0 in {}, but the manifest names it, so it \
                         is used (as rpm-ostree does)",
                        d.source.display()
                    );
                }
                chosen.push(d.clone())
            }
            None => bail!(
                "{} names repo {id:?}, but no .repo file in {} defines it (defined: {})",
                manifest.display(),
                dir.display(),
                if defs.is_empty() {
                    "none".to_string()
                } else {
                    defs.iter()
                        .map(|d| d.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        }
    }
    if chosen.is_empty() {
        bail!("{} names no repos: add a `repos:` list", manifest.display());
    }
    Ok((tf, chosen))
}

/// Resolve the manifest (through the lockfile when there is one).
pub fn resolve(wd: &Workdir, arch: &str, strict: bool, dl: &Downloader) -> Result<Resolved> {
    let lock = lockfile::load_layered(&wd.config_dir(), arch)?;
    resolve_locked(wd, arch, strict, dl, lock)
}

/// Resolve the manifest through `lock` instead of the config's lockfiles
/// (a rebuild takes the build's generated lockfile).
pub fn resolve_locked(
    wd: &Workdir,
    arch: &str,
    strict: bool,
    dl: &Downloader,
    lock: Option<Lockfile>,
) -> Result<Resolved> {
    let (tf, defs) = load_config(wd, arch)?;
    let t = Instant::now();
    let cache = wd.cache_dir();
    let mut repos = load_repos(&defs, &cache, dl)?;
    let npkgs: usize = repos.iter().map(|r| r.packages.len()).sum();
    eprintln!(
        "Loaded {} repo(s) ({}) with {npkgs} packages in {:.1}s",
        repos.len(),
        repos
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        t.elapsed().as_secs_f64()
    );

    let mut pins = match &lock {
        Some(l) => l.pins()?,
        None => BTreeMap::new(),
    };
    if has_rpms(&wd.overrides_rpm())? {
        let ov = repodata::load_local_rpms(OVERRIDES_REPO, &wd.overrides_rpm(), 0)?;
        // As in coreos-assembler: override RPMs win over the lockfile.
        for p in &ov.packages {
            pins.remove(&p.name);
        }
        eprintln!("Using {} package(s) from overrides/rpm", ov.packages.len());
        repos.push(ov);
    }
    if lock.is_some() {
        eprintln!("Using lockfile(s): {} package(s) pinned", pins.len());
    }

    let req = Request {
        packages: tf.packages.clone(),
        repo_packages: tf
            .repo_packages
            .iter()
            .map(|rp| (rp.repo.clone(), rp.packages.clone()))
            .collect(),
        exclude: tf.exclude_packages.clone(),
        recommends: tf.recommends,
        basearch: arch.to_string(),
        pins,
    };
    let t = Instant::now();
    let set = solver::solve(&repos, &req).context("resolving the manifest's packages")?;
    if strict {
        let only_repo: Vec<PackageMeta> = set
            .iter()
            .filter(|p| p.repo != OVERRIDES_REPO)
            .cloned()
            .collect();
        lockfile::check_strict(lock.as_ref(), &only_repo)?;
    }
    let order = solver::install_order(&set);
    let packages: Vec<PackageMeta> = order.into_iter().map(|i| set[i].clone()).collect();
    eprintln!(
        "Resolved {} packages in {:.2}s",
        packages.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(Resolved {
        arch: arch.to_string(),
        treefile: tf,
        repos,
        lock,
        packages,
    })
}

/// Load every repo in parallel. One that fails is left out with a warning
/// when it has `skip_if_unavailable=1` (dnf: "disable the repository that
/// couldn't be synchronized for any reason"), else it fails the build.
fn load_repos(
    defs: &[RepoDef],
    cache: &std::path::Path,
    dl: &Downloader,
) -> Result<Vec<LoadedRepo>> {
    let results: Vec<Result<LoadedRepo>> = defs
        .par_iter()
        .map(|d| repodata::load(d, cache, dl))
        .collect();
    let mut repos = Vec::new();
    for (d, r) in defs.iter().zip(results) {
        match r {
            Ok(r) => repos.push(r),
            Err(e) if d.skip_if_unavailable => tracing::warn!(
                "skipping repo {} (skip_if_unavailable=1 in {}): {e:#}",
                d.id,
                d.source.display()
            ),
            Err(e) => {
                return Err(e.context(format!(
                    "repo {} is required (skip_if_unavailable=0, dnf's default); set \
                     skip_if_unavailable=1 in {} to build without it",
                    d.id,
                    d.source.display()
                )));
            }
        }
    }
    if repos.is_empty() {
        bail!("no repo could be loaded (every one was skipped as unavailable)");
    }
    Ok(repos)
}

fn has_rpms(dir: &std::path::Path) -> Result<bool> {
    if !dir.is_dir() {
        return Ok(false);
    }
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .any(|e| e.path().extension().is_some_and(|x| x == "rpm")))
}

/// Bring every resolved package into the cache; returns (package, path) in install order.
pub fn fetch(wd: &Workdir, dl: &Downloader, r: &Resolved) -> Result<Vec<(PackageMeta, PathBuf)>> {
    let paths = download::fetch_packages(dl, &wd.cache_dir(), &r.repos, &r.packages)?;
    Ok(r.packages.iter().cloned().zip(paths).collect())
}
