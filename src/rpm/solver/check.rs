//! rpm's transaction check on the chosen set: every Requires of every
//! package is met by the set itself. dnf runs it (rpmtsCheck) after libsolv
//! and stops with "transaction check vs depsolve" when it fails; cosa does
//! the same, so a set libsolv gets wrong (the libsolv of Debian bookworm,
//! 0.7.23, can pick a package whose Requires nothing meets when a rich
//! Recommends names it as a condition) never reaches a compose. Simple and
//! file requirements are checked; rich ones are left to libsolv.

use std::collections::{HashMap, HashSet};

use crate::rpm::types::{Dep, PackageMeta};

/// The unmet requirements of `set`, as dnf prints them: `DEP is needed by
/// NEVRA`.
pub fn unmet(set: &[PackageMeta]) -> Vec<String> {
    let mut by_name: HashMap<&str, Vec<(usize, &Dep)>> = HashMap::new();
    let mut files: HashSet<&str> = HashSet::new();
    for (i, p) in set.iter().enumerate() {
        for d in &p.provides {
            by_name.entry(d.name.as_str()).or_default().push((i, d));
        }
        for f in &p.files {
            files.insert(f.as_str());
        }
    }
    // Does some package of the set meet `d`?
    let meets = |d: &Dep| -> bool {
        by_name
            .get(d.name.as_str())
            .is_some_and(|v| v.iter().any(|(_, p)| p.overlaps(d)))
            || (d.name.starts_with('/') && d.evr.is_none() && files.contains(d.name.as_str()))
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for p in set {
        for d in &p.requires {
            if d.name.starts_with("rpmlib(") {
                continue;
            }
            // Rich dependencies are left to libsolv: cosa's reading of
            // them is not yet proven equal to rpm's on every form.
            if d.is_rich() {
                continue;
            }
            let ok = meets(d);
            if !ok && seen.insert((d.to_string(), p.nevra())) {
                out.push(format!("{d} is needed by {}", p.nevra()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, provides: &[&str], requires: &[&str], files: &[&str]) -> PackageMeta {
        let deps = |v: &[&str]| v.iter().map(|s| Dep::parse(s).unwrap()).collect();
        let mut provides: Vec<Dep> = deps(provides);
        provides.push(Dep::parse(&format!("{name} = 1-1")).unwrap());
        PackageMeta {
            name: name.into(),
            version: "1".into(),
            release: "1".into(),
            arch: "x86_64".into(),
            provides,
            requires: deps(requires),
            files: files.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn met_by_provides_files_and_rich() {
        let set = vec![
            pkg(
                "a",
                &[],
                &["b >= 1", "/usr/bin/c", "(b and c)", "rpmlib(Foo) <= 1"],
                &[],
            ),
            pkg("b", &["cap = 2"], &["(cap with b)"], &[]),
            pkg("c", &[], &["(x if y)"], &["/usr/bin/c"]),
        ];
        assert!(unmet(&set).is_empty(), "{:?}", unmet(&set));
    }

    #[test]
    fn names_what_is_missing_and_who_needs_it() {
        let set = vec![
            pkg("a", &[], &["p5", "cap > 3"], &[]),
            pkg("b", &["cap = 2"], &["/usr/bin/none"], &[]),
            pkg("c", &[], &[], &[]),
        ];
        assert_eq!(
            unmet(&set),
            vec![
                "p5 is needed by a-1-1.x86_64",
                "cap > 3 is needed by a-1-1.x86_64",
                "/usr/bin/none is needed by b-1-1.x86_64",
            ]
        );
    }
}
