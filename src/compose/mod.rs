//! Assemble the root tree: unpack payloads, users and groups, scriptlets in
//! bubblewrap, overlays, the rpm database, SELinux labels for the commit.

pub mod bootupd;
pub mod caps;
pub mod elf;
pub mod initramfs;
pub mod inputhash;
pub mod install;
pub mod overlay;
pub mod postprocess;
pub mod resolve;
pub mod rpmdb;
pub mod scripts;
pub mod selinux;
pub mod sysusers;
pub mod tree;
pub mod users;
