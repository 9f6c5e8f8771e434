//! Release engineering: streams and stream versions, release.json and the
//! stream's release index, stream metadata, updates metadata (rollouts,
//! barriers, deadends) and the update graph. Verbs come in a later change.

pub mod graph;
pub mod index;
pub mod metadata;
pub mod streams;
pub mod updates;
pub mod version;
