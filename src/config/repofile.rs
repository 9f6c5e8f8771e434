//! dnf `.repo` files (INI) beside the manifest: the repositories a treefile's
//! `repos` names, with dnf's variables substituted.
//!
//! The syntax follows libdnf's INI parser: `[id]` sections, `key=value`
//! lines, `#`/`;` comment lines, and continuation lines that start with
//! whitespace. List options (`baseurl`, `gpgkey`, `exclude`, ...) split on
//! commas and whitespace, as libdnf's `OptionStringList` does. Options cosa
//! does not use (`metadata_expire`, `fastestmirror`, ...) are ignored.
//!
//! Variables (`$name`, `${name}`, `${name:-default}`, `${name:+alt}`) come
//! from [`repo_vars`]: `basearch`, `arch` and `releasever` that cosa sets,
//! the manifest's `repovars`, and `DNF_VAR_<name>` (and `DNF0`..`DNF9`) in
//! the environment, which win over `repovars` as libdnf's environment wins
//! over its vars directories (rpm-ostree hands `repovars` to libdnf as one).
//! dnf leaves an unknown variable in place; in a URL (`baseurl`,
//! `metalink`, `mirrorlist`, `gpgkey`) cosa refuses it instead, naming the
//! file, line, repo and variable, since such a URL can only fail later.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::{Context, Result, anyhow, bail};
use regex::Regex;

/// One `[id]` section of a `.repo` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoDef {
    pub id: String,
    pub name: Option<String>,
    /// `baseurl` entries (the key may list several), variables substituted.
    pub baseurls: Vec<String>,
    pub metalink: Option<String>,
    pub mirrorlist: Option<String>,
    pub enabled: bool,
    pub gpgcheck: bool,
    /// `gpgkey` URLs (file:// or http(s)://), variables substituted.
    pub gpgkeys: Vec<String>,
    /// Lower wins, as in dnf; default 99.
    pub priority: u32,
    /// default 1000.
    pub cost: u32,
    /// `excludepkgs=` and `exclude=`: package specs (NEVRA globs, as dnf)
    /// never taken from this repo.
    pub exclude: Vec<String>,
    /// When one of these specs matches, only the packages they match are
    /// taken from this repo.
    pub includepkgs: Vec<String>,
    /// `repo_gpgcheck=1`: repomd.xml must carry a good detached signature
    /// (`repomd.xml.asc`) by one of `gpgkeys`.
    pub repo_gpgcheck: bool,
    /// `skip_if_unavailable=1`: a repo whose metadata cannot be loaded is
    /// left out with a warning instead of failing the build. dnf's default
    /// is false (since dnf 4.2; dnf5 keeps it), and Fedora's repo files say
    /// so explicitly.
    pub skip_if_unavailable: bool,
    /// The file the section came from (for error messages).
    pub source: PathBuf,
}

impl RepoDef {
    /// A repo with dnf's defaults and nothing to fetch from yet.
    pub fn new(id: &str, source: &Path) -> RepoDef {
        RepoDef {
            id: id.to_string(),
            name: None,
            baseurls: Vec::new(),
            metalink: None,
            mirrorlist: None,
            enabled: true,
            gpgcheck: false,
            gpgkeys: Vec::new(),
            priority: DEFAULT_PRIORITY,
            cost: DEFAULT_COST,
            exclude: Vec::new(),
            includepkgs: Vec::new(),
            repo_gpgcheck: false,
            skip_if_unavailable: false,
            source: source.to_path_buf(),
        }
    }
}

/// dnf's default repo priority.
const DEFAULT_PRIORITY: u32 = 99;
/// dnf's default repo cost.
pub const DEFAULT_COST: u32 = 1000;

/// The variables repo files are read with: `basearch` and `arch` (the build's
/// arch: cosa's arches are their own base arches), `releasever` (the
/// manifest's, or else `DNF_VAR_releasever`), the manifest's `repovars`, then
/// `env`'s `DNF_VAR_<name>` and `DNF0`..`DNF9` over them. An environment
/// value that contradicts the arch or the manifest's releasever is refused.
pub fn repo_vars(
    basearch: &str,
    releasever: Option<&str>,
    repovars: &BTreeMap<String, String>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>> {
    let mut vars = repovars.clone();
    let mut fixed: BTreeMap<&str, String> = BTreeMap::new();
    fixed.insert("basearch", basearch.to_string());
    fixed.insert("arch", basearch.to_string());
    if let Some(rv) = releasever {
        fixed.insert("releasever", rv.to_string());
    }
    for (key, value) in env {
        let name = match key.strip_prefix("DNF_VAR_") {
            Some(n) if VAR_NAME_RE.is_match(n) => n.to_string(),
            Some(_) => continue,
            None if key.len() == 4
                && key.starts_with("DNF")
                && key.as_bytes()[3].is_ascii_digit() =>
            {
                key.clone()
            }
            None => continue,
        };
        if let Some(own) = fixed.get(name.as_str()) {
            if *own != value {
                bail!(
                    "the environment sets {key}={value:?}, but cosa sets ${name} to {own:?} \
                     (from --arch or the manifest's releasever); unset {key}"
                );
            }
            continue;
        }
        vars.insert(name, value);
    }
    for (k, v) in fixed {
        vars.insert(k.to_string(), v);
    }
    Ok(vars)
}

/// dnf variable names.
static VAR_NAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_]+$").expect("valid regex"));

/// Read every `*.repo` file in `dir`. `vars` holds the variables to
/// substitute (see [`repo_vars`]).
pub fn load_repo_dir(dir: &Path, vars: &BTreeMap<String, String>) -> Result<Vec<RepoDef>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading repo directory {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading repo directory {}", dir.display()))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "repo") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut repos: Vec<RepoDef> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading repo file {}", file.display()))?;
        for repo in parse_repo_file(&file, &text, vars)? {
            if let Some(prev) = repos.iter().find(|r| r.id == repo.id) {
                bail!(
                    "repository id \"{}\" is defined twice: in {} and in {}",
                    repo.id,
                    prev.source.display(),
                    repo.source.display()
                );
            }
            repos.push(repo);
        }
    }
    Ok(repos)
}

/// One section as read: its id, its line, and its options in order.
struct Section {
    id: String,
    line: usize,
    options: Vec<(String, String, usize)>,
}

/// dnf repo ids: letters, digits and `-_.:`.
static ID_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_.:-]+$").expect("valid regex"));

/// Split INI text into sections (libdnf syntax).
fn parse_ini(file: &Path, text: &str) -> Result<Vec<Section>> {
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        let at = || format!("{}:{lineno}", file.display());
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Continuation of the previous option's value.
            let opt = sections
                .last_mut()
                .and_then(|s| s.options.last_mut())
                .ok_or_else(|| {
                    anyhow!("{}: continuation line without an option: {trimmed:?}", at())
                })?;
            opt.1.push('\n');
            opt.1.push_str(trimmed);
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let id = rest
                .strip_suffix(']')
                .ok_or_else(|| anyhow!("{}: malformed section header {trimmed:?}", at()))?
                .trim();
            if !ID_RE.is_match(id) {
                bail!(
                    "{}: invalid repository id {id:?} (allowed: letters, digits, '-', '_', '.', ':')",
                    at()
                );
            }
            if let Some(prev) = sections.iter().find(|s| s.id == id) {
                bail!(
                    "{}: repository id \"{id}\" is defined twice in this file (first at line {})",
                    at(),
                    prev.line
                );
            }
            sections.push(Section {
                id: id.to_string(),
                line: lineno,
                options: Vec::new(),
            });
            continue;
        }
        let (key, value) = trimmed
            .split_once('=')
            .ok_or_else(|| anyhow!("{}: malformed line (expected key=value): {trimmed:?}", at()))?;
        let key = key.trim();
        if key.is_empty() {
            bail!("{}: malformed line (empty key): {trimmed:?}", at());
        }
        let section = sections
            .last_mut()
            .ok_or_else(|| anyhow!("{}: option {key:?} outside of any [repo] section", at()))?;
        section
            .options
            .push((key.to_string(), value.trim().to_string(), lineno));
    }
    Ok(sections)
}

/// Parse the text of one `.repo` file.
fn parse_repo_file(
    file: &Path,
    text: &str,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<RepoDef>> {
    parse_ini(file, text)?
        .into_iter()
        .map(|s| section_to_repo(file, s, vars))
        .collect()
}

fn section_to_repo(
    file: &Path,
    section: Section,
    vars: &BTreeMap<String, String>,
) -> Result<RepoDef> {
    let mut repo = RepoDef::new(&section.id, file);
    let mut excludes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (key, raw, line) in &section.options {
        let mut unknown = Vec::new();
        let value = substitute(raw, vars, &mut unknown);
        let at = || format!("{}:{line}: [{}] {key}", file.display(), repo.id);
        if let Some(name) = unknown.first()
            && URL_KEYS.contains(&key.as_str())
        {
            bail!(
                "{}: undefined variable ${name} in {value:?} (cosa sets basearch, arch \
                 and releasever; define others with the manifest's repovars or \
                 DNF_VAR_{name} in the environment)",
                at()
            );
        }
        let boolean =
            || parse_bool(&value).ok_or_else(|| anyhow!("{}: not a boolean: {value:?}", at()));
        match key.as_str() {
            "name" => repo.name = Some(value),
            "baseurl" => repo.baseurls = split_list(&value),
            "metalink" => repo.metalink = non_empty(value),
            "mirrorlist" => repo.mirrorlist = non_empty(value),
            "enabled" => repo.enabled = boolean()?,
            "gpgcheck" => repo.gpgcheck = boolean()?,
            "repo_gpgcheck" => repo.repo_gpgcheck = boolean()?,
            "skip_if_unavailable" => repo.skip_if_unavailable = boolean()?,
            "gpgkey" => repo.gpgkeys = split_list(&value),
            "priority" => {
                repo.priority = parse_u32(&value)
                    .ok_or_else(|| anyhow!("{}: not a non-negative integer: {value:?}", at()))?
            }
            "cost" => {
                repo.cost = parse_u32(&value)
                    .ok_or_else(|| anyhow!("{}: not a non-negative integer: {value:?}", at()))?
            }
            "exclude" | "excludepkgs" => {
                excludes.insert(
                    if key == "exclude" {
                        "exclude"
                    } else {
                        "excludepkgs"
                    },
                    split_list(&value),
                );
            }
            "includepkgs" => repo.includepkgs = split_list(&value),
            _ => {}
        }
    }
    // dnf treats `exclude` as an alias of `excludepkgs`; honour both.
    repo.exclude = excludes.into_values().flatten().collect();
    Ok(repo)
}

/// Options whose values are URLs: an unknown variable in them is an error.
const URL_KEYS: [&str; 4] = ["baseurl", "metalink", "mirrorlist", "gpgkey"];

fn non_empty(s: String) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.trim().to_string())
}

/// libdnf booleans: 1/0, yes/no, true/false, on/off (any case).
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

fn parse_u32(s: &str) -> Option<u32> {
    s.trim().parse().ok()
}

/// libdnf `OptionStringList`: items separated by commas and whitespace
/// (including newlines from continuation lines).
fn split_list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// dnf variable substitution: `$var`, `${var}`, `${var:-default}` and
/// `${var:+alternate}`. Unknown variables are left as written, as dnf does,
/// and their names pushed onto `unknown`.
fn substitute(s: &str, vars: &BTreeMap<String, String>, unknown: &mut Vec<String>) -> String {
    static VAR_RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\$(?:\{([A-Za-z0-9_]+)(?::([-+])([^}]*))?\}|([A-Za-z0-9_]+))")
            .expect("valid regex")
    });
    VAR_RE
        .replace_all(s, |c: &regex::Captures| {
            let whole = c[0].to_string();
            let name = c.get(4).or(c.get(1)).expect("one name group").as_str();
            let missing = || {
                unknown.push(name.to_string());
                whole.clone()
            };
            if c.get(4).is_some() {
                return vars.get(name).cloned().unwrap_or_else(missing);
            }
            let value = vars.get(name).filter(|v| !v.is_empty());
            match (c.get(2).map(|m| m.as_str()), value) {
                (None, Some(v)) => v.clone(),
                (None, None) => vars.get(name).cloned().unwrap_or_else(missing),
                (Some("-"), Some(v)) => v.clone(),
                (Some("-"), None) => substitute(&c[3], vars, unknown),
                (Some(_), Some(_)) => substitute(&c[3], vars, unknown),
                (Some(_), None) => String::new(),
            }
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [
            ("basearch", "x86_64"),
            ("releasever", "40"),
            ("stream", "next"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write repo file");
    }

    #[test]
    fn full_section() {
        let text = "\
# comment
; another
[fedora]
name=Fedora $releasever - $basearch
baseurl=https://a.example/$releasever/$basearch/ https://b.example/${releasever}/,https://c.example/x
  https://d.example/${basearch}
enabled=1
gpgcheck = yes
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-$releasever-$basearch
   file://keys/local.gpg
priority=10
cost=500
exclude=kernel*, foo bar
excludepkgs=baz
includepkgs=a*,b*
skip_if_unavailable=False
metadata_expire=7d
";
        let repos = parse_repo_file(Path::new("/x/f.repo"), text, &vars()).unwrap();
        assert_eq!(repos.len(), 1);
        let r = &repos[0];
        assert_eq!(r.id, "fedora");
        assert_eq!(r.name.as_deref(), Some("Fedora 40 - x86_64"));
        assert_eq!(
            r.baseurls,
            [
                "https://a.example/40/x86_64/",
                "https://b.example/40/",
                "https://c.example/x",
                "https://d.example/x86_64"
            ]
        );
        assert!(r.enabled);
        assert!(r.gpgcheck);
        assert_eq!(
            r.gpgkeys,
            [
                "file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-40-x86_64",
                "file://keys/local.gpg"
            ]
        );
        assert_eq!(r.priority, 10);
        assert_eq!(r.cost, 500);
        assert_eq!(r.exclude, ["kernel*", "foo", "bar", "baz"]);
        assert_eq!(r.includepkgs, ["a*", "b*"]);
        assert_eq!(r.source, Path::new("/x/f.repo"));
    }

    #[test]
    fn defaults() {
        let repos = parse_repo_file(
            Path::new("f.repo"),
            "[r]\nmetalink=https://m/?arch=$basearch\n",
            &vars(),
        )
        .unwrap();
        let r = &repos[0];
        assert_eq!(r.name, None);
        assert!(r.baseurls.is_empty());
        assert_eq!(r.metalink.as_deref(), Some("https://m/?arch=x86_64"));
        assert_eq!(r.mirrorlist, None);
        assert!(r.enabled);
        assert!(!r.gpgcheck);
        assert_eq!(r.priority, 99);
        assert_eq!(r.cost, 1000);
        assert!(r.exclude.is_empty() && r.includepkgs.is_empty() && r.gpgkeys.is_empty());
    }

    #[test]
    fn booleans() {
        for (s, b) in [
            ("1", true),
            ("0", false),
            ("True", true),
            ("false", false),
            ("yes", true),
            ("NO", false),
            ("on", true),
            ("off", false),
        ] {
            let text = format!("[r]\nenabled={s}\ngpgcheck={s}\n");
            let r = &parse_repo_file(Path::new("f.repo"), &text, &vars()).unwrap()[0];
            assert_eq!((r.enabled, r.gpgcheck), (b, b), "{s}");
        }
        let err =
            parse_repo_file(Path::new("f.repo"), "[r]\n\nenabled=maybe\n", &vars()).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "f.repo:3: [r] enabled: not a boolean: \"maybe\""
        );
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let cases = [
            ("[r]\nbaseurl=x\nthis is junk\n", "f.repo:3: malformed line"),
            ("baseurl=x\n", "f.repo:1: option \"baseurl\" outside"),
            ("[r\n", "f.repo:1: malformed section header"),
            ("  continued\n[r]\n", "f.repo:1: continuation line"),
            ("[bad id]\n", "f.repo:1: invalid repository id"),
            (
                "[r]\npriority=high\n",
                "f.repo:2: [r] priority: not a non-negative integer",
            ),
            (
                "[r]\ncost=-1\n",
                "f.repo:2: [r] cost: not a non-negative integer",
            ),
            ("[r]\n=x\n", "f.repo:2: malformed line (empty key)"),
            (
                "[r]\n[s]\n[r]\n",
                "f.repo:3: repository id \"r\" is defined twice in this file (first at line 1)",
            ),
        ];
        for (text, want) in cases {
            let err = format!(
                "{:#}",
                parse_repo_file(Path::new("f.repo"), text, &vars()).unwrap_err()
            );
            assert!(err.starts_with(want), "{text:?}: got {err}");
        }
    }

    fn subst(s: &str, v: &BTreeMap<String, String>) -> (String, Vec<String>) {
        let mut unknown = Vec::new();
        (substitute(s, v, &mut unknown), unknown)
    }

    #[test]
    fn substitution_forms() {
        let v = vars();
        let ok = |s: &str| {
            let (out, unknown) = subst(s, &v);
            assert!(unknown.is_empty(), "{s}: {unknown:?}");
            out
        };
        assert_eq!(ok("$basearch/${releasever}"), "x86_64/40");
        assert_eq!(ok("${nope:-fallback-$basearch}"), "fallback-x86_64");
        assert_eq!(ok("${stream:-fallback}"), "next");
        assert_eq!(ok("${stream:+alt}"), "alt");
        assert_eq!(ok("${nope:+alt}"), "");
        assert_eq!(ok("$stream-x $releasever.1"), "next-x 40.1");
        assert_eq!(ok("no vars $ here"), "no vars $ here");
        assert_eq!(
            subst("$unknown/${other}/${nope:-$third}", &v),
            (
                "$unknown/${other}/$third".to_string(),
                vec!["unknown".into(), "other".into(), "third".into()]
            )
        );
    }

    #[test]
    fn undefined_variable_in_a_url_names_file_repo_and_variable() {
        for key in ["baseurl", "metalink", "mirrorlist", "gpgkey"] {
            let text = format!("[fedora]\nname=F $stream\n{key}=https://m/$releasever/$frob/\n");
            let err = format!(
                "{:#}",
                parse_repo_file(Path::new("/c/fedora.repo"), &text, &vars()).unwrap_err()
            );
            assert!(
                err.starts_with(&format!(
                    "/c/fedora.repo:3: [fedora] {key}: undefined variable $frob in \"https://m/40/$frob/\""
                )),
                "{err}"
            );
            assert!(err.contains("DNF_VAR_frob"), "{err}");
        }
        // Outside URLs dnf's rule holds: left as written.
        let r = &parse_repo_file(Path::new("f.repo"), "[r]\nname=$frob\n", &vars()).unwrap()[0];
        assert_eq!(r.name.as_deref(), Some("$frob"));
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn repo_vars_layers() {
        let repovars: BTreeMap<String, String> = [("stream", "next"), ("contentdir", "pub")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let v = repo_vars(
            "aarch64",
            Some("41"),
            &repovars,
            env(&[
                ("DNF_VAR_stream", "testing"),
                ("DNF_VAR_extra", "x"),
                ("DNF3", "three"),
                ("DNF10", "not a dnf var"),
                ("DNF_VAR_bad-name", "ignored"),
                ("PATH", "/bin"),
                ("DNF_VAR_basearch", "aarch64"),
            ]),
        )
        .unwrap();
        let got: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("DNF3", "three"),
                ("arch", "aarch64"),
                ("basearch", "aarch64"),
                ("contentdir", "pub"),
                ("extra", "x"),
                ("releasever", "41"),
                ("stream", "testing"),
            ]
        );
        // Without a manifest releasever the environment may supply it.
        let v = repo_vars(
            "x86_64",
            None,
            &BTreeMap::new(),
            env(&[("DNF_VAR_releasever", "42")]),
        )
        .unwrap();
        assert_eq!(v["releasever"], "42");
        // ... but not contradict cosa's own values.
        for (k, val) in [("DNF_VAR_basearch", "s390x"), ("DNF_VAR_releasever", "40")] {
            let err = repo_vars("x86_64", Some("41"), &BTreeMap::new(), env(&[(k, val)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(k) && err.contains("unset"), "{err}");
        }
    }

    #[test]
    fn repo_gpgcheck_and_skip_if_unavailable() {
        let r = &parse_repo_file(
            Path::new("f.repo"),
            "[r]\nrepo_gpgcheck=1\nskip_if_unavailable=True\n",
            &vars(),
        )
        .unwrap()[0];
        assert!(r.repo_gpgcheck && r.skip_if_unavailable);
        let r = &parse_repo_file(Path::new("f.repo"), "[r]\n", &vars()).unwrap()[0];
        assert!(!r.repo_gpgcheck && !r.skip_if_unavailable, "dnf's defaults");
        let err = parse_repo_file(Path::new("f.repo"), "[r]\nrepo_gpgcheck=2\n", &vars())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "f.repo:2: [r] repo_gpgcheck: not a boolean: \"2\"");
    }

    #[test]
    fn crlf_and_comments() {
        let text = "[r]\r\nbaseurl=file:///srv/repo\r\n# baseurl=http://ignored\r\n";
        let r = &parse_repo_file(Path::new("f.repo"), text, &vars()).unwrap()[0];
        assert_eq!(r.baseurls, ["file:///srv/repo"]);
    }

    #[test]
    fn directory_sorted_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "b.repo",
            "[beta]\nbaseurl=file:///b\n[gamma]\nbaseurl=file:///g\n",
        );
        write(
            dir.path(),
            "a.repo",
            "[alpha]\nbaseurl=file:///a/$basearch\n",
        );
        write(dir.path(), "notes.txt", "[ignored]\nbaseurl=x\n");
        std::fs::create_dir(dir.path().join("sub.repo")).unwrap();
        let repos = load_repo_dir(dir.path(), &vars()).unwrap();
        let ids: Vec<&str> = repos.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["alpha", "beta", "gamma"]);
        assert_eq!(repos[0].baseurls, ["file:///a/x86_64"]);
        assert_eq!(repos[0].source, dir.path().join("a.repo"));

        write(dir.path(), "c.repo", "[beta]\nbaseurl=file:///other\n");
        let err = format!("{:#}", load_repo_dir(dir.path(), &vars()).unwrap_err());
        assert_eq!(
            err,
            format!(
                "repository id \"beta\" is defined twice: in {} and in {}",
                dir.path().join("b.repo").display(),
                dir.path().join("c.repo").display()
            )
        );
    }

    #[test]
    fn missing_directory() {
        let err = format!(
            "{:#}",
            load_repo_dir(Path::new("/nonexistent/cosa-repos"), &vars()).unwrap_err()
        );
        assert!(
            err.starts_with("reading repo directory /nonexistent/cosa-repos"),
            "{err}"
        );
    }

    #[test]
    fn malformed_file_in_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "x.repo", "[x]\nbaseurl=file:///x\ngarbage\n");
        let err = format!("{:#}", load_repo_dir(dir.path(), &vars()).unwrap_err());
        assert!(
            err.starts_with(&format!(
                "{}:3: malformed line",
                dir.path().join("x.repo").display()
            )),
            "{err}"
        );
    }
}
