//! Publishing a build: the OCI container image (push-container).

pub mod oci;
