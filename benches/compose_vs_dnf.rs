//! Benchmark: `cosa compose rootfs` against `dnf --installroot` on the same
//! generated repository, side by side in one run, from a warm cache.
//!
//! Run with `cargo bench --bench compose_vs_dnf`. Knobs (environment):
//! - `BENCH_PKGS` (default 400) and `BENCH_MIB` (default 1024): size of the
//!   generated repository. A quick run: `BENCH_PKGS=40 BENCH_MIB=50`.
//! - `BENCH_RUNS` (default 3): timed runs per tool; the median is reported.
//! - `COSA_BIN`: the cosa binary to measure (default: the one cargo built
//!   for this bench, i.e. `target/release/cosa`).
//! - `BENCH_KEEP=1`: keep the run directory (trees, workdir) for inspection.
//! - `BENCH_ONLY=cosa` or `BENCH_ONLY=dnf`: run one side only (no ratio).
//! - `BENCH_REQUIRE_GOAL=1`: exit non-zero when the ratio misses the goal
//!   (off by default: timings on a shared machine are noisy).
//!
//! The repository (a dependency web of packages with versioned, virtual and
//! file requires; many small packages with nested files, a few with 20-80 MB
//! files; symlinks, hardlinks, %config; zstd payloads, a few xz) is made once
//! from `cosa_testkit::fixture` specs and `createrepo_c`, and cached under
//! `target/bench-data/repo-<GEN_VERSION>-<pkgs>p-<mib>m-<arch>`; bump
//! [`GEN_VERSION`] whenever the generator changes. Both tools then run from a
//! warm cache: cosa after an untimed `cosa fetch`, dnf after an untimed
//! install that fills its cachedir. The goal from the issue: cosa at least 3
//! times faster than dnf.
//!
//! Under `cargo test --benches` (no `--bench` argument) it only says so and
//! exits, so the test suite never runs a minutes-long benchmark.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use cosa_testkit::fixture::{self, FileSpec, PkgSpec, RepoCompression};
use rayon::prelude::*;

/// Part of the cache key of the generated repository.
const GEN_VERSION: &str = "v1";
/// Seed of the generator: the same knobs always give the same repository.
const SEED: u64 = 0x5eed_c05a_2024_0001;
const MIB: u64 = 1024 * 1024;
/// Target compose: the goal is cosa >= this many times faster than dnf.
const GOAL_RATIO: f64 = 3.0;

mod common;
use common::{cosa_bin, env_num, median, target_dir};
use cosa::util::cmd::CommandRunExt;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("compose_vs_dnf: not run under `cargo bench`; skipping");
        return;
    }
    if let Err(e) = run() {
        eprintln!("compose_vs_dnf: error: {e:#}");
        std::process::exit(1);
    }
}

struct Params {
    pkgs: usize,
    mib: u64,
    runs: usize,
    keep: bool,
    require_goal: bool,
    /// Run only this side (`cosa` or `dnf`).
    only: Option<String>,
}

fn run() -> Result<()> {
    let started = Instant::now();
    let p = Params {
        pkgs: env_num("BENCH_PKGS", 400usize)?,
        mib: env_num("BENCH_MIB", 1024u64)?,
        runs: env_num("BENCH_RUNS", 3usize)?,
        keep: std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1"),
        require_goal: std::env::var("BENCH_REQUIRE_GOAL").is_ok_and(|v| v == "1"),
        only: std::env::var("BENCH_ONLY").ok().filter(|v| !v.is_empty()),
    };
    if let Some(o) = &p.only {
        ensure!(
            o == "cosa" || o == "dnf",
            "BENCH_ONLY={o:?}: want cosa or dnf"
        );
    }
    ensure!(p.pkgs >= 10, "BENCH_PKGS must be at least 10");
    ensure!(p.mib >= 5, "BENCH_MIB must be at least 5");
    ensure!(p.runs >= 1, "BENCH_RUNS must be at least 1");
    let arch = cosa::util::host_arch();
    let cosa = if p.only.as_deref() == Some("dnf") {
        PathBuf::new()
    } else {
        cosa_bin()?
    };
    let data = target_dir().join("bench-data");
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;

    let repo = ensure_repo(&data, &p, arch)?;
    let run_dir = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&data)
        .context("creating the run directory")?;
    eprintln!("compose_vs_dnf: run directory {}", run_dir.path().display());
    let config = write_config(run_dir.path(), &repo, arch)?;

    let mut tools = Vec::new();
    if p.only.as_deref() != Some("dnf") {
        tools.push(Tool::Cosa {
            bin: cosa,
            wd: run_dir.path().join("cosa-workdir"),
            config,
        });
    }
    if p.only.as_deref() != Some("cosa") {
        tools.push(Tool::Dnf {
            cache: dnf_cache_dir(&data, &repo.dir),
        });
    }
    let cx = Ctx {
        run: run_dir.path(),
        repo: &repo,
        arch,
    };
    let sides = measure(&cx, &tools, p.runs)?;

    print_table(&repo, &sides);
    if let Some(Tool::Cosa { bin, wd, .. }) = tools.first() {
        rebuild_timing(bin, wd)?;
    }
    if p.keep {
        let kept = run_dir.keep();
        eprintln!("compose_vs_dnf: kept {}", kept.display());
    }
    eprintln!(
        "compose_vs_dnf: benchmark wall time {:.0}s",
        started.elapsed().as_secs_f64()
    );
    for side in &sides {
        ensure!(
            side.packages == repo.pkgs,
            "{} installed {} packages, but the closure of the top-level packages is all {} in the repository",
            side.tool,
            side.packages,
            repo.pkgs
        );
    }
    let [cosa_res, dnf_res] = &sides[..] else {
        return Ok(());
    };
    if cosa_res.packages != dnf_res.packages {
        bail!(
            "package counts differ: cosa installed {}, dnf installed {} (the benchmark compares different work)",
            cosa_res.packages,
            dnf_res.packages
        );
    }
    let (c, d) = (cosa_res.median(), dnf_res.median());
    let ratio = d.as_secs_f64() / c.as_secs_f64();
    println!(
        "compose_vs_dnf: cosa {:.2}s, dnf {:.2}s, ratio {:.2}x (goal >= {GOAL_RATIO}x){}",
        c.as_secs_f64(),
        d.as_secs_f64(),
        ratio,
        if ratio >= GOAL_RATIO {
            ""
        } else {
            " -- GOAL NOT MET"
        }
    );
    ensure!(
        ratio >= GOAL_RATIO || !p.require_goal,
        "ratio {ratio:.2}x is below the goal of {GOAL_RATIO}x (BENCH_REQUIRE_GOAL=1)"
    );
    Ok(())
}

/// `cosa build` on the same workdir: a first build (compose, postprocess,
/// commit of the whole tree), then a rebuild with no changes, which must
/// answer from the input hash alone (issue goal: under a second).
fn rebuild_timing(bin: &Path, wd: &Path) -> Result<()> {
    settle()?;
    let t = Instant::now();
    cosa_cmd(bin, wd, &["build", "--skip-scripts", "--skip-prune"]).run_capture("cosa build")?;
    let first = t.elapsed();
    let t = Instant::now();
    let out =
        cosa_cmd(bin, wd, &["build", "--skip-scripts"]).run_capture("cosa build (no change)")?;
    let again = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        err.contains("No changes"),
        "the second cosa build did not detect that nothing changed:\n{err}"
    );
    println!(
        "compose_vs_dnf: cosa build {:.2}s; rebuild with no changes {:.2}s (goal < 1s)",
        first.as_secs_f64(),
        again.as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// The generated repository
// ---------------------------------------------------------------------------

/// A generated repository on disk and what the benchmark needs to know of it.
struct Repo {
    dir: PathBuf,
    /// Top-level packages whose dependency closure is every package.
    leaves: Vec<String>,
    pkgs: usize,
    /// Sum of the .rpm file sizes.
    rpm_bytes: u64,
}

/// Reuse the cached repository for these knobs, or generate it.
fn ensure_repo(data: &Path, p: &Params, arch: &str) -> Result<Repo> {
    let dir = data.join(format!("repo-{GEN_VERSION}-{}p-{}m-{arch}", p.pkgs, p.mib));
    let stamp = dir.join(".complete");
    if !stamp.exists() {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing half-made {}", dir.display()))?;
        }
        let tmp = data.join(format!(".gen-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        // dnf's cache of an older repository by this name is stale.
        let stale = dnf_cache_dir(data, &dir);
        if stale.exists() {
            std::fs::remove_dir_all(&stale)
                .with_context(|| format!("removing {}", stale.display()))?;
        }
        generate(&tmp, p, arch)?;
        std::fs::rename(&tmp, &dir)
            .with_context(|| format!("moving {} to {}", tmp.display(), dir.display()))?;
        std::fs::write(&stamp, GEN_VERSION)?;
    } else {
        eprintln!("compose_vs_dnf: reusing {}", dir.display());
    }
    let leaves = std::fs::read_to_string(dir.join("leaves.txt"))
        .with_context(|| format!("reading {}/leaves.txt", dir.display()))?
        .lines()
        .map(String::from)
        .collect();
    let mut pkgs = 0;
    let mut rpm_bytes = 0;
    for e in std::fs::read_dir(&dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().ends_with(".rpm") {
            pkgs += 1;
            rpm_bytes += e.metadata()?.len();
        }
    }
    ensure!(
        pkgs == p.pkgs,
        "{} holds {pkgs} rpms, wanted {}",
        dir.display(),
        p.pkgs
    );
    Ok(Repo {
        dir,
        leaves,
        pkgs,
        rpm_bytes,
    })
}

/// xorshift64*: fast, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 step, so that nearby seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "kernel", "systemd", "network",
    "storage", "crypto", "python", "perl", "glib", "dbus", "polkit", "udev", "mount", "socket",
    "thread", "buffer", "config", "device", "driver", "module", "signal", "stream", "target",
    "struct", "return", "static", "const", "unsigned", "int", "char", "void", "size", "error",
    "value", "index", "offset", "length", "header", "payload", "object", "symbol", "section",
    "table", "string", "number", "status", "option", "version", "release", "package", "library",
    "runtime", "compile", "linker", "loader", "memory", "region", "mapping", "page", "cache",
    "queue", "timer", "clock", "event", "handler", "callback", "context", "state", "parser",
    "token", "lexer", "format", "encode", "decode", "reader", "writer", "channel", "message",
    "service", "daemon", "client", "server", "session", "policy", "rule", "filter", "chain",
];

/// `len` bytes of semi-compressible data: runs of words from a small
/// vocabulary (text, tables, symbol names) mixed with runs of random bytes
/// (code, compressed assets). zstd shrinks it about 3 times, like binaries.
fn content(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 600);
    while v.len() < len {
        let r = rng.next();
        if !r.is_multiple_of(4) {
            for _ in 0..(8 + (r >> 8) % 56) {
                v.extend_from_slice(rng.pick(WORDS).as_bytes());
                v.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
            }
        } else {
            for _ in 0..(4 + (r >> 8) % 28) {
                v.extend_from_slice(&rng.next().to_le_bytes());
            }
        }
    }
    v.truncate(len);
    v
}

/// Everything decided about one package before its payload is made.
struct Plan {
    index: usize,
    name: String,
    version: String,
    release: String,
    requires: Vec<String>,
    provides: Vec<String>,
    /// Owns `/usr/bin/<name>` (someone requires that path).
    bin: bool,
    bytes: u64,
    nfiles: usize,
    large: bool,
    compression: &'static str,
}

/// The dependency web and the size of every package. Package i is always
/// required by some package j < i (its "parent"), so the closure of the
/// first `nleaves` packages is the whole repository.
fn plan(p: &Params) -> (Vec<Plan>, usize) {
    let n = p.pkgs;
    let mut rng = Rng::new(SEED ^ ((n as u64) << 20) ^ p.mib);
    let nleaves = (n / 20).clamp(2, 20);
    let prefixes = ["lib", "", "", "python3-", "perl-", "", "lib", "golang-"];
    let suffixes = ["", "", "", "-libs", "-tools", "-common", "-data", ""];
    let mut plans: Vec<Plan> = (0..n)
        .map(|i| {
            let name = format!(
                "{}{}{}{}",
                rng.pick(&prefixes),
                rng.pick(WORDS),
                i,
                rng.pick(&suffixes)
            );
            Plan {
                index: i,
                name,
                version: format!(
                    "{}.{}.{}",
                    rng.range(0, 12),
                    rng.range(0, 30),
                    rng.range(0, 9)
                ),
                release: format!("{}.fc41", rng.range(1, 5)),
                requires: vec![],
                provides: vec![],
                bin: false,
                bytes: 0,
                nfiles: 0,
                large: false,
                compression: "zstd",
            }
        })
        .collect();

    // Edges: (from, to) with from < to; out-degree at most 5.
    const MAX_REQ: usize = 5;
    let mut out = vec![0usize; n];
    let mut edges = Vec::new();
    for i in nleaves..n {
        let open: Vec<usize> = (0..i).filter(|&j| out[j] < MAX_REQ).collect();
        let parent = *rng.pick(&open);
        out[parent] += 1;
        edges.push((parent, i));
    }
    for (j, deg) in out.iter_mut().enumerate() {
        if j + 1 >= n {
            break;
        }
        for _ in 0..rng.below(3) {
            let to = rng.range(j as u64 + 1, n as u64 - 1) as usize;
            if *deg < MAX_REQ && !edges.contains(&(j, to)) {
                *deg += 1;
                edges.push((j, to));
            }
        }
    }
    // How each edge is expressed, as real packages do.
    for (from, to) in edges {
        let (tname, tver, trel) = {
            let t = &plans[to];
            (t.name.clone(), t.version.clone(), t.release.clone())
        };
        let major = tver.split('.').next().unwrap_or("0").to_string();
        let dep = match rng.below(100) {
            0..=54 => tname,
            55..=74 => format!("{tname} >= {major}.0"),
            75..=79 => format!("{tname} = {tver}-{trel}"),
            80..=94 => {
                let soname = format!("lib{tname}.so.{major}()(64bit)");
                if !plans[to].provides.contains(&soname) {
                    plans[to].provides.push(soname.clone());
                }
                soname
            }
            _ => {
                plans[to].bin = true;
                format!("/usr/bin/{tname}")
            }
        };
        if !plans[from].requires.contains(&dep) {
            plans[from].requires.push(dep);
        }
    }

    // Sizes: a few large packages hold half the bytes; the rest is spread
    // over small packages with a long tail.
    let total = p.mib * MIB;
    let nlarge = (n / 50).max(1);
    let mut large_idx: Vec<usize> = Vec::new();
    while large_idx.len() < nlarge {
        let i = rng.below(n as u64) as usize;
        if !large_idx.contains(&i) {
            large_idx.push(i);
        }
    }
    let per_large = total / 2 / nlarge as u64;
    let weights: Vec<f64> = (0..n).map(|_| (rng.unit() * 4.0).exp()).collect();
    let small_sum: f64 = (0..n)
        .filter(|i| !large_idx.contains(i))
        .map(|i| weights[i])
        .sum();
    let small_total = (total - per_large * nlarge as u64) as f64;
    for (i, pl) in plans.iter_mut().enumerate() {
        if large_idx.contains(&i) {
            pl.large = true;
            pl.bytes = per_large;
            pl.nfiles = per_large.div_ceil(80 * MIB).max(1) as usize;
            if per_large / (pl.nfiles as u64 + 1) >= 20 * MIB && rng.chance(0.5) {
                pl.nfiles += 1;
            }
        } else {
            pl.bytes = (small_total * weights[i] / small_sum) as u64;
            let most = (pl.bytes / 256).max(3) as usize;
            pl.nfiles = (rng.range(10, 300) as usize).min(most);
            // Fedora builds with zstd; a few packages still ship xz
            // (kept small: xz -9 is slow to make).
            if i % 15 == 7 && pl.bytes < 2 * MIB {
                pl.compression = "xz";
            }
        }
    }
    (plans, nleaves)
}

/// Split `total` into `n` parts with random (long-tailed) weights.
fn split(rng: &mut Rng, total: u64, n: usize) -> Vec<usize> {
    let w: Vec<f64> = (0..n).map(|_| (rng.unit() * 3.0).exp()).collect();
    let s: f64 = w.iter().sum();
    w.iter().map(|x| (total as f64 * x / s) as usize).collect()
}

/// The package spec with its payload.
fn spec(pl: &Plan) -> PkgSpec {
    let mut rng = Rng::new(SEED.wrapping_add(pl.index as u64 * 7919));
    let n = &pl.name;
    let mut s = PkgSpec::new(n, &pl.version)
        .release(&pl.release)
        .arch(cosa::util::host_arch())
        .compression(pl.compression);
    s.requires = pl.requires.clone();
    s.provides = pl.provides.clone();
    if pl.bin || rng.chance(0.3) {
        let len = rng.range(2000, 60000) as usize;
        let body = content(&mut rng, len);
        s = s.file(FileSpec::file(&format!("/usr/bin/{n}"), body).mode(0o755));
    }
    if pl.large {
        s = s.file(FileSpec::dir(&format!("/usr/lib64/{n}")));
        for (k, len) in split(&mut rng, pl.bytes, pl.nfiles).into_iter().enumerate() {
            // Large files are evenly sized: 20-80 MB each at the default size.
            let len = len.max((pl.bytes / pl.nfiles as u64 / 2) as usize);
            s = s.file(FileSpec::file(
                &format!("/usr/lib64/{n}/blob{k}.bin"),
                content(&mut rng, len),
            ));
        }
        return s;
    }
    // Nested directories under the package's own roots.
    let roots = [format!("/usr/share/{n}"), format!("/usr/lib64/{n}")];
    let mut dirs: Vec<String> = Vec::new();
    for r in &roots {
        s = s.file(FileSpec::dir(r));
        dirs.push(r.clone());
        for a in 0..rng.range(0, 3) {
            let d1 = format!("{r}/{}{a}", rng.pick(WORDS));
            s = s.file(FileSpec::dir(&d1));
            dirs.push(d1.clone());
            for b in 0..rng.range(0, 2) {
                let d2 = format!("{d1}/{}{b}", rng.pick(WORDS));
                s = s.file(FileSpec::dir(&d2));
                dirs.push(d2);
            }
        }
    }
    let sizes = split(&mut rng, pl.bytes, pl.nfiles);
    let mut first_lib = None;
    for (k, len) in sizes.into_iter().enumerate() {
        let d = rng.pick(&dirs).clone();
        let ext = rng.pick(&["so", "py", "pl", "txt", "dat", "xml", "json", "mo"]);
        let path = format!("{d}/{}{k}.{ext}", rng.pick(WORDS));
        if first_lib.is_none() && d.starts_with("/usr/lib64/") {
            first_lib = Some(path.clone());
        }
        s = s.file(FileSpec::file(&path, content(&mut rng, len.max(1))));
    }
    // Symlinks, as .so links and alternatives are.
    if let Some(lib) = first_lib {
        let rel = lib.trim_start_matches("/usr/lib64/").to_string();
        s = s.file(FileSpec::symlink(&format!("/usr/lib64/lib{n}.so"), &rel));
    }
    s = s.file(FileSpec::symlink(
        &format!("/usr/share/{n}/current"),
        &format!("/usr/lib64/{n}"),
    ));
    // A few hardlinks, as in git or coreutils' [ and test.
    if pl.index % 25 == 3 {
        let body = content(&mut rng, 4096);
        for k in 0..3 {
            s = s.file(
                FileSpec::file(&format!("/usr/libexec/{n}/tool{k}"), body.clone())
                    .mode(0o755)
                    .hardlink("tools"),
            );
        }
    }
    if pl.index.is_multiple_of(9) {
        s = s.file(
            FileSpec::file(
                &format!("/etc/{n}/{n}.conf"),
                format!("# {n} config\nenabled = true\n"),
            )
            .config(),
        );
    }
    s
}

/// Build every package in parallel, run createrepo_c, and check a few with rpm.
fn generate(dir: &Path, p: &Params, arch: &str) -> Result<()> {
    eprintln!(
        "compose_vs_dnf: generating {} packages, {} MiB of payload into {} (once; cached)",
        p.pkgs,
        p.mib,
        dir.display()
    );
    let t = Instant::now();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (plans, nleaves) = plan(p);
    // Largest first: better packing of the parallel work.
    let mut order: Vec<&Plan> = plans.iter().collect();
    order.sort_by_key(|pl| std::cmp::Reverse(pl.bytes));
    let done = std::sync::atomic::AtomicUsize::new(0);
    let files: u64 = order
        .par_iter()
        .map(|pl| -> Result<u64> {
            let s = spec(pl);
            let nfiles = s.files.len() as u64;
            s.build(dir)?;
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if d.is_multiple_of(50) || d == plans.len() {
                eprintln!(
                    "compose_vs_dnf:   {d}/{} packages built ({:.0}s)",
                    plans.len(),
                    t.elapsed().as_secs_f64()
                );
            }
            Ok(nfiles)
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .sum();
    fixture::createrepo(dir, RepoCompression::Gz)?;
    let leaves: Vec<&str> = plans[..nleaves].iter().map(|p| p.name.as_str()).collect();
    std::fs::write(dir.join("leaves.txt"), leaves.join("\n") + "\n")?;
    verify_sample(dir, &plans, arch)?;
    eprintln!(
        "compose_vs_dnf: generated {} packages ({files} entries) in {:.1}s",
        plans.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `rpm -qp` a large, an xz and a small package: name, requires, payload
/// compressor and file count must be what was planned.
fn verify_sample(dir: &Path, plans: &[Plan], arch: &str) -> Result<()> {
    let mut sample: Vec<&Plan> = Vec::new();
    sample.extend(plans.iter().find(|p| p.large));
    sample.extend(plans.iter().find(|p| p.compression == "xz"));
    sample.extend(plans.iter().find(|p| !p.large && p.requires.len() >= 2));
    for pl in sample {
        let path = dir.join(format!(
            "{}-{}-{}.{arch}.rpm",
            pl.name, pl.version, pl.release
        ));
        let out = Command::new("rpm")
            .args(["-qp", "--nosignature", "--nodigest", "--qf"])
            .arg("%{NAME}|%{PAYLOADCOMPRESSOR}|[%{REQUIRENEVRS},]|[%{FILENAMES}\n]")
            .arg(&path)
            .output()
            .context("running rpm -qp")?;
        ensure!(
            out.status.success(),
            "rpm -qp {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.splitn(4, '|');
        let (name, comp, reqs, files) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let want_comp = if pl.compression == "xz" { "xz" } else { "zstd" };
        ensure!(name == pl.name, "{}: name {name:?}", path.display());
        ensure!(
            comp == want_comp,
            "{}: payload {comp:?}, want {want_comp}",
            path.display()
        );
        for r in &pl.requires {
            ensure!(
                reqs.contains(r.as_str()),
                "{}: requires {reqs:?} lack {r:?}",
                path.display()
            );
        }
        let nfiles = files.lines().count();
        ensure!(
            nfiles == spec(pl).files.len(),
            "{}: rpm lists {nfiles} files, planned {}",
            path.display(),
            spec(pl).files.len()
        );
        eprintln!(
            "compose_vs_dnf:   rpm -qp {}: {comp}, {} requires, {nfiles} files: ok",
            pl.name,
            pl.requires.len()
        );
    }
    Ok(())
}

/// `manifest.yaml` and `bench.repo` for cosa.
fn write_config(run: &Path, repo: &Repo, arch: &str) -> Result<PathBuf> {
    let dir = run.join("config");
    std::fs::create_dir_all(&dir)?;
    let mut m = format!(
        "# Generated by benches/compose_vs_dnf.rs\nref: bench/{arch}/compose\nreleasever: \"1\"\nrepos:\n  - bench\nrecommends: false\npackages:\n",
    );
    for l in &repo.leaves {
        m.push_str(&format!("  - {l}\n"));
    }
    std::fs::write(dir.join("manifest.yaml"), m)?;
    std::fs::write(
        dir.join("bench.repo"),
        format!(
            "[bench]\nname=bench\nbaseurl=file://{}\nenabled=1\ngpgcheck=0\n",
            repo.dir.display()
        ),
    )?;
    Ok(dir)
}

// ---------------------------------------------------------------------------
// The two sides
// ---------------------------------------------------------------------------

struct Side {
    tool: &'static str,
    times: Vec<Duration>,
    packages: usize,
    /// `du -sb` of the tree of the last run.
    bytes: u64,
}

impl Side {
    fn median(&self) -> Duration {
        median(self.times.clone())
    }
}

/// Write back what the previous run left dirty (without dropping the page
/// cache), so that no run pays for the one before it.
fn settle() -> Result<()> {
    let t = Instant::now();
    Command::new("sync").run_stdout("sync")?;
    if t.elapsed() > Duration::from_millis(100) {
        eprintln!(
            "compose_vs_dnf:   (sync {:.1}s, untimed)",
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn du_bytes(path: &Path) -> Result<u64> {
    let out = Command::new("du").arg("-sb").arg(path).run_stdout("du")?;
    out.split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("parsing du output {out:?}"))
}

/// What every run needs to know.
struct Ctx<'a> {
    run: &'a Path,
    repo: &'a Repo,
    arch: &'a str,
}

/// One side of the comparison.
enum Tool {
    Cosa {
        bin: PathBuf,
        /// The cosa working directory (made by `cosa init`).
        wd: PathBuf,
        /// The config dir holding manifest.yaml and bench.repo.
        config: PathBuf,
    },
    Dnf {
        /// dnf's cachedir, kept across benchmark runs.
        cache: PathBuf,
    },
}

impl Tool {
    fn name(&self) -> &'static str {
        match self {
            Tool::Cosa { .. } => "cosa",
            Tool::Dnf { .. } => "dnf",
        }
    }

    /// Untimed: fill the tool's caches, then install once so that both
    /// tools start the timed runs equally warm.
    fn warm_up(&self, cx: &Ctx) -> Result<()> {
        if let Tool::Cosa { bin, wd, config } = self {
            eprintln!("compose_vs_dnf: cosa = {}", bin.display());
            cosa_cmd(bin, wd, &["init", "--transient"])
                .arg(config)
                .run_stdout("cosa init")?;
            let t = Instant::now();
            cosa_cmd(bin, wd, &["fetch"]).run_stdout("cosa fetch")?;
            eprintln!(
                "compose_vs_dnf: cosa fetch (warm-up, untimed) {:.2}s",
                t.elapsed().as_secs_f64()
            );
        }
        let dest = cx.run.join(format!("{}-warm", self.name()));
        let t = self.install(cx, &dest)?;
        eprintln!(
            "compose_vs_dnf: {} warm-up install (untimed) {:.2}s",
            self.name(),
            t.as_secs_f64()
        );
        // Trees are kept until every run is done: on this ext4 (mounted with
        // discard) a freshly deleted 1 GiB tree costs the next writer seconds
        // of kernel time, which would be charged to whichever tool runs next.
        Ok(())
    }

    /// Install the top-level packages into the fresh directory `dest`,
    /// returning the wall time of the tool's process.
    fn install(&self, cx: &Ctx, dest: &Path) -> Result<Duration> {
        let mut cmd = match self {
            Tool::Cosa { bin, wd, .. } => {
                // compose rootfs wants DEST missing or empty: it is missing.
                let mut c = cosa_cmd(bin, wd, &["compose", "rootfs", "--skip-scripts"]);
                c.arg(dest);
                c
            }
            Tool::Dnf { cache } => {
                std::fs::create_dir_all(dest)?;
                dnf_cmd(dest, cache, cx.repo, cx.arch)
            }
        };
        settle()?;
        let t = Instant::now();
        let out = cmd.run_capture(&format!("{} install", self.name()))?;
        let el = t.elapsed();
        // cosa's own summary ("Composed N packages (F files, B) into ...").
        let err = String::from_utf8_lossy(&out.stderr);
        if let Some(line) = err.lines().rfind(|l| l.starts_with("Composed ")) {
            eprintln!("compose_vs_dnf:   cosa: {line}");
        }
        Ok(el)
    }

    /// How many packages the last install put into `dest`.
    fn installed(&self, cx: &Ctx, dest: &Path) -> Result<usize> {
        match self {
            Tool::Cosa { wd, .. } => {
                let report = wd.join(format!("tmp/compose-report.{}.json", cx.arch));
                let v: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(&report)
                        .with_context(|| format!("reading {}", report.display()))?,
                )
                .with_context(|| format!("parsing {}", report.display()))?;
                let n = v["packages"]
                    .as_u64()
                    .with_context(|| format!("{} has no numeric `packages`", report.display()))?;
                Ok(n as usize)
            }
            Tool::Dnf { .. } => rpm_count(dest),
        }
    }
}

/// Warm both tools up, then run them in turns (ABBA order, so that neither
/// always runs first on a machine whose load drifts).
fn measure(cx: &Ctx, tools: &[Tool], runs: usize) -> Result<Vec<Side>> {
    for tool in tools {
        tool.warm_up(cx)?;
    }
    let mut sides: Vec<Side> = tools
        .iter()
        .map(|t| Side {
            tool: t.name(),
            times: vec![],
            packages: 0,
            bytes: 0,
        })
        .collect();
    for i in 0..runs {
        let mut order: Vec<usize> = (0..tools.len()).collect();
        if i % 2 == 1 {
            order.reverse();
        }
        for k in order {
            let (tool, side) = (&tools[k], &mut sides[k]);
            let dest = cx.run.join(format!("{}-root-{i}", tool.name()));
            let el = tool.install(cx, &dest)?;
            eprintln!(
                "compose_vs_dnf: {} run {}: {:.2}s",
                tool.name(),
                i + 1,
                el.as_secs_f64()
            );
            side.times.push(el);
            let n = tool.installed(cx, &dest)?;
            ensure!(
                i == 0 || n == side.packages,
                "{} installed {n} packages in run {}, {} before",
                tool.name(),
                i + 1,
                side.packages
            );
            side.packages = n;
            side.bytes = du_bytes(&dest)?;
        }
    }
    Ok(sides)
}

/// `cosa --workdir WD ARGS...`
fn cosa_cmd(bin: &Path, wd: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.arg("--workdir").arg(wd).args(args);
    c
}

/// `dnf install` of the leaves into `root`, with every host setting shut out.
fn dnf_cmd(root: &Path, cache: &Path, repo: &Repo, arch: &str) -> Command {
    let mut c = Command::new("dnf");
    c.arg(format!("--installroot={}", root.display()))
        .arg("--setopt=reposdir=/dev/null")
        .arg(format!(
            "--repofrompath=bench,file://{}",
            repo.dir.display()
        ))
        .arg("--repo=bench")
        .arg(format!("--setopt=cachedir={}", cache.display()))
        .arg("--setopt=keepcache=True")
        .arg("--nogpgcheck")
        .arg("--releasever=1")
        .arg(format!("--forcearch={arch}"))
        .arg("--setopt=install_weak_deps=False")
        .arg("--setopt=tsflags=noscripts")
        .args(["-y", "-q", "install"])
        .args(&repo.leaves);
    c
}

fn rpm_count(root: &Path) -> Result<usize> {
    let out = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .arg("-qa")
        .run_stdout("rpm -qa")?;
    Ok(out.lines().filter(|l| !l.starts_with("gpg-pubkey")).count())
}

/// dnf's cachedir for the repository in `repo_dir` (kept across runs: warm).
fn dnf_cache_dir(data: &Path, repo_dir: &Path) -> PathBuf {
    data.join(format!(
        "dnf-cache-{}",
        repo_dir.file_name().unwrap_or_default().to_string_lossy()
    ))
}

fn print_table(repo: &Repo, sides: &[Side]) {
    println!();
    println!(
        "compose_vs_dnf: repository {} packages, {:.1} MiB of .rpm files, {} top-level packages",
        repo.pkgs,
        repo.rpm_bytes as f64 / MIB as f64,
        repo.leaves.len()
    );
    let runs = sides.iter().map(|s| s.times.len()).max().unwrap_or(0);
    let mut head = format!("{:<6}", "tool");
    for i in 0..runs {
        head.push_str(&format!(" {:>9}", format!("run {}", i + 1)));
    }
    head.push_str(&format!(
        " {:>9} {:>9} {:>12}",
        "median", "packages", "tree MiB"
    ));
    println!("{head}");
    for s in sides {
        let mut line = format!("{:<6}", s.tool);
        for t in &s.times {
            line.push_str(&format!(" {:>8.2}s", t.as_secs_f64()));
        }
        line.push_str(&format!(
            " {:>8.2}s {:>9} {:>12.1}",
            s.median().as_secs_f64(),
            s.packages,
            s.bytes as f64 / MIB as f64
        ));
        println!("{line}");
    }
}
