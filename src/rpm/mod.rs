//! RPM handling: version comparison, repository metadata, the dependency
//! solver, lockfiles, the download cache, package payloads and the rpm
//! database writer.

pub mod download;
pub mod fixture;
pub mod lockfile;
pub mod mirrors;
pub mod nevra;
pub mod repodata;
pub mod rpmdb;
pub mod solver;
pub mod types;
pub mod vercmp;

pub use types::{Cmp, Dep, Evr, PackageMeta};

/// rpm's `%_install_langs` test for a file's `|`-separated languages: an
/// unmarked file is always installed, else one of its languages must be a
/// prefix of one of `langs` (`en` matches `en_US`).
pub fn lang_wanted(file_langs: &str, langs: &[String]) -> bool {
    if file_langs.is_empty() || langs.iter().any(|l| l == "all") {
        return true;
    }
    langs.iter().any(|want| {
        file_langs
            .split('|')
            .any(|l| !l.is_empty() && want.starts_with(l))
    })
}
