//! The config repo: treefile (manifest) loading, `.repo` files, and the
//! working directory layout.

pub mod image;
pub mod kola;
pub mod repofile;
pub mod treefile;
pub mod workdir;
