//! SIGKILL at random moments of the writing verbs that need no disk image
//! or remote store (`build ostree`, `compress`, `uncompress`, `meta --set`,
//! `prune`), through the real binary: after each kill the store is valid
//! (builds.json parses and lists only complete builds whose meta.json
//! validates and whose artifacts exist with their recorded size and digest,
//! the OSTree repo passes `ostree fsck`, no half-written file is listed) and
//! running the verb again completes.

use crate::common::kill::*;
use crate::common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A working directory with a fixture repo; `build ostree` makes builds.
fn setup(t: &Path) -> PathBuf {
    use cosa_testkit::fixture::*;
    let repo = t.join("repo");
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    make_repo(
        &repo,
        &[PkgSpec::new("app", "1")
            .file(FileSpec::file("/usr/share/app/blob", big))
            .file(FileSpec::file("/usr/bin/app", "#!/bin/sh\n").mode(0o755))],
        RepoCompression::Gz,
    )
    .unwrap();
    let cfg = config_dir(t, "ref: test/r\nrepos: [test]\npackages: [app]\n", &repo);
    init_transient(t, &cfg)
}

/// Give the newest build an 8 MiB "qemu" artifact to compress.
fn add_artifact(wd: &Path) {
    let bj = cosa::store::BuildsJson::load(&wd.join("builds")).unwrap();
    let id = bj.latest().unwrap().to_string();
    let dir = wd.join("builds").join(&id).join("x86_64");
    let path = dir.join("meta.json");
    let mut m = cosa::store::Meta::read(&path).unwrap();
    let file = format!("{}-{id}-qemu.x86_64.qcow2", m.name);
    let data: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect();
    std::fs::write(dir.join(&file), &data).unwrap();
    m.images.insert(
        "qemu".into(),
        cosa::store::meta::Artifact {
            path: file,
            sha256: cosa::util::digest::sha256_hex(&data),
            size: Some(data.len() as u64),
            ..Default::default()
        },
    );
    m.write(&path).unwrap();
}

/// `kill_rounds` of `cosa ARGS` in `wd`, checking the store after each
/// kill and completed run, and the OSTree repo every fifth round.
fn kill_verb(wd: &Path, verb: &str, args: &[&str], window: Duration, before: impl Fn()) {
    kill_rounds(
        verb,
        20,
        window,
        |_| {
            let mut c = cosa(wd);
            c.args(args);
            c
        },
        |_| before(),
        |round, killed| {
            check_store(wd, &format!("{verb} round {round}"), killed);
            if killed && round % 5 == 4 {
                fsck(wd);
            }
        },
    );
    fsck(wd);
}

#[test]
fn build_survives_sigkill() {
    let t = tempfile::tempdir().unwrap();
    let wd = setup(t.path());
    // The first build fills the caches; the window is what a rerun takes.
    run(cosa(&wd).args(["build", "ostree"]), true);
    let args = ["build", "ostree", "--force"];
    let took = time_of(cosa(&wd).args(args));
    kill_verb(&wd, "build", &args, took, || {});
}

#[test]
fn compress_uncompress_survive_sigkill() {
    let t = tempfile::tempdir().unwrap();
    let wd = setup(t.path());
    run(cosa(&wd).args(["build", "ostree"]), true);
    add_artifact(&wd);
    let compress = ["compress", "--compressor", "gzip", "--artifact", "qemu"];
    let uncompress = ["uncompress", "--artifact", "qemu"];
    let took = time_of(cosa(&wd).args(compress));
    run(cosa(&wd).args(uncompress), true);
    // Each round starts uncompressed for compress, compressed for uncompress.
    kill_verb(&wd, "compress", &compress, took, || {
        run(cosa(&wd).args(uncompress), true);
    });
    kill_verb(&wd, "uncompress", &uncompress, took, || {
        run(cosa(&wd).args(compress), true);
    });
}

#[test]
fn prune_and_meta_set_survive_sigkill() {
    let t = tempfile::tempdir().unwrap();
    let wd = setup(t.path());
    for _ in 0..2 {
        run(cosa(&wd).args(["build", "ostree", "--force"]), true);
    }
    let took = time_of(cosa(&wd).args(["prune", "--keep", "2"]));
    kill_verb(&wd, "prune", &["prune", "--keep", "1"], took * 2, || {
        run(cosa(&wd).args(["build", "ostree", "--force"]), true);
    });
    let took = time_of(cosa(&wd).args(["meta", "--set", "summary=first"]));
    kill_verb(
        &wd,
        "meta --set",
        &["meta", "--set", "summary=killed"],
        took,
        || {},
    );
}

/// `rollout`, `barrier` and `deadend` each change updates/stable.json from
/// what the one before left (rollout from none); after a kill the file is
/// the old one or the new one, byte for byte (the clock is fixed), and
/// loads; the release index is untouched; the rerun removes the temp file a
/// kill left.
#[test]
fn rollout_barrier_deadend_survive_sigkill() {
    use crate::release_common::*;
    const A: &str = "1.20260101.3.0";
    const B: &str = "1.20260105.3.0";
    const C: &str = "1.20260110.3.0";
    let e = env(false);
    publish_index(&e, &[A, B, C]);
    let index = e.publish().join("prod/streams/stable/releases.json");
    let index_bytes = std::fs::read(&index).unwrap();
    let path = e.publish().join("updates/stable.json");
    let now = T0 + 20 * DAY;
    let start = now.to_string();
    let verbs: [(&str, &[&str]); 3] = [
        (
            "rollout",
            &[
                "rollout",
                "--stream",
                "stable",
                "--version",
                B,
                "--start",
                &start,
                "--duration",
                "100m",
                "--start-percentage",
                "20%",
            ],
        ),
        (
            "barrier",
            &[
                "barrier",
                "--version",
                B,
                "--reason",
                "https://example.com/b",
            ],
        ),
        ("deadend", &["deadend", "--version", A, "--reason", "bad"]),
    ];
    for (verb, args) in verbs {
        let old = read_opt(&path);
        let took = time_of(&mut e.cosa_cmd(now, args));
        let new = std::fs::read(&path).unwrap();
        assert_ne!(old.as_deref(), Some(&new[..]), "{verb} changes nothing");
        kill_rounds(
            verb,
            20,
            took,
            |_| e.cosa_cmd(now, args),
            |_| restore(&path, &old),
            |round, killed| {
                let what = format!("{verb} round {round}");
                assert_old_or_new(&path, &old, &new, killed, &what);
                if path.exists() {
                    let u = cosa::release::updates::Updates::load(&path)
                        .unwrap_or_else(|err| panic!("{what}: {err:#}"));
                    assert_eq!(u.stream, "stable", "{what}");
                }
                assert_eq!(std::fs::read(&index).unwrap(), index_bytes, "{what}");
                if !killed {
                    assert_no_temps(&e.publish(), &what);
                }
            },
        );
    }
}
