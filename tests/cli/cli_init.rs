//! `cosa init`: layout, refusals, clone with git2, --transient.

use crate::common;
use common::*;
use std::process::Command;

#[test]
fn init_transient_makes_the_layout() {
    let t = tempfile::tempdir().unwrap();
    let cfg = config_dir(t.path(), "repos: [test]\npackages: [a]\n", t.path());
    let wd = init_transient(t.path(), &cfg);
    for d in [
        "builds",
        "cache",
        "tmp",
        "overrides/rpm",
        "overrides/rootfs",
    ] {
        assert!(wd.join(d).is_dir(), "{d} missing");
    }
    assert_eq!(
        std::fs::read_link(wd.join("src/config")).unwrap(),
        cfg.canonicalize().unwrap()
    );
}

#[test]
fn init_refuses_a_non_empty_directory_unless_forced() {
    let t = tempfile::tempdir().unwrap();
    let cfg = config_dir(t.path(), "repos: [test]\n", t.path());
    let wd = t.path().join("wd");
    std::fs::create_dir_all(&wd).unwrap();
    std::fs::write(wd.join("precious.txt"), "keep me").unwrap();
    let out = run(cosa(&wd).args(["init", "--transient"]).arg(&cfg), false);
    let e = stderr(&out);
    assert!(
        e.contains("is not empty") && e.contains("precious.txt") && e.contains("--force"),
        "{e}"
    );
    assert!(
        !wd.join("src").exists(),
        "nothing may be created on refusal"
    );
    run(
        cosa(&wd).args(["init", "--force", "--transient"]).arg(&cfg),
        true,
    );
    assert_eq!(
        std::fs::read_to_string(wd.join("precious.txt")).unwrap(),
        "keep me"
    );
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn init_clones_a_git_repo_and_branch() {
    let t = tempfile::tempdir().unwrap();
    let cfg = config_dir(
        t.path(),
        "repos: [test]\npackages: [main-branch]\n",
        t.path(),
    );
    git(&cfg, &["init", "-q"]);
    git(&cfg, &["add", "."]);
    git(&cfg, &["commit", "-qm", "main"]);
    git(&cfg, &["checkout", "-qb", "testing"]);
    std::fs::write(
        cfg.join("manifest.yaml"),
        "repos: [test]\npackages: [testing-branch]\n",
    )
    .unwrap();
    git(&cfg, &["commit", "-qam", "testing"]);
    git(&cfg, &["checkout", "-q", "main"]);

    let wd = t.path().join("wd1");
    run(cosa(&wd).arg("init").arg(&cfg), true);
    let m = std::fs::read_to_string(wd.join("src/config/manifest.yaml")).unwrap();
    assert!(m.contains("main-branch"), "{m}");
    assert!(wd.join("src/config/.git").is_dir(), "a real clone");

    let wd = t.path().join("wd2");
    run(
        cosa(&wd).args(["init", "--branch", "testing"]).arg(&cfg),
        true,
    );
    let m = std::fs::read_to_string(wd.join("src/config/manifest.yaml")).unwrap();
    assert!(m.contains("testing-branch"), "{m}");
}

#[test]
fn init_failure_leaves_nothing_half_made() {
    let t = tempfile::tempdir().unwrap();
    let notgit = t.path().join("plain");
    std::fs::create_dir_all(&notgit).unwrap();
    let wd = t.path().join("wd");
    let out = run(cosa(&wd).arg("init").arg(&notgit), false);
    let e = stderr(&out);
    assert!(
        e.contains("cloning config repo") && e.contains("--transient"),
        "{e}"
    );
    assert!(!wd.join("src/config").exists());
    let out = run(
        cosa(&wd).args(["init", "file:///nonexistent/repo.git"]),
        false,
    );
    assert!(stderr(&out).contains("nonexistent"), "{}", stderr(&out));
}

#[test]
fn verbs_outside_a_workdir_say_what_to_do() {
    let t = tempfile::tempdir().unwrap();
    let out = run(cosa(t.path()).arg("fetch"), false);
    assert!(stderr(&out).contains("cosa init"), "{}", stderr(&out));
}
