//! Publishing builds: S3 upload and fetch of the build store, and the OSTree
//! commit as an OCI container image (push-container).

pub mod fetch;
pub mod merge;
pub mod oci;
pub mod s3;
