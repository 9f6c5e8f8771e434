//! The key table: every treefile key cosa knows, how the keys it keeps in
//! [`Treefile::other`](super::Treefile::other) must look, and how they merge.

use serde_json::Value;

use anyhow::Result;

use super::values::{
    Source, required, type_name, unknown_field, want_bool, want_map, want_str, want_str_list,
};

/// How a key merges across includes (rpm-ostree's `treefile_merge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Merge {
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
pub(super) enum Shape {
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
#[rustfmt::skip]
pub(super) const OTHER_KEYS: &[(&str, Shape, Merge)] = &[
    ("edition", Shape::Edition, Merge::Scalar),
    ("basearch", Shape::Str, Merge::Scalar),
    ("repovars", Shape::StrMap, Merge::Map),
    ("rojig", Shape::Rojig, Merge::Scalar),
    ("selinux", Shape::Bool, Merge::Scalar),
    ("ignore-devices", Shape::Bool, Merge::Scalar),
    ("selinux-label-version", Shape::U32, Merge::Scalar),
    ("sysusers", Shape::Enum(&["compose-auto", "compose-forced"]), Merge::Scalar),
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
    ("boot-location", Shape::Enum(&["new", "modules", "kernel-install"]), Merge::Scalar),
    ("tmp-is-dir", Shape::Bool, Merge::Scalar),
    ("opt-usrlocal", Shape::Enum(&["var", "root", "state-overlay", "stateoverlay"]), Merge::Scalar),
    ("units", Shape::StrList, Merge::List),
    ("default-target", Shape::Str, Merge::Scalar),
    ("machineid-compat", Shape::Bool, Merge::Scalar),
    ("automatic-version-suffix", Shape::Str, Merge::Scalar),
    ("preserve-passwd", Shape::Bool, Merge::Scalar),
    ("check-passwd", Shape::Check, Merge::Scalar),
    ("check-groups", Shape::Check, Merge::Scalar),
    ("ignore-removed-users", Shape::StrList, Merge::Set),
    ("ignore-removed-groups", Shape::StrList, Merge::Set),
    ("repo-metadata", Shape::Enum(&["inline", "detached", "disabled"]), Merge::Scalar),
    ("advisories-metadata", Shape::Enum(&["inline", "detached", "disabled"]), Merge::Scalar),
    ("rpmdb", Shape::Enum(&["bdb", "b-d-b", "sqlite", "ndb", "target", "host"]), Merge::Scalar),
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
pub(super) const LEGACY_KEYS: &[(&str, &str)] = &[
    ("gpg_key", "gpg-key"),
    ("boot_location", "boot-location"),
    ("default_target", "default-target"),
    ("automatic_version_prefix", "automatic-version-prefix"),
];

/// Keys cosa reads into typed fields of [`Treefile`].
pub(super) const TYPED_KEYS: &[&str] = &[
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
pub(super) const DERIVE_KEYS: &[&str] = &[
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

pub(super) fn other_key(key: &str) -> Option<(Shape, Merge)> {
    OTHER_KEYS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, s, m)| (*s, *m))
}

pub(super) fn is_known_key(key: &str) -> bool {
    TYPED_KEYS.contains(&key) || other_key(key).is_some()
}
/// Validate an `other` key's value; `check-*` file names become absolute.
pub(super) fn check_shape(src: &Source, key: &str, shape: Shape, v: Value) -> Result<Value> {
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
                want_str(
                    src,
                    &format!("{key}.{field}"),
                    required(src, key, &map, field)?,
                )?;
            }
            for (k, item) in &map {
                match k.as_str() {
                    "name" | "summary" | "license" => {}
                    "description" => {
                        want_str(src, "rojig.description", item)?;
                    }
                    _ => return Err(unknown_field(src, key, k)),
                }
            }
        }
        Shape::Modules => {
            for (k, item) in &want_map(src, key, &v)? {
                match k.as_str() {
                    "enable" | "install" => {
                        want_str_list(src, &format!("modules.{k}"), item)?;
                    }
                    _ => return Err(unknown_field(src, key, k)),
                }
            }
        }
    }
    Ok(v)
}

/// `check-passwd` / `check-groups`: `{type: none|previous|file|data, ...}`.
pub(super) fn check_passwd_shape(src: &Source, key: &str, v: Value) -> Result<Value> {
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

/// Why cosa does not act on `key` set to `value`, or `None` when it does
/// (the list in README, "Real configs").
pub(super) fn not_acted(key: &str, value: &Value) -> Option<String> {
    let why = match key {
        "ima" if value == &Value::Bool(true) => {
            "IMA signatures from the RPM headers are not written as security.ima xattrs"
        }
        "platform-module" | "modules" => {
            "RPM modularity was removed from rpm-ostree and is not supported"
        }
        "cliwrap" if value == &Value::Bool(true) => {
            "rpm-ostree's cliwrap wrappers are not installed"
        }
        "cliwrap-binaries" => "rpm-ostree's cliwrap wrappers are not installed",
        "advisories-metadata" if value.as_str() != Some("disabled") => {
            "updateinfo advisories are not read, so rpmostree.advisories is not written"
        }
        "repo-metadata" if value.as_str() == Some("detached") => {
            "rpmostree.rpmmd-repos is written inline (in the commit), not in detached metadata"
        }
        _ => return None,
    };
    Some(why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
