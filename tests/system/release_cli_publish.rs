//! `cosa release`: release.json, releases.json (plume's rules) and stream
//! metadata (parsed by coreos-stream-metadata) from real sample builds;
//! checksum and arch refusals; the graph check before writing.

use crate::release_common;
use release_common::*;

#[test]
fn release_writes_index_release_and_stream_metadata() {
    let e = env(true);
    let id = e.build("testing", &[]);
    let qcow = e.add_qemu_image(&id);
    let o = e.cosa_at(T0, &["release", "--stream", "testing"], true);
    assert_eq!(out(&o).trim(), id);

    let p = e.publish();
    let rel = json(&p.join(format!("prod/streams/testing/builds/{id}/release.json")));
    let meta = json(&e.build_dir(&id).join("meta.json"));
    assert_eq!(rel["release"], id.as_str());
    assert_eq!(rel["stream"], "testing");
    assert_eq!(
        rel["architectures"]["x86_64"]["commit"],
        meta["ostree-commit"]
    );
    let disk = &rel["architectures"]["x86_64"]["media"]["qemu"]["artifacts"]["qcow2.xz"]["disk"];
    assert_eq!(disk["sha256"], meta["images"]["qemu"]["sha256"]);
    assert_eq!(
        disk["location"],
        format!(
            "https://builds.coreos.fedoraproject.org/prod/streams/testing/builds/{id}/x86_64/{}",
            qcow.file_name().unwrap().to_str().unwrap()
        )
        .as_str()
    );
    assert!(disk["uncompressed-sha256"].is_string());

    let idx = json(&p.join("prod/streams/testing/releases.json"));
    assert_eq!(idx["stream"], "testing");
    assert_eq!(idx["releases"].as_array().unwrap().len(), 1);
    assert_eq!(idx["releases"][0]["version"], id.as_str());
    assert_eq!(
        idx["releases"][0]["commits"][0],
        serde_json::json!({"architecture": "x86_64", "checksum": meta["ostree-commit"]})
    );

    // Stream metadata parses with upstream's crate and has the reference's shape.
    let sm_path = p.join("streams/testing.json");
    let text = std::fs::read_to_string(&sm_path).unwrap();
    let sm: coreos_stream_metadata::Stream = serde_json::from_str(&text).unwrap();
    assert_eq!(sm.stream, "testing");
    let x86 = sm.architectures.get("x86_64").unwrap();
    let q = x86.artifacts.get("qemu").unwrap();
    assert!(q.formats.contains_key("qcow2.xz"));
    let reference = json(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/release/stream-stable.json"
    )));
    let ours: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ours), keys(&reference));
    assert_eq!(
        keys(&ours["architectures"]["x86_64"]["artifacts"]["qemu"]),
        keys(&reference["architectures"]["x86_64"]["artifacts"]["qemu"])
    );
    assert_eq!(
        keys(&ours["architectures"]["x86_64"]["artifacts"]["qemu"]["formats"]["qcow2.xz"]["disk"]),
        keys(
            &reference["architectures"]["x86_64"]["artifacts"]["qemu"]["formats"]["qcow2.xz"]["disk"]
        )
    );

    // Releasing again is a no-op that writes nothing.
    let before = std::fs::read(p.join("prod/streams/testing/releases.json")).unwrap();
    let o = e.cosa_at(
        T0 + 60,
        &["release", "--stream", "testing", "--build", &id],
        true,
    );
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(p.join("prod/streams/testing/releases.json")).unwrap(),
        before
    );

    // A second release is appended; it is not rolled out yet, which is fine (noted).
    let id2 = e.build("testing", &["--force"]);
    let o = e.cosa_at(T0 + 120, &["release", "--stream", "testing"], true);
    assert!(stderr(&o).contains("not rolled out yet"), "{}", stderr(&o));
    let idx = json(&p.join("prod/streams/testing/releases.json"));
    let versions: Vec<&str> = idx["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, [id.as_str(), id2.as_str()]);
    let sm = json(&p.join("streams/testing.json"));
    // `cosa build` makes the qemu image: the newest release lists it, with
    // its location, sha256 and signature URL.
    let qcow2 = &sm["architectures"]["x86_64"]["artifacts"]["qemu"]["formats"]["qcow2"]["disk"];
    assert!(
        qcow2["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{id2}-qemu.x86_64.qcow2")),
        "{sm}"
    );
    assert_eq!(qcow2["sha256"].as_str().unwrap().len(), 64, "{sm}");
}

#[test]
fn release_refuses_bad_checksums_missing_arches_wrong_streams_and_broken_graphs() {
    let e = env(true);
    let id = e.build("testing", &[]);
    let qcow = e.add_qemu_image(&id);
    std::fs::write(&qcow, "tampered").unwrap();
    let o = e.cosa_at(T0, &["release", "--stream", "testing"], false);
    let err = stderr(&o);
    assert!(
        err.contains(qcow.file_name().unwrap().to_str().unwrap()) && err.contains("sha256"),
        "{err}"
    );
    assert!(
        !e.publish()
            .join("prod/streams/testing/releases.json")
            .exists()
    );

    // `next` is a production stream by default: it needs four arches.
    let next = e.build("next", &["--force"]);
    let o = e.cosa_at(
        T0,
        &["release", "--stream", "next", "--build", &next],
        false,
    );
    assert!(
        stderr(&o).contains("no aarch64 meta.json"),
        "{}",
        stderr(&o)
    );

    // A testing build cannot be released on stable.
    let o = e.cosa_at(
        T0,
        &["release", "--stream", "stable", "--build", &id],
        false,
    );
    assert!(stderr(&o).contains("stream code 2"), "{}", stderr(&o));

    // Updates metadata naming a version that is not released: the graph check refuses.
    let good = e.build("testing", &["--force"]);
    let upd = e.publish().join("updates/testing.json");
    std::fs::create_dir_all(upd.parent().unwrap()).unwrap();
    std::fs::write(
        &upd,
        r#"{"stream":"testing","metadata":{"last-modified":"2026-01-01T00:00:00Z"},
            "releases":[{"version":"1.20251231.2.7","metadata":{"barrier":{"reason":"x"}}}]}"#,
    )
    .unwrap();
    let o = e.cosa_at(
        T0,
        &["release", "--stream", "testing", "--build", &good],
        false,
    );
    let err = stderr(&o);
    assert!(
        err.contains("1.20251231.2.7") && err.contains("not in the release index"),
        "{err}"
    );
    assert!(
        !e.publish()
            .join("prod/streams/testing/releases.json")
            .exists()
    );
    std::fs::remove_file(&upd).unwrap();
    e.cosa_at(
        T0,
        &["release", "--stream", "testing", "--build", &good],
        true,
    );
}
