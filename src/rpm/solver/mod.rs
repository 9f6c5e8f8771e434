//! Dependency resolution with libsolv, the solver behind dnf and rpm-ostree,
//! set up as they set it up: RPM version semantics, repo priorities and
//! costs, file provides, rich dependencies, obsoletes, conflicts, weak
//! dependencies, multilib arch policy, excludes and lockfile pins. The spec
//! rules (what `foo`, `foo.i686`, `foo >= 2`, `/usr/bin/foo` or `foo*`
//! select) follow dnf's subject rules (`subject.rs`); every choice between
//! candidates is libsolv's own policy, so cosa installs what dnf installs.
//! Repositories enter the pool through libsolv's own parsers and solv round
//! trip, as libdnf loads them (`pool.rs`), and the chosen set then passes
//! rpm's transaction check, as in dnf.
//!
//! Departure from rpm-ostree, kept on purpose: rpm-ostree's
//! `dnf_context_install` selects a bare name without the packages that
//! obsolete it, dnf's `install` with them. cosa follows dnf (asking for a
//! name another package replaces installs the replacement).

mod libsolv;
mod order;
mod pool;
pub mod richdep;
mod subject;

use std::collections::BTreeMap;

use anyhow::{Result, bail};

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
    /// Names, provides, file paths, NEVRA forms, globs or quoted versioned
    /// specs (`podman >= 4.1`), as `dnf install` takes them.
    pub packages: Vec<String>,
    /// (repo id, specs): these come only from that repo.
    pub repo_packages: Vec<(String, Vec<String>)>,
    /// NEVRA patterns (names, globs) never installed, as `dnf --exclude`.
    pub exclude: Vec<String>,
    /// Install weak dependencies (Recommends, Supplements), as dnf's
    /// `install_weak_deps`.
    pub recommends: bool,
    pub basearch: String,
    /// Locked names take exactly this EVR (and digest when given).
    pub pins: BTreeMap<String, Pin>,
}

/// Resolve `req` against `repos`. Returns the package set, sorted by name.
///
/// The answer is dnf's for `dnf install` of the same specs with the same
/// repositories into an empty root, with `best=False`, `obsoletes=True`,
/// `multilib_policy=best` and no installonly packages (rpm-ostree composes
/// one kernel). Errors name the spec that matches nothing, or libsolv's
/// problems (the package and the capability nothing provides).
pub fn solve(repos: &[LoadedRepo], req: &Request) -> Result<Vec<PackageMeta>> {
    let mut loaded = pool::load(repos, req)?;
    let jobs = pool::install_jobs(&mut loaded, req)?;
    let ids = match loaded.pool.solve(&jobs.ids, req.recommends) {
        Ok(ids) => ids,
        Err(problems) => bail!("{}", pool::describe_problems(&loaded, &jobs, &problems)),
    };
    // rpm's transaction check, which dnf runs after libsolv.
    let unmet: Vec<String> = loaded
        .pool
        .unmet(&ids)
        .into_iter()
        .map(|(p, dep)| {
            format!(
                "{} is needed by {}",
                loaded.pool.dep_str(dep),
                loaded.pool.solvable_str(p)
            )
        })
        .collect();
    if !unmet.is_empty() {
        bail!(
            "the packages libsolv chose for {} do not hold together (rpm's transaction \
             check, which dnf runs after libsolv, fails the same way):\n  {}",
            requested(req),
            unmet.join("\n  ")
        );
    }
    let mut set: Vec<PackageMeta> = ids.into_iter().map(|id| loaded.pkg(id).clone()).collect();
    set.sort_by(|a, b| {
        (a.name.as_str(), a.arch.as_str())
            .cmp(&(b.name.as_str(), b.arch.as_str()))
            .then_with(|| a.evr().compare(&b.evr()))
    });
    Ok(set)
}

/// The request's specs, for messages.
fn requested(req: &Request) -> String {
    let specs: Vec<&str> = req
        .packages
        .iter()
        .chain(req.repo_packages.iter().flat_map(|(_, v)| v))
        .map(String::as_str)
        .collect();
    specs.join(", ")
}

/// An order to install `pkgs` in: everything a package requires (pre-requires
/// first) comes before it where the graph allows; cycles are broken stably.
/// Independent packages come in name order.
pub fn install_order(pkgs: &[PackageMeta]) -> Vec<usize> {
    order::install_order(pkgs)
}
