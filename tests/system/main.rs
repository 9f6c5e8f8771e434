//! Tier system: builds the sample OS, makes images and boots them in
//! QEMU; minutes, not seconds. Left out of the fast profile.

#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../release_common/mod.rs"]
mod release_common;

mod arch_boot;
mod cli_build;
mod compress_sample;
mod esp;
mod fcos_like;
mod fcos_shape;
mod image_boot;
mod image_platforms;
mod install_preserve;
mod kill_verbs;
mod live_boot;
mod oci_push;
mod rebuild_verify;
mod release_cli_build;
mod release_cli_promote;
mod release_cli_publish;
mod reproducible;
mod s3_publish;
mod sample_boot;
mod sample_kernel;
mod sign_cli;
