//! `cosa init`: make a working directory from a config repo.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cli::{GlobalOpts, InitOpts};
use crate::config::workdir::Workdir;

pub fn run(global: &GlobalOpts, opts: InitOpts) -> Result<()> {
    let root = &global.workdir;
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let root = std::fs::canonicalize(root)?;
    check_empty(&root, opts.force)?;
    let wd = Workdir { root: root.clone() };
    let config = wd.config_dir();
    let src = root.join("src");
    let made_src = !src.exists();
    std::fs::create_dir_all(&src).with_context(|| format!("creating {}", src.display()))?;
    if opts.force && std::fs::symlink_metadata(&config).is_ok() {
        remove_any(&config)?;
    }
    let local = local_path(&opts.config);
    let made = match (&local, opts.transient) {
        (Some(p), true) => link_config(p, &config),
        (None, true) => bail!("--transient needs a local directory, not {:?}", opts.config),
        _ => clone_config(&opts.config, opts.branch.as_deref(), &config),
    };
    if let Err(e) = made {
        // Leave nothing half-made behind.
        let _ = remove_any(&config);
        if made_src {
            let _ = std::fs::remove_dir(&src);
        }
        return Err(e);
    }
    wd.ensure_dirs()?;
    eprintln!(
        "Initialized cosa working directory {} from {}",
        root.display(),
        opts.config
    );
    Ok(())
}

/// coreos-assembler refuses a non-empty directory unless forced.
fn check_empty(root: &Path, force: bool) -> Result<()> {
    let mut entries = std::fs::read_dir(root)
        .with_context(|| format!("reading {}", root.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect::<Vec<_>>();
    entries.sort();
    if !entries.is_empty() && !force {
        bail!(
            "{} is not empty (it has {}); cosa init wants an empty directory: use a new one, or pass --force to reuse it",
            root.display(),
            entries
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// A CONFIG that names an existing local directory (not a URL).
fn local_path(config: &str) -> Option<PathBuf> {
    if config.contains("://") || config.starts_with("git@") {
        return None;
    }
    let p = Path::new(config);
    p.is_dir().then(|| std::fs::canonicalize(p).ok()).flatten()
}

fn link_config(src: &Path, config: &Path) -> Result<()> {
    std::os::unix::fs::symlink(src, config)
        .with_context(|| format!("linking {} to {}", config.display(), src.display()))
}

fn clone_config(url: &str, branch: Option<&str>, config: &Path) -> Result<()> {
    let mut builder = git2::build::RepoBuilder::new();
    if let Some(b) = branch {
        builder.branch(b);
    }
    eprintln!("Cloning {url} into {}", config.display());
    let repo = builder.clone(url, config).map_err(|e| {
        let hint = if local_path(url).is_some() {
            " (a local directory must be a git repository to clone; use --transient to use it in place)"
        } else {
            ""
        };
        anyhow::anyhow!("cloning config repo {url}: {}{hint}", e.message())
    })?;
    for mut sm in repo
        .submodules()
        .context("listing submodules of the config repo")?
    {
        sm.update(true, None)
            .with_context(|| format!("updating submodule {}", sm.path().display()))?;
    }
    Ok(())
}

fn remove_any(p: &Path) -> Result<()> {
    let md = std::fs::symlink_metadata(p)?;
    if md.is_dir() {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    }
    .with_context(|| format!("removing {}", p.display()))
}
