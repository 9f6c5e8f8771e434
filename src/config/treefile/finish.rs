//! Final assembly: variable substitution, `repo-packages` overrides and
//! defaults, giving a [`Treefile`].

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use regex::Regex;
use serde_json::{Map, Value};
use std::sync::LazyLock;

use super::conditions::CondValue;
use super::parse::Layer;
use super::{RepoPackages, Treefile};

/// Replace every `${name}` in `s` from `vars`; an undefined name is an error.
pub(super) fn substitute(s: &str, vars: &BTreeMap<String, Value>) -> Result<String> {
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

pub(super) fn substitute_opt(
    field: &mut Option<String>,
    key: &str,
    vars: &BTreeMap<String, Value>,
) -> Result<()> {
    if let Some(s) = field {
        *s = substitute(s, vars).with_context(|| format!("substituting variables in {key}"))?;
    }
    Ok(())
}

pub(super) fn substitute_map_strings(
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
pub(super) fn collapse_repo_packages(rps: Vec<RepoPackages>) -> Vec<RepoPackages> {
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

pub(super) fn finish(
    path: PathBuf,
    mut layer: Layer,
    variables: BTreeMap<String, Value>,
) -> Result<Treefile> {
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
        other_at: layer.other_at,
        files: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn repo_packages_last_claim_wins() {
        let rp = |repo: &str, pkgs: &[&str]| RepoPackages {
            repo: repo.into(),
            packages: pkgs.iter().map(|s| s.to_string()).collect(),
        };
        let out =
            collapse_repo_packages(vec![rp("a", &["x", "y"]), rp("b", &["x"]), rp("c", &["y"])]);
        assert_eq!(out, [rp("b", &["x"]), rp("c", &["y"])]);
    }
}
