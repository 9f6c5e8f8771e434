//! Benchmark: loading repodata and resolving a large request, cosa against
//! dnf, on a synthetic repository the size of Fedora's, side by side in one
//! run.
//!
//! Run with `cargo bench --bench resolve_vs_dnf`. Knobs (environment):
//! - `BENCH_PKGS` (default 70000) and `BENCH_FILES` (default 1500000): the
//!   repository's packages and filelists entries. A quick run:
//!   `BENCH_PKGS=5000 BENCH_FILES=100000`.
//! - `BENCH_REQUEST` (default 450): packages named in the request.
//! - `BENCH_RUNS` (default 3): timed runs per tool; the median is reported.
//! - `COSA_BIN`: the cosa binary to measure (default: the one cargo built
//!   for this bench, i.e. `target/release/cosa`).
//! - `BENCH_REQUIRE_GOAL=1`: exit non-zero when the ratio misses the goal.
//!
//! The repository is metadata only (primary.xml.gz, filelists.xml.gz,
//! repomd.xml), written straight from a seeded generator: a layer of core
//! libraries with sonames, file and virtual provides, and a large layer of
//! applications that require them by name, soname, versioned capability,
//! file (in primary and only in filelists) and rich dependency; noarch,
//! x86_64 and i686 (multilib) packages, several versions of some names,
//! obsoletes and conflicts. It is cached under
//! `target/bench-data/resolve-<GEN_VERSION>-<pkgs>p-<files>f`.
//!
//! What is timed, per tool, from a warm cache (an untimed run first):
//! - cosa: `cosa fetch --dry-run --json` (load the repo through the cache,
//!   resolve, print the set; downloads nothing);
//! - dnf: `dnf install --assumeno --setopt=tsflags=justdb` (load the repo
//!   through its cache, resolve, print the transaction, stop before any
//!   download). A justdb transaction would then also download the packages
//!   and write an rpm database, which is not resolution and which the
//!   metadata-only repository cannot feed.
//!
//! Both answers must agree on the number of packages. The cold first load
//! (no cache) of each tool is printed too, for information. The goal from the
//! issue: cosa at least 3 times faster than dnf with cached repodata.
//!
//! Under `cargo test --benches` (no `--bench` argument) it only says so and
//! exits.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// Part of the cache key of the generated repository.
const GEN_VERSION: &str = "v1";
const SEED: u64 = 0x5eed_0011_2026_1207;
const GOAL_RATIO: f64 = 3.0;
/// Packages of the core layer (libraries, interpreters, shells).
const CORE: usize = 3000;

mod common;
use common::{cosa_bin, env_num, median, target_dir};
use cosa::util::cmd::CommandRunExt;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("resolve_vs_dnf: not run under `cargo bench`; skipping");
        return;
    }
    if let Err(e) = run() {
        eprintln!("resolve_vs_dnf: error: {e:#}");
        std::process::exit(1);
    }
}

struct Params {
    pkgs: usize,
    files: usize,
    request: usize,
    runs: usize,
}

fn run() -> Result<()> {
    let p = Params {
        pkgs: env_num("BENCH_PKGS", 70_000usize)?,
        files: env_num("BENCH_FILES", 1_500_000usize)?,
        request: env_num("BENCH_REQUEST", 450usize)?,
        runs: env_num("BENCH_RUNS", 3usize)?,
    };
    let require_goal = std::env::var("BENCH_REQUIRE_GOAL").is_ok_and(|v| v == "1");
    ensure!(
        p.pkgs >= CORE * 2,
        "BENCH_PKGS must be at least {}",
        CORE * 2
    );
    ensure!(p.files >= p.pkgs, "BENCH_FILES must be at least BENCH_PKGS");
    ensure!(p.runs >= 1, "BENCH_RUNS must be at least 1");
    let bin = cosa_bin()?;
    let data = target_dir().join("bench-data");
    std::fs::create_dir_all(&data)?;
    let repo = ensure_repo(&data, &p)?;
    let run = tempfile::Builder::new()
        .prefix("resolve-run-")
        .tempdir_in(&data)?;
    let config = write_config(run.path(), &repo)?;
    let wd = run.path().join("cosa-workdir");
    Command::new(&bin)
        .arg("--workdir")
        .arg(&wd)
        .args(["init", "--transient"])
        .arg(&config)
        .run_capture("cosa init")?;
    let dnf_cache = run.path().join("dnf-cache");
    let dnf_root = run.path().join("dnf-root");
    std::fs::create_dir_all(&dnf_root)?;

    let cosa = || {
        let mut c = Command::new(&bin);
        c.arg("--workdir")
            .arg(&wd)
            .args(["fetch", "--dry-run", "--json", "--arch", "x86_64"]);
        c
    };
    let dnf = || dnf_cmd(&dnf_root, &dnf_cache, &repo);

    // Cold: first load, no cache on either side.
    let (cold_cosa, n_cosa) = time_cosa(&mut cosa())?;
    let (cold_dnf, n_dnf) = time_dnf(&mut dnf())?;
    eprintln!(
        "resolve_vs_dnf: cold (no cache): cosa {:.2}s ({n_cosa} packages), dnf {:.2}s ({n_dnf} packages)",
        cold_cosa.as_secs_f64(),
        cold_dnf.as_secs_f64()
    );
    ensure!(
        n_cosa == n_dnf,
        "cosa resolved {n_cosa} packages, dnf {n_dnf}: the tools disagree"
    );
    let mut tc = Vec::new();
    let mut td = Vec::new();
    for i in 0..p.runs {
        // ABBA order, so that neither always runs first.
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            if k == 0 {
                let (t, n) = time_cosa(&mut cosa())?;
                ensure!(n == n_cosa, "cosa resolved {n} packages, {n_cosa} before");
                eprintln!(
                    "resolve_vs_dnf: cosa run {}: {:.2}s",
                    i + 1,
                    t.as_secs_f64()
                );
                tc.push(t);
            } else {
                let (t, n) = time_dnf(&mut dnf())?;
                ensure!(n == n_dnf, "dnf resolved {n} packages, {n_dnf} before");
                eprintln!("resolve_vs_dnf: dnf run {}: {:.2}s", i + 1, t.as_secs_f64());
                td.push(t);
            }
        }
    }
    let (c, d) = (median(tc), median(td));
    let ratio = d.as_secs_f64() / c.as_secs_f64();
    println!(
        "resolve_vs_dnf: {} packages, {} filelists entries, request of {} -> {n_cosa} packages",
        repo.pkgs,
        repo.files,
        repo.request.len()
    );
    println!(
        "resolve_vs_dnf: cached repodata: cosa {:.2}s, dnf {:.2}s, ratio {ratio:.2}x (goal >= {GOAL_RATIO}x){}",
        c.as_secs_f64(),
        d.as_secs_f64(),
        if ratio >= GOAL_RATIO {
            ""
        } else {
            " -- GOAL NOT MET"
        }
    );
    println!(
        "resolve_vs_dnf: cold: cosa {:.2}s, dnf {:.2}s, ratio {:.2}x",
        cold_cosa.as_secs_f64(),
        cold_dnf.as_secs_f64(),
        cold_dnf.as_secs_f64() / cold_cosa.as_secs_f64()
    );
    ensure!(
        ratio >= GOAL_RATIO || !require_goal,
        "ratio {ratio:.2}x is below the goal of {GOAL_RATIO}x (BENCH_REQUIRE_GOAL=1)"
    );
    Ok(())
}

/// Time `cosa fetch --dry-run --json`; the number of packages it resolved.
fn time_cosa(cmd: &mut Command) -> Result<(Duration, usize)> {
    let t = Instant::now();
    let out = cmd.run_capture("cosa fetch --dry-run")?;
    let el = t.elapsed();
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing cosa's --json output")?;
    let n = v.as_array().context("cosa --json: not an array")?.len();
    Ok((el, n))
}

/// Time `dnf install --assumeno`; the number of packages in its transaction.
fn time_dnf(cmd: &mut Command) -> Result<(Duration, usize)> {
    let t = Instant::now();
    let out = cmd.output().context("starting dnf")?;
    let el = t.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    // --assumeno ends with "Operation aborted." and exit status 1.
    let n = text
        .lines()
        .find_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("Install")?.trim_start();
            rest.strip_suffix("Packages")
                .or_else(|| rest.strip_suffix("Package"))?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .with_context(|| {
            format!(
                "dnf printed no \"Install N Packages\" line ({}):\n{}\n{}",
                out.status,
                tail(&text),
                tail(&String::from_utf8_lossy(&out.stderr))
            )
        })?;
    Ok((el, n))
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn dnf_cmd(root: &Path, cache: &Path, repo: &Repo) -> Command {
    let mut c = Command::new("dnf");
    c.arg(format!("--installroot={}", root.display()))
        .arg("--setopt=reposdir=/dev/null")
        .arg(format!(
            "--repofrompath=bench,file://{}",
            repo.dir.display()
        ))
        .arg("--repo=bench")
        .arg(format!("--setopt=cachedir={}", cache.display()))
        .arg("--nogpgcheck")
        .arg("--releasever=1")
        .arg("--forcearch=x86_64")
        .arg("--setopt=install_weak_deps=False")
        .arg("--setopt=installonlypkgs=")
        .arg("--setopt=tsflags=justdb")
        .args(["--assumeno", "install"])
        .args(&repo.request);
    c
}

fn write_config(run: &Path, repo: &Repo) -> Result<PathBuf> {
    let dir = run.join("config");
    std::fs::create_dir_all(&dir)?;
    let mut m = String::from(
        "# Generated by benches/resolve_vs_dnf.rs\nref: bench/x86_64/resolve\nreleasever: \"1\"\nrepos:\n  - bench\nrecommends: false\npackages:\n",
    );
    for r in &repo.request {
        writeln!(m, "  - {r}")?;
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
// The generated repository
// ---------------------------------------------------------------------------

struct Repo {
    dir: PathBuf,
    pkgs: usize,
    files: usize,
    request: Vec<String>,
}

fn ensure_repo(data: &Path, p: &Params) -> Result<Repo> {
    let dir = data.join(format!("resolve-{GEN_VERSION}-{}p-{}f", p.pkgs, p.files));
    let request_file = dir.join("request.txt");
    let stamp = dir.join(".complete");
    if !stamp.exists() {
        let t = Instant::now();
        eprintln!("resolve_vs_dnf: generating {}", dir.display());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("repodata"))?;
        let (pkgs, files) = generate(&dir, p)?;
        std::fs::write(&stamp, format!("{pkgs} {files}\n"))?;
        eprintln!(
            "resolve_vs_dnf: generated in {:.0}s",
            t.elapsed().as_secs_f64()
        );
    }
    let counts = std::fs::read_to_string(&stamp)?;
    let mut it = counts.split_whitespace().map(|s| s.parse::<usize>());
    let (Some(Ok(pkgs)), Some(Ok(files))) = (it.next(), it.next()) else {
        bail!("{} is damaged: remove {}", stamp.display(), dir.display());
    };
    let mut request: Vec<String> = std::fs::read_to_string(&request_file)?
        .lines()
        .map(str::to_string)
        .collect();
    request.truncate(p.request);
    Ok(Repo {
        dir,
        pkgs,
        files,
        request,
    })
}

/// One generated package.
struct Pkg {
    name: String,
    epoch: u32,
    version: String,
    release: String,
    arch: &'static str,
    provides: Vec<Dep>,
    requires: Vec<Dep>,
    conflicts: Vec<Dep>,
    obsoletes: Vec<Dep>,
    recommends: Vec<Dep>,
    files: Vec<String>,
}

/// (name, flags, epoch:version-release) of a dependency.
struct Dep {
    name: String,
    cmp: Option<(&'static str, String)>,
}

fn dep(name: impl Into<String>) -> Dep {
    Dep {
        name: name.into(),
        cmp: None,
    }
}

fn vdep(name: impl Into<String>, flags: &'static str, ver: impl Into<String>) -> Dep {
    Dep {
        name: name.into(),
        cmp: Some((flags, ver.into())),
    }
}

/// The package plan: names, layers and dependencies.
fn plan(p: &Params, rng: &mut StdRng) -> Vec<Pkg> {
    let words = [
        "lib", "py", "perl", "rust", "go", "gtk", "qt", "x", "font", "tex", "nodejs", "ghc", "R",
        "php", "java", "kde", "gnome", "vim", "emacs", "ruby",
    ];
    let mut out: Vec<Pkg> = Vec::with_capacity(p.pkgs);
    // Files per package: an average of files/pkgs, skewed (most small, a
    // few large).
    let avg = p.files as f64 / p.pkgs as f64;
    let mut budget = p.files;
    for i in 0..p.pkgs {
        let core = i < CORE;
        let word = words[i % words.len()];
        let name = if core {
            format!("lib{word}{i}")
        } else {
            format!("{word}-app{i}")
        };
        let arch: &'static str = if core || rng.gen_bool(0.7) {
            "x86_64"
        } else {
            "noarch"
        };
        let version = format!(
            "{}.{}.{}",
            rng.gen_range(0..10),
            rng.gen_range(0..30),
            rng.gen_range(0..5)
        );
        let release = format!("{}.fc41", rng.gen_range(1..6));
        let epoch = u32::from(rng.gen_bool(0.05));
        let evr = if epoch > 0 {
            format!("1:{version}-{release}")
        } else {
            format!("{version}-{release}")
        };
        let mut provides = vec![vdep(name.clone(), "EQ", evr.clone())];
        let mut files = Vec::new();
        if core {
            provides.push(dep(format!("lib{word}{i}.so.1()(64bit)")));
            if i % 7 == 0 {
                provides.push(vdep(format!("cap{i}"), "EQ", format!("{}.0", i % 5)));
            }
            files.push(format!("/usr/lib64/lib{word}{i}.so.1"));
            files.push(format!("/usr/lib64/lib{word}{i}.so.1.0.0"));
            if i % 5 == 0 {
                files.push(format!("/usr/bin/{name}-tool"));
            }
            if i % 11 == 0 {
                files.push(format!("/usr/share/{name}/data.conf"));
            }
        } else if rng.gen_bool(0.3) {
            files.push(format!("/usr/bin/{name}"));
        }
        if rng.gen_bool(0.1) {
            files.push(format!("/etc/{name}.conf"));
        }
        let want = ((-rng.gen_range(0.001f64..1.0).ln()) * avg).round() as usize;
        let want = want
            .clamp(1, 4000)
            .min(budget.saturating_sub(p.pkgs - i - 1).max(1));
        let mut k = 0;
        while files.len() < want {
            files.push(format!("/usr/share/{name}/d{}/f{k}", k / 50));
            k += 1;
        }
        budget = budget.saturating_sub(files.len());

        // Requires: core packages depend on a few lower core packages;
        // applications on core libraries (by soname, name, capability or
        // file) and now and then on another application.
        let mut requires = Vec::new();
        let nreq = if core {
            rng.gen_range(0..3)
        } else {
            rng.gen_range(1..7)
        };
        for _ in 0..nreq {
            if i == 0 {
                break;
            }
            let j = if core {
                rng.gen_range(0..i)
            } else if i == CORE || rng.gen_bool(0.9) {
                rng.gen_range(0..CORE)
            } else {
                rng.gen_range(CORE..i)
            };
            let t = &out[j];
            let d = match rng.gen_range(0..10) {
                0..=3 if j < CORE => dep(t.provides[1].name.clone()),
                4 => {
                    let v = &t.version;
                    vdep(
                        t.name.clone(),
                        "GE",
                        v.split('.').next().unwrap_or("0").to_string(),
                    )
                }
                5 if t.files.iter().any(|f| f.starts_with("/usr/bin/")) => dep(t
                    .files
                    .iter()
                    .find(|f| f.starts_with("/usr/bin/"))
                    .unwrap()
                    .clone()),
                // A file only filelists names.
                6 if t.files.iter().any(|f| f.starts_with("/usr/share/")) => dep(t
                    .files
                    .iter()
                    .find(|f| f.starts_with("/usr/share/"))
                    .unwrap()
                    .clone()),
                7 if j < CORE && j % 7 == 0 => vdep(format!("cap{j}"), "GE", "0"),
                8 if j < CORE && i > 1 => {
                    let k = rng.gen_range(0..CORE.min(i));
                    dep(format!("({} or {})", out[j].name, out[k].name))
                }
                _ => dep(t.name.clone()),
            };
            requires.push(d);
        }
        let mut conflicts = Vec::new();
        let mut obsoletes = Vec::new();
        if !core && rng.gen_bool(0.01) {
            obsoletes.push(vdep(format!("{name}-legacy"), "LT", "2"));
            provides.push(vdep(format!("{name}-legacy"), "EQ", "2"));
        }
        // Conflicts with versions no package has ("0" is older than any
        // generated version): rules for the solver, never a dead end.
        if !core && i > CORE && rng.gen_bool(0.005) {
            conflicts.push(vdep(out[rng.gen_range(CORE..i)].name.clone(), "LT", "0"));
        }
        let recommends = if rng.gen_bool(0.05) && i > 0 {
            vec![dep(out[rng.gen_range(0..i)].name.clone())]
        } else {
            vec![]
        };
        out.push(Pkg {
            name,
            epoch,
            version,
            release,
            arch,
            provides,
            requires,
            conflicts,
            obsoletes,
            recommends,
            files,
        });
    }
    out
}

/// Older versions of some names and i686 builds of some core libraries (as
/// Fedora's x86_64 repository carries multilib packages).
fn extras(pkgs: &[Pkg], rng: &mut StdRng) -> Vec<Pkg> {
    let mut out = Vec::new();
    for (i, p) in pkgs.iter().enumerate() {
        if rng.gen_bool(0.03) {
            out.push(Pkg {
                name: p.name.clone(),
                epoch: 0,
                version: "0.1".into(),
                release: "1.fc40".into(),
                arch: p.arch,
                provides: vec![vdep(p.name.clone(), "EQ", "0.1-1.fc40")],
                requires: vec![],
                conflicts: vec![],
                obsoletes: vec![],
                recommends: vec![],
                files: p.files.iter().take(3).cloned().collect(),
            });
        }
        if i < CORE && i % 4 == 0 {
            out.push(Pkg {
                name: p.name.clone(),
                epoch: p.epoch,
                version: p.version.clone(),
                release: p.release.clone(),
                arch: "i686",
                provides: vec![
                    vdep(p.name.clone(), "EQ", evr_of(p)),
                    dep(p.provides[1].name.replace("()(64bit)", "")),
                ],
                requires: vec![],
                conflicts: vec![],
                obsoletes: vec![],
                recommends: vec![],
                files: p
                    .files
                    .iter()
                    .map(|f| f.replace("/usr/lib64/", "/usr/lib/"))
                    .collect(),
            });
        }
    }
    out
}

fn evr_of(p: &Pkg) -> String {
    if p.epoch > 0 {
        format!("{}:{}-{}", p.epoch, p.version, p.release)
    } else {
        format!("{}-{}", p.version, p.release)
    }
}

/// Files createrepo_c lists in primary.xml as well as in filelists.
fn in_primary(f: &str) -> bool {
    f.starts_with("/etc/") || f.contains("/bin/") || f == "/usr/lib/sendmail"
}

fn write_deps(x: &mut String, tag: &str, deps: &[Dep]) {
    if deps.is_empty() {
        return;
    }
    let _ = write!(x, "<rpm:{tag}>");
    for d in deps {
        match &d.cmp {
            None => {
                let _ = write!(x, "<rpm:entry name=\"{}\"/>", d.name);
            }
            Some((flags, evr)) => {
                let (e, rest) = match evr.split_once(':') {
                    Some((e, r)) => (e, r),
                    None => ("0", evr.as_str()),
                };
                let (v, r) = match rest.split_once('-') {
                    Some((v, r)) => (v, Some(r)),
                    None => (rest, None),
                };
                let _ = write!(
                    x,
                    "<rpm:entry name=\"{}\" flags=\"{flags}\" epoch=\"{e}\" ver=\"{v}\"",
                    d.name
                );
                if let Some(r) = r {
                    let _ = write!(x, " rel=\"{r}\"");
                }
                x.push_str("/>");
            }
        }
    }
    let _ = write!(x, "</rpm:{tag}>");
}

/// Write primary, filelists and repomd; returns (packages, file entries) and
/// writes the request list.
fn generate(dir: &Path, p: &Params) -> Result<(usize, usize)> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut pkgs = plan(p, &mut rng);
    let extra = extras(&pkgs, &mut rng);
    pkgs.extend(extra);
    let gz = |name: &str| -> Result<flate2::write::GzEncoder<std::io::BufWriter<std::fs::File>>> {
        let f = std::fs::File::create(dir.join("repodata").join(name))?;
        Ok(flate2::write::GzEncoder::new(
            std::io::BufWriter::new(f),
            flate2::Compression::fast(),
        ))
    };
    let mut primary = gz("primary.xml.gz")?;
    let mut filelists = gz("filelists.xml.gz")?;
    let mut open_p = Sha256::new();
    let mut open_f = Sha256::new();
    let (mut size_p, mut size_f) = (0u64, 0u64);
    let put = |w: &mut dyn std::io::Write, h: &mut Sha256, n: &mut u64, s: &str| -> Result<()> {
        w.write_all(s.as_bytes())?;
        h.update(s.as_bytes());
        *n += s.len() as u64;
        Ok(())
    };
    let head_p = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{}\">\n",
        pkgs.len()
    );
    let head_f = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"{}\">\n",
        pkgs.len()
    );
    put(&mut primary, &mut open_p, &mut size_p, &head_p)?;
    put(&mut filelists, &mut open_f, &mut size_f, &head_f)?;
    let mut nfiles = 0;
    let mut x = String::new();
    for (i, pk) in pkgs.iter().enumerate() {
        let pkgid = hex(&Sha256::digest(format!("{SEED}-{i}-{}", pk.name)));
        let rel = format!(
            "Packages/{}/{}-{}-{}.{}.rpm",
            pk.name.chars().next().unwrap_or('x'),
            pk.name,
            pk.version,
            pk.release,
            pk.arch
        );
        x.clear();
        let _ = write!(
            x,
            "<package type=\"rpm\"><name>{}</name><arch>{}</arch><version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/><checksum type=\"sha256\" pkgid=\"YES\">{pkgid}</checksum><summary>{} package</summary><description>Synthetic package {i}.</description><packager>bench</packager><url>https://example.invalid/</url><time file=\"1700000000\" build=\"1700000000\"/><size package=\"{}\" installed=\"{}\" archive=\"{}\"/><location href=\"{rel}\"/><format><rpm:license>MIT</rpm:license><rpm:vendor>bench</rpm:vendor><rpm:group>Unspecified</rpm:group><rpm:buildhost>bench</rpm:buildhost><rpm:sourcerpm>{}-{}-{}.src.rpm</rpm:sourcerpm><rpm:header-range start=\"4504\" end=\"20000\"/>",
            pk.name,
            pk.arch,
            pk.epoch,
            pk.version,
            pk.release,
            pk.name,
            20_000 + i * 7,
            80_000 + i * 13,
            81_000 + i * 13,
            pk.name,
            pk.version,
            pk.release
        );
        write_deps(&mut x, "provides", &pk.provides);
        write_deps(&mut x, "requires", &pk.requires);
        write_deps(&mut x, "conflicts", &pk.conflicts);
        write_deps(&mut x, "obsoletes", &pk.obsoletes);
        write_deps(&mut x, "recommends", &pk.recommends);
        for f in pk.files.iter().filter(|f| in_primary(f)) {
            let _ = write!(x, "<file>{f}</file>");
        }
        x.push_str("</format></package>\n");
        put(&mut primary, &mut open_p, &mut size_p, &x)?;
        x.clear();
        let _ = write!(
            x,
            "<package pkgid=\"{pkgid}\" name=\"{}\" arch=\"{}\"><version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/>",
            pk.name, pk.arch, pk.epoch, pk.version, pk.release
        );
        for f in &pk.files {
            let _ = write!(x, "<file>{f}</file>");
        }
        nfiles += pk.files.len();
        x.push_str("</package>\n");
        put(&mut filelists, &mut open_f, &mut size_f, &x)?;
    }
    put(&mut primary, &mut open_p, &mut size_p, "</metadata>\n")?;
    put(&mut filelists, &mut open_f, &mut size_f, "</filelists>\n")?;
    primary.finish()?.flush()?;
    filelists.finish()?.flush()?;

    let mut repomd = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n<revision>1700000000</revision>\n",
    );
    for (kind, file, open, open_size) in [
        ("primary", "primary.xml.gz", open_p, size_p),
        ("filelists", "filelists.xml.gz", open_f, size_f),
    ] {
        let bytes = std::fs::read(dir.join("repodata").join(file))?;
        let _ = write!(
            repomd,
            "<data type=\"{kind}\"><checksum type=\"sha256\">{}</checksum><open-checksum type=\"sha256\">{}</open-checksum><location href=\"repodata/{file}\"/><timestamp>1700000000</timestamp><size>{}</size><open-size>{open_size}</open-size></data>\n",
            hex(&Sha256::digest(&bytes)),
            hex(&open.finalize()),
            bytes.len()
        );
    }
    repomd.push_str("</repomd>\n");
    std::fs::write(dir.join("repodata/repomd.xml"), repomd)?;

    // The request: applications and a few core libraries, by name, one of
    // them per name.
    let mut names: Vec<&str> = pkgs[..p.pkgs]
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| !n.ends_with("-legacy"))
        .collect();
    names.shuffle(&mut rng);
    std::fs::write(
        dir.join("request.txt"),
        names[..p.request.min(names.len())].join("\n"),
    )?;
    Ok((pkgs.len(), nfiles))
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}
