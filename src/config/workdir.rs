//! The working directory, laid out as coreos-assembler's:
//! `src/config`, `builds`, `cache`, `tmp`, `overrides/rpm`, `overrides/rootfs`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Paths of a working directory.
#[derive(Debug, Clone)]
pub struct Workdir {
    pub root: PathBuf,
}

impl Workdir {
    /// Open an existing working directory (one that `cosa init` made).
    pub fn open(root: &Path) -> Result<Workdir> {
        let root = std::fs::canonicalize(root)
            .with_context(|| format!("opening working directory {}", root.display()))?;
        let wd = Workdir { root };
        if !wd.config_dir().exists() {
            bail!(
                "{} is not a cosa working directory (no src/config): run `cosa init CONFIG` there first",
                wd.root.display()
            );
        }
        Ok(wd)
    }

    pub fn config_dir(&self) -> PathBuf {
        self.root.join("src/config")
    }
    pub fn builds_dir(&self) -> PathBuf {
        self.root.join("builds")
    }
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    /// The working directory's ostree repository (archive mode), `tmp/repo`.
    pub fn repo_dir(&self) -> PathBuf {
        self.tmp_dir().join("repo")
    }
    pub fn overrides_rpm(&self) -> PathBuf {
        self.root.join("overrides/rpm")
    }
    pub fn overrides_rootfs(&self) -> PathBuf {
        self.root.join("overrides/rootfs")
    }

    /// The manifest: `manifest.yaml`, else `manifest.json`, in the config repo.
    pub fn manifest(&self) -> Result<PathBuf> {
        for name in ["manifest.yaml", "manifest.yml", "manifest.json"] {
            let p = self.config_dir().join(name);
            if p.exists() {
                return Ok(p);
            }
        }
        bail!(
            "no manifest.yaml or manifest.json in {}",
            self.config_dir().display()
        )
    }

    /// `src/config/manifest-lock.<arch>.json`
    pub fn lockfile(&self, arch: &str) -> PathBuf {
        self.config_dir().join(format!("manifest-lock.{arch}.json"))
    }

    /// The directories every working directory has, made when missing.
    pub fn ensure_dirs(&self) -> Result<()> {
        for d in [
            self.builds_dir(),
            self.cache_dir(),
            self.tmp_dir(),
            self.overrides_rpm(),
            self.overrides_rootfs(),
        ] {
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        Ok(())
    }
}
