//! Build the sample OS's RPM repository: `cargo run -p cosa-testkit --bin sample-repo -- DIR [ARCH]`.
//!
//! The result is `DIR/<arch>/` with repodata, which `manifests/sample.repo`
//! points at through `$cosa_sample_repo` (set `DNF_VAR_cosa_sample_repo=DIR`).

use std::path::PathBuf;

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).context("usage: sample-repo DIR [ARCH]")?);
    let arch = args.get(2).cloned().unwrap_or_else(|| "x86_64".into());
    cosa_testkit::sample::make_sample_repo(&dir, &arch)
}
