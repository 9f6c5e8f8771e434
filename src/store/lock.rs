//! An exclusive lock on the working directory, so two `cosa` runs never write
//! the build store at the same time.
//!
//! The lock is `flock(2)` on `<workdir>/.cosa.lock`, taken without waiting.
//! The kernel drops it when the holder's file descriptor is closed, which
//! includes the holder dying by SIGKILL: a killed `cosa` never leaves a stale
//! lock behind. The file holds the holder's pid, only to name it in the error.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The lock file's name inside the working directory.
pub const LOCK_FILE: &str = ".cosa.lock";

/// Proof that this process holds the working-directory lock; dropping it
/// releases the lock. Functions that must only run under the lock (startup
/// recovery, pruning, publishing a build) take a `&WorkdirLock`.
#[derive(Debug)]
pub struct WorkdirLock {
    file: File,
    path: PathBuf,
}

impl WorkdirLock {
    /// Take the lock on `workdir` or fail at once with
    /// "another cosa is running in <workdir> (pid N)".
    pub fn acquire(workdir: &Path) -> Result<WorkdirLock> {
        let path = workdir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .with_context(|| format!("opening lock file {}", path.display()))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let pid = match holder.trim() {
                    "" => "pid unknown".to_string(),
                    p => format!("pid {p}"),
                };
                bail!(
                    "another cosa is running in {} ({pid}); wait for it to finish, \
                     or if no cosa is running, report a bug: the kernel releases this lock \
                     when its holder exits",
                    workdir.display()
                );
            }
            return Err(err).with_context(|| format!("locking {}", path.display()));
        }
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("writing pid to lock file {}", path.display()))?;
        Ok(WorkdirLock { file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkdirLock {
    fn drop(&mut self) {
        // Clear the pid so a later "pid unknown" is not mistaken for us; the
        // lock itself goes when the file is closed.
        let _ = self.file.set_len(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let first = WorkdirLock::acquire(dir.path()).unwrap();
        let err = WorkdirLock::acquire(dir.path()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&format!(
                "another cosa is running in {} (pid {})",
                dir.path().display(),
                std::process::id()
            )),
            "{msg}"
        );
        drop(first);
        WorkdirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn missing_workdir_is_an_error_naming_the_file() {
        let err = WorkdirLock::acquire(Path::new("/nonexistent/cosa-wd")).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/cosa-wd/.cosa.lock"));
    }
}
