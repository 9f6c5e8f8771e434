//! cosa-testkit: what cosa's tests, benchmarks and the main job build on,
//! kept out of the `cosa` product (nothing in `cosa` depends on it).
//!
//! - [`deb`]: Debian packages and their closures converted to rpm packages.
//! - [`fixture`]: RPM packages and repositories built from specs.
//! - [`sample`]: the sample OSes' package repositories, from Debian's
//!   kernel, boot loaders and SELinux policy (a private apt state).
//! - [`download`]: a local HTTP server with injectable faults.
//! - [`install`], [`postprocess`], [`solver`]: the set-up the install,
//!   postprocess and solver tests share.

pub mod deb;
pub mod download;
pub mod fixture;
pub mod install;
pub mod postprocess;
pub mod sample;
pub mod solver;
