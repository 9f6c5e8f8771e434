//! The config repo: treefile (manifest) loading, `.repo` files, its git
//! state, and the working directory layout.

pub mod git;
pub mod image;
pub mod kola;
pub mod repofile;
pub mod treefile;
pub mod workdir;
