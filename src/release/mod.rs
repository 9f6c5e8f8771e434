//! Release engineering: release index, updates metadata and the update graph.

pub mod graph;
pub mod updates;
