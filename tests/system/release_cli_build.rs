//! `cosa build --stream S`: stream versions X.YYYYMMDD.Z.N from the real
//! sample build, with the lockfile's date, the next free N among builds and
//! published releases, and `--version` validation.

use crate::release_common;
use release_common::*;

#[test]
fn stream_versions_count_builds_and_releases_and_validate_explicit_ones() {
    let e = env(true);
    // Unlocked: today's date (the fixed clock), code 2, first revision.
    assert_eq!(e.build("testing", &[]), "1.20260101.2.0");
    assert_eq!(e.build("testing", &["--force"]), "1.20260101.2.1");
    // Another stream counts separately.
    assert_eq!(e.build("stable", &["--force"]), "1.20260101.3.0");

    // A published release of the stream takes its N even without a local build.
    let idx = e.publish().join("prod/streams/testing/releases.json");
    std::fs::create_dir_all(idx.parent().unwrap()).unwrap();
    let mut index = cosa::release::index::ReleaseIndex::new("testing", "2026-01-01T00:00:00Z");
    index
        .add(
            cosa::release::index::IndexRelease {
                commits: vec![],
                version: "1.20260101.2.5".into(),
                metadata: "https://example.com/x/release.json".into(),
                extra: Default::default(),
            },
            "2026-01-01T00:00:00Z",
        )
        .unwrap();
    index.write(&idx).unwrap();
    assert_eq!(e.build("testing", &["--force"]), "1.20260101.2.6");

    // The meta.json of a stream build is schema-valid and its commit carries the version.
    let m = json(&e.build_dir("1.20260101.2.6").join("meta.json"));
    cosa::store::meta::validate(&m).unwrap();
    assert_eq!(m["ostree-version"], "1.20260101.2.6");
    let os = ostree(
        &e.wd,
        &[
            "cat",
            m["ostree-commit"].as_str().unwrap(),
            "/usr/lib/os-release",
        ],
    );
    assert!(os.contains("1.20260101.2.6"), "{os}");

    // Explicit versions: wrong code, unreal date, bad form, clash with a build or a release.
    for (v, msg) in [
        ("1.20260101.3.9", "not the code of stream testing"),
        ("1.20260230.2.9", "day 30 does not exist"),
        ("1.2026011.2.9", "X.YYYYMMDD.Z.N"),
        ("2.20260101.2.9", "releasever"),
        ("1.20260101.2.1", "already exists"),
        ("1.20260101.2.5", "already released"),
    ] {
        let o = e.cosa_at(
            T0,
            &["build", "--force", "--stream", "testing", "--version", v],
            false,
        );
        assert!(stderr(&o).contains(msg), "{v}: {}", stderr(&o));
    }
    assert_eq!(
        e.build("testing", &["--force", "--version", "1.20260101.2.9"]),
        "1.20260101.2.9"
    );
    // Unknown streams are named.
    let o = e.cosa_at(T0, &["build", "--force", "--stream", "nope"], false);
    assert!(
        stderr(&o).contains("no stream named \"nope\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_lockfile_date_is_y_except_for_mechanical_streams() {
    let e = env(true);
    e.cosa_at(T0, &["fetch", "--update-lockfile"], true);
    let lock = e.config.join("manifest-lock.x86_64.json");
    let mut l = json(&lock);
    l["metadata"]["generated"] = "2025-03-04T05:06:07Z".into();
    std::fs::write(&lock, serde_json::to_string(&l).unwrap()).unwrap();
    assert_eq!(e.build("testing", &[]), "1.20250304.2.0");
    // rawhide (code 91) is mechanical: today.
    assert_eq!(e.build("rawhide", &["--force"]), "1.20260101.91.0");
}
