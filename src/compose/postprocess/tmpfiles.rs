//! /var becomes systemd tmpfiles.d entries (rpm-ostree's `var_to_tmpfiles`
//! in `rust/src/tmpfiles.rs`): an OSTree commit carries no /var content;
//! directories and symlinks are recreated at boot from
//! /usr/lib/tmpfiles.d/rpm-ostree-1-autovar.conf, regular files are dropped.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use regex::Regex;

use super::settings::{OptUsrLocal, Settings};
use super::{PostprocessReport, passwd, remove_any};

/// The generated file, relative to the tree.
pub const AUTOVAR: &str = "usr/lib/tmpfiles.d/rpm-ostree-1-autovar.conf";

/// State files known to be harmless to drop; removed first so they raise no
/// warning.
const KNOWN_STATE_FILES: &[&str] = &[
    "var/lib/systemd/random-seed",
    "var/lib/systemd/catalog/database",
    "var/lib/plymouth/boot-duration",
    "var/log/wtmp",
    "var/log/btmp",
];

/// `d`/`L` lines rpm-ostree ships for the directories its layout points at
/// (`rpm-ostree-0-integration.conf`).
const INTEGRATION: &str = "\
# Written by cosa: the targets of the OSTree layout's symlinks.
d /var/home 0755 root root -
d /var/srv 0755 root root -
d /var/roothome 0700 root root -
d /var/mnt 0755 root root -
d /run/media 0755 root root -
L /var/lib/rpm - - - - ../../usr/share/rpm
L /var/lib/selinux - - - - ../../etc/selinux

# Normally made by the filesystem package's lua script, which does not run.
d /usr/local/bin 0755 root root -
d /usr/local/etc 0755 root root -
d /usr/local/games 0755 root root -
d /usr/local/include 0755 root root -
d /usr/local/lib 0755 root root -
d /usr/local/sbin 0755 root root -
d /usr/local/share 0755 root root -
d /usr/local/src 0755 root root -
";

const OPT_USRLOCAL_VAR: &str = "\
# Written by cosa: /opt and /usr/local are links into /var.
d /var/opt 0755 root root -
d /var/usrlocal 0755 root root -
";

const OPT_USRLOCAL_COMPAT: &str = "\
# Written by cosa: /opt and /usr/local live in the commit; the old /var paths point at them.
L /var/usrlocal - - - - ../usr/local
L /var/opt - - - - ../usr/lib/opt
";

/// Quote a path for tmpfiles.d when it holds anything beyond
/// `[[:alnum:]-._/=:]` (rpm-ostree's `shellsafe_quote`).
pub fn quote_path(p: &str) -> String {
    static SAFE: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r"^[[:alnum:]\-._/=:]+$").expect("valid regex"));
    if SAFE.is_match(p) {
        p.to_string()
    } else {
        super::files::shell_quote(p)
    }
}

/// uid -> name and gid -> name from /usr/etc and /usr/lib passwd/group.
struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    fn load(tree: &Path) -> Result<Names> {
        let mut n = Names {
            users: HashMap::new(),
            groups: HashMap::new(),
        };
        for (rel, group) in [
            ("usr/etc/passwd", false),
            ("usr/lib/passwd", false),
            ("usr/etc/group", true),
            ("usr/lib/group", true),
        ] {
            let p = tree.join(rel);
            let text = match std::fs::read_to_string(&p) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
            };
            let map = if group { &mut n.groups } else { &mut n.users };
            for e in passwd::parse(&text, group, rel)? {
                map.insert(e.id, e.name);
            }
        }
        Ok(n)
    }
}

/// The tmpfiles.d line for one /var entry: `L` for a symlink (given its
/// target), `d` for a directory, `f` for a kept regular file.
fn entry_line(
    abs: &str,
    md: &std::fs::Metadata,
    target: Option<&str>,
    names: &Names,
) -> Result<String> {
    let mut path = abs.to_string();
    // systemd-tmpfiles complains about /var/run; it is /run.
    if let Some(rest) = path.strip_prefix("/var/run/") {
        path = format!("/run/{rest}");
    }
    let path = quote_path(&path);
    if let Some(t) = target {
        return Ok(format!("L {path} - - - - {t}"));
    }
    let user = names
        .users
        .get(&md.uid())
        .ok_or_else(|| anyhow!("{abs}: no user has uid {} in the tree", md.uid()))?;
    let group = names
        .groups
        .get(&md.gid())
        .ok_or_else(|| anyhow!("{abs}: no group has gid {} in the tree", md.gid()))?;
    let ty = if md.is_dir() { 'd' } else { 'f' };
    Ok(format!(
        "{ty} {path} {:04o} {user} {group} - -",
        md.mode() & 0o7777
    ))
}

/// Convert /var to tmpfiles.d entries and empty it.
pub fn var_to_tmpfiles(tree: &Path, r: &mut PostprocessReport) -> Result<()> {
    let names = Names::load(tree)?;
    // /run is a tmpfs: what packages put in /var/run is not kept.
    remove_any(&tree.join("var/run"))?;
    for f in KNOWN_STATE_FILES {
        let p = tree.join(f);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    let mut entries = BTreeSet::new();
    walk(tree, "var", &names, &mut entries, r).context("converting /var to tmpfiles.d")?;
    let dir = tree.join("usr/lib/tmpfiles.d");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let text: String = entries.iter().map(|l| format!("{l}\n")).collect();
    super::write_mode(&tree.join(AUTOVAR), text.as_bytes(), 0o644)?;
    r.tmpfiles_entries = entries.len();
    Ok(())
}

/// Depth first; each entry is removed once translated.
fn walk(
    tree: &Path,
    rel: &str,
    names: &Names,
    out: &mut BTreeSet<String>,
    r: &mut PostprocessReport,
) -> Result<()> {
    let dir = tree.join(rel);
    let mut list: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    list.sort_by_key(|e| e.file_name());
    for e in list {
        let name = e.file_name();
        let name = name
            .to_str()
            .ok_or_else(|| anyhow!("/{rel}/{name:?}: non UTF-8 file name"))?;
        let sub = format!("{rel}/{name}");
        let md = std::fs::symlink_metadata(e.path())?;
        // nfs-utils on RHEL 7 needs these files (rpm-ostree keeps them as `f`).
        let keep_file = md.is_file() && sub.starts_with("var/lib/nfs/");
        if !(md.is_dir() || md.is_symlink() || keep_file) {
            std::fs::remove_file(e.path()).with_context(|| format!("removing /{sub}"))?;
            r.warn(format!(
                "dropping /{sub}: only directories and symlinks in /var are kept (as tmpfiles.d entries)"
            ));
            continue;
        }
        let target = if md.is_symlink() {
            let t = std::fs::read_link(e.path())?;
            Some(
                t.to_str()
                    .ok_or_else(|| anyhow!("/{sub}: non UTF-8 symlink target {t:?}"))?
                    .to_string(),
            )
        } else {
            None
        };
        out.insert(entry_line(
            &format!("/{sub}"),
            &md,
            target.as_deref(),
            names,
        )?);
        if md.is_dir() {
            walk(tree, &sub, names, out, r)?;
            std::fs::remove_dir(e.path()).with_context(|| format!("removing /{sub}"))?;
        } else {
            std::fs::remove_file(e.path()).with_context(|| format!("removing /{sub}"))?;
        }
    }
    Ok(())
}

/// The static tmpfiles.d files for the layout's link targets.
pub fn write_integration(tree: &Path, s: &Settings) -> Result<()> {
    let dir = tree.join("usr/lib/tmpfiles.d");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    super::write_mode(
        &dir.join("rpm-ostree-0-integration.conf"),
        INTEGRATION.as_bytes(),
        0o644,
    )?;
    let (name, text) = if s.opt_usrlocal == OptUsrLocal::StateOverlay {
        (
            "rpm-ostree-0-integration-opt-usrlocal-compat.conf",
            OPT_USRLOCAL_COMPAT,
        )
    } else {
        (
            "rpm-ostree-0-integration-opt-usrlocal.conf",
            OPT_USRLOCAL_VAR,
        )
    };
    super::write_mode(&dir.join(name), text.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_path("/var/lib/a-b_c.d=e:f"), "/var/lib/a-b_c.d=e:f");
        assert_eq!(quote_path("/var/lib/a b"), "'/var/lib/a b'");
    }
}
