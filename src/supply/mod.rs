//! Supply chain: what a build is made of (SBOM).

pub mod sbom;
