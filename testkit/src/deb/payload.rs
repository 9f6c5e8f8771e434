//! A .deb's members: the control archive (control, conffiles, maintainer
//! scripts) and the data archive as [`FileSpec`]s, with the /usr merge
//! applied.
//!
//! Both archives are read through `dpkg-deb --ctrl-tarfile` /
//! `--fsys-tarfile` (which undo whatever compression the .deb uses) and
//! walked with the `tar` crate.
//!
//! usrmerge: an OSTree tree keeps the OS in /usr only, so entries under
//! `/bin`, `/sbin`, `/lib`, `/lib32`, `/lib64` and `/libx32` move under
//! `/usr` (the OS then has `/bin -> usr/bin` and so on). When a moved entry
//! lands on a path the package already has, an identical entry (same
//! kind, content or target, mode, owner) is kept once; a different one is
//! an error naming the package and both paths. Symlink targets are kept as
//! written: an absolute `/bin/x` still resolves through the OS's `/bin`
//! link, and a relative one resolves as before because its directory is
//! the same one seen through the link. (A relative target that climbs out
//! of a moved directory, e.g. `/lib/x -> ../usr/lib/y`, would go one level
//! too far after the move; Debian's lint forbids such links, so they are
//! not rewritten.)

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::control::{Paragraph, parse_control};
use crate::fixture::{FileKind, FileSpec};

/// Top-level directories that move under /usr.
pub const MERGED_DIRS: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Maintainer scripts that dpkg runs; the converter does not carry them.
pub const MAINTAINER_SCRIPTS: &[&str] = &[
    "preinst", "postinst", "prerm", "postrm", "config", "triggers",
];

/// What the control archive holds.
#[derive(Debug, Clone)]
pub struct ControlInfo {
    pub control: Paragraph,
    /// Conffiles (absolute paths, before the /usr merge).
    pub conffiles: Vec<String>,
    /// Which of [`MAINTAINER_SCRIPTS`] the package has.
    pub scripts: Vec<String>,
}

/// Run `dpkg-deb FLAG deb` and hand its stdout (a tar stream) to `f`.
fn with_tar<T>(deb: &Path, flag: &str, f: impl FnOnce(&mut dyn Read) -> Result<T>) -> Result<T> {
    let mut child = Command::new("dpkg-deb")
        .arg(flag)
        .arg(deb)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running dpkg-deb {flag} {} (install dpkg)", deb.display()))?;
    let mut out = child.stdout.take().context("dpkg-deb's stdout")?;
    let res = f(&mut out);
    // Drain what the reader left (tar's end blocks), so dpkg-deb exits.
    let _ = std::io::copy(&mut out, &mut std::io::sink());
    drop(out);
    let done = child
        .wait_with_output()
        .with_context(|| format!("waiting for dpkg-deb {flag} {}", deb.display()))?;
    if !done.status.success() {
        bail!(
            "dpkg-deb {flag} {} failed: {}",
            deb.display(),
            String::from_utf8_lossy(&done.stderr).trim()
        );
    }
    res
}

/// A tar member's path without the leading `./` or `/` (empty for the root).
fn member_path(p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .with_context(|| format!("non-UTF-8 path {}", p.display()))?;
    let s = s.trim_start_matches("./").trim_start_matches('/');
    Ok(s.trim_end_matches('/').to_string())
}

/// Read the control archive of `deb`.
pub fn read_control(deb: &Path) -> Result<ControlInfo> {
    let (control, conffiles, scripts) = with_tar(deb, "--ctrl-tarfile", |r| {
        let mut control = None;
        let mut conffiles = None;
        let mut scripts = Vec::new();
        let mut ar = tar::Archive::new(r);
        for e in ar.entries().context("reading the control archive")? {
            let mut e = e.context("reading the control archive")?;
            let name = member_path(&e.path().context("a control member's path")?)?;
            let mut text = String::new();
            match name.as_str() {
                "control" | "conffiles" => {
                    e.read_to_string(&mut text)
                        .with_context(|| format!("reading {name} (not UTF-8?)"))?;
                    if name == "control" {
                        control = Some(text);
                    } else {
                        conffiles = Some(text);
                    }
                }
                n if MAINTAINER_SCRIPTS.contains(&n) => scripts.push(n.to_string()),
                _ => {}
            }
        }
        Ok((control, conffiles, scripts))
    })
    .with_context(|| format!("reading the control archive of {}", deb.display()))?;
    let control = control.with_context(|| format!("no control file in {}", deb.display()))?;
    let control = parse_control(&control)
        .with_context(|| format!("parsing the control of {}", deb.display()))?;
    // conffiles: one absolute path a line, optionally followed by a flag
    // (`remove-on-upgrade`: not shipped, nothing to mark).
    let mut cf = Vec::new();
    for line in conffiles.unwrap_or_default().lines() {
        let mut words = line.split_whitespace();
        let Some(path) = words.next() else { continue };
        if words.any(|w| w == "remove-on-upgrade") {
            continue;
        }
        cf.push(path.to_string());
    }
    let mut scripts = scripts;
    scripts.sort();
    Ok(ControlInfo {
        control,
        conffiles: cf,
        scripts,
    })
}

/// The /usr-merged form of an absolute path (`/bin/x` -> `/usr/bin/x`).
pub fn usrmerge_path(path: &str) -> String {
    let rel = path.trim_start_matches('/');
    let top = rel.split('/').next().unwrap_or("");
    if MERGED_DIRS.contains(&top) {
        format!("/usr/{rel}")
    } else {
        format!("/{rel}")
    }
}

/// Whether two entries are the same file (mtimes and hardlink sets aside).
fn same_entry(a: &FileSpec, b: &FileSpec) -> bool {
    let kind = match (&a.kind, &b.kind) {
        (FileKind::File(x), FileKind::File(y)) => x == y,
        (FileKind::Dir, FileKind::Dir) | (FileKind::Ghost, FileKind::Ghost) => true,
        (FileKind::Symlink(x), FileKind::Symlink(y)) => x == y,
        _ => false,
    };
    kind && a.mode == b.mode
        && a.user == b.user
        && a.group == b.group
        && a.caps == b.caps
        && a.config == b.config
}

/// Entries of a package keyed by their (merged) path, with the original
/// path each came from.
#[derive(Debug, Default)]
pub struct Merged {
    entries: BTreeMap<String, (String, FileSpec)>,
}

impl Merged {
    /// Add `spec` (whose path is the original one) under its merged path.
    pub fn add(&mut self, package: &str, mut spec: FileSpec) -> Result<()> {
        let original = spec.path.clone();
        spec.path = usrmerge_path(&original);
        if let Some((first, have)) = self.entries.get(&spec.path) {
            if same_entry(have, &spec) {
                return Ok(());
            }
            bail!(
                "package {package}: {original} and {first} are both {} after the /usr merge, \
                 and they differ",
                spec.path
            );
        }
        self.entries.insert(spec.path.clone(), (original, spec));
        Ok(())
    }

    fn get_mut(&mut self, merged: &str) -> Option<&mut FileSpec> {
        self.entries.get_mut(merged).map(|(_, s)| s)
    }

    /// The entries, sorted by path.
    pub fn into_specs(self) -> Vec<FileSpec> {
        self.entries.into_values().map(|(_, s)| s).collect()
    }
}

/// The data archive of `deb` (package `package`) as /usr-merged file
/// specs; `conffiles` (original paths) become `%config(noreplace)`.
pub fn read_payload(deb: &Path, package: &str, conffiles: &[String]) -> Result<Vec<FileSpec>> {
    let conffiles: BTreeSet<String> = conffiles.iter().map(|c| usrmerge_path(c)).collect();
    let merged = with_tar(deb, "--fsys-tarfile", |r| {
        let mut merged = Merged::default();
        let mut ar = tar::Archive::new(r);
        for e in ar.entries().context("reading the data archive")? {
            let mut e = e.context("reading the data archive")?;
            let rel = member_path(&e.path().context("a data member's path")?)?;
            if rel.is_empty() {
                continue;
            }
            let path = format!("/{rel}");
            add_member(&mut merged, package, &path, &mut e)
                .with_context(|| format!("package {package}: {path}"))?;
        }
        Ok(merged)
    })
    .with_context(|| format!("reading the data archive of {}", deb.display()))?;
    let mut specs = merged.into_specs();
    for s in &mut specs {
        if conffiles.contains(&s.path) && matches!(s.kind, FileKind::File(_)) {
            s.config = true;
            s.noreplace = true;
        }
    }
    let missing: Vec<&String> = conffiles
        .iter()
        .filter(|c| !specs.iter().any(|s| &&s.path == c))
        .collect();
    if !missing.is_empty() {
        bail!("package {package}: conffiles not in the data archive: {missing:?}");
    }
    Ok(specs)
}

fn add_member<R: Read>(
    merged: &mut Merged,
    package: &str,
    path: &str,
    e: &mut tar::Entry<R>,
) -> Result<()> {
    let h = e.header();
    let mode = (h.mode().context("the mode")? & 0o7777) as u16;
    let mtime = u32::try_from(h.mtime().context("the mtime")?).unwrap_or(u32::MAX);
    let owner = |name: Option<&str>, id: u64| match name {
        Some(n) if !n.is_empty() => n.to_string(),
        _ if id == 0 => "root".to_string(),
        _ => id.to_string(),
    };
    let user = owner(h.username().ok().flatten(), h.uid().context("the uid")?);
    let group = owner(h.groupname().ok().flatten(), h.gid().context("the gid")?);
    let kind = h.entry_type();
    let spec = match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let mut data = Vec::new();
            e.read_to_end(&mut data).context("reading the contents")?;
            FileSpec::file(path, data)
        }
        tar::EntryType::Directory => FileSpec::dir(path),
        tar::EntryType::Symlink => {
            let target = e
                .link_name()
                .context("the link target")?
                .context("a symlink without a target")?;
            let target = target
                .to_str()
                .with_context(|| format!("non-UTF-8 link target {}", target.display()))?;
            FileSpec::symlink(path, target)
        }
        tar::EntryType::Link => {
            let target = e
                .link_name()
                .context("the hardlink target")?
                .context("a hardlink without a target")?;
            let target = usrmerge_path(&format!("/{}", member_path(&target)?));
            let first = merged.get_mut(&target).with_context(|| {
                format!("hardlink to {target}, which comes later or not at all")
            })?;
            first.hardlink_set = Some(target.clone());
            let mut spec = first.clone();
            spec.path = path.to_string();
            merged.add(package, spec)?;
            return Ok(());
        }
        other => bail!("unsupported tar entry type {other:?} (device, fifo...)"),
    };
    let spec = FileSpec {
        mode,
        user,
        group,
        mtime: Some(mtime),
        ..spec
    };
    merged.add(package, spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usrmerge_paths() {
        assert_eq!(usrmerge_path("/bin/sh"), "/usr/bin/sh");
        assert_eq!(usrmerge_path("/sbin"), "/usr/sbin");
        assert_eq!(
            usrmerge_path("/lib64/ld-linux-x86-64.so.2"),
            "/usr/lib64/ld-linux-x86-64.so.2"
        );
        assert_eq!(usrmerge_path("/libx32/a"), "/usr/libx32/a");
        assert_eq!(usrmerge_path("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(usrmerge_path("/etc/bin/x"), "/etc/bin/x");
        assert_eq!(usrmerge_path("/library/x"), "/library/x");
        assert_eq!(usrmerge_path("/lib"), "/usr/lib");
    }

    #[test]
    fn usrmerge_collisions() {
        let mut m = Merged::default();
        m.add("p", FileSpec::dir("/usr/bin")).unwrap();
        m.add("p", FileSpec::file("/usr/bin/x", "same")).unwrap();
        // Directories and identical files collapse into one entry.
        m.add("p", FileSpec::dir("/bin")).unwrap();
        m.add("p", FileSpec::file("/bin/x", "same").mtime(5))
            .unwrap();
        m.add("p", FileSpec::symlink("/bin/l", "x")).unwrap();
        m.add("p", FileSpec::symlink("/usr/bin/l", "x")).unwrap();
        // Different content, mode, kind or target: an error naming both.
        let err = m.add("p", FileSpec::file("/bin/x", "other")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("package p") && msg.contains("/bin/x") && msg.contains("/usr/bin/x"),
            "{msg}"
        );
        assert!(
            m.add("p", FileSpec::file("/bin/x", "same").mode(0o755))
                .is_err()
        );
        assert!(m.add("p", FileSpec::symlink("/bin/x", "same")).is_err());
        assert!(
            m.add("p", FileSpec::symlink("/bin/l", "/usr/bin/x"))
                .is_err()
        );
        assert!(
            m.add("p", FileSpec::dir("/bin").owner("bin", "root"))
                .is_err()
        );
        let specs = m.into_specs();
        let paths: Vec<&str> = specs.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["/usr/bin", "/usr/bin/l", "/usr/bin/x"]);
    }
}
