//! One function per verb; each takes the global options and its own.

pub mod compose;
pub mod fetch;
pub mod init;
