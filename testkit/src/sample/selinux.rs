//! The sample OS's SELinux policy: Debian's `selinux-policy-default`.
//!
//! The .deb does not ship `contexts/files/file_contexts`: it ships policy
//! modules (`/usr/share/selinux/default/*.pp.bz2`), and its postinst builds
//! the policy with `semodule` (which writes `policy/policy.33`,
//! `contexts/files/file_contexts`, `file_contexts.homedirs` and their
//! compiled `.bin` forms). We do what the postinst does, once, into a
//! private root in the .deb cache (`semodule -p ROOT -s default -n -X 100
//! -i each module of .modules -d each module the postinst leaves
//! disabled`), so the host's policy store and `/etc/selinux` are never
//! touched. The `.bin` files are dropped: libselinux would prefer them
//! to the text files, which are what cosa reads.
//!
//! `file_contexts.homedirs` comes from libsemanage's genhomedircon, which
//! reads the host's password database (root's entries use `/root`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};

use super::debian;
use crate::fixture::{FileSpec, PkgSpec};
use cosa::util::cmd::CommandRunExt;

/// The policy name (`SELINUXTYPE`) of the sample OS.
pub const POLICY: &str = "default";
const DEB: &str = "selinux-policy-default";

/// `/etc/selinux/config` of the sample OS. Permissive: the sample kernel
/// and initramfs do not load a policy, so enforcing would mean nothing.
pub const CONFIG: &str = "SELINUX=permissive\nSELINUXTYPE=default\n";

/// The built policy: a directory holding `etc/selinux/default/...` (text
/// files and `policy/policy.33`), made once per .deb version in the cache.
pub fn debian_policy() -> Result<PathBuf> {
    let cache = debian::cache_dir()?;
    let deb = debian::fetch_deb(&cache, DEB, "all")?;
    let stem = deb
        .file_stem()
        .context("a .deb file name")?
        .to_string_lossy()
        .into_owned();
    let dest = cache.join(format!("{stem}.policy"));
    let store = Path::new("var/lib/selinux").join(POLICY);
    if dest.join("etc/selinux").is_dir() && dest.join(&store).is_dir() {
        return Ok(dest);
    }
    // Made by an older testkit without the store: made again.
    if dest.exists() {
        std::fs::remove_dir_all(&dest)
            .with_context(|| format!("removing the outdated {}", dest.display()))?;
    }
    let unpacked = debian::extract_deb(&cache, &deb)?;
    let tmp = tempfile::Builder::new()
        .prefix(".policy-")
        .tempdir_in(&cache)
        .with_context(|| format!("creating a directory in {}", cache.display()))?;
    build_policy(&deb, &unpacked, tmp.path())
        .with_context(|| format!("building the SELinux policy of {}", deb.display()))?;
    let tmp = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp, &dest) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dest.join(&store).is_dir() {
            return Err(e).with_context(|| format!("moving the policy to {}", dest.display()));
        }
    }
    Ok(dest)
}

/// The modules the postinst disables on a first install (`notdefault=`).
fn not_default_modules(deb: &Path, work: &Path) -> Result<Vec<String>> {
    let ctl = work.join("control");
    Command::new("dpkg-deb")
        .arg("-e")
        .arg(deb)
        .arg(&ctl)
        .run_capture(&format!("reading the control files of {}", deb.display()))?;
    let postinst = std::fs::read_to_string(ctl.join("postinst"))
        .with_context(|| format!("reading the postinst of {}", deb.display()))?;
    let line = postinst
        .lines()
        .find_map(|l| l.trim().strip_prefix("notdefault=\""))
        .with_context(|| format!("no notdefault= line in the postinst of {}", deb.display()))?;
    Ok(line
        .trim_end_matches('"')
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

fn build_policy(deb: &Path, unpacked: &Path, out: &Path) -> Result<()> {
    let work = tempfile::tempdir().context("creating a work directory")?;
    let root = work.path().join("root");
    let etc = root.join("etc/selinux");
    std::fs::create_dir_all(&etc).with_context(|| format!("creating {}", etc.display()))?;
    std::fs::create_dir_all(root.join("var/lib/selinux"))?;
    copy_tree(&unpacked.join("etc/selinux"), &etc)?;
    let modules_dir = unpacked.join("usr/share/selinux").join(POLICY);
    let list = std::fs::read_to_string(modules_dir.join(".modules"))
        .with_context(|| format!("reading {}/.modules", modules_dir.display()))?;
    let mut cmd = Command::new("semodule");
    cmd.arg("-p")
        .arg(&root)
        .args(["-s", POLICY, "-n", "-X", "100"]);
    for m in list.split_whitespace() {
        cmd.arg(format!(
            "-i{}",
            modules_dir.join(format!("{m}.pp.bz2")).display()
        ));
    }
    for m in not_default_modules(deb, work.path())? {
        cmd.arg(format!("-d{m}"));
    }
    cmd.run_capture("building the policy with semodule (package policycoreutils; needs root)")?;
    let built = etc.join(POLICY);
    ensure!(
        built.join("contexts/files/file_contexts").is_file(),
        "semodule wrote no contexts/files/file_contexts under {}",
        built.display()
    );
    let dest = out.join("etc/selinux").join(POLICY);
    std::fs::create_dir_all(&dest)?;
    copy_tree(&built, &dest)?;
    remove_bin(&dest)?;
    // The module store, where Debian's postinst leaves it: semodule on the
    // deployed system needs it (cosa's postprocess moves it into /etc).
    let store = root.join("var/lib/selinux").join(POLICY);
    ensure!(
        store.join("active/modules").is_dir(),
        "semodule wrote no module store under {}",
        store.display()
    );
    let dest = out.join("var/lib/selinux").join(POLICY);
    std::fs::create_dir_all(&dest)?;
    copy_tree(&store, &dest)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type()?.is_dir() {
            std::fs::create_dir_all(&dst)?;
            copy_tree(&src, &dst)?;
        } else if e.file_type()?.is_file() {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

fn remove_bin(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        if e.file_type()?.is_dir() {
            remove_bin(&e.path())?;
        } else if e.file_name().to_string_lossy().ends_with(".bin") {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

/// Every regular file under `dir`, as paths relative to it, sorted.
fn files_under(dir: &Path, rel: &Path, out: &mut Vec<(PathBuf, bool)>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir.join(rel))
        .with_context(|| format!("reading {}", dir.join(rel).display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let r = rel.join(e.file_name());
        let is_dir = e.file_type()?.is_dir();
        out.push((r.clone(), is_dir));
        if is_dir {
            files_under(dir, &r, out)?;
        }
    }
    Ok(())
}

/// The `selinux-policy` package of the sample OS: `/etc/selinux/config`,
/// the built policy under `/etc/selinux/default/` and its module store
/// under `/var/lib/selinux/default/` when `with_store` (as Debian's and
/// Fedora's packages; the busybox OS, which has no semodule, goes without).
pub fn policy_package(with_store: bool) -> Result<PkgSpec> {
    let built = debian_policy()?;
    let version = built
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('_').nth(1))
        .map(|v| v.replace("%3a", ":"))
        .context("the policy's Debian version")?;
    let (version, release) = super::rpm_version(&version);
    let mut p = PkgSpec::new("selinux-policy", &version)
        .release(&format!("{release}.sample"))
        .arch("noarch")
        .requires("filesystem")
        .file(FileSpec::dir("/etc/selinux"))
        .file(FileSpec::file("/etc/selinux/config", CONFIG).config());
    let bases: &[&str] = if with_store {
        &["etc/selinux", "var/lib/selinux"]
    } else {
        &["etc/selinux"]
    };
    for base in bases {
        let base = Path::new(base);
        if base.starts_with("var") {
            p = p.file(FileSpec::dir("/var/lib/selinux"));
        }
        let mut entries = Vec::new();
        files_under(&built.join(base), Path::new(""), &mut entries)?;
        for (rel, is_dir) in entries {
            let path = format!("/{}/{}", base.display(), rel.display());
            p = if is_dir {
                p.file(FileSpec::dir(&path))
            } else {
                let src = built.join(base).join(&rel);
                let data =
                    std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
                p.file(FileSpec::file(&path, data))
            };
        }
    }
    Ok(p)
}
