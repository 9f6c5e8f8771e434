//! rpm's transaction check on the chosen set: every Requires of every
//! package is met by the set itself. dnf runs it (rpmtsCheck) after libsolv
//! and stops with "transaction check vs depsolve" when it fails; cosa does
//! the same, so a set libsolv gets wrong (the libsolv of Debian bookworm,
//! 0.7.23, can pick a package whose Requires nothing meets when a rich
//! Recommends names it as a condition) never reaches a compose.

use std::collections::{HashMap, HashSet};

use super::richdep::Rich;
use crate::rpm::types::{Dep, PackageMeta};

/// The unmet requirements of `set`, as dnf prints them: `DEP is needed by
/// NEVRA`.
pub fn unmet(set: &[PackageMeta]) -> Vec<String> {
    let mut by_name: HashMap<&str, Vec<(usize, &Dep)>> = HashMap::new();
    let mut files: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in set.iter().enumerate() {
        for d in &p.provides {
            by_name.entry(d.name.as_str()).or_default().push((i, d));
        }
        for f in &p.files {
            files.entry(f.as_str()).or_default().push(i);
        }
    }
    // Does package `only` (or, with None, any package of the set) meet `d`?
    let meets = |d: &Dep, only: Option<usize>| -> bool {
        let ok = |i: usize| only.is_none_or(|o| o == i);
        let by_provide = by_name
            .get(d.name.as_str())
            .is_some_and(|v| v.iter().any(|(i, p)| ok(*i) && p.overlaps(d)));
        by_provide
            || (d.name.starts_with('/')
                && d.evr.is_none()
                && files
                    .get(d.name.as_str())
                    .is_some_and(|v| v.iter().any(|&i| ok(i))))
    };
    let eval = |r: &Rich, only: Option<usize>| -> bool {
        r.eval(&|d| meets(d, only), &|a, b, negate| {
            (0..set.len()).any(|i| {
                let one = |r: &Rich| r.eval(&|d| meets(d, Some(i)), &|_, _, _| false);
                one(a) && (one(b) != negate)
            })
        })
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for p in set {
        for d in &p.requires {
            if d.name.starts_with("rpmlib(") {
                continue;
            }
            let ok = match Rich::from_dep(d) {
                Ok(r) => eval(&r, None),
                // A rich dependency rpm cannot parse is never met.
                Err(_) => false,
            };
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
            pkg("a", &[], &["p5", "(b with cap > 3)"], &[]),
            pkg("b", &["cap = 2"], &["(c without c)"], &[]),
            pkg("c", &[], &[], &[]),
        ];
        assert_eq!(
            unmet(&set),
            vec![
                "p5 is needed by a-1-1.x86_64",
                "(b with cap > 3) is needed by a-1-1.x86_64",
                "(c without c) is needed by b-1-1.x86_64",
            ]
        );
    }
}
