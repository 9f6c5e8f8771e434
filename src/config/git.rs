//! The config repo as git sees it: the commit and dirty flag every build
//! records, and a copy of a recorded commit's tree for a rebuild.
//!
//! A `--transient` config may be a folder inside a larger repository (this
//! project's own `manifests/`), so the repository is discovered upwards and
//! a checkout keeps the folder's place in it: a treefile may include files
//! beside the config (`../image.yaml`).

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The config repo's HEAD commit and whether its work tree is dirty
/// (untracked files count; ignored ones do not). Not a git repository:
/// no commit, dirty.
pub fn state(dir: &Path) -> (Option<String>, bool) {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let Ok(repo) = git2::Repository::discover(&dir) else {
        return (None, true);
    };
    let head = repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .map(|c| c.id().to_string());
    let mut so = git2::StatusOptions::new();
    so.include_untracked(true).include_ignored(false);
    let dirty = repo
        .statuses(Some(&mut so))
        .map(|s| !s.is_empty())
        .unwrap_or(true);
    (head, dirty)
}

/// What [`checkout`] wrote.
#[derive(Debug)]
pub struct Checkout {
    /// The config directory inside the checkout.
    pub config: PathBuf,
    /// Submodules the commit names, which are not checked out.
    pub submodules: Vec<String>,
}

/// Write the tree of commit `rev` of the repository holding `config` into
/// `dest` (which must not exist), and return where the config directory is
/// inside it. The repository is only read: no index, HEAD or work tree
/// changes. Files get mode 0644 or 0755 as git records them; symlinks are
/// links.
pub fn checkout(config: &Path, rev: &str, dest: &Path) -> Result<Checkout> {
    let config =
        std::fs::canonicalize(config).with_context(|| format!("resolving {}", config.display()))?;
    let repo = git2::Repository::discover(&config)
        .with_context(|| format!("opening the git repository of {}", config.display()))?;
    let top = repo.workdir().with_context(|| {
        format!(
            "the git repository of {} is bare: no config in it",
            config.display()
        )
    })?;
    let top = std::fs::canonicalize(top)?;
    let rel = config
        .strip_prefix(&top)
        .with_context(|| format!("{} is outside {}", config.display(), top.display()))?
        .to_path_buf();
    let oid = git2::Oid::from_str(rev).with_context(|| format!("config commit {rev:?}"))?;
    let commit = repo.find_commit(oid).with_context(|| {
        format!(
            "commit {rev} is not in the config repository {}: fetch it (`git -C {} fetch`) so \
             the rebuild can check it out",
            top.display(),
            top.display()
        )
    })?;
    let tree = commit.tree()?;
    std::fs::create_dir(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut out = Checkout {
        config: dest.join(&rel),
        submodules: Vec::new(),
    };
    write_tree(&repo, &tree, dest, "", &mut out.submodules)?;
    if !out.config.is_dir() {
        bail!(
            "commit {rev} of {} has no directory {}: the config was not there then",
            top.display(),
            rel.display()
        );
    }
    Ok(out)
}

fn write_tree(
    repo: &git2::Repository,
    tree: &git2::Tree,
    dir: &Path,
    prefix: &str,
    submodules: &mut Vec<String>,
) -> Result<()> {
    for e in tree.iter() {
        let name = e
            .name()
            .with_context(|| format!("a non-UTF-8 name in {prefix}/"))?;
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            bail!("git tree entry {prefix}/{name:?} is not a file name");
        }
        let path = dir.join(name);
        let shown = format!("{prefix}{name}");
        match e.kind() {
            Some(git2::ObjectType::Tree) => {
                std::fs::create_dir(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                let sub = repo.find_tree(e.id())?;
                write_tree(repo, &sub, &path, &format!("{shown}/"), submodules)?;
            }
            Some(git2::ObjectType::Blob) => {
                let blob = repo.find_blob(e.id())?;
                if e.filemode() == 0o120000 {
                    let target = std::ffi::OsStr::from_bytes(blob.content());
                    std::os::unix::fs::symlink(target, &path)
                        .with_context(|| format!("linking {}", path.display()))?;
                } else {
                    let mode = if e.filemode() & 0o111 != 0 {
                        0o755
                    } else {
                        0o644
                    };
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(mode)
                        .open(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    f.write_all(blob.content())
                        .with_context(|| format!("writing {}", path.display()))?;
                }
            }
            // A submodule (a commit entry): its content is another repository's.
            Some(git2::ObjectType::Commit) => submodules.push(shown),
            other => bail!("git tree entry {shown} has kind {other:?}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Commit everything under `dir` to its repository; returns the commit id.
    fn commit_all(repo: &git2::Repository, msg: &str) -> String {
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parents: Vec<git2::Commit> = repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)
            .unwrap()
            .to_string()
    }

    #[test]
    fn checkout_writes_a_recorded_commit_and_leaves_the_repo_alone() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join("repo");
        let cfg = top.join("config");
        std::fs::create_dir_all(&cfg).unwrap();
        let repo = git2::Repository::init(&top).unwrap();
        std::fs::write(top.join("image.yaml"), "size: 10\n").unwrap();
        std::fs::write(cfg.join("manifest.yaml"), "ref: a\n").unwrap();
        std::fs::write(cfg.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(cfg.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::os::unix::fs::symlink("../image.yaml", cfg.join("image.yaml")).unwrap();
        let first = commit_all(&repo, "one");
        assert_eq!(state(&cfg), (Some(first.clone()), false));

        std::fs::write(cfg.join("manifest.yaml"), "ref: b\n").unwrap();
        let second = commit_all(&repo, "two");
        std::fs::write(cfg.join("untracked"), "x").unwrap();
        assert_eq!(state(&cfg), (Some(second), true));

        let co = checkout(&cfg, &first, &t.path().join("co")).unwrap();
        assert_eq!(co.config, t.path().join("co/config"));
        let read = |p: &str| std::fs::read_to_string(co.config.join(p)).unwrap();
        assert_eq!(read("manifest.yaml"), "ref: a\n");
        assert_eq!(
            read("image.yaml"),
            "size: 10\n",
            "the link leads out of the config"
        );
        let mode = |p: &str| {
            std::fs::metadata(co.config.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode("run.sh"), mode("manifest.yaml")), (0o755, 0o644));
        assert!(!co.config.join("untracked").exists());
        // The repository is where it was: HEAD, work tree and index.
        assert_eq!(
            std::fs::read_to_string(cfg.join("manifest.yaml")).unwrap(),
            "ref: b\n"
        );
        assert!(state(&cfg).1);
        let e = checkout(&cfg, &"0".repeat(40), &t.path().join("co2")).unwrap_err();
        assert!(
            format!("{e:#}").contains("is not in the config repository"),
            "{e:#}"
        );
    }
}
