//! Apply overlay directories (`overlay.d/*` of the config, then
//! `overrides/rootfs`) onto the tree, in order.
//!
//! As coreos-assembler commits overlay.d over the tree: files and symlinks
//! replace what is there, directories merge (the overlay's mode wins), later
//! directories win over earlier ones. Everything is owned by root. Modes
//! are what coreos-assembler's `commit_overlay` gives them: copied under
//! umask 022, without setuid/setgid bits, executables without write bits
//! (`ostree commit --mode-ro-executables`), then the overlay's own
//! `statoverride` file (`=MODE PATH` sets, `MODE PATH` adds bits, MODE in
//! decimal, `#` comments), which is not copied. A path whose parent in the
//! tree is a symlink is refused, so an overlay can never write outside the
//! tree.

use std::collections::BTreeMap;
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
        let overrides = read_statoverride(&dir.join(STATOVERRIDE))?;
        copy_dir(dir, dest, Path::new(""), &overrides)
            .with_context(|| format!("applying overlay {}", dir.display()))?;
    }
    Ok(())
}

/// The mode-override file at the root of an overlay directory.
const STATOVERRIDE: &str = "statoverride";

/// One `statoverride` line: set the mode, or add bits to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StatOverride {
    Set(u32),
    Add(u32),
}

/// Read an overlay's `statoverride` (absent: none), keyed by absolute path.
fn read_statoverride(path: &Path) -> Result<BTreeMap<String, StatOverride>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || {
            anyhow::anyhow!(
                "{}:{}: expected \"[=]MODE /path\" (MODE in decimal), got {line:?}",
                path.display(),
                i + 1
            )
        };
        let (mode, file) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
        let file = file.trim();
        if !file.starts_with('/') {
            return Err(bad());
        }
        let (set, digits) = match mode.strip_prefix('=') {
            Some(d) => (true, d),
            None => (false, mode),
        };
        let v: u32 = digits.parse().map_err(|_| bad())?;
        if v > 0o7777 {
            return Err(bad());
        }
        let o = if set {
            StatOverride::Set(v)
        } else {
            StatOverride::Add(v)
        };
        out.insert(file.trim_end_matches('/').to_string(), o);
    }
    Ok(out)
}

/// The mode an overlay entry gets (see the module documentation).
fn overlay_mode(
    mode: u32,
    regular: bool,
    rel: &Path,
    overrides: &BTreeMap<String, StatOverride>,
) -> u32 {
    let mut m = mode & 0o7777 & !0o022 & !0o6000;
    if regular && m & 0o111 != 0 {
        m &= !0o222;
    }
    match overrides.get(&format!("/{}", rel.display())) {
        Some(StatOverride::Set(v)) => *v,
        Some(StatOverride::Add(v)) => m | v,
        None => m,
    }
}

fn mtime(m: &fs::Metadata) -> filetime::FileTime {
    filetime::FileTime::from_last_modification_time(m)
}

/// Copy the contents of `src/rel` into `dest/rel`; `dest/rel` is already a
/// verified real directory (or the root).
fn copy_dir(
    src_root: &Path,
    dest: &Path,
    rel: &Path,
    overrides: &BTreeMap<String, StatOverride>,
) -> Result<()> {
    let src = src_root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&src)
        .with_context(|| format!("listing {}", src.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .with_context(|| format!("listing {}", src.display()))?;
    names.sort();
    for name in names {
        if rel.as_os_str().is_empty() && name == STATOVERRIDE {
            continue;
        }
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
            copy_dir(src_root, dest, &rel, overrides)?;
            fs::set_permissions(
                &d,
                fs::Permissions::from_mode(overlay_mode(
                    m.permissions().mode(),
                    false,
                    &rel,
                    overrides,
                )),
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
            to.set_permissions(fs::Permissions::from_mode(overlay_mode(
                m.permissions().mode(),
                true,
                &rel,
                overrides,
            )))
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
    fn later_overlays_win_and_modes_are_coreos_assemblers() {
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
        fs::set_permissions(a.join("etc/x/run"), fs::Permissions::from_mode(0o4775)).unwrap();
        fs::write(a.join("etc/x/sudoers"), "s").unwrap();
        fs::write(a.join("etc/x/plain"), "p").unwrap();
        fs::set_permissions(a.join("etc/x/plain"), fs::Permissions::from_mode(0o666)).unwrap();
        fs::write(
            a.join("statoverride"),
            "# comment\n=288 /etc/x/sudoers\n512 /etc/x\n",
        )
        .unwrap();
        filetime::set_file_mtime(
            a.join("etc/x/run"),
            filetime::FileTime::from_unix_time(1000, 0),
        )
        .unwrap();
        symlink("motd", b.join("etc/link")).unwrap();
        apply(&dest, &[a, b]).unwrap();
        assert_eq!(fs::read_to_string(dest.join("etc/motd")).unwrap(), "b");
        let m = fs::metadata(dest.join("etc/x/run")).unwrap();
        // No setuid, no group write, no write on executables.
        assert_eq!(m.permissions().mode() & 0o7777, 0o555);
        let mode = |p: &str| fs::metadata(dest.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("etc/x/plain"), 0o644);
        assert_eq!(mode("etc/x/sudoers"), 0o440, "statoverride =288");
        assert_eq!(
            mode("etc/x") & 0o1000,
            0o1000,
            "statoverride adds 512 (sticky)"
        );
        assert!(!dest.join("statoverride").exists());
        assert_eq!(mtime(&m).unix_seconds(), 1000);
        assert_eq!(
            fs::read_link(dest.join("etc/link")).unwrap(),
            Path::new("motd")
        );
    }

    #[test]
    fn bad_statoverride_names_file_and_line() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        fs::create_dir_all(&a).unwrap();
        fs::write(a.join("statoverride"), "=288 /ok\n0o644 /etc/x\n").unwrap();
        let e = format!("{:#}", apply(&t.path().join("d"), &[a]).unwrap_err());
        assert!(e.contains("statoverride:2"), "{e}");
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
