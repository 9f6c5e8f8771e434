//! Shared value types for packages and dependencies, as read from repodata
//! (primary.xml / filelists.xml) and used by the solver, lockfiles and fetch.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::vercmp::rpmvercmp;

/// An `[epoch:]version[-release]`. A missing epoch means 0 (as in rpm and
/// libsolv); a missing release (only in dependencies) matches any release.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Evr {
    pub epoch: u32,
    pub version: String,
    pub release: Option<String>,
}

impl Evr {
    pub fn new(epoch: u32, version: impl Into<String>, release: Option<String>) -> Self {
        Evr {
            epoch,
            version: version.into(),
            release,
        }
    }

    /// Parse `[E:]V[-R]`. The release is whatever follows the last `-`.
    pub fn parse(s: &str) -> Evr {
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
                (e.parse().unwrap_or(0), rest)
            }
            _ => (0, s),
        };
        match rest.rsplit_once('-') {
            Some((v, r)) => Evr::new(epoch, v, Some(r.to_string())),
            None => Evr::new(epoch, rest, None),
        }
    }

    /// rpm's `rpmverCmp`: epoch, version, then release only when both have one.
    pub fn compare(&self, other: &Evr) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| match (&self.release, &other.release) {
                (Some(a), Some(b)) => rpmvercmp(a, b),
                _ => Ordering::Equal,
            })
    }
}

impl fmt::Display for Evr {
    /// Formats as rpm does in lockfiles: `E:V-R` with the epoch only when non-zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        write!(f, "{}", self.version)?;
        if let Some(r) = &self.release {
            write!(f, "-{r}")?;
        }
        Ok(())
    }
}

/// The comparison of a versioned dependency; bits as rpm's RPMSENSE_*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cmp(pub u8);

impl Cmp {
    pub const ANY: Cmp = Cmp(0);
    pub const LESS: u8 = 2;
    pub const GREATER: u8 = 4;
    pub const EQUAL: u8 = 8;
    pub const LT: Cmp = Cmp(Self::LESS);
    pub const LE: Cmp = Cmp(Self::LESS | Self::EQUAL);
    pub const EQ: Cmp = Cmp(Self::EQUAL);
    pub const GE: Cmp = Cmp(Self::GREATER | Self::EQUAL);
    pub const GT: Cmp = Cmp(Self::GREATER);

    /// From repodata's `flags` attribute (`EQ`, `LT`, `LE`, `GT`, `GE`).
    pub fn from_repodata(flags: &str) -> Option<Cmp> {
        Some(match flags {
            "EQ" => Self::EQ,
            "LT" => Self::LT,
            "LE" => Self::LE,
            "GT" => Self::GT,
            "GE" => Self::GE,
            _ => return None,
        })
    }

    /// From an operator in a spec like `podman >= 4.1`.
    pub fn from_op(op: &str) -> Option<Cmp> {
        Some(match op {
            "=" | "==" => Self::EQ,
            "<" => Self::LT,
            "<=" | "=<" => Self::LE,
            ">" => Self::GT,
            ">=" | "=>" => Self::GE,
            _ => return None,
        })
    }

    pub fn op(self) -> &'static str {
        match self.0 {
            x if x == Self::LT.0 => "<",
            x if x == Self::LE.0 => "<=",
            x if x == Self::EQ.0 => "=",
            x if x == Self::GE.0 => ">=",
            x if x == Self::GT.0 => ">",
            _ => "",
        }
    }

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// One dependency or provide entry. A rich (boolean) dependency keeps its
/// whole text, starting with `(`, in `name`, with `cmp` ANY and no `evr`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dep {
    pub name: String,
    pub cmp: Cmp,
    pub evr: Option<Evr>,
    /// `Requires(pre)` and friends: must be installed before this package's scriptlets run.
    #[serde(default)]
    pub pre: bool,
}

impl Dep {
    pub fn any(name: impl Into<String>) -> Dep {
        Dep {
            name: name.into(),
            cmp: Cmp::ANY,
            evr: None,
            pre: false,
        }
    }

    pub fn versioned(name: impl Into<String>, cmp: Cmp, evr: Evr) -> Dep {
        Dep {
            name: name.into(),
            cmp,
            evr: Some(evr),
            pre: false,
        }
    }

    pub fn is_rich(&self) -> bool {
        self.name.starts_with('(')
    }

    /// Parse `name`, `name OP evr` or a rich dependency `( ... )`.
    pub fn parse(spec: &str) -> Option<Dep> {
        let spec = spec.trim();
        if spec.is_empty() {
            return None;
        }
        if spec.starts_with('(') {
            return Some(Dep::any(spec));
        }
        let parts: Vec<&str> = spec.split_whitespace().collect();
        match parts.as_slice() {
            [name] => Some(Dep::any(*name)),
            [name, op, evr] => Some(Dep::versioned(*name, Cmp::from_op(op)?, Evr::parse(evr))),
            _ => None,
        }
    }

    /// Does a provide `self` satisfy the requirement `req`? (rpm's rpmdsCompare
    /// and rpmverOverlap: unversioned on either side always overlaps.)
    pub fn overlaps(&self, req: &Dep) -> bool {
        if self.name != req.name {
            return false;
        }
        let (Some(a), Some(b)) = (&self.evr, &req.evr) else {
            return true;
        };
        if self.cmp == Cmp::ANY || req.cmp == Cmp::ANY {
            return true;
        }
        ranges_overlap(a, self.cmp, b, req.cmp)
    }
}

/// rpm's `rpmverOverlap`: do the ranges `(a, fa)` and `(b, fb)` intersect?
pub fn ranges_overlap(a: &Evr, fa: Cmp, b: &Evr, fb: Cmp) -> bool {
    match a.compare(b) {
        Ordering::Less => fa.has(Cmp::GREATER) || fb.has(Cmp::LESS),
        Ordering::Greater => fa.has(Cmp::LESS) || fb.has(Cmp::GREATER),
        Ordering::Equal => {
            (fa.has(Cmp::EQUAL) && fb.has(Cmp::EQUAL))
                || (fa.has(Cmp::LESS) && fb.has(Cmp::LESS))
                || (fa.has(Cmp::GREATER) && fb.has(Cmp::GREATER))
        }
    }
}

impl fmt::Display for Dep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.evr {
            Some(evr) if self.cmp != Cmp::ANY => {
                write!(f, "{} {} {}", self.name, self.cmp.op(), evr)
            }
            _ => write!(f, "{}", self.name),
        }
    }
}

/// A package as described by a repository's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageMeta {
    pub name: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    pub arch: String,
    /// Checksum type as named in repodata (`sha256`, `sha512`, ...).
    pub checksum_type: String,
    /// Hex digest of the whole .rpm file.
    pub checksum: String,
    /// `location href`, relative to the repository base URL.
    pub location: String,
    /// `location xml:base`, when the repository sets one.
    pub location_base: Option<String>,
    /// Size of the .rpm file in bytes.
    pub size_package: u64,
    /// Installed size in bytes.
    pub size_installed: u64,
    pub provides: Vec<Dep>,
    pub requires: Vec<Dep>,
    pub conflicts: Vec<Dep>,
    pub obsoletes: Vec<Dep>,
    pub recommends: Vec<Dep>,
    pub suggests: Vec<Dep>,
    pub supplements: Vec<Dep>,
    pub enhances: Vec<Dep>,
    /// Every file path the package ships (from filelists.xml; directories included).
    pub files: FileList,
    /// The id of the repository it came from.
    pub repo: String,
}

impl Default for Cmp {
    fn default() -> Self {
        Cmp::ANY
    }
}

impl PackageMeta {
    pub fn evr(&self) -> Evr {
        Evr::new(self.epoch, self.version.clone(), Some(self.release.clone()))
    }

    /// `name-[epoch:]version-release.arch`
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr(), self.arch)
    }

    /// `[epoch:]version-release.arch`, the lockfile's `evra`.
    pub fn evra(&self) -> String {
        format!("{}.{}", self.evr(), self.arch)
    }

    /// Does this package provide something that satisfies `req` (by its
    /// provides or, for a path, by its file list)?
    pub fn satisfies(&self, req: &Dep) -> bool {
        if self.provides.iter().any(|p| p.overlaps(req)) {
            return true;
        }
        req.name.starts_with('/') && req.evr.is_none() && self.files.contains(&req.name)
    }
}

/// A package's file paths, in order, kept in one string (each path ends in
/// a NUL, which no path can hold): a repository the size of Fedora's has
/// 1.5 million of them, and one allocation per package instead of one per
/// path is what keeps loading them fast. Serialized as a list of strings.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct FileList {
    joined: String,
}

impl FileList {
    /// Append `path` (a path holding a NUL is cut there).
    pub fn push(&mut self, path: &str) {
        self.joined
            .push_str(path.split('\0').next().unwrap_or_default());
        self.joined.push('\0');
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.joined.split_terminator('\0')
    }

    pub fn len(&self) -> usize {
        self.joined.bytes().filter(|&b| b == 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.joined.is_empty()
    }

    pub fn contains(&self, path: &str) -> bool {
        self.iter().any(|p| p == path)
    }
}

impl<S: AsRef<str>> FromIterator<S> for FileList {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut l = FileList::default();
        for p in iter {
            l.push(p.as_ref());
        }
        l
    }
}

impl<'a> IntoIterator for &'a FileList {
    type Item = &'a str;
    type IntoIter = std::str::SplitTerminator<'a, char>;
    fn into_iter(self) -> Self::IntoIter {
        self.joined.split_terminator('\0')
    }
}

impl fmt::Debug for FileList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for FileList {
    /// A list of strings; in binary formats (cosa's metadata cache) the
    /// NUL-terminated paths as one string, read back with one allocation.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_seq(self.iter())
        } else {
            s.serialize_str(&self.joined)
        }
    }
}

impl<'de> Deserialize<'de> for FileList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{DeserializeSeed, SeqAccess, Visitor};

        /// Appends one path straight into the list, without a String of
        /// its own.
        struct Append<'l>(&'l mut FileList);
        impl<'de> DeserializeSeed<'de> for Append<'_> {
            type Value = ();
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_str(self)
            }
        }
        impl Visitor<'_> for Append<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a file path")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
                self.0.push(v);
                Ok(())
            }
        }

        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = FileList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of file paths")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FileList, A::Error> {
                let mut l = FileList::default();
                while seq.next_element_seed(Append(&mut l))?.is_some() {}
                Ok(l)
            }
        }
        if d.is_human_readable() {
            return d.deserialize_seq(List);
        }
        let joined = String::deserialize(d)?;
        if !joined.is_empty() && !joined.ends_with('\0') {
            return Err(serde::de::Error::custom(
                "a file list must end with a NUL-terminated path",
            ));
        }
        Ok(FileList { joined })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evr_parse_and_display() {
        let e = Evr::parse("2:1.0-3.fc40");
        assert_eq!(e, Evr::new(2, "1.0", Some("3.fc40".into())));
        assert_eq!(e.to_string(), "2:1.0-3.fc40");
        assert_eq!(Evr::parse("1.0").to_string(), "1.0");
        assert_eq!(Evr::parse("0:1.0-1").to_string(), "1.0-1");
    }

    #[test]
    fn file_list_round_trips() {
        let l: FileList = ["/usr/bin/a", "/etc/b c", ""].into_iter().collect();
        assert_eq!(l.len(), 3);
        assert_eq!(l.iter().collect::<Vec<_>>(), ["/usr/bin/a", "/etc/b c", ""]);
        assert!(l.contains("/etc/b c") && !l.contains("/etc"));
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, r#"["/usr/bin/a","/etc/b c",""]"#);
        assert_eq!(serde_json::from_str::<FileList>(&json).unwrap(), l);
        let bin = postcard::to_stdvec(&l).unwrap();
        assert_eq!(postcard::from_bytes::<FileList>(&bin).unwrap(), l);
        assert!(FileList::default().is_empty());
    }

    #[test]
    fn overlap_rules() {
        let p = |s: &str| Dep::parse(s).unwrap();
        assert!(p("foo = 1.0-1").overlaps(&p("foo >= 1.0")));
        assert!(!p("foo = 0.9-1").overlaps(&p("foo >= 1.0")));
        assert!(p("foo").overlaps(&p("foo >= 1.0")));
        assert!(p("foo = 1.0-1").overlaps(&p("foo")));
        assert!(p("foo = 1.0-5").overlaps(&p("foo = 1.0")));
        assert!(!p("foo = 1:0.5-1").overlaps(&p("foo < 1.0")));
        assert!(p("foo >= 2").overlaps(&p("foo > 3")));
        assert!(!p("foo < 2").overlaps(&p("foo > 3")));
        assert!(!p("bar = 1").overlaps(&p("foo")));
    }
}
