//! Helpers the side-by-side benchmarks share.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, ensure};

/// The number in environment variable `name`, else `default`.
pub fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// `CARGO_TARGET_DIR`, else `<crate>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// `COSA_BIN`, else the binary cargo built alongside the bench (the bench
/// profile inherits release, so this is `target/release/cosa`).
pub fn cosa_bin() -> Result<PathBuf> {
    let p = std::env::var_os("COSA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cosa")));
    ensure!(
        p.is_file(),
        "cosa binary {} not found (set COSA_BIN or run through cargo bench)",
        p.display()
    );
    Ok(p)
}

/// The median of `times` (the mean of the middle two for an even count).
pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    let m = times.len() / 2;
    if times.len() % 2 == 1 {
        times[m]
    } else {
        (times[m - 1] + times[m]) / 2
    }
}
