//! Our repodata, loaded into a libsolv pool as dnf loads it: repos in order
//! with dnf's priority mapping, packages in primary.xml order, dependencies
//! as `repo_rpmmd` builds them (pre-requires behind the marker, a
//! self-provide last, rich dependencies parsed by libsolv), file provides
//! for every path some dependency names (`pool_addfileprovides`), and
//! excludes, lockfile pins and repo-packages as not-considered packages.

use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashMap;

use anyhow::{Context, Result, bail};

use super::libsolv::job_install_one_of;
use super::libsolv::{self, DepKind, Id, Pool};
use super::subject::{self, Table};
use super::{Pin, Request};
use crate::rpm::repodata::{self, LoadedRepo};
use crate::rpm::types::{Cmp, Dep, Evr, PackageMeta};

/// The pool and what its solvable ids stand for.
pub struct Loaded<'a> {
    pub pool: Pool,
    /// By solvable id - first id: the package.
    pub pkgs: Vec<&'a PackageMeta>,
    pub first: Id,
    /// Why a package is not considered (by index into `pkgs`).
    pub why_not: Vec<Option<String>>,
}

impl<'a> Loaded<'a> {
    pub fn pkg(&self, id: Id) -> &'a PackageMeta {
        self.pkgs[(id - self.first) as usize]
    }
}

/// libsolv's evr string for `[E:]V[-R]`: a zero epoch is dropped, except
/// when the version itself looks like `N:…` (repo_rpmmd's rule).
fn evr_string(e: &Evr) -> String {
    let mut s = String::new();
    write_evr(&mut s, e.epoch, &e.version, e.release.as_deref());
    s
}

fn write_evr(out: &mut String, epoch: u32, version: &str, release: Option<&str>) {
    let digits = version.bytes().take_while(u8::is_ascii_digit).count();
    let ambiguous = digits > 0 && version.as_bytes().get(digits) == Some(&b':');
    if epoch != 0 || ambiguous {
        out.push_str(&epoch.to_string());
        out.push(':');
    }
    out.push_str(version);
    if let Some(r) = release {
        out.push('-');
        out.push_str(r);
    }
}

pub(super) fn dep_id(pool: &mut Pool, d: &Dep) -> Id {
    if d.name.starts_with('(') && d.cmp == Cmp::ANY {
        return pool.rich(&d.name);
    }
    let name = pool.str(&d.name);
    match &d.evr {
        Some(evr) if d.cmp != Cmp::ANY => {
            let (gt, eq, lt) = libsolv::rel_flags();
            let mut flags = 0;
            if d.cmp.has(Cmp::GREATER) {
                flags |= gt;
            }
            if d.cmp.has(Cmp::EQUAL) {
                flags |= eq;
            }
            if d.cmp.has(Cmp::LESS) {
                flags |= lt;
            }
            let evr = pool.str(&evr_string(evr));
            pool.rel(name, evr, flags)
        }
        _ => name,
    }
}

fn add_package(pool: &mut Pool, repo: libsolv::Repo, p: &PackageMeta) -> Id {
    let name = pool.str(&p.name);
    let evr = pool.str(&evr_string(&p.evr()));
    let arch = pool.str(&p.arch);
    let id = pool.add_solvable(repo, name, evr, arch);
    let lists: [(DepKind, &Vec<Dep>); 7] = [
        (DepKind::Provides, &p.provides),
        (DepKind::Conflicts, &p.conflicts),
        (DepKind::Obsoletes, &p.obsoletes),
        (DepKind::Recommends, &p.recommends),
        (DepKind::Suggests, &p.suggests),
        (DepKind::Supplements, &p.supplements),
        (DepKind::Enhances, &p.enhances),
    ];
    for (kind, deps) in lists {
        for d in deps {
            let dep = dep_id(pool, d);
            if dep != 0 {
                pool.add_dep(id, kind, dep, 0);
            }
        }
    }
    let marker = libsolv::prereq_marker();
    for d in &p.requires {
        // createrepo_c leaves rpmlib() out of primary.xml; headers read
        // directly (overrides/rpm) still carry them, and nothing provides them.
        if d.name.starts_with("rpmlib(") {
            continue;
        }
        let dep = dep_id(pool, d);
        if dep != 0 {
            pool.add_dep(
                id,
                DepKind::Requires,
                dep,
                if d.pre { marker } else { -marker },
            );
        }
    }
    if p.arch != "src" && p.arch != "nosrc" {
        let (_, eq, _) = libsolv::rel_flags();
        let self_provide = pool.rel(name, evr, eq);
        pool.add_dep(id, DepKind::Provides, self_provide, 0);
    }
    id
}

fn pin_matches(p: &PackageMeta, pin: &Pin) -> bool {
    let evr_ok = p.evr().compare(&pin.evr) == std::cmp::Ordering::Equal
        && pin.evr.release.as_ref().is_none_or(|r| *r == p.release);
    let arch_ok = pin.arch.as_ref().is_none_or(|a| *a == p.arch);
    let digest_ok = pin.digest.as_ref().is_none_or(|d| match d.split_once(':') {
        Some((kind, hex)) => p.checksum_type == kind && p.checksum.eq_ignore_ascii_case(hex),
        None => p.checksum.eq_ignore_ascii_case(d),
    });
    evr_ok && arch_ok && digest_ok
}

fn pin_label(name: &str, pin: &Pin) -> String {
    let mut entry = format!("{name} {}", pin.evr);
    if let Some(a) = &pin.arch {
        entry.push_str(&format!(".{a}"));
    }
    if let Some(d) = &pin.digest {
        entry.push_str(&format!(" ({d})"));
    }
    entry
}

/// Stands in for solvables of a repo's metadata that cosa does not offer
/// (source packages, names the repo's exclude/includepkgs drop); they are
/// never considered.
static NOT_OFFERED: std::sync::LazyLock<PackageMeta> =
    std::sync::LazyLock::new(PackageMeta::default);

/// Build the pool for `req` over `repos`.
///
/// Repos enter the pool as dnf loads them: by priority, then cost, then in
/// the order given (dnf's `RepoDict` sorts its repos so, stably); libsolv
/// gets `priority = -priority` and, as libdnf sets it, `subpriority = -cost`.
/// The order decides which rule libsolv meets first, so it shows in the
/// problems it reports (and, on ties between repos, in what it picks).
pub fn load<'a>(repos: &'a [LoadedRepo], req: &Request) -> Result<Loaded<'a>> {
    let mut pool = Pool::new(&req.basearch)?;
    let mut pkgs: Vec<&PackageMeta> = Vec::new();
    let mut repo_dropped: Vec<usize> = Vec::new();
    let mut first = None;
    let mut in_dnf_order: Vec<&LoadedRepo> = repos.iter().collect();
    in_dnf_order.sort_by_key(|r| (r.priority, r.cost));
    for r in in_dnf_order {
        let prio = -i32::try_from(r.priority).unwrap_or(i32::MAX);
        let cost = -i32::try_from(r.cost).unwrap_or(i32::MAX);
        let repo = pool.add_repo(&r.id, prio, cost)?;
        let ids = match &r.metadata {
            Some(md) => {
                let ids = pool.add_rpmmd(
                    repo,
                    (&md.repomd, repodata::codec_name(&md.repomd)?),
                    (&md.primary, repodata::codec_name(&md.primary)?),
                    &md.solv_cache,
                )?;
                let start = pkgs.len();
                match_solvables(&pool, ids.clone(), r, &mut pkgs)
                    .with_context(|| format!("loading repo {} into libsolv", r.id))?;
                repo_dropped
                    .extend((start..pkgs.len()).filter(|&i| std::ptr::eq(pkgs[i], &*NOT_OFFERED)));
                ids
            }
            None => {
                let mut ids = 0..0;
                for p in &r.packages {
                    let id = add_package(&mut pool, repo, p);
                    ids = if ids.is_empty() {
                        id..id + 1
                    } else {
                        ids.start..id + 1
                    };
                    pkgs.push(p);
                }
                ids
            }
        };
        // Solvable ids run on from repo to repo: id - first indexes `pkgs`.
        if !ids.is_empty() && ids.end - *first.get_or_insert(ids.start) != pkgs.len() as Id {
            bail!("libsolv gave repo {} solvable ids out of order", r.id);
        }
    }
    let first = first.unwrap_or(0);
    let file_deps = add_file_provides(&mut pool, &pkgs, first);

    let mut why_not: Vec<Option<String>> = vec![None; pkgs.len()];
    for i in repo_dropped {
        why_not[i] = Some(
            "not offered by its repo (source package, or the repo's exclude/includepkgs)".into(),
        );
    }
    exclude(&mut why_not, &pkgs, first, req);
    pin(&mut why_not, &pkgs, req)?;
    repo_packages(&mut why_not, &pkgs, req);
    let excluded: Vec<Id> = (0..pkgs.len())
        .filter(|&i| why_not[i].is_some())
        .map(|i| first + i as Id)
        .collect();
    pool.finish(&excluded, &file_deps);
    Ok(Loaded {
        pool,
        pkgs,
        first,
        why_not,
    })
}

/// Pair the solvables libsolv read from a repo's primary metadata with the
/// packages cosa read from it (the same file, in the same order; cosa's list
/// lacks source packages and names dropped by the repo's exclude and
/// includepkgs, which stand as [`NOT_OFFERED`]).
fn match_solvables<'a>(
    pool: &Pool,
    ids: std::ops::Range<Id>,
    r: &'a LoadedRepo,
    pkgs: &mut Vec<&'a PackageMeta>,
) -> Result<()> {
    let mut ours = r.packages.iter().peekable();
    let mut ours_evr = String::new();
    for id in ids {
        let (name, evr, arch) = pool.solvable_nea(id);
        let same = ours.peek().is_some_and(|p| {
            ours_evr.clear();
            write_evr(&mut ours_evr, p.epoch, &p.version, Some(&p.release));
            p.name == name && p.arch == arch && ours_evr == evr
        });
        match ours.peek() {
            Some(_) if same => {
                pkgs.push(ours.next().expect("peeked"));
            }
            _ => pkgs.push(&NOT_OFFERED),
        }
    }
    if let Some(p) = ours.next() {
        bail!(
            "{} is in cosa's reading of the primary metadata but not in libsolv's",
            p.nevra()
        );
    }
    Ok(())
}

/// `pool_addfileprovides`: a package provides each of its files that some
/// dependency names. Returns those paths (see [`Pool::finish`]).
fn add_file_provides(pool: &mut Pool, pkgs: &[&PackageMeta], first: Id) -> Vec<Id> {
    let file_deps = pool.file_deps();
    let wanted: FxHashMap<String, Id> =
        file_deps.iter().map(|&id| (pool.dep_str(id), id)).collect();
    if wanted.is_empty() {
        return file_deps;
    }
    let marker = libsolv::file_marker();
    for (i, p) in pkgs.iter().enumerate() {
        for f in &p.files {
            if let Some(&id) = wanted.get(f) {
                pool.add_dep(first + i as Id, DepKind::Provides, id, marker);
            }
        }
    }
    file_deps
}

/// dnf's excludes: each pattern selects packages as `dnf --exclude` does
/// (NEVRA forms only, no provides or files), from every package loaded.
fn exclude(why_not: &mut [Option<String>], pkgs: &[&PackageMeta], first: Id, req: &Request) {
    let all = vec![None; pkgs.len()];
    let table = Table::new(pkgs, first, &all);
    for pattern in &req.exclude {
        for id in subject::nevra_query(&table, pattern)
            .map(|(ids, _)| ids)
            .unwrap_or_default()
        {
            let i = (id - first) as usize;
            why_not[i].get_or_insert_with(|| format!("it matches the exclude pattern {pattern:?}"));
        }
    }
}

/// Lockfile pins: the other packages of a locked name are not considered.
fn pin(why_not: &mut [Option<String>], pkgs: &[&PackageMeta], req: &Request) -> Result<()> {
    for (name, pin) in &req.pins {
        let mut found = false;
        for (i, p) in pkgs.iter().enumerate() {
            if p.name != *name || why_not[i].is_some() {
                continue;
            }
            if pin_matches(p, pin) {
                found = true;
            } else {
                why_not[i] = Some(format!("the lockfile pins {name} to {}", pin.evr));
            }
        }
        if !found {
            bail!(
                "lockfile entry {}: no package in the enabled repositories matches it",
                pin_label(name, pin)
            );
        }
    }
    Ok(())
}

/// rpm-ostree's `repo-packages`: a name requested from one repo comes only
/// from that repo.
fn repo_packages(why_not: &mut [Option<String>], pkgs: &[&PackageMeta], req: &Request) {
    let names: HashSet<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
    let mut repo_of: HashMap<String, &str> = HashMap::new();
    for (repo, specs) in &req.repo_packages {
        for d in specs.iter().filter_map(|s| Dep::parse(s)) {
            if names.contains(d.name.as_str()) {
                repo_of.insert(d.name, repo.as_str());
            }
        }
    }
    for (i, p) in pkgs.iter().enumerate() {
        if let Some(repo) = repo_of.get(p.name.as_str())
            && p.repo != *repo
            && why_not[i].is_none()
        {
            why_not[i] = Some(format!("{} is requested from repo {repo}", p.name));
        }
    }
}

/// The solver jobs for a request, and which packages each spec selected.
pub struct Jobs {
    /// (how, what) pairs for libsolv.
    pub ids: Vec<Id>,
    /// Each spec with the packages it may install.
    pub specs: Vec<(String, Vec<Id>)>,
}

/// The install jobs of `req`: rpm-ostree's `repo-packages` first (the best
/// match within that repo), then the manifest's packages as `dnf install`
/// selects them. Every spec that matches nothing is named in one error.
pub fn install_jobs(loaded: &mut Loaded, req: &Request) -> Result<Jobs> {
    let Loaded {
        pool,
        pkgs,
        first,
        why_not,
    } = loaded;
    let table = Table::new(pkgs, *first, why_not);
    let mut jobs = Jobs {
        ids: Vec::new(),
        specs: Vec::new(),
    };
    let mut push = |pool: &mut Pool, spec: &str, set: Vec<Id>| {
        let what = pool.one_of(&set);
        jobs.ids.extend([job_install_one_of(), what]);
        jobs.specs.push((spec.to_string(), set));
    };
    for (repo, specs) in &req.repo_packages {
        for spec in specs {
            let ids: Vec<Id> = subject::best_solution(pool, &table, spec)
                .map(|s| s.ids)
                .unwrap_or_default()
                .into_iter()
                .filter(|&id| table.pkg(id).repo == *repo)
                .collect();
            if ids.is_empty() {
                bail!(
                    "repo-packages: no package in repo {repo} matches {spec:?}{}",
                    hidden_hint(&table, spec)
                );
            }
            push(pool, spec, ids);
        }
    }
    let mut missing = Vec::new();
    for spec in &req.packages {
        match subject::best_solution(pool, &table, spec) {
            Some(sol) => {
                for set in subject::install_sets(pool, &table, spec, &sol) {
                    push(pool, spec, set);
                }
            }
            None => missing.push(format!("{spec:?}{}", hidden_hint(&table, spec))),
        }
    }
    if !missing.is_empty() {
        bail!(
            "no package in the enabled repositories matches {} (as a name, NEVRA, provide or file):\n  {}",
            if missing.len() == 1 {
                "this requested package"
            } else {
                "these requested packages"
            },
            missing.join("\n  ")
        );
    }
    Ok(jobs)
}

/// Why packages matching `spec` are hidden, if some are (excluded, pinned
/// to another version, or requested from another repo).
fn hidden_hint(table: &Table, spec: &str) -> String {
    let everything = vec![None; table.pkgs.len()];
    let all = Table::new(table.pkgs, table.first, &everything);
    let Some((ids, _)) = subject::nevra_query(&all, spec) else {
        return String::new();
    };
    let reasons: Vec<String> = ids
        .iter()
        .filter_map(|&id| {
            let i = (id - table.first) as usize;
            table.considered[i]
                .as_ref()
                .map(|why| format!("{} is not used: {why}", table.pkgs[i].nevra()))
        })
        .collect();
    if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", reasons.join("; "))
    }
}

/// libsolv's problems, each with the requested specs it involves.
pub fn describe_problems(loaded: &Loaded, jobs: &Jobs, problems: &str) -> String {
    let mut out = String::from("the requested packages cannot be installed together:");
    for (n, problem) in problems.split("\n\n").enumerate() {
        let involved: Vec<&str> = jobs
            .specs
            .iter()
            .filter(|(_, ids)| {
                ids.iter()
                    .any(|&id| problem.contains(&loaded.pool.solvable_str(id)))
            })
            .map(|(spec, _)| spec.as_str())
            .collect();
        out.push_str(&format!("\n Problem {}", n + 1));
        if !involved.is_empty() {
            out.push_str(&format!(" (requested: {})", involved.join(", ")));
        }
        out.push(':');
        // Each reason once, in libsolv's order (as dnf prints them).
        let mut seen = HashSet::new();
        for line in problem.lines().filter(|l| !l.is_empty() && seen.insert(*l)) {
            out.push_str(&format!("\n  - {line}"));
        }
    }
    out
}
