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
