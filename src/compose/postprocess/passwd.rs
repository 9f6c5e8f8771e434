//! Users and groups in an OSTree tree (rpm-ostree's `rust/src/passwd.rs`):
//! every user but uid 0 moves from /usr/etc/passwd to /usr/lib/passwd,
//! every group but gid 0 from /usr/etc/group to /usr/lib/group (groups in
//! `etc-group-members` are written to both), nss-altfiles reads the
//! /usr/lib files, and ids are checked against the previous build.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::settings::Check;
use super::{PostprocessOptions, PostprocessReport};

/// Lock and backup files shadow-utils leaves behind; not part of a commit.
const LOCK_AND_BACKUP_FILES: &[&str] = &[
    ".pwd.lock",
    "passwd-",
    "group-",
    "shadow-",
    "gshadow-",
    "subuid-",
    "subgid-",
];

/// One `passwd` or `group` line: the name, the ids, and the line itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// uid for passwd, gid for group.
    pub id: u32,
    /// The primary gid for passwd; equal to `id` for group.
    pub gid: u32,
    pub line: String,
}

/// Parse passwd (`group == false`: 7 fields) or group (4 fields) text.
/// Blank lines, comments and NSS compat lines (`+`, `-`) are skipped, as
/// rpm-ostree does; a malformed line is an error naming it.
pub fn parse(text: &str, group: bool, what: &str) -> Result<Vec<Entry>> {
    let fields = if group { 4 } else { 7 };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with(['#', '+', '-']) {
            continue;
        }
        let f: Vec<&str> = line.splitn(fields, ':').collect();
        let bad = || anyhow::anyhow!("{what}: line {}: malformed entry {line:?}", i + 1);
        if f.len() != fields {
            return Err(bad());
        }
        let id: u32 = f[2].parse().map_err(|_| bad())?;
        let gid: u32 = if group {
            id
        } else {
            f[3].parse().map_err(|_| bad())?
        };
        out.push(Entry {
            name: f[0].to_string(),
            id,
            gid,
            line: line.to_string(),
        });
    }
    Ok(out)
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Remove passwd/group lock and backup files from /usr/etc.
pub fn remove_backups(tree: &Path) -> Result<()> {
    for f in LOCK_AND_BACKUP_FILES {
        super::remove_any(&tree.join("usr/etc").join(f))?;
    }
    Ok(())
}

fn lines(entries: &[&Entry]) -> String {
    entries.iter().map(|e| format!("{}\n", e.line)).collect()
}

/// Append `text` to `path` (created 0644 when missing).
fn append(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Split /usr/etc/passwd and /usr/etc/group; see the module documentation.
pub fn migrate(tree: &Path, etc_group_members: &[String]) -> Result<()> {
    std::fs::create_dir_all(tree.join("usr/lib"))?;
    let etc = tree.join("usr/etc/passwd");
    if let Some(text) = read_optional(&etc)? {
        let entries = parse(&text, false, "/usr/etc/passwd")?;
        let (roots, others): (Vec<&Entry>, Vec<&Entry>) = entries.iter().partition(|e| e.id == 0);
        append(&tree.join("usr/lib/passwd"), &lines(&others))?;
        super::write_mode(&etc, lines(&roots).as_bytes(), 0o644)?;
    }
    let etc = tree.join("usr/etc/group");
    if let Some(text) = read_optional(&etc)? {
        let entries = parse(&text, true, "/usr/etc/group")?;
        let (mut keep, others): (Vec<&Entry>, Vec<&Entry>) =
            entries.iter().partition(|e| e.id == 0);
        // Preserved groups go to both files, so systems upgraded from before
        // the preserve list keep working (rpm-ostree's rule).
        keep.extend(
            others
                .iter()
                .filter(|e| etc_group_members.contains(&e.name))
                .copied(),
        );
        append(&tree.join("usr/lib/group"), &lines(&others))?;
        super::write_mode(&etc, lines(&keep).as_bytes(), 0o644)?;
    }
    Ok(())
}

/// Put `altfiles` after `files` on the `passwd:` and `group:` lines (at the
/// end when there is no `files`); a file that already names altfiles, or a
/// symlink (owned by authselect), is left alone; a missing file stays missing.
pub fn add_altfiles(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let Some(prefix) = ["passwd:", "group:"]
            .into_iter()
            .find(|p| line.starts_with(p))
        else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        out.push_str(prefix);
        let mut inserted = false;
        for word in line[prefix.len()..].split_whitespace() {
            if word == "altfiles" {
                return text.to_string();
            }
            out.push(' ');
            out.push_str(word);
            if word == "files" && !inserted {
                out.push_str(" altfiles");
                inserted = true;
            }
        }
        if !inserted {
            out.push_str(" altfiles");
        }
        out.push('\n');
    }
    out
}

pub fn nsswitch_altfiles(tree: &Path) -> Result<()> {
    let p = tree.join("usr/etc/nsswitch.conf");
    match std::fs::symlink_metadata(&p) {
        Ok(m) if m.is_file() => {}
        _ => return Ok(()),
    }
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let new = add_altfiles(&text);
    if new != text {
        let mode = std::fs::metadata(&p)?.mode() & 0o7777;
        super::write_mode(&p, new.as_bytes(), mode)?;
    }
    Ok(())
}

/// The reference entries for a check: name -> (id, gid).
fn reference(
    check: &Check,
    previous: Option<&str>,
    group: bool,
) -> Result<Option<BTreeMap<String, (u32, u32)>>> {
    let what = if group { "group" } else { "passwd" };
    let text = match check {
        Check::None => return Ok(None),
        Check::Data(d) => return Ok(Some(d.clone())),
        Check::Previous => match previous {
            Some(t) => t.to_string(),
            None => return Ok(None),
        },
        Check::File(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading check-{what} file {}", p.display()))?,
    };
    let label = match check {
        Check::File(p) => p.display().to_string(),
        _ => format!("the previous build's /usr/lib/{what}"),
    };
    Ok(Some(
        parse(&text, group, &label)?
            .into_iter()
            .map(|e| (e.name, (e.id, e.gid)))
            .collect(),
    ))
}

/// Does anything in the tree belong to `uid` (or `gid`)?
fn tree_uses_id(dir: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<bool> {
    let md = std::fs::symlink_metadata(dir)?;
    if Some(md.uid()) == uid || Some(md.gid()) == gid {
        return Ok(true);
    }
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        if e.file_type()?.is_dir() {
            if tree_uses_id(&e.path(), uid, gid)? {
                return Ok(true);
            }
            continue;
        }
        let md = e.metadata()?;
        if Some(md.uid()) == uid || Some(md.gid()) == gid {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `check-passwd` and `check-groups`: a name the reference knows keeps its
/// ids; a name that disappeared is refused while files still use its id.
pub fn check(
    tree: &Path,
    s: &super::Settings,
    opts: &PostprocessOptions,
    r: &mut PostprocessReport,
) -> Result<()> {
    for group in [false, true] {
        let (check, previous, ignored) = if group {
            (
                &s.check_groups,
                opts.previous_group.as_deref(),
                &s.ignore_removed_groups,
            )
        } else {
            (
                &s.check_passwd,
                opts.previous_passwd.as_deref(),
                &s.ignore_removed_users,
            )
        };
        let Some(old) = reference(check, previous, group)? else {
            continue;
        };
        let file = if group {
            "usr/lib/group"
        } else {
            "usr/lib/passwd"
        };
        let text = read_optional(&tree.join(file))?.unwrap_or_default();
        let new: BTreeMap<String, (u32, u32)> = parse(&text, group, file)?
            .into_iter()
            .map(|e| (e.name, (e.id, e.gid)))
            .collect();
        let fresh = compare(tree, &old, &new, ignored, group, r)?;
        if group {
            r.new_groups = fresh;
        } else {
            r.new_users = fresh;
        }
    }
    Ok(())
}

fn compare(
    tree: &Path,
    old: &BTreeMap<String, (u32, u32)>,
    new: &BTreeMap<String, (u32, u32)>,
    ignored: &BTreeSet<String>,
    group: bool,
    r: &mut PostprocessReport,
) -> Result<Vec<String>> {
    let (kind, file) = if group {
        ("group", "/usr/lib/group")
    } else {
        ("user", "/usr/lib/passwd")
    };
    let hint = "ids must stay stable across builds: files on deployed systems keep their \
                numeric owners; make the package allocate the same id, or set check-passwd/\
                check-groups to {type: none} to accept the change";
    let new_names: HashSet<&str> = new.keys().map(String::as_str).collect();
    for (name, &(id, _)) in old.iter().filter(|(n, _)| !new_names.contains(n.as_str())) {
        if ignored.contains(name) || ignored.contains("*") {
            continue;
        }
        let (uid, gid) = if group {
            (None, Some(id))
        } else {
            (Some(id), None)
        };
        if tree_uses_id(tree, uid, gid)? {
            bail!(
                "{kind} {name} (id {id}) is missing from the new {file}, but files in the tree \
                 still belong to id {id} (list it in ignore-removed-{kind}s to accept this)"
            );
        }
        r.warn(format!(
            "unused {kind} {name} (id {id}) was removed from {file}"
        ));
    }
    let mut fresh = Vec::new();
    for (name, &(id, gid)) in new {
        let Some(&(old_id, old_gid)) = old.get(name) else {
            fresh.push(name.clone());
            continue;
        };
        if id != old_id {
            let what = if group { "gid" } else { "uid" };
            bail!("{kind} {name}: {what} changed from {old_id} (previous build) to {id}; {hint}");
        }
        if !group && gid != old_gid {
            bail!(
                "user {name}: primary gid changed from {old_gid} (previous build) to {gid}; {hint}"
            );
        }
    }
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn altfiles() {
        assert_eq!(
            add_altfiles(
                "# c\npasswd: files sss\ngroup:  files\nhosts: files dns\nshadow: files\n"
            ),
            "# c\npasswd: files altfiles sss\ngroup: files altfiles\nhosts: files dns\nshadow: files\n"
        );
        assert_eq!(add_altfiles("passwd: sss\n"), "passwd: sss altfiles\n");
        let done = "passwd: files altfiles\ngroup:   files\n";
        assert_eq!(add_altfiles(done), done);
    }

    #[test]
    fn parse_entries() {
        let e = parse(
            "root:x:0:0:root:/root:/bin/sh\n+x\n\n#c\nbin:x:1:1::/:/sbin/nologin\n",
            false,
            "p",
        )
        .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!((e[1].name.as_str(), e[1].id, e[1].gid), ("bin", 1, 1));
        let err = parse("bad:x:1\n", false, "/usr/etc/passwd").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/usr/etc/passwd: line 1: malformed entry \"bad:x:1\""
        );
        let g = parse("wheel:x:10:a,b\n", true, "g").unwrap();
        assert_eq!(g[0].id, 10);
    }
}
