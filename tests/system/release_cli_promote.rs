//! `cosa promote`: a released, baked testing build becomes a stable build
//! from exactly its inputs (checked with Debian's ostree: same package list,
//! same object at every path but os-release), with refusals and --force;
//! and `cosa promote --config-only` on a real git repository.

use crate::release_common;
use release_common::*;
use std::collections::BTreeMap;

/// `ostree ls -R -C`: path -> (mode, checksum), for every entry.
fn listing(wd: &std::path::Path, commit: &str) -> BTreeMap<String, String> {
    ostree(wd, &["ls", "-R", "-C", commit])
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // d00755 0 0 0 <dirtree> <dirmeta> /path   or   -00644 0 0 12 <csum> /path [-> target]
            // A directory's dirtree checksum covers its children: compare its dirmeta only.
            let path_at = f.iter().position(|x| x.starts_with('/'))?;
            let mut id: Vec<&str> = f[..path_at].to_vec();
            if f[0].starts_with('d') && id.len() > 4 {
                id.remove(4);
            }
            Some((f[path_at].to_string(), id.join(" ")))
        })
        .collect()
}

#[test]
fn promote_reuses_the_tree_and_records_the_source() {
    let e = env(true);
    let id = e.build("testing", &[]);
    assert_eq!(id, "1.20260101.2.0");

    // Not released yet: refused.
    let o = e.cosa_at(
        T0,
        &[
            "promote", "--from", "testing", "--to", "stable", "--build", &id,
        ],
        false,
    );
    assert!(
        stderr(&o).contains("is not released on stream testing"),
        "{}",
        stderr(&o)
    );

    e.cosa_at(T0, &["release", "--stream", "testing"], true);
    // Released, but testing bakes 14 days.
    let o = e.cosa_at(
        T0 + DAY,
        &["promote", "--from", "testing", "--to", "stable"],
        false,
    );
    assert!(stderr(&o).contains("of the 14 days"), "{}", stderr(&o));
    // stable is not promoted from rawhide.
    let o = e.cosa_at(
        T0 + 20 * DAY,
        &["promote", "--from", "rawhide", "--to", "stable"],
        false,
    );
    assert!(
        stderr(&o).contains("promoted from testing"),
        "{}",
        stderr(&o)
    );

    let o = e.cosa_at(
        T0 + 15 * DAY,
        &["promote", "--from", "testing", "--to", "stable"],
        true,
    );
    let new = out(&o).trim().to_string();
    assert_eq!(new, "1.20260101.3.0", "{}", stderr(&o));

    let src = json(&e.build_dir(&id).join("meta.json"));
    let dst = json(&e.build_dir(&new).join("meta.json"));
    cosa::store::meta::validate(&dst).expect("promoted meta.json is schema-valid");
    assert_eq!(dst["buildid"], new.as_str());
    assert_eq!(dst["ostree-version"], new.as_str());
    assert_eq!(dst["fedora-coreos.parent-version"], id.as_str());
    assert_eq!(dst["fedora-coreos.parent-commit"], src["ostree-commit"]);
    assert_eq!(dst["rpm-ostree-inputhash"], src["rpm-ostree-inputhash"]);
    let sc = src["ostree-commit"].as_str().unwrap();
    let dc = dst["ostree-commit"].as_str().unwrap();
    assert_ne!(sc, dc);

    // The real ostree: the repo is sound, the commit has the new version and the source.
    assert!(ostree(&e.wd, &["fsck"]).contains("no errors"));
    let show = ostree(&e.wd, &["show", dc]);
    assert!(show.contains(&format!("Version: {new}")), "{show}");
    let from = ostree(
        &e.wd,
        &["show", "--print-metadata-key=cosa.promoted-from.commit", dc],
    );
    assert!(from.contains(sc), "{from}");
    let forced = ostree(
        &e.wd,
        &["show", "--print-metadata-key=cosa.promotion-forced", dc],
    );
    assert_eq!(forced.trim(), "false");
    // Same package list.
    let key = "--print-metadata-key=rpmostree.rpmdb.pkglist";
    assert_eq!(
        ostree(&e.wd, &["show", key, sc]),
        ostree(&e.wd, &["show", key, dc])
    );
    // Same tree but os-release.
    let (a, b) = (listing(&e.wd, sc), listing(&e.wd, dc));
    assert!(a.len() > 20, "{a:?}");
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let differ: Vec<&String> = a.keys().filter(|k| a[*k] != b[*k]).collect();
    assert!(!differ.is_empty());
    assert!(
        differ
            .iter()
            .all(|p| ["/usr/lib/os-release", "/usr/etc/os-release"].contains(&p.as_str())),
        "{differ:?}"
    );
    let os = ostree(&e.wd, &["cat", dc, "/usr/lib/os-release"]);
    assert!(os.contains(&new) && !os.contains(&id), "{os}");
    // Same lockfile, byte for byte.
    let lock = "manifest-lock.generated.x86_64.json";
    assert_eq!(
        std::fs::read(e.build_dir(&id).join(lock)).unwrap(),
        std::fs::read(e.build_dir(&new).join(lock)).unwrap()
    );
    let rec = json(&e.build_dir(&new).join("promotion.json"));
    assert_eq!(rec["from"]["build"], id.as_str());
    assert_eq!(rec["from"]["stream"], "testing");
    assert_eq!(rec["forced"], false);
    // The exported ostree tarball is the new commit.
    let art = e
        .build_dir(&new)
        .join(dst["images"]["ostree"]["path"].as_str().unwrap());
    assert!(art.to_str().unwrap().contains(&new));

    // The new build releases on stable.
    e.cosa_at(T0 + 15 * DAY, &["release", "--stream", "stable"], true);

    // --force before the bake time: next N, and the override is recorded.
    let o = e.cosa_at(
        T0 + DAY,
        &[
            "promote", "--from", "testing", "--to", "stable", "--build", &id, "--force",
        ],
        true,
    );
    let forced_v = out(&o).trim().to_string();
    assert_eq!(forced_v, "1.20260101.3.1");
    let rec = json(&e.build_dir(&forced_v).join("promotion.json"));
    assert_eq!(rec["forced"], true);
    assert!(
        rec["overridden"][0].as_str().unwrap().contains("14 days"),
        "{rec}"
    );
    let m = json(&e.build_dir(&forced_v).join("meta.json"));
    let forced = ostree(
        &e.wd,
        &[
            "show",
            "--print-metadata-key=cosa.promotion-forced",
            m["ostree-commit"].as_str().unwrap(),
        ],
    );
    assert_eq!(forced.trim(), "true");
    assert!(ostree(&e.wd, &["fsck"]).contains("no errors"));
}

fn commit_files(
    repo: &git2::Repository,
    branch: &str,
    files: &[(&str, &str)],
    msg: &str,
) -> git2::Oid {
    let parent = repo
        .find_branch(branch, git2::BranchType::Local)
        .ok()
        .map(|b| b.get().peel_to_commit().unwrap());
    let mut tb = repo
        .treebuilder(parent.as_ref().map(|p| p.tree().unwrap()).as_ref())
        .unwrap();
    for (name, content) in files {
        let blob = repo.blob(content.as_bytes()).unwrap();
        tb.insert(name, blob, 0o100644).unwrap();
    }
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(
        Some(&format!("refs/heads/{branch}")),
        &sig,
        &sig,
        msg,
        &tree,
        &parents,
    )
    .unwrap()
}

fn file_at(repo: &git2::Repository, branch: &str, name: &str) -> Option<String> {
    let c = repo
        .find_branch(branch, git2::BranchType::Local)
        .unwrap()
        .get()
        .peel_to_commit()
        .unwrap();
    let e = c
        .tree()
        .unwrap()
        .get_path(std::path::Path::new(name))
        .ok()?;
    let blob = repo.find_blob(e.id()).unwrap();
    Some(String::from_utf8(blob.content().to_vec()).unwrap())
}

#[test]
fn config_only_promotion_with_git() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("config");
    let repo = git2::Repository::init_bare(&path).unwrap();
    commit_files(
        &repo,
        "testing-devel",
        &[
            ("manifest.yaml", "stream: testing-devel\n"),
            ("a.txt", "1\n"),
        ],
        "init",
    );
    let base = repo
        .find_branch("testing-devel", git2::BranchType::Local)
        .unwrap()
        .get()
        .peel_to_commit()
        .unwrap();
    repo.branch("testing", &base, false).unwrap();
    commit_files(
        &repo,
        "testing",
        &[("manifest.yaml", "stream: testing\n")],
        "testing identity",
    );
    let src = commit_files(
        &repo,
        "testing-devel",
        &[("a.txt", "2\n"), ("b.txt", "new\n")],
        "work",
    );
    let before = repo.refname_to_id("refs/heads/testing").unwrap();

    let wd = t.path().join("wd");
    let args = [
        "promote",
        "--config-only",
        "--from",
        "testing-devel",
        "--to",
        "testing",
        "--config",
    ];
    let o = run(cosa(&wd).args(args).arg(&path), true);
    let new = out(&o).trim().to_string();
    let c = repo
        .find_commit(git2::Oid::from_str(&new).unwrap())
        .unwrap();
    assert_eq!(
        c.message().unwrap(),
        format!("tree: promote changes from testing-devel at {src}")
    );
    assert_eq!(c.parent_ids().collect::<Vec<_>>(), [before]);
    assert_eq!(
        repo.refname_to_id("refs/heads/testing")
            .unwrap()
            .to_string(),
        new
    );
    assert_eq!(file_at(&repo, "testing", "a.txt").as_deref(), Some("2\n"));
    assert_eq!(file_at(&repo, "testing", "b.txt").as_deref(), Some("new\n"));
    assert_eq!(
        file_at(&repo, "testing", "manifest.yaml").as_deref(),
        Some("stream: testing\n")
    );
    // The real git agrees.
    let log = std::process::Command::new("git")
        .arg("-C")
        .arg(&path)
        .args(["log", "-1", "--format=%s", "testing"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&log.stdout).trim(),
        format!("tree: promote changes from testing-devel at {src}")
    );

    // Nothing new to promote: no commit.
    let o = run(cosa(&wd).args(args).arg(&path), true);
    assert!(stderr(&o).contains("nothing to commit"), "{}", stderr(&o));
    assert_eq!(
        repo.refname_to_id("refs/heads/testing")
            .unwrap()
            .to_string(),
        new
    );
    // A missing branch is named.
    let o = run(
        cosa(&wd)
            .args([
                "promote",
                "--config-only",
                "--from",
                "nope",
                "--to",
                "testing",
                "--config",
            ])
            .arg(&path),
        false,
    );
    assert!(stderr(&o).contains("no branch \"nope\""), "{}", stderr(&o));
}
