//! Release engineering: streams and stream versions, release.json and the
//! stream's release index, stream metadata, updates metadata (rollouts,
//! barriers, deadends), the update graph, the local publish directory and
//! promotion. The verbs are in `crate::cmd::release`.

pub mod graph;
pub mod index;
pub mod metadata;
pub mod promote;
pub mod publish;
pub mod streams;
pub mod updates;
pub mod version;
