//! Shared helpers for the solver tests: generated repositories read back
//! into `LoadedRepo` values, and dnf as the oracle.

#![allow(dead_code)]

pub mod random_repo;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use cosa::rpm::fixture::{PkgSpec, RepoCompression, make_repo};
use cosa::rpm::repodata::LoadedRepo;
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

/// Read an .rpm file's header into a `PackageMeta`.
pub fn package_meta(path: &Path, repo: &str) -> Result<PackageMeta> {
    let m =
        rpm::PackageMetadata::open(path).with_context(|| format!("reading {}", path.display()))?;
    let deps = |v: Result<Vec<rpm::Dependency>, rpm::Error>| -> Result<Vec<Dep>> {
        Ok(v?.iter().map(dep).collect())
    };
    Ok(PackageMeta {
        name: m.get_name()?.to_string(),
        epoch: m.get_epoch().unwrap_or(0),
        version: m.get_version()?.to_string(),
        release: m.get_release()?.to_string(),
        arch: m.get_arch()?.to_string(),
        checksum_type: "sha256".into(),
        checksum: String::new(),
        location: path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into(),
        location_base: None,
        size_package: std::fs::metadata(path)?.len(),
        size_installed: 0,
        provides: deps(m.get_provides())?,
        requires: deps(m.get_requires())?,
        conflicts: deps(m.get_conflicts())?,
        obsoletes: deps(m.get_obsoletes())?,
        recommends: deps(m.get_recommends())?,
        suggests: deps(m.get_suggests())?,
        supplements: deps(m.get_supplements())?,
        enhances: deps(m.get_enhances())?,
        files: m
            .get_file_paths()?
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        repo: repo.to_string(),
    })
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
            let paths = make_repo(&rdir, &pkgs, RepoCompression::Gz)?;
            let packages = paths
                .iter()
                .map(|p| package_meta(p, r.id))
                .collect::<Result<Vec<_>>>()?;
            let repo = LoadedRepo {
                id: r.id.to_string(),
                priority: r.priority,
                baseurls: vec![url::Url::from_directory_path(&rdir).expect("absolute path")],
                gpgcheck: false,
                gpgkeys: vec![],
                revision: None,
                timestamp: None,
                packages,
            };
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
pub fn dnf_install(
    dir: &Path,
    repos: &[(LoadedRepo, PathBuf)],
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
    for (r, path) in repos {
        cmd.arg(format!("--repofrompath={},file://{}", r.id, path.display()));
        cmd.arg(format!("--setopt={}.priority={}", r.id, r.priority));
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
