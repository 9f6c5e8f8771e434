//! release.json from synthetic two-arch builds, the releases.json index
//! rules, and stream metadata checked with the coreos-stream-metadata crate.

use std::path::Path;

use cosa::release::index::{self, AddOutcome, Release, ReleaseIndex};
use cosa::release::metadata::{self, StreamMetadata};
use cosa::release::streams::Streams;
use serde_json::{Value, json};

const NOW: &str = "2023-11-01T12:00:00Z";
const V: &str = "39.20231101.3.0";

fn sha(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Write builds/<V>/<arch>/ with real files and a meta.json listing them.
fn write_build(builds: &Path, version: &str, arch: &str, commit: &str) {
    let dir = builds.join(version).join(arch);
    std::fs::create_dir_all(&dir).unwrap();
    let mut images = serde_json::Map::new();
    for (name, suffix) in [
        ("qemu", "qcow2.xz"),
        ("metal", "raw.xz"),
        ("metal4k", "raw.xz"),
        ("live-iso", "iso"),
        ("live-kernel", "x"),
        ("ostree", "ociarchive"),
    ] {
        let path = match name {
            "live-kernel" => format!("fedora-coreos-{version}-live-kernel-{arch}"),
            _ => format!("fedora-coreos-{version}-{name}.{arch}.{suffix}"),
        };
        let data = format!("{name} {arch} {version}");
        std::fs::write(dir.join(&path), &data).unwrap();
        images.insert(
            name.into(),
            json!({"path": path, "sha256": sha(data.as_bytes()), "size": data.len(),
                   "uncompressed-sha256": sha(b"uncompressed")}),
        );
    }
    let meta = json!({
        "buildid": version, "name": "fedora-coreos", "ostree-commit": commit,
        "ostree-version": version, "ostree-timestamp": "2023-11-01T00:00:00Z",
        "coreos-assembler.basearch": arch, "images": images,
    });
    std::fs::write(
        dir.join("meta.json"),
        serde_json::to_vec_pretty(&meta).unwrap(),
    )
    .unwrap();
}

fn two_arch_streams() -> Streams {
    Streams::parse(
        "streams:\n  stable:\n    code: 3\n    type: production\n    promoted-from: testing\n    required-arches: [x86_64, aarch64]\n",
        "test streams.yaml",
    )
    .unwrap()
}

#[test]
fn release_json_merges_arches() {
    let tmp = tempfile::tempdir().unwrap();
    let builds = tmp.path().join("builds");
    write_build(&builds, V, "x86_64", "aaaa");
    write_build(&builds, V, "aarch64", "bbbb");
    let streams = two_arch_streams();
    let stable = streams.get("stable").unwrap();
    let rel = index::release_from_build(&builds, V, stable, NOW).unwrap();
    assert_eq!(rel.release, V);
    assert_eq!(rel.stream, "stable");
    let x = &rel.architectures["x86_64"];
    assert_eq!(x.commit, "aaaa");
    assert_eq!(rel.architectures["aarch64"].commit, "bbbb");
    let qemu = &x.media["qemu"].artifacts["qcow2.xz"]["disk"];
    assert_eq!(
        qemu.location,
        format!(
            "https://builds.coreos.fedoraproject.org/prod/streams/stable/builds/{V}/x86_64/fedora-coreos-{V}-qemu.x86_64.qcow2.xz"
        )
    );
    assert_eq!(
        qemu.signature.as_deref(),
        Some(&*format!("{}.sig", qemu.location))
    );
    assert_eq!(qemu.sha256, sha(format!("qemu x86_64 {V}").as_bytes()));
    assert_eq!(
        qemu.uncompressed_sha256.as_deref(),
        Some(&*sha(b"uncompressed"))
    );
    let metal = &x.media["metal"].artifacts;
    let formats: Vec<&str> = metal.keys().map(String::as_str).collect();
    assert_eq!(formats, ["4k.raw.xz", "iso", "pxe", "raw.xz"]);
    assert!(metal["pxe"].contains_key("kernel"));
    assert!(!x.media.contains_key("ostree"));

    // written and read back unchanged
    let path = builds.join(V).join("release.json");
    rel.write(&path).unwrap();
    assert_eq!(Release::read(&path).unwrap(), rel);
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["architectures"]["aarch64"]["commit"], "bbbb");
    assert_eq!(v["metadata"]["last-modified"], NOW);
}

#[test]
fn release_json_refuses_missing_arch_and_bad_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    let builds = tmp.path().join("builds");
    write_build(&builds, V, "x86_64", "aaaa");
    let streams = two_arch_streams();
    let stable = streams.get("stable").unwrap();
    let e = format!(
        "{:#}",
        index::release_from_build(&builds, V, stable, NOW).unwrap_err()
    );
    assert!(e.contains("aarch64") && e.contains("stable"), "{e}");

    write_build(&builds, V, "aarch64", "bbbb");
    index::release_from_build(&builds, V, stable, NOW).unwrap();
    let f = builds
        .join(V)
        .join("aarch64")
        .join(format!("fedora-coreos-{V}-qemu.aarch64.qcow2.xz"));
    std::fs::write(&f, b"tampered").unwrap();
    let e = format!(
        "{:#}",
        index::release_from_build(&builds, V, stable, NOW).unwrap_err()
    );
    assert!(
        e.contains("qemu") && e.contains("sha256") && e.contains("aarch64"),
        "{e}"
    );
    std::fs::remove_file(&f).unwrap();
    let e = format!(
        "{:#}",
        index::release_from_build(&builds, V, stable, NOW).unwrap_err()
    );
    assert!(e.contains("qemu"), "{e}");
}

#[test]
fn index_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let builds = tmp.path().join("builds");
    write_build(&builds, V, "x86_64", "aaaa");
    write_build(&builds, V, "aarch64", "bbbb");
    let streams = two_arch_streams();
    let stable = streams.get("stable").unwrap();
    let rel = index::release_from_build(&builds, V, stable, NOW).unwrap();
    let full = rel.index_entry(stable);
    assert_eq!(full.metadata, stable.release_json_url(V));

    let path = tmp.path().join("releases.json");
    let mut idx = ReleaseIndex::read_or_new(&path, "stable", NOW).unwrap();
    // a partial (x86_64 only) entry first
    let mut partial = full.clone();
    partial.commits.retain(|c| c.architecture == "x86_64");
    assert_eq!(idx.add(partial.clone(), NOW).unwrap(), AddOutcome::Appended);
    assert_eq!(
        idx.add(partial.clone(), NOW).unwrap(),
        AddOutcome::Unchanged
    );
    // subset replaced by the full one
    let later = "2023-11-02T00:00:00Z";
    assert_eq!(idx.add(full.clone(), later).unwrap(), AddOutcome::Replaced);
    assert_eq!(idx.releases.len(), 1);
    assert_eq!(idx.releases[0].commits.len(), 2);
    assert_eq!(idx.metadata.last_modified, later);
    // identical: no-op, last-modified kept
    assert_eq!(
        idx.add(full.clone(), "2030-01-01T00:00:00Z").unwrap(),
        AddOutcome::Unchanged
    );
    assert_eq!(idx.metadata.last_modified, later);
    // going back to the subset is refused
    let e = format!("{:#}", idx.add(partial.clone(), NOW).unwrap_err());
    assert!(e.contains(V) && e.contains("refusing"), "{e}");
    // a conflicting commit is refused
    let mut conflict = full.clone();
    conflict.commits[0].checksum = "cccc".into();
    let e = format!("{:#}", idx.add(conflict, NOW).unwrap_err());
    assert!(e.contains(V), "{e}");
    // a new version is appended; then the older one can no longer change
    let mut next = full.clone();
    next.version = "39.20231101.3.1".into();
    assert_eq!(idx.add(next, NOW).unwrap(), AddOutcome::Appended);
    let mut grow = full.clone();
    grow.commits.push(index::IndexCommit {
        architecture: "s390x".into(),
        checksum: "dddd".into(),
    });
    let e = format!("{:#}", idx.add(grow, NOW).unwrap_err());
    assert!(e.contains("latest"), "{e}");
    assert_eq!(idx.releases.len(), 2);

    idx.write(&path).unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["stream"], "stable");
    assert_eq!(v["releases"][0]["version"], V);
    assert_eq!(v["releases"][0]["commits"][0]["architecture"], "aarch64");
    assert_eq!(v["releases"][0]["metadata"], stable.release_json_url(V));
    assert!(v["note"].as_str().unwrap().contains("internal tooling"));
    assert_eq!(ReleaseIndex::read(&path).unwrap(), idx);
    let e = format!(
        "{:#}",
        ReleaseIndex::read_or_new(&path, "testing", NOW).unwrap_err()
    );
    assert!(e.contains("testing"), "{e}");
}

#[test]
fn reference_stream_metadata_round_trips() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/release/stream-stable.json"
    ));
    let text = std::fs::read_to_string(&path).unwrap();
    let upstream: coreos_stream_metadata::Stream = serde_json::from_str(&text).unwrap();
    assert_eq!(upstream.stream, "stable");
    let original: Value = serde_json::from_str(&text).unwrap();
    let ours: StreamMetadata = serde_json::from_str(&text).unwrap();
    assert!(ours.architectures["x86_64"].artifacts.contains_key("qemu"));
    assert_eq!(serde_json::to_value(&ours).unwrap(), original);
    assert_eq!(StreamMetadata::read(&path).unwrap(), ours);
}

#[test]
fn generated_stream_metadata_parses_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let builds = tmp.path().join("builds");
    write_build(&builds, V, "x86_64", "aaaa");
    write_build(&builds, V, "aarch64", "bbbb");
    let streams = two_arch_streams();
    let stable = streams.get("stable").unwrap();
    let mut rel = index::release_from_build(&builds, V, stable, NOW).unwrap();
    // an AWS image as plume would record it
    rel.architectures
        .get_mut("x86_64")
        .unwrap()
        .media
        .entry("aws".into())
        .or_default()
        .extra
        .insert("images".into(), json!({"us-east-1": {"image": "ami-123"}}));
    let mut idx = ReleaseIndex::new("stable", NOW);
    idx.add(rel.index_entry(stable), NOW).unwrap();
    assert_eq!(metadata::newest(&idx).unwrap().version, V);

    let sm = metadata::generate(&rel, NOW);
    let out = tmp.path().join(metadata::stream_metadata_path("stable"));
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    sm.write(&out).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let upstream: coreos_stream_metadata::Stream = serde_json::from_str(&text).unwrap();
    assert_eq!(upstream.stream, "stable");
    let x = &upstream.architectures["x86_64"];
    let qemu = &x.artifacts["qemu"];
    assert_eq!(
        qemu.formats["qcow2.xz"]["disk"].sha256,
        sha(format!("qemu x86_64 {V}").as_bytes())
    );
    assert!(x.artifacts["metal"].formats["pxe"].contains_key("kernel"));
    let aws = x.images.as_ref().unwrap().aws.as_ref().unwrap();
    assert_eq!(aws.regions["us-east-1"].image, "ami-123");
    assert_eq!(aws.regions["us-east-1"].release, V);
    assert_eq!(StreamMetadata::read(&out).unwrap(), sm);
    assert_eq!(sm.architectures["aarch64"].artifacts["qemu"].release, V);
}
