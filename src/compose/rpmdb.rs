//! The rpm database of a composed tree, placed as rpm-ostree places it
//! (`compose_postprocess_rpmdb`, `compose_postprocess_rpm_macro` and
//! `hardlink_rpmdb_base_location` in rpm-ostree's `rust/src/composepost.rs`):
//!
//! - the database: `/usr/share/rpm/rpmdb.sqlite` (written by
//!   [`crate::rpm::rpmdb`], without running rpm);
//! - `/usr/lib/rpm/macros.d/macros.rpm-ostree`: `%_dbpath /usr/share/rpm`,
//!   so the tree's own rpm finds it whatever its default;
//! - `/usr/lib/sysimage/rpm -> ../../share/rpm`: rpm 4.17+ (Fedora 36 on)
//!   defaults to /usr/lib/sysimage/rpm; rpm-ostree keeps the database in
//!   /usr/share/rpm and points the new path at it (its comment: "eventually
//!   we will invert this"; the inverse link, /usr/share/rpm ->
//!   ../lib/sysimage/rpm, is only made for container source roots that
//!   already carry a database, which a compose never is);
//! - `/var/lib/rpm -> ../../usr/share/rpm` in a plain tree
//!   ([`Layout::Rootfs`], `cosa compose rootfs`); a postprocessed tree
//!   ([`Layout::Ostree`]) has an empty /var and gets the link at boot from
//!   tmpfiles.d (`rpm-ostree-0-integration.conf`);
//! - `/usr/lib/sysimage/rpm-ostree-base-db/`: the same files, hard-linked,
//!   the base rpm-ostree compares layered packages against.
//!
//! Treefile keys: `rpmdb` is `sqlite` by default. `host` means "the format
//! the build host's rpm writes": cosa is that writer, and writes sqlite.
//! `target` means "the format the tree's rpm reads": the tree's rpm macro
//! files are read (nothing of the target runs) and a `%_db_backend` other
//! than sqlite is refused. `bdb`/`b-d-b`/`ndb` are refused: rpm can no
//! longer write Berkeley DB, and ndb is not what any rpm-ostree system uses.
//! `rpmdb-normalize` is accepted and changes nothing: the database is always
//! deterministic (see [`crate::rpm::rpmdb`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::postprocess::{remove_any, write_mode};
use super::resolve::Resolved;
use crate::config::treefile::Treefile;
use crate::rpm::PackageMeta;
use crate::rpm::rpmdb::{self, FileSkips, WriteOptions, WriteReport};

/// Where the database lives, relative to the tree.
pub const RPMDB_DIR: &str = "usr/share/rpm";
/// rpm's own default location since 4.17, a link to [`RPMDB_DIR`].
pub const SYSIMAGE_RPMDB: &str = "usr/lib/sysimage/rpm";
/// rpm-ostree's copy of the base database.
pub const BASE_RPMDB: &str = "usr/lib/sysimage/rpm-ostree-base-db";
/// The macro file pointing rpm at [`RPMDB_DIR`].
pub const MACROS: &str = "usr/lib/rpm/macros.d/macros.rpm-ostree";

/// What kind of tree the database goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A plain root filesystem, /var included.
    Rootfs,
    /// A postprocessed OSTree tree: /var is empty and made at boot.
    Ostree,
}

/// Write the rpm database of `pkgs` (the composed set, in install order)
/// into `tree` and lay out its links. `timestamp` (seconds since the epoch)
/// becomes the install time: pass the commit's.
pub fn write_tree_rpmdb(
    tree: &Path,
    layout: Layout,
    resolved: &Resolved,
    pkgs: &[(PackageMeta, PathBuf)],
    timestamp: i64,
) -> Result<WriteReport> {
    let tf = &resolved.treefile;
    check_backend(tf, tree)?;
    let opts = WriteOptions {
        timestamp: timestamp.clamp(0, u32::MAX as i64) as u32,
        arch: resolved.arch.clone(),
        skips: FileSkips {
            documentation: tf.documentation,
            remove_from_packages: super::tree::remove_from_packages(tf)?,
            install_langs: super::tree::install_langs(tf),
        },
    };
    let dir = tree.join(RPMDB_DIR);
    remove_any(&dir)?;
    make_dirs(&dir)?;
    let report = rpmdb::write(&dir.join(rpmdb::DB_FILE), pkgs, &opts)?;

    let macros = tree.join(MACROS);
    make_dirs(macros.parent().context("macro path has no parent")?)?;
    write_mode(
        &macros,
        format!("%_dbpath /{RPMDB_DIR}\n").as_bytes(),
        0o644,
    )?;

    link(tree, SYSIMAGE_RPMDB, "../../share/rpm")?;
    if layout == Layout::Rootfs {
        link(tree, "var/lib/rpm", "../../usr/share/rpm")?;
    }
    hardlink_base(tree)?;
    Ok(report)
}

/// `rpmdb` and `rpmdb-normalize`; see the module documentation.
fn check_backend(tf: &Treefile, tree: &Path) -> Result<()> {
    match tf.other.get("rpmdb-normalize") {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(_)) => {}
        Some(v) => bail!("treefile key rpmdb-normalize: expected a boolean, got {v}"),
    }
    let value = match tf.other.get("rpmdb") {
        None | Some(serde_json::Value::Null) => return Ok(()),
        Some(serde_json::Value::String(s)) => s.as_str(),
        Some(v) => bail!("treefile key rpmdb: expected a string, got {v}"),
    };
    match value {
        "sqlite" | "host" => Ok(()),
        "target" => match tree_db_backend(tree)? {
            Some((b, file, line)) if b != "sqlite" => bail!(
                "treefile key rpmdb: target: the tree's rpm uses the {b:?} database backend \
                 ({file}:{line}); cosa writes only rpm's sqlite database"
            ),
            _ => Ok(()),
        },
        "bdb" | "b-d-b" | "ndb" => bail!(
            "treefile key rpmdb: {value:?} is not supported: cosa writes rpm's sqlite database \
             (use rpmdb: sqlite, the default, or remove the key)"
        ),
        other => {
            bail!("treefile key rpmdb: unknown value {other:?} (expected sqlite, target or host)")
        }
    }
}

/// The last `%_db_backend` the tree's rpm macro files define, with the file
/// (relative to the tree) and line, read in rpm's macro path order.
fn tree_db_backend(tree: &Path) -> Result<Option<(String, String, usize)>> {
    let mut files = vec![PathBuf::from("usr/lib/rpm/macros")];
    for dir in ["usr/lib/rpm/macros.d", "etc/rpm", "usr/etc/rpm"] {
        let Ok(rd) = std::fs::read_dir(tree.join(dir)) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("macros"))
            .collect();
        names.sort();
        files.extend(names.into_iter().map(|n| Path::new(dir).join(n)));
    }
    let mut found = None;
    for rel in files {
        let p = tree.join(&rel);
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let mut w = line.split_whitespace();
            if w.next() == Some("%_db_backend")
                && let Some(v) = w.next()
            {
                found = Some((v.to_string(), rel.display().to_string(), i + 1));
            }
        }
    }
    Ok(found)
}

fn make_dirs(dir: &Path) -> Result<()> {
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o755)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Replace whatever is at `rel` with a symlink to `target`.
fn link(tree: &Path, rel: &str, target: &str) -> Result<()> {
    let p = tree.join(rel);
    remove_any(&p)?;
    make_dirs(p.parent().context("link path has no parent")?)?;
    std::os::unix::fs::symlink(target, &p).with_context(|| format!("creating /{rel} -> {target}"))
}

/// Hard-link every file of [`RPMDB_DIR`] into [`BASE_RPMDB`].
fn hardlink_base(tree: &Path) -> Result<()> {
    let base = tree.join(BASE_RPMDB);
    remove_any(&base)?;
    make_dirs(&base)?;
    let src = tree.join(RPMDB_DIR);
    let mut names: Vec<_> = std::fs::read_dir(&src)
        .with_context(|| format!("reading {}", src.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", src.display()))?;
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let to = base.join(e.file_name());
        std::fs::hard_link(e.path(), &to)
            .with_context(|| format!("linking {} to {}", e.path().display(), to.display()))?;
    }
    Ok(())
}
