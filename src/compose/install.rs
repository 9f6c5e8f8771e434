//! Install packages into a root directory: parallel payload unpacking with
//! cpio semantics, path safety, file conflicts, owners resolved through the
//! tree's own passwd/group, file capabilities, then scriptlets.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::rpm::PackageMeta;

/// How to treat scriptlets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptPolicy {
    Run,
    /// Skip all scriptlets, recording why.
    Skip(String),
}

#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Install %doc files.
    pub documentation: bool,
    /// (package name, regexes of paths not to install)
    pub remove_from_packages: Vec<(String, Vec<regex::Regex>)>,
    pub scripts: ScriptPolicy,
    /// The target arch; scriptlets are skipped (and recorded) when it is not the host's.
    pub basearch: String,
}

/// What happened, for the compose report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct InstallReport {
    pub packages: usize,
    pub files: u64,
    pub bytes: u64,
    /// "package %pre" entries that ran.
    pub scripts_run: Vec<String>,
    /// ("package %post", reason) entries that were skipped.
    pub scripts_skipped: Vec<(String, String)>,
}

/// Install `pkgs` (metadata + path of the verified .rpm), given in install
/// order, into `dest`.
pub fn install(
    dest: &Path,
    pkgs: &[(PackageMeta, PathBuf)],
    opts: &InstallOptions,
) -> Result<InstallReport> {
    let _ = (dest, pkgs, opts);
    todo!("install::install")
}
