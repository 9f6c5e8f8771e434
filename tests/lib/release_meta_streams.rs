//! streams.yaml defaults and errors; stream versions.

use cosa::release::streams::{StreamType, Streams};
use cosa::release::version;

#[test]
fn absent_file_gives_fcos_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let s = Streams::load(dir.path()).unwrap();
    let codes: Vec<(&str, u64)> = [
        ("next", 1),
        ("testing", 2),
        ("stable", 3),
        ("next-devel", 10),
        ("testing-devel", 20),
        ("rawhide", 91),
        ("branched", 92),
        ("bodhi-updates-testing", 93),
        ("bodhi-updates", 94),
    ]
    .to_vec();
    for (name, code) in codes {
        assert_eq!(s.get(name).unwrap().code, code, "{name}");
    }
    assert_eq!(s.iter().count(), 9);
    let stable = s.get("stable").unwrap();
    assert_eq!(stable.promoted_from.as_deref(), Some("testing"));
    assert_eq!(stable.kind, StreamType::Production);
    let testing = s.get("testing").unwrap();
    assert_eq!(testing.promoted_from.as_deref(), Some("testing-devel"));
    assert_eq!(testing.bake_days, 14);
    assert_eq!(
        s.get("next").unwrap().promoted_from.as_deref(),
        Some("next-devel")
    );
    assert_eq!(s.get("rawhide").unwrap().kind, StreamType::Mechanical);
    assert_eq!(
        stable.release_json_url("39.20231101.3.0"),
        "https://builds.coreos.fedoraproject.org/prod/streams/stable/builds/39.20231101.3.0/release.json"
    );
}

#[test]
fn file_overrides_and_extends_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("streams.yaml"),
        "streams:\n  stable:\n    code: 3\n    type: production\n    promoted-from: testing\n    publish: https://example.com/s/stable\n    required-arches: [x86_64, aarch64]\n  lts:\n    code: 4\n    type: production\n    promoted-from: stable\n    bake-days: 30\n",
    )
    .unwrap();
    let s = Streams::load(dir.path()).unwrap();
    let stable = s.get("stable").unwrap();
    assert_eq!(stable.required_arches, vec!["x86_64", "aarch64"]);
    assert_eq!(
        stable.artifact_url("1.20230101.3.0", "x86_64", "f.qcow2"),
        "https://example.com/s/stable/builds/1.20230101.3.0/x86_64/f.qcow2"
    );
    let lts = s.get("lts").unwrap();
    assert_eq!((lts.code, lts.bake_days), (4, 30));
    assert_eq!(
        lts.required_arches,
        vec!["x86_64", "aarch64", "ppc64le", "s390x"]
    );
    // not listed: default kept
    assert_eq!(s.get("testing").unwrap().bake_days, 14);
    assert_eq!(s.by_code(4).unwrap().name, "lts");
}

fn err(text: &str) -> String {
    format!(
        "{:#}",
        Streams::parse(text, "cfg/streams.yaml").unwrap_err()
    )
}

#[test]
fn errors_name_file_and_key() {
    let e = err("streams:\n  stable:\n    code: 3\n    type: production\n    bake: 3\n");
    assert!(e.contains("cfg/streams.yaml") && e.contains("bake"), "{e}");
    let e = err("stremas: {}\n");
    assert!(
        e.contains("cfg/streams.yaml") && e.contains("stremas"),
        "{e}"
    );
    let e = err("streams:\n  foo:\n    code: 3\n    type: production\n");
    assert!(
        e.contains("cfg/streams.yaml") && e.contains("code") && e.contains("stable"),
        "{e}"
    );
    let e = err("streams:\n  foo:\n    code: 50\n    type: production\n    promoted-from: nope\n");
    assert!(
        e.contains("streams.foo.promoted-from") && e.contains("nope"),
        "{e}"
    );
    let e = err("streams:\n  foo:\n    code: 50\n    type: weird\n");
    assert!(e.contains("cfg/streams.yaml") && e.contains("weird"), "{e}");
    let e = err(
        "streams:\n  a:\n    code: 50\n    type: production\n    promoted-from: b\n  b:\n    code: 51\n    type: production\n    promoted-from: a\n",
    );
    assert!(e.contains("cycle"), "{e}");
    let e = err("streams:\n  a:\n    code: 50\n    type: production\n    required-arches: []\n");
    assert!(e.contains("streams.a.required-arches"), "{e}");
    let e = err("streams:\n  a:\n    type: production\n");
    assert!(e.contains("cfg/streams.yaml") && e.contains("code"), "{e}");
}

#[test]
fn revision_increments_per_prefix() {
    let none: [&str; 0] = [];
    assert_eq!(
        version::stream_version(39, "20231101", 3, &none).unwrap(),
        "39.20231101.3.0"
    );
    let existing = [
        "39.20231101.3.0",
        "39.20231101.3.1",
        "39.20231101.20.7",
        "39.20231102.3.5",
        "38.20231101.3.9",
        "39.20231101.dev.0",
    ];
    assert_eq!(
        version::stream_version(39, "20231101", 3, &existing).unwrap(),
        "39.20231101.3.2"
    );
    assert_eq!(
        version::stream_version(39, "20231101", 20, &existing).unwrap(),
        "39.20231101.20.8"
    );
    assert_eq!(
        version::stream_version(39, "20231101", 2, &existing).unwrap(),
        "39.20231101.2.0"
    );
    assert!(version::stream_version(39, "20230230", 3, &none).is_err());
}

#[test]
fn clash_and_invalid_versions() {
    let existing = ["39.20231101.3.0"];
    let e = version::ensure_new("39.20231101.3.0", &existing).unwrap_err();
    assert!(format!("{e:#}").contains("already exists"), "{e:#}");
    version::ensure_new("39.20231101.3.1", &existing).unwrap();
    for bad in [
        "39.20230230.3.0",
        "39.20231301.3.0",
        "39.2023110.3.0",
        "39.20231101.3",
        "39.20231101.3.0.1",
        "x.20231101.3.0",
        "39.20231101.3.a",
        "",
    ] {
        let e = version::validate(bad).unwrap_err();
        assert!(format!("{e:#}").contains(bad), "{bad}: {e:#}");
    }
    let e = format!("{:#}", version::validate("39.20230230.3.0").unwrap_err());
    assert!(e.contains("day 30"), "{e}");
    version::validate("39.20240229.3.0").unwrap();
    version::validate("39.20230228.3.0").unwrap();
}
