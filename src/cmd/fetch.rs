//! `cosa fetch`: resolve and download, optionally updating the lockfile.

use anyhow::Result;

use crate::cli::{FetchOpts, GlobalOpts};
use crate::compose::resolve;
use crate::config::workdir::Workdir;
use crate::rpm::download::Downloader;
use crate::util;

pub fn run(global: &GlobalOpts, opts: FetchOpts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    wd.ensure_dirs()?;
    let arch = util::target_arch(opts.resolve.arch.as_deref())?;
    let dl = Downloader::new(opts.resolve.jobs)?;
    let resolved = resolve::resolve(&wd, &arch, opts.resolve.strict, &dl)?;
    resolve::fetch(&wd, &dl, &resolved)?;
    if opts.update_lockfile {
        let path = wd.lockfile(&arch);
        resolved.lockfile().write(&path)?;
        eprintln!("Wrote {}", path.display());
    }
    Ok(())
}
