//! `builds/<id>/<arch>/meta.json`: the typed fields cosa writes, every other
//! field kept as read, and validation against coreos-assembler's schema
//! (`src/v1.json`, draft-07, `additionalProperties: false`).
//!
//! The schema is embedded from `cosa-meta-v1.schema.json` beside this file
//! (coreos-assembler's `src/v1.json`, as the reference the project was
//! given holds it); tests/lib/store_meta.rs validates against that file
//! with its own compiled validator.
//!
//! `cosa meta --get KEY` / `--set KEY=VALUE` work on the raw JSON so that no
//! field is ever dropped, and an edit that would make meta.json invalid is
//! refused before anything is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::util;

/// The coreos-assembler meta.json schema (v1), as shipped upstream.
pub const SCHEMA_JSON: &str = include_str!("cosa-meta-v1.schema.json");

/// `meta.json`
pub const META_JSON: &str = "meta.json";

/// One file of a build (`images.<name>`): path relative to the build dir,
/// sha256 and size of the file as stored.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Artifact {
    pub path: String,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_compression: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncompressed_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncompressed_size: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A git checkout's identity (`coreos-assembler.container-config-git`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GitInfo {
    pub commit: String,
    pub origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// `"true"` or `"false"`: a string in the schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirty: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `[name, evr, arch]` as in rpm-ostree's db diff (`(sss)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkgTriple(pub String, pub String, pub String);

/// The details of one pkgdiff entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PkgDiffDetails {
    #[serde(
        rename = "PreviousPackage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub previous: Option<PkgTriple>,
    #[serde(
        rename = "NewPackage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub new: Option<PkgTriple>,
}

/// One `pkgdiff` entry, `[name, kind, {"PreviousPackage": [...], "NewPackage": [...]}]`,
/// as `rpm-ostree db diff --format=json` prints it (`a(sua{sv})`); kind is
/// 0 added, 1 removed, 2 upgraded, 3 downgraded ([`crate::store::diff::DiffKind`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkgDiffEntry(pub String, pub u32, pub PkgDiffDetails);

/// A build's meta.json. Required by the schema: buildid, name, ostree-commit,
/// ostree-timestamp, ostree-version. Unknown fields land in `extra` and are
/// written back unchanged.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Meta {
    pub buildid: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub ostree_ref: Option<String>,
    #[serde(rename = "ostree-commit")]
    pub ostree_commit: String,
    #[serde(rename = "ostree-version")]
    pub ostree_version: String,
    /// RFC 3339 in UTC with a `Z` (the schema's pattern).
    #[serde(rename = "ostree-timestamp")]
    pub ostree_timestamp: String,
    #[serde(
        rename = "ostree-content-checksum",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ostree_content_checksum: Option<String>,
    #[serde(
        rename = "ostree-content-bytes-written",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ostree_content_bytes_written: Option<u64>,
    #[serde(
        rename = "ostree-n-content-total",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ostree_n_content_total: Option<u64>,
    #[serde(
        rename = "ostree-n-content-written",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ostree_n_content_written: Option<u64>,
    #[serde(
        rename = "ostree-n-metadata-total",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ostree_n_metadata_total: Option<u64>,
    #[serde(
        rename = "ostree-n-metadata-written",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ostree_n_metadata_written: Option<u64>,
    #[serde(
        rename = "ostree-n-cache-hits",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ostree_n_cache_hits: Option<u64>,
    #[serde(
        rename = "rpm-ostree-inputhash",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rpm_ostree_inputhash: Option<String>,
    #[serde(
        rename = "coreos-assembler.basearch",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub basearch: Option<String>,
    /// RFC 3339.
    #[serde(
        rename = "coreos-assembler.build-timestamp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub build_timestamp: Option<String>,
    /// `git describe --tags --always --abbrev=42` of the config repo.
    #[serde(
        rename = "coreos-assembler.config-gitrev",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub config_gitrev: Option<String>,
    /// Written as the string `"true"`/`"false"` (the schema's type), read from either.
    #[serde(
        rename = "coreos-assembler.config-dirty",
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_bool_string",
        deserialize_with = "de_bool_string"
    )]
    pub config_dirty: Option<bool>,
    #[serde(
        rename = "coreos-assembler.code-source",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub code_source: Option<String>,
    #[serde(
        rename = "coreos-assembler.container-config-git",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub container_config_git: Option<GitInfo>,
    #[serde(
        rename = "coreos-assembler.image-genver",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub image_genver: Option<u64>,
    #[serde(
        rename = "coreos-assembler.overrides-active",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub overrides_active: Option<bool>,
    #[serde(
        rename = "fedora-coreos.parent-version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub parent_version: Option<String>,
    #[serde(
        rename = "fedora-coreos.parent-commit",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub parent_commit: Option<String>,
    /// Against the previous build of this working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkgdiff: Option<Vec<PkgDiffEntry>>,
    /// Against `fedora-coreos.parent-version` (the previous release).
    #[serde(
        rename = "parent-pkgdiff",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub parent_pkgdiff: Option<Vec<PkgDiffEntry>>,
    /// Keyed by image type; the schema requires `ostree` when present.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, Artifact>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn ser_bool_string<S: Serializer>(v: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(if *b { "true" } else { "false" }),
        None => s.serialize_none(),
    }
}

fn de_bool_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected \"true\" or \"false\", found {other}"
        ))),
    }
}

/// `builds/<id>/<arch>/meta.json`
pub fn meta_path(builds_dir: &Path, id: &str, arch: &str) -> PathBuf {
    super::builds::build_dir(builds_dir, id, arch).join(META_JSON)
}

fn validator() -> Result<&'static jsonschema::Validator> {
    static V: OnceLock<std::result::Result<jsonschema::Validator, String>> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA_JSON).map_err(|e| e.to_string())?;
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .build(&schema)
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| anyhow::anyhow!("compiling the meta.json schema: {e}"))
}

/// Check a meta.json value against the schema; the error lists every
/// violation with its JSON path.
pub fn validate(value: &Value) -> Result<()> {
    let errors: Vec<String> = validator()?
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("at {at}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        bail!(
            "meta.json does not match the coreos-assembler schema: {}",
            errors.join("; ")
        )
    }
}

impl Meta {
    /// Serialize to a JSON value.
    pub fn to_value(&self) -> Result<Value> {
        serde_json::to_value(self).context("serializing meta.json")
    }

    /// Validate against the schema.
    pub fn validate(&self) -> Result<()> {
        validate(&self.to_value()?)
    }

    /// Read and parse a meta.json file.
    pub fn read(path: &Path) -> Result<Meta> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Meta::parse(&text, &path.display().to_string())
    }

    /// Parse meta.json bytes (`what` names where they come from), checking
    /// the names that become paths: the build id, the commit checksum and
    /// every artifact's file name.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Meta> {
        let m: Meta = serde_json::from_slice(bytes).with_context(|| format!("parsing {what}"))?;
        m.check_names().with_context(|| format!("in {what}"))?;
        Ok(m)
    }

    /// See [`Meta::parse`].
    pub fn check_names(&self) -> Result<()> {
        use super::names;
        names::build_id(&self.buildid).context("buildid")?;
        names::commit_checksum(&self.ostree_commit).context("ostree-commit")?;
        for (k, a) in &self.images {
            names::artifact_file(&a.path).with_context(|| format!("images.{k}.path"))?;
        }
        Ok(())
    }

    /// Validate, then write atomically (temp + rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        let v = self.to_value()?;
        validate(&v).with_context(|| format!("refusing to write {}", path.display()))?;
        self.check_names()
            .with_context(|| format!("refusing to write {}", path.display()))?;
        util::write_json_atomic(path, &v).with_context(|| format!("writing {}", path.display()))
    }
}

/// Split a dotted key into the path of keys to follow in `root`. Keys that
/// themselves contain dots (`coreos-assembler.basearch`) are found by taking,
/// at each level, the longest dotted prefix that is an existing key; for a
/// key not yet there, `coreos-assembler.` and `fedora-coreos.` keep their
/// first dot, as upstream's `cmd-meta` does. Digits index arrays.
pub fn key_path(root: &Value, key: &str) -> Result<Vec<String>> {
    if key.is_empty() || key.split('.').any(str::is_empty) {
        bail!("invalid meta.json key {key:?}: use dotted names like images.ostree.path");
    }
    let parts: Vec<&str> = key.split('.').collect();
    let mut out = Vec::new();
    let mut cur = Some(root);
    let mut i = 0;
    while i < parts.len() {
        let mut take = 1;
        if let Some(Value::Object(m)) = cur {
            if let Some(n) = (1..=parts.len() - i)
                .rev()
                .find(|n| m.contains_key(&parts[i..i + n].join(".")))
            {
                take = n;
            } else if i == 0
                && parts.len() > 1
                && matches!(parts[0], "coreos-assembler" | "fedora-coreos")
            {
                take = 2;
            }
        }
        let seg = parts[i..i + take].join(".");
        cur = match cur {
            Some(Value::Object(m)) => m.get(&seg),
            Some(Value::Array(a)) => seg.parse::<usize>().ok().and_then(|n| a.get(n)),
            _ => None,
        };
        out.push(seg);
        i += take;
    }
    Ok(out)
}

/// `cosa meta --get KEY`: the value at a dotted key.
pub fn get_key<'a>(root: &'a Value, key: &str) -> Result<&'a Value> {
    let path = key_path(root, key)?;
    let mut cur = root;
    for seg in &path {
        cur = match cur {
            Value::Object(m) => m.get(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|n| a.get(n)),
            _ => None,
        }
        .with_context(|| format!("meta.json has no key {key:?}"))?;
    }
    Ok(cur)
}

/// Parse a `--set` value: JSON when it parses, else the raw string. When
/// the key already holds a string, a value that parses as a non-string
/// (`ostree-version=41`) stays a string, so the common case needs no quoting.
pub fn parse_set_value(existing: Option<&Value>, raw: &str) -> Value {
    let keep_string = matches!(existing, Some(Value::String(_)));
    match serde_json::from_str::<Value>(raw) {
        Ok(v) if v.is_string() || !keep_string => v,
        _ => Value::String(raw.to_string()),
    }
}

/// `cosa meta --set KEY=VALUE` on a value: creates missing objects on the way.
pub fn set_key(root: &mut Value, key: &str, raw_value: &str) -> Result<()> {
    let path = key_path(root, key)?;
    let value = parse_set_value(get_key(root, key).ok(), raw_value);
    let (last, parents) = path.split_last().context("empty key")?;
    let mut cur = root;
    for seg in parents {
        cur = match cur {
            Value::Object(m) => m
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            Value::Array(a) => {
                let n: usize = seg
                    .parse()
                    .ok()
                    .filter(|n| *n < a.len())
                    .with_context(|| format!("no element {seg} in the array at {key:?}"))?;
                &mut a[n]
            }
            _ => bail!("cannot set {key:?}: {seg:?} is inside a value that is not an object"),
        };
    }
    match cur {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            let n: usize = last
                .parse()
                .ok()
                .filter(|n| *n < a.len())
                .with_context(|| format!("no element {last} in the array at {key:?}"))?;
            a[n] = value;
        }
        _ => bail!("cannot set {key:?}: its parent is not an object"),
    }
    Ok(())
}

/// Read a meta.json file as raw JSON.
pub fn read_value(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Apply `KEY=VALUE` edits to the meta.json at `path`, validate the result
/// against the schema and only then write it back atomically. Every field
/// not named is kept as it was.
pub fn set_in_file(path: &Path, assignments: &[&str]) -> Result<Value> {
    let mut v = read_value(path)?;
    for a in assignments {
        let (k, val) = a
            .split_once('=')
            .with_context(|| format!("--set {a:?}: expected KEY=VALUE"))?;
        set_key(&mut v, k, val).with_context(|| format!("setting {k} in {}", path.display()))?;
    }
    let refuse = || {
        format!(
            "refusing to write {}: the edit would make it invalid",
            path.display()
        )
    };
    validate(&v).with_context(refuse)?;
    Meta::parse(&serde_json::to_vec(&v)?, &path.display().to_string()).with_context(refuse)?;
    util::write_json_atomic(path, &v).with_context(|| format!("writing {}", path.display()))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_path_handles_dotted_keys() {
        let v = json!({"coreos-assembler.basearch": "x86_64", "images": {"ostree": {"path": "a"}}});
        assert_eq!(
            key_path(&v, "coreos-assembler.basearch").unwrap(),
            ["coreos-assembler.basearch"]
        );
        assert_eq!(
            key_path(&v, "images.ostree.path").unwrap(),
            ["images", "ostree", "path"]
        );
        assert_eq!(
            key_path(&v, "coreos-assembler.new-key").unwrap(),
            ["coreos-assembler.new-key"]
        );
        assert_eq!(key_path(&v, "a.b").unwrap(), ["a", "b"]);
        assert!(key_path(&v, "a..b").is_err());
    }

    #[test]
    fn set_value_parsing() {
        assert_eq!(parse_set_value(None, "3"), json!(3));
        assert_eq!(parse_set_value(None, "true"), json!(true));
        assert_eq!(parse_set_value(None, "hello"), json!("hello"));
        assert_eq!(parse_set_value(None, r#"{"a":1}"#), json!({"a":1}));
        assert_eq!(parse_set_value(Some(&json!("x")), "41"), json!("41"));
        assert_eq!(parse_set_value(Some(&json!(1)), "41"), json!(41));
    }

    #[test]
    fn set_creates_and_replaces() {
        let mut v = json!({"a": [1, {"b": 2}]});
        set_key(&mut v, "a.1.b", "3").unwrap();
        set_key(&mut v, "x.y", "z").unwrap();
        assert_eq!(v, json!({"a": [1, {"b": 3}], "x": {"y": "z"}}));
        assert!(set_key(&mut v, "a.5", "1").is_err());
        assert!(get_key(&v, "nope").is_err());
    }

    #[test]
    fn config_dirty_is_a_string_on_disk() {
        let m = Meta {
            config_dirty: Some(false),
            ..Default::default()
        };
        let v = m.to_value().unwrap();
        assert_eq!(v["coreos-assembler.config-dirty"], json!("false"));
        let back: Meta = serde_json::from_value(v).unwrap();
        assert_eq!(back.config_dirty, Some(false));
    }
}
