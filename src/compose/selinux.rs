//! SELinux file labels for the commit, computed from the policy the tree
//! ships, without privileges and without touching the build host's xattrs.
//!
//! [`FileContexts`] reads a policy's `contexts/files/file_contexts` and its
//! companions and answers "which label does this path of this file type
//! get", following libselinux 3.4's file backend (`label_file.c`,
//! `label_file.h`) rule by rule:
//!
//! - files load in libselinux's order: `file_contexts`, then
//!   `file_contexts.homedirs`, then `file_contexts.local` (both optional);
//!   substitutions come from `file_contexts.subs_dist` and
//!   `file_contexts.subs` (optional);
//! - a line is `REGEX [TYPE] CONTEXT`; `#` starts a comment line; fields past
//!   the third are ignored; a non-ASCII field, a missing field, a bad file
//!   type or a bad regex is an error naming the file and line;
//! - specs whose regex has no meta character (`.^$?*+|[({`, a backslash
//!   escaping the next character) move behind all the others, each group
//!   keeping file order (libselinux's `sort_specs`); the lookup takes the
//!   last spec in that order whose regex matches the whole path (`^...$`,
//!   PCRE2 with DOTALL) and whose file type fits (`--` regular, `-d`, `-l`,
//!   `-c`, `-b`, `-s`, `-p`; none = any);
//! - a spec's "stem" (its first path component, if that has no meta
//!   character) must equal the path's first component for the spec to be
//!   tried at all, as libselinux partitions its specs;
//! - `<<none>>` as the winning context means "no label";
//! - the key is cleaned first (`//` collapsed, a trailing `/` dropped), then
//!   substituted: the first `.subs` entry (last in the file wins, as
//!   libselinux prepends) whose source is a prefix of the path on whole
//!   components replaces it, then `.subs_dist` is applied to the result the
//!   same way (or to the path, if `.subs` did not match).
//!
//! Duplicate specs (same regex text, compatible types) in `file_contexts`
//! are what libselinux rejects when asked to validate
//! ([`FileContexts::duplicates`]); without validation (ostree, rpm-ostree,
//! matchpathcon) they are accepted and the later one wins.
//!
//! Speed: specs are grouped by stem and each group is one
//! `regex::bytes::RegexSet`, so a lookup runs two set matches (the specs
//! without a stem and those of the path's stem) instead of trying specs one
//! by one.
//!
//! [`Labeller`] adds what ostree and rpm-ostree do around the lookup when
//! they commit a tree: the policy is found in the tree (`etc/selinux`, else
//! `usr/etc/selinux`; `config` must say `SELINUX=enforcing|permissive` and
//! name `SELINUXTYPE=`), `/proc` is looked up as `/mnt`, with
//! `selinux-label-version: 1` `/usr/etc/...` is looked up as `/etc/...`, and
//! a path without a label is an error (rpm-ostree's
//! `ERROR_ON_UNLABELED`). The label goes into the `security.selinux` xattr
//! of the object with a trailing NUL, as ostree commits it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use anyhow::{Context, Result, bail, ensure};
use regex::bytes::{RegexSet, RegexSetBuilder};

/// The xattr that carries a file's SELinux context.
pub const XATTR: &str = "security.selinux";

/// File-type bits (`S_IFMT`) of a mode.
const S_IFMT: u32 = libc::S_IFMT;

/// One line of a file_contexts file.
#[derive(Clone, Debug)]
struct Spec {
    /// The regex as written.
    regex: String,
    /// `S_IFMT` bits the spec is restricted to, 0 for any type.
    mode: u32,
    /// None for `<<none>>`.
    context: Option<String>,
    /// Index into `FileContexts::stems`.
    stem: Option<usize>,
    has_meta: bool,
    /// Index into `FileContexts::files`.
    file: usize,
    line: usize,
}

/// One substitution (`.subs`, `.subs_dist`): a path prefix and its alias target.
#[derive(Clone, Debug)]
struct Sub {
    src: String,
    dst: String,
}

/// The specs of one stem (or of no stem), as one regex set.
struct Group {
    set: RegexSet,
    /// Set pattern i is spec `specs[i]` (in lookup order).
    specs: Vec<usize>,
}

/// A loaded set of file contexts: the specs in libselinux's lookup order
/// and the substitutions.
pub struct FileContexts {
    files: Vec<PathBuf>,
    specs: Vec<Spec>,
    /// How many specs came from the base `file_contexts` (the ones checked for duplicates).
    base_count: usize,
    /// The base file's specs in file order (indices into `specs`).
    base_order: Vec<usize>,
    stems: Vec<String>,
    stem_index: HashMap<String, usize>,
    no_stem: Group,
    by_stem: Vec<Group>,
    subs: Vec<Sub>,
    dist_subs: Vec<Sub>,
}

impl std::fmt::Debug for FileContexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileContexts")
            .field("files", &self.files)
            .field("specs", &self.specs.len())
            .finish()
    }
}

/// libselinux's `string_to_mode` for the type field.
fn type_to_mode(t: &str) -> Option<u32> {
    Some(match t {
        "--" => libc::S_IFREG,
        "-d" => libc::S_IFDIR,
        "-l" => libc::S_IFLNK,
        "-c" => libc::S_IFCHR,
        "-b" => libc::S_IFBLK,
        "-s" => libc::S_IFSOCK,
        "-p" => libc::S_IFIFO,
        _ => return None,
    })
}

/// libselinux's `spec_hasMetaChars`.
fn has_meta(regex: &str) -> bool {
    let b = regex.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' | b'^' | b'$' | b'?' | b'*' | b'+' | b'|' | b'[' | b'(' | b'{' => return true,
            b'\\' => i += 1,
            _ => {}
        }
        i += 1;
    }
    false
}

/// libselinux's `get_stem_from_spec`: the text before the second `/`, if it
/// has no meta character.
fn spec_stem(regex: &str) -> Option<&str> {
    let end = regex.get(1..)?.find('/')? + 1;
    let stem = &regex[..end];
    (!stem.contains(['.', '^', '$', '?', '*', '+', '|', '[', '(', '{'])).then_some(stem)
}

/// libselinux's `get_stem_from_file_name`.
fn path_stem(path: &str) -> Option<&str> {
    let end = path.get(1..)?.find('/')? + 1;
    Some(&path[..end])
}

/// C's `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The whitespace-separated fields of a line, as libselinux's
/// `read_spec_entries` reads them: at most `max`; `Ok(vec![])` for a blank
/// or comment line.
fn fields(line: &[u8], max: usize) -> Result<Vec<String>> {
    let mut i = 0;
    while i < line.len() && is_space(line[i]) {
        i += 1;
    }
    if i == line.len() || line[i] == b'#' {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    while out.len() < max {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        let start = i;
        while i < line.len() && !is_space(line[i]) {
            ensure!(line[i].is_ascii(), "non-ASCII characters found");
            i += 1;
        }
        if start == i {
            break;
        }
        out.push(String::from_utf8(line[start..i].to_vec()).expect("ASCII"));
    }
    Ok(out)
}

/// Whether `s` (just after a `{`) is a PCRE2 10.42 quantifier body
/// (`n}`, `n,}`, `n,m}`); otherwise PCRE2 takes the `{` literally.
fn is_quantifier(s: &[u8]) -> bool {
    let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
    let n = digits(s);
    if n == 0 {
        return false;
    }
    match s.get(n) {
        Some(b'}') => true,
        Some(b',') => {
            let m = digits(&s[n + 1..]);
            s.get(n + 1 + m) == Some(&b'}')
        }
        _ => false,
    }
}

/// Translate a PCRE2 pattern (as file_contexts uses them) into the `regex`
/// crate's syntax with the same meaning: literal `{`, `}` and `]` where PCRE
/// takes them literally, `[` inside a class literal, `$` matching at the end
/// or before a final newline, and class set operators (`&&`, `~~`, `--`)
/// that PCRE does not have escaped.
fn translate(pcre: &str) -> String {
    let b = pcre.as_bytes();
    let mut out = String::with_capacity(b.len() + 8);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' if i + 1 < b.len() => {
                push_escape(b[i + 1], &mut out);
                i += 2;
                continue;
            }
            b'[' => {
                i = translate_class(b, i, &mut out);
                continue;
            }
            b'{' if is_quantifier(&b[i + 1..]) => {
                let end = i + b[i..].iter().position(|&c| c == b'}').expect("quantifier");
                out.push_str(std::str::from_utf8(&b[i..=end]).expect("ASCII"));
                i = end + 1;
                continue;
            }
            b'{' => out.push_str("\\{"),
            b'}' => out.push_str("\\}"),
            b']' => out.push_str("\\]"),
            b'$' => out.push_str("(?:\n?\\z)"),
            _ => out.push(c as char),
        }
        i += 1;
    }
    out
}

/// A PCRE escape `\\n` in Rust regex syntax: letters and digits keep their
/// meaning, anything else is that character literally.
fn push_escape(n: u8, out: &mut String) {
    if n.is_ascii_alphanumeric() {
        out.push('\\');
        out.push(n as char);
    } else {
        out.push_str(&regex::escape(&(n as char).to_string()));
    }
}

/// Copy the character class starting at `b[start] == '['`; returns the
/// index after its closing `]`. An unclosed class is copied as is (the
/// compiler reports it).
fn translate_class(b: &[u8], start: usize, out: &mut String) -> usize {
    let mut i = start + 1;
    out.push('[');
    if b.get(i) == Some(&b'^') {
        out.push('^');
        i += 1;
    }
    // A `]` first in the class is a literal.
    if b.get(i) == Some(&b']') {
        out.push_str("\\]");
        i += 1;
    }
    while i < b.len() {
        let c = b[i];
        match c {
            b']' => {
                out.push(']');
                return i + 1;
            }
            b'\\' if i + 1 < b.len() => {
                push_escape(b[i + 1], out);
                i += 2;
                continue;
            }
            b'[' if b.get(i + 1) == Some(&b':') => {
                // A POSIX class `[:name:]`: copy through its `:]`.
                let rest = &b[i..];
                if let Some(end) = rest.windows(2).position(|w| w == b":]") {
                    out.push_str(std::str::from_utf8(&rest[..end + 2]).expect("ASCII"));
                    i += end + 2;
                    continue;
                }
                out.push_str("\\[");
            }
            b'[' => out.push_str("\\["),
            b'&' => out.push_str("\\&"),
            b'~' => out.push_str("\\~"),
            b'-' if b.get(i + 1) == Some(&b'-') => out.push_str("\\-"),
            _ => out.push(c as char),
        }
        i += 1;
    }
    i
}

/// The anchored pattern libselinux compiles for a spec (`^REGEX$`), in the
/// regex crate's syntax.
fn anchored(regex: &str) -> String {
    format!("^{}(?:\n?\\z)", translate(regex))
}

fn set_builder<I, S>(patterns: I) -> RegexSetBuilder
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut b = RegexSetBuilder::new(patterns);
    b.unicode(false)
        .dot_matches_new_line(true)
        .size_limit(1 << 30)
        .dfa_size_limit(64 << 20);
    b
}

/// Read a substitution file (libselinux's `selabel_subs_init`); a missing
/// file is no substitution. Returned in lookup order (last line first).
fn read_subs(path: &Path) -> Result<Vec<Sub>> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut out = Vec::new();
    for (n, line) in data.split(|&b| b == b'\n').enumerate() {
        let mut words = line
            .split(|&b| is_space(b))
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned());
        let Some(src) = words.next() else { continue };
        if src.starts_with('#') {
            continue;
        }
        let Some(dst) = words.next() else { continue };
        ensure!(
            src.starts_with('/') && dst.starts_with('/'),
            "{}:{}: substitution {src:?} -> {dst:?} is not between absolute paths",
            path.display(),
            n + 1
        );
        out.push(Sub { src, dst });
    }
    out.reverse();
    Ok(out)
}

/// libselinux's `selabel_sub`: the first substitution whose source is a
/// prefix of `key` ending at a component boundary.
fn substitute(subs: &[Sub], key: &str) -> Option<String> {
    for s in subs {
        let Some(rest) = key.strip_prefix(s.src.as_str()) else {
            continue;
        };
        if rest.is_empty() || rest.starts_with('/') {
            let rest = if rest.starts_with('/') && s.dst == "/" {
                &rest[1..]
            } else {
                rest
            };
            return Some(format!("{}{rest}", s.dst));
        }
    }
    None
}

/// libselinux's key cleanup: runs of `/` become one, a trailing `/` goes.
fn clean_key(path: &str) -> std::borrow::Cow<'_, str> {
    let mut key = std::borrow::Cow::Borrowed(path);
    if path.contains("//") {
        let mut s = String::with_capacity(path.len());
        for c in path.chars() {
            if !(c == '/' && s.ends_with('/')) {
                s.push(c);
            }
        }
        key = std::borrow::Cow::Owned(s);
    }
    if key.len() > 1 && key.ends_with('/') {
        let mut s = key.into_owned();
        s.pop();
        key = std::borrow::Cow::Owned(s);
    }
    key
}

/// A duplicate libselinux's validation reports in `file_contexts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    pub regex: String,
    pub first_line: usize,
    pub second_line: usize,
    /// The two specs give different contexts (libselinux: "Multiple
    /// different specifications"; else "Multiple same specifications").
    pub different: bool,
}

impl FileContexts {
    /// Load `path` (a `file_contexts`) with its `.homedirs`, `.local`,
    /// `.subs` and `.subs_dist` companions, as `selabel_open` does when
    /// given `SELABEL_OPT_PATH`.
    pub fn load(path: &Path) -> Result<FileContexts> {
        let with = |suffix: &str| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        };
        let dist_subs = read_subs(&with(".subs_dist"))?;
        let subs = read_subs(&with(".subs"))?;
        let mut files = vec![path.to_path_buf()];
        for extra in [".homedirs", ".local"] {
            let p = with(extra);
            if p.exists() {
                files.push(p);
            }
        }
        let mut texts = Vec::new();
        for f in &files {
            let data = std::fs::read(f).with_context(|| {
                let bin = with(".bin");
                if f == path && bin.exists() {
                    format!(
                        "reading {} (only the compiled {} is there; cosa reads the text form)",
                        f.display(),
                        bin.display()
                    )
                } else {
                    format!("reading SELinux file contexts {}", f.display())
                }
            })?;
            texts.push(data);
        }
        let parts: Vec<(&Path, &[u8])> = files
            .iter()
            .map(PathBuf::as_path)
            .zip(texts.iter().map(Vec::as_slice))
            .collect();
        Self::from_parts(&parts, subs, dist_subs)
    }

    /// Build from file contents in load order (the first is the base file).
    fn from_parts(parts: &[(&Path, &[u8])], subs: Vec<Sub>, dist_subs: Vec<Sub>) -> Result<Self> {
        let mut specs = Vec::new();
        let mut stems: Vec<String> = Vec::new();
        let mut stem_index: HashMap<String, usize> = HashMap::new();
        let mut base_count = 0;
        for (fi, (path, data)) in parts.iter().enumerate() {
            for (n, line) in data.split(|&b| b == b'\n').enumerate() {
                let lineno = n + 1;
                let at = || format!("{}:{lineno}", path.display());
                let f = fields(line, 3).with_context(at)?;
                let (regex, ty, context) = match f.len() {
                    0 => continue,
                    1 => bail!(
                        "{}: line is missing fields (want REGEX [TYPE] CONTEXT)",
                        at()
                    ),
                    2 => (f[0].clone(), None, f[1].clone()),
                    _ => (f[0].clone(), Some(f[1].clone()), f[2].clone()),
                };
                let mode = match &ty {
                    None => 0,
                    Some(t) => type_to_mode(t).with_context(|| {
                        format!(
                            "{}: invalid file type {t:?} (want --, -d, -l, -c, -b, -s or -p)",
                            at()
                        )
                    })?,
                };
                let stem = spec_stem(&regex).map(|s| {
                    *stem_index.entry(s.to_string()).or_insert_with(|| {
                        stems.push(s.to_string());
                        stems.len() - 1
                    })
                });
                specs.push(Spec {
                    has_meta: has_meta(&regex),
                    regex,
                    mode,
                    context: (context != "<<none>>").then_some(context),
                    stem,
                    file: fi,
                    line: lineno,
                });
            }
            if fi == 0 {
                base_count = specs.len();
            }
        }
        // libselinux's sort_specs: specs with meta characters first, then
        // the exact ones, each in load order.
        let mut order: Vec<usize> = (0..specs.len()).collect();
        order.sort_by_key(|&i| !specs[i].has_meta);
        let mut position = vec![0; specs.len()];
        for (pos, &i) in order.iter().enumerate() {
            position[i] = pos;
        }
        let base_order = (0..base_count).map(|i| position[i]).collect();
        let specs: Vec<Spec> = order.into_iter().map(|i| specs[i].clone()).collect();
        let files: Vec<PathBuf> = parts.iter().map(|(p, _)| p.to_path_buf()).collect();

        let mut members: Vec<Vec<usize>> = vec![Vec::new(); stems.len() + 1];
        for (i, s) in specs.iter().enumerate() {
            members[s.stem.map_or(0, |x| x + 1)].push(i);
        }
        let mut groups = members
            .into_iter()
            .map(|m| build_group(&specs, &files, m))
            .collect::<Result<Vec<_>>>()?;
        let no_stem = groups.remove(0);
        Ok(FileContexts {
            files,
            specs,
            base_count,
            base_order,
            stems,
            stem_index,
            no_stem,
            by_stem: groups,
            subs,
            dist_subs,
        })
    }

    /// Number of specs loaded (all files).
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The files read, in load order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The label of `path` for a file of `mode` (only the `S_IFMT` bits
    /// count; 0 matches specs of every type), or None when no spec matches
    /// or the matching one says `<<none>>`.
    pub fn lookup(&self, path: &str, mode: u32) -> Option<&str> {
        self.lookup_spec(path, mode)
            .and_then(|i| self.specs[i].context.as_deref())
    }

    /// Where the label of `path` comes from: `file:line`, for messages.
    pub fn source_of(&self, path: &str, mode: u32) -> Option<String> {
        self.lookup_spec(path, mode).map(|i| {
            let s = &self.specs[i];
            format!("{}:{}", self.files[s.file].display(), s.line)
        })
    }

    fn lookup_spec(&self, path: &str, mode: u32) -> Option<usize> {
        let key = clean_key(path);
        if key.is_empty() {
            return None;
        }
        let subbed = match substitute(&self.subs, &key) {
            Some(k) => Some(substitute(&self.dist_subs, &k).unwrap_or(k)),
            None => substitute(&self.dist_subs, &key),
        };
        let key = subbed.as_deref().unwrap_or(&key);
        let mode = mode & S_IFMT;
        let fits = |i: &usize| {
            let m = self.specs[*i].mode;
            mode == 0 || m == 0 || m == mode
        };
        let best = |g: &Group| {
            g.set
                .matches(key.as_bytes())
                .iter()
                .map(|p| g.specs[p])
                .filter(fits)
                .max()
        };
        let stem_group = path_stem(key)
            .and_then(|s| self.stem_index.get(s))
            .map(|&i| &self.by_stem[i]);
        let a = best(&self.no_stem);
        let b = stem_group.and_then(best);
        a.max(b)
    }

    /// The duplicates libselinux's validation rejects: in the base
    /// `file_contexts`, two specs with the same regex text whose types are
    /// the same or one of them untyped (`nodups_specs`).
    pub fn duplicates(&self) -> Vec<Duplicate> {
        let mut seen: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut out = Vec::new();
        for &i in &self.base_order {
            let s = &self.specs[i];
            let earlier = seen.entry(s.regex.as_str()).or_default();
            for &j in earlier.iter() {
                let t = &self.specs[j];
                if s.mode == 0 || t.mode == 0 || s.mode == t.mode {
                    out.push(Duplicate {
                        regex: s.regex.clone(),
                        first_line: t.line,
                        second_line: s.line,
                        different: s.context != t.context,
                    });
                }
            }
            earlier.push(i);
        }
        debug_assert!(self.base_count == self.base_order.len());
        out.sort_by_key(|d| (d.first_line, d.second_line));
        out
    }

    /// The stems specs are partitioned by (for statistics).
    pub fn stem_count(&self) -> usize {
        self.stems.len()
    }
}

/// Compile one group's set; on failure, name the first bad spec.
fn build_group(specs: &[Spec], files: &[PathBuf], members: Vec<usize>) -> Result<Group> {
    let patterns: Vec<String> = members.iter().map(|&i| anchored(&specs[i].regex)).collect();
    match set_builder(&patterns).build() {
        Ok(set) => Ok(Group {
            set,
            specs: members,
        }),
        Err(e) => {
            for (&i, p) in members.iter().zip(&patterns) {
                if let Err(err) = set_builder([p]).build() {
                    let s = &specs[i];
                    bail!(
                        "{}:{}: invalid regex {:?}: {err}",
                        files[s.file].display(),
                        s.line,
                        s.regex
                    );
                }
            }
            Err(e).context("compiling the file contexts' regexes")
        }
    }
}

/// Why a tree gets no labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoPolicy {
    /// `selinux: false` in the treefile.
    Disabled,
    /// No `selinux/config` in `etc/` or `usr/etc/`.
    NoConfig,
    /// `SELINUX=` is not enforcing or permissive (value given).
    NotEnabled(String),
}

impl std::fmt::Display for NoPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoPolicy::Disabled => write!(f, "selinux: false in the treefile"),
            NoPolicy::NoConfig => write!(
                f,
                "the tree has no etc/selinux/config or usr/etc/selinux/config"
            ),
            NoPolicy::NotEnabled(v) => write!(
                f,
                "the tree's selinux/config says SELINUX={v} (not enforcing or permissive)"
            ),
        }
    }
}

/// The labels of a commit: the tree's policy and ostree's path rules.
#[derive(Debug)]
pub struct Labeller {
    /// `SELINUXTYPE` of the tree's config.
    pub policy: String,
    pub contexts: FileContexts,
    /// rpm-ostree's `selinux-label-version` (1: `/usr/etc` labelled as `/etc`).
    pub label_version: u32,
    labelled: AtomicUsize,
    nanos: AtomicU64,
}

impl Labeller {
    /// The policy the tree at `rootfs` ships, as ostree's `OstreeSePolicy`
    /// finds it: `etc/selinux` if it exists, else `usr/etc/selinux`; its
    /// `config` must enable SELinux (`SELINUX=enforcing` or `permissive`)
    /// and name the policy (`SELINUXTYPE=`), whose
    /// `contexts/files/file_contexts` is loaded. `Ok(Err(why))` when the
    /// tree has no enabled policy.
    pub fn from_tree(
        rootfs: &Path,
        label_version: u32,
    ) -> Result<std::result::Result<Labeller, NoPolicy>> {
        ensure!(
            label_version <= 1,
            "selinux-label-version {label_version} is not supported (0 or 1)"
        );
        let mut dir = rootfs.join("etc/selinux");
        if !dir.exists() {
            dir = rootfs.join("usr/etc/selinux");
        }
        let config = dir.join("config");
        let text = match std::fs::read(&config) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Err(NoPolicy::NoConfig));
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", config.display())),
        };
        let mut policy = None;
        let mut enabled = None;
        for line in text.lines() {
            if let Some(t) = line.strip_prefix("SELINUXTYPE=") {
                policy = Some(t.trim().to_string());
            } else if let Some(v) = line.strip_prefix("SELINUX=") {
                enabled = Some(v.to_string());
            }
        }
        let enabled = enabled.unwrap_or_default();
        let lower = enabled.to_ascii_lowercase();
        if !(lower.starts_with("enforcing") || lower.starts_with("permissive")) {
            return Ok(Err(NoPolicy::NotEnabled(enabled.trim().to_string())));
        }
        let policy = policy.filter(|p| !p.is_empty()).with_context(|| {
            format!(
                "{} enables SELinux but names no SELINUXTYPE=",
                config.display()
            )
        })?;
        ensure!(
            !policy.contains('/') && policy != "." && policy != "..",
            "{}: SELINUXTYPE={policy:?} is not a policy name",
            config.display()
        );
        let fc = dir.join(&policy).join("contexts/files/file_contexts");
        let contexts = FileContexts::load(&fc)
            .with_context(|| format!("loading the {policy} SELinux policy's file contexts"))?;
        ensure!(
            contexts.lookup("/", libc::S_IFDIR | 0o755).is_some(),
            "{}: the policy gives / no label",
            fc.display()
        );
        Ok(Ok(Labeller {
            policy,
            contexts,
            label_version,
            labelled: AtomicUsize::new(0),
            nanos: AtomicU64::new(0),
        }))
    }

    /// The path ostree looks up for `path` in the commit: `/proc` as
    /// `/mnt`; with label version 1, `/usr/etc...` as `/etc...`.
    pub fn lookup_path<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        if path == "/proc" {
            return "/mnt".into();
        }
        if self.label_version == 1 {
            if path == "/usr/etc" {
                return "/etc".into();
            }
            if let Some(rest) = path.strip_prefix("/usr/etc/") {
                return format!("/etc/{rest}").into();
            }
        }
        path.into()
    }

    /// The label of `path` in the commit (absolute, `/` for the root) with
    /// `mode`; a path the policy leaves unlabelled is an error, as in
    /// rpm-ostree.
    pub fn label(&self, path: &str, mode: u32) -> Result<String> {
        let t = std::time::Instant::now();
        let key = self.lookup_path(path);
        let label = self.contexts.lookup(&key, mode).map(str::to_string);
        self.nanos
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        match label {
            Some(l) => {
                self.labelled.fetch_add(1, Ordering::Relaxed);
                Ok(l)
            }
            None => bail!(
                "SELinux policy {} has no label for {path}{} ({}); rpm-ostree refuses to commit \
                 unlabelled files",
                self.policy,
                if key != path {
                    format!(" (looked up as {key})")
                } else {
                    String::new()
                },
                match self.contexts.source_of(&key, mode) {
                    Some(src) => format!("{src} says <<none>>"),
                    None => "no spec matches".to_string(),
                }
            ),
        }
    }

    /// Paths labelled so far.
    pub fn labelled(&self) -> usize {
        self.labelled.load(Ordering::Relaxed)
    }

    /// Time spent in lookups so far, summed over threads.
    pub fn lookup_time(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }
}

/// The labeller for a commit of `rootfs` under the treefile's `selinux`
/// (default true, as rpm-ostree) and `selinux-label-version` (default 0).
pub fn labeller_for(
    rootfs: &Path,
    tf: &crate::config::treefile::Treefile,
) -> Result<std::result::Result<Labeller, NoPolicy>> {
    let selinux = match tf.other.get("selinux") {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(v) => bail!("treefile key selinux: expected a boolean, got {v}"),
    };
    let version = match tf.other.get("selinux-label-version") {
        None | Some(serde_json::Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .with_context(|| {
                format!("treefile key selinux-label-version: expected 0 or 1, got {v}")
            })?,
    };
    if !selinux {
        return Ok(Err(NoPolicy::Disabled));
    }
    Labeller::from_tree(rootfs, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fc(text: &str) -> FileContexts {
        FileContexts::from_parts(&[(Path::new("fc"), text.as_bytes())], vec![], vec![]).unwrap()
    }

    const REG: u32 = libc::S_IFREG | 0o644;
    const DIR: u32 = libc::S_IFDIR | 0o755;
    const LNK: u32 = libc::S_IFLNK | 0o777;

    #[test]
    fn last_match_wins_and_exact_specs_win_over_regexes() {
        let f = fc(
            "/usr(/.*)?\tu:r:usr_t\n/usr/bin\tu:r:exact_t\n/usr/bin(/.*)?\tu:r:bin_t\n/usr/.*\\.so\t--\tu:r:lib_t\n",
        );
        assert_eq!(f.lookup("/usr/x", REG), Some("u:r:usr_t"));
        assert_eq!(f.lookup("/usr/bin/ls", REG), Some("u:r:bin_t"));
        // Exact specs sort behind every regex spec.
        assert_eq!(f.lookup("/usr/bin", DIR), Some("u:r:exact_t"));
        assert_eq!(f.lookup("/usr/bin/a.so", REG), Some("u:r:lib_t"));
        assert_eq!(f.lookup("/usr/bin/a.so", LNK), Some("u:r:bin_t"));
        assert_eq!(f.lookup("/usr/bin/a.so", 0), Some("u:r:lib_t"));
        assert_eq!(f.lookup("/opt", DIR), None);
    }

    #[test]
    fn none_means_no_label_and_stops_the_search() {
        let f = fc("/.*\tu:r:default_t\n/tmp/.*\t<<none>>\n");
        assert_eq!(f.lookup("/tmp/x", REG), None);
        assert_eq!(f.source_of("/tmp/x", REG).unwrap(), "fc:2");
        assert_eq!(f.lookup("/tmp", DIR), Some("u:r:default_t"));
    }

    #[test]
    fn keys_are_cleaned_and_substituted() {
        let subs = vec![Sub {
            src: "/lib".into(),
            dst: "/usr/lib".into(),
        }];
        let dist = vec![Sub {
            src: "/usr/lib64".into(),
            dst: "/usr/lib".into(),
        }];
        let f = FileContexts::from_parts(
            &[(
                Path::new("fc"),
                b"/.*\tu:r:d_t\n/usr/lib(/.*)?\tu:r:lib_t\n/lib64\tu:r:x_t\n",
            )],
            subs,
            dist,
        )
        .unwrap();
        assert_eq!(f.lookup("/lib/a", REG), Some("u:r:lib_t"));
        assert_eq!(f.lookup("/libx/a", REG), Some("u:r:d_t"));
        assert_eq!(f.lookup("/usr/lib64//a/", REG), Some("u:r:lib_t"));
        assert_eq!(clean_key("///a//b/"), "/a/b");
        assert_eq!(clean_key("/"), "/");
    }

    #[test]
    fn pcre_syntax_is_translated() {
        assert_eq!(translate("/a{1,2}b{x}"), "/a{1,2}b\\{x\\}");
        assert_eq!(translate("/[]a[]x]"), "/[\\]a\\[]x\\]");
        assert_eq!(translate("/[[:alpha:]&]"), "/[[:alpha:]\\&]");
        assert_eq!(translate("/a\\.b\\d"), "/a\\.b\\d");
        let f = fc("/x{y}\tu:r:a_t\n/[]z]+\tu:r:b_t\n/n$\tu:r:c_t\n");
        assert_eq!(f.lookup("/x{y}", REG), Some("u:r:a_t"));
        assert_eq!(f.lookup("/]z", REG), Some("u:r:b_t"));
        // PCRE's `$` also matches before a final newline.
        assert_eq!(f.lookup("/n\n", REG), Some("u:r:c_t"));
        assert_eq!(f.lookup("/n\nx", REG), None);
    }

    #[test]
    fn stems_partition_as_libselinux_does() {
        assert_eq!(spec_stem("/usr/lib(/.*)?"), Some("/usr"));
        assert_eq!(spec_stem("/usr(/.*)?"), None);
        assert_eq!(spec_stem("/(usr|opt)/x"), None);
        assert_eq!(path_stem("/usr/lib"), Some("/usr"));
        assert_eq!(path_stem("/usr"), None);
        // A top-level alternation after a stem only ever matches paths of
        // that stem: libselinux never tries the spec for other stems.
        let f = fc("/usr/a|/opt/b\tu:r:x_t\n");
        assert_eq!(f.lookup("/usr/a", REG), Some("u:r:x_t"));
        assert_eq!(f.lookup("/opt/b", REG), None);
        let f = fc("/(usr/a|opt/b)\tu:r:x_t\n");
        assert_eq!(f.lookup("/opt/b", REG), Some("u:r:x_t"));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let parts = |t: &'static str| {
            FileContexts::from_parts(&[(Path::new("fc"), t.as_bytes())], vec![], vec![])
                .unwrap_err()
        };
        let e = format!("{:#}", parts("# c\n/a\n"));
        assert!(e.contains("fc:2") && e.contains("missing fields"), "{e}");
        let e = format!("{:#}", parts("/a -x u:r:t\n"));
        assert!(e.contains("fc:1") && e.contains("invalid file type"), "{e}");
        let e = format!("{:#}", parts("/b u:r:t\n/a(/.* u:r:t\n"));
        assert!(e.contains("fc:2") && e.contains("invalid regex"), "{e}");
        let e = format!("{:#}", parts("/é u:r:t\n"));
        assert!(e.contains("fc:1") && e.contains("non-ASCII"), "{e}");
    }

    #[test]
    fn duplicates_follow_nodups_specs() {
        let f = fc("/a u:r:x\n/a -d u:r:y\n/b -- u:r:x\n/b -d u:r:x\n/c u:r:x\n/c u:r:x\n");
        assert_eq!(
            f.duplicates(),
            vec![
                Duplicate {
                    regex: "/a".into(),
                    first_line: 1,
                    second_line: 2,
                    different: true
                },
                Duplicate {
                    regex: "/c".into(),
                    first_line: 5,
                    second_line: 6,
                    different: false
                },
            ]
        );
    }

    #[test]
    fn commit_paths_follow_ostree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(
            Labeller::from_tree(root, 0).unwrap().unwrap_err(),
            NoPolicy::NoConfig
        );
        std::fs::create_dir_all(root.join("usr/etc/selinux/t/contexts/files")).unwrap();
        std::fs::write(
            root.join("usr/etc/selinux/config"),
            "SELINUX=disabled\nSELINUXTYPE=t\n",
        )
        .unwrap();
        assert_eq!(
            Labeller::from_tree(root, 0).unwrap().unwrap_err(),
            NoPolicy::NotEnabled("disabled".into())
        );
        std::fs::write(
            root.join("usr/etc/selinux/config"),
            "SELINUX=permissive\nSELINUXTYPE=t\n",
        )
        .unwrap();
        std::fs::write(
            root.join("usr/etc/selinux/t/contexts/files/file_contexts"),
            "/.* u:r:d_t\n/etc(/.*)? u:r:etc_t\n/mnt -d u:r:mnt_t\n/tmp/.* <<none>>\n",
        )
        .unwrap();
        let v0 = Labeller::from_tree(root, 0).unwrap().unwrap();
        assert_eq!(v0.label("/usr/etc/x", REG).unwrap(), "u:r:d_t");
        assert_eq!(v0.label("/proc", DIR).unwrap(), "u:r:mnt_t");
        let v1 = Labeller::from_tree(root, 1).unwrap().unwrap();
        assert_eq!(v1.label("/usr/etc/x", REG).unwrap(), "u:r:etc_t");
        assert_eq!(v1.label("/usr/etc", DIR).unwrap(), "u:r:etc_t");
        assert_eq!(v1.label("/usr/etcx", DIR).unwrap(), "u:r:d_t");
        let e = format!("{:#}", v1.label("/tmp/x", REG).unwrap_err());
        assert!(
            e.contains("/tmp/x") && e.contains("file_contexts:4 says <<none>>"),
            "{e}"
        );
        assert_eq!(v1.labelled(), 3);
    }
}
