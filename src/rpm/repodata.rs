//! Repository metadata: repomd.xml, primary and filelists (gz, xz, zstd),
//! from file:// and http(s)://, checksums verified, cached under
//! `cache/repodata/<repo>/` and revalidated against a fresh repomd.xml.

use std::path::Path;

use anyhow::Result;

use super::download::Downloader;
use super::types::PackageMeta;
use crate::config::repofile::RepoDef;

/// A repository with its packages loaded.
#[derive(Debug, Clone)]
pub struct LoadedRepo {
    pub id: String,
    /// Lower wins (dnf semantics).
    pub priority: u32,
    pub baseurls: Vec<url::Url>,
    pub gpgcheck: bool,
    pub gpgkeys: Vec<String>,
    /// repomd.xml `revision`.
    pub revision: Option<String>,
    /// The newest `timestamp` in repomd.xml (seconds since the epoch): the
    /// lockfile's `rpmmd_repos.<id>.generated`.
    pub timestamp: Option<u64>,
    /// exclude/includepkgs already applied.
    pub packages: Vec<PackageMeta>,
}

/// Load a repository's metadata through the cache.
pub fn load(def: &RepoDef, cache_dir: &Path, dl: &Downloader) -> Result<LoadedRepo> {
    let _ = (def, cache_dir, dl);
    todo!("repodata::load")
}

/// Make a repository of the `.rpm` files in `dir` by reading their headers
/// (used for `overrides/rpm`). `location` of each package is its file name.
pub fn load_local_rpms(id: &str, dir: &Path, priority: u32) -> Result<LoadedRepo> {
    let _ = (id, dir, priority);
    todo!("repodata::load_local_rpms")
}
