//! Supply chain: what a build is made of (SBOM), how it was made
//! (provenance), and whether its recorded inputs make it again
//! (rebuild-verify); the DSSE envelopes the statements are signed in.

pub mod dsse;
pub mod provenance;
pub mod rebuild;
pub mod sbom;
