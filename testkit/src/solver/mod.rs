//! Shared helpers for the solver tests: generated repositories read back
//! into `LoadedRepo` values, and dnf as the oracle.

#![allow(dead_code)]

pub mod random_repo;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fixture::{PkgSpec, RepoCompression, make_repo};
use anyhow::{Context, Result, bail};
use cosa::config::repofile::RepoDef;
use cosa::rpm::download::Downloader;
use cosa::rpm::repodata::{self, LoadedRepo};
use cosa::rpm::types::{Cmp, Dep, Evr, PackageMeta};

fn dep(d: &rpm::Dependency) -> Dep {
    let f = d.flags.bits();
    let cmp = Cmp((f & 0b1110) as u8);
    Dep {
        name: d.name.clone(),
        cmp,
        evr: (cmp != Cmp::ANY && !d.version.is_empty()).then(|| Evr::parse(&d.version)),
        pre: d.flags.contains(rpm::DependencyFlags::SCRIPT_PRE),
    }
}

/// Load a generated repository's repodata as compose does (`repodata::load`
/// over a `file://` baseurl), so the pool sees packages in primary.xml order.
pub fn load_repo(id: &str, priority: u32, path: &Path, cache: &Path) -> Result<LoadedRepo> {
    let dl = Downloader::new(1)?;
    let mut def = RepoDef::new(id, &cache.join("test.repo"));
    def.baseurls = vec![
        url::Url::from_directory_path(path)
            .expect("absolute path")
            .to_string(),
    ];
    def.priority = priority;
    repodata::load(&def, cache, &dl)
}

/// One repository of a scenario.
pub struct RepoSpec {
    pub id: &'static str,
    pub priority: u32,
    pub pkgs: Vec<PkgSpec>,
}

/// Generate the repositories under `dir` and load them.
pub fn build_repos(dir: &Path, repos: &[RepoSpec]) -> Result<Vec<(LoadedRepo, PathBuf)>> {
    repos
        .iter()
        .map(|r| {
            let rdir = dir.join(r.id);
            let pkgs = r
                .pkgs
                .iter()
                .map(|p| p.clone().compression("none"))
                .collect::<Vec<_>>();
            make_repo(&rdir, &pkgs, RepoCompression::Gz)?;
            let repo = load_repo(r.id, r.priority, &rdir, &dir.join("cosa-cache"))?;
            Ok((repo, rdir))
        })
        .collect()
}

/// `name-epoch:version-release.arch`, as `rpm -qa` prints with the query format below.
pub fn key(p: &PackageMeta) -> String {
    format!(
        "{}-{}:{}-{}.{}",
        p.name, p.epoch, p.version, p.release, p.arch
    )
}

/// Install `specs` with dnf into a scratch root (database only) and list
/// what got installed. `Err` carries dnf's output when it fails.
/// A repository as dnf is given it: id, priority, directory.
pub type DnfRepo = (String, u32, PathBuf);

/// The built repositories as dnf is given them.
pub fn dnf_repos(repos: &[(LoadedRepo, PathBuf)]) -> Vec<DnfRepo> {
    repos
        .iter()
        .map(|(r, p)| (r.id.clone(), r.priority, p.clone()))
        .collect()
}

pub fn dnf_install(
    dir: &Path,
    repos: &[DnfRepo],
    specs: &[impl AsRef<str>],
    weak: bool,
    exclude: &[impl AsRef<str>],
) -> Result<BTreeSet<String>> {
    let root = dir.join("root");
    let cache = dir.join("cache");
    let mut cmd = Command::new("dnf");
    cmd.arg(format!("--installroot={}", root.display()))
        .arg("--setopt=reposdir=/dev/null")
        .arg(format!("--setopt=cachedir={}", cache.display()))
        .arg(format!(
            "--setopt=install_weak_deps={}",
            if weak { "True" } else { "False" }
        ))
        // rpm-ostree's settings: no installonly packages (one kernel),
        // libdnf's defaults for best and obsoletes, spelled out so a host
        // dnf.conf cannot change them.
        .args([
            "--setopt=installonlypkgs=",
            "--setopt=best=False",
            "--setopt=obsoletes=True",
            "--setopt=multilib_policy=best",
            "--setopt=skip_if_unavailable=False",
        ])
        .args(["--setopt=tsflags=justdb", "--nogpgcheck", "--releasever=1"])
        .args(["--forcearch", "x86_64", "--disableplugin=*", "-q", "-y"]);
    for (id, priority, path) in repos {
        cmd.arg(format!("--repofrompath={id},file://{}", path.display()));
        cmd.arg(format!("--setopt={id}.priority={priority}"));
    }
    for e in exclude {
        cmd.arg(format!("--exclude={}", e.as_ref()));
    }
    cmd.arg("install").args(specs.iter().map(AsRef::as_ref));
    let out = cmd.output().context("running dnf")?;
    if !out.status.success() {
        bail!(
            "dnf failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let q = Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args([
            "-qa",
            "--qf",
            "%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\\n",
        ])
        .output()
        .context("running rpm -qa")?;
    if !q.status.success() {
        bail!("rpm -qa failed: {}", String::from_utf8_lossy(&q.stderr));
    }
    Ok(String::from_utf8_lossy(&q.stdout)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("gpg-pubkey"))
        .map(String::from)
        .collect())
}
