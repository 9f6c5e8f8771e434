//! Benchmark: cosa's native OSTree writer against `ostree commit`, side by
//! side in one run, committing the same generated tree into fresh archive
//! repositories.
//!
//! Run with `cargo bench --bench ostree_commit`. Knobs (environment):
//! - `BENCH_MIB` (default 1024): size of the generated tree.
//! - `BENCH_RUNS` (default 3): timed runs per tool; the median is reported.
//!
//! The tree (many small files, some medium, a few large; semi-compressible
//! content; nested directories, symlinks) is generated once and cached under
//! `target/bench-data/ostree-tree-<GEN_VERSION>-<mib>m`. Each run commits
//! into a fresh repository; all repositories are kept until the end so no
//! run pays for deleting the previous one, then removed. A second commit of
//! the unchanged tree into an existing repository (every object present) is
//! timed too. The goal from the issue: cosa at least 2 times faster.
//!
//! Under `cargo test --benches` (no `--bench` argument) it only says so and
//! exits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use cosa::ostree::{Commit, Repo};
use rayon::prelude::*;

const GEN_VERSION: &str = "v1";
const SEED: u64 = 0x057e_ec0a_2024;
const MIB: u64 = 1024 * 1024;
const GOAL_RATIO: f64 = 2.0;
/// 2024-05-01T00:00:00Z, given to both tools so their trees and commits match.
const TS: u64 = 1_714_521_600;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("ostree_commit: not run under `cargo bench`; skipping");
        return;
    }
    if let Err(e) = run() {
        eprintln!("ostree_commit: error: {e:#}");
        std::process::exit(1);
    }
}

fn env_num(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

const WORDS: &[&str] = &[
    "kernel", "module", "systemd", "unit", "service", "library", "symbol", "version", "config",
    "path", "usr", "lib64", "share", "locale", "message", "error", "warning", "function", "return",
    "static",
];

/// Semi-compressible content: runs of words (text-like) and of random bytes
/// (binary-like), roughly 2.5:1 under deflate like an OS tree.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed);
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        let run = r.range(16, 512) as usize;
        if r.next() % 100 < 30 {
            for _ in 0..run / 8 {
                out.extend_from_slice(&r.next().to_le_bytes());
            }
        } else {
            let end = out.len() + run;
            while out.len() < end {
                out.extend_from_slice(WORDS[(r.next() % WORDS.len() as u64) as usize].as_bytes());
                out.push(if r.next().is_multiple_of(8) {
                    b'\n'
                } else {
                    b' '
                });
            }
        }
    }
    out.truncate(len);
    out
}

/// (relative path, size, seed) for every file, until `total` bytes.
fn plan(total: u64) -> Vec<(PathBuf, u64, u64)> {
    let mut r = Rng(SEED);
    let mut files = Vec::new();
    let mut sum = 0;
    let mut i = 0u64;
    while sum < total {
        let p = r.next() % 1000;
        let size = if p < 850 {
            r.range(0, 32 << 10)
        } else if p < 990 {
            r.range(32 << 10, MIB)
        } else {
            r.range(MIB, 48 * MIB)
        };
        let dir = format!("usr/lib/d{:02}/s{:02}", r.next() % 40, r.next() % 12);
        files.push((PathBuf::from(dir).join(format!("f{i}.bin")), size, r.next()));
        sum += size;
        i += 1;
    }
    files
}

fn tree(mib: u64) -> Result<PathBuf> {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    let dir = base.join(format!("ostree-tree-{GEN_VERSION}-{mib}m"));
    if dir.join(".complete").exists() {
        return Ok(dir.join("tree"));
    }
    eprintln!(
        "ostree_commit: generating a {mib} MiB tree in {}",
        dir.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
    let root = dir.join("tree");
    let files = plan(mib * MIB);
    files
        .par_iter()
        .try_for_each(|(rel, size, seed)| -> Result<()> {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().expect("has parent"))?;
            std::fs::write(&p, content(*size as usize, *seed))
                .with_context(|| format!("writing {}", p.display()))
        })?;
    for (i, (rel, _, _)) in files.iter().enumerate().step_by(50) {
        let link = root.join(format!("usr/bin/link{i}"));
        std::fs::create_dir_all(root.join("usr/bin"))?;
        std::os::unix::fs::symlink(Path::new("..").join(rel.strip_prefix("usr")?), link)?;
    }
    std::fs::create_dir_all(root.join("var/empty"))?;
    std::fs::write(dir.join(".complete"), b"")?;
    Ok(root)
}

fn cosa_commit(repo: &Repo, tree: &Path) -> Result<String> {
    let root = repo.write_dir(tree)?;
    let c = repo.write_commit(&Commit {
        parent: None,
        subject: String::new(),
        body: String::new(),
        timestamp: TS,
        metadata: BTreeMap::new(),
        root,
    })?;
    repo.set_ref("x", &c)?;
    Ok(c)
}

fn ostree_commit(repo: &Path, tree: &Path) -> Result<String> {
    let out = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args([
            "commit",
            "--branch=x",
            "--no-bindings",
            "--timestamp=2024-05-01T00:00:00Z",
        ])
        .arg(format!("--tree=dir={}", tree.display()))
        .output()
        .context("running ostree commit (apt-get install ostree)")?;
    ensure!(
        out.status.success(),
        "ostree commit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

fn init_ostree(repo: &Path) -> Result<()> {
    let st = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(["init", "--mode=archive"])
        .status()?;
    ensure!(st.success(), "ostree init failed");
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn run() -> Result<()> {
    let mib = env_num("BENCH_MIB", 1024)?;
    let runs = env_num("BENCH_RUNS", 3)?.max(1) as usize;
    let tree = tree(mib)?;
    let work = tempfile::Builder::new()
        .prefix("ostree-bench-")
        .tempdir_in(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data"))?;
    // Warm the page cache so neither side pays for the first read.
    let _ = Command::new("tar")
        .arg("-cf")
        .arg("/dev/null")
        .arg(&tree)
        .stderr(std::process::Stdio::null())
        .status();

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut our_commit, mut their_commit) = (String::new(), String::new());
    for i in 0..runs {
        let repo = Repo::init_archive(&work.path().join(format!("cosa-{i}")))?;
        let t = Instant::now();
        our_commit = cosa_commit(&repo, &tree)?;
        ours.push(t.elapsed());
        let orepo = work.path().join(format!("ostree-{i}"));
        init_ostree(&orepo)?;
        let t = Instant::now();
        their_commit = ostree_commit(&orepo, &tree)?;
        theirs.push(t.elapsed());
        eprintln!(
            "ostree_commit: run {i}: cosa {:.2?}, ostree {:.2?}",
            ours[i], theirs[i]
        );
    }
    ensure!(
        our_commit == their_commit,
        "commits differ: cosa {our_commit}, ostree {their_commit}"
    );

    let repo = Repo::open(&work.path().join("cosa-0"))?;
    let t = Instant::now();
    ensure!(
        cosa_commit(&repo, &tree)? == our_commit,
        "recommit changed the checksum"
    );
    let again = t.elapsed();
    let t = Instant::now();
    ostree_commit(&work.path().join("ostree-0"), &tree)?;
    let oagain = t.elapsed();

    let (c, o) = (median(ours).as_secs_f64(), median(theirs).as_secs_f64());
    println!("ostree_commit: tree {mib} MiB, {runs} runs, commit {our_commit} (identical in both)");
    println!(
        "ostree_commit: cosa {c:.2}s, ostree {o:.2}s, ratio {:.2}x (goal >= {GOAL_RATIO}x)",
        o / c
    );
    println!(
        "ostree_commit: unchanged tree into the same repo: cosa {:.2}s, ostree {:.2}s",
        again.as_secs_f64(),
        oagain.as_secs_f64()
    );
    drop(work);
    Ok(())
}
