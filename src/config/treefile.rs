//! rpm-ostree treefiles (`manifest.yaml` / `.json`): includes, per-arch and
//! conditional includes, variables, and every key cosa understands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

/// `repo-packages` entry: take these packages only from `repo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPackages {
    pub repo: String,
    pub packages: Vec<String>,
}

/// A fully loaded treefile: includes merged, `packages-<arch>` folded into
/// `packages`, variables substituted.
#[derive(Debug, Clone, Default)]
pub struct Treefile {
    /// The top-level file.
    pub path: PathBuf,
    pub ref_: Option<String>,
    pub releasever: Option<String>,
    pub repos: Vec<String>,
    pub lockfile_repos: Vec<String>,
    pub packages: Vec<String>,
    pub repo_packages: Vec<RepoPackages>,
    pub exclude_packages: Vec<String>,
    /// rpm-ostree's default is true.
    pub recommends: bool,
    /// rpm-ostree's default is true.
    pub documentation: bool,
    /// `[package, regex, ...]` entries.
    pub remove_from_packages: Vec<(String, Vec<String>)>,
    pub remove_files: Vec<String>,
    /// (absolute source path, destination path in the tree)
    pub add_files: Vec<(PathBuf, String)>,
    /// Inline postprocess scripts, in order.
    pub postprocess: Vec<String>,
    /// `postprocess-script`, resolved to an absolute path.
    pub postprocess_script: Option<PathBuf>,
    pub etc_group_members: Vec<String>,
    pub automatic_version_prefix: Option<String>,
    pub mutate_os_release: Option<String>,
    pub add_commit_metadata: serde_json::Map<String, serde_json::Value>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Other rpm-ostree treefile keys cosa accepts but does not act on yet.
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Load the treefile at `path` for `basearch`.
pub fn load(path: &Path, basearch: &str) -> Result<Treefile> {
    let _ = (path, basearch);
    todo!("treefile::load")
}
