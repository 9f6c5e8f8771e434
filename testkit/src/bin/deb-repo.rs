//! Convert the Depends closure of Debian packages into an RPM repository:
//! `cargo run -p cosa-testkit --bin deb-repo -- DIR DEBARCH PACKAGE...`
//! (`DEBARCH` as Debian spells it, `amd64`; `PACKAGE` may be an apt
//! pattern such as `?essential`). The .debs and the converted packages are
//! cached in the sample cache.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, debarch, packages @ ..] = args.as_slice() else {
        bail!("usage: deb-repo DIR DEBARCH PACKAGE...");
    };
    if packages.is_empty() {
        bail!("usage: deb-repo DIR DEBARCH PACKAGE...");
    }
    let cache = cosa_testkit::sample::debian::cache_dir()?;
    let names: Vec<&str> = packages.iter().map(String::as_str).collect();
    let t = Instant::now();
    let debs = cosa_testkit::deb::fetch_closure(&cache, &names, debarch)?;
    let bytes: u64 = debs
        .iter()
        .map(|d| std::fs::metadata(d).map(|m| m.len()))
        .sum::<std::io::Result<u64>>()
        .context("reading the .debs' sizes")?;
    eprintln!(
        "Closure: {} .debs, {:.1} MB, in {:.1?}",
        debs.len(),
        bytes as f64 / 1e6,
        t.elapsed()
    );
    let t = Instant::now();
    let conv = cosa_testkit::deb::make_repo(&cache, &debs, &PathBuf::from(dir))?;
    let scripts = conv
        .iter()
        .filter(|c| !c.maintainer_scripts.is_empty())
        .count();
    eprintln!(
        "Repository {dir}: {} packages ({scripts} had maintainer scripts, not converted) in {:.1?}",
        conv.len(),
        t.elapsed()
    );
    Ok(())
}
