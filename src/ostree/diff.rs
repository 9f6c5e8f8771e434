//! What differs between two commits of one repository, as `ostree diff`
//! lists it (paths added, removed, modified, in tree order) and a little
//! more: what changed in a modified file (content, mode, owner, xattrs,
//! link target) and which of the commit's own fields differ (metadata
//! keys, timestamp, parent, subject, body). `cosa rebuild-verify` names
//! the first differing file of a commit that did not reproduce.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};

use super::objects::{DirMeta, parse_filez};
use super::{ObjectType, Repo};

/// Modified files whose detail (what changed) is worked out; the rest are
/// only listed, so two unrelated commits still diff quickly.
const DETAILED: usize = 50;

/// `ostree diff`'s letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Kind {
    #[serde(rename = "A")]
    Added,
    #[serde(rename = "D")]
    Removed,
    #[serde(rename = "M")]
    Modified,
}

impl Kind {
    pub fn letter(self) -> char {
        match self {
            Kind::Added => 'A',
            Kind::Removed => 'D',
            Kind::Modified => 'M',
        }
    }
}

/// One differing path.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub kind: Kind,
    /// Absolute, as `ostree diff` prints it (`/usr/bin/sh`).
    pub path: String,
    /// What changed, for modified entries (empty past the first few).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The difference between two commits.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CommitDiff {
    /// Differing paths, in tree order (a directory before its entries).
    pub files: Vec<Change>,
    /// Differing commit fields: `metadata <key>`, `timestamp`, `parent`, ...
    pub commit: Vec<String>,
}

impl CommitDiff {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.commit.is_empty()
    }
}

/// An entry of a directory listing.
#[derive(Clone, PartialEq, Eq)]
enum Entry {
    File(String),
    /// (dirtree, dirmeta)
    Dir(String, String),
}

/// Compare commit `from` with commit `to`, both in `repo`.
pub fn diff_commits(repo: &Repo, from: &str, to: &str) -> Result<CommitDiff> {
    let a = repo.read_commit(from)?;
    let b = repo.read_commit(to)?;
    let mut out = CommitDiff::default();
    let keys: BTreeSet<&String> = a.metadata.keys().chain(b.metadata.keys()).collect();
    for k in keys {
        match (a.metadata.get(k), b.metadata.get(k)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => out.commit.push(format!(
                "metadata {k}: {} -> {}",
                short_json(x),
                short_json(y)
            )),
            (Some(_), None) => out.commit.push(format!("metadata {k}: removed")),
            (None, _) => out.commit.push(format!("metadata {k}: added")),
        }
    }
    if a.timestamp != b.timestamp {
        out.commit.push(format!(
            "timestamp: {} -> {}",
            crate::util::time::format_rfc3339(a.timestamp as i64),
            crate::util::time::format_rfc3339(b.timestamp as i64)
        ));
    }
    if a.parent != b.parent {
        out.commit
            .push(format!("parent: {:?} -> {:?}", a.parent, b.parent));
    }
    if a.subject != b.subject {
        out.commit
            .push(format!("subject: {:?} -> {:?}", a.subject, b.subject));
    }
    if a.body != b.body {
        out.commit.push("body".to_string());
    }
    let root = Entry::Dir(a.root.0.clone(), a.root.1.clone());
    let other = Entry::Dir(b.root.0.clone(), b.root.1.clone());
    diff_entry(repo, "/", &root, &other, &mut out.files)?;
    Ok(out)
}

/// A metadata value in a line: its JSON, cut at 80 characters.
fn short_json(v: &super::Value) -> String {
    let s = v.metadata_json().to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

/// Push a modified `path`, with what changed for the first [`DETAILED`].
fn modified(
    out: &mut Vec<Change>,
    path: &str,
    detail: impl FnOnce() -> Result<String>,
) -> Result<()> {
    let detail = if out.len() < DETAILED {
        detail()?
    } else {
        String::new()
    };
    out.push(Change {
        kind: Kind::Modified,
        path: path.to_string(),
        detail,
    });
    Ok(())
}

fn diff_entry(repo: &Repo, path: &str, a: &Entry, b: &Entry, out: &mut Vec<Change>) -> Result<()> {
    if a == b {
        return Ok(());
    }
    match (a, b) {
        (Entry::Dir(ta, ma), Entry::Dir(tb, mb)) => {
            if ma != mb {
                modified(out, path, || dirmeta_detail(repo, ma, mb))?;
            }
            if ta != tb {
                let la = listing(repo, ta)?;
                let lb = listing(repo, tb)?;
                let names: BTreeSet<&String> = la.keys().chain(lb.keys()).collect();
                for n in names {
                    let p = if path == "/" {
                        format!("/{n}")
                    } else {
                        format!("{path}/{n}")
                    };
                    match (la.get(n), lb.get(n)) {
                        (Some(x), Some(y)) => diff_entry(repo, &p, x, y, out)?,
                        (Some(_), None) => out.push(change(Kind::Removed, p)),
                        (None, Some(_)) => out.push(change(Kind::Added, p)),
                        (None, None) => unreachable!("name from one of the listings"),
                    }
                }
            }
        }
        (Entry::File(ca), Entry::File(cb)) => {
            modified(out, path, || file_detail(repo, ca, cb))?;
        }
        // A file became a directory or the other way round.
        _ => {
            out.push(change(Kind::Removed, path.to_string()));
            out.push(change(Kind::Added, path.to_string()));
        }
    }
    Ok(())
}

fn change(kind: Kind, path: String) -> Change {
    Change {
        kind,
        path,
        detail: String::new(),
    }
}

/// A dirtree's entries by name.
fn listing(repo: &Repo, tree: &str) -> Result<BTreeMap<String, Entry>> {
    let t = repo.read_dirtree(tree)?;
    let mut m: BTreeMap<String, Entry> = t
        .files
        .into_iter()
        .map(|(n, c)| (n, Entry::File(c)))
        .collect();
    m.extend(t.dirs.into_iter().map(|(n, t, d)| (n, Entry::Dir(t, d))));
    Ok(m)
}

fn dirmeta_detail(repo: &Repo, a: &str, b: &str) -> Result<String> {
    let read = |c: &str| -> Result<DirMeta> {
        DirMeta::parse(&repo.read_object(c, ObjectType::DirMeta)?)
            .with_context(|| format!("parsing dirmeta {c}"))
    };
    let (a, b) = (read(a)?, read(b)?);
    let mut what = Vec::new();
    if a.mode != b.mode {
        what.push(format!("mode {:o} -> {:o}", a.mode, b.mode));
    }
    if (a.uid, a.gid) != (b.uid, b.gid) {
        what.push(format!("owner {}:{} -> {}:{}", a.uid, a.gid, b.uid, b.gid));
    }
    if a.xattrs != b.xattrs {
        what.push("xattrs".to_string());
    }
    Ok(what.join(", "))
}

fn file_detail(repo: &Repo, a: &str, b: &str) -> Result<String> {
    let read = |c: &str| -> Result<_> {
        parse_filez(&repo.read_object(c, ObjectType::File)?)
            .with_context(|| format!("parsing content object {c}"))
    };
    let ((ma, ca), (mb, cb)) = (read(a)?, read(b)?);
    let mut what = Vec::new();
    if ca != cb {
        match ca.iter().zip(&cb).position(|(x, y)| x != y) {
            Some(i) => what.push(format!(
                "content: {} -> {} bytes, first difference at byte {i}",
                ca.len(),
                cb.len()
            )),
            None => what.push(format!("content: {} -> {} bytes", ca.len(), cb.len())),
        }
    }
    if ma.mode != mb.mode {
        what.push(format!("mode {:o} -> {:o}", ma.mode, mb.mode));
    }
    if (ma.uid, ma.gid) != (mb.uid, mb.gid) {
        what.push(format!(
            "owner {}:{} -> {}:{}",
            ma.uid, ma.gid, mb.uid, mb.gid
        ));
    }
    if ma.symlink != mb.symlink {
        what.push(format!("link {:?} -> {:?}", ma.symlink, mb.symlink));
    }
    if ma.xattrs != mb.xattrs {
        what.push("xattrs".to_string());
    }
    Ok(what.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ostree::Commit;
    use std::collections::BTreeMap;

    fn commit(repo: &Repo, dir: &std::path::Path, version: &str) -> String {
        let root = repo.write_dir(dir).unwrap();
        let mut metadata = BTreeMap::new();
        metadata.insert("version".to_string(), crate::ostree::Value::str(version));
        repo.write_commit(&Commit {
            parent: None,
            subject: String::new(),
            body: String::new(),
            timestamp: 1_700_000_000,
            metadata,
            root,
        })
        .unwrap()
    }

    #[test]
    fn names_paths_in_tree_order_and_commit_fields() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let repo = Repo::init_archive(&t.path().join("repo")).unwrap();
        let tree = t.path().join("tree");
        for d in ["usr/bin", "usr/lib", "etc"] {
            std::fs::create_dir_all(tree.join(d)).unwrap();
        }
        std::fs::write(tree.join("usr/bin/a"), "same").unwrap();
        std::fs::write(tree.join("usr/lib/b"), "old content").unwrap();
        std::fs::write(tree.join("etc/gone"), "x").unwrap();
        let a = commit(&repo, &tree, "1");
        assert!(diff_commits(&repo, &a, &a).unwrap().is_empty());

        std::fs::write(tree.join("usr/lib/b"), "new content!").unwrap();
        std::fs::remove_file(tree.join("etc/gone")).unwrap();
        std::fs::write(tree.join("usr/lib/c"), "added").unwrap();
        std::fs::set_permissions(tree.join("usr/bin"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let b = commit(&repo, &tree, "2");
        let d = diff_commits(&repo, &a, &b).unwrap();
        let got: Vec<(char, &str)> = d
            .files
            .iter()
            .map(|c| (c.kind.letter(), c.path.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ('D', "/etc/gone"),
                ('M', "/usr/bin"),
                ('M', "/usr/lib/b"),
                ('A', "/usr/lib/c")
            ]
        );
        assert_eq!(d.files[1].detail, "mode 40755 -> 40700");
        assert_eq!(
            d.files[2].detail,
            "content: 11 -> 12 bytes, first difference at byte 0"
        );
        assert_eq!(d.commit, ["metadata version: \"1\" -> \"2\""]);
    }
}
