//! rpm-ostree treefiles (`manifest.yaml` / `.json`): includes, per-arch and
//! conditional includes, variables, and every key cosa understands.
//!
//! The semantics mirror rpm-ostree's `rust/src/treefile.rs`
//! (<https://github.com/coreos/rpm-ostree/blob/main/docs/treefile.md>):
//!
//! - an included file is loaded first and merged under the includer: scalars
//!   of the includer win, lists are concatenated (included first), maps merge
//!   key by key with the includer winning. With several includes, each later
//!   include is merged under the result of the earlier ones, so its list items
//!   come first (rpm-ostree documents this order for `postprocess`);
//! - `include`, then `arch-include[basearch]`, then matching
//!   `conditional-include` entries are processed, in that order;
//! - `variables` are folded top-down (the includer overrides) before the
//!   file's conditional includes are evaluated; `basearch` and `releasever`
//!   are reserved and filled in automatically;
//! - including the same file twice is refused, as rpm-ostree does.
//!
//! Differences, all on the side of catching mistakes early: unknown keys are
//! refused in JSON too (rpm-ostree ignores them there), an undefined
//! `${var}` is an error instead of being left in place, and client-side
//! "derivation" keys (`override-remove`, ...) are refused with their own
//! message. Extensions: an unquoted versioned spec (`podman >= 4.1`) and a
//! parenthesised rich dependency stay whole in `packages`; conditions also
//! accept bare words (`basearch == x86_64`) and a bare variable (truthy).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::{Context, Result, anyhow, bail};
use regex::Regex;
use serde_json::{Map, Value};

/// rpm-ostree's `INCLUDE_MAXDEPTH`.
const INCLUDE_MAXDEPTH: usize = 50;

/// `repo-packages` entry: take these packages only from `repo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPackages {
    pub repo: String,
    pub packages: Vec<String>,
}

/// A fully loaded treefile: includes merged, `packages-<arch>` folded into
/// `packages`, variables substituted.
#[derive(Debug, Clone, Default)]
pub struct Treefile {
    /// The top-level file.
    pub path: PathBuf,
    pub ref_: Option<String>,
    pub releasever: Option<String>,
    pub repos: Vec<String>,
    pub lockfile_repos: Vec<String>,
    pub packages: Vec<String>,
    pub repo_packages: Vec<RepoPackages>,
    pub exclude_packages: Vec<String>,
    /// rpm-ostree's default is true.
    pub recommends: bool,
    /// rpm-ostree's default is true.
    pub documentation: bool,
    /// `[package, regex, ...]` entries.
    pub remove_from_packages: Vec<(String, Vec<String>)>,
    pub remove_files: Vec<String>,
    /// (absolute source path, destination path in the tree)
    pub add_files: Vec<(PathBuf, String)>,
    /// Inline postprocess scripts, in order.
    pub postprocess: Vec<String>,
    /// `postprocess-script`, resolved to an absolute path.
    pub postprocess_script: Option<PathBuf>,
    pub etc_group_members: Vec<String>,
    pub automatic_version_prefix: Option<String>,
    pub mutate_os_release: Option<String>,
    pub add_commit_metadata: serde_json::Map<String, serde_json::Value>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Other rpm-ostree treefile keys cosa accepts but does not act on yet.
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Load the treefile at `path` for `basearch`.
pub fn load(path: &Path, basearch: &str) -> Result<Treefile> {
    let top = std::path::absolute(path)
        .with_context(|| format!("reading treefile {}", path.display()))?;
    let mut loader = Loader {
        basearch,
        topdir: top.parent().map(Path::to_path_buf).unwrap_or_default(),
        stack: Vec::new(),
        seen: BTreeMap::new(),
        variables: BTreeMap::new(),
    };
    let layer = loader.load_recursive(&top, None)?;
    let variables = std::mem::take(&mut loader.variables);
    finish(top, layer, variables)
}

// ---------------------------------------------------------------------------
// Key table

/// How a key merges across includes (rpm-ostree's `treefile_merge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Merge {
    /// The includer wins.
    Scalar,
    /// Included items first, then the includer's.
    List,
    /// Like `List`, but sorted and without duplicates (rpm-ostree BTreeSet).
    Set,
    /// Key by key, the includer wins.
    Map,
}

/// The value a key of `other` must hold.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Bool,
    Str,
    U32,
    StrList,
    StrMap,
    Enum(&'static [&'static str]),
    Edition,
    Check,
    Rojig,
    Modules,
}

/// rpm-ostree treefile keys that cosa keeps in [`Treefile::other`], with
/// their shape and merge rule (from `BaseComposeConfigFields` and
/// `TreeComposeConfig`).
const OTHER_KEYS: &[(&str, Shape, Merge)] = &[
    ("edition", Shape::Edition, Merge::Scalar),
    ("basearch", Shape::Str, Merge::Scalar),
    ("repovars", Shape::StrMap, Merge::Map),
    ("rojig", Shape::Rojig, Merge::Scalar),
    ("selinux", Shape::Bool, Merge::Scalar),
    ("ignore-devices", Shape::Bool, Merge::Scalar),
    ("selinux-label-version", Shape::U32, Merge::Scalar),
    (
        "sysusers",
        Shape::Enum(&["compose-auto", "compose-forced"]),
        Merge::Scalar,
    ),
    ("ima", Shape::Bool, Merge::Scalar),
    ("gpg-key", Shape::Str, Merge::Scalar),
    ("ostree-layers", Shape::StrList, Merge::List),
    ("ostree-override-layers", Shape::StrList, Merge::List),
    ("platform-module", Shape::Str, Merge::Scalar),
    ("container", Shape::Bool, Merge::Scalar),
    ("install-langs", Shape::StrList, Merge::List),
    ("initramfs-args", Shape::StrList, Merge::List),
    ("no-initramfs", Shape::Bool, Merge::Scalar),
    ("readonly-executables", Shape::Bool, Merge::Scalar),
    (
        "boot-location",
        Shape::Enum(&["new", "modules", "kernel-install"]),
        Merge::Scalar,
    ),
    ("tmp-is-dir", Shape::Bool, Merge::Scalar),
    (
        "opt-usrlocal",
        Shape::Enum(&["var", "root", "state-overlay", "stateoverlay"]),
        Merge::Scalar,
    ),
    ("units", Shape::StrList, Merge::List),
    ("default-target", Shape::Str, Merge::Scalar),
    ("machineid-compat", Shape::Bool, Merge::Scalar),
    ("automatic-version-suffix", Shape::Str, Merge::Scalar),
    ("preserve-passwd", Shape::Bool, Merge::Scalar),
    ("check-passwd", Shape::Check, Merge::Scalar),
    ("check-groups", Shape::Check, Merge::Scalar),
    ("ignore-removed-users", Shape::StrList, Merge::Set),
    ("ignore-removed-groups", Shape::StrList, Merge::Set),
    (
        "repo-metadata",
        Shape::Enum(&["inline", "detached", "disabled"]),
        Merge::Scalar,
    ),
    (
        "advisories-metadata",
        Shape::Enum(&["inline", "detached", "disabled"]),
        Merge::Scalar,
    ),
    (
        "rpmdb",
        Shape::Enum(&["bdb", "b-d-b", "sqlite", "ndb", "target", "host"]),
        Merge::Scalar,
    ),
    ("rpmdb-normalize", Shape::Bool, Merge::Scalar),
    ("container-cmd", Shape::StrList, Merge::Scalar),
    ("cliwrap", Shape::Bool, Merge::Scalar),
    ("cliwrap-binaries", Shape::StrList, Merge::List),
    // Removed from rpm-ostree in 2023 ("Remove all modularity support") but
    // still present in older configs.
    ("modules", Shape::Modules, Merge::Scalar),
];

/// Legacy underscore spellings rpm-ostree still accepts
/// (`LegacyTreeComposeConfigFields`).
const LEGACY_KEYS: &[(&str, &str)] = &[
    ("gpg_key", "gpg-key"),
    ("boot_location", "boot-location"),
    ("default_target", "default-target"),
    ("automatic_version_prefix", "automatic-version-prefix"),
];

/// Keys cosa reads into typed fields of [`Treefile`].
const TYPED_KEYS: &[&str] = &[
    "ref",
    "releasever",
    "repos",
    "lockfile-repos",
    "packages",
    "bootstrap-packages",
    "repo-packages",
    "include",
    "arch-include",
    "conditional-include",
    "variables",
    "exclude-packages",
    "recommends",
    "documentation",
    "remove-from-packages",
    "remove-files",
    "add-files",
    "postprocess",
    "postprocess-script",
    "etc-group-members",
    "automatic-version-prefix",
    "mutate-os-release",
    "add-commit-metadata",
    "metadata",
];

/// rpm-ostree's `DeriveConfigFields`: client-side layering, refused by
/// `rpm-ostree compose tree` (`error_if_deriving`).
const DERIVE_KEYS: &[&str] = &[
    "base-refspec",
    "container-image-reference",
    "packages-local",
    "packages-local-fileoverride",
    "override-remove",
    "ex-override-replace",
    "override-replace-local",
    "initramfs",
    "custom",
    "override-commit",
    "unconfigured-state",
];

fn other_key(key: &str) -> Option<(Shape, Merge)> {
    OTHER_KEYS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, s, m)| (*s, *m))
}

fn is_known_key(key: &str) -> bool {
    TYPED_KEYS.contains(&key) || other_key(key).is_some()
}

// ---------------------------------------------------------------------------
// One parsed file

/// A `conditional-include` entry.
#[derive(Debug, Clone)]
struct CondInclude {
    conditions: Vec<Condition>,
    target: CondTarget,
}

#[derive(Debug, Clone)]
enum CondTarget {
    Files(Vec<String>),
    Inline(Box<Layer>),
}

#[derive(Debug, Clone, PartialEq)]
enum CondValue {
    Bool(bool),
    Number(u64),
    String(String),
}

impl std::fmt::Display for CondValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CondValue::Bool(b) => write!(f, "{b}"),
            CondValue::Number(n) => write!(f, "{n}"),
            CondValue::String(s) => write!(f, "\"{s}\""),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Compare {
        var: String,
        op: Op,
        value: CondValue,
    },
    /// A bare variable name: true when the variable is truthy.
    Truthy(String),
}

/// The keys of one treefile (or of an inline conditional-include), before
/// merging. `None` means "not set here", as in rpm-ostree's `Option` fields.
#[derive(Debug, Clone, Default)]
struct Layer {
    ref_: Option<String>,
    releasever: Option<CondValue>,
    repos: Option<Vec<String>>,
    lockfile_repos: Option<Vec<String>>,
    packages: Option<Vec<String>>,
    repo_packages: Option<Vec<RepoPackages>>,
    exclude_packages: Option<Vec<String>>,
    recommends: Option<bool>,
    documentation: Option<bool>,
    remove_from_packages: Option<Vec<(String, Vec<String>)>>,
    remove_files: Option<Vec<String>>,
    add_files: Option<Vec<(PathBuf, String)>>,
    postprocess: Option<Vec<String>>,
    postprocess_script: Option<PathBuf>,
    etc_group_members: Option<Vec<String>>,
    automatic_version_prefix: Option<String>,
    mutate_os_release: Option<String>,
    add_commit_metadata: Option<Map<String, Value>>,
    metadata: Option<Map<String, Value>>,
    variables: Option<BTreeMap<String, Value>>,
    other: BTreeMap<String, Value>,
    include: Vec<String>,
    arch_include: BTreeMap<String, Vec<String>>,
    conditional_include: Vec<CondInclude>,
}

/// Where the keys being read come from, for error messages.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
    yaml: bool,
}

impl Source<'_> {
    /// The line of top-level key `key`, if it can be found in the text.
    fn key_line(&self, key: &str) -> Option<usize> {
        let k = regex::escape(key);
        let pat = if self.yaml {
            format!(r#"^(?:{k}|"{k}"|'{k}')\s*:"#)
        } else {
            format!(r#""{k}"\s*:"#)
        };
        let re = Regex::new(&pat).ok()?;
        self.text
            .lines()
            .position(|l| re.is_match(l))
            .map(|i| i + 1)
    }

    /// `file:line` (line when known) for key `key`.
    fn at(&self, key: &str) -> String {
        match self.key_line(key) {
            Some(line) => format!("{}:{line}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }

    fn err(&self, key: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("{}: key \"{key}\": {msg}", self.at(key))
    }

    fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("/"))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn want_bool(src: &Source, key: &str, v: &Value) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| src.err(key, format!("expected a boolean, got {}", type_name(v))))
}

fn want_str(src: &Source, key: &str, v: &Value) -> Result<String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| src.err(key, format!("expected a string, got {}", type_name(v))))
}

fn want_str_list(src: &Source, key: &str, v: &Value) -> Result<Vec<String>> {
    let arr = v.as_array().ok_or_else(|| {
        src.err(
            key,
            format!("expected a list of strings, got {}", type_name(v)),
        )
    })?;
    arr.iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str().map(str::to_string).ok_or_else(|| {
                src.err(
                    key,
                    format!(
                        "expected a list of strings, but item {} is {}",
                        i + 1,
                        type_name(item)
                    ),
                )
            })
        })
        .collect()
}

fn want_map(src: &Source, key: &str, v: &Value) -> Result<Map<String, Value>> {
    v.as_object()
        .cloned()
        .ok_or_else(|| src.err(key, format!("expected a map, got {}", type_name(v))))
}

/// `include` values: a string or a list of strings.
fn want_include(src: &Source, key: &str, v: &Value) -> Result<Vec<String>> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(_) => want_str_list(src, key, v),
        _ => Err(src.err(
            key,
            format!("expected a path or a list of paths, got {}", type_name(v)),
        )),
    }
}

/// Variable values: booleans, non-negative integers and strings
/// (rpm-ostree's `VarValue`).
fn want_var(src: &Source, key: &str, v: &Value) -> Result<CondValue> {
    match v {
        Value::Bool(b) => Ok(CondValue::Bool(*b)),
        Value::Number(n) => n
            .as_u64()
            .map(CondValue::Number)
            .ok_or_else(|| src.err(key, format!("{n} is not a non-negative integer"))),
        Value::String(s) => Ok(CondValue::String(s.clone())),
        _ => Err(src.err(
            key,
            format!(
                "expected a boolean, a non-negative integer or a string, got {}",
                type_name(v)
            ),
        )),
    }
}

fn cond_to_json(v: &CondValue) -> Value {
    match v {
        CondValue::Bool(b) => Value::Bool(*b),
        CondValue::Number(n) => Value::from(*n),
        CondValue::String(s) => Value::String(s.clone()),
    }
}

fn json_to_cond(v: &Value) -> Option<CondValue> {
    match v {
        Value::Bool(b) => Some(CondValue::Bool(*b)),
        Value::Number(n) => n.as_u64().map(CondValue::Number),
        Value::String(s) => Some(CondValue::String(s.clone())),
        _ => None,
    }
}

/// Parse the keys of one file (or inline block) into a [`Layer`].
fn parse_layer(
    src: &Source,
    map: Map<String, Value>,
    basearch: &str,
    inline: bool,
) -> Result<Layer> {
    let mut layer = Layer::default();
    let mut map = migrate_legacy_keys(src, map)?;
    // Keys set to null count as unset (serde's `Option` behaviour).
    map.retain(|_, v| !v.is_null());
    if let Some(tree_arch) = map.get("basearch") {
        let tree_arch = want_str(src, "basearch", tree_arch)?;
        if tree_arch != basearch {
            bail!(
                "{}: invalid basearch {tree_arch} on {basearch}: cross-composes are not supported",
                src.at("basearch")
            );
        }
    }
    let mut archful: Option<Vec<String>> = None;
    for (key, v) in map {
        if DERIVE_KEYS.contains(&key.as_str()) {
            bail!(
                "{}: key \"{key}\" is a client-side derivation key (rpm-ostree origin), \
                 not allowed in a compose treefile",
                src.at(&key)
            );
        }
        if inline
            && matches!(
                key.as_str(),
                "include" | "arch-include" | "conditional-include" | "variables"
            )
        {
            bail!(
                "{}: \"{key}\" is not allowed inside an inline conditional-include block",
                src.file.display()
            );
        }
        if let Some(arch) = key.strip_prefix("packages-") {
            let pkgs = want_str_list(src, &key, &v)?;
            if arch == basearch {
                archful = Some(pkgs);
            }
            continue;
        }
        parse_key(src, &mut layer, &key, v, basearch)?;
    }
    if let Some(pkgs) = archful {
        let split = split_package_list(src, &format!("packages-{basearch}"), &pkgs)?;
        layer.packages.get_or_insert_with(Vec::new).extend(split);
    }
    apply_implied_defaults(&mut layer);
    Ok(layer)
}

/// Rename legacy underscore keys, refusing both spellings in one file.
fn migrate_legacy_keys(src: &Source, mut map: Map<String, Value>) -> Result<Map<String, Value>> {
    for (old, new) in LEGACY_KEYS {
        if let Some(v) = map.remove(*old) {
            if map.contains_key(*new) {
                bail!(
                    "{}: cannot use both the new and the legacy form of {new} ({old})",
                    src.file.display()
                );
            }
            map.insert(new.to_string(), v);
        }
    }
    Ok(map)
}

/// rpm-ostree: `container: true` implies several settings, and edition 2024
/// changes two defaults; both apply to the file that sets them.
fn apply_implied_defaults(layer: &mut Layer) {
    let o = &mut layer.other;
    if o.get("container") == Some(&Value::Bool(true)) {
        o.insert("boot-location".into(), "modules".into());
        o.insert("selinux".into(), false.into());
        o.insert("tmp-is-dir".into(), true.into());
        o.insert("preserve-passwd".into(), false.into());
        o.insert("check-passwd".into(), serde_json::json!({"type": "none"}));
        o.insert("check-groups".into(), serde_json::json!({"type": "none"}));
    }
    if o.get("edition").and_then(Value::as_str) == Some("2024") {
        o.entry("boot-location".to_string())
            .or_insert_with(|| "modules".into());
        o.entry("tmp-is-dir".to_string())
            .or_insert(Value::Bool(true));
    }
}

fn parse_key(src: &Source, layer: &mut Layer, key: &str, v: Value, basearch: &str) -> Result<()> {
    match key {
        "ref" => layer.ref_ = Some(want_str(src, key, &v)?),
        "releasever" => {
            layer.releasever = Some(match &v {
                Value::String(s) => CondValue::String(s.clone()),
                Value::Number(n) if n.as_u64().is_some() => want_var(src, key, &v)?,
                _ => {
                    return Err(src.err(
                        key,
                        format!("expected a string or an integer, got {}", type_name(&v)),
                    ));
                }
            })
        }
        "repos" => layer.repos = Some(want_str_list(src, key, &v)?),
        "lockfile-repos" => layer.lockfile_repos = Some(want_str_list(src, key, &v)?),
        "packages" | "bootstrap-packages" => {
            let pkgs = split_package_list(src, key, &want_str_list(src, key, &v)?)?;
            layer.packages.get_or_insert_with(Vec::new).extend(pkgs);
        }
        "repo-packages" => layer.repo_packages = Some(parse_repo_packages(src, &v)?),
        "exclude-packages" => layer.exclude_packages = Some(want_str_list(src, key, &v)?),
        "recommends" => layer.recommends = Some(want_bool(src, key, &v)?),
        "documentation" => layer.documentation = Some(want_bool(src, key, &v)?),
        "remove-from-packages" => {
            layer.remove_from_packages = Some(parse_remove_from_packages(src, &v)?)
        }
        "remove-files" => layer.remove_files = Some(want_str_list(src, key, &v)?),
        "add-files" => layer.add_files = Some(parse_add_files(src, &v)?),
        "postprocess" => layer.postprocess = Some(want_str_list(src, key, &v)?),
        "postprocess-script" => {
            let rel = want_str(src, key, &v)?;
            let path = src.dir().join(&rel);
            if !path.is_file() {
                return Err(src.err(key, format!("script {} not found", path.display())));
            }
            layer.postprocess_script = Some(path);
        }
        "etc-group-members" => layer.etc_group_members = Some(want_str_list(src, key, &v)?),
        "automatic-version-prefix" => {
            layer.automatic_version_prefix = Some(want_str(src, key, &v)?)
        }
        "mutate-os-release" => layer.mutate_os_release = Some(want_str(src, key, &v)?),
        "add-commit-metadata" => layer.add_commit_metadata = Some(want_map(src, key, &v)?),
        "metadata" => layer.metadata = Some(want_map(src, key, &v)?),
        "variables" => layer.variables = Some(parse_variables(src, &v)?),
        "include" => layer.include = want_include(src, key, &v)?,
        "arch-include" => {
            for (arch, inc) in want_map(src, key, &v)? {
                layer.arch_include.insert(
                    arch.clone(),
                    want_include(src, &format!("arch-include.{arch}"), &inc)?,
                );
            }
        }
        "conditional-include" => {
            layer.conditional_include = parse_conditional_includes(src, &v, basearch)?
        }
        _ => {
            let Some((shape, _)) = other_key(key) else {
                return Err(unknown_key(src, key));
            };
            let v = check_shape(src, key, shape, v)?;
            layer.other.insert(key.to_string(), v);
        }
    }
    Ok(())
}

fn unknown_key(src: &Source, key: &str) -> anyhow::Error {
    let kebab = key.replace('_', "-");
    let hint = if kebab != key && is_known_key(&kebab) {
        format!(" (did you mean \"{kebab}\"?)")
    } else {
        String::new()
    };
    anyhow!("{}: unknown treefile key \"{key}\"{hint}", src.at(key))
}

/// Validate an `other` key's value; `check-*` file names become absolute.
fn check_shape(src: &Source, key: &str, shape: Shape, v: Value) -> Result<Value> {
    match shape {
        Shape::Bool => {
            want_bool(src, key, &v)?;
        }
        Shape::Str => {
            let s = want_str(src, key, &v)?;
            if key == "automatic-version-suffix" && !(s.len() == 1 && s.is_ascii()) {
                return Err(src.err(
                    key,
                    format!("must be exactly one ASCII character, got {s:?}"),
                ));
            }
        }
        Shape::U32 => {
            let n = v.as_u64().filter(|n| *n <= u64::from(u32::MAX));
            let n = n.ok_or_else(|| {
                src.err(key, format!("expected an integer, got {}", type_name(&v)))
            })?;
            if key == "selinux-label-version" && n > 1 {
                return Err(src.err(key, format!("must be 0 or 1, got {n}")));
            }
        }
        Shape::StrList => {
            want_str_list(src, key, &v)?;
        }
        Shape::StrMap => {
            let map = want_map(src, key, &v)?;
            for (k, item) in &map {
                want_str(src, &format!("{key}.{k}"), item)?;
            }
            if key == "repovars" {
                for reserved in ["releasever", "basearch"] {
                    if map.contains_key(reserved) {
                        return Err(src.err(
                            key,
                            format!(
                                "repo var \"{reserved}\" is reserved; it is filled in automatically"
                            ),
                        ));
                    }
                }
            }
        }
        Shape::Enum(allowed) => {
            let s = want_str(src, key, &v)?;
            if !allowed.contains(&s.as_str()) {
                return Err(src.err(
                    key,
                    format!("expected one of {}, got {s:?}", allowed.join(", ")),
                ));
            }
        }
        Shape::Edition => {
            let s = match &v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => {
                    return Err(
                        src.err(key, format!("expected 2014 or 2024, got {}", type_name(&v)))
                    );
                }
            };
            if s != "2014" && s != "2024" {
                return Err(src.err(key, format!("expected 2014 or 2024, got {s}")));
            }
            return Ok(Value::String(s));
        }
        Shape::Check => return check_passwd_shape(src, key, v),
        Shape::Rojig => {
            let map = want_map(src, key, &v)?;
            for field in ["name", "summary", "license"] {
                let item = map
                    .get(field)
                    .ok_or_else(|| src.err(key, format!("missing \"{field}\"")))?;
                want_str(src, &format!("{key}.{field}"), item)?;
            }
            for (k, item) in &map {
                match k.as_str() {
                    "name" | "summary" | "license" => {}
                    "description" => {
                        want_str(src, "rojig.description", item)?;
                    }
                    _ => return Err(src.err(key, format!("unknown field \"{k}\""))),
                }
            }
        }
        Shape::Modules => {
            for (k, item) in &want_map(src, key, &v)? {
                match k.as_str() {
                    "enable" | "install" => {
                        want_str_list(src, &format!("modules.{k}"), item)?;
                    }
                    _ => return Err(src.err(key, format!("unknown field \"{k}\""))),
                }
            }
        }
    }
    Ok(v)
}

/// `check-passwd` / `check-groups`: `{type: none|previous|file|data, ...}`.
fn check_passwd_shape(src: &Source, key: &str, v: Value) -> Result<Value> {
    let mut map = want_map(src, key, &v)?;
    let ty = map
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| src.err(key, "missing \"type\" (none, previous, file or data)"))?
        .to_string();
    let allowed: &[&str] = match ty.as_str() {
        "none" | "previous" => &["type"],
        "file" => &["type", "filename"],
        "data" => &["type", "entries"],
        other => {
            return Err(src.err(
                key,
                format!("unknown type {other:?}; expected none, previous, file or data"),
            ));
        }
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(src.err(key, format!("unexpected field \"{k}\" for type {ty}")));
    }
    match ty.as_str() {
        "file" => {
            let name = map
                .get("filename")
                .ok_or_else(|| src.err(key, "type file needs \"filename\""))?;
            let name = want_str(src, &format!("{key}.filename"), name)?;
            let path = src.dir().join(&name);
            if !path.is_file() {
                return Err(src.err(key, format!("file {} not found", path.display())));
            }
            map.insert("filename".into(), Value::String(path.display().to_string()));
        }
        "data" => {
            let entries = map
                .get("entries")
                .ok_or_else(|| src.err(key, "type data needs \"entries\""))?;
            want_map(src, &format!("{key}.entries"), entries)?;
        }
        _ => {}
    }
    Ok(Value::Object(map))
}

fn parse_variables(src: &Source, v: &Value) -> Result<BTreeMap<String, Value>> {
    let map = want_map(src, "variables", v)?;
    let mut out = BTreeMap::new();
    for (k, item) in map {
        if k == "basearch" || k == "releasever" {
            return Err(src.err(
                "variables",
                format!("cannot define reserved variable \"{k}\""),
            ));
        }
        let value = want_var(src, &format!("variables.{k}"), &item)?;
        out.insert(k, cond_to_json(&value));
    }
    Ok(out)
}

fn parse_repo_packages(src: &Source, v: &Value) -> Result<Vec<RepoPackages>> {
    let key = "repo-packages";
    let arr = v.as_array().ok_or_else(|| {
        src.err(
            key,
            format!(
                "expected a list of {{repo, packages}} maps, got {}",
                type_name(v)
            ),
        )
    })?;
    let mut out = Vec::new();
    for (i, item) in arr.iter().enumerate() {
        let what = format!("{key}[{}]", i + 1);
        let map = want_map(src, &what, item)?;
        if let Some(k) = map.keys().find(|k| *k != "repo" && *k != "packages") {
            return Err(src.err(&what, format!("unknown field \"{k}\"")));
        }
        let repo = map
            .get("repo")
            .ok_or_else(|| src.err(&what, "missing \"repo\""))?;
        let pkgs = map
            .get("packages")
            .ok_or_else(|| src.err(&what, "missing \"packages\""))?;
        out.push(RepoPackages {
            repo: want_str(src, &format!("{what}.repo"), repo)?,
            packages: split_package_list(
                src,
                &what,
                &want_str_list(src, &format!("{what}.packages"), pkgs)?,
            )?,
        });
    }
    Ok(out)
}

fn parse_remove_from_packages(src: &Source, v: &Value) -> Result<Vec<(String, Vec<String>)>> {
    let key = "remove-from-packages";
    let arr = v.as_array().ok_or_else(|| {
        src.err(
            key,
            format!(
                "expected a list of [package, regex...] lists, got {}",
                type_name(v)
            ),
        )
    })?;
    let mut out = Vec::new();
    for (i, item) in arr.iter().enumerate() {
        let what = format!("{key}[{}]", i + 1);
        let mut parts = want_str_list(src, &what, item)?;
        if parts.len() < 2 {
            return Err(src.err(
                &what,
                "expected a package name followed by at least one regex",
            ));
        }
        for re in &parts[1..] {
            Regex::new(re).map_err(|e| src.err(&what, format!("invalid regex {re:?}: {e}")))?;
        }
        let pkg = parts.remove(0);
        out.push((pkg, parts));
    }
    Ok(out)
}

/// rpm-ostree's `add_files_path_is_valid`: only paths OSTree manages.
fn add_files_dest_is_valid(dest: &str) -> bool {
    let p = dest.trim_start_matches('/');
    (p.starts_with("usr/") && !p.starts_with("usr/local/"))
        || ["etc/", "bin/", "sbin/", "lib/", "lib64/"]
            .iter()
            .any(|pre| p.starts_with(pre))
}

fn parse_add_files(src: &Source, v: &Value) -> Result<Vec<(PathBuf, String)>> {
    let key = "add-files";
    let arr = v.as_array().ok_or_else(|| {
        src.err(
            key,
            format!(
                "expected a list of [source, destination] pairs, got {}",
                type_name(v)
            ),
        )
    })?;
    let mut out = Vec::new();
    for (i, item) in arr.iter().enumerate() {
        let what = format!("{key}[{}]", i + 1);
        let pair = want_str_list(src, &what, item)?;
        let [from, dest] = <[String; 2]>::try_from(pair).map_err(|p| {
            src.err(
                &what,
                format!("expected [source, destination], got {} items", p.len()),
            )
        })?;
        if !add_files_dest_is_valid(&dest) {
            return Err(src.err(
                &what,
                format!("unsupported destination {dest:?}: only /usr (not /usr/local), /etc, /bin, /sbin, /lib and /lib64 are managed by OSTree"),
            ));
        }
        let path = src.dir().join(&from);
        if !path.is_file() {
            return Err(src.err(&what, format!("source file {} not found", path.display())));
        }
        out.push((path, dest));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Packages

/// rpm dependency comparison operators (dnf also accepts `==`).
const DEP_OPS: &[&str] = &["<", "<=", "=", "==", ">=", ">"];

/// Split each `packages` entry as rpm-ostree does (whitespace, except inside
/// single quotes, which are removed), keeping `name op version` triples and
/// parenthesised rich dependencies whole.
fn split_package_list(src: &Source, key: &str, entries: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in entries {
        out.extend(split_package_entry(e).map_err(|err| src.err(key, err))?);
    }
    Ok(out)
}

fn split_package_entry(entry: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = entry;
    while let Some(open) = rest.find('\'') {
        out.extend(group_tokens(entry, &rest[..open])?);
        let after = &rest[open + 1..];
        let close = after
            .find('\'')
            .ok_or_else(|| anyhow!("missing terminating quote in package entry {entry:?}"))?;
        let quoted = after[..close].trim();
        if !quoted.is_empty() {
            out.push(quoted.to_string());
        }
        rest = &after[close + 1..];
    }
    out.extend(group_tokens(entry, rest)?);
    Ok(out)
}

/// Whitespace-split `s`, re-joining `name op version` and `( ... )` groups.
fn group_tokens(entry: &str, s: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    // Whether the last item of `out` is a plain name an operator may follow.
    let mut last_is_name = false;
    let mut tokens = s.split_whitespace();
    while let Some(tok) = tokens.next() {
        if tok.starts_with('(') {
            let mut group = tok.to_string();
            let mut depth = paren_depth(tok);
            while depth > 0 {
                let next = tokens
                    .next()
                    .ok_or_else(|| anyhow!("unbalanced parentheses in package entry {entry:?}"))?;
                depth += paren_depth(next);
                group.push(' ');
                group.push_str(next);
            }
            if depth < 0 {
                bail!("unbalanced parentheses in package entry {entry:?}");
            }
            out.push(group);
            last_is_name = false;
        } else if DEP_OPS.contains(&tok) {
            let version = tokens.next();
            match (last_is_name, version) {
                (true, Some(ver)) if !DEP_OPS.contains(&ver) => {
                    let name = out.pop().unwrap_or_default();
                    out.push(format!("{name} {tok} {ver}"));
                    last_is_name = false;
                }
                _ => bail!(
                    "operator {tok:?} in package entry {entry:?} must stand between a package name and a version"
                ),
            }
        } else {
            out.push(tok.to_string());
            last_is_name = true;
        }
    }
    Ok(out)
}

fn paren_depth(tok: &str) -> i32 {
    tok.chars()
        .map(|c| match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        })
        .sum()
}

// ---------------------------------------------------------------------------
// Conditions

static COND_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*([[:alnum:]_]+)\s*(==|!=|>=|<=|>|<)\s*(.*?)\s*$").expect("valid regex")
});
static BARE_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*([[:alnum:]_]+)\s*$").expect("valid regex"));
static NUMBER_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[0-9]+$").expect("valid regex"));
static WORD_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^\s'\x22]+$").expect("valid regex"));

/// Parse `var op value` (value: true, false, digits, "string", or a bare
/// word), or a bare `var`.
fn parse_condition(s: &str) -> Result<Condition> {
    if let Some(c) = BARE_RE.captures(s) {
        return Ok(Condition::Truthy(c[1].to_string()));
    }
    let c = COND_RE
        .captures(s)
        .ok_or_else(|| anyhow!("invalid condition {s:?}: expected <var> <op> <value> with op one of ==, !=, >, >=, <, <="))?;
    let op = match &c[2] {
        "==" => Op::Eq,
        "!=" => Op::Ne,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        _ => Op::Le,
    };
    let raw = &c[3];
    let value = if raw == "true" {
        CondValue::Bool(true)
    } else if raw == "false" {
        CondValue::Bool(false)
    } else if NUMBER_RE.is_match(raw) {
        CondValue::Number(
            raw.parse()
                .map_err(|e| anyhow!("invalid number in condition {s:?}: {e}"))?,
        )
    } else if raw.len() >= 2
        && ((raw.starts_with('"') && raw.ends_with('"'))
            || (raw.starts_with('\'') && raw.ends_with('\'')))
    {
        CondValue::String(raw[1..raw.len() - 1].to_string())
    } else if WORD_RE.is_match(raw) {
        CondValue::String(raw.to_string())
    } else {
        bail!("invalid condition {s:?}: cannot read value {raw:?}");
    };
    Ok(Condition::Compare {
        var: c[1].to_string(),
        op,
        value,
    })
}

impl Condition {
    /// rpm-ostree's `IncludeCondition::evaluate`: undefined variables and
    /// type mismatches are errors; ordering needs numbers.
    fn evaluate(&self, vars: &BTreeMap<String, Value>) -> Result<bool> {
        let lookup = |var: &str| -> Result<CondValue> {
            let v = vars
                .get(var)
                .ok_or_else(|| anyhow!("undefined variable \"{var}\""))?;
            json_to_cond(v).ok_or_else(|| anyhow!("variable \"{var}\" has an unusable value {v}"))
        };
        match self {
            Condition::Truthy(var) => Ok(match lookup(var)? {
                CondValue::Bool(b) => b,
                CondValue::Number(n) => n != 0,
                CondValue::String(s) => !s.is_empty(),
            }),
            Condition::Compare { var, op, value } => {
                let actual = lookup(var)?;
                if std::mem::discriminant(&actual) != std::mem::discriminant(value) {
                    bail!("variable \"{var}\" ({actual}) is not the same type as {value}");
                }
                match op {
                    Op::Eq => Ok(&actual == value),
                    Op::Ne => Ok(&actual != value),
                    _ => match (&actual, value) {
                        (CondValue::Number(a), CondValue::Number(b)) => Ok(match op {
                            Op::Gt => a > b,
                            Op::Ge => a >= b,
                            Op::Lt => a < b,
                            _ => a <= b,
                        }),
                        _ => bail!("ordering comparison needs numbers, not {actual} and {value}"),
                    },
                }
            }
        }
    }
}

fn parse_conditional_includes(src: &Source, v: &Value, basearch: &str) -> Result<Vec<CondInclude>> {
    let key = "conditional-include";
    let arr = v.as_array().ok_or_else(|| {
        src.err(
            key,
            format!(
                "expected a list of {{if, include}} maps, got {}",
                type_name(v)
            ),
        )
    })?;
    let mut out = Vec::new();
    for (i, item) in arr.iter().enumerate() {
        let what = format!("{key}[{}]", i + 1);
        let map = want_map(src, &what, item)?;
        if let Some(k) = map.keys().find(|k| *k != "if" && *k != "include") {
            return Err(src.err(&what, format!("unknown field \"{k}\"")));
        }
        let cond = map
            .get("if")
            .ok_or_else(|| src.err(&what, "missing \"if\""))?;
        let conds: Vec<String> = match cond {
            Value::String(s) => vec![s.clone()],
            _ => want_str_list(src, &format!("{what}.if"), cond)?,
        };
        let conditions = conds
            .iter()
            .map(|c| parse_condition(c).map_err(|e| src.err(&what, e)))
            .collect::<Result<Vec<_>>>()?;
        let inc = map
            .get("include")
            .ok_or_else(|| src.err(&what, "missing \"include\""))?;
        let target = match inc {
            Value::Object(inline) => CondTarget::Inline(Box::new(
                parse_layer(src, inline.clone(), basearch, true)
                    .with_context(|| format!("in inline {what}"))?,
            )),
            _ => CondTarget::Files(want_include(src, &format!("{what}.include"), inc)?),
        };
        out.push(CondInclude { conditions, target });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Reading files and following includes

/// Parse a YAML or JSON file into a top-level map, naming line and column
/// on syntax errors.
fn read_map(path: &Path, text: &str) -> Result<(Map<String, Value>, bool)> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let (value, yaml) = match ext {
        "json" => {
            let v: Value = serde_json::from_str(text).map_err(|e| {
                anyhow!(
                    "{}:{}:{}: JSON syntax error: {e}",
                    path.display(),
                    e.line(),
                    e.column()
                )
            })?;
            (v, false)
        }
        "yaml" | "yml" => {
            let mut y: serde_yaml::Value =
                serde_yaml::from_str(text).map_err(|e| yaml_error(path, &e))?;
            y.apply_merge().map_err(|e| yaml_error(path, &e))?;
            let v = serde_json::to_value(&y)
                .map_err(|e| anyhow!("{}: unsupported YAML content: {e}", path.display()))?;
            (v, true)
        }
        _ => bail!(
            "{}: unknown treefile format (expected .yaml, .yml or .json)",
            path.display()
        ),
    };
    match value {
        Value::Object(map) => Ok((map, yaml)),
        // An empty YAML document is an empty treefile.
        Value::Null => Ok((Map::new(), yaml)),
        other => bail!(
            "{}: a treefile must be a map of keys, not {}",
            path.display(),
            type_name(&other)
        ),
    }
}

fn yaml_error(path: &Path, e: &serde_yaml::Error) -> anyhow::Error {
    match e.location() {
        Some(loc) => anyhow!(
            "{}:{}:{}: YAML syntax error: {e}",
            path.display(),
            loc.line(),
            loc.column()
        ),
        None => anyhow!("{}: YAML error: {e}", path.display()),
    }
}

struct Loader<'a> {
    basearch: &'a str,
    topdir: PathBuf,
    /// Files being loaded, outermost first (for cycle messages).
    stack: Vec<PathBuf>,
    /// Every file loaded so far (canonical path) -> the file that included it.
    seen: BTreeMap<PathBuf, Option<PathBuf>>,
    /// rpm-ostree's accumulated `variables`: the includer overrides.
    variables: BTreeMap<String, Value>,
}

impl Loader<'_> {
    fn show(&self, p: &Path) -> String {
        p.strip_prefix(&self.topdir)
            .unwrap_or(p)
            .display()
            .to_string()
    }

    fn load_recursive(&mut self, path: &Path, includer: Option<&Path>) -> Result<Layer> {
        let canon = std::fs::canonicalize(path).with_context(|| match includer {
            Some(inc) => format!(
                "{}: included file {} not found",
                inc.display(),
                path.display()
            ),
            None => format!("reading treefile {}", path.display()),
        })?;
        if let Some(pos) = self.stack.iter().position(|p| *p == canon) {
            let cycle: Vec<String> = self.stack[pos..]
                .iter()
                .chain(std::iter::once(&canon))
                .map(|p| self.show(p))
                .collect();
            bail!("include cycle: {}", cycle.join(" -> "));
        }
        if let Some(first) = self.seen.get(&canon) {
            bail!(
                "{} is included more than once (by {} and by {}); rpm-ostree refuses this",
                self.show(&canon),
                first.as_deref().map(|p| self.show(p)).unwrap_or_default(),
                includer.map(|p| self.show(p)).unwrap_or_default()
            );
        }
        if self.stack.len() > INCLUDE_MAXDEPTH {
            bail!(
                "{}: reached the maximum include depth {INCLUDE_MAXDEPTH}",
                path.display()
            );
        }
        self.seen
            .insert(canon.clone(), includer.map(Path::to_path_buf));
        self.stack.push(canon);
        let result = self.load_file(path);
        self.stack.pop();
        result
    }

    fn load_file(&mut self, path: &Path) -> Result<Layer> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading treefile {}", path.display()))?;
        let (map, yaml) = read_map(path, &text)?;
        let src = Source {
            file: path,
            text: &text,
            yaml,
        };
        let mut layer = parse_layer(&src, map, self.basearch, false)?;

        // Fold this file's variables under the includer's.
        let mut vars = layer.variables.take().unwrap_or_default();
        vars.insert("basearch".into(), Value::String(self.basearch.to_string()));
        if let Some(rv) = &layer.releasever {
            vars.insert("releasever".into(), cond_to_json(rv));
        }
        vars.append(&mut self.variables);
        self.variables = vars;

        let mut includes = std::mem::take(&mut layer.include);
        if let Some(arch) = layer.arch_include.remove(self.basearch) {
            includes.extend(arch);
        }
        for (i, ci) in std::mem::take(&mut layer.conditional_include)
            .into_iter()
            .enumerate()
        {
            let mut matches = true;
            // Evaluate every condition so that type errors always show.
            for c in &ci.conditions {
                let ok = c.evaluate(&self.variables).map_err(|e| {
                    anyhow!(
                        "{}: conditional-include[{}]: {e}",
                        src.at("conditional-include"),
                        i + 1
                    )
                })?;
                matches &= ok;
            }
            if matches {
                match ci.target {
                    CondTarget::Files(files) => includes.extend(files),
                    CondTarget::Inline(mut inline) => merge_layer(&mut layer, &mut inline),
                }
            }
        }
        for inc in includes {
            let inc_path = src.dir().join(&inc);
            let mut included = self.load_recursive(&inc_path, Some(path))?;
            merge_layer(&mut layer, &mut included);
        }
        Ok(layer)
    }
}

// ---------------------------------------------------------------------------
// Merging (rpm-ostree's `treefile_merge`; `dest` is the includer)

fn merge_basic<T>(dest: &mut Option<T>, src: &mut Option<T>) {
    if dest.is_none() {
        *dest = src.take();
    }
}

fn merge_vec<T>(dest: &mut Option<Vec<T>>, src: &mut Option<Vec<T>>) {
    if let Some(mut v) = src.take() {
        if let Some(d) = dest.as_mut() {
            v.append(d);
        }
        *dest = Some(v);
    }
}

fn merge_map(dest: &mut Option<Map<String, Value>>, src: &mut Option<Map<String, Value>>) {
    if let Some(mut v) = src.take() {
        if let Some(d) = dest.take() {
            for (k, val) in d {
                v.insert(k, val);
            }
        }
        *dest = Some(v);
    }
}

fn merge_other(dest: &mut BTreeMap<String, Value>, src: &mut BTreeMap<String, Value>) {
    for (key, sv) in std::mem::take(src) {
        let merge = other_key(&key).map(|(_, m)| m).unwrap_or(Merge::Scalar);
        let Some(dv) = dest.remove(&key) else {
            dest.insert(key, sv);
            continue;
        };
        let merged = match (merge, sv, dv) {
            (Merge::List, Value::Array(mut s), Value::Array(d)) => {
                s.extend(d);
                Value::Array(s)
            }
            (Merge::Set, Value::Array(s), Value::Array(d)) => {
                let set: BTreeSet<String> = s
                    .iter()
                    .chain(d.iter())
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                Value::Array(set.into_iter().map(Value::String).collect())
            }
            (Merge::Map, Value::Object(mut s), Value::Object(d)) => {
                s.extend(d);
                Value::Object(s)
            }
            (_, _, d) => d,
        };
        dest.insert(key, merged);
    }
}

fn merge_layer(dest: &mut Layer, src: &mut Layer) {
    merge_basic(&mut dest.ref_, &mut src.ref_);
    merge_basic(&mut dest.releasever, &mut src.releasever);
    merge_basic(&mut dest.recommends, &mut src.recommends);
    merge_basic(&mut dest.documentation, &mut src.documentation);
    merge_basic(&mut dest.postprocess_script, &mut src.postprocess_script);
    merge_basic(
        &mut dest.automatic_version_prefix,
        &mut src.automatic_version_prefix,
    );
    merge_basic(&mut dest.mutate_os_release, &mut src.mutate_os_release);
    merge_vec(&mut dest.repos, &mut src.repos);
    merge_vec(&mut dest.lockfile_repos, &mut src.lockfile_repos);
    merge_vec(&mut dest.packages, &mut src.packages);
    merge_vec(&mut dest.repo_packages, &mut src.repo_packages);
    merge_vec(&mut dest.exclude_packages, &mut src.exclude_packages);
    merge_vec(
        &mut dest.remove_from_packages,
        &mut src.remove_from_packages,
    );
    merge_vec(&mut dest.remove_files, &mut src.remove_files);
    merge_vec(&mut dest.add_files, &mut src.add_files);
    merge_vec(&mut dest.postprocess, &mut src.postprocess);
    merge_vec(&mut dest.etc_group_members, &mut src.etc_group_members);
    merge_map(&mut dest.add_commit_metadata, &mut src.add_commit_metadata);
    merge_map(&mut dest.metadata, &mut src.metadata);
    merge_other(&mut dest.other, &mut src.other);
}

// ---------------------------------------------------------------------------
// Final assembly

/// Replace every `${name}` in `s` from `vars`; an undefined name is an error.
fn substitute(s: &str, vars: &BTreeMap<String, Value>) -> Result<String> {
    static VAR_RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\$\{([^}]*)\}").expect("valid regex"));
    let mut out = String::new();
    let mut last = 0;
    for c in VAR_RE.captures_iter(s) {
        let whole = c.get(0).expect("group 0");
        let name = &c[1];
        let value = vars
            .get(name)
            .ok_or_else(|| anyhow!("undefined variable ${{{name}}} in {s:?}"))?;
        out.push_str(&s[last..whole.start()]);
        match value {
            Value::String(v) => out.push_str(v),
            other => out.push_str(&other.to_string()),
        }
        last = whole.end();
    }
    out.push_str(&s[last..]);
    Ok(out)
}

fn substitute_opt(
    field: &mut Option<String>,
    key: &str,
    vars: &BTreeMap<String, Value>,
) -> Result<()> {
    if let Some(s) = field {
        *s = substitute(s, vars).with_context(|| format!("substituting variables in {key}"))?;
    }
    Ok(())
}

fn substitute_map_strings(
    map: &mut Map<String, Value>,
    key: &str,
    vars: &BTreeMap<String, Value>,
) -> Result<()> {
    for (k, v) in map.iter_mut() {
        if let Value::String(s) = v {
            *s = substitute(s, vars)
                .with_context(|| format!("substituting variables in {key}.{k}"))?;
        }
    }
    Ok(())
}

/// Keep the last `repo-packages` claim on each package (rpm-ostree's
/// `handle_repo_packages_overrides`: the includer's entries win).
fn collapse_repo_packages(rps: Vec<RepoPackages>) -> Vec<RepoPackages> {
    let mut seen = HashSet::new();
    let mut out: Vec<RepoPackages> = rps
        .into_iter()
        .rev()
        .map(|mut rp| {
            rp.packages.retain(|p| seen.insert(p.clone()));
            rp
        })
        .filter(|rp| !rp.packages.is_empty())
        .collect();
    out.reverse();
    out
}

fn finish(path: PathBuf, mut layer: Layer, variables: BTreeMap<String, Value>) -> Result<Treefile> {
    let ctx = || format!("loading treefile {}", path.display());
    substitute_opt(&mut layer.ref_, "ref", &variables).with_context(ctx)?;
    substitute_opt(
        &mut layer.automatic_version_prefix,
        "automatic-version-prefix",
        &variables,
    )
    .with_context(ctx)?;
    substitute_opt(
        &mut layer.mutate_os_release,
        "mutate-os-release",
        &variables,
    )
    .with_context(ctx)?;
    let mut metadata = layer.metadata.unwrap_or_default();
    substitute_map_strings(&mut metadata, "metadata", &variables).with_context(ctx)?;
    let mut add_commit_metadata = layer.add_commit_metadata.unwrap_or_default();
    substitute_map_strings(&mut add_commit_metadata, "add-commit-metadata", &variables)
        .with_context(ctx)?;
    if let Some(Value::String(s)) = layer.other.get_mut("platform-module") {
        *s = substitute(s, &variables)
            .context("substituting variables in platform-module")
            .with_context(ctx)?;
    }
    if let Some(Value::Object(rojig)) = layer.other.get_mut("rojig") {
        for field in ["name", "summary", "description"] {
            if let Some(Value::String(s)) = rojig.get_mut(field) {
                *s = substitute(s, &variables)
                    .with_context(|| format!("substituting variables in rojig.{field}"))
                    .with_context(ctx)?;
            }
        }
    }

    let mut seen = HashSet::new();
    let packages: Vec<String> = layer
        .packages
        .unwrap_or_default()
        .into_iter()
        .filter(|p| seen.insert(p.clone()))
        .collect();

    Ok(Treefile {
        path,
        ref_: layer.ref_,
        releasever: layer.releasever.map(|r| match r {
            CondValue::String(s) => s,
            other => other.to_string(),
        }),
        repos: layer.repos.unwrap_or_default(),
        lockfile_repos: layer.lockfile_repos.unwrap_or_default(),
        packages,
        repo_packages: collapse_repo_packages(layer.repo_packages.unwrap_or_default()),
        exclude_packages: layer.exclude_packages.unwrap_or_default(),
        recommends: layer.recommends.unwrap_or(true),
        documentation: layer.documentation.unwrap_or(true),
        remove_from_packages: layer.remove_from_packages.unwrap_or_default(),
        remove_files: layer.remove_files.unwrap_or_default(),
        add_files: layer.add_files.unwrap_or_default(),
        postprocess: layer.postprocess.unwrap_or_default(),
        postprocess_script: layer.postprocess_script,
        etc_group_members: layer.etc_group_members.unwrap_or_default(),
        automatic_version_prefix: layer.automatic_version_prefix,
        mutate_os_release: layer.mutate_os_release,
        add_commit_metadata,
        metadata,
        variables,
        other: layer.other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn split(s: &str) -> Vec<String> {
        split_package_entry(s).unwrap()
    }

    #[test]
    fn package_entries_split_like_rpm_ostree() {
        assert_eq!(split("a b  c"), ["a", "b", "c"]);
        assert_eq!(split("'podman >= 4.1'"), ["podman >= 4.1"]);
        assert_eq!(split("x 'podman >= 4.1' y"), ["x", "podman >= 4.1", "y"]);
        assert_eq!(split("kernel-6.9.11-100.fc39"), ["kernel-6.9.11-100.fc39"]);
        assert_eq!(split("/usr/bin/python3"), ["/usr/bin/python3"]);
        assert_eq!(split("podman>=4.1"), ["podman>=4.1"]);
        // Extensions: unquoted versioned specs and rich deps stay whole.
        assert_eq!(split("podman >= 4.1"), ["podman >= 4.1"]);
        assert_eq!(split("a b = 1:2-3 c"), ["a", "b = 1:2-3", "c"]);
        assert_eq!(split("(a or (b and c)) d"), ["(a or (b and c))", "d"]);
        assert!(split_package_entry("'unterminated").is_err());
        assert!(split_package_entry(">= 1").is_err());
        assert!(split_package_entry("a >=").is_err());
        assert!(split_package_entry("(a or b").is_err());
    }

    #[test]
    fn conditions_parse() {
        let cmp = |var: &str, op, value| Condition::Compare {
            var: var.into(),
            op,
            value,
        };
        assert_eq!(
            parse_condition("basearch == \"x86_64\"").unwrap(),
            cmp("basearch", Op::Eq, CondValue::String("x86_64".into()))
        );
        assert_eq!(
            parse_condition("basearch == x86_64").unwrap(),
            cmp("basearch", Op::Eq, CondValue::String("x86_64".into()))
        );
        assert_eq!(
            parse_condition("releasever>=35").unwrap(),
            cmp("releasever", Op::Ge, CondValue::Number(35))
        );
        assert_eq!(
            parse_condition(" dev != true ").unwrap(),
            cmp("dev", Op::Ne, CondValue::Bool(true))
        );
        assert_eq!(
            parse_condition("s < 'x y'").unwrap(),
            cmp("s", Op::Lt, CondValue::String("x y".into()))
        );
        assert_eq!(
            parse_condition("dev").unwrap(),
            Condition::Truthy("dev".into())
        );
        assert!(parse_condition("a =~ b").is_err());
        assert!(parse_condition("a ==").is_err());
        assert!(parse_condition("a == b c").is_err());
    }

    #[test]
    fn conditions_evaluate() {
        let vars: BTreeMap<String, Value> = [
            ("basearch", json!("x86_64")),
            ("releasever", json!(40)),
            ("dev", json!(true)),
            ("empty", json!("")),
            ("zero", json!(0)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let ev = |s: &str| parse_condition(s).unwrap().evaluate(&vars);
        assert!(ev("basearch == x86_64").unwrap());
        assert!(!ev("basearch != \"x86_64\"").unwrap());
        assert!(ev("releasever >= 40").unwrap());
        assert!(ev("releasever > 39").unwrap());
        assert!(!ev("releasever < 40").unwrap());
        assert!(ev("releasever <= 40").unwrap());
        assert!(ev("dev == true").unwrap());
        assert!(ev("dev").unwrap());
        assert!(!ev("empty").unwrap());
        assert!(!ev("zero").unwrap());
        assert!(ev("basearch").unwrap());
        let e = ev("nope == 1").unwrap_err().to_string();
        assert_eq!(e, "undefined variable \"nope\"");
        let e = ev("releasever == \"40\"").unwrap_err().to_string();
        assert!(e.contains("not the same type"), "{e}");
        let e = ev("basearch > \"a\"").unwrap_err().to_string();
        assert!(e.contains("needs numbers"), "{e}");
    }

    #[test]
    fn substitution() {
        let vars: BTreeMap<String, Value> =
            [("a", json!("x")), ("n", json!(3)), ("b", json!(true))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        assert_eq!(
            substitute("p/${a}/${n}/${b}/$a", &vars).unwrap(),
            "p/x/3/true/$a"
        );
        let e = substitute("p/${missing}", &vars).unwrap_err().to_string();
        assert_eq!(e, "undefined variable ${missing} in \"p/${missing}\"");
    }

    #[test]
    fn merge_follows_rpm_ostree() {
        let mut dest = Layer {
            ref_: Some("top".into()),
            packages: Some(vec!["t".into()]),
            metadata: Some(json!({"k": "top", "t": 1}).as_object().cloned().unwrap()),
            ..Default::default()
        };
        dest.other.insert("units".into(), json!(["t.service"]));
        dest.other.insert("selinux".into(), json!(false));
        dest.other
            .insert("ignore-removed-users".into(), json!(["z", "a"]));
        dest.other.insert("repovars".into(), json!({"x": "top"}));
        let mut src = Layer {
            ref_: Some("inc".into()),
            recommends: Some(false),
            packages: Some(vec!["i".into()]),
            metadata: Some(json!({"k": "inc", "i": 2}).as_object().cloned().unwrap()),
            ..Default::default()
        };
        src.other.insert("units".into(), json!(["i.service"]));
        src.other.insert("selinux".into(), json!(true));
        src.other
            .insert("ignore-removed-users".into(), json!(["m", "z"]));
        src.other
            .insert("repovars".into(), json!({"x": "inc", "y": "inc"}));
        src.other.insert("tmp-is-dir".into(), json!(true));
        merge_layer(&mut dest, &mut src);
        assert_eq!(dest.ref_.as_deref(), Some("top"));
        assert_eq!(dest.recommends, Some(false));
        assert_eq!(dest.packages.unwrap(), ["i", "t"]);
        assert_eq!(
            Value::Object(dest.metadata.unwrap()),
            json!({"k": "top", "t": 1, "i": 2})
        );
        assert_eq!(dest.other["units"], json!(["i.service", "t.service"]));
        assert_eq!(dest.other["selinux"], json!(false));
        assert_eq!(dest.other["ignore-removed-users"], json!(["a", "m", "z"]));
        assert_eq!(dest.other["repovars"], json!({"x": "top", "y": "inc"}));
        assert_eq!(dest.other["tmp-is-dir"], json!(true));
    }

    #[test]
    fn repo_packages_last_claim_wins() {
        let rp = |repo: &str, pkgs: &[&str]| RepoPackages {
            repo: repo.into(),
            packages: pkgs.iter().map(|s| s.to_string()).collect(),
        };
        let out =
            collapse_repo_packages(vec![rp("a", &["x", "y"]), rp("b", &["x"]), rp("c", &["y"])]);
        assert_eq!(out, [rp("b", &["x"]), rp("c", &["y"])]);
    }

    #[test]
    fn add_files_destinations() {
        for ok in [
            "/usr/share/x",
            "etc/x",
            "/bin/x",
            "/sbin/x",
            "/lib/x",
            "/lib64/x",
        ] {
            assert!(add_files_dest_is_valid(ok), "{ok}");
        }
        for bad in ["/usr/local/x", "/var/x", "/opt/x", "/home/x", "/usr"] {
            assert!(!add_files_dest_is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn key_tables_do_not_overlap() {
        for (k, _, _) in OTHER_KEYS {
            assert!(!TYPED_KEYS.contains(k), "{k}");
            assert!(!DERIVE_KEYS.contains(k), "{k}");
        }
        for k in TYPED_KEYS {
            assert!(!DERIVE_KEYS.contains(k), "{k}");
        }
    }

    #[test]
    fn yaml_syntax_error_names_line_and_column() {
        let e = read_map(Path::new("/m/t.yaml"), "ref: a\npackages: [a, b\n").unwrap_err();
        let e = e.to_string();
        assert!(e.starts_with("/m/t.yaml:"), "{e}");
        assert!(e.contains("line 3") || e.contains("line 2"), "{e}");
        assert!(e.contains("column"), "{e}");
        let e = read_map(Path::new("/m/t.json"), "{\"ref\": \n}")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/m/t.json:2:1: JSON syntax error"), "{e}");
        let e = read_map(Path::new("/m/t.toml"), "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown treefile format"), "{e}");
        let e = read_map(Path::new("/m/t.yaml"), "- a\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be a map"), "{e}");
    }

    #[test]
    fn yaml_merge_keys_apply() {
        let (map, yaml) = read_map(
            Path::new("t.yaml"),
            "base: &b\n  x: 1\nmetadata:\n  <<: *b\n  y: 2\n",
        )
        .unwrap();
        assert!(yaml);
        assert_eq!(map["metadata"], json!({"x": 1, "y": 2}));
    }

    #[test]
    fn key_line_lookup() {
        let src = Source {
            file: Path::new("t.yaml"),
            text: "ref: a\n# c\nbogus: 1\n",
            yaml: true,
        };
        assert_eq!(src.key_line("bogus"), Some(3));
        assert_eq!(src.at("bogus"), "t.yaml:3");
        assert_eq!(src.at("absent"), "t.yaml");
        let src = Source {
            file: Path::new("t.json"),
            text: "{\n  \"ref\": \"a\",\n  \"bogus\" : 1\n}",
            yaml: false,
        };
        assert_eq!(src.key_line("bogus"), Some(3));
    }
}
