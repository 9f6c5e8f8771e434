//! `cosa build` end to end on the sample config: the commit is checked with
//! Debian's ostree, meta.json with coreos-assembler's schema, and the store
//! survives SIGKILL at any moment.

use crate::common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn sample(t: &Path) -> (PathBuf, PathBuf) {
    let repo = t.join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    let wd = t.join("wd");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    run(cosa(&wd).args(["init", "--transient"]).arg(manifests), true);
    (wd, repo)
}

fn build(wd: &Path, repo: &Path, args: &[&str], ok: bool) -> String {
    stderr(&run(
        cosa(wd)
            .env("DNF_VAR_cosa_sample_repo", repo)
            .arg("build")
            .args(args),
        ok,
    ))
}

fn builds_json(wd: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(wd.join("builds/builds.json")).unwrap()).unwrap()
}

const REF: &str = "cosa-sample/x86_64/dev";

/// The sample commit is labelled from its own policy (Debian's reference
/// policy in /usr/etc/selinux/default): `ostree ls -X` shows, for files,
/// directories and symlinks, libselinux's label (`matchpathcon`) for the
/// path, /usr/etc looked up as /etc (`selinux-label-version: 1`).
fn selinux_labels_match_matchpathcon(wd: &Path, co: &Path) {
    let fc = co.join("usr/etc/selinux/default/contexts/files/file_contexts");
    assert!(fc.is_file(), "the sample ships its policy");
    let paths = [
        "/",
        "/usr",
        "/usr/bin",
        "/usr/bin/busybox",
        "/usr/bin/sh",
        "/usr/sbin/init",
        "/usr/lib/os-release",
        "/usr/lib/modules",
        "/usr/lib/sampled",
        "/usr/etc",
        "/usr/etc/passwd",
        "/usr/etc/shadow",
        "/usr/etc/os-release",
        "/usr/etc/selinux",
        "/usr/etc/selinux/config",
        "/usr/etc/sample-daemon.conf",
        "/bin",
    ];
    let mut etc_differs = false;
    for p in paths {
        let line = ostree(wd, &["ls", "-X", "-d", REF, p]);
        let ty = match &line[..1] {
            "d" => "dir",
            "l" => "lnk_file",
            _ => "file",
        };
        let key = match p.strip_prefix("/usr/etc") {
            Some(rest) => format!("/etc{rest}"),
            None => p.to_string(),
        };
        let run = |k: &str| {
            let o = Command::new("matchpathcon")
                .args(["-N", "-n", "-m", ty, "-f"])
                .arg(&fc)
                .arg(k)
                .output()
                .expect("matchpathcon (apt-get install selinux-utils)");
            String::from_utf8(o.stdout).unwrap().trim().to_string()
        };
        let want = run(&key);
        assert!(want.starts_with("system_u:object_r:"), "{key}: {want}");
        etc_differs |= key != p && run(p) != want;
        assert!(
            line.contains(&format!("(b'security.selinux', b'{want}')")),
            "{p} (as {key}): want {want} in {line}"
        );
    }
    assert!(
        etc_differs,
        "some /usr/etc path is labelled differently as /etc"
    );
}

#[test]
fn build_commits_records_and_detects_no_change() {
    let t = tempfile::tempdir().unwrap();
    let (wd, repo) = sample(t.path());
    let out = build(&wd, &repo, &[], true);
    let labelled = out.lines().find(|l| l.starts_with("SELinux: labelled"));
    eprintln!(
        "{}",
        labelled.unwrap_or_else(|| panic!("no SELinux line in:\n{out}"))
    );

    let bj = builds_json(&wd);
    assert_eq!(bj["schema-version"], "1.0.0");
    let id = bj["builds"][0]["id"].as_str().unwrap().to_string();
    assert!(
        regex::Regex::new(r"^1\.\d{8}\.dev\.0$")
            .unwrap()
            .is_match(&id),
        "{id}"
    );
    let dir = wd.join("builds").join(&id).join("x86_64");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    cosa::store::meta::validate(&meta).expect("meta.json is schema-valid");
    let commit = meta["ostree-commit"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_link(wd.join("builds/latest")).unwrap(),
        PathBuf::from(&id)
    );

    // The real ostree accepts the repo and reads the metadata.
    assert!(ostree(&wd, &["fsck"]).contains("no errors"));
    assert_eq!(ostree(&wd, &["rev-parse", REF]).trim(), commit);
    let show = ostree(&wd, &["show", REF]);
    assert!(show.contains(&format!("Version: {id}")), "{show}");
    let pkgs = ostree(
        &wd,
        &["show", "--print-metadata-key=rpmostree.rpmdb.pkglist", REF],
    );
    assert!(
        pkgs.contains("('busybox', '0', '1.35.0', '1.sample', 'x86_64')"),
        "{pkgs}"
    );
    let hash = ostree(
        &wd,
        &["show", "--print-metadata-key=rpmostree.inputhash", REF],
    );
    assert!(hash.contains(meta["rpm-ostree-inputhash"].as_str().unwrap()));

    // commitmeta.json holds the same values ostree prints (integers un-swapped).
    let cm: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("commitmeta.json")).unwrap()).unwrap();
    let ts = cm["rpmostree.rpmmd-repos"][0]["timestamp"]
        .as_u64()
        .unwrap();
    let repos = ostree(
        &wd,
        &["show", "--print-metadata-key=rpmostree.rpmmd-repos", REF],
    );
    assert!(repos.contains(&format!("<uint64 {ts}>")), "{repos} vs {ts}");
    assert!(ts > 1_600_000_000 && ts < 4_000_000_000, "{ts}");

    // The checkout is the ostree-ified tree, with owners, modes and caps kept.
    let co = t.path().join("co");
    ostree(&wd, &["checkout", REF, co.to_str().unwrap()]);
    assert!(co.join("usr/etc/sample-daemon.conf").exists());
    assert!(!co.join("etc").exists());
    let passwd = std::fs::read_to_string(co.join("usr/lib/passwd")).unwrap();
    assert!(passwd.contains("sampled:x:990"), "{passwd}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(co.join("usr/lib/sampled/state"))
            .unwrap()
            .uid(),
        990
    );
    let caps = Command::new("getcap")
        .arg(co.join("usr/bin/sampled"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&caps.stdout).contains("cap_net_bind_service=ep"));
    selinux_labels_match_matchpathcon(&wd, &co);
    let osr = std::fs::read_to_string(co.join("usr/lib/os-release")).unwrap();
    assert!(osr.contains(&format!("OSTREE_VERSION='{id}'")), "{osr}");

    // The commit's rpm database lists exactly the commit metadata's packages.
    let from_db = rpm_qa(
        &co.join("usr/share/rpm"),
        "%{NAME} %{EPOCHNUM} %{VERSION} %{RELEASE} %{ARCH}\n",
    );
    let mut from_meta: Vec<String> = cm["rpmostree.rpmdb.pkglist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let f: Vec<&str> = e
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect();
            f.join(" ")
        })
        .collect();
    from_meta.sort();
    assert_eq!(from_db, from_meta);
    assert!(from_db.len() >= 7, "{from_db:?}");

    // images.ostree imports back into a fresh repo with the same commit.
    let art = &meta["images"]["ostree"];
    let file = dir.join(art["path"].as_str().unwrap());
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        art["size"].as_u64().unwrap()
    );
    let fresh = cosa::ostree::Repo::init_archive(&t.path().join("fresh")).unwrap();
    assert!(
        file.to_str()
            .unwrap()
            .ends_with("-ostree.x86_64.ociarchive")
    );
    assert_eq!(
        cosa::publish::oci::import_ociarchive(&fresh, &file).unwrap(),
        commit
    );

    // Nothing changed: no new build.
    let e = build(&wd, &repo, &[], true);
    assert!(e.contains("No changes"), "{e}");
    assert_eq!(builds_json(&wd)["builds"].as_array().unwrap().len(), 1);

    // --force: a new build whose commit has the first as parent.
    build(&wd, &repo, &["--force"], true);
    let bj = builds_json(&wd);
    assert_eq!(bj["builds"].as_array().unwrap().len(), 2);
    assert!(bj["builds"][0]["id"].as_str().unwrap().ends_with(".dev.1"));
    let log = ostree(&wd, &["log", REF]);
    assert_eq!(log.matches("commit ").count(), 2, "{log}");

    // A changed input (an overlay file) is a change.
    std::fs::write(wd.join("overrides/rootfs/new-file"), "x").unwrap();
    let e = build(&wd, &repo, &["--version", "1.20990101.dev.9"], true);
    assert!(!e.contains("No changes"), "{e}");
    assert_eq!(builds_json(&wd)["builds"][0]["id"], "1.20990101.dev.9");

    // list, meta, diff.
    let out = run(cosa(&wd).args(["list", "--json"]), true);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let out = run(
        cosa(&wd).args(["meta", "--get", "ostree-commit", "--build", &id]),
        true,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), commit);
    let e = stderr(&run(
        cosa(&wd).args(["meta", "--set", "ostree-commit=5"]),
        false,
    ));
    assert!(e.contains("invalid"), "{e}");
    run(cosa(&wd).arg("diff"), true);
    let out = run(cosa(&wd).args(["diff", "--json"]), true);
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["to"], "1.20990101.dev.9", "{d}");
    assert!(d["from"].as_str().unwrap().ends_with(".dev.1"), "{d}");
    // Same packages in all three builds.
    assert_eq!(d["changes"], serde_json::json!([]), "{d}");

    // diff --rpmdb reads the commits' rpm databases: a package dropped from
    // the older build's commitmeta.json is a change only without it, and a
    // commitmeta.json without the list falls back to the database.
    let cm_path = |id: &str| wd.join("builds").join(id).join("x86_64/commitmeta.json");
    let edit = |id: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let p = cm_path(id);
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    };
    let diff_json = |extra: &[&str]| -> serde_json::Value {
        let out = run(cosa(&wd).args(["diff", "--json"]).args(extra), true);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let from = d["from"].as_str().unwrap().to_string();
    edit(&from, &|v| {
        v["rpmostree.rpmdb.pkglist"]
            .as_array_mut()
            .unwrap()
            .retain(|e| e[0] != "busybox")
    });
    let added = |d: &serde_json::Value| {
        d["changes"][0]["name"] == "busybox" && d["changes"][0]["kind"] == "added"
    };
    assert!(added(&diff_json(&[])), "{}", diff_json(&[]));
    assert_eq!(diff_json(&["--rpmdb"])["changes"], serde_json::json!([]));
    edit("1.20990101.dev.9", &|v| {
        v.as_object_mut().unwrap().remove("rpmostree.rpmdb.pkglist");
    });
    assert!(added(&diff_json(&[])), "{}", diff_json(&[]));

    // prune --keep 1: the store and the repo shrink, fsck stays clean.
    run(cosa(&wd).args(["prune", "--keep", "1"]), true);
    assert_eq!(builds_json(&wd)["builds"].as_array().unwrap().len(), 1);
    assert!(!wd.join("builds").join(&id).exists());
    assert!(ostree(&wd, &["fsck"]).contains("no errors"));
}

#[test]
fn a_second_build_is_refused_while_one_runs() {
    let t = tempfile::tempdir().unwrap();
    let (wd, repo) = sample(t.path());
    let lock = cosa::store::lock::WorkdirLock::acquire(&wd.canonicalize().unwrap()).unwrap();
    let e = build(&wd, &repo, &[], false);
    assert!(e.contains("another cosa is running"), "{e}");
    drop(lock);
    build(&wd, &repo, &[], true);
}

#[test]
fn sigkill_at_any_moment_leaves_a_valid_store() {
    let t = tempfile::tempdir().unwrap();
    let (wd, repo) = sample(t.path());
    build(&wd, &repo, &[], true);
    for delay_ms in [5u64, 30, 80, 150, 250, 400, 700] {
        let mut child = cosa(&wd)
            .env("DNF_VAR_cosa_sample_repo", &repo)
            .args(["build", "--force"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // builds.json parses and lists only complete builds.
        let bj = builds_json(&wd);
        for b in bj["builds"].as_array().unwrap() {
            let m = wd
                .join("builds")
                .join(b["id"].as_str().unwrap())
                .join("x86_64/meta.json");
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
            cosa::store::meta::validate(&v).unwrap();
        }
    }
    // The next build succeeds and the repo is consistent.
    build(&wd, &repo, &["--force"], true);
    assert!(ostree(&wd, &["fsck"]).contains("no errors"));
}

#[test]
fn same_inputs_and_source_date_epoch_give_the_same_commit() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut commits = Vec::new();
    for n in ["a", "b"] {
        let wd = t.path().join(n);
        run(
            cosa(&wd).args(["init", "--transient"]).arg(&manifests),
            true,
        );
        run(
            cosa(&wd)
                .env("DNF_VAR_cosa_sample_repo", &repo)
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .args(["build", "--version", "1.20231114.dev.0"]),
            true,
        );
        commits.push(ostree(&wd, &["rev-parse", REF]).trim().to_string());
    }
    assert_eq!(commits[0], commits[1]);
}
