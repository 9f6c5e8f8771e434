//! The build store, laid out as coreos-assembler's `builds/` directory:
//! `builds/builds.json`, `builds/latest`, and `builds/<id>/<arch>/` with
//! `meta.json`, `commitmeta.json` and the generated lockfile.
//!
//! # Crash safety
//!
//! `builds/builds.json` is the commit point of the store. A build directory
//! is only *visible* once builds.json lists its id and arch, and builds.json is
//! the last file a build writes (`builds/latest` is derived from it and is
//! repaired at startup). The order, in [`builds::StagedBuild::publish`], is:
//!
//! 1. every file of the build is written into a staging directory
//!    `builds/.tmp-build-*` (each file itself through temp + rename);
//! 2. the staging directory is renamed to `builds/<id>/<arch>`;
//! 3. builds.json is rewritten atomically with the new entry at the front;
//! 4. `builds/latest` is replaced atomically (symlink to a temp name + rename).
//!
//! Pruning runs the other way round: builds.json first, then the directories.
//! So a crash at any moment leaves builds.json valid and never listing a
//! missing or half-made build; what it may leave behind (staging dirs, temp
//! files, a renamed-in but unlisted arch dir, a stale `latest`) is removed by
//! [`builds::recover`], which runs under the working-directory lock at startup.

pub mod builds;
pub mod diff;
pub mod lock;
pub mod meta;
pub mod names;
pub mod prune;
pub mod version;

pub use builds::{BuildEntry, BuildsJson, StagedBuild, Tag};
pub use lock::WorkdirLock;
pub use meta::Meta;
