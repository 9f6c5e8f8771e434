//! builds.json as coreos-assembler writes it, publishing builds into a real
//! directory, the `latest` symlink, and startup recovery of half-made builds.

use std::fs;
use std::path::Path;

use cosa::store::builds::{self, BuildsJson, StagedBuild};
use cosa::store::lock::WorkdirLock;
use serde_json::{Value, json};

/// Shaped like a Fedora CoreOS pipeline's builds.json: two arches on the
/// newest build, `policy-cleanup` written by `cosa cloud-prune`, tags from
/// `cosa tag update`, and a top-level key from some newer tool.
const UPSTREAM: &str = r#"{
    "schema-version": "1.0.0",
    "builds": [
        {
            "id": "40.20240416.1.0",
            "arches": [
                "x86_64",
                "aarch64"
            ],
            "policy-cleanup": {
                "cloud-uploads": true,
                "images-kept": ["qemu", "live-iso"]
            }
        },
        {
            "id": "40.20240408.1.0",
            "arches": [
                "x86_64"
            ]
        }
    ],
    "timestamp": "2024-04-16T12:32:02Z",
    "tags": [
        {
            "name": "smoketested",
            "created": "2024-04-16T13:00:00Z",
            "target": "40.20240408.1.0"
        }
    ],
    "x-newer-tool": {"keep": "me"}
}"#;

#[test]
fn upstream_builds_json_round_trips_unchanged() {
    let b = BuildsJson::parse(UPSTREAM).unwrap();
    assert_eq!(b.latest(), Some("40.20240416.1.0"));
    assert_eq!(
        b.get("40.20240416.1.0").unwrap().arches,
        ["x86_64", "aarch64"]
    );
    assert_eq!(b.tags_of("40.20240408.1.0"), ["smoketested"]);
    let out = serde_json::to_value(&b).unwrap();
    let input: Value = serde_json::from_str(UPSTREAM).unwrap();
    assert_eq!(out, input);
}

#[test]
fn rewriting_keeps_unknown_fields_and_bumps_the_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("builds.json"), UPSTREAM).unwrap();
    let mut b = BuildsJson::load(dir.path()).unwrap();
    b.insert_build("40.20240420.1.0", "x86_64").unwrap();
    b.insert_build("40.20240416.1.0", "s390x").unwrap();
    b.bump_timestamp_and_write(dir.path()).unwrap();

    let v: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("builds.json")).unwrap()).unwrap();
    assert_eq!(v["schema-version"], json!("1.0.0"));
    assert_eq!(
        v["builds"][0],
        json!({"id": "40.20240420.1.0", "arches": ["x86_64"]})
    );
    assert_eq!(
        v["builds"][1]["arches"],
        json!(["x86_64", "aarch64", "s390x"])
    );
    assert_eq!(
        v["builds"][1]["policy-cleanup"]["cloud-uploads"],
        json!(true)
    );
    assert_eq!(v["tags"][0]["name"], json!("smoketested"));
    assert_eq!(v["x-newer-tool"], json!({"keep": "me"}));
    let ts = v["timestamp"].as_str().unwrap();
    assert_ne!(ts, "2024-04-16T12:32:02Z");
    cosa::util::time::parse_rfc3339(ts).unwrap();
    // No temp file left beside it.
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["builds.json"]);
}

#[test]
fn missing_builds_json_is_empty_and_init_writes_one() {
    let dir = tempfile::tempdir().unwrap();
    let bd = dir.path().join("builds");
    assert!(BuildsJson::load(&bd).unwrap().is_empty());
    builds::init(&bd).unwrap();
    let v: Value =
        serde_json::from_str(&fs::read_to_string(bd.join("builds.json")).unwrap()).unwrap();
    assert_eq!(v["schema-version"], json!("1.0.0"));
    assert_eq!(v["builds"], json!([]));
    assert!(v["timestamp"].is_string());
}

fn stage(bd: &Path, lock: &WorkdirLock, id: &str) -> StagedBuild {
    let s = StagedBuild::new(bd, lock).unwrap();
    fs::write(
        s.path().join("meta.json"),
        format!("{{\"buildid\":\"{id}\"}}"),
    )
    .unwrap();
    s
}

fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn publish_insert_remove_and_latest() {
    let wd = tempfile::tempdir().unwrap();
    let bd = wd.path().join("builds");
    builds::init(&bd).unwrap();
    let lock = WorkdirLock::acquire(wd.path()).unwrap();

    stage(&bd, &lock, "1")
        .publish(&bd, "1", "x86_64", &lock)
        .unwrap();
    stage(&bd, &lock, "2")
        .publish(&bd, "2", "x86_64", &lock)
        .unwrap();
    stage(&bd, &lock, "1")
        .publish(&bd, "1", "aarch64", &lock)
        .unwrap();
    assert_eq!(builds::read_latest(&bd).as_deref(), Some("2"));
    assert!(
        fs::symlink_metadata(bd.join("latest"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_to_string(bd.join("latest/x86_64/meta.json")).unwrap(),
        r#"{"buildid":"2"}"#
    );
    let b = BuildsJson::load(&bd).unwrap();
    assert_eq!(
        b.builds.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        ["2", "1"]
    );
    assert_eq!(b.get("1").unwrap().arches, ["x86_64", "aarch64"]);
    assert_eq!(list(&bd.join("1")), ["aarch64", "x86_64"]);
    assert_eq!(list(&bd), ["1", "2", "builds.json", "latest"]);

    // The same id and arch again is refused, and the staging dir goes away.
    let e = stage(&bd, &lock, "2")
        .publish(&bd, "2", "x86_64", &lock)
        .unwrap_err();
    assert!(format!("{e:#}").contains("already exists"), "{e:#}");
    assert_eq!(list(&bd), ["1", "2", "builds.json", "latest"]);

    // A dropped (failed) staged build leaves nothing.
    drop(stage(&bd, &lock, "3"));
    assert_eq!(list(&bd), ["1", "2", "builds.json", "latest"]);

    // Removing the newest build moves latest back.
    let mut b = BuildsJson::load(&bd).unwrap();
    b.remove_build("2").unwrap();
    b.bump_timestamp_and_write(&bd).unwrap();
    builds::set_latest(&bd, b.latest()).unwrap();
    assert_eq!(builds::read_latest(&bd).as_deref(), Some("1"));
    builds::set_latest(&bd, None).unwrap();
    assert_eq!(builds::read_latest(&bd), None);
}

#[test]
fn recovery_removes_half_made_builds_and_fixes_latest() {
    let wd = tempfile::tempdir().unwrap();
    let bd = wd.path().join("builds");
    builds::init(&bd).unwrap();
    let lock = WorkdirLock::acquire(wd.path()).unwrap();
    stage(&bd, &lock, "1")
        .publish(&bd, "1", "x86_64", &lock)
        .unwrap();

    // What killed runs leave behind:
    // a staging dir that was never renamed,
    let staging = StagedBuild::new(&bd, &lock).unwrap();
    fs::write(staging.path().join("meta.json"), "{").unwrap();
    std::mem::forget(staging);
    // a build dir renamed into place but not yet listed (with cosa's markers),
    fs::create_dir_all(bd.join("2/x86_64")).unwrap();
    fs::write(bd.join("2/x86_64/meta.json"), "{}").unwrap();
    fs::write(bd.join("2").join(builds::UNPUBLISHED), "").unwrap();
    fs::write(bd.join("2/x86_64").join(builds::UNPUBLISHED), "").unwrap();
    // a second arch renamed into a listed build but not listed,
    fs::create_dir_all(bd.join("1/aarch64")).unwrap();
    fs::write(bd.join("1/aarch64").join(builds::UNPUBLISHED), "").unwrap();
    // and directories that are not cosa's (no marker): kept.
    fs::create_dir_all(bd.join("1/riscv64")).unwrap();
    fs::create_dir_all(bd.join("notes")).unwrap();
    // temp files of interrupted atomic writes,
    fs::write(bd.join(".tmpAbC123"), "partial builds.json").unwrap();
    fs::write(bd.join("1/x86_64/.tmpXyZ987"), "partial meta.json").unwrap();
    // and latest pointing at the unlisted build.
    builds::set_latest(&bd, Some("2")).unwrap();
    // Things that are not ours stay: a plain file, and upstream's marker.
    fs::write(bd.join("README"), "hi").unwrap();

    let rec = builds::recover(&bd, &lock).unwrap();
    assert!(rec.latest_fixed);
    assert_eq!(rec.removed.len(), 5, "{:?}", rec.removed);
    assert_eq!(rec.kept, [bd.join("1/riscv64"), bd.join("notes")]);
    assert_eq!(list(&bd), ["1", "README", "builds.json", "latest", "notes"]);
    assert_eq!(list(&bd.join("1")), ["riscv64", "x86_64"]);
    assert_eq!(list(&bd.join("1/x86_64")), ["meta.json"]);
    assert_eq!(builds::read_latest(&bd).as_deref(), Some("1"));

    // Idempotent, and the next build succeeds.
    let again = builds::recover(&bd, &lock).unwrap();
    assert!(again.removed.is_empty() && !again.latest_fixed, "{again:?}");
    stage(&bd, &lock, "2")
        .publish(&bd, "2", "x86_64", &lock)
        .unwrap();
    assert_eq!(builds::read_latest(&bd).as_deref(), Some("2"));
}

#[test]
fn recovery_without_builds_json_deletes_no_build_dir() {
    let wd = tempfile::tempdir().unwrap();
    let bd = wd.path().join("builds");
    fs::create_dir_all(bd.join("7/x86_64")).unwrap();
    fs::write(bd.join(".tmp-build-x"), "").unwrap();
    let lock = WorkdirLock::acquire(wd.path()).unwrap();
    let rec = builds::recover(&bd, &lock).unwrap();
    assert_eq!(rec.removed, [bd.join(".tmp-build-x")]);
    assert!(bd.join("7/x86_64").is_dir());
}

#[test]
fn unlisted_complete_artifacts_of_the_build_are_removed_others_kept() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let mut m = cosa::store::Meta {
        buildid: "1.2".into(),
        name: "os".into(),
        ..Default::default()
    };
    m.images.insert(
        "qemu".into(),
        cosa::store::meta::Artifact {
            path: "os-1.2-qemu.x86_64.qcow2".into(),
            ..Default::default()
        },
    );
    for f in [
        "os-1.2-qemu.x86_64.qcow2",
        "os-1.2-qemu.x86_64.qcow2.sig",
        "os-1.2-metal.x86_64.raw",
        ".tmp-os-1.2-aws.x86_64.vmdk",
        "meta.json",
        "notes.txt",
    ] {
        fs::write(dir.join(f), "x").unwrap();
    }
    let mut removed = builds::remove_partial_artifacts(dir, &m);
    removed.sort();
    assert_eq!(
        removed,
        [
            dir.join(".tmp-os-1.2-aws.x86_64.vmdk"),
            dir.join("os-1.2-metal.x86_64.raw")
        ]
    );
    assert_eq!(
        list(dir),
        [
            "meta.json",
            "notes.txt",
            "os-1.2-qemu.x86_64.qcow2",
            "os-1.2-qemu.x86_64.qcow2.sig"
        ]
    );
}
