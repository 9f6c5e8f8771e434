//! `cosa fetch`: resolve and download, optionally updating the lockfile.

use std::io::Write;

use anyhow::Result;
use serde_json::json;

use crate::cli::{FetchOpts, GlobalOpts};
use crate::compose::resolve;
use crate::config::workdir::Workdir;
use crate::rpm::download::Downloader;
use crate::rpm::types::PackageMeta;
use crate::util;

pub fn run(global: &GlobalOpts, opts: FetchOpts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    wd.ensure_dirs()?;
    let arch = util::target_arch(opts.resolve.arch.as_deref())?;
    let dl = Downloader::new(opts.resolve.jobs)?;
    let resolved = resolve::resolve(&wd, &arch, opts.resolve.strict, &dl)?;
    let r = fetch_resolved(&wd, &arch, &dl, &opts, &resolved);
    // The process ends here: freeing every package of every loaded repo
    // (millions of allocations at Fedora's size) would take longer than
    // the resolution itself.
    std::mem::forget(resolved);
    r
}

fn fetch_resolved(
    wd: &Workdir,
    arch: &str,
    dl: &Downloader,
    opts: &FetchOpts,
    resolved: &resolve::Resolved,
) -> Result<()> {
    if opts.dry_run {
        return print_resolved(&resolved.packages, opts.json);
    }
    resolve::fetch(wd, dl, resolved)?;
    if opts.update_lockfile {
        let path = wd.lockfile(arch);
        resolved.lockfile().write(&path)?;
        eprintln!("Wrote {}", path.display());
    }
    Ok(())
}

/// `--dry-run`: the resolved set, in install order, on stdout.
fn print_resolved(pkgs: &[PackageMeta], as_json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        let list: Vec<_> = pkgs
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "epoch": p.epoch,
                    "version": p.version,
                    "release": p.release,
                    "arch": p.arch,
                    "nevra": p.nevra(),
                    "repo": p.repo,
                    "size": p.size_package,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
    } else {
        for p in pkgs {
            writeln!(out, "{} {}", p.nevra(), p.repo)?;
        }
    }
    Ok(())
}
