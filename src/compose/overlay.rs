//! Apply overlay directories (`overlay.d/*` of the config, then
//! `overrides/rootfs`) onto the tree, in order.

use std::path::{Path, PathBuf};

use anyhow::Result;

/// Copy each directory's contents over `dest`, in order (later wins).
pub fn apply(dest: &Path, dirs: &[PathBuf]) -> Result<()> {
    let _ = (dest, dirs);
    todo!("overlay::apply")
}
