//! dnf `.repo` files (INI) beside the manifest: the repositories a treefile's
//! `repos` names, with `$basearch`/`$releasever` substituted.
//!
//! The syntax follows libdnf's INI parser: `[id]` sections, `key=value`
//! lines, `#`/`;` comment lines, and continuation lines that start with
//! whitespace. List options (`baseurl`, `gpgkey`, `exclude`, ...) split on
//! commas and whitespace, as libdnf's `OptionStringList` does. Options cosa
//! does not use (`skip_if_unavailable`, `metadata_expire`, ...) are ignored.

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
    /// Package name globs never taken from this repo.
    pub exclude: Vec<String>,
    /// When non-empty, only package names matching these globs are taken.
    pub includepkgs: Vec<String>,
    /// The file the section came from (for error messages).
    pub source: PathBuf,
}

/// dnf's default repo priority.
const DEFAULT_PRIORITY: u32 = 99;
/// dnf's default repo cost.
pub const DEFAULT_COST: u32 = 1000;

/// Read every `*.repo` file in `dir`. `vars` holds `basearch`, `releasever`
/// and any other `$var` to substitute.
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
    let mut repo = RepoDef {
        id: section.id,
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
        source: file.to_path_buf(),
    };
    let mut excludes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (key, raw, line) in &section.options {
        let value = substitute(raw, vars);
        let at = || format!("{}:{line}: [{}] {key}", file.display(), repo.id);
        match key.as_str() {
            "name" => repo.name = Some(value),
            "baseurl" => repo.baseurls = split_list(&value),
            "metalink" => repo.metalink = non_empty(value),
            "mirrorlist" => repo.mirrorlist = non_empty(value),
            "enabled" => {
                repo.enabled = parse_bool(&value)
                    .ok_or_else(|| anyhow!("{}: not a boolean: {value:?}", at()))?
            }
            "gpgcheck" => {
                repo.gpgcheck = parse_bool(&value)
                    .ok_or_else(|| anyhow!("{}: not a boolean: {value:?}", at()))?
            }
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
/// `${var:+alternate}`. Unknown variables are left as written, as dnf does.
fn substitute(s: &str, vars: &BTreeMap<String, String>) -> String {
    static VAR_RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\$(?:\{([A-Za-z0-9_]+)(?::([-+])([^}]*))?\}|([A-Za-z0-9_]+))")
            .expect("valid regex")
    });
    VAR_RE
        .replace_all(s, |c: &regex::Captures| {
            let whole = c[0].to_string();
            if let Some(name) = c.get(4) {
                return vars.get(name.as_str()).cloned().unwrap_or(whole);
            }
            let name = &c[1];
            let value = vars.get(name).filter(|v| !v.is_empty());
            match (c.get(2).map(|m| m.as_str()), value) {
                (None, Some(v)) => v.clone(),
                (None, None) => vars.get(name).cloned().unwrap_or(whole),
                (Some("-"), Some(v)) => v.clone(),
                (Some("-"), None) => substitute(&c[3], vars),
                (Some(_), Some(_)) => substitute(&c[3], vars),
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

    #[test]
    fn substitution_forms() {
        let v = vars();
        assert_eq!(substitute("$basearch/${releasever}", &v), "x86_64/40");
        assert_eq!(substitute("$unknown/${unknown}", &v), "$unknown/${unknown}");
        assert_eq!(
            substitute("${nope:-fallback-$basearch}", &v),
            "fallback-x86_64"
        );
        assert_eq!(substitute("${stream:-fallback}", &v), "next");
        assert_eq!(substitute("${stream:+alt}", &v), "alt");
        assert_eq!(substitute("${nope:+alt}", &v), "");
        assert_eq!(substitute("$stream-x $releasever.1", &v), "next-x 40.1");
        assert_eq!(substitute("no vars $ here", &v), "no vars $ here");
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
