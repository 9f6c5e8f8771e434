//! Scratch directories that a killed run does not leave behind for good.
//!
//! A process that dies by SIGKILL cannot remove its temp directories. So
//! each scratch directory is locked with `flock(2)` by the process using it
//! (the kernel drops the lock when that process dies, however it dies, as
//! for the working-directory lock), and making one first removes the
//! unlocked directories of the same kind: their makers are gone. No
//! working-directory lock is needed for that: a directory in use is locked.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A directory `<parent>/<prefix>XXXXXX`, locked while this value lives and
/// removed when it is dropped.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    _lock: File,
}

impl ScratchDir {
    /// Remove the stale directories of `prefix` in `parent`, then make a new
    /// one. It is made under a dot name no cleaner takes, locked, and only
    /// then renamed to its own name, so it is never seen unlocked.
    pub fn new(parent: &Path, prefix: &str) -> Result<ScratchDir> {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        for p in remove_stale(parent, prefix) {
            eprintln!("Removed leftover of an interrupted run: {}", p.display());
        }
        let hidden = tempfile::Builder::new()
            .prefix(&format!(".{prefix}"))
            .tempdir_in(parent)
            .with_context(|| format!("creating a scratch directory in {}", parent.display()))?;
        let lock = try_lock(hidden.path())?
            .with_context(|| format!("{} is locked already", hidden.path().display()))?;
        let name = hidden
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix('.'))
            .context("scratch directory name")?
            .to_string();
        let path = parent.join(name);
        fs::rename(hidden.path(), &path).with_context(|| {
            format!("renaming {} to {}", hidden.path().display(), path.display())
        })?;
        // Renamed: the TempDir's own path is gone, ours takes over.
        let _ = hidden.keep();
        Ok(ScratchDir { path, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The lock of directory `dir`, or `None` when another process holds it.
fn try_lock(dir: &Path) -> Result<Option<File>> {
    let f = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(Some(f));
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Ok(None);
    }
    Err(err).with_context(|| format!("locking {}", dir.display()))
}

/// Remove the directories `<prefix>*` in `parent` that no process holds
/// locked (left by a killed run); returns them. Best effort: what cannot be
/// listed, locked or removed is left.
pub fn remove_stale(parent: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(rd) = fs::read_dir(parent) else {
        return removed;
    };
    for e in rd.flatten() {
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || !e.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = e.path();
        if let Ok(Some(_lock)) = try_lock(&path)
            && fs::remove_dir_all(&path).is_ok()
        {
            removed.push(path);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_dir_is_kept_an_unlocked_one_removed() {
        let t = tempfile::tempdir().unwrap();
        let live = ScratchDir::new(t.path(), "work-").unwrap();
        assert!(live.path().is_dir());
        assert!(
            live.path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("work-")
        );
        let stale = t.path().join("work-stale");
        fs::create_dir_all(stale.join("sub")).unwrap();
        fs::write(stale.join("sub/f"), b"x").unwrap();
        let other = t.path().join("other-stale");
        fs::create_dir(&other).unwrap();
        let second = ScratchDir::new(t.path(), "work-").unwrap();
        assert!(!stale.exists(), "the unlocked one is removed");
        assert!(live.path().is_dir(), "the locked one is kept");
        assert!(other.is_dir(), "another kind is not touched");
        let p = second.path().to_path_buf();
        drop(second);
        assert!(!p.exists(), "dropped: removed");
    }
}
