//! Treefile postprocessing of single files: `mutate-os-release`,
//! `remove-files`, `add-files` (rpm-ostree's `compose_postprocess_*`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{PostprocessOptions, PostprocessReport, relative_inside, remove_any, resolve_dir};

/// `glib::shell_quote`: the string in single quotes, each `'` as `'\''`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// rpm-ostree's os-release rewrite: blank lines go; in `VERSION=` and
/// `PRETTY_NAME=` lines every occurrence of `base` becomes `version`; an
/// `OSTREE_VERSION='<version>'` line is appended.
pub fn mutate_os_release_contents(contents: &str, base: &str, version: &str) -> String {
    let mut out = String::new();
    for line in contents.lines().filter(|l| !l.is_empty()) {
        let prefix = ["VERSION=", "PRETTY_NAME="]
            .into_iter()
            .find(|p| line.starts_with(p));
        match prefix {
            Some(p) => {
                out.push_str(p);
                out.push_str(&line[p.len()..].replace(base, version));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out.push_str(&format!("OSTREE_VERSION={}\n", shell_quote(version)));
    out
}

/// `mutate-os-release`: rewrite the file /etc/os-release resolves to
/// (usually /usr/lib/os-release).
pub fn mutate_os_release(
    tree: &Path,
    base: Option<&str>,
    opts: &PostprocessOptions,
    r: &mut PostprocessReport,
) -> Result<()> {
    let Some(base) = base else { return Ok(()) };
    let Some(version) = opts.version.as_deref().filter(|v| !v.is_empty()) else {
        r.warn("ignoring mutate-os-release: no build version given");
        return Ok(());
    };
    let path = super::super::scripts::resolve_in_root(tree, "/etc/os-release")
        .filter(|p| p.is_file())
        .context("mutate-os-release: /etc/os-release is not in the tree (or is a dangling link)")?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("mutate-os-release: reading {}", path.display()))?;
    let mode = std::fs::metadata(&path)
        .with_context(|| format!("inspecting {}", path.display()))?
        .permissions()
        .mode()
        & 0o7777;
    let new = mutate_os_release_contents(&text, base, version);
    super::write_mode(&path, new.as_bytes(), mode)
        .with_context(|| format!("mutate-os-release: writing {}", path.display()))?;
    Ok(())
}

/// `remove-files`: delete each path (relative to the root) and everything
/// under it; an absent path is fine, as in rpm-ostree.
pub fn remove_files(tree: &Path, names: &[String], r: &mut PostprocessReport) -> Result<()> {
    for name in names {
        let comps = relative_inside(name, "remove-files")?;
        let (last, parent) = comps.split_last().context("empty path")?;
        let Some(dir) = resolve_dir(tree, parent) else {
            continue;
        };
        if remove_any(&dir.join(last)).with_context(|| format!("remove-files: {name}"))? {
            r.removed.push(name.clone());
        }
    }
    Ok(())
}

/// `add-files`: copy each source file to its destination in the tree, with
/// the source's permission bits; parent directories are made 0755.
pub fn add_files(
    tree: &Path,
    pairs: &[(PathBuf, String)],
    r: &mut PostprocessReport,
) -> Result<()> {
    for (src, dest) in pairs {
        let rel = dest.trim_start_matches('/');
        let comps = relative_inside(rel, "add-files")?;
        let (last, parent) = comps.split_last().context("empty path")?;
        let dir = ensure_dir_in(tree, parent)
            .with_context(|| format!("add-files: making the parent of {dest}"))?;
        let data =
            std::fs::read(src).with_context(|| format!("add-files: reading {}", src.display()))?;
        let mode = std::fs::metadata(src)
            .with_context(|| format!("add-files: inspecting {}", src.display()))?
            .permissions()
            .mode()
            & 0o7777;
        let target = dir.join(last);
        if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            bail!("add-files: destination {dest} is a directory in the tree");
        }
        super::write_mode(&target, &data, mode)
            .with_context(|| format!("add-files: writing {dest}"))?;
        r.added.push(format!("/{rel}"));
    }
    Ok(())
}

/// Make the directory `comps` inside the tree (following the tree's own
/// symlinks, never leaving it) and return its host path.
/// `readonly-executables`: remove the write bits of every regular file
/// with an execute bit; returns how many files changed.
pub fn readonly_executables(tree: &Path) -> Result<u64> {
    use std::os::unix::fs::PermissionsExt;
    let mut n = 0;
    let mut stack = vec![tree.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e.with_context(|| format!("reading {}", dir.display()))?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                let md = e.metadata()?;
                let mode = md.permissions().mode() & 0o7777;
                if mode & 0o111 != 0 && mode & 0o222 != 0 {
                    std::fs::set_permissions(
                        e.path(),
                        std::fs::Permissions::from_mode(mode & !0o222),
                    )
                    .with_context(|| format!("setting the mode of {}", e.path().display()))?;
                    n += 1;
                }
            }
        }
    }
    Ok(n)
}

fn ensure_dir_in(tree: &Path, comps: &[String]) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let mut cur: Vec<String> = Vec::new();
    for c in comps {
        cur.push(c.clone());
        if resolve_dir(tree, &cur).is_some() {
            continue;
        }
        let parent = resolve_dir(tree, &cur[..cur.len() - 1])
            .with_context(|| format!("/{} is not a directory", cur[..cur.len() - 1].join("/")))?;
        let p = parent.join(c);
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&p)
            .with_context(|| format!("creating {}", p.display()))?;
    }
    resolve_dir(tree, comps).with_context(|| format!("/{} is not a directory", comps.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_rewrite() {
        let input = "NAME=Fedora\nVERSION=\"40 (CoreOS)\"\n\nID=fedora\nVERSION_ID=40\nPRETTY_NAME=\"Fedora CoreOS 40\"\n";
        let out = mutate_os_release_contents(input, "40", "40.20240501.dev.0");
        assert_eq!(
            out,
            "NAME=Fedora\nVERSION=\"40.20240501.dev.0 (CoreOS)\"\nID=fedora\nVERSION_ID=40\nPRETTY_NAME=\"Fedora CoreOS 40.20240501.dev.0\"\nOSTREE_VERSION='40.20240501.dev.0'\n"
        );
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    }
}
