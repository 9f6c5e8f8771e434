//! Benchmark: every x86_64 platform image of one build at once (`cosa
//! osbuild --all`: one deployment, one base disk per geometry, platforms
//! finished in parallel) next to the sum of the single-platform times
//! (`cosa buildextend-<platform>` one after another), measured in the same
//! run on the sample OS. The goal: close to sum / cores.
//!
//! Run with `cargo bench --bench osbuild_parallel`. Under `cargo test
//! --benches` it only says so and exits.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, ensure};

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("osbuild_parallel: not run under `cargo bench`; skipping");
        return;
    }
    if let Err(e) = run() {
        eprintln!("osbuild_parallel: error: {e:#}");
        std::process::exit(1);
    }
}

fn cosa(wd: &Path, repo: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cosa"));
    c.env("COSA_WORKDIR", wd)
        .env("CI", "true")
        .env("DNF_VAR_cosa_sample_repo", repo);
    c
}

fn sh(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn run() -> Result<()> {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/osbuild-v1");
    let wd = base.join("wd");
    let repo = base.join("sample-repo");
    if !base.join("ready").exists() {
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base)?;
        cosa_testkit::sample::make_sample_repo(&repo, "x86_64")?;
        let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
        sh(cosa(&wd, &repo)
            .args(["init", "--transient"])
            .arg(manifests))?;
        sh(cosa(&wd, &repo).args(["build", "ostree"]))?;
        std::fs::write(base.join("ready"), "")?;
    }
    let platforms = cosa::image::platform_names();
    let mut sum = 0.0;
    let mut rows = Vec::new();
    for p in &platforms {
        let t = Instant::now();
        sh(cosa(&wd, &repo).args(["buildextend", p]))?;
        let s = t.elapsed().as_secs_f64();
        sum += s;
        rows.push((p.to_string(), s));
    }
    let t = Instant::now();
    sh(cosa(&wd, &repo).args(["osbuild", "--all"]))?;
    let all = t.elapsed().as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    for (p, s) in &rows {
        println!("{p:<14} {s:>7.2}s");
    }
    println!(
        "osbuild_parallel: {} platforms: osbuild --all {all:.2}s, sum of single-platform runs {sum:.2}s, sum/cores {:.2}s ({} cores), speedup {:.2}x",
        platforms.len(),
        sum / cores,
        cores,
        sum / all
    );
    // Keep the disk: each run leaves 22 images in the build.
    let _ = std::fs::remove_dir_all(&base);
    Ok(())
}
