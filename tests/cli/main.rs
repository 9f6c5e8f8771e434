//! Tier cli: the real `cosa` binary and library against generated
//! fixtures, checked with the real tools (rpm, dnf, createrepo_c, ostree,
//! gpg, bwrap, ...). Part of `cargo nextest run --profile fast`.

#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../release_common/mod.rs"]
mod release_common;

mod cli_compose;
mod cli_errors;
mod cli_http;
mod cli_init;
mod download_gpg;
mod download_http;
mod fixture_rpm;
mod grub_image;
mod hostile_inputs;
mod initramfs_tree;
mod install_safety;
mod install_scripts;
mod install_tree;
mod kill_verbs;
mod kola_ext;
mod kola_ssh;
mod ostree_writer;
mod postprocess_install;
mod postprocess_kernel;
mod postprocess_layout;
mod postprocess_passwd;
mod postprocess_treefile;
mod release_cli_updates;
mod repodata_load;
mod repos_mirrors;
mod repos_options;
mod rpmdb_tree;
mod selinux_labels;
mod solver_diff;
mod solver_dnf;
mod solver_vercmp_oracle;
mod store_crash;
mod store_lock;
