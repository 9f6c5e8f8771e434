//! Package differences between two builds: added, removed, upgraded and
//! downgraded packages, compared with rpm's version ordering, as
//! `rpm-ostree db diff` does. Output as meta.json's `pkgdiff` entries and as
//! a table for people.
//!
//! Packages are matched by name, as rpm-ostree does. A name present several
//! times in one build (multilib, or installonly kernels) is matched by
//! name and arch instead, and a remaining duplicate by its full EVR.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;

use super::meta::{PkgDiffDetails, PkgDiffEntry, PkgTriple};
use crate::rpm::types::Evr;

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pkg {
    pub name: String,
    pub evr: Evr,
    pub arch: String,
}

impl Pkg {
    pub fn new(name: &str, evr: &str, arch: &str) -> Pkg {
        Pkg {
            name: name.to_string(),
            evr: Evr::parse(evr),
            arch: arch.to_string(),
        }
    }

    fn triple(&self) -> PkgTriple {
        PkgTriple(self.name.clone(), self.evr.to_string(), self.arch.clone())
    }

    /// `name-evr.arch`
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr, self.arch)
    }
}

/// The kind of a change; the numbers are rpm-ostree's `RpmOstreePackageDiffTypes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffKind {
    Added = 0,
    Removed = 1,
    Upgraded = 2,
    Downgraded = 3,
}

/// One changed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub name: String,
    pub kind: DiffKind,
    pub old: Option<Pkg>,
    pub new: Option<Pkg>,
}

/// Every change between two package lists, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageDiff {
    pub changes: Vec<Change>,
}

/// Read `rpmostree.rpmdb.pkglist` (`[[name, epoch, version, release, arch], ...]`)
/// from a build's commitmeta.json.
pub fn packages_from_commitmeta(commitmeta: &Value) -> Result<Vec<Pkg>> {
    let list = commitmeta
        .get("rpmostree.rpmdb.pkglist")
        .and_then(Value::as_array)
        .context("commitmeta.json has no rpmostree.rpmdb.pkglist array")?;
    list.iter()
        .map(|e| {
            let f: Vec<&str> = e
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let [name, epoch, version, release, arch] = f[..] else {
                bail!(
                    "rpmostree.rpmdb.pkglist entry {e} is not [name, epoch, version, release, arch]"
                );
            };
            let epoch: u32 = if epoch.is_empty() {
                0
            } else {
                epoch
                    .parse()
                    .with_context(|| format!("epoch {epoch:?} of {name}"))?
            };
            Ok(Pkg {
                name: name.to_string(),
                evr: Evr::new(epoch, version, Some(release.to_string())),
                arch: arch.to_string(),
            })
        })
        .collect()
}

/// Does a commitmeta.json carry `rpmostree.rpmdb.pkglist`?
pub fn has_pkglist(commitmeta: &Value) -> bool {
    commitmeta
        .get("rpmostree.rpmdb.pkglist")
        .is_some_and(Value::is_array)
}

/// The packages of an `rpmdb.sqlite` (its bytes, e.g. read from a commit);
/// `what` names it in errors.
pub fn packages_from_rpmdb(db: &[u8], what: &str) -> Result<Vec<Pkg>> {
    let mut tmp = tempfile::NamedTempFile::new().context("creating a temporary file")?;
    std::io::Write::write_all(&mut tmp, db).context("writing a temporary file")?;
    let list =
        crate::rpm::rpmdb::read_packages(tmp.path()).with_context(|| format!("reading {what}"))?;
    Ok(list
        .into_iter()
        .map(|n| Pkg {
            name: n.name,
            evr: Evr::new(n.epoch, &n.version, Some(n.release)),
            arch: n.arch,
        })
        .collect())
}

/// Key every package by name, or by name and arch (then EVR) where the name
/// repeats in either list.
fn keyed(pkgs: &[Pkg], dup: &BTreeSet<&str>, dup_arch: &BTreeSet<String>) -> BTreeMap<String, Pkg> {
    pkgs.iter()
        .map(|p| {
            let mut key = p.name.clone();
            if dup.contains(p.name.as_str()) {
                key = format!("{}.{}", p.name, p.arch);
                if dup_arch.contains(&key) {
                    key = format!("{key}-{}", p.evr);
                }
            }
            (key, p.clone())
        })
        .collect()
}

fn repeated<'a>(keys: impl Iterator<Item = &'a str>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    keys.filter(|k| !seen.insert(*k)).collect()
}

/// Compare two builds' package lists.
pub fn diff(old: &[Pkg], new: &[Pkg]) -> PackageDiff {
    let mut dup = repeated(old.iter().map(|p| p.name.as_str()));
    dup.extend(repeated(new.iter().map(|p| p.name.as_str())));
    let name_arch = |ps: &[Pkg]| -> Vec<String> {
        ps.iter()
            .filter(|p| dup.contains(p.name.as_str()))
            .map(|p| format!("{}.{}", p.name, p.arch))
            .collect()
    };
    let (oa, na) = (name_arch(old), name_arch(new));
    let mut dup_arch: BTreeSet<String> = repeated(oa.iter().map(String::as_str))
        .into_iter()
        .map(str::to_string)
        .collect();
    dup_arch.extend(
        repeated(na.iter().map(String::as_str))
            .into_iter()
            .map(str::to_string),
    );
    let old_k = keyed(old, &dup, &dup_arch);
    let new_k = keyed(new, &dup, &dup_arch);
    let keys: BTreeSet<&String> = old_k.keys().chain(new_k.keys()).collect();
    let mut changes = Vec::new();
    for k in keys {
        let (o, n) = (old_k.get(k), new_k.get(k));
        let kind = match (o, n) {
            (None, Some(_)) => DiffKind::Added,
            (Some(_), None) => DiffKind::Removed,
            (Some(o), Some(n)) => match o.evr.compare(&n.evr) {
                Ordering::Less => DiffKind::Upgraded,
                Ordering::Greater => DiffKind::Downgraded,
                // Same version; an arch change is an upgrade in rpm-ostree's terms.
                Ordering::Equal if o.arch != n.arch || o.evr != n.evr => DiffKind::Upgraded,
                Ordering::Equal => continue,
            },
            (None, None) => continue,
        };
        let name = o.or(n).map(|p| p.name.clone()).unwrap_or_default();
        changes.push(Change {
            name,
            kind,
            old: o.cloned(),
            new: n.cloned(),
        });
    }
    changes.sort_by(|a, b| a.name.cmp(&b.name).then(a.kind.cmp(&b.kind)));
    PackageDiff { changes }
}

impl PackageDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The changes of one kind.
    pub fn of(&self, kind: DiffKind) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.kind == kind)
    }

    /// meta.json's `pkgdiff` entries.
    pub fn to_pkgdiff(&self) -> Vec<PkgDiffEntry> {
        self.changes
            .iter()
            .map(|c| {
                PkgDiffEntry(
                    c.name.clone(),
                    c.kind as u32,
                    PkgDiffDetails {
                        previous: c.old.as_ref().map(Pkg::triple),
                        new: c.new.as_ref().map(Pkg::triple),
                    },
                )
            })
            .collect()
    }

    /// A table for people: one section per kind, `name old -> new`.
    pub fn to_table(&self) -> String {
        if self.is_empty() {
            return "No package changes.\n".to_string();
        }
        let width = self.changes.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (kind, title) in [
            (DiffKind::Upgraded, "Upgraded"),
            (DiffKind::Downgraded, "Downgraded"),
            (DiffKind::Removed, "Removed"),
            (DiffKind::Added, "Added"),
        ] {
            let rows: Vec<&Change> = self.of(kind).collect();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{title} ({}):", rows.len());
            for c in rows {
                let fmt = |p: &Pkg| format!("{}.{}", p.evr, p.arch);
                let _ = match (&c.old, &c.new) {
                    (Some(o), Some(n)) => {
                        writeln!(out, "  {:width$}  {} -> {}", c.name, fmt(o), fmt(n))
                    }
                    (Some(p), None) | (None, Some(p)) => {
                        writeln!(out, "  {:width$}  {}", c.name, fmt(p))
                    }
                    (None, None) => Ok(()),
                };
            }
        }
        let count = |k| self.of(k).count();
        let _ = writeln!(
            out,
            "{} upgraded, {} downgraded, {} removed, {} added",
            count(DiffKind::Upgraded),
            count(DiffKind::Downgraded),
            count(DiffKind::Removed),
            count(DiffKind::Added)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_with_rpmvercmp() {
        let old = [
            Pkg::new("bash", "5.2-1", "x86_64"),
            Pkg::new("gone", "1-1", "noarch"),
            Pkg::new("kernel", "6.9.1-1", "x86_64"),
            Pkg::new("same", "1:2.0-3", "x86_64"),
            Pkg::new("tilde", "1.0-1", "x86_64"),
        ];
        let new = [
            Pkg::new("bash", "5.10-1", "x86_64"), // 10 > 2 numerically
            Pkg::new("fresh", "2-1", "noarch"),
            Pkg::new("kernel", "6.8.0-1", "x86_64"),
            Pkg::new("same", "1:2.0-3", "x86_64"),
            Pkg::new("tilde", "1.0~rc1-1", "x86_64"), // ~ sorts before release
        ];
        let d = diff(&old, &new);
        let kinds: Vec<(&str, DiffKind)> = d
            .changes
            .iter()
            .map(|c| (c.name.as_str(), c.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("bash", DiffKind::Upgraded),
                ("fresh", DiffKind::Added),
                ("gone", DiffKind::Removed),
                ("kernel", DiffKind::Downgraded),
                ("tilde", DiffKind::Downgraded),
            ]
        );
        let pd = serde_json::to_value(d.to_pkgdiff()).unwrap();
        assert_eq!(
            pd[0],
            json!(["bash", 2, {"PreviousPackage": ["bash", "5.2-1", "x86_64"],
                               "NewPackage": ["bash", "5.10-1", "x86_64"]}])
        );
        assert_eq!(
            pd[1],
            json!(["fresh", 0, {"NewPackage": ["fresh", "2-1", "noarch"]}])
        );
        assert_eq!(
            pd[2],
            json!(["gone", 1, {"PreviousPackage": ["gone", "1-1", "noarch"]}])
        );
        let t = d.to_table();
        assert!(t.contains("Downgraded (2):"), "{t}");
        assert!(t.contains("bash    5.2-1.x86_64 -> 5.10-1.x86_64"), "{t}");
        assert!(
            t.contains("1 upgraded, 2 downgraded, 1 removed, 1 added"),
            "{t}"
        );
    }

    #[test]
    fn repeated_names_match_by_arch_and_evr() {
        let old = [
            Pkg::new("glibc", "2.39-1", "x86_64"),
            Pkg::new("glibc", "2.39-1", "i686"),
            Pkg::new("kernel", "6.8-1", "x86_64"),
            Pkg::new("kernel", "6.9-1", "x86_64"),
        ];
        let new = [
            Pkg::new("glibc", "2.39-2", "x86_64"),
            Pkg::new("glibc", "2.39-1", "i686"),
            Pkg::new("kernel", "6.9-1", "x86_64"),
            Pkg::new("kernel", "6.10-1", "x86_64"),
        ];
        let d = diff(&old, &new);
        let got: Vec<(String, DiffKind)> = d
            .changes
            .iter()
            .map(|c| {
                let p = c.new.as_ref().or(c.old.as_ref()).unwrap();
                (p.nevra(), c.kind)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("glibc-2.39-2.x86_64".to_string(), DiffKind::Upgraded),
                ("kernel-6.10-1.x86_64".to_string(), DiffKind::Added),
                ("kernel-6.8-1.x86_64".to_string(), DiffKind::Removed),
            ]
        );
    }

    #[test]
    fn commitmeta_pkglist() {
        let cm = json!({"rpmostree.rpmdb.pkglist": [["bash","0","5.2","1.fc40","x86_64"],
                                                    ["shim","1","15","2","x86_64"]]});
        let p = packages_from_commitmeta(&cm).unwrap();
        assert_eq!(p[0].nevra(), "bash-5.2-1.fc40.x86_64");
        assert_eq!(p[1].evr.to_string(), "1:15-2");
        assert!(packages_from_commitmeta(&json!({})).is_err());
        assert!(packages_from_commitmeta(&json!({"rpmostree.rpmdb.pkglist": [["x"]]})).is_err());
        assert!(diff(&p, &p).to_table().contains("No package changes"));
    }
}
