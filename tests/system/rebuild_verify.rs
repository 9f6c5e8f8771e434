//! `cosa rebuild-verify` on builds of the busybox sample: a build made
//! with or without SOURCE_DATE_EPOCH rebuilds identically (commit, ostree
//! archive, SBOM, qemu image, lockfile) while builds/ and tmp/repo stay
//! byte for byte as they were; a config that moved on is checked out at the
//! recorded commit; a config change shows as a differing commit whose first
//! differing file `ostree diff` names too; one flipped byte of a cached RPM
//! fails the rebuild naming the package; `--attest` writes a statement
//! whose DSSE signature gpg verifies and `cosa verify` accepts;
//! `--from-release` rebuilds a build of another build store.

use crate::common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Artifacts a sample build rebuilds identically (qemu when it has one).
const REPRODUCIBLE: &[&str] = &["ostree-commit", "ostree", "sbom", "qemu", "lockfile"];

/// The sample repository and a working directory on `config` (default:
/// this project's manifests/).
fn setup(t: &Path, config: Option<&Path>) -> (PathBuf, PathBuf) {
    let repo = t.join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    let wd = t.join("wd");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    run(
        cosa(&wd)
            .args(["init", "--transient"])
            .arg(config.unwrap_or(&manifests)),
        true,
    );
    (wd, repo)
}

fn cosa_in(wd: &Path, repo: &Path) -> Command {
    let mut c = cosa(wd);
    c.env("DNF_VAR_cosa_sample_repo", repo)
        .env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Every path under `dir` with its kind, mode, mtime and content digest (a
/// rewrite with the same bytes shows too).
fn snapshot(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walkdir(dir) {
        let md = std::fs::symlink_metadata(&e).unwrap();
        let rel = e.strip_prefix(dir).unwrap().display().to_string();
        let what = if md.file_type().is_symlink() {
            format!("l {}", std::fs::read_link(&e).unwrap().display())
        } else if md.is_dir() {
            "d".to_string()
        } else {
            let (sha, _) = cosa::util::digest::sha256_file(&e).unwrap();
            format!("f {sha}")
        };
        out.push(format!(
            "{rel} {what} {:o} {}.{}",
            md.mode(),
            md.mtime(),
            md.mtime_nsec()
        ));
    }
    out
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let is_dir = std::fs::symlink_metadata(&p).unwrap().is_dir();
        v.push(p.clone());
        if is_dir {
            v.extend(walkdir(&p));
        }
    }
    v
}

/// What must not change: the build store and the OSTree repo.
fn store(wd: &Path) -> Vec<String> {
    let mut v = snapshot(&wd.join("builds"));
    v.extend(snapshot(&wd.join("tmp/repo")));
    v
}

/// No scratch directory is left behind.
fn no_scratch_left(wd: &Path) {
    let left: Vec<_> = std::fs::read_dir(wd.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rebuild-"))
        .collect();
    assert!(left.is_empty(), "scratch left in tmp/: {left:?}");
}

fn latest_dir(wd: &Path) -> PathBuf {
    let id = std::fs::read_link(wd.join("builds/latest")).unwrap();
    wd.join("builds").join(id).join("x86_64")
}

/// `artifact -> status` of a `--json` report.
fn statuses(report: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["artifact"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_reproduced(report: &serde_json::Value) {
    let st = statuses(report);
    for (a, status) in &st {
        assert!(
            REPRODUCIBLE.contains(&a.as_str()),
            "unexpected row {a}: {report:#}"
        );
        assert_eq!(status, "identical", "{a}: {report:#}");
    }
}

/// `cosa rebuild-verify --json ...`: the report; the exit status is 0
/// exactly when every artifact is identical, and the error names each
/// artifact that is not.
fn rebuild_json(cmd: &mut Command) -> serde_json::Value {
    let o = cmd.output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "--json: {e}\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        )
    });
    let st = statuses(&report);
    let all = st.values().all(|s| s == "identical");
    let err = stderr(&o);
    assert_eq!(o.status.success(), all, "{report:#}\n{err}");
    for (a, s) in st.iter().filter(|(_, s)| *s != "identical") {
        assert!(
            err.contains(&format!("{a} (")),
            "the error names {a} ({s}): {err}"
        );
    }
    report
}

#[test]
fn a_build_with_source_date_epoch_rebuilds_identically_and_nothing_changes() {
    let t = tempfile::tempdir().unwrap();
    let (wd, repo) = setup(t.path(), None);
    run(
        cosa_in(&wd, &repo)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", "--version", "1.20231114.dev.0"]),
        true,
    );
    let before = store(&wd);
    let started = std::time::Instant::now();
    let report = rebuild_json(cosa_in(&wd, &repo).args(["rebuild-verify", "--json"]));
    eprintln!(
        "rebuild-verify took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(report["build"], "1.20231114.dev.0");
    assert_eq!(report["arch"], "x86_64");
    assert_eq!(statuses(&report).len(), REPRODUCIBLE.len(), "{report:#}");
    assert_reproduced(&report);
    let commit = cosa::store::meta::Meta::read(&latest_dir(&wd).join("meta.json"))
        .unwrap()
        .ostree_commit;
    assert_eq!(report["rows"][0]["recorded"], commit.as_str());
    assert_eq!(report["rows"][0]["rebuilt"], commit.as_str());
    assert_eq!(store(&wd), before, "builds/ or tmp/repo changed");
    no_scratch_left(&wd);
}

/// A config repository of its own: this project's sample config copied
/// into a git repository, committed.
fn git_config(t: &Path) -> PathBuf {
    let top = t.join("config-repo");
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&top).unwrap();
    for d in ["manifests", "overlays", "platforms", "image.yaml"] {
        sh(
            "copying the sample config",
            Command::new("cp").arg("-a").arg(src.join(d)).arg(&top),
        );
    }
    git(&top, &["init", "-q", "."]);
    git(&top, &["add", "-A"]);
    git(&top, &["commit", "-qm", "sample config"]);
    top
}

fn git(dir: &Path, args: &[&str]) {
    sh(
        "git",
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args),
    );
}

const NOTE: &str = "overlays/10-sample/usr/lib/sample/overlay-note";

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn a_build_without_source_date_epoch_rebuilds_from_its_config_commit_and_a_change_is_named() {
    let t = tempfile::tempdir().unwrap();
    let top = git_config(t.path());
    let (wd, repo) = setup(t.path(), Some(&top.join("manifests")));
    // Two builds, the second with a parent; no SOURCE_DATE_EPOCH.
    run(cosa_in(&wd, &repo).args(["build"]), true);
    run(cosa_in(&wd, &repo).args(["build", "--force"]), true);
    // The config moves on after the build.
    append(&top.join(NOTE), "changed after the build\n");
    git(&top, &["commit", "-qam", "later"]);
    let before = store(&wd);
    let o = run(cosa_in(&wd, &repo).arg("rebuild-verify"), true);
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = stderr(&o);
    assert!(err.contains("checked out the build's commit"), "{err}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ARTIFACT"), "{table}");
    for a in REPRODUCIBLE {
        let l = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(a))
            .unwrap_or_else(|| panic!("no row {a}: {table}"));
        assert!(l.ends_with("identical"), "{l}\n{err}");
    }
    assert_eq!(store(&wd), before);

    // A build from a dirty config, then another change: the commit differs,
    // and the first differing file is the one changed. The statement says
    // FAILED, and `cosa verify` calls it bad.
    append(&top.join(NOTE), "uncommitted\n");
    run(cosa_in(&wd, &repo).args(["build", "ostree"]), true);
    append(&top.join(NOTE), "and more\n");
    let before = store(&wd);
    let keys = crate::sign_cli::gpg_key(&t.path().join("keys"), "", true);
    let o = run(
        cosa_in(&wd, &repo)
            .env("COSA_SIGN_PASSPHRASE", "")
            .args(["rebuild-verify", "--json", "--keep", "--attest"])
            .arg(&keys.secret),
        false,
    );
    let err = stderr(&o);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let st = statuses(&report);
    assert_eq!(st["ostree-commit"], "different", "{report:#}");
    assert_eq!(st["ostree"], "different");
    assert_eq!(st["lockfile"], "identical", "same packages");
    let first = &report["commit_diff"]["files"][0];
    assert_eq!(first["kind"], "M");
    assert_eq!(first["path"], "/usr/lib/sample/overlay-note");
    assert!(
        report["rows"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("first differing file: M /usr/lib/sample/overlay-note"),
        "{report:#}"
    );
    assert!(err.contains("with uncommitted changes"), "{err}");
    assert!(
        err.contains("did not rebuild identically: ostree-commit: first differing file"),
        "{err}"
    );
    // Only the statement is new (and so its directory's mtime).
    let id = std::fs::read_link(wd.join("builds/latest")).unwrap();
    let dir_line = format!("{}/x86_64 d ", id.display());
    let other =
        |l: &String| !l.contains("-rebuild-verify.x86_64.intoto.json") && !l.starts_with(&dir_line);
    let after: Vec<String> = store(&wd).into_iter().filter(other).collect();
    let before: Vec<String> = before.into_iter().filter(other).collect();
    assert_eq!(after, before, "only the statement is new");
    let name = std::fs::read_dir(latest_dir(&wd))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with("-rebuild-verify.x86_64.intoto.json"))
        .expect("a statement for a failed rebuild too");
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest_dir(&wd).join(&name)).unwrap()).unwrap();
    let st = dsse_verified_by_gpg(t.path(), &env, &keys.public);
    assert_eq!(st["predicate"]["verificationResult"], "FAILED");
    let o = run(
        cosa(&wd).arg("verify").arg("--keyring").arg(&keys.public),
        false,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("bad      rebuild statement")
                && l.contains("verification result is FAILED")),
        "{out}"
    );
    // Debian's ostree says the same of the two commits in the kept scratch repo.
    let kept = err
        .lines()
        .find_map(|l| l.strip_prefix("Kept the scratch directory "))
        .expect("--keep names the directory");
    let recorded = report["rows"][0]["recorded"].as_str().unwrap();
    let rebuilt = report["rows"][0]["rebuilt"].as_str().unwrap();
    let diff = sh(
        "ostree diff",
        Command::new("ostree")
            .arg(format!("--repo={kept}/wd/tmp/repo"))
            .args(["diff", recorded, rebuilt]),
    );
    assert_eq!(
        diff.lines()
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["M", "/usr/lib/sample/overlay-note"]),
        "{diff}"
    );
    std::fs::remove_dir_all(kept).unwrap();
}

#[test]
fn a_changed_byte_in_a_cached_rpm_fails_naming_the_package() {
    let t = tempfile::tempdir().unwrap();
    let (wd, repo) = setup(t.path(), None);
    run(cosa_in(&wd, &repo).args(["build", "ostree"]), true);
    let rpm = walkdir(&wd.join("cache/pkgs"))
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("sample-daemon-"))
        })
        .expect("sample-daemon in the cache");
    let mut data = std::fs::read(&rpm).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x01;
    std::fs::write(&rpm, &data).unwrap();
    let before = store(&wd);
    let o = run(cosa_in(&wd, &repo).arg("rebuild-verify"), false);
    let err = stderr(&o);
    assert!(
        err.contains("package sample-daemon-0.3-2.sample.x86_64 in the cache is not the one"),
        "{err}"
    );
    let real = std::fs::canonicalize(&rpm).unwrap();
    assert!(
        err.contains(&real.display().to_string()),
        "names the file: {err}"
    );
    assert!(
        o.stdout.is_empty(),
        "no table for a rebuild that did not run"
    );
    assert_eq!(store(&wd), before);
    no_scratch_left(&wd);
}

#[test]
fn attest_writes_a_signed_statement_and_from_release_rebuilds_a_fetched_build() {
    let t = tempfile::tempdir().unwrap();
    let (wd, repo) = setup(t.path(), None);
    run(
        cosa_in(&wd, &repo)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", "ostree"]),
        true,
    );
    let keys = crate::sign_cli::gpg_key(&t.path().join("keys"), "", true);
    let o = run(
        cosa_in(&wd, &repo)
            .env("COSA_SIGN_PASSPHRASE", "")
            .arg("rebuild-verify")
            .arg("--attest")
            .arg(&keys.secret),
        true,
    );
    let dir = latest_dir(&wd);
    let name = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with("-rebuild-verify.x86_64.intoto.json"))
        .unwrap_or_else(|| panic!("no statement in {}: {}", dir.display(), stderr(&o)));
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(&name)).unwrap()).unwrap();
    let st = dsse_verified_by_gpg(t.path(), &env, &keys.public);
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        st["predicateType"],
        "https://slsa.dev/verification_summary/v1"
    );
    let p = &st["predicate"];
    assert_eq!(p["verificationResult"], "PASSED");
    assert!(p["timeVerified"].as_str().unwrap().ends_with('Z'));
    assert_eq!(p["resourceUri"], dir.display().to_string());
    let meta = cosa::store::meta::Meta::read(&dir.join("meta.json")).unwrap();
    let subjects: Vec<&str> = p["rebuild"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["artifact"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["ostree-commit", "ostree", "sbom", "lockfile"]);
    assert!(
        st["subject"].as_array().unwrap().iter().any(|s| s["name"]
            == format!("ostree-commit:{}", meta.ostree_commit)
            && s["digest"]["sha256"] == meta.ostree_commit.as_str()),
        "{st:#}"
    );
    // meta.json does not list it, and `cosa verify` checks it.
    assert!(
        !std::fs::read_to_string(dir.join("meta.json"))
            .unwrap()
            .contains(&name)
    );
    let o = run(
        cosa(&wd).arg("verify").arg("--keyring").arg(&keys.public),
        false,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("good     rebuild statement") && l.contains(&name)),
        "{out}"
    );

    // Another working directory, with an empty cache, rebuilds the first
    // one's latest build from its build store.
    let other = t.path().join("other");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    run(
        cosa(&other).args(["init", "--transient"]).arg(&manifests),
        true,
    );
    let report = rebuild_json(
        cosa_in(&other, &repo)
            .env("COSA_SIGN_PASSPHRASE", "")
            .arg("rebuild-verify")
            .arg("--json")
            .arg("--from-release")
            .arg(format!("file://{}", wd.display()))
            .arg("--attest")
            .arg(&keys.secret),
    );
    assert_reproduced(&report);
    assert_eq!(report["rows"].as_array().unwrap().len(), 4, "{report:#}");
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(other.join(&name)).unwrap()).unwrap();
    let st = dsse_verified_by_gpg(t.path(), &env, &keys.public);
    assert_eq!(st["predicate"]["verificationResult"], "PASSED");
    assert_eq!(
        st["predicate"]["resourceUri"],
        format!("file://{}/builds/{}/x86_64", wd.display(), meta.buildid)
    );
    assert!(
        std::fs::read_dir(other.join("builds"))
            .map(|mut d| d.next().is_none())
            .unwrap_or(true),
        "the fetched build stays in the scratch directory"
    );
    no_scratch_left(&other);
}

/// Check the DSSE envelope's signature with gpg over the PAE encoding;
/// returns the statement.
fn dsse_verified_by_gpg(t: &Path, env: &serde_json::Value, public: &Path) -> serde_json::Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    let payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
    let sig = b64
        .decode(env["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let home = t.join("verify-gnupg");
    if !home.exists() {
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        sh(
            "gpg --import",
            Command::new("gpg")
                .env("GNUPGHOME", &home)
                .args(["--batch", "--import"])
                .arg(public),
        );
    }
    let pae = cosa::supply::dsse::pae("application/vnd.in-toto+json", &payload);
    std::fs::write(t.join("pae"), &pae).unwrap();
    std::fs::write(t.join("pae.sig"), &sig).unwrap();
    sh(
        "gpg --verify",
        Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--verify"])
            .arg(t.join("pae.sig"))
            .arg(t.join("pae")),
    );
    serde_json::from_slice(&payload).unwrap()
}
