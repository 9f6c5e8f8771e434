//! Apply overlay directories (`overlay.d/*` of the config, then
//! `overrides/rootfs`) onto the tree, in order.
//!
//! As coreos-assembler commits overlay.d over the tree: files and symlinks
//! replace what is there, directories merge (the overlay's mode wins), later
//! directories win over earlier ones. Modes, symlink targets and mtimes are
//! kept; everything is owned by root. A path whose parent in the tree is a
//! symlink is refused, so an overlay can never write outside the tree.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Copy each of `dirs` into `dest`, in order.
pub fn apply(dest: &Path, dirs: &[PathBuf]) -> Result<()> {
    for dir in dirs {
        let m = fs::metadata(dir).with_context(|| format!("reading overlay {}", dir.display()))?;
        if !m.is_dir() {
            bail!("overlay {} is not a directory", dir.display());
        }
        copy_dir(dir, dest, Path::new(""))
            .with_context(|| format!("applying overlay {}", dir.display()))?;
    }
    Ok(())
}

fn mtime(m: &fs::Metadata) -> filetime::FileTime {
    filetime::FileTime::from_last_modification_time(m)
}

/// Copy the contents of `src/rel` into `dest/rel`; `dest/rel` is already a
/// verified real directory (or the root).
fn copy_dir(src_root: &Path, dest: &Path, rel: &Path) -> Result<()> {
    let src = src_root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&src)
        .with_context(|| format!("listing {}", src.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .with_context(|| format!("listing {}", src.display()))?;
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let s = src_root.join(&rel);
        let d = dest.join(&rel);
        let m = fs::symlink_metadata(&s).with_context(|| format!("reading {}", s.display()))?;
        let existing = match fs::symlink_metadata(&d) {
            Ok(x) => Some(x),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("inspecting {}", d.display())),
        };
        let ft = m.file_type();
        if ft.is_dir() {
            match &existing {
                Some(x) if x.is_dir() => {}
                Some(x) if x.file_type().is_symlink() => bail!(
                    "refusing /{}: it is a symlink in the tree and the overlay has a directory there",
                    rel.display()
                ),
                Some(_) => bail!(
                    "refusing /{}: the overlay has a directory where the tree has a file",
                    rel.display()
                ),
                None => fs::create_dir(&d).with_context(|| format!("creating {}", d.display()))?,
            }
            copy_dir(src_root, dest, &rel)?;
            fs::set_permissions(
                &d,
                fs::Permissions::from_mode(m.permissions().mode() & 0o7777),
            )
            .with_context(|| format!("setting the mode of {}", d.display()))?;
            filetime::set_file_times(&d, mtime(&m), mtime(&m))
                .with_context(|| format!("setting the mtime of {}", d.display()))?;
            continue;
        }
        if let Some(x) = &existing {
            if x.is_dir() {
                bail!(
                    "refusing /{}: the overlay has a file where the tree has a directory",
                    rel.display()
                );
            }
            fs::remove_file(&d).with_context(|| format!("replacing {}", d.display()))?;
        }
        if ft.is_symlink() {
            let t = fs::read_link(&s).with_context(|| format!("reading {}", s.display()))?;
            std::os::unix::fs::symlink(&t, &d)
                .with_context(|| format!("creating symlink {}", d.display()))?;
            filetime::set_symlink_file_times(&d, mtime(&m), mtime(&m))
                .with_context(|| format!("setting the mtime of {}", d.display()))?;
        } else if ft.is_file() {
            let mut from = File::open(&s).with_context(|| format!("opening {}", s.display()))?;
            let mut to = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&d)
                .with_context(|| format!("creating {}", d.display()))?;
            io::copy(&mut from, &mut to).with_context(|| format!("writing {}", d.display()))?;
            to.set_permissions(fs::Permissions::from_mode(m.permissions().mode() & 0o7777))
                .with_context(|| format!("setting the mode of {}", d.display()))?;
            filetime::set_file_handle_times(&to, Some(mtime(&m)), Some(mtime(&m)))
                .with_context(|| format!("setting the mtime of {}", d.display()))?;
        } else {
            bail!(
                "{}: overlays may hold only files, directories and symlinks",
                s.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn later_overlays_win_and_modes_are_kept() {
        let t = tempfile::tempdir().unwrap();
        let (a, b, dest) = (
            t.path().join("a"),
            t.path().join("b"),
            t.path().join("dest"),
        );
        fs::create_dir_all(a.join("etc/x")).unwrap();
        fs::create_dir_all(b.join("etc")).unwrap();
        fs::create_dir_all(dest.join("etc")).unwrap();
        fs::write(dest.join("etc/motd"), "old").unwrap();
        fs::write(a.join("etc/motd"), "a").unwrap();
        fs::write(b.join("etc/motd"), "b").unwrap();
        fs::write(a.join("etc/x/run"), "#!/bin/sh").unwrap();
        fs::set_permissions(a.join("etc/x/run"), fs::Permissions::from_mode(0o4755)).unwrap();
        filetime::set_file_mtime(
            a.join("etc/x/run"),
            filetime::FileTime::from_unix_time(1000, 0),
        )
        .unwrap();
        symlink("motd", b.join("etc/link")).unwrap();
        apply(&dest, &[a, b]).unwrap();
        assert_eq!(fs::read_to_string(dest.join("etc/motd")).unwrap(), "b");
        let m = fs::metadata(dest.join("etc/x/run")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
        assert_eq!(mtime(&m).unix_seconds(), 1000);
        assert_eq!(
            fs::read_link(dest.join("etc/link")).unwrap(),
            Path::new("motd")
        );
    }

    #[test]
    fn refuses_symlinked_parent() {
        let t = tempfile::tempdir().unwrap();
        let (a, dest, outside) = (
            t.path().join("a"),
            t.path().join("dest"),
            t.path().join("outside"),
        );
        fs::create_dir_all(a.join("evil")).unwrap();
        fs::write(a.join("evil/passwd"), "x").unwrap();
        fs::create_dir_all(&dest).unwrap();
        fs::create_dir_all(&outside).unwrap();
        symlink(&outside, dest.join("evil")).unwrap();
        let err = apply(&dest, &[a]).unwrap_err();
        assert!(format!("{err:#}").contains("/evil"), "{err:#}");
        assert!(!outside.join("passwd").exists());
    }
}
