//! Build the FCOS-like sample OS's RPM repository (Debian's packages and
//! their dependencies, converted): `cargo run -p cosa-testkit --bin
//! sample-fcos-repo -- DIR [ARCH]`. The result is `DIR/<arch>/` with
//! repodata, which `sample-fcos/sample-fcos.repo` points at through
//! `$cosa_sample_fcos_repo`.

use std::path::PathBuf;

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).context("usage: sample-fcos-repo DIR [ARCH]")?);
    let arch = args.get(2).cloned().unwrap_or_else(|| "x86_64".into());
    cosa_testkit::sample::fcos::make_repo(&dir, &arch)
}
