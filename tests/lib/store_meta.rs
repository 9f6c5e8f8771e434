//! meta.json against coreos-assembler's schema (the project's copy,
//! `src/store/cosa-meta-v1.schema.json`, read from the file and compiled
//! here with jsonschema independently of the validator cosa embeds), and
//! `cosa meta --get/--set` on a real file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cosa::store::diff::{Pkg, diff};
use cosa::store::meta::{self, Artifact, GitInfo, Meta};
use serde_json::{Value, json};

/// The schema file in the repository.
fn reference_schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/store/cosa-meta-v1.schema.json")
}

fn reference_validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(reference_schema_path()).expect("reading reference schema");
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft7::new(&schema).expect("compiling reference schema")
}

fn errors(v: &jsonschema::Validator, value: &Value) -> Vec<String> {
    v.iter_errors(value).map(|e| e.to_string()).collect()
}

const COMMIT: &str = "f15f5b25cf138a7683e3d200c53ece2091bf71d31332135da87892ab72ff4ee3";
const INPUTHASH: &str = "0d5a1b2e3c4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";

/// A meta.json with every field `cosa build ostree` writes.
fn full_meta() -> Meta {
    let pkgdiff = diff(
        &[
            Pkg::new("bash", "5.2-1", "x86_64"),
            Pkg::new("gone", "1-1", "noarch"),
        ],
        &[
            Pkg::new("bash", "5.2-2", "x86_64"),
            Pkg::new("new", "1:2-1", "noarch"),
        ],
    )
    .to_pkgdiff();
    let mut images = BTreeMap::new();
    images.insert(
        "ostree".to_string(),
        Artifact {
            path: "sample-41.20240520.dev.0-ostree.x86_64.ociarchive".into(),
            sha256: "ab".repeat(32),
            size: Some(123_456),
            skip_compression: Some(true),
            ..Default::default()
        },
    );
    images.insert(
        "qemu".to_string(),
        Artifact {
            path: "sample-41.20240520.dev.0-qemu.x86_64.qcow2".into(),
            sha256: "cd".repeat(32),
            size: Some(9),
            uncompressed_sha256: Some("ef".repeat(32)),
            uncompressed_size: Some(100),
            ..Default::default()
        },
    );
    Meta {
        buildid: "41.20240520.dev.0".into(),
        name: "sample".into(),
        summary: Some("Sample OS".into()),
        ostree_ref: Some("sample/x86_64/dev".into()),
        ostree_commit: COMMIT.into(),
        ostree_version: "41.20240520.dev.0".into(),
        ostree_timestamp: "2024-05-20T01:02:03Z".into(),
        ostree_content_checksum: Some("12".repeat(32)),
        ostree_content_bytes_written: Some(1000),
        ostree_n_content_total: Some(10),
        ostree_n_content_written: Some(9),
        ostree_n_metadata_total: Some(4),
        ostree_n_metadata_written: Some(4),
        ostree_n_cache_hits: Some(1),
        rpm_ostree_inputhash: Some(INPUTHASH.into()),
        basearch: Some("x86_64".into()),
        build_timestamp: Some("2024-05-20T01:02:04Z".into()),
        config_gitrev: Some("v1-3-gabcdef0".into()),
        config_dirty: Some(true),
        code_source: Some("cosa".into()),
        container_config_git: Some(GitInfo {
            commit: "742edc307e58f35824d906958b6493510e12b593".into(),
            origin: "https://example.com/config.git".into(),
            branch: Some("main".into()),
            dirty: Some("false".into()),
            extra: Default::default(),
        }),
        image_genver: Some(0),
        overrides_active: Some(false),
        parent_version: Some("41.20240519.3.0".into()),
        parent_commit: Some(COMMIT.into()),
        pkgdiff: Some(pkgdiff.clone()),
        parent_pkgdiff: Some(pkgdiff),
        images,
        extra: Default::default(),
    }
}

#[test]
fn full_meta_is_valid_against_the_reference_schema() {
    let v = full_meta().to_value().unwrap();
    let validator = reference_validator();
    assert_eq!(errors(&validator, &v), Vec::<String>::new(), "{v:#}");
    meta::validate(&v).unwrap();
    // Field names and shapes as upstream readers expect them.
    assert_eq!(v["coreos-assembler.config-dirty"], json!("true"));
    assert_eq!(v["images"]["ostree"]["skip-compression"], json!(true));
    assert_eq!(
        v["images"]["qemu"]["uncompressed-sha256"],
        json!("ef".repeat(32))
    );
    assert_eq!(v["ref"], json!("sample/x86_64/dev"));
    assert_eq!(v["pkgdiff"][0][0], json!("bash"));
    assert_eq!(v["pkgdiff"][0][1], json!(2));
    // And it reads back to the same struct.
    let back: Meta = serde_json::from_value(v).unwrap();
    assert_eq!(back, full_meta());
}

#[test]
fn invalid_meta_is_rejected_by_both_validators() {
    let validator = reference_validator();
    let good = full_meta().to_value().unwrap();
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "missing buildid",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("buildid");
            }),
        ),
        (
            "unknown top-level key",
            Box::new(|v| v["not-a-cosa-key"] = json!(1)),
        ),
        (
            "config-dirty as bool",
            Box::new(|v| v["coreos-assembler.config-dirty"] = json!(true)),
        ),
        (
            "short ostree-commit",
            Box::new(|v| v["ostree-commit"] = json!("abc")),
        ),
        (
            "timestamp without Z",
            Box::new(|v| v["ostree-timestamp"] = json!("2024-05-20T01:02:03+01:00")),
        ),
        (
            "images without ostree",
            Box::new(|v| {
                v["images"].as_object_mut().unwrap().remove("ostree");
            }),
        ),
        (
            "artifact without sha256",
            Box::new(|v| {
                v["images"]["qemu"]
                    .as_object_mut()
                    .unwrap()
                    .remove("sha256");
            }),
        ),
        (
            "size as string",
            Box::new(|v| v["images"]["qemu"]["size"] = json!("9")),
        ),
        (
            "pkgdiff not an array",
            Box::new(|v| v["pkgdiff"] = json!({})),
        ),
        (
            "genver not integer",
            Box::new(|v| v["coreos-assembler.image-genver"] = json!("0")),
        ),
    ];
    for (what, edit) in cases {
        let mut v = good.clone();
        edit(&mut v);
        assert!(
            !errors(&validator, &v).is_empty(),
            "reference schema accepted: {what}"
        );
        let e = meta::validate(&v).expect_err(what);
        assert!(
            format!("{e:#}").contains("does not match the coreos-assembler schema"),
            "{what}: {e:#}"
        );
    }
}

#[test]
fn unknown_fields_survive_a_read_modify_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.json");
    let mut v = full_meta().to_value().unwrap();
    v["amis"] = json!([{"name": "us-east-1", "hvm": "ami-123", "snapshot": "snap-1"}]);
    v["coreos-assembler.meta-stamp"] = json!(1_716_166_923_000_000_i64);
    v["images"]["qemu"]["x-extra"] = json!("kept");
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();

    let mut m = Meta::read(&path).unwrap();
    assert!(m.extra.contains_key("amis"));
    m.summary = Some("changed".into());
    m.write(&path).unwrap();
    let after = meta::read_value(&path).unwrap();
    assert_eq!(after["amis"], v["amis"]);
    assert_eq!(
        after["coreos-assembler.meta-stamp"],
        v["coreos-assembler.meta-stamp"]
    );
    assert_eq!(after["images"]["qemu"]["x-extra"], json!("kept"));
    assert_eq!(after["summary"], json!("changed"));
}

#[test]
fn meta_write_refuses_an_invalid_struct() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.json");
    let mut m = full_meta();
    m.ostree_commit = "short".into();
    let e = m.write(&path).unwrap_err();
    assert!(format!("{e:#}").contains("refusing to write"), "{e:#}");
    assert!(!path.exists());
}

#[test]
fn get_and_set_on_a_file_with_validation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.json");
    full_meta().write(&path).unwrap();
    let v = meta::read_value(&path).unwrap();
    assert_eq!(
        meta::get_key(&v, "coreos-assembler.basearch").unwrap(),
        &json!("x86_64")
    );
    assert_eq!(
        meta::get_key(&v, "images.ostree.size").unwrap(),
        &json!(123_456)
    );
    assert_eq!(meta::get_key(&v, "pkgdiff.0.0").unwrap(), &json!("bash"));
    assert!(meta::get_key(&v, "images.nope").is_err());

    // Numbers stay strings where the field is a string; JSON where it is JSON.
    let v = meta::set_in_file(
        &path,
        &[
            "ostree-version=41",
            "images.qemu.size=10",
            "coreos-assembler.image-genver=2",
            "images.metal.path=x.raw",
            "images.metal.sha256=00",
        ],
    )
    .unwrap();
    assert_eq!(v["ostree-version"], json!("41"));
    assert_eq!(v["images"]["qemu"]["size"], json!(10));
    assert_eq!(v["coreos-assembler.image-genver"], json!(2));
    assert_eq!(meta::read_value(&path).unwrap(), v);

    // An edit that breaks the schema is refused and the file is untouched.
    let before = std::fs::read(&path).unwrap();
    for bad in [
        "no-such-key=1",
        "images.qemu.size=\"big\"",
        "coreos-assembler.image-genver=\"x\"",
        "images.ostree=3",
        "ostree-commit=abc",
    ] {
        let e = meta::set_in_file(&path, &[bad]).expect_err(bad);
        assert!(
            format!("{e:#}").contains("refusing to write"),
            "{bad}: {e:#}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "{bad} changed the file"
        );
    }
    assert!(meta::set_in_file(&path, &["novalue"]).is_err());
}
