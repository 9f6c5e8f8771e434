//! What a package spec selects, as dnf's "subject" does (libdnf
//! `Query::filterSubject`, hawkey `Subject._get_best_selectors`):
//!
//! 1. and 2. The NEVRA forms, then the whole spec as a NEVRA glob
//!    ([`crate::rpm::nevra`]).
//! 3. Provides: `name`, `name OP evr`, a glob over provide names, or a rich
//!    dependency.
//! 4. File paths (`/…` or `*/…`), exact or glob, over every package's files.
//!
//! Only considered packages count (excludes and lockfile pins hide the rest),
//! and never source packages.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::libsolv::{Id, Pool};
use crate::rpm::nevra::{self, glob_match, matches};
pub use crate::rpm::nevra::{Nevra, is_glob};
use crate::rpm::types::{Dep, PackageMeta};

/// The loaded packages by solvable id, and which of them are considered.
pub struct Table<'t, 'a> {
    /// By solvable id - `first`.
    pub pkgs: &'t [&'a PackageMeta],
    pub first: Id,
    /// `Some(reason)`: the package is not considered.
    pub considered: &'t [Option<String>],
    /// Indexes into `pkgs` by package name, in id order; built on first use.
    by_name: OnceCell<FxHashMap<&'a str, Vec<usize>>>,
}

impl<'t, 'a> Table<'t, 'a> {
    pub fn new(pkgs: &'t [&'a PackageMeta], first: Id, considered: &'t [Option<String>]) -> Self {
        Table {
            pkgs,
            first,
            considered,
            by_name: OnceCell::new(),
        }
    }

    pub fn pkg(&self, id: Id) -> &'a PackageMeta {
        self.pkgs[(id - self.first) as usize]
    }

    /// Considered, non-source packages by id, in id order.
    fn base(&self) -> impl Iterator<Item = (Id, &'a PackageMeta)> + '_ {
        self.pkgs
            .iter()
            .enumerate()
            .filter(|(i, p)| self.considered[*i].is_none() && !is_source(p))
            .map(|(i, p)| (self.first + i as Id, *p))
    }

    /// [`Table::base`] narrowed to packages that may match `n`: those of its
    /// name when the name is not a glob.
    fn candidates<'s>(&'s self, n: &Nevra) -> Box<dyn Iterator<Item = (Id, &'a PackageMeta)> + 's> {
        if is_glob(&n.name) {
            return Box::new(self.base());
        }
        let index = self.by_name.get_or_init(|| {
            let mut m: FxHashMap<&'a str, Vec<usize>> = FxHashMap::default();
            m.reserve(self.pkgs.len());
            for (i, p) in self.pkgs.iter().enumerate() {
                m.entry(p.name.as_str()).or_default().push(i);
            }
            m
        });
        let found = index.get(n.name.as_str()).map_or(&[][..], Vec::as_slice);
        Box::new(
            found
                .iter()
                .filter(|&&i| self.considered[i].is_none() && !is_source(self.pkgs[i]))
                .map(|&i| (self.first + i as Id, self.pkgs[i])),
        )
    }
}

fn is_source(p: &PackageMeta) -> bool {
    p.arch == "src" || p.arch == "nosrc"
}

/// The NEVRA steps alone (dnf's `--exclude` and rpm-ostree's
/// `exclude-packages` match this way): the matching packages and the form
/// that matched (`None` for the whole-spec glob).
pub fn nevra_query(table: &Table, spec: &str) -> Option<(Vec<Id>, Option<Nevra>)> {
    nevra::query(spec, |n| match n {
        Some(n) => table.candidates(n),
        None => Box::new(table.base()),
    })
}

/// What matched a spec, and how.
pub struct Solution {
    pub ids: Vec<Id>,
    /// The NEVRA form, when the spec matched as one.
    pub nevra: Option<Nevra>,
}

/// dnf's best solution for `spec`: NEVRA forms, then provides, then files.
pub fn best_solution(pool: &mut Pool, table: &Table, spec: &str) -> Option<Solution> {
    if let Some((ids, nevra)) = nevra_query(table, spec) {
        return Some(Solution { ids, nevra });
    }
    let ids = provides_query(pool, table, spec);
    if !ids.is_empty() {
        return Some(Solution { ids, nevra: None });
    }
    if spec.starts_with('/') || spec.starts_with("*/") {
        let ids: Vec<Id> = table
            .base()
            .filter(|(_, p)| p.files.iter().any(|f| matches(spec, f)))
            .map(|(id, _)| id)
            .collect();
        if !ids.is_empty() {
            return Some(Solution { ids, nevra: None });
        }
    }
    None
}

/// Packages providing `spec` (`name`, `name OP evr`, a rich dependency, or
/// a glob over provide names with an optional version constraint).
fn provides_query(pool: &mut Pool, table: &Table, spec: &str) -> Vec<Id> {
    let Some(dep) = Dep::parse(spec) else {
        return Vec::new();
    };
    let mut deps: Vec<Dep> = Vec::new();
    if is_glob(&dep.name) && !dep.is_rich() {
        let mut names: Vec<&str> = table
            .base()
            .flat_map(|(_, p)| p.provides.iter().map(|d| d.name.as_str()))
            .filter(|n| glob_match(&dep.name, n))
            .collect();
        names.sort_unstable();
        names.dedup();
        deps.extend(names.into_iter().map(|n| Dep {
            name: n.to_string(),
            ..dep.clone()
        }));
    } else {
        deps.push(dep);
    }
    let mut ids: Vec<Id> = Vec::new();
    for d in &deps {
        let id = super::pool::dep_id(pool, d);
        if id != 0 {
            ids.extend(pool.whatprovides(id));
        }
    }
    ids.retain(|&id| !is_source(table.pkg(id)));
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The package sets dnf's `install SPEC` hands the solver, one "install
/// one of these" job each (dnf 4 with `multilib_policy=best` and
/// `obsoletes=True`):
/// - a glob spec gives one set per matched name;
/// - a spec whose arch is a glob gives one set per name and arch;
/// - anything else gives one set.
///
/// When the spec is a bare name (or the glob case), packages obsoleting a
/// matched package join its set: asking for a name that another package
/// replaces installs the replacement.
pub fn install_sets(pool: &Pool, table: &Table, spec: &str, sol: &Solution) -> Vec<Vec<Id>> {
    let just_name = sol.nevra.as_ref().is_some_and(Nevra::has_just_name);
    let arch_glob = sol.nevra.as_ref().is_some_and(|n| is_glob(&n.arch));
    let with_obsoleters = |mut set: Vec<Id>| {
        set.extend(pool.obsoleters(&set));
        set.sort_unstable();
        set.dedup();
        set
    };
    if arch_glob {
        // dnf's _install_multiarch: every (name, arch) on its own, always
        // with its obsoleters.
        return group_by(table, &sol.ids, |p| (p.name.clone(), p.arch.clone()))
            .into_values()
            .map(with_obsoleters)
            .collect();
    }
    let starts_with_slash = spec.starts_with('/') || spec.starts_with("*/");
    if !starts_with_slash && is_glob(spec) {
        return group_by(table, &sol.ids, |p| p.name.clone())
            .into_values()
            .map(|set| if just_name { with_obsoleters(set) } else { set })
            .collect();
    }
    let set = sol.ids.clone();
    vec![if just_name { with_obsoleters(set) } else { set }]
}

fn group_by<K: Ord>(
    table: &Table,
    ids: &[Id],
    key: impl Fn(&PackageMeta) -> K,
) -> BTreeMap<K, Vec<Id>> {
    let mut out: BTreeMap<K, Vec<Id>> = BTreeMap::new();
    for &id in ids {
        out.entry(key(table.pkg(id))).or_default().push(id);
    }
    out
}
