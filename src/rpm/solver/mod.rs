//! Dependency resolution with resolvo and RPM rules: versioned and file
//! provides, rich dependencies, conflicts, obsoletes, weak dependencies,
//! arch compatibility, installonly packages, repo priorities, excludes and
//! lockfile pins.

mod order;
mod provider;
pub mod richdep;

use std::collections::BTreeMap;

use anyhow::Result;

use super::repodata::LoadedRepo;
use super::types::{Evr, PackageMeta};

/// A lockfile pin for one package name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub evr: Evr,
    /// When known (lockfile `evra`).
    pub arch: Option<String>,
    /// `sha256:<hex>` when the lockfile gives one.
    pub digest: Option<String>,
}

/// What to resolve.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Names, provides, file paths or quoted versioned specs (`podman >= 4.1`).
    pub packages: Vec<String>,
    /// (repo id, specs): these come only from that repo.
    pub repo_packages: Vec<(String, Vec<String>)>,
    /// Package name globs never installed.
    pub exclude: Vec<String>,
    /// Install Recommends (and Supplements of installed packages).
    pub recommends: bool,
    pub basearch: String,
    /// Locked names take exactly this EVR (and digest when given).
    pub pins: BTreeMap<String, Pin>,
}

/// Resolve `req` against `repos`. Returns the package set, sorted by name.
///
/// Preferences follow dnf/libsolv: for each package name only the repos with
/// the best (lowest) priority carrying it count; newest EVR first, then
/// noarch before the base arch (as dnf picks), then the better repo priority. When a dependency
/// is provided by packages of several names, a requested name wins, then a
/// name not obsoleted by another provider, then the alphabetically first name
/// (dnf does not prefer the package named like the dependency).
/// With `recommends`, Recommends of installed packages are added when they
/// can be, and so are packages whose Supplements match the installed set.
pub fn solve(repos: &[LoadedRepo], req: &Request) -> Result<Vec<PackageMeta>> {
    provider::solve(repos, req)
}

/// An order to install `pkgs` in: everything a package requires (pre-requires
/// first) comes before it where the graph allows; cycles are broken stably.
/// Independent packages come in name order.
pub fn install_order(pkgs: &[PackageMeta]) -> Vec<usize> {
    order::install_order(pkgs)
}
