//! Kernel and initramfs (rpm-ostree's `process_kernel_and_initramfs` and
//! `rpmostree-kernel.cxx`): /boot moves to /usr/lib/ostree-boot, and the one
//! kernel ends up at /usr/lib/modules/<kver>/vmlinuz with initramfs.img
//! beside it, where ostree looks first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{KernelReport, PostprocessOptions, PostprocessReport, Settings, exists, remove_any};

const OSTREE_BOOT: &str = "usr/lib/ostree-boot";
const MODULES: &str = "usr/lib/modules";

/// Strip a `-<sha256>` boot checksum suffix from a kver found in a boot dir.
fn strip_digest(kver: &str) -> &str {
    if let Some((head, tail)) = kver.rsplit_once('-')
        && tail.len() == 64
        && tail
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return head;
    }
    kver
}

fn regular_files(dir: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        if e.file_type()?.is_file() {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Every kernel in the tree: kver -> the files found for it.
fn find_kernels(tree: &Path) -> Result<BTreeMap<String, Vec<String>>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in regular_files(&tree.join(OSTREE_BOOT))? {
        if let Some(kver) = name.strip_prefix("vmlinuz-") {
            found
                .entry(strip_digest(kver).to_string())
                .or_default()
                .push(format!("/boot/{name}"));
        }
    }
    let modules = tree.join(MODULES);
    if modules.is_dir() {
        for e in
            std::fs::read_dir(&modules).with_context(|| format!("reading {}", modules.display()))?
        {
            let e = e?;
            if !e.file_type()?.is_dir() {
                continue;
            }
            let kver = e.file_name().to_string_lossy().into_owned();
            if exists(&e.path().join("vmlinuz")) {
                found
                    .entry(kver.clone())
                    .or_default()
                    .push(format!("/{MODULES}/{kver}/vmlinuz"));
            }
        }
    }
    Ok(found)
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to)
        .with_context(|| format!("moving {} to {}", from.display(), to.display()))
}

/// Handle /boot and the kernel; `None` when there is no kernel and the tree
/// need not be bootable.
pub fn process(
    tree: &Path,
    s: &Settings,
    opts: &PostprocessOptions,
    r: &mut PostprocessReport,
) -> Result<Option<KernelReport>> {
    move_boot(tree, r)?;
    let kernels = find_kernels(tree)?;
    let (kver, where_) = match kernels.len() {
        0 if opts.bootable => bail!(
            "no kernel in the tree: a bootable tree needs one at /usr/lib/modules/<kver>/vmlinuz \
             (or /boot/vmlinuz-<kver>); add a kernel package to the manifest"
        ),
        0 => {
            machine_id(tree, s)?;
            ensure_boot(tree)?;
            return Ok(None);
        }
        1 => kernels.into_iter().next().context("one kernel")?,
        _ => bail!(
            "the tree holds {} kernels, but an OSTree commit carries exactly one: {}",
            kernels.len(),
            kernels
                .iter()
                .map(|(k, f)| format!("{k} ({})", f.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    let boot_kernels: Vec<&String> = where_.iter().filter(|f| f.starts_with("/boot/")).collect();
    if boot_kernels.len() > 1 {
        bail!("several files for kernel {kver} in /boot: {boot_kernels:?}");
    }
    let moddir = tree.join(MODULES).join(&kver);
    std::fs::create_dir_all(&moddir).with_context(|| format!("creating {}", moddir.display()))?;
    let mut initramfs = if exists(&moddir.join("initramfs.img")) {
        "package"
    } else {
        "none"
    };
    // A kernel the package put in /boot wins, as in rpm-ostree.
    if let Some(f) = boot_kernels.first() {
        let name = &f["/boot/".len()..];
        rename(&tree.join(OSTREE_BOOT).join(name), &moddir.join("vmlinuz"))?;
        r.moved(
            &format!("boot/{name}"),
            &format!("{MODULES}/{kver}/vmlinuz"),
        );
    }
    let initrds: Vec<String> = regular_files(&tree.join(OSTREE_BOOT))?
        .into_iter()
        .filter(|n| n == "initramfs.img" || n.starts_with("initramfs-"))
        .collect();
    if initrds.len() > 1 {
        bail!("several initramfs images in /boot: {}", initrds.join(", "));
    }
    if let Some(name) = initrds.first() {
        rename(
            &tree.join(OSTREE_BOOT).join(name),
            &moddir.join("initramfs.img"),
        )?;
        r.moved(
            &format!("boot/{name}"),
            &format!("{MODULES}/{kver}/initramfs.img"),
        );
        initramfs = "boot";
    }
    machine_id(tree, s)?;
    if crate::compose::initramfs::ensure_module_index(tree, &kver)? {
        r.warn(format!(
            "kernel {kver} came without a module index (modules.dep): made it with the host's depmod"
        ));
    }
    if let (Some(spec), true) = (&opts.initramfs, opts.bootable) {
        if initramfs != "none" {
            r.warn(format!(
                "initramfs.yaml replaces the initramfs of kernel {kver} that came from the {initramfs}"
            ));
        }
        let t = std::time::Instant::now();
        let made = crate::compose::initramfs::build(
            tree,
            &kver,
            &spec.for_arch(&opts.basearch),
            &moddir.join("initramfs.img"),
            0,
        )
        .with_context(|| format!("making the initramfs of kernel {kver} (initramfs.yaml)"))?;
        eprintln!(
            "Made the initramfs from the tree: {} files ({} libraries), {} kernel modules, {} KiB, {:.1}s",
            made.files,
            made.libraries,
            made.modules,
            made.size / 1024,
            t.elapsed().as_secs_f64()
        );
        initramfs = "initramfs.yaml";
    } else if initramfs == "none" && opts.bootable {
        if s.no_initramfs {
            r.warn(format!(
                "kernel {kver} has no initramfs (no-initramfs is set)"
            ));
        } else {
            run_dracut(tree, &kver, s, opts, r)?;
            initramfs = "dracut";
        }
    }
    if !s.boot_location_modules {
        link_into_ostree_boot(tree, &kver)?;
    }
    ensure_boot(tree)?;
    Ok(Some(KernelReport {
        version: kver,
        initramfs: initramfs.into(),
    }))
}

/// /boot/<machine-id> (from kernel-install) and /boot/loader (ostree owns
/// it) go; the rest of /boot moves to /usr/lib/ostree-boot.
fn move_boot(tree: &Path, r: &mut PostprocessReport) -> Result<()> {
    let boot = tree.join("boot");
    if !std::fs::symlink_metadata(&boot).is_ok_and(|m| m.is_dir()) {
        remove_any(&boot)?;
        return Ok(());
    }
    if let Ok(id) = std::fs::read_to_string(tree.join("usr/etc/machine-id")) {
        let id = id.trim();
        if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            remove_any(&boot.join(id))?;
        }
    }
    remove_any(&boot.join("loader"))?;
    let dest = tree.join(OSTREE_BOOT);
    if exists(&dest) {
        if std::fs::read_dir(&boot)?.next().is_some() {
            bail!("the tree has both /boot content and /usr/lib/ostree-boot");
        }
        std::fs::remove_dir(&boot)?;
        return Ok(());
    }
    std::fs::create_dir_all(tree.join("usr/lib"))?;
    rename(&boot, &dest)?;
    r.moved("boot", OSTREE_BOOT);
    Ok(())
}

/// `machineid-compat` (default true): an empty /usr/etc/machine-id, which
/// systemd fills at first boot; otherwise none.
fn machine_id(tree: &Path, s: &Settings) -> Result<()> {
    let p = tree.join("usr/etc/machine-id");
    if s.machineid_compat {
        if tree.join("usr/etc").is_dir() {
            super::write_mode(&p, b"", 0o644)?;
        }
    } else {
        remove_any(&p)?;
    }
    Ok(())
}

/// /boot stays as an empty mount point.
fn ensure_boot(tree: &Path) -> Result<()> {
    let boot = tree.join("boot");
    if !exists(&boot) {
        std::fs::create_dir(&boot).context("creating /boot")?;
    }
    Ok(())
}

/// `boot-location: new`: also hardlink the kernel and initramfs into
/// /usr/lib/ostree-boot as `vmlinuz-<kver>-<bootcsum>` and
/// `initramfs-<kver>.img-<bootcsum>`, bootcsum being the sha256 of the
/// kernel followed by the initramfs.
fn link_into_ostree_boot(tree: &Path, kver: &str) -> Result<()> {
    let moddir = tree.join(MODULES).join(kver);
    let kernel = moddir.join("vmlinuz");
    let initrd = moddir.join("initramfs.img");
    let present: Vec<&Path> = [kernel.as_path(), initrd.as_path()]
        .into_iter()
        .filter(|p| exists(p))
        .collect();
    let csum = crate::util::digest::sha256_files(&present)?;
    let dir = tree.join(OSTREE_BOOT);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut links: Vec<(PathBuf, PathBuf)> =
        vec![(kernel, dir.join(format!("vmlinuz-{kver}-{csum}")))];
    if exists(&initrd) {
        links.push((initrd, dir.join(format!("initramfs-{kver}.img-{csum}"))));
    }
    for (from, to) in links {
        remove_any(&to)?;
        std::fs::hard_link(&from, &to)
            .with_context(|| format!("linking {} to {}", to.display(), from.display()))?;
    }
    Ok(())
}

/// Generate the initramfs with the tree's own dracut, in bubblewrap, with
/// /usr/etc seen as /etc (and the /usr/lib users visible in it).
fn run_dracut(
    tree: &Path,
    kver: &str,
    s: &Settings,
    opts: &PostprocessOptions,
    r: &mut PostprocessReport,
) -> Result<()> {
    let has_dracut = ["/usr/bin/dracut", "/usr/sbin/dracut"]
        .iter()
        .any(|p| super::super::scripts::resolve_in_root(tree, p).is_some_and(|p| p.is_file()));
    if !has_dracut {
        bail!(
            "kernel {kver} has no initramfs (/usr/lib/modules/{kver}/initramfs.img) and the tree \
             has no dracut to make one: add dracut to the manifest, ship the initramfs in the \
             kernel package, or set no-initramfs: true"
        );
    }
    if let Some(reason) = super::script_skip_reason(opts) {
        bail!("kernel {kver} has no initramfs and dracut cannot run: {reason}");
    }
    let host = tempfile::Builder::new()
        .prefix("cosa-dracut-")
        .tempdir()
        .context("creating a dracut work directory")?;
    std::fs::create_dir(host.path().join("work"))?;
    const INSIDE: &str = "/tmp/cosa-dracut";
    let out_inside = format!("{INSIDE}/initramfs.img");
    let mut argv: Vec<String> = [
        "dracut",
        "--reproducible",
        "-v",
        "--add",
        "ostree",
        &format!("--tmpdir={INSIDE}/work"),
        "-f",
        &out_inside,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if s.initramfs_args.is_empty() {
        argv.push("--no-hostonly".into());
    } else {
        argv.extend(s.initramfs_args.iter().cloned());
    }
    argv.extend(["--kver".into(), kver.into()]);
    let binds = vec![(host.path().to_path_buf(), INSIDE.to_string(), true)];
    let mut env = vec![("DRACUT_NO_MKNOD", "1".to_string())];
    env.extend(opts.sandbox_env());
    {
        let _etc = TempEtc::new(tree)?;
        super::sandbox::run(tree, &argv, &binds, &env, "dracut")
            .with_context(|| format!("generating the initramfs of kernel {kver}"))?;
    }
    let made = host.path().join("initramfs.img");
    if !made.is_file() {
        bail!("dracut succeeded but wrote no initramfs for kernel {kver}");
    }
    let dest = tree.join(MODULES).join(kver).join("initramfs.img");
    std::fs::copy(&made, &dest)
        .with_context(|| format!("copying the initramfs to {}", dest.display()))?;
    // Server-side made, no secrets: world-readable (as rpm-ostree does).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("setting the mode of {}", dest.display()))?;
    r.scripts_run.push("dracut".into());
    Ok(())
}

/// While alive, /usr/etc is back at /etc with the /usr/lib passwd and group
/// entries appended (dracut has no altfiles); undone on drop.
struct TempEtc {
    tree: PathBuf,
    saved: Vec<(PathBuf, Option<Vec<u8>>)>,
}

impl TempEtc {
    fn new(tree: &Path) -> Result<TempEtc> {
        if !tree.join("usr/etc").is_dir() {
            bail!("the tree has no /usr/etc for dracut");
        }
        rename(&tree.join("usr/etc"), &tree.join("etc"))?;
        let mut t = TempEtc {
            tree: tree.to_path_buf(),
            saved: Vec::new(),
        };
        for f in ["passwd", "group"] {
            let etc = tree.join("etc").join(f);
            let old = std::fs::read(&etc).ok();
            let extra = std::fs::read(tree.join("usr/lib").join(f)).unwrap_or_default();
            t.saved.push((etc.clone(), old.clone()));
            let mut data = old.unwrap_or_default();
            data.extend_from_slice(&extra);
            std::fs::write(&etc, data).with_context(|| format!("writing {}", etc.display()))?;
        }
        Ok(t)
    }
}

impl Drop for TempEtc {
    fn drop(&mut self) {
        for (p, data) in &self.saved {
            let _ = match data {
                Some(d) => std::fs::write(p, d),
                None => std::fs::remove_file(p),
            };
        }
        if let Err(e) = std::fs::rename(self.tree.join("etc"), self.tree.join("usr/etc")) {
            tracing::error!("moving /etc back to /usr/etc after dracut: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_suffix() {
        let d = "a".repeat(64);
        assert_eq!(
            strip_digest(&format!("6.1.0-18-amd64-{d}")),
            "6.1.0-18-amd64"
        );
        assert_eq!(strip_digest("6.1.0-18-amd64"), "6.1.0-18-amd64");
    }
}
