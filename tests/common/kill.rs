//! The SIGKILL loop of the kill tests (tests/cli/kill_verbs.rs,
//! tests/system/kill_*.rs) and the checks they share: a verb is killed at
//! a random moment of its run, what it left is checked, and running it again
//! must complete.
//!
//! The delays come from a seeded generator: `COSA_KILL_SEED=N` repeats a
//! sequence (each verb prints the seed it used; without the variable the
//! seed is fixed per verb name).

use super::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

/// The seed of `verb`'s delays: `COSA_KILL_SEED`, else FNV-1a of the name.
pub fn seed(verb: &str) -> u64 {
    if let Ok(s) = std::env::var("COSA_KILL_SEED") {
        return s
            .parse()
            .unwrap_or_else(|_| panic!("COSA_KILL_SEED={s:?} is not a number"));
    }
    verb.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Run `cmd(round)` `rounds` times, each time SIGKILLed after a random delay
/// within `window` together with its process group (the tools it runs die
/// with it, as in a crash of the whole job); after each kill `check(round,
/// true)`, then `cmd(round)` again, which must complete, and `check(round,
/// false)`. `before(round)` prepares each round. At least half the kills must
/// hit a running process.
pub fn kill_rounds(
    verb: &str,
    rounds: usize,
    mut window: Duration,
    mut cmd: impl FnMut(usize) -> Command,
    mut before: impl FnMut(usize),
    mut check: impl FnMut(usize, bool),
) {
    let seed = seed(verb);
    eprintln!(
        "{verb}: {rounds} kills within {:.0} ms, seed {seed} (COSA_KILL_SEED={seed} repeats it)",
        window.as_secs_f64() * 1000.0
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut killed_midway = 0;
    for round in 0..rounds {
        before(round);
        let delay = Duration::from_micros(rng.gen_range(0..window.as_micros().max(1) as u64));
        let mut child = cmd(round)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed_midway += 1;
            kill_group(child.id());
            child.wait().unwrap();
            wait_group_gone(child.id());
        } else {
            // The verb was quicker than the window (a loaded machine makes
            // the timing run slow): aim earlier from now on.
            window = (window * 3 / 4).max(Duration::from_millis(1));
        }
        check(round, true);
        // The next run completes.
        run(&mut cmd(round), true);
        check(round, false);
    }
    eprintln!(
        "{verb}: {rounds} kills, {killed_midway} while it ran, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        killed_midway >= rounds / 2,
        "{verb}: only {killed_midway} kills hit a running process"
    );
}

fn kill_group(pgid: u32) {
    // SAFETY: kill(2) on a process group this test started; no memory involved.
    unsafe {
        libc::kill(-(pgid as i32), libc::SIGKILL);
    }
}

/// Wait until no process of group `pgid` is left but zombies (SIGKILL is
/// delivered at once, but a process in the middle of a write finishes it).
fn wait_group_gone(pgid: u32) {
    let t = Instant::now();
    while group_alive(pgid) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "process group {pgid} still runs 20 s after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn group_alive(pgid: u32) -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return false;
    };
    rd.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces and parens.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.len() > 2 && f[0] != "Z" && f[2] == pgid.to_string()
    })
}

/// How long `cmd` takes here (it must succeed), for the kill window.
pub fn time_of(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    run(cmd, true);
    t.elapsed()
}

/// A file as it is now: device, inode, size, mtime (s, ns).
type FileKey = (u64, u64, u64, i64, i64);

thread_local! {
    /// sha256 by [`FileKey`]: a file the checks hashed before and nothing
    /// rewrote since is not read again.
    static DIGESTS: RefCell<HashMap<FileKey, String>> = RefCell::default();
}

/// sha256 and size of `path`, from the cache when the file is unchanged.
pub fn sha256_cached(path: &Path) -> anyhow::Result<(String, u64)> {
    let md = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let key = (md.dev(), md.ino(), md.len(), md.mtime(), md.mtime_nsec());
    if let Some(sha) = DIGESTS.with(|d| d.borrow().get(&key).cloned()) {
        return Ok((sha, md.len()));
    }
    let (sha, size) = cosa::util::digest::sha256_file(path)?;
    DIGESTS.with(|d| d.borrow_mut().insert(key, sha.clone()));
    Ok((sha, size))
}

/// The build store of `wd` is consistent: builds.json parses, every listed
/// build's meta.json validates, and every artifact it lists exists with its
/// recorded size and sha256. Right after a kill (`killed`), `latest` may
/// still name the build that was newest before (builds.json is the commit
/// point; the link follows it and the next start's recovery puts it right),
/// but never a build that is not listed; otherwise it is builds.json's
/// newest. `what` names the round in failures.
pub fn check_store(wd: &Path, what: &str, killed: bool) {
    let bd = wd.join("builds");
    let bj =
        cosa::store::BuildsJson::load(&bd).unwrap_or_else(|e| panic!("{what}: builds.json: {e:#}"));
    for b in &bj.builds {
        for a in &b.arches {
            let dir = bd.join(&b.id).join(a);
            let m = cosa::store::Meta::read(&dir.join("meta.json"))
                .unwrap_or_else(|e| panic!("{what}: {}: {e:#}", b.id));
            m.validate()
                .unwrap_or_else(|e| panic!("{what}: {} meta.json: {e:#}", b.id));
            for (k, art) in &m.images {
                // Killed between recording a replacement and renaming it
                // in: the complete replacement is what meta.json records,
                // and the next run renames it in (roll forward).
                let pending = dir.join(cosa::store::builds::replacement_name(&art.path));
                if killed
                    && pending.exists()
                    && sha256_cached(&pending).is_ok_and(|(sha, _)| sha == art.sha256)
                {
                    continue;
                }
                let (sha, size) = sha256_cached(&dir.join(&art.path))
                    .unwrap_or_else(|e| panic!("{what}: {} images.{k}: {e:#}", b.id));
                assert_eq!(Some(size), art.size, "{what}: {} images.{k} size", b.id);
                assert_eq!(sha, art.sha256, "{what}: {} images.{k} sha256", b.id);
            }
        }
    }
    let latest = cosa::store::builds::read_latest(&bd);
    if killed && latest.as_deref() != bj.latest() {
        if let Some(l) = &latest {
            assert!(
                bj.builds.iter().any(|b| &b.id == l),
                "{what}: latest names {l}, which builds.json does not list"
            );
        }
    } else {
        assert_eq!(latest.as_deref(), bj.latest(), "{what}: latest");
    }
}

/// `ostree fsck` of the workdir's repo passes (when there is one).
pub fn fsck(wd: &Path) {
    if wd.join("tmp/repo/config").exists() {
        assert!(ostree(wd, &["fsck"]).contains("no errors"));
    }
}

/// Temp files and directories (`.tmp*`) anywhere under `dir`.
pub fn temps_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp") {
                out.push(e.path());
            } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    out
}

/// No temp file (`.tmp*`) is left anywhere under `dir`.
pub fn assert_no_temps(dir: &Path, what: &str) {
    let left = temps_under(dir);
    assert!(
        left.is_empty(),
        "{what}: left in {}: {left:?}",
        dir.display()
    );
}

/// The file at `path`, if there is one.
pub fn read_opt(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(d) => Some(d),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// Put the file at `path` back as `old` was (absent for `None`).
pub fn restore(path: &Path, old: &Option<Vec<u8>>) {
    match old {
        Some(d) => std::fs::write(path, d).unwrap(),
        None => {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// After a kill (`killed`) the file at `path` is whole: byte for byte what
/// it was before the run (`old`, `None`: absent) or what a completed run
/// writes (`new`); after a completed run it is `new`.
pub fn assert_old_or_new(path: &Path, old: &Option<Vec<u8>>, new: &[u8], killed: bool, what: &str) {
    let now = read_opt(path);
    let is_new = now.as_deref() == Some(new);
    if killed {
        assert!(
            is_new || now == *old,
            "{what}: {} is neither the old file nor the new one:\n{}",
            path.display(),
            String::from_utf8_lossy(now.as_deref().unwrap_or(b"(absent)"))
        );
    } else {
        assert!(
            is_new,
            "{what}: {} is not what a completed run writes",
            path.display()
        );
    }
}
