//! `cosa prune` on a real store: tagged builds kept, builds.json and
//! `latest` rewritten, directories deleted, and the commits that no kept
//! build uses returned for OSTree pruning. Also the package diff between two
//! builds' commitmeta.json, written into a meta.json that stays valid.

use std::fs;
use std::path::Path;

use cosa::store::builds::{self, BuildsJson, StagedBuild, Tag};
use cosa::store::diff::{self, DiffKind};
use cosa::store::lock::WorkdirLock;
use cosa::store::meta::{self, Artifact, Meta};
use cosa::store::prune;
use serde_json::json;

fn commit(c: char) -> String {
    c.to_string().repeat(64)
}

fn add_build(bd: &Path, lock: &WorkdirLock, id: &str, commit: &str, pkgs: serde_json::Value) {
    let s = StagedBuild::new(bd, lock).unwrap();
    let mut images = std::collections::BTreeMap::new();
    images.insert(
        "ostree".to_string(),
        Artifact {
            path: "ostree.tar".into(),
            sha256: "00".repeat(32),
            ..Default::default()
        },
    );
    Meta {
        buildid: id.into(),
        name: "sample".into(),
        ostree_commit: commit.into(),
        ostree_version: id.into(),
        ostree_timestamp: "2024-05-20T08:00:00Z".into(),
        images,
        ..Default::default()
    }
    .write(&s.path().join("meta.json"))
    .unwrap();
    cosa::util::write_json_atomic(
        &s.path().join("commitmeta.json"),
        &json!({"rpmostree.rpmdb.pkglist": pkgs}),
    )
    .unwrap();
    s.publish(bd, id, "x86_64", lock).unwrap();
}

#[test]
fn prune_keeps_tagged_and_returns_unreferenced_commits() {
    let wd = tempfile::tempdir().unwrap();
    let bd = wd.path().join("builds");
    builds::init(&bd).unwrap();
    let lock = WorkdirLock::acquire(wd.path()).unwrap();
    // Oldest first; "b-1" is a rebuild of commit b (image-genver), so b
    // stays referenced when "b" goes.
    for (id, c) in [
        ("a", 'a'),
        ("b", 'b'),
        ("b-1", 'b'),
        ("c", 'c'),
        ("d", 'd'),
        ("e", 'e'),
    ] {
        add_build(&bd, &lock, id, &commit(c), json!([]));
    }
    let mut b = BuildsJson::load(&bd).unwrap();
    b.tags = Some(vec![Tag {
        name: "golden".into(),
        created: "2024-05-20T00:00:00Z".into(),
        target: "a".into(),
        extra: Default::default(),
    }]);
    b.write(&bd).unwrap();

    let plan = prune::plan_keep_last(&b, 3);
    assert_eq!(plan.keep, ["e", "d", "c", "a"]);
    assert_eq!(plan.remove, ["b-1", "b"]);
    let res = prune::prune(&bd, &plan, &lock).unwrap();
    assert_eq!(
        res.removed
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>(),
        ["b-1", "b"]
    );
    assert_eq!(res.removed[0].ostree_commits, [commit('b')]);
    assert_eq!(res.unreferenced_commits, [commit('b')]);
    assert!(!bd.join("b").exists() && !bd.join("b-1").exists());

    let after = BuildsJson::load(&bd).unwrap();
    assert_eq!(
        after
            .builds
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["e", "d", "c", "a"]
    );
    assert_eq!(after.tags_of("a"), ["golden"]);
    assert_eq!(builds::read_latest(&bd).as_deref(), Some("e"));

    // A commit still used by a kept build is not offered for pruning.
    add_build(&bd, &lock, "f", &commit('d'), json!([]));
    let res = prune::prune(&bd, &prune::plan_ids(&after, &["d"]).unwrap(), &lock).unwrap();
    assert_eq!(res.removed[0].ostree_commits, [commit('d')]);
    assert!(res.unreferenced_commits.is_empty());

    // Nothing to do is a no-op that leaves builds.json untouched.
    let before = fs::read(bd.join("builds.json")).unwrap();
    let b = BuildsJson::load(&bd).unwrap();
    let res = prune::prune(&bd, &prune::plan_keep_last(&b, 10), &lock).unwrap();
    assert!(res.removed.is_empty());
    assert_eq!(fs::read(bd.join("builds.json")).unwrap(), before);

    // Pruning every untagged build leaves `latest` on the tagged one; with
    // the tag gone, pruning it too removes `latest`.
    let mut b = BuildsJson::load(&bd).unwrap();
    let ids: Vec<&str> = b
        .builds
        .iter()
        .map(|e| e.id.as_str())
        .filter(|i| *i != "a")
        .collect();
    prune::prune(&bd, &prune::plan_ids(&b, &ids).unwrap(), &lock).unwrap();
    assert_eq!(builds::read_latest(&bd).as_deref(), Some("a"));
    b = BuildsJson::load(&bd).unwrap();
    b.tags = Some(Vec::new());
    b.write(&bd).unwrap();
    prune::prune(&bd, &prune::plan_ids(&b, &["a"]).unwrap(), &lock).unwrap();
    assert_eq!(builds::read_latest(&bd), None);
    assert!(BuildsJson::load(&bd).unwrap().is_empty());
    let left: Vec<_> = fs::read_dir(&bd)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["builds.json"]);
}

#[test]
fn diff_between_two_builds_goes_into_a_valid_meta() {
    let wd = tempfile::tempdir().unwrap();
    let bd = wd.path().join("builds");
    builds::init(&bd).unwrap();
    let lock = WorkdirLock::acquire(wd.path()).unwrap();
    add_build(
        &bd,
        &lock,
        "1",
        &commit('1'),
        json!([
            ["bash", "0", "5.2", "1", "x86_64"],
            ["old", "0", "1", "1", "noarch"],
            ["kernel", "0", "6.9.1", "1", "x86_64"]
        ]),
    );
    add_build(
        &bd,
        &lock,
        "2",
        &commit('2'),
        json!([
            ["bash", "0", "5.2", "1.1", "x86_64"],
            ["new", "2", "0.1", "1", "noarch"],
            ["kernel", "0", "6.9.0", "9", "x86_64"]
        ]),
    );
    let pkgs = |id: &str| {
        let v = meta::read_value(&bd.join(id).join("x86_64/commitmeta.json")).unwrap();
        diff::packages_from_commitmeta(&v).unwrap()
    };
    let d = diff::diff(&pkgs("1"), &pkgs("2"));
    let kinds: Vec<(&str, DiffKind)> = d
        .changes
        .iter()
        .map(|c| (c.name.as_str(), c.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("bash", DiffKind::Upgraded),
            ("kernel", DiffKind::Downgraded),
            ("new", DiffKind::Added),
            ("old", DiffKind::Removed)
        ]
    );
    assert!(
        d.to_table().contains("new     2:0.1-1.noarch"),
        "{}",
        d.to_table()
    );

    let path = meta::meta_path(&bd, "2", "x86_64");
    let mut m = Meta::read(&path).unwrap();
    m.pkgdiff = Some(d.to_pkgdiff());
    m.write(&path).unwrap();
    let v = meta::read_value(&path).unwrap();
    assert_eq!(
        v["pkgdiff"][2],
        json!(["new", 0, {"NewPackage": ["new", "2:0.1-1", "noarch"]}])
    );
}
