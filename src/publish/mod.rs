//! Publishing builds: S3 upload and fetch of the build store, OCI registries.

pub mod fetch;
pub mod merge;
pub mod s3;
