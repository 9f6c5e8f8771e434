//! dnf `.repo` files (INI) beside the manifest: the repositories a treefile's
//! `repos` names, with `$basearch`/`$releasever` substituted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

/// One `[id]` section of a `.repo` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoDef {
    pub id: String,
    pub name: Option<String>,
    /// `baseurl` entries (the key may list several), variables substituted.
    pub baseurls: Vec<String>,
    pub metalink: Option<String>,
    pub mirrorlist: Option<String>,
    pub enabled: bool,
    pub gpgcheck: bool,
    /// `gpgkey` URLs (file:// or http(s)://), variables substituted.
    pub gpgkeys: Vec<String>,
    /// Lower wins, as in dnf; default 99.
    pub priority: u32,
    /// default 1000.
    pub cost: u32,
    /// Package name globs never taken from this repo.
    pub exclude: Vec<String>,
    /// When non-empty, only package names matching these globs are taken.
    pub includepkgs: Vec<String>,
    /// The file the section came from (for error messages).
    pub source: PathBuf,
}

/// Read every `*.repo` file in `dir`. `vars` holds `basearch`, `releasever`
/// and any other `$var` to substitute.
pub fn load_repo_dir(dir: &Path, vars: &BTreeMap<String, String>) -> Result<Vec<RepoDef>> {
    let _ = (dir, vars);
    todo!("repofile::load_repo_dir")
}
