//! `cosa fetch`

use anyhow::Result;

use crate::cli::{FetchOpts, GlobalOpts};

pub fn run(global: &GlobalOpts, opts: FetchOpts) -> Result<()> {
    let _ = (global, opts);
    todo!("cosa fetch")
}
