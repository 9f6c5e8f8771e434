//! `cosa compose rootfs`

use anyhow::Result;

use crate::cli::{GlobalOpts, RootfsOpts};

pub fn rootfs(global: &GlobalOpts, opts: RootfsOpts) -> Result<()> {
    let _ = (global, opts);
    todo!("cosa compose rootfs")
}
