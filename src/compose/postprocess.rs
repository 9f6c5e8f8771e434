//! Turn a composed root tree into an OSTree-ready tree, as rpm-ostree's
//! postprocessing does (`rust/src/composepost.rs`, `rust/src/passwd.rs`,
//! `rust/src/tmpfiles.rs`, `src/libpriv/rpmostree-postprocess.cxx` and
//! `rpmostree-kernel.cxx` in <https://github.com/coreos/rpm-ostree>).
//!
//! The steps, in rpm-ostree's order:
//!
//! 1. treefile postprocessing with `/etc` in place: `mutate-os-release`,
//!    `remove-files`, `add-files`, then the inline `postprocess` scripts and
//!    `postprocess-script` in bubblewrap;
//! 2. `/etc` moves to `/usr/etc`; the top level is rebuilt: only `usr`,
//!    `boot`, `var` and the `lib*`/`bin`/`sbin` compat links are kept, empty
//!    mount points and the ostree symlinks are created ([`layout`]);
//! 3. lock and backup files of passwd/group are dropped, useradd's `HOME` is
//!    pointed at `/var/home`, device nodes are refused;
//! 4. users and groups but root move to `/usr/lib/passwd` and
//!    `/usr/lib/group`, `altfiles` goes into nsswitch.conf ([`passwd`]);
//! 5. `/usr/local` becomes a link into `/var`; a SELinux policy store in
//!    `/var/lib/selinux` moves to `/etc/selinux` ([`sepolicy`]); `/var`
//!    becomes tmpfiles.d entries and is emptied ([`tmpfiles`]);
//! 6. the kernel and initramfs are put in `/usr/lib/modules/<kver>`
//!    ([`kernel`]);
//! 7. uids and gids are checked against the previous build (`check-passwd`,
//!    `check-groups`, default `previous`).
//!
//! Departures from rpm-ostree, each on the side of refusing over guessing:
//! a tree with both `/etc` and `/usr/etc` is refused; a device node (other
//! than an overlayfs whiteout) is refused unless the treefile sets
//! `ignore-devices: true` (rpm-ostree drops them silently by default); an
//! initramfs shipped by the kernel package is kept (rpm-ostree always
//! regenerates it) and dracut only runs when there is none; with
//! `boot-location: modules` a kernel found in `/boot` is moved, not left
//! behind in `/usr/lib/ostree-boot`. Not done: depmod, transient-root
//! trees. The rpm
//! database is written after postprocessing, by [`super::rpmdb`].

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::config::treefile::Treefile;

pub mod files;
pub mod kernel;
pub mod layout;
pub mod passwd;
pub mod sandbox;
pub mod sepolicy;
pub mod settings;
pub mod tmpfiles;
pub mod units;

pub use settings::Settings;

/// What the caller knows that the tree does not.
#[derive(Debug, Clone, Default)]
pub struct PostprocessOptions {
    /// The build's version, for `mutate-os-release`.
    pub version: Option<String>,
    /// `/usr/lib/passwd` of the previous commit (for `check-passwd: previous`).
    pub previous_passwd: Option<String>,
    /// `/usr/lib/group` of the previous commit (for `check-groups: previous`).
    pub previous_group: Option<String>,
    /// The tree must hold exactly one kernel, with an initramfs.
    pub bootable: bool,
    /// Run `postprocess` scripts and dracut; when false they are skipped and
    /// reported.
    pub run_scripts: bool,
    /// The target architecture; scripts are skipped when it is not the host's.
    pub basearch: String,
    /// The config's `initramfs.yaml`: cosa makes the initramfs from the
    /// tree (see [`crate::compose::initramfs`]) instead of taking the
    /// package's or running dracut.
    pub initramfs: Option<crate::compose::initramfs::Spec>,
    /// `SOURCE_DATE_EPOCH` for the postprocess scripts and dracut, over the
    /// one cosa's own environment may give them (a rebuild passes the
    /// recorded commit's timestamp).
    pub source_date_epoch: Option<i64>,
}

impl PostprocessOptions {
    /// Environment for programs run in the tree: `SOURCE_DATE_EPOCH` when set here.
    pub(crate) fn sandbox_env(&self) -> Vec<(&'static str, String)> {
        self.source_date_epoch
            .map(|t| ("SOURCE_DATE_EPOCH", t.to_string()))
            .into_iter()
            .collect()
    }
}

/// The kernel found in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelReport {
    /// `uname -r` of the kernel: the directory name under `/usr/lib/modules`.
    pub version: String,
    /// Where the initramfs came from: "package", "boot" (moved from /boot),
    /// "dracut" (generated here), "initramfs.yaml" (made by cosa from the
    /// tree) or "none".
    pub initramfs: String,
}

/// What postprocessing did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PostprocessReport {
    pub kernel: Option<KernelReport>,
    /// (from, to) paths relative to the tree.
    pub moved: Vec<(String, String)>,
    /// Paths removed by `remove-files`, and top-level entries dropped.
    pub removed: Vec<String>,
    /// Paths written by `add-files`.
    pub added: Vec<String>,
    /// Scripts that ran ("postprocess[1]", "postprocess-script", "dracut").
    pub scripts_run: Vec<String>,
    /// (script, reason) for scripts that did not run.
    pub scripts_skipped: Vec<(String, String)>,
    /// Number of lines written to rpm-ostree-1-autovar.conf.
    pub tmpfiles_entries: usize,
    /// Users and groups that are new since the previous build.
    pub new_users: Vec<String>,
    pub new_groups: Vec<String>,
    /// Files whose write bits `readonly-executables` removed.
    pub readonly_executables: u64,
    /// `units` linked into multi-user.target.wants.
    pub units_enabled: Vec<String>,
    pub warnings: Vec<String>,
}

impl PostprocessReport {
    pub(crate) fn warn(&mut self, msg: impl Into<String>) {
        // The caller prints the report's warnings once, at the end.
        let msg = msg.into();
        tracing::debug!("{msg}");
        self.warnings.push(msg);
    }

    pub(crate) fn moved(&mut self, from: &str, to: &str) {
        self.moved.push((from.to_string(), to.to_string()));
    }
}

/// Postprocess `tree` in place; see the module documentation for the steps.
pub fn postprocess(
    tree: &Path,
    tf: &Treefile,
    opts: &PostprocessOptions,
) -> Result<PostprocessReport> {
    let s = Settings::from_treefile(tf)?;
    let mut r = PostprocessReport::default();
    let ctx = || format!("postprocessing {}", tree.display());
    layout::refuse_both_etc(tree).with_context(ctx)?;

    // 1. Treefile postprocessing, /etc still in place.
    units::enable(tree, &s.units, &mut r).with_context(ctx)?;
    if let Some(t) = &s.default_target {
        units::default_target(tree, t).with_context(ctx)?;
    }
    if !s.units.is_empty() && !s.machineid_compat {
        r.warn(
            "treefile key units with machineid-compat: false: systemd runs `preset-all` on first boot, which may disable these units (rpm-ostree says to use a preset file instead)",
        );
    }
    files::mutate_os_release(tree, tf.mutate_os_release.as_deref(), opts, &mut r)
        .with_context(ctx)?;
    files::remove_files(tree, &tf.remove_files, &mut r).with_context(ctx)?;
    files::add_files(tree, &tf.add_files, &mut r).with_context(ctx)?;
    run_postprocess_scripts(tree, tf, opts, &mut r).with_context(ctx)?;

    // 2. The OSTree layout.
    layout::move_etc(tree, &mut r).with_context(ctx)?;
    layout::prepare_toplevel(tree, &s, &mut r).with_context(ctx)?;
    passwd::remove_backups(tree).with_context(ctx)?;
    layout::useradd_home(tree).with_context(ctx)?;
    layout::check_devices(tree, s.ignore_devices, &mut r).with_context(ctx)?;

    // 3. Users and groups.
    passwd::migrate(tree, &tf.etc_group_members).with_context(ctx)?;
    passwd::nsswitch_altfiles(tree).with_context(ctx)?;

    // 4. /usr/local and /var; the SELinux policy store leaves /var first.
    layout::prepare_links(tree, &s, &mut r).with_context(ctx)?;
    sepolicy::move_store(tree, &mut r).with_context(ctx)?;
    tmpfiles::var_to_tmpfiles(tree, &mut r).with_context(ctx)?;
    tmpfiles::write_integration(tree, &s).with_context(ctx)?;

    // 5. Kernel.
    if !s.container {
        r.kernel = kernel::process(tree, &s, opts, &mut r).with_context(ctx)?;
    }

    // 6. uid/gid stability.
    passwd::check(tree, &s, opts, &mut r).with_context(ctx)?;

    // 7. readonly-executables.
    if s.readonly_executables {
        r.readonly_executables = files::readonly_executables(tree).with_context(ctx)?;
    }
    Ok(r)
}

/// Why scripts do not run, if they don't.
fn script_skip_reason(opts: &PostprocessOptions) -> Option<String> {
    if !opts.run_scripts {
        return Some("scripts disabled".into());
    }
    let host = crate::util::host_arch();
    if opts.basearch != host {
        return Some(format!(
            "target arch {} is not the host arch {host} (scripts cannot run without qemu-user)",
            opts.basearch
        ));
    }
    None
}

/// Inline `postprocess` scripts in order, then `postprocess-script`, each
/// written into the tree's /usr/bin (as rpm-ostree does, so a `#!` line
/// picks the interpreter), run in bubblewrap rooted at the tree, and removed.
fn run_postprocess_scripts(
    tree: &Path,
    tf: &Treefile,
    opts: &PostprocessOptions,
    r: &mut PostprocessReport,
) -> Result<()> {
    let n = tf.postprocess.len();
    // (report name, description for messages, path in the tree, body)
    let mut jobs: Vec<(String, String, String, Vec<u8>)> = Vec::new();
    for (i, script) in tf.postprocess.iter().enumerate() {
        jobs.push((
            format!("postprocess[{}]", i + 1),
            format!("`postprocess` inline script {} of {n}", i + 1),
            format!("usr/bin/rpmostree-postprocess-inline-{i}"),
            script.as_bytes().to_vec(),
        ));
    }
    if let Some(p) = &tf.postprocess_script {
        let body = std::fs::read(p)
            .with_context(|| format!("reading postprocess-script {}", p.display()))?;
        jobs.push((
            "postprocess-script".into(),
            format!("postprocess-script {}", p.display()),
            "usr/bin/rpmostree-treefile-postprocess-script".into(),
            body,
        ));
    }
    if jobs.is_empty() {
        return Ok(());
    }
    if let Some(reason) = script_skip_reason(opts) {
        r.warn(format!(
            "{} postprocess script(s) NOT run: {reason}",
            jobs.len()
        ));
        for (name, ..) in jobs {
            r.scripts_skipped.push((name, reason.clone()));
        }
        return Ok(());
    }
    for (name, what, rel, body) in jobs {
        let host = tree.join(&rel);
        let parent = host.parent().context("script path has no parent")?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        write_mode(&host, &body, 0o755).with_context(|| format!("writing {what} to /{rel}"))?;
        eprintln!("Running {what}");
        let res = sandbox::run(tree, &[format!("/{rel}")], &[], &opts.sandbox_env(), &name);
        let rm = std::fs::remove_file(&host);
        res.with_context(|| format!("{what} failed"))?;
        rm.with_context(|| format!("removing /{rel}"))?;
        r.scripts_run.push(name);
    }
    Ok(())
}

/// Write `data` to `path` (replacing it) with permission bits `mode`.
pub(crate) fn write_mode(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().context("path has no parent")?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, data)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Check that `rel` is a relative path that stays in the tree: no leading
/// `/`, no `..`; returns its normal components.
pub(crate) fn relative_inside(rel: &str, what: &str) -> Result<Vec<String>> {
    let p = Path::new(rel);
    if p.is_absolute() {
        bail!("{what}: invalid absolute path {rel:?} (paths are relative to the tree's root)");
    }
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => bail!("{what}: invalid path {rel:?}: it must not contain '..'"),
        }
    }
    if out.is_empty() {
        bail!("{what}: empty path {rel:?}");
    }
    Ok(out)
}

/// The host path of the directory `parent_rel` inside `tree`, following
/// symlinks as if the tree were `/`; `None` when it does not exist.
pub(crate) fn resolve_dir(tree: &Path, parent_rel: &[String]) -> Option<PathBuf> {
    let joined = format!("/{}", parent_rel.join("/"));
    super::scripts::resolve_in_root(tree, &joined).filter(|p| p.is_dir())
}

/// Is `path` (not followed) present?
pub(crate) fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Remove whatever is at `path` (not following a symlink); absent is fine.
pub(crate) fn remove_any(path: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("inspecting {}", path.display())),
        Ok(md) if md.is_dir() => std::fs::remove_dir_all(path)
            .with_context(|| format!("removing {}", path.display()))
            .map(|_| true),
        Ok(_) => std::fs::remove_file(path)
            .with_context(|| format!("removing {}", path.display()))
            .map(|_| true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_inside("usr/./share/x", "t").unwrap(),
            ["usr", "share", "x"]
        );
        for bad in ["/usr/x", "usr/../../x", "..", "", "."] {
            assert!(relative_inside(bad, "t").is_err(), "{bad}");
        }
        let e = relative_inside("/etc/x", "remove-files")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("remove-files: invalid absolute path \"/etc/x\""),
            "{e}"
        );
    }
}
