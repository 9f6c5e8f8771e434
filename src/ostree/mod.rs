//! Native OSTree: GVariant objects, an archive-mode repository writer and
//! reader, commit metadata, refs, summary, detached metadata, prune,
//! export/import of one commit as a tarball, and the diff of two commits.
//! Verified against Debian's `ostree` in tests/cli/ostree_writer.rs.

pub mod deploy;
pub mod diff;
pub mod export;
pub mod gvariant;
pub mod objects;
pub mod repo;

pub use gvariant::{Type, Value};
pub use objects::{Commit, CommitSpec, DirMeta, DirTree, FileMeta, ObjectType};
pub use repo::{CommitOptions, LabelFn, ObjectName, PruneStats, Repo};
