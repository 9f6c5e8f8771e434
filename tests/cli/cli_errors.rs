//! Bad input through the real binary: each error names what is wrong and
//! where, and nothing is left half-made.

use crate::common;
use common::*;
use cosa_testkit::fixture::*;
use std::path::{Path, PathBuf};

fn repo(t: &Path) -> PathBuf {
    let repo = t.join("repo");
    make_repo(
        &repo,
        &[
            PkgSpec::new("app", "1.0")
                .requires("libmid")
                .file(FileSpec::file("/usr/bin/app", "app")),
            PkgSpec::new("libmid", "1.0")
                .requires("libgone >= 3")
                .file(FileSpec::file("/usr/lib/mid", "m")),
            PkgSpec::new("ok", "1.0").file(FileSpec::file("/usr/bin/ok", vec![7u8; 100_000])),
        ],
        RepoCompression::Gz,
    )
    .unwrap();
    repo
}

fn setup(manifest: &str) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let r = repo(t.path());
    let cfg = config_dir(t.path(), manifest, &r);
    let wd = init_transient(t.path(), &cfg);
    (t, wd, cfg, r)
}

fn fails(wd: &Path, args: &[&str]) -> String {
    stderr(&run(cosa(wd).args(args), false))
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let (_t, wd, _, _) = setup("repos: [test]\npackages:\n  - ok\n bad: [\n");
    let e = fails(&wd, &["fetch"]);
    assert!(e.contains("manifest.yaml") && e.contains("line 4"), "{e}");
}

#[test]
fn unknown_key_is_refused_by_name() {
    let (_t, wd, _, _) = setup("repos: [test]\npackages: [ok]\npackagez: [x]\n");
    let e = fails(&wd, &["fetch"]);
    assert!(e.contains("manifest.yaml") && e.contains("packagez"), "{e}");
}

#[test]
fn include_cycle_is_named() {
    let (_t, wd, cfg, _) = setup("repos: [test]\npackages: [ok]\ninclude: a.yaml\n");
    std::fs::write(cfg.join("a.yaml"), "include: b.yaml\n").unwrap();
    std::fs::write(cfg.join("b.yaml"), "include: a.yaml\n").unwrap();
    let e = fails(&wd, &["fetch"]);
    assert!(
        e.contains("a.yaml") && e.contains("b.yaml") && e.to_lowercase().contains("cycle"),
        "{e}"
    );
}

#[test]
fn missing_repo_is_named() {
    let (_t, wd, _, _) = setup("repos: [test, nosuch]\npackages: [ok]\n");
    let e = fails(&wd, &["fetch"]);
    assert!(e.contains("nosuch") && e.contains("test"), "{e}");
}

#[test]
fn unreachable_repo_is_named() {
    let (_t, wd, cfg, _) = setup("repos: [test]\npackages: [ok]\n");
    std::fs::write(
        cfg.join("test.repo"),
        "[test]\nbaseurl=file:///nonexistent/repo\ngpgcheck=0\n",
    )
    .unwrap();
    let e = fails(&wd, &["fetch"]);
    assert!(e.contains("test") && e.contains("/nonexistent/repo"), "{e}");
}

#[test]
fn unresolvable_package_names_the_chain() {
    let (_t, wd, _, _) = setup("repos: [test]\npackages: [app]\n");
    let e = fails(&wd, &["fetch"]);
    assert!(
        e.contains("app") && e.contains("libmid") && e.contains("libgone"),
        "{e}"
    );
    let (_t, wd, _, _) = setup("repos: [test]\npackages: [nothere]\n");
    let e = fails(&wd, &["fetch"]);
    assert!(e.contains("nothere"), "{e}");
}

#[test]
fn checksum_mismatch_names_the_package_and_caches_nothing() {
    let (_t, wd, _, r) = setup("repos: [test]\npackages: [ok]\n");
    let rpm = r.join("ok-1.0-1.x86_64.rpm");
    let mut data = std::fs::read(&rpm).unwrap();
    let n = data.len();
    data[n - 10] ^= 0xff;
    std::fs::write(&rpm, &data).unwrap();
    let e = fails(&wd, &["fetch"]);
    assert!(e.contains("ok-1.0-1.x86_64"), "{e}");
    assert!(
        e.to_lowercase().contains("checksum") || e.contains("sha256"),
        "{e}"
    );
    let cached: Vec<_> = walk(&wd.join("cache"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".rpm"))
        .collect();
    assert!(cached.is_empty(), "nothing corrupt is cached: {cached:?}");
}

#[test]
fn corrupt_rpm_payload_is_named_and_dest_untouched() {
    let (t, wd, _, r) = setup("repos: [test]\npackages: [ok]\n");
    // Corrupt the payload, then regenerate repodata so the digest matches the bad file.
    let rpm = r.join("ok-1.0-1.x86_64.rpm");
    let mut data = std::fs::read(&rpm).unwrap();
    let n = data.len();
    for b in &mut data[n - 2000..n - 100] {
        *b = 0x55;
    }
    std::fs::write(&rpm, &data).unwrap();
    createrepo(&r, RepoCompression::Gz).unwrap();
    let dest = t.path().join("rootfs");
    let e = fails(&wd, &["compose", "rootfs", dest.to_str().unwrap()]);
    assert!(e.contains("ok"), "{e}");
    assert!(!dest.exists(), "no half-made DEST");
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                v.extend(walk(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}
