//! One function per verb; each takes the global options and its own.

pub mod build;
pub mod buildfetch;
pub mod builds;
pub mod buildupload;
pub mod compose;
pub mod compress;
pub mod fetch;
pub mod image;
pub mod init;
pub mod kola;
pub mod live;
pub mod push_container;
pub mod release;
pub mod sign;
