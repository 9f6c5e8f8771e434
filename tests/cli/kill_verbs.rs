//! SIGKILL at random moments of the writing verbs that need no disk image
//! or remote store (`build ostree`, `compress`, `uncompress`, `meta --set`,
//! `prune`), through the real binary: after each kill the store is valid
//! (builds.json parses and lists only complete builds whose meta.json
//! validates and whose artifacts exist with their recorded size and digest,
//! the OSTree repo passes `ostree fsck`, no half-written file is listed) and
//! running the verb again completes.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

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

/// The store is consistent: every listed build is complete and correct.
/// Right after a kill (`killed`), `latest` may still name the build that
/// was newest before (builds.json is the commit point; the link follows it
/// and the next start's recovery puts it right), but never a build that is
/// not listed; after a completed run it is builds.json's newest.
fn check(wd: &Path, round: usize, verb: &str, killed: bool) {
    let bd = wd.join("builds");
    let bj = cosa::store::BuildsJson::load(&bd)
        .unwrap_or_else(|e| panic!("{verb} round {round}: builds.json: {e:#}"));
    for b in &bj.builds {
        for a in &b.arches {
            let dir = bd.join(&b.id).join(a);
            let m = cosa::store::Meta::read(&dir.join("meta.json"))
                .unwrap_or_else(|e| panic!("{verb} round {round}: {}: {e:#}", b.id));
            m.validate().unwrap();
            for (k, art) in &m.images {
                let p = dir.join(&art.path);
                let (sha, size) = cosa::util::digest::sha256_file(&p)
                    .unwrap_or_else(|e| panic!("{verb} round {round}: images.{k}: {e:#}"));
                assert_eq!(
                    Some(size),
                    art.size,
                    "{verb} round {round}: images.{k} size"
                );
                assert_eq!(sha, art.sha256, "{verb} round {round}: images.{k} sha256");
            }
        }
    }
    let latest = cosa::store::builds::read_latest(&bd);
    if killed && latest.as_deref() != bj.latest() {
        if let Some(l) = &latest {
            assert!(
                bj.builds.iter().any(|b| &b.id == l),
                "{verb} round {round}: latest names {l}, which builds.json does not list"
            );
        }
    } else {
        assert_eq!(
            latest.as_deref(),
            bj.latest(),
            "{verb} round {round}: latest"
        );
    }
}

fn fsck(wd: &Path) {
    let repo = wd.join("tmp/repo");
    if repo.join("config").exists() {
        assert!(ostree(wd, &["fsck"]).contains("no errors"));
    }
}

/// Kill `args` after a random delay within `window`, `rounds` times; check
/// the store after each kill and that the verb then completes.
fn kill_rounds(
    wd: &Path,
    verb: &str,
    args: &[&str],
    rounds: usize,
    mut window: Duration,
    before: impl Fn(),
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(verb.len() as u64 * 7919);
    let mut killed_midway = 0;
    for round in 0..rounds {
        before();
        let delay = Duration::from_micros(rng.gen_range(0..window.as_micros() as u64));
        let mut child = cosa(wd)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        child.wait().unwrap();
        if !finished {
            killed_midway += 1;
        } else {
            // The verb was quicker than the window (a loaded machine makes
            // the timing run slow): aim earlier from now on.
            window = (window * 3 / 4).max(Duration::from_millis(1));
        }
        check(wd, round, verb, true);
        if round % 5 == 4 {
            fsck(wd);
        }
        // The next run completes.
        run(cosa(wd).args(args), true);
        check(wd, round, verb, false);
    }
    fsck(wd);
    eprintln!("{verb}: {rounds} kills, {killed_midway} while it ran");
    assert!(
        killed_midway >= rounds / 2,
        "{verb}: only {killed_midway} kills hit a running process"
    );
}

/// How long a verb takes here, for the kill window.
fn time_of(wd: &Path, args: &[&str]) -> Duration {
    let t = Instant::now();
    run(cosa(wd).args(args), true);
    t.elapsed()
}

#[test]
fn build_survives_sigkill() {
    let t = tempfile::tempdir().unwrap();
    let wd = setup(t.path());
    // The first build fills the caches; the window is what a rerun takes.
    run(cosa(&wd).args(["build", "ostree"]), true);
    let took = time_of(&wd, &["build", "ostree", "--force"]);
    kill_rounds(
        &wd,
        "build",
        &["build", "ostree", "--force"],
        20,
        took,
        || {},
    );
}

#[test]
fn compress_uncompress_survive_sigkill() {
    let t = tempfile::tempdir().unwrap();
    let wd = setup(t.path());
    run(cosa(&wd).args(["build", "ostree"]), true);
    add_artifact(&wd);
    let took = time_of(
        &wd,
        &["compress", "--compressor", "gzip", "--artifact", "qemu"],
    );
    run(cosa(&wd).args(["uncompress", "--artifact", "qemu"]), true);
    // Each round starts uncompressed for compress, compressed for uncompress.
    kill_rounds(
        &wd,
        "compress",
        &["compress", "--compressor", "gzip", "--artifact", "qemu"],
        20,
        took,
        || {
            run(cosa(&wd).args(["uncompress", "--artifact", "qemu"]), true);
        },
    );
    kill_rounds(
        &wd,
        "uncompress",
        &["uncompress", "--artifact", "qemu"],
        20,
        took,
        || {
            run(
                cosa(&wd).args(["compress", "--compressor", "gzip", "--artifact", "qemu"]),
                true,
            );
        },
    );
}

#[test]
fn prune_and_meta_set_survive_sigkill() {
    let t = tempfile::tempdir().unwrap();
    let wd = setup(t.path());
    for _ in 0..2 {
        run(cosa(&wd).args(["build", "ostree", "--force"]), true);
    }
    let took = time_of(&wd, &["prune", "--keep", "2"]);
    kill_rounds(
        &wd,
        "prune",
        &["prune", "--keep", "1"],
        20,
        took * 2,
        || {
            run(cosa(&wd).args(["build", "ostree", "--force"]), true);
        },
    );
    let took = time_of(&wd, &["meta", "--set", "summary=first"]);
    kill_rounds(
        &wd,
        "meta --set",
        &["meta", "--set", "summary=killed"],
        20,
        took,
        || {},
    );
}
