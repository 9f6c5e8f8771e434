//! `sysusers`: systemd-sysusers at compose time, as rpm-ostree does it.
//!
//! rpm-ostree runs the `%__systemd_sysusers` command of the tree's rpm
//! (compose-auto, the default) or systemd-sysusers anyway
//! (compose-forced) after unpacking, so that the users and groups the
//! packages declare in `/usr/lib/sysusers.d` exist before their scripts run
//! and their files get owners. cosa runs the build host's
//! `systemd-sysusers --root=<tree>`: it reads only the tree's files, so no
//! target binary runs and cross-arch composes work the same way.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::util::cmd::CommandRunExt;

/// `sysusers` of the treefile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sysusers {
    /// Only when the tree's rpm defines `%__systemd_sysusers` (default).
    #[default]
    ComposeAuto,
    /// Always.
    ComposeForced,
}

impl Sysusers {
    pub fn from_treefile(v: Option<&str>) -> Result<Sysusers> {
        match v {
            None | Some("compose-auto") => Ok(Sysusers::ComposeAuto),
            Some("compose-forced") => Ok(Sysusers::ComposeForced),
            Some(o) => {
                bail!("treefile key sysusers: unknown value {o:?} (compose-auto or compose-forced)")
            }
        }
    }
}

/// Whether the tree's rpm macros define `%__systemd_sysusers` to something
/// non-empty (`/usr/lib/rpm/macros`, `/usr/lib/rpm/macros.d/*`).
pub fn tree_defines_macro(tree: &Path) -> Result<bool> {
    let mut files = vec![tree.join("usr/lib/rpm/macros")];
    let d = tree.join("usr/lib/rpm/macros.d");
    if d.is_dir() {
        let mut v: Vec<_> = std::fs::read_dir(&d)
            .with_context(|| format!("reading {}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        files.extend(v);
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines() {
            let mut w = line.split_whitespace();
            if w.next() == Some("%__systemd_sysusers") && w.next().is_some() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Run systemd-sysusers on `tree` if `mode` asks for it; returns whether it ran.
pub fn run(tree: &Path, mode: Sysusers) -> Result<bool> {
    let wanted = match mode {
        Sysusers::ComposeForced => true,
        Sysusers::ComposeAuto => tree_defines_macro(tree)?,
    };
    if !wanted || !tree.join("usr/lib/sysusers.d").is_dir() {
        return Ok(false);
    }
    if which("systemd-sysusers").is_none() {
        bail!(
            "the tree needs systemd-sysusers at compose time (treefile key sysusers, or %__systemd_sysusers in its rpm macros) and this host has none: install systemd"
        );
    }
    eprintln!("Running systemd-sysusers on the tree");
    std::process::Command::new("systemd-sysusers")
        .arg(format!("--root={}", tree.display()))
        .run_capture("systemd-sysusers --root (treefile key sysusers)")?;
    Ok(true)
}

fn which(prog: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(prog))
            .find(|c| c.is_file())
    })
}
