//! Dev versions `X.YYYYMMDD.dev.N`: the date from a real lockfile's
//! `metadata.generated`, or today with SOURCE_DATE_EPOCH; N counting up over
//! builds.json; and `--version` checks.
//!
//! Only `dev_version_dates` reads the clock, so setting SOURCE_DATE_EPOCH
//! there does not race with the other tests of this file.

use cosa::rpm::lockfile::Lockfile;
use cosa::store::builds::BuildsJson;
use cosa::store::version;

fn store(ids: &[&str]) -> BuildsJson {
    let mut b = BuildsJson::default();
    for id in ids.iter().rev() {
        b.insert_build(id, "x86_64").unwrap();
    }
    b
}

#[test]
fn dev_version_dates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest-lock.x86_64.json");
    // Late in the day with an offset: the UTC date is the next day.
    std::fs::write(
        &path,
        r#"{"metadata": {"generated": "2024-05-20T23:30:00-02:00",
                         "rpmmd_repos": {"sample": {"generated": "2024-05-19T00:00:00Z"}}},
            "packages": {"bash": {"evra": "5.2-1.x86_64"}}}"#,
    )
    .unwrap();
    let lock = Lockfile::read(&path).unwrap();
    let generated = lock.metadata.as_ref().and_then(|m| m.generated.as_deref());

    // SAFETY: no other test in this binary reads the environment.
    unsafe { std::env::set_var("SOURCE_DATE_EPOCH", "1700000000") }; // 2023-11-14
    let b = store(&[]);
    assert_eq!(
        version::dev_version_for("41", generated, &b).unwrap(),
        "41.20240521.dev.0"
    );
    assert_eq!(
        version::dev_version_for("41", None, &b).unwrap(),
        "41.20231114.dev.0"
    );
    assert!(version::dev_version_for("41", Some("May 20th"), &b).is_err());
    unsafe { std::env::remove_var("SOURCE_DATE_EPOCH") };
    let today = cosa::util::time::yyyymmdd(cosa::util::time::now_secs());
    assert_eq!(
        version::dev_version_for("41", None, &b).unwrap(),
        format!("41.{today}.dev.0")
    );
}

#[test]
fn n_counts_up_per_prefix() {
    let date = "20240520";
    let mut b = store(&[]);
    let mut made = Vec::new();
    for _ in 0..3 {
        let id =
            version::next_dev_version("41", date, b.builds.iter().map(|e| e.id.as_str())).unwrap();
        b.insert_build(&id, "x86_64").unwrap();
        made.push(id);
    }
    assert_eq!(
        made,
        [
            "41.20240520.dev.0",
            "41.20240520.dev.1",
            "41.20240520.dev.2"
        ]
    );
    // Pruning an older one does not reuse numbers; a rebuild of the same
    // commit (image-genver suffix) counts; other dates and releases do not.
    b.remove_build("41.20240520.dev.1");
    b.insert_build("41.20240520.dev.5-1", "x86_64").unwrap();
    b.insert_build("41.20240521.dev.9", "x86_64").unwrap();
    b.insert_build("42.20240520.dev.9", "x86_64").unwrap();
    assert_eq!(
        version::next_dev_version("41", date, b.builds.iter().map(|e| e.id.as_str())).unwrap(),
        "41.20240520.dev.6"
    );
}

#[test]
fn user_version_is_validated() {
    let b = store(&["41.20240520.dev.0"]);
    version::validate_user_version("41.20240520.0", &b, "x86_64").unwrap();
    // An existing id is fine for another arch (multi-arch builds share ids).
    version::validate_user_version("41.20240520.dev.0", &b, "aarch64").unwrap();
    for bad in [
        "",
        "a/b",
        "has space",
        "tab\t",
        "latest",
        ".hidden",
        "..",
        "41.20240520.dev.0",
    ] {
        let e = version::validate_user_version(bad, &b, "x86_64").unwrap_err();
        assert!(format!("{e:#}").contains("--version"), "{bad:?}: {e:#}");
    }
    assert!(version::validate_user_version(&"9".repeat(129), &b, "x86_64").is_err());
}
