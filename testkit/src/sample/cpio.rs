//! A deterministic cpio "newc" writer (the format the kernel unpacks an
//! initramfs from): entries sorted by path, fixed mtime, uid/gid 0,
//! inode numbers assigned in order.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

/// What an archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    /// A character device node (major, minor).
    CharDev(u32, u32),
}

/// A set of archive entries keyed by path (relative, no leading `/`).
#[derive(Debug, Default, Clone)]
pub struct Archive {
    entries: BTreeMap<String, (Kind, u32)>,
}

/// The mtime of every entry.
pub const MTIME: u32 = 1_700_000_000;

impl Archive {
    pub fn new() -> Archive {
        Archive::default()
    }

    /// Add an entry with permission bits `perm`; its parent directories are
    /// added (0755) when missing. A path added twice is an error.
    pub fn add(&mut self, path: &str, kind: Kind, perm: u32) -> Result<()> {
        let path = path.trim_start_matches('/').trim_end_matches('/');
        if path.is_empty()
            || path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            bail!("bad archive path {path:?}");
        }
        let mut parent = String::new();
        for comp in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|x| x.1)
            .unwrap_or(&[])
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(comp);
            match self.entries.get(&parent) {
                Some((Kind::Dir, _)) => {}
                Some(_) => bail!("{parent} is in the archive but is not a directory"),
                None => {
                    self.entries.insert(parent.clone(), (Kind::Dir, 0o755));
                }
            }
        }
        if self.entries.contains_key(path) {
            bail!("{path} is added to the archive twice");
        }
        self.entries.insert(path.to_string(), (kind, perm & 0o7777));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The archive in newc format, with its trailer, padded to 512 bytes.
    pub fn to_newc(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Sorted by path: a directory comes before what it holds, as it
        // is a prefix of their paths.
        for (i, (path, (kind, perm))) in self.entries.iter().enumerate() {
            let (fmt, data, nlink, rdev): (u32, &[u8], u32, (u32, u32)) = match kind {
                Kind::File(d) => (0o100000, d, 1, (0, 0)),
                Kind::Dir => (0o040000, &[], 2, (0, 0)),
                Kind::Symlink(t) => (0o120000, t.as_bytes(), 1, (0, 0)),
                Kind::CharDev(ma, mi) => (0o020000, &[], 1, (*ma, *mi)),
            };
            let perm = if matches!(kind, Kind::Symlink(_)) {
                0o777
            } else {
                *perm
            };
            header(
                &mut out,
                i as u32 + 1,
                fmt | perm,
                nlink,
                data.len() as u32,
                rdev,
                path,
            );
            out.extend_from_slice(data);
            pad4(&mut out);
        }
        header(&mut out, 0, 0, 1, 0, (0, 0), "TRAILER!!!");
        while !out.len().is_multiple_of(512) {
            out.push(0);
        }
        out
    }
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn header(
    out: &mut Vec<u8>,
    ino: u32,
    mode: u32,
    nlink: u32,
    size: u32,
    rdev: (u32, u32),
    name: &str,
) {
    let mtime = if name == "TRAILER!!!" { 0 } else { MTIME };
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        mtime,
        size,
        0, // devmajor
        0, // devminor
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sample() -> Archive {
        let mut a = Archive::new();
        a.add("/init", Kind::File(b"#!/bin/sh\necho hi\n".to_vec()), 0o755)
            .unwrap();
        a.add("bin/sh", Kind::Symlink("busybox".into()), 0o777)
            .unwrap();
        a.add("bin/busybox", Kind::File(vec![7u8; 1001]), 0o755)
            .unwrap();
        a.add("dev/console", Kind::CharDev(5, 1), 0o600).unwrap();
        a.add("lib/modules/x/a-b.ko", Kind::File(vec![1, 2, 3]), 0o644)
            .unwrap();
        a.add("tmp", Kind::Dir, 0o1777).unwrap();
        a
    }

    #[test]
    fn cpio_lists_and_unpacks_what_was_written() {
        let data = sample().to_newc();
        assert_eq!(data.len() % 512, 0);
        assert_eq!(data, sample().to_newc(), "deterministic");
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("a.cpio");
        std::fs::write(&file, &data).unwrap();
        let out = Command::new("cpio")
            .args(["-t", "-v", "--quiet", "-F"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = listing
            .lines()
            .map(|l| l.split_whitespace().last().unwrap())
            .collect();
        // Symlinks print as "name -> target": take the name column instead.
        let names: Vec<String> = listing
            .lines()
            .zip(names)
            .map(|(l, last)| {
                if l.contains(" -> ") {
                    l.split(" -> ")
                        .next()
                        .unwrap()
                        .rsplit(' ')
                        .next()
                        .unwrap()
                        .into()
                } else {
                    last.into()
                }
            })
            .collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/busybox",
                "bin/sh",
                "dev",
                "dev/console",
                "init",
                "lib",
                "lib/modules",
                "lib/modules/x",
                "lib/modules/x/a-b.ko",
                "tmp"
            ]
        );
        assert!(listing.lines().any(|l| l.starts_with("crw-------")
            && l.contains("5,")
            && l.ends_with("dev/console")));
        assert!(listing.lines().any(|l| l.starts_with("drwxrwxrwt")));

        // Unpack (as an unprivileged-safe subset: no device nodes) and compare.
        let dir = t.path().join("x");
        std::fs::create_dir(&dir).unwrap();
        let out = Command::new("cpio")
            .args(["-i", "-d", "--quiet", "--no-absolute-filenames", "-F"])
            .arg(&file)
            .arg("init")
            .arg("bin/*")
            .arg("lib/*")
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read(dir.join("init")).unwrap(),
            b"#!/bin/sh\necho hi\n"
        );
        assert_eq!(
            std::fs::read(dir.join("bin/busybox")).unwrap(),
            vec![7u8; 1001]
        );
        assert_eq!(
            std::fs::read_link(dir.join("bin/sh")).unwrap(),
            std::path::PathBuf::from("busybox")
        );
        assert_eq!(
            std::fs::read(dir.join("lib/modules/x/a-b.ko")).unwrap(),
            [1, 2, 3]
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(dir.join("init"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o755
        );
    }

    #[test]
    fn bad_paths_and_duplicates_are_refused() {
        let mut a = Archive::new();
        assert!(a.add("../x", Kind::Dir, 0o755).is_err());
        assert!(a.add("", Kind::Dir, 0o755).is_err());
        a.add("f", Kind::File(vec![]), 0o644).unwrap();
        assert!(a.add("f", Kind::File(vec![]), 0o644).is_err());
        assert!(a.add("f/g", Kind::File(vec![]), 0o644).is_err());
    }
}
