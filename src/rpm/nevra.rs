//! Package specs as dnf reads them (libdnf's `Nevra` forms and `fnmatch`
//! globs): what `exclude-packages`, `dnf --exclude` and a repo's
//! `excludepkgs=`/`includepkgs=` select. The solver's wider "subject"
//! (provides, files) builds on this in `solver::subject`.
//!
//! 1. NEVRA forms, most specific first: `name-[epoch:]version-release.arch`,
//!    `name.arch`, `name`, `name-[epoch:]version-release`,
//!    `name-[epoch:]version`; each part may be a glob. The first form that
//!    parses and matches a package wins.
//! 2. The whole spec as a glob over `name-[epoch:]version-release.arch`.

use std::sync::LazyLock;

use regex::Regex;

use crate::rpm::types::PackageMeta;

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

/// How many NEVRA forms [`parse_form`] knows.
pub const FORM_COUNT: usize = 5;

/// `spec` read as NEVRA form number `form` (0..[`FORM_COUNT`]).
pub fn parse_form(spec: &str, form: usize) -> Option<Nevra> {
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
pub fn matches(pattern: &str, s: &str) -> bool {
    if is_glob(pattern) {
        glob_match(pattern, s)
    } else {
        pattern == s
    }
}

pub fn nevra_matches(n: &Nevra, p: &PackageMeta) -> bool {
    let part = |pat: &str, s: &str| pat.is_empty() || pat == "*" || matches(pat, s);
    part(&n.name, &p.name)
        && n.epoch.is_none_or(|e| e == p.epoch)
        && part(&n.version, &p.version)
        && part(&n.release, &p.release)
        && part(&n.arch, &p.arch)
}

/// `name-[epoch:]version-release.arch`, the epoch only when not zero (how
/// libsolv prints a solvable, which dnf's NEVRA glob matches against).
pub fn nevra_string(p: &PackageMeta) -> String {
    if p.epoch == 0 {
        format!("{}-{}-{}.{}", p.name, p.version, p.release, p.arch)
    } else {
        format!(
            "{}-{}:{}-{}.{}",
            p.name, p.epoch, p.version, p.release, p.arch
        )
    }
}

/// The packages `spec` selects by the NEVRA steps, and the form that
/// matched (`None` for the whole-spec glob); `None` when nothing matches.
///
/// `candidates(Some(n))` yields the packages that may match form `n` (all
/// of them, or an index's narrowing by name); `candidates(None)` yields
/// every package, for the whole-spec glob.
pub fn query<'a, 'c, K>(
    spec: &str,
    candidates: impl Fn(Option<&Nevra>) -> Box<dyn Iterator<Item = (K, &'a PackageMeta)> + 'c>,
) -> Option<(Vec<K>, Option<Nevra>)> {
    for form in 0..FORM_COUNT {
        if let Some(n) = parse_form(spec, form) {
            let found: Vec<K> = candidates(Some(&n))
                .filter(|(_, p)| nevra_matches(&n, p))
                .map(|(k, _)| k)
                .collect();
            if !found.is_empty() {
                return Some((found, Some(n)));
            }
        }
    }
    if is_glob(spec) {
        let found: Vec<K> = candidates(None)
            .filter(|(_, p)| glob_match(spec, &nevra_string(p)))
            .map(|(k, _)| k)
            .collect();
        if !found.is_empty() {
            return Some((found, None));
        }
    }
    None
}

/// [`query`] over a plain list: the indexes of the packages `spec` selects.
pub fn select(pkgs: &[PackageMeta], spec: &str) -> Vec<usize> {
    query(spec, |_| Box::new(pkgs.iter().enumerate()))
        .map(|(found, _)| found)
        .unwrap_or_default()
}

/// Shell-style glob: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`/`[^x]`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    let (mut pi, mut si) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, si));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => match match_class(&p, pi, s[si]) {
                Some((matched, next)) => matched.then_some(next),
                None => (s[si] == '[').then_some(pi + 1),
            },
            Some(&c) if c == s[si] => Some(pi + 1),
            _ => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                si += 1;
            }
            (None, Some((sp, ss))) => {
                pi = sp;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Match `c` against the class starting at `p[start] == '['`: whether it
/// matches and the pattern index after the class; `None` when the class is
/// not closed (the `[` is then literal).
fn match_class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            break;
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&hi| hi != ']') {
            let hi = p[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    Some((matched != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("kernel*", "kernel-core"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("lib[xy]*-devel", "libx11-devel"));
        assert!(!glob_match("lib[!xy]*", "libx11"));
        assert!(glob_match("lib[a-c]", "libb"));
        assert!(!glob_match("lib[a-c]", "libd"));
        assert!(glob_match("*-debug*", "foo-debuginfo"));
        assert!(!glob_match("foo", "foobar"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(glob_match("[]x]", "]"));
        assert!(glob_match("a[", "a["));
    }

    #[test]
    fn nevra_forms_parse_like_libdnf() {
        let n = parse_form("foo-bar-1:2.0-3.fc40.x86_64", 0).unwrap();
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
        assert_eq!(parse_form("python3.11", 1).unwrap().arch, "11");
        assert!(parse_form("python3.11", 2).unwrap().has_just_name());
        // NEVR / NEV.
        let n = parse_form("kernel-6.1-2", 3).unwrap();
        assert_eq!(
            (n.name.as_str(), n.version.as_str(), n.release.as_str()),
            ("kernel", "6.1", "2")
        );
        let n = parse_form("kernel-6.1", 4).unwrap();
        assert_eq!((n.name.as_str(), n.version.as_str()), ("kernel", "6.1"));
        // Specs with operators or paths are never NEVRAs.
        for f in 0..FORM_COUNT {
            assert!(parse_form("foo >= 1", f).is_none());
            assert!(parse_form("/usr/bin/sh", f).is_none());
        }
    }

    #[test]
    fn globs_match_exactly_without_glob_characters() {
        assert!(matches("foo*", "foobar"));
        assert!(!matches("foo", "foobar"));
        assert!(matches("fo[o]", "foo"));
        assert!(is_glob("a?") && !is_glob("a.b"));
    }

    fn pkg(name: &str, version: &str, arch: &str) -> PackageMeta {
        PackageMeta {
            name: name.into(),
            version: version.into(),
            release: "1".into(),
            arch: arch.into(),
            ..Default::default()
        }
    }

    #[test]
    fn select_takes_the_first_form_that_matches() {
        let pkgs = [
            pkg("foo", "1.0", "x86_64"),
            pkg("foo", "2.0", "x86_64"),
            pkg("foo-devel", "2.0", "noarch"),
            pkg("bar", "2.0", "x86_64"),
        ];
        assert_eq!(select(&pkgs, "foo"), [0, 1]);
        assert_eq!(select(&pkgs, "foo*"), [0, 1, 2]);
        // NAME "foo-2*" matches nothing; NEV (foo, 2*) does.
        assert_eq!(select(&pkgs, "foo-2*"), [1]);
        assert_eq!(select(&pkgs, "*.noarch"), [2]);
        assert_eq!(select(&pkgs, "bar-2.0-1.x86_64"), [3]);
        assert!(select(&pkgs, "baz").is_empty());
    }
}
