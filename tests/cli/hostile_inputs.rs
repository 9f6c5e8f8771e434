//! Inputs crafted by a hostile store or user (issue "Hardening"): each is
//! refused with a message naming the object, and nothing outside the
//! working directory (a sentinel tree beside it) changes.

use crate::common::*;
use std::path::{Path, PathBuf};

/// Every path under `root` with its size: a snapshot to compare.
fn snapshot(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut v: Vec<(PathBuf, u64)> = cosa_testkit::download::files_under(root)
        .into_iter()
        .map(|p| {
            let n = std::fs::symlink_metadata(&p).map(|m| m.len()).unwrap_or(0);
            (p, n)
        })
        .collect();
    v.sort();
    v
}

/// A source store in a local directory with one build whose names are
/// given, and a working directory beside it.
fn store(t: &Path, id: &str, arch: &str, artifact_path: &str) -> (PathBuf, PathBuf) {
    let src = t.join("src");
    let dir = src.join("builds").join(id).join(arch);
    std::fs::create_dir_all(&dir).unwrap_or(());
    std::fs::write(
        src.join("builds/builds.json"),
        serde_json::json!({"schema-version": "1.0.0", "builds": [{"id": id, "arches": [arch]}]})
            .to_string(),
    )
    .unwrap();
    let meta = serde_json::json!({
        "buildid": id, "name": "os", "ostree-commit": "a".repeat(64),
        "ostree-version": id, "ostree-timestamp": "2024-01-01T00:00:00Z",
        "images": {"ostree": {"path": artifact_path, "sha256": "0".repeat(64), "size": 1}},
    });
    if dir.is_dir() {
        std::fs::write(dir.join("meta.json"), meta.to_string()).unwrap();
    }
    let wd = t.join("wd");
    std::fs::create_dir_all(&wd).unwrap();
    run(
        cosa(&wd)
            .args(["init", "--transient"])
            .arg(crate::common::config_dir(t, "ref: r\n", t)),
        true,
    );
    (src, wd)
}

/// A repository with one package `app` (and `tool` when asked).
fn app_repo(t: &Path, with_tool: bool) -> PathBuf {
    use cosa_testkit::fixture::*;
    let repo = t.join("repo");
    let mut specs = vec![PkgSpec::new("app", "1").file(FileSpec::file("/usr/share/app", "1"))];
    if with_tool {
        specs.push(PkgSpec::new("tool", "1").file(FileSpec::file("/usr/share/tool", "1")));
    }
    make_repo(&repo, &specs, RepoCompression::Gz).unwrap();
    repo
}

#[test]
fn buildfetch_refuses_names_that_leave_the_store() {
    for (id, arch, path, want) in [
        (
            "1",
            "../../../x",
            "f.ociarchive",
            "invalid architecture name \"../../../x\"",
        ),
        (
            "../../escape",
            "x86_64",
            "f.ociarchive",
            "invalid build id \"../../escape\"",
        ),
        (
            "1",
            "x86_64",
            "../../../../etc/passwd",
            "images.ostree.path",
        ),
    ] {
        let t = tempfile::tempdir().unwrap();
        let (src, wd) = store(t.path(), id, arch, path);
        let sentinel = t.path().join("sentinel");
        std::fs::create_dir_all(sentinel.join("etc")).unwrap();
        std::fs::write(sentinel.join("etc/keep"), "k").unwrap();
        let before = snapshot(t.path());
        let out = run(
            cosa(&wd)
                .args(["buildfetch", "--url"])
                .arg(&src)
                .args(["--arch", "all", "--build", id]),
            false,
        );
        let e = stderr(&out);
        assert!(e.contains(want), "{want} missing in: {e}");
        // Nothing outside wd/ changed.
        let after: Vec<_> = snapshot(t.path())
            .into_iter()
            .filter(|(p, _)| !p.starts_with(&wd))
            .collect();
        let before: Vec<_> = before
            .into_iter()
            .filter(|(p, _)| !p.starts_with(&wd))
            .collect();
        assert_eq!(before, after, "files outside the working directory changed");
    }
}

#[test]
fn meta_set_refuses_paths_outside_the_build() {
    let t = tempfile::tempdir().unwrap();
    let (_, wd) = store(t.path(), "1", "x86_64", "f.ociarchive");
    // A listed build of our own to edit.
    let bd = wd.join("builds/1/x86_64");
    std::fs::create_dir_all(&bd).unwrap();
    std::fs::copy(
        t.path().join("src/builds/1/x86_64/meta.json"),
        bd.join("meta.json"),
    )
    .unwrap();
    std::fs::write(
        wd.join("builds/builds.json"),
        r#"{"schema-version": "1.0.0", "builds": [{"id": "1", "arches": ["x86_64"]}]}"#,
    )
    .unwrap();
    let before = std::fs::read(bd.join("meta.json")).unwrap();
    for (set, want) in [
        (
            "images.ostree.path=../../../../victim",
            "images.ostree.path",
        ),
        ("buildid=../x", "buildid"),
    ] {
        let e = stderr(&run(
            cosa(&wd).args(["meta", "--build", "1", "--set", set]),
            false,
        ));
        assert!(e.contains(want) && e.contains("refusing"), "{set}: {e}");
        assert_eq!(std::fs::read(bd.join("meta.json")).unwrap(), before);
    }
}

#[test]
fn build_store_recovery_keeps_directories_cosa_did_not_make() {
    let t = tempfile::tempdir().unwrap();
    let (_, wd) = store(t.path(), "1", "x86_64", "f.ociarchive");
    let bd = wd.join("builds");
    std::fs::write(
        bd.join("builds.json"),
        r#"{"schema-version": "1.0.0", "builds": []}"#,
    )
    .unwrap();
    // A directory a user put there, and a complete build builds.json lost.
    std::fs::create_dir_all(bd.join("my-notes")).unwrap();
    std::fs::write(bd.join("my-notes/todo"), "keep me").unwrap();
    std::fs::create_dir_all(bd.join("41.1/x86_64")).unwrap();
    std::fs::write(bd.join("41.1/x86_64/meta.json"), "{}").unwrap();
    // One an interrupted cosa run renamed into place (it carries the marker).
    std::fs::create_dir_all(bd.join("42.0/x86_64")).unwrap();
    std::fs::write(bd.join("42.0/.cosa-unpublished"), "").unwrap();
    std::fs::write(bd.join("42.0/x86_64/.cosa-unpublished"), "").unwrap();
    let lock = cosa::store::WorkdirLock::acquire(&wd).unwrap();
    let rec = cosa::store::builds::recover(&bd, &lock).unwrap();
    assert_eq!(rec.removed, [bd.join("42.0")]);
    assert_eq!(rec.kept, [bd.join("41.1"), bd.join("my-notes")]);
    assert!(bd.join("my-notes/todo").exists() && bd.join("41.1/x86_64/meta.json").exists());
}

/// An include outside the config directory is part of the input hash: a
/// change in it is a change (it used to give "No changes" and a stale build).
#[test]
fn include_outside_the_config_counts_as_input() {
    let t = tempfile::tempdir().unwrap();
    let repo = app_repo(t.path(), true);
    let cfg = crate::common::config_dir(
        t.path(),
        "ref: test/${basearch}\nrepos: [test]\ninclude: ../common.yaml\n",
        &repo,
    );
    let common = t.path().join("common.yaml");
    std::fs::write(&common, "packages: [app]\n").unwrap();
    let wd = init_transient(t.path(), &cfg);
    let build = |ok: bool| stderr(&run(cosa(&wd).args(["build", "ostree"]), ok));
    build(true);
    assert!(build(true).contains("No changes"));
    std::fs::write(&common, "packages: [app, tool]\n").unwrap();
    let e = build(true);
    assert!(!e.contains("No changes"), "{e}");
    // A FIFO as an include is refused, not read forever.
    let fifo = t.path().join("fifo.yaml");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(
        cfg.join("manifest.yaml"),
        "ref: test/${basearch}\nrepos: [test]\ninclude: ../fifo.yaml\n",
    )
    .unwrap();
    let e = build(false);
    assert!(
        e.contains("fifo.yaml") && e.contains("not a regular file"),
        "{e}"
    );
}

/// A treefile key with no value is still checked by name.
#[test]
fn unknown_key_without_a_value_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let cfg = crate::common::config_dir(t.path(), "ref: r\nfrobnicate:\n", t.path());
    let e = format!(
        "{:#}",
        cosa::config::treefile::load(&cfg.join("manifest.yaml"), "x86_64").unwrap_err()
    );
    assert!(
        e.contains("frobnicate") && e.contains("manifest.yaml"),
        "{e}"
    );
}

/// A build that fails after its commit is written does not move the ref:
/// refs move only when the build is recorded in builds.json.
#[test]
fn failed_build_leaves_the_ref_alone() {
    let t = tempfile::tempdir().unwrap();
    let repo = app_repo(t.path(), false);
    let cfg = crate::common::config_dir(
        t.path(),
        "ref: test/r\nrepos: [test]\npackages: [app]\n",
        &repo,
    );
    let wd = init_transient(t.path(), &cfg);
    run(
        cosa(&wd).args(["build", "ostree", "--version", "1.0"]),
        true,
    );
    let before = ostree(&wd, &["rev-parse", "test/r"]);
    // Something that is not cosa's sits where the next build would go.
    std::fs::create_dir_all(wd.join("builds/2.0/x86_64")).unwrap();
    std::fs::write(wd.join("builds/2.0/x86_64/mine"), "x").unwrap();
    std::fs::write(cfg.join("extra"), "changed input").unwrap();
    let e = stderr(&run(
        cosa(&wd).args(["build", "ostree", "--version", "2.0"]),
        false,
    ));
    assert!(
        e.contains("builds/2.0/x86_64") && e.contains("not list"),
        "{e}"
    );
    assert_eq!(ostree(&wd, &["rev-parse", "test/r"]), before);
    assert!(wd.join("builds/2.0/x86_64/mine").exists());
}

/// A signature that does not match says so in words, naming the key, not
/// with the OpenPGP library's internal text.
#[test]
fn bad_signature_message_names_the_key() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("gnupg");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        run(
            std::process::Command::new("gpg")
                .env("GNUPGHOME", &home)
                .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
                .args(args),
            true,
        )
        .stdout
    };
    gpg(&[
        "--quick-gen-key",
        "Sig Test <sig@example.org>",
        "ed25519",
        "sign",
        "never",
    ]);
    let data = t.path().join("data");
    std::fs::write(&data, "original").unwrap();
    let sig = gpg(&["--detach-sign", "--output", "-", data.to_str().unwrap()]);
    let key = t.path().join("key.asc");
    std::fs::write(&key, gpg(&["--armor", "--export", "sig@example.org"])).unwrap();
    let ring = cosa::sign::Keyring::load(&key).unwrap();
    ring.verify_file(&sig, &data).unwrap();
    std::fs::write(&data, "changed").unwrap();
    let e = format!("{:#}", ring.verify_file(&sig, &data).unwrap_err());
    assert!(
        e.contains("does not match the data") && e.contains("data changed"),
        "{e}"
    );
    assert!(!e.to_lowercase().contains("assert"), "{e}");
    let _ = std::process::Command::new("gpgconf")
        .env("GNUPGHOME", &home)
        .args(["--kill", "gpg-agent"])
        .status();
}

/// The bad-input matrix: each case breaks one input of a working setup,
/// runs the real binary, and checks that the message names the object and
/// that nothing outside the working directory changed (a sentinel tree
/// beside it) and the build store did not change.
#[test]
fn bad_input_matrix() {
    type Breaker = fn(&Path, &Path, &Path);
    let cases: &[(&str, &[&str], &str, Breaker)] = &[
        (
            "malformed YAML",
            &["fetch"],
            "manifest.yaml:4:4: YAML syntax error",
            |cfg, _, _| {
                std::fs::write(
                    cfg.join("manifest.yaml"),
                    "ref: r\nrepos: [test]\npackages: [app\n  x: {\n",
                )
                .unwrap();
            },
        ),
        ("include cycle", &["fetch"], "include cycle", |cfg, _, _| {
            std::fs::write(
                cfg.join("manifest.yaml"),
                "ref: r\nrepos: [test]\ninclude: a.yaml\n",
            )
            .unwrap();
            std::fs::write(cfg.join("a.yaml"), "include: manifest.yaml\n").unwrap();
        }),
        ("unknown key", &["fetch"], "frobnicate", |cfg, _, _| {
            std::fs::write(
                cfg.join("manifest.yaml"),
                "ref: r\nrepos: [test]\nfrobnicate:\n",
            )
            .unwrap();
        }),
        (
            "image.yaml unknown key",
            &["build", "ostree"],
            "image.yaml",
            |cfg, _, _| {
                std::fs::write(cfg.join("image.yaml"), "size: 10\nsizee: 3\n").unwrap();
            },
        ),
        (
            "truncated repomd.xml",
            &["fetch"],
            "truncated",
            |_, repo, _| {
                let p = repo.join("repodata/repomd.xml");
                let text = std::fs::read_to_string(&p).unwrap();
                std::fs::write(&p, text.replace("</repomd>", "")).unwrap();
            },
        ),
        (
            "package digest mismatch",
            &["fetch"],
            "app",
            |_, repo, _| {
                let rpm = cosa_testkit::download::files_under(repo)
                    .into_iter()
                    .find(|p| p.extension().is_some_and(|e| e == "rpm"))
                    .unwrap();
                let mut data = std::fs::read(&rpm).unwrap();
                let n = data.len();
                data[n - 10] ^= 0xff;
                std::fs::write(&rpm, data).unwrap();
            },
        ),
        (
            "builds.json arch escape",
            &["build", "ostree"],
            "invalid architecture name",
            |_, _, wd| {
                std::fs::write(
                wd.join("builds/builds.json"),
                r#"{"schema-version": "1.0.0", "builds": [{"id": "1", "arches": ["../../../sentinel"]}]}"#,
            )
            .unwrap();
            },
        ),
        (
            "meta.json path escape",
            &["compress"],
            "images.ostree.path",
            |_, _, wd| {
                std::fs::create_dir_all(wd.join("builds/1/x86_64")).unwrap();
                std::fs::write(
                    wd.join("builds/builds.json"),
                    r#"{"schema-version": "1.0.0", "builds": [{"id": "1", "arches": ["x86_64"]}]}"#,
                )
                .unwrap();
                let meta = serde_json::json!({
                    "buildid": "1", "name": "os", "ostree-commit": "a".repeat(64),
                    "ostree-version": "1", "ostree-timestamp": "2024-01-01T00:00:00Z",
                    "images": {"ostree": {"path": "../../../../sentinel/victim", "sha256": "0".repeat(64), "size": 1}},
                });
                std::fs::write(wd.join("builds/1/x86_64/meta.json"), meta.to_string()).unwrap();
            },
        ),
    ];
    for (what, args, want, breaker) in cases {
        let t = tempfile::tempdir().unwrap();
        let repo = app_repo(t.path(), false);
        let cfg =
            crate::common::config_dir(t.path(), "ref: r\nrepos: [test]\npackages: [app]\n", &repo);
        let wd = init_transient(t.path(), &cfg);
        let sentinel = t.path().join("sentinel");
        std::fs::create_dir_all(&sentinel).unwrap();
        std::fs::write(sentinel.join("victim"), "keep").unwrap();
        breaker(&cfg, &repo, &wd);
        let store_before = snapshot(&wd.join("builds"));
        let sentinel_before = snapshot(&sentinel);
        let e = stderr(&run(cosa(&wd).args(*args), false));
        assert!(e.contains(want), "{what}: {want:?} missing in: {e}");
        assert_eq!(
            snapshot(&sentinel),
            sentinel_before,
            "{what}: the sentinel changed"
        );
        assert_eq!(
            snapshot(&wd.join("builds")),
            store_before,
            "{what}: the build store changed"
        );
        assert!(!t.path().join("sentinel/x86_64").exists(), "{what}");
    }
}

/// The caller's umask does not reach the tree: a build under umask 077 gives
/// the same commit as one under 022 (same inputs, SOURCE_DATE_EPOCH).
#[test]
fn umask_does_not_change_the_commit() {
    use cosa_testkit::fixture::*;
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let bb = std::fs::read("/bin/busybox").expect("busybox-static");
    make_repo(
        &repo,
        &[
            PkgSpec::new("base", "1")
                .provides("/bin/sh")
                .file(FileSpec::file("/usr/bin/busybox", bb).mode(0o755))
                .file(FileSpec::symlink("/usr/bin/sh", "busybox"))
                .file(FileSpec::symlink("/bin", "usr/bin"))
                .file(FileSpec::file(
                    "/etc/passwd",
                    "root:x:0:0:root:/root:/bin/sh\n",
                ))
                .file(FileSpec::file("/etc/group", "root:x:0:\n")),
            PkgSpec::new("app", "1")
                .requires("base")
                .post("mkdir -p /etc/app.d && echo made > /etc/app.d/by-post")
                .file(FileSpec::file("/usr/share/app", "1")),
        ],
        RepoCompression::Gz,
    )
    .unwrap();
    let mut commits = Vec::new();
    for (i, umask) in ["022", "077"].iter().enumerate() {
        let root = t.path().join(format!("run{i}"));
        let cfg = crate::common::config_dir(
            &root,
            "ref: test/r\nrepos: [test]\npackages: [base, app]\nadd-files:\n  - [extra, /etc/extra]\n",
            &repo,
        );
        std::fs::write(cfg.join("extra"), "x").unwrap();
        let wd = init_transient(&root, &cfg);
        run(
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("umask {umask}; exec \"$0\" build ostree"))
                .arg(env!("CARGO_BIN_EXE_cosa"))
                .env("COSA_WORKDIR", &wd)
                .env("SOURCE_DATE_EPOCH", "1700000000"),
            true,
        );
        commits.push(ostree(&wd, &["rev-parse", "test/r"]));
        let m = ostree(
            &wd,
            &["ls", "test/r", "/usr/etc/app.d/by-post", "/usr/lib/passwd"],
        );
        assert!(
            !m.contains("-rw-------") && !m.contains("drwx------"),
            "umask {umask}: {m}"
        );
    }
    assert_eq!(commits[0], commits[1]);
}
