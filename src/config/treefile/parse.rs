//! One file's keys (or an inline `conditional-include` block) parsed into a
//! [`Layer`], before merging.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use regex::Regex;
use serde_json::{Map, Value};

use super::RepoPackages;
use super::conditions::{CondInclude, CondValue, cond_to_json, parse_conditional_includes};
use super::keys::{DERIVE_KEYS, LEGACY_KEYS, check_shape, is_known_key, other_key};
use super::packages::split_package_list;
use super::values::{
    Source, list_of, list_of_maps, required, type_name, want_bool, want_include, want_map,
    want_str, want_str_list, want_var,
};

/// merging. `None` means "not set here", as in rpm-ostree's `Option` fields.
#[derive(Debug, Clone, Default)]
pub(super) struct Layer {
    pub(super) ref_: Option<String>,
    pub(super) releasever: Option<CondValue>,
    pub(super) repos: Option<Vec<String>>,
    pub(super) lockfile_repos: Option<Vec<String>>,
    pub(super) packages: Option<Vec<String>>,
    pub(super) repo_packages: Option<Vec<RepoPackages>>,
    pub(super) exclude_packages: Option<Vec<String>>,
    pub(super) recommends: Option<bool>,
    pub(super) documentation: Option<bool>,
    pub(super) remove_from_packages: Option<Vec<(String, Vec<String>)>>,
    pub(super) remove_files: Option<Vec<String>>,
    pub(super) add_files: Option<Vec<(PathBuf, String)>>,
    pub(super) postprocess: Option<Vec<String>>,
    pub(super) postprocess_script: Option<PathBuf>,
    pub(super) etc_group_members: Option<Vec<String>>,
    pub(super) automatic_version_prefix: Option<String>,
    pub(super) mutate_os_release: Option<String>,
    pub(super) add_commit_metadata: Option<Map<String, Value>>,
    pub(super) metadata: Option<Map<String, Value>>,
    pub(super) variables: Option<BTreeMap<String, Value>>,
    pub(super) other: BTreeMap<String, Value>,
    /// `file:line` where each key of `other` was set (for warnings).
    pub(super) other_at: BTreeMap<String, String>,
    pub(super) include: Vec<String>,
    pub(super) arch_include: BTreeMap<String, Vec<String>>,
    pub(super) conditional_include: Vec<CondInclude>,
}

/// Parse the keys of one file (or inline block) into a [`Layer`].
pub(super) fn parse_layer(
    src: &Source,
    map: Map<String, Value>,
    basearch: &str,
    inline: bool,
) -> Result<Layer> {
    let mut layer = Layer::default();
    let mut map = migrate_legacy_keys(src, map)?;
    // Keys set to null count as unset (serde's `Option` behaviour), but an
    // unknown key is refused even when it has no value.
    for (k, v) in &map {
        let known = is_known_key(k)
            || DERIVE_KEYS.contains(&k.as_str())
            || (k.starts_with("packages-") && !k.starts_with("packages-local"));
        if v.is_null() && !known {
            return Err(unknown_key(src, k));
        }
    }
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
pub(super) fn migrate_legacy_keys(
    src: &Source,
    mut map: Map<String, Value>,
) -> Result<Map<String, Value>> {
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
pub(super) fn apply_implied_defaults(layer: &mut Layer) {
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

pub(super) fn parse_key(
    src: &Source,
    layer: &mut Layer,
    key: &str,
    v: Value,
    basearch: &str,
) -> Result<()> {
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
            layer.other_at.insert(key.to_string(), src.at(key));
        }
    }
    Ok(())
}

pub(super) fn unknown_key(src: &Source, key: &str) -> anyhow::Error {
    let kebab = key.replace('_', "-");
    let hint = if kebab != key && is_known_key(&kebab) {
        format!(" (did you mean \"{kebab}\"?)")
    } else {
        String::new()
    };
    anyhow!("{}: unknown treefile key \"{key}\"{hint}", src.at(key))
}

pub(super) fn parse_variables(src: &Source, v: &Value) -> Result<BTreeMap<String, Value>> {
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

pub(super) fn parse_repo_packages(src: &Source, v: &Value) -> Result<Vec<RepoPackages>> {
    list_of_maps(
        src,
        "repo-packages",
        v,
        &["repo", "packages"],
        |what, map| {
            let repo = required(src, what, map, "repo")?;
            let pkgs = required(src, what, map, "packages")?;
            Ok(RepoPackages {
                repo: want_str(src, &format!("{what}.repo"), repo)?,
                packages: split_package_list(
                    src,
                    what,
                    &want_str_list(src, &format!("{what}.packages"), pkgs)?,
                )?,
            })
        },
    )
}

pub(super) fn parse_remove_from_packages(
    src: &Source,
    v: &Value,
) -> Result<Vec<(String, Vec<String>)>> {
    let description = "[package, regex...] lists";
    list_of(src, "remove-from-packages", v, description, |what, item| {
        let mut parts = want_str_list(src, what, item)?;
        if parts.len() < 2 {
            return Err(src.err(
                what,
                "expected a package name followed by at least one regex",
            ));
        }
        for re in &parts[1..] {
            Regex::new(re).map_err(|e| src.err(what, format!("invalid regex {re:?}: {e}")))?;
        }
        let pkg = parts.remove(0);
        Ok((pkg, parts))
    })
}

/// rpm-ostree's `add_files_path_is_valid`: only paths OSTree manages.
pub(super) fn add_files_dest_is_valid(dest: &str) -> bool {
    let p = dest.trim_start_matches('/');
    (p.starts_with("usr/") && !p.starts_with("usr/local/"))
        || ["etc/", "bin/", "sbin/", "lib/", "lib64/"]
            .iter()
            .any(|pre| p.starts_with(pre))
}

pub(super) fn parse_add_files(src: &Source, v: &Value) -> Result<Vec<(PathBuf, String)>> {
    let description = "[source, destination] pairs";
    list_of(src, "add-files", v, description, |what, item| {
        let pair = want_str_list(src, what, item)?;
        let [from, dest] = <[String; 2]>::try_from(pair).map_err(|p| {
            src.err(
                what,
                format!("expected [source, destination], got {} items", p.len()),
            )
        })?;
        if !add_files_dest_is_valid(&dest) {
            return Err(src.err(
                what,
                format!("unsupported destination {dest:?}: only /usr (not /usr/local), /etc, /bin, /sbin, /lib and /lib64 are managed by OSTree"),
            ));
        }
        let path = src.dir().join(&from);
        if !path.is_file() {
            return Err(src.err(what, format!("source file {} not found", path.display())));
        }
        Ok((path, dest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
