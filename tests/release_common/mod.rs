//! Shared by tests/release_cli_*.rs: a working directory on a copy of the
//! sample config with a streams.yaml, `cosa` runs with a fixed clock, and
//! fabricated artifacts recorded in meta.json through the store.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use crate::common::*;

/// 2026-01-01T00:00:00Z
pub const T0: i64 = 1_767_225_600;
pub const DAY: i64 = 86_400;

pub const STREAMS_YAML: &str = "streams:
  testing:
    code: 2
    type: production
    promoted-from: testing-devel
    bake-days: 14
    required-arches: [x86_64]
  stable:
    code: 3
    type: production
    promoted-from: testing
    required-arches: [x86_64]
";

pub struct Env {
    pub _t: tempfile::TempDir,
    pub root: PathBuf,
    pub wd: PathBuf,
    pub repo: PathBuf,
    pub config: PathBuf,
}

/// A workdir on a copy of `manifests/` plus `streams.yaml`; `with_repo`
/// also generates the sample RPM repository (needed to build).
pub fn env(with_repo: bool) -> Env {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_path_buf();
    let config = root.join("config");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&manifests)
        .arg(&config)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(config.join("streams.yaml"), STREAMS_YAML).unwrap();
    let repo = root.join("sample-repo");
    if with_repo {
        cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    }
    let wd = root.join("wd");
    run(cosa(&wd).args(["init", "--transient"]).arg(&config), true);
    Env {
        _t: t,
        root,
        wd,
        repo,
        config,
    }
}

impl Env {
    /// `cosa ARGS` at time `at`, to run.
    pub fn cosa_cmd(&self, at: i64, args: &[&str]) -> Command {
        let mut c = cosa(&self.wd);
        c.env("SOURCE_DATE_EPOCH", at.to_string())
            .env("DNF_VAR_cosa_sample_repo", &self.repo)
            .args(args);
        c
    }

    /// `cosa ARGS` at time `at`.
    pub fn cosa_at(&self, at: i64, args: &[&str], ok: bool) -> Output {
        run(&mut self.cosa_cmd(at, args), ok)
    }

    /// `cosa build --stream S ARGS` at T0; returns the new build id (stdout is empty, so
    /// read builds.json).
    pub fn build(&self, stream: &str, extra: &[&str]) -> String {
        let mut args = vec!["build", "--skip-prune", "--stream", stream];
        args.extend_from_slice(extra);
        self.cosa_at(T0, &args, true);
        self.latest()
    }

    pub fn latest(&self) -> String {
        let bj = json(&self.wd.join("builds/builds.json"));
        bj["builds"][0]["id"].as_str().unwrap().to_string()
    }

    pub fn build_dir(&self, id: &str) -> PathBuf {
        self.wd.join("builds").join(id).join("x86_64")
    }

    pub fn publish(&self) -> PathBuf {
        self.wd.join("publish")
    }

    /// Add a `qemu` disk image to a build: a real file and its meta.json entry.
    pub fn add_qemu_image(&self, id: &str) -> PathBuf {
        let dir = self.build_dir(id);
        let name = format!("cosa-sample-{id}-qemu.x86_64.qcow2.xz");
        let file = dir.join(&name);
        std::fs::write(&file, format!("disk image of {id}")).unwrap();
        let (sha256, size) = cosa::util::digest::sha256_file(&file).unwrap();
        let mpath = dir.join("meta.json");
        let mut m = cosa::store::Meta::read(&mpath).unwrap();
        m.images.insert(
            "qemu".into(),
            cosa::store::meta::Artifact {
                path: name,
                sha256,
                size: Some(size),
                uncompressed_sha256: Some("0".repeat(64)),
                ..Default::default()
            },
        );
        m.write(&mpath).unwrap();
        file
    }
}

/// A release index of stream `stable` in the publish dir listing `versions`
/// (x86_64 only, a made-up commit).
pub fn publish_index(e: &Env, versions: &[&str]) {
    let path = e.publish().join("prod/streams/stable/releases.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut idx = cosa::release::index::ReleaseIndex::new("stable", "2026-01-01T00:00:00Z");
    for v in versions {
        idx.add(
            cosa::release::index::IndexRelease {
                commits: vec![cosa::release::index::IndexCommit {
                    architecture: "x86_64".into(),
                    checksum: "a".repeat(64),
                }],
                version: v.to_string(),
                metadata: format!("https://example.com/{v}/release.json"),
                extra: Default::default(),
            },
            "2026-01-01T00:00:00Z",
        )
        .unwrap();
    }
    idx.write(&path).unwrap();
}

pub fn json(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
