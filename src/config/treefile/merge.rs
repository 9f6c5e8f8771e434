//! Merging an included layer under its includer (rpm-ostree's
//! `treefile_merge`; `dest` is the includer).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::keys::{Merge, other_key};
use super::parse::Layer;

pub(super) fn merge_basic<T>(dest: &mut Option<T>, src: &mut Option<T>) {
    if dest.is_none() {
        *dest = src.take();
    }
}

pub(super) fn merge_vec<T>(dest: &mut Option<Vec<T>>, src: &mut Option<Vec<T>>) {
    if let Some(mut v) = src.take() {
        if let Some(d) = dest.as_mut() {
            v.append(d);
        }
        *dest = Some(v);
    }
}

pub(super) fn merge_map(
    dest: &mut Option<Map<String, Value>>,
    src: &mut Option<Map<String, Value>>,
) {
    if let Some(mut v) = src.take() {
        if let Some(d) = dest.take() {
            for (k, val) in d {
                v.insert(k, val);
            }
        }
        *dest = Some(v);
    }
}

pub(super) fn merge_other(dest: &mut BTreeMap<String, Value>, src: &mut BTreeMap<String, Value>) {
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

pub(super) fn merge_layer(dest: &mut Layer, src: &mut Layer) {
    macro_rules! merge_fields {
        ($merge:ident: $($field:ident),+ $(,)?) => {
            $($merge(&mut dest.$field, &mut src.$field);)+
        };
    }
    merge_fields!(merge_basic:
        ref_, releasever, recommends, documentation, postprocess_script,
        automatic_version_prefix, mutate_os_release,
    );
    merge_fields!(merge_vec:
        repos, lockfile_repos, packages, repo_packages, exclude_packages,
        remove_from_packages, remove_files, add_files, postprocess, etc_group_members,
    );
    merge_fields!(merge_map: add_commit_metadata, metadata);
    merge_other(&mut dest.other, &mut src.other);
    for (k, at) in std::mem::take(&mut src.other_at) {
        dest.other_at.entry(k).or_insert(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
