//! Benchmark: compression throughput of `cosa compress`'s xz (liblzma's
//! multithreaded encoder, blocks balanced over the cores) against `xz -T0` at
//! the same preset on the same file, measured in the same run; then zstd and
//! gzip against `zstd -T0` and `gzip` at upstream's levels, for reference.
//!
//! Run with `cargo bench --bench compress_vs_xz`. Knobs (environment):
//! - `BENCH_FILE`: compress this file (e.g. a metal .raw) instead of a
//!   generated one.
//! - `BENCH_MIB` (default 512): size of the generated file, semi-compressible
//!   like a disk image (zero runs, text-like runs, incompressible runs).
//! - `BENCH_PRESET` (default 9, upstream's `xz -9`).
//!
//! The generated file is cached under `target/bench-data/`. Every output is
//! decompressed by the real tool and checked against the input's sha256.
//! Under `cargo test --benches` (no `--bench` argument) it only says so.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use cosa::image::compress::{self, Compressor, Settings};

const MIB: u64 = 1024 * 1024;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("compress_vs_xz: not run under `cargo bench`; skipping");
        return;
    }
    if let Err(e) = run() {
        eprintln!("compress_vs_xz: error: {e:#}");
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

/// A deterministic semi-compressible file of `mib` MiB: a third zero runs
/// (free space), text-like runs, and pseudo-random runs (already-compressed
/// files such as kernel modules), in 4 KiB-aligned pieces.
fn generate(path: &Path, mib: u64) -> Result<()> {
    if path.metadata().is_ok_and(|m| m.len() == mib * MIB) {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    let words: Vec<&str> = "usr lib modules kernel firmware systemd ostree deploy boot efi grub \
        config etc passwd group shadow sbin bin share locale man doc python perl glibc \
        libc so 6 x86_64 noarch rpm fedora coreos ignition afterburn zincati podman"
        .split_whitespace()
        .collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut written = 0u64;
    let mut piece = Vec::with_capacity(1 << 20);
    while written < mib * MIB {
        piece.clear();
        let len = (((next() % 256) + 1) * 4096) as usize;
        match next() % 3 {
            0 => piece.resize(len, 0),
            1 => {
                while piece.len() < len {
                    piece.extend_from_slice(
                        words[(next() % words.len() as u64) as usize].as_bytes(),
                    );
                    piece.push(if next() % 8 == 0 { b'\n' } else { b' ' });
                }
                piece.truncate(len);
            }
            _ => {
                while piece.len() < len {
                    piece.extend_from_slice(&next().to_le_bytes());
                }
                piece.truncate(len);
            }
        }
        let n = piece.len().min((mib * MIB - written) as usize);
        out.write_all(&piece[..n])?;
        written += n as u64;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Run `tool args... input > output`; seconds taken.
fn time_tool(tool: &str, args: &[&str], input: &Path, output: &Path) -> Result<f64> {
    let out = std::fs::File::create(output)?;
    let t = Instant::now();
    let st = Command::new(tool)
        .args(args)
        .arg(input)
        .stdout(out)
        .status()
        .with_context(|| format!("running {tool}"))?;
    let secs = t.elapsed().as_secs_f64();
    ensure!(st.success(), "{tool} {args:?} failed");
    Ok(secs)
}

/// sha256 of what `tool -dc file` prints.
fn tool_sha256(tool: &str, file: &Path) -> Result<String> {
    let mut dec = Command::new(tool)
        .arg("-dc")
        .arg(file)
        .stdout(Stdio::piped())
        .spawn()?;
    let out = Command::new("sha256sum")
        .stdin(dec.stdout.take().context("no stdout")?)
        .output()?;
    ensure!(
        dec.wait()?.success(),
        "{tool} -dc {} failed",
        file.display()
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

fn run() -> Result<()> {
    let preset = env_num("BENCH_PRESET", 9)? as u32;
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&data)?;
    let input: PathBuf = match std::env::var_os("BENCH_FILE") {
        Some(f) => PathBuf::from(f),
        None => {
            let mib = env_num("BENCH_MIB", 512)?;
            let p = data.join(format!("compress-{mib}m.raw"));
            generate(&p, mib)?;
            p
        }
    };
    let want = compress::file_digest(&input)?;
    let mib = want.size as f64 / MIB as f64;
    let threads = compress::cores();
    eprintln!(
        "compress_vs_xz: {} ({mib:.0} MiB), {threads} cores",
        input.display()
    );
    let work = tempfile::tempdir_in(&data)?;
    println!(
        "{:<28} {:>9} {:>10} {:>12} {:>7}",
        "compressor", "seconds", "MiB/s", "output MiB", "ratio"
    );
    let mut results = Vec::new();
    let cases: [(Compressor, u32, &str, Vec<String>); 3] = [
        (
            Compressor::Xz,
            preset,
            "xz",
            vec![format!("-{preset}"), "-T0".into(), "-c".into()],
        ),
        (
            Compressor::Zstd,
            10,
            "zstd",
            vec!["-10".into(), "-T0".into(), "-q".into(), "-c".into()],
        ),
        (Compressor::Gzip, 6, "gzip", vec!["-6".into(), "-c".into()]),
    ];
    for (c, level, tool, args) in cases {
        let ours = work.path().join(format!("cosa.{}", c.ext()));
        let theirs = work.path().join(format!("tool.{}", c.ext()));
        let s = Settings {
            compressor: c,
            level,
            threads,
        };
        let t = Instant::now();
        let o = compress::compress(&input, &ours, &s, &format!("cosa {}", s.describe()))?;
        let cosa_s = t.elapsed().as_secs_f64();
        ensure!(o.input == want, "cosa read different bytes");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let tool_s = time_tool(tool, &args, &input, &theirs)?;
        for f in [&ours, &theirs] {
            ensure!(
                tool_sha256(tool, f)? == want.sha256,
                "{} does not decompress to the input",
                f.display()
            );
        }
        let tool_size = std::fs::metadata(&theirs)?.len();
        let row = |name: String, secs: f64, size: u64| {
            println!(
                "{name:<28} {secs:>9.2} {:>10.2} {:>12.1} {:>6.1}%",
                mib / secs,
                size as f64 / MIB as f64,
                100.0 * size as f64 / want.size as f64
            )
        };
        row(format!("cosa {}", s.describe()), cosa_s, o.output.size);
        row(format!("{tool} {}", args.join(" ")), tool_s, tool_size);
        results.push((tool, cosa_s, tool_s));
        std::fs::remove_file(&ours)?;
        std::fs::remove_file(&theirs)?;
    }
    for (tool, cosa_s, tool_s) in results {
        println!(
            "compress_vs_xz: {tool}: cosa {:.2} MiB/s, {tool} {:.2} MiB/s, ratio {:.2}x",
            mib / cosa_s,
            mib / tool_s,
            tool_s / cosa_s
        );
    }
    Ok(())
}
