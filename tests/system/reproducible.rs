//! Bit-identical artifacts: the sample OS built twice from the same inputs
//! and `SOURCE_DATE_EPOCH`, in two working directories, under another
//! umask, TMPDIR and host name, gives the same commit and the same bytes
//! for every artifact cosa makes: every platform's disk image
//! (`osbuild --all` in one, two `osbuild` runs in another order in the
//! other), the live media, the OCI archive, the SBOM.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const EPOCH: &str = "1700000000";
const VERSION: &str = "1.20231114.dev.0";

/// `cosa ARGS` in `wd`, with `umask`, `TMPDIR` and, where this host lets
/// us have our own UTS namespace (root), another host name.
fn cosa_in(wd: &Path, repo: &Path, umask: &str, tmpdir: &Path, hostname: &str, args: &[&str]) {
    let own_uts = Command::new("unshare")
        .args(["--uts", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let script = format!(
        "umask {umask} && {} \"$@\"",
        if own_uts {
            format!("hostname {hostname} &&")
        } else {
            String::new()
        }
    );
    let mut c = Command::new(if own_uts { "unshare" } else { "sh" });
    if own_uts {
        c.args(["--uts", "sh"]);
    }
    c.arg("-c")
        .arg(script)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_cosa"))
        .args(args)
        .env("COSA_WORKDIR", wd)
        .env("CI", "true")
        .env_remove("RUST_LOG")
        .env("DNF_VAR_cosa_sample_repo", repo)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("TMPDIR", tmpdir);
    run(&mut c, true);
}

/// meta.json's artifacts: key -> (file name, sha256), each checked
/// against the file.
fn artifacts(wd: &Path) -> BTreeMap<String, (String, String)> {
    let dir = wd.join("builds").join(VERSION).join("x86_64");
    let m = cosa::store::Meta::read(&dir.join("meta.json")).unwrap();
    m.images
        .iter()
        .map(|(k, a)| {
            let (sha, _) = cosa::util::digest::sha256_file(&dir.join(&a.path)).unwrap();
            assert_eq!(sha, a.sha256, "{k}: meta.json's sha256 is not the file's");
            (k.clone(), (a.path.clone(), sha))
        })
        .collect()
}

#[test]
fn two_working_directories_give_bit_identical_artifacts() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut results = Vec::new();
    for (n, umask, host) in [("a", "022", "builder-a"), ("b", "077", "another-builder")] {
        let wd = t.path().join(n).join("work");
        let tmp = t.path().join(n).join("tmpdir");
        std::fs::create_dir_all(&tmp).unwrap();
        run(
            cosa(&wd).args(["init", "--transient"]).arg(&manifests),
            true,
        );
        let c = |args: &[&str]| cosa_in(&wd, &repo, umask, &tmp, host, args);
        c(&["build", "--version", VERSION]);
        if n == "a" {
            c(&["osbuild", "--all"]);
        } else {
            // Other runs, in another order: an image's bytes do not
            // depend on what else was made with it.
            let first = ["vmware", "gcp", "aws"];
            c(&[&["osbuild"][..], &first[..]].concat());
            let rest: Vec<&str> = cosa::image::platforms_for_arch("x86_64")
                .into_iter()
                .filter(|p| *p != "qemu" && !first.contains(p))
                .collect();
            c(&[&["osbuild"][..], &rest[..]].concat());
        }
        c(&["buildextend-live"]);
        let commit = ostree(&wd, &["rev-parse", "cosa-sample/x86_64/dev"]);
        results.push((commit, artifacts(&wd)));
        // Builds a second apart would hide a clock leaking in.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let (a, b) = (&results[0], &results[1]);
    if a.0 != b.0 {
        // Name what differs: b's commit pulled into a's repo, ostree diff.
        let (ra, rb) = (
            t.path().join("a/work/tmp/repo"),
            t.path().join("b/work/tmp/repo"),
        );
        let o = Command::new("ostree")
            .arg(format!("--repo={}", ra.display()))
            .arg("pull-local")
            .arg(&rb)
            .arg(b.0.trim())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let d = Command::new("ostree")
            .arg(format!("--repo={}", ra.display()))
            .args(["diff", a.0.trim(), b.0.trim()])
            .output()
            .unwrap();
        let repo = cosa::ostree::Repo::open(&ra).unwrap();
        let fields = cosa::ostree::diff::diff_commits(&repo, a.0.trim(), b.0.trim())
            .map(|d| d.commit)
            .unwrap_or_default();
        panic!(
            "the commits differ: {} vs {}\nfiles:\n{}commit fields: {fields:?}",
            a.0.trim(),
            b.0.trim(),
            String::from_utf8_lossy(&d.stdout)
        );
    }
    // Every platform's image and the live media are there.
    for k in [
        "qemu", "metal", "metal4k", "aws", "azure", "gcp", "hyperv", "vmware", "live-iso",
        "ostree", "sbom",
    ] {
        assert!(a.1.contains_key(k), "no {k} artifact: {:?}", a.1.keys());
    }
    let differ: Vec<_> =
        a.1.iter()
            .filter(|(k, v)| b.1.get(*k) != Some(v))
            .map(|(k, (file, _))| format!("{k} ({file})"))
            .collect();
    assert_eq!(a.1.len(), b.1.len());
    assert!(
        differ.is_empty(),
        "{} of {} artifacts differ: {differ:?}",
        differ.len(),
        a.1.len()
    );
}
