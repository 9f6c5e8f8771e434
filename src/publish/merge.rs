//! Merging two views of one builds.json (a remote bucket's and a working
//! directory's) without losing a build, an arch or a tag.
//!
//! Upstream coreos-assembler simply overwrites the bucket's builds.json with
//! the local one after `buildupload`, so two arches uploaded from two machines
//! race and one can vanish. Here every writer merges into the newest copy and
//! writes it back with a conditional PUT (see [`super::s3`]).

use crate::store::builds::{BuildEntry, BuildsJson};

/// Merge `other` into `base`: `base`'s order wins (newest first); an id
/// both list gets the union of their arches (base's first); an id only
/// `other` lists is placed next to its neighbour in `other` that `base` also
/// lists (before the next older one, else after the next newer one, else at
/// the front, where upstream's `insert_build` puts a new build). Tags: base's,
/// then other's whose name base lacks. Other top-level keys: base's win.
pub fn merge(base: &BuildsJson, other: &BuildsJson) -> BuildsJson {
    let mut out = base.clone();
    for (i, b) in other.builds.iter().enumerate() {
        if let Some(e) = out.builds.iter_mut().find(|e| e.id == b.id) {
            for a in &b.arches {
                if !e.arches.contains(a) {
                    e.arches.push(a.clone());
                }
            }
            continue;
        }
        let pos = |id: &str| out.builds.iter().position(|e| e.id == id);
        let older = other.builds[i + 1..].iter().find_map(|o| pos(&o.id));
        let newer = other.builds[..i].iter().rev().find_map(|o| pos(&o.id));
        let at = older.or(newer.map(|n| n + 1)).unwrap_or(0);
        out.builds.insert(at, b.clone());
    }
    if let Some(tags) = &other.tags {
        let mine = out.tags.get_or_insert_with(Vec::new);
        for t in tags {
            if !mine.iter().any(|m| m.name == t.name) {
                mine.push(t.clone());
            }
        }
    }
    for (k, v) in &other.extra {
        out.extra.entry(k.clone()).or_insert_with(|| v.clone());
    }
    out
}

/// The part of `local` that names build `id` for `arch` only, placed among
/// `local`'s other builds, so that [`merge`] can put it at the right spot of
/// a remote list: the entry itself plus its neighbours with no arches changed.
pub fn one_arch(local: &BuildsJson, id: &str, arch: &str) -> BuildsJson {
    let mut out = BuildsJson {
        tags: None,
        ..local.clone()
    };
    out.extra.clear();
    for b in &mut out.builds {
        if b.id == id {
            *b = BuildEntry {
                id: id.to_string(),
                arches: vec![arch.to_string()],
                extra: b.extra.clone(),
            };
        } else {
            // Neighbours only position the entry; they bring no arch.
            b.arches.clear();
        }
    }
    if !out.has(id) {
        out.builds.insert(
            0,
            BuildEntry {
                id: id.to_string(),
                arches: vec![arch.to_string()],
                extra: Default::default(),
            },
        );
    }
    out
}

/// Like [`merge`] for uploading one build arch: neighbours of `one` that
/// `base` lacks are not added (they were not uploaded).
pub fn merge_one(base: &BuildsJson, one: &BuildsJson, id: &str) -> BuildsJson {
    let mut m = merge(base, one);
    m.builds.retain(|b| b.id == id || base.has(&b.id));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bj(entries: &[(&str, &[&str])]) -> BuildsJson {
        let mut b = BuildsJson::default();
        for (id, arches) in entries.iter().rev() {
            for a in *arches {
                b.insert_build(id, a).unwrap();
            }
        }
        b
    }

    fn ids(b: &BuildsJson) -> Vec<(String, Vec<String>)> {
        b.builds
            .iter()
            .map(|e| (e.id.clone(), e.arches.clone()))
            .collect()
    }

    #[test]
    fn union_of_arches_and_order_kept() {
        let remote = bj(&[("3", &["x86_64"]), ("1", &["x86_64"])]);
        let local = bj(&[("3", &["aarch64"]), ("2", &["aarch64"]), ("1", &["s390x"])]);
        let m = merge(&remote, &local);
        assert_eq!(
            ids(&m),
            [
                ("3".into(), vec!["x86_64".into(), "aarch64".into()]),
                ("2".into(), vec!["aarch64".into()]),
                ("1".into(), vec!["x86_64".into(), "s390x".into()]),
            ]
        );
    }

    #[test]
    fn new_build_goes_first_without_neighbours_and_after_a_newer_one() {
        let remote = bj(&[("2", &["x86_64"])]);
        let m = merge(&remote, &bj(&[("9", &["x86_64"])]));
        assert_eq!(m.latest(), Some("9"));
        let m = merge(&remote, &bj(&[("2", &["x86_64"]), ("1", &["x86_64"])]));
        assert_eq!(m.builds[1].id, "1");
    }

    #[test]
    fn upload_of_one_arch_adds_only_it() {
        let local = bj(&[("5", &["x86_64"]), ("4", &["x86_64"]), ("3", &["x86_64"])]);
        let remote = bj(&[("5", &["aarch64"]), ("3", &["aarch64", "x86_64"])]);
        let one = one_arch(&local, "4", "x86_64");
        let m = merge_one(&remote, &one, "4");
        assert_eq!(
            ids(&m),
            [
                ("5".into(), vec!["aarch64".into()]),
                ("4".into(), vec!["x86_64".into()]),
                ("3".into(), vec!["aarch64".into(), "x86_64".into()]),
            ]
        );
        // Into an empty bucket.
        let m = merge_one(&BuildsJson::default(), &one, "4");
        assert_eq!(ids(&m), [("4".into(), vec!["x86_64".into()])]);
    }
}
