//! `cosa init`

use anyhow::Result;

use crate::cli::{GlobalOpts, InitOpts};

pub fn run(global: &GlobalOpts, opts: InitOpts) -> Result<()> {
    let _ = (global, opts);
    todo!("cosa init")
}
