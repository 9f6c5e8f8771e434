//! Release engineering: streams, stream versions, release.json and its index, stream metadata.

pub mod index;
pub mod metadata;
pub mod streams;
pub mod version;
