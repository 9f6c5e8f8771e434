//! Supply chain: what a build is made of (SBOM) and how it was made
//! (provenance).

pub mod provenance;
pub mod sbom;
