//! rpm-ostree treefiles (`manifest.yaml` / `.json`): includes, per-arch and
//! conditional includes, variables, and every key cosa understands.
//!
//! The semantics mirror rpm-ostree's `rust/src/treefile.rs`
//! (<https://github.com/coreos/rpm-ostree/blob/main/docs/treefile.md>):
//!
//! - an included file is loaded first and merged under the includer: scalars
//!   of the includer win, lists are concatenated (included first), maps merge
//!   key by key with the includer winning. With several includes, each later
//!   include is merged under the result of the earlier ones, so its list items
//!   come first (rpm-ostree documents this order for `postprocess`);
//! - `include`, then `arch-include[basearch]`, then matching
//!   `conditional-include` entries are processed, in that order;
//! - `variables` are folded top-down (the includer overrides) before the
//!   file's conditional includes are evaluated; `basearch` and `releasever`
//!   are reserved and filled in automatically;
//! - including the same file twice is refused, as rpm-ostree does.
//!
//! Differences, all on the side of catching mistakes early: unknown keys are
//! refused in JSON too (rpm-ostree ignores them there), an undefined
//! `${var}` is an error instead of being left in place, and client-side
//! "derivation" keys (`override-remove`, ...) are refused with their own
//! message. Extensions: an unquoted versioned spec (`podman >= 4.1`) and a
//! parenthesised rich dependency stay whole in `packages`; conditions also
//! accept bare words (`basearch == x86_64`) and a bare variable (truthy).

//!
//! The submodules, in the order a load goes through them: [`loader`] reads
//! files and follows includes, [`parse`] turns one file's keys into a
//! [`parse::Layer`] (with [`values`] for typed reads and [`keys`] for the key
//! table), [`packages`] splits `packages` entries, [`conditions`] evaluates
//! `conditional-include`, [`merge`] folds an included layer under its
//! includer, and [`finish`] substitutes variables into the final [`Treefile`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

mod conditions;
mod finish;
mod keys;
mod loader;
mod merge;
mod packages;
mod parse;
mod values;

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
    /// The rpm-ostree treefile keys that have no typed field (validated
    /// against the key table; see [`Treefile::not_acted`]).
    pub other: BTreeMap<String, serde_json::Value>,
    /// `file:line` where each key of `other` was set.
    pub other_at: BTreeMap<String, String>,
    /// Every treefile read (the top one and its includes), in load order.
    pub files: Vec<PathBuf>,
}

impl Treefile {
    /// One warning per key this treefile sets that cosa does not act on,
    /// naming the key, where it was set and why.
    pub fn not_acted(&self) -> Vec<String> {
        self.other
            .iter()
            .filter_map(|(k, v)| {
                let why = keys::not_acted(k, v)?;
                let at = self.other_at.get(k).map(String::as_str).unwrap_or("?");
                Some(format!("treefile key {k} ({at}) is not acted on: {why}"))
            })
            .collect()
    }
}

/// Load the treefile at `path` for `basearch`.
pub fn load(path: &Path, basearch: &str) -> Result<Treefile> {
    let top = std::path::absolute(path)
        .with_context(|| format!("reading treefile {}", path.display()))?;
    let (layer, variables, files) = loader::load_layers(&top, basearch)?;
    let mut tf = finish::finish(top, layer, variables)?;
    tf.files = files;
    Ok(tf)
}
