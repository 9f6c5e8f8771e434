//! Users and groups of the tree being composed: names are resolved through
//! the tree's own `etc/passwd` and `etc/group`, never the host's.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};

/// name -> id tables read from a tree.
#[derive(Debug, Default, Clone)]
pub struct IdTables {
    pub users: HashMap<String, u32>,
    pub groups: HashMap<String, u32>,
}

/// Parse `name:x:id:...` lines; blank lines, comments and malformed lines are skipped.
pub fn parse_ids(text: &str) -> HashMap<String, u32> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _pw = f.next()?;
            let id = f.next()?.trim().parse().ok()?;
            Some((name.to_string(), id))
        })
        .collect()
}

impl IdTables {
    /// Read `root/etc/passwd` and `root/etc/group` (missing files are empty tables).
    pub fn load(root: &Path) -> Result<IdTables> {
        let read = |rel: &str| -> Result<HashMap<String, u32>> {
            let p = root.join(rel);
            match std::fs::read_to_string(&p) {
                Ok(s) => Ok(parse_ids(&s)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
                Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
            }
        };
        Ok(IdTables {
            users: read("etc/passwd")?,
            groups: read("etc/group")?,
        })
    }

    /// The uid of `name`; root is always 0.
    pub fn uid(&self, name: &str) -> Option<u32> {
        if name == "root" {
            return Some(0);
        }
        self.users.get(name).copied()
    }

    /// The gid of `name`; root is always 0.
    pub fn gid(&self, name: &str) -> Option<u32> {
        if name == "root" {
            return Some(0);
        }
        self.groups.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd() {
        let t = parse_ids(
            "root:x:0:0::/root:/bin/sh\n\n# c\nfoo:x:1000:1000::/:/bin/sh\nbad\nbar:x:nan:1\n",
        );
        assert_eq!(t.get("root"), Some(&0));
        assert_eq!(t.get("foo"), Some(&1000));
        assert_eq!(t.len(), 2);
        let ids = IdTables {
            users: t,
            groups: HashMap::new(),
        };
        assert_eq!(ids.gid("root"), Some(0));
        assert_eq!(ids.gid("foo"), None);
    }
}

/// Append to `etc/passwd` and `etc/group` of the tree every entry of the
/// previous build's files whose name the tree does not have yet.
pub fn merge_previous(root: &Path, passwd: &str, group: &str) -> Result<()> {
    for (file, previous) in [("etc/passwd", passwd), ("etc/group", group)] {
        let path = root.join(file);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        let have: std::collections::HashSet<&str> = current
            .lines()
            .filter_map(|l| l.split(':').next())
            .collect();
        let mut add = String::new();
        for line in previous.lines() {
            let Some(name) = line.split(':').next().filter(|n| !n.is_empty()) else {
                continue;
            };
            if !have.contains(name) {
                add.push_str(line);
                add.push('\n');
            }
        }
        if add.is_empty() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut text = current;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&add);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
