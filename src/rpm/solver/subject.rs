//! What a package spec selects, as dnf's "subject" does (libdnf
//! `Query::filterSubject`, hawkey `Subject._get_best_selectors`):
//!
//! 1. NEVRA forms, most specific first: `name-[epoch:]version-release.arch`,
//!    `name.arch`, `name`, `name-[epoch:]version-release`,
//!    `name-[epoch:]version`; each part may be a glob. The first form that
//!    parses and matches a package wins.
//! 2. The whole spec as a glob over `name-[epoch:]version-release.arch`.
//! 3. Provides: `name`, `name OP evr`, a glob over provide names, or a rich
//!    dependency.
//! 4. File paths (`/…` or `*/…`), exact or glob, over every package's files.
//!
//! Only considered packages count (excludes and lockfile pins hide the rest),
//! and never source packages.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use rustc_hash::FxHashMap;

use super::libsolv::{Id, Pool};
use crate::rpm::repodata::glob_match;
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

/// A parsed NEVRA form; empty strings are parts the form does not have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nevra {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
}

impl Nevra {
    /// Only a name: dnf then also installs packages obsoleting it.
    pub fn has_just_name(&self) -> bool {
        !self.name.is_empty()
            && self.epoch.is_none()
            && self.version.is_empty()
            && self.release.is_empty()
            && self.arch.is_empty()
    }
}

/// libdnf's NEVRA forms, most specific first (HY_FORMS_MOST_SPEC): NEVRA,
/// NA, NAME, NEVR, NEV. Names may not hold `:(/=<>` or spaces; versions and
/// releases not `-` either; arches not `.`.
static FORMS: LazyLock<[Regex; 5]> = LazyLock::new(|| {
    const N: &str = "([^:(/=<> ]+)";
    const E: &str = "(([0-9]+):)?";
    const V: &str = "([^-:(/=<> ]+)";
    const A: &str = "([^-:.(/=<> ]+)";
    let re = |s: String| Regex::new(&s).expect("static regex");
    [
        re(format!("^{N}-{E}{V}-{V}\\.{A}$")),
        re(format!("^{N}()()()()\\.{A}$")),
        re(format!("^{N}()()()()()$")),
        re(format!("^{N}-{E}{V}-{V}()$")),
        re(format!("^{N}-{E}{V}()()$")),
    ]
});

fn parse_form(spec: &str, form: usize) -> Option<Nevra> {
    let c = FORMS[form].captures(spec)?;
    let part = |i: usize| c.get(i).map_or("", |m| m.as_str()).to_string();
    let name = part(1);
    if name.is_empty() {
        return None;
    }
    Some(Nevra {
        name,
        epoch: c.get(3).and_then(|m| m.as_str().parse().ok()),
        version: part(4),
        release: part(5),
        arch: part(6),
    })
}

pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// An exact or glob match, as libdnf turns `HY_GLOB` into `HY_EQ` for a
/// string without glob characters.
fn matches(pattern: &str, s: &str) -> bool {
    if is_glob(pattern) {
        glob_match(pattern, s)
    } else {
        pattern == s
    }
}

fn nevra_matches(n: &Nevra, p: &PackageMeta) -> bool {
    let part = |pat: &str, s: &str| pat.is_empty() || pat == "*" || matches(pat, s);
    part(&n.name, &p.name)
        && n.epoch.is_none_or(|e| e == p.epoch)
        && part(&n.version, &p.version)
        && part(&n.release, &p.release)
        && part(&n.arch, &p.arch)
}

/// `name-[epoch:]version-release.arch`, the epoch only when not zero (how
/// libsolv prints a solvable, which dnf's NEVRA glob matches against).
fn nevra_string(p: &PackageMeta) -> String {
    if p.epoch == 0 {
        format!("{}-{}-{}.{}", p.name, p.version, p.release, p.arch)
    } else {
        format!(
            "{}-{}:{}-{}.{}",
            p.name, p.epoch, p.version, p.release, p.arch
        )
    }
}

/// The NEVRA steps alone (dnf's `--exclude` and rpm-ostree's
/// `exclude-packages` match this way): the matching packages and the form
/// that matched (`None` for the whole-spec glob).
pub fn nevra_query(table: &Table, spec: &str) -> Option<(Vec<Id>, Option<Nevra>)> {
    for form in 0..FORMS.len() {
        if let Some(n) = parse_form(spec, form) {
            let ids: Vec<Id> = table
                .candidates(&n)
                .filter(|(_, p)| nevra_matches(&n, p))
                .map(|(id, _)| id)
                .collect();
            if !ids.is_empty() {
                return Some((ids, Some(n)));
            }
        }
    }
    if is_glob(spec) {
        let ids: Vec<Id> = table
            .base()
            .filter(|(_, p)| glob_match(spec, &nevra_string(p)))
            .map(|(id, _)| id)
            .collect();
        if !ids.is_empty() {
            return Some((ids, None));
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    fn form(spec: &str, f: usize) -> Option<Nevra> {
        parse_form(spec, f)
    }

    #[test]
    fn nevra_forms_parse_like_libdnf() {
        let n = form("foo-bar-1:2.0-3.fc40.x86_64", 0).unwrap();
        assert_eq!(
            n,
            Nevra {
                name: "foo-bar".into(),
                epoch: Some(1),
                version: "2.0".into(),
                release: "3.fc40".into(),
                arch: "x86_64".into(),
            }
        );
        // A name with dots is a NAME, and also an NA (name "python3", arch "11").
        assert_eq!(form("python3.11", 1).unwrap().arch, "11");
        assert!(form("python3.11", 2).unwrap().has_just_name());
        // NEVR / NEV.
        let n = form("kernel-6.1-2", 3).unwrap();
        assert_eq!(
            (n.name.as_str(), n.version.as_str(), n.release.as_str()),
            ("kernel", "6.1", "2")
        );
        let n = form("kernel-6.1", 4).unwrap();
        assert_eq!((n.name.as_str(), n.version.as_str()), ("kernel", "6.1"));
        // Specs with operators or paths are never NEVRAs.
        for f in 0..5 {
            assert!(form("foo >= 1", f).is_none());
            assert!(form("/usr/bin/sh", f).is_none());
        }
    }

    #[test]
    fn globs_match_exactly_without_glob_characters() {
        assert!(matches("foo*", "foobar"));
        assert!(!matches("foo", "foobar"));
        assert!(matches("fo[o]", "foo"));
        assert!(is_glob("a?") && !is_glob("a.b"));
    }
}
