//! Deploy a commit into a fresh OSTree sysroot, as `ostree admin init-fs
//! --modern`, `ostree admin os-init` and `ostree admin deploy` would leave it
//! on a new disk: a bare repository in `/ostree/repo` holding the commit, the
//! deployment checked out with hardlinks to the repository's objects, its
//! `.origin`, the stateroot's `/var`, the `/ostree/boot.1` links, and in the
//! boot directory (the boot partition) the kernel and initramfs under
//! `ostree/<osname>-<bootcsum>/` with a BLS entry in `loader.1/entries/`.
//!
//! Everything is written into plain directories: the disk image stage turns
//! them into file systems with `mkfs.ext4 -d`, so nothing is mounted.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use rayon::prelude::*;

use super::objects::{DirMeta, FileMeta, ObjectType, content_checksum, parse_filez};
use super::repo::Repo;

/// The bootversion and subbootversion a first deployment gets from ostree.
pub const BOOTVERSION: u32 = 1;
pub const SUBBOOTVERSION: u32 = 1;

/// The sysroot repository's config, with `sysroot.bootloader` set to
/// `bootloader` (what ostree on the machine does with boot entries at each
/// later deployment).
fn bare_config(bootloader: &str) -> String {
    format!(
        "[core]\nrepo_version=1\nmode=bare\n\n[sysroot]\nbootloader={bootloader}\nreadonly=true\n"
    )
}

/// Where a tree asks ostree to regenerate GRUB's menu: Debian's
/// `ostree-boot` hook (`/usr/libexec/libostree/grub2-15_ostree`), enabled
/// as `/etc/grub.d/15_ostree`, as Fedora's `ostree-grub2` installs it.
pub const GRUB2_HOOK: &str = "usr/etc/grub.d/15_ostree";

/// `sysroot.bootloader` for the deployment at `deploy`: `grub2` when the
/// tree has the 15_ostree hook, for a GRUB without `blscfg` (Debian's),
/// whose grub.cfg must be written again at each deployment
/// (`grub-mkconfig` with the hook, run by ostree on the machine); else
/// `none`, as upstream's create_disk.sh sets it (ostree writes only the
/// BLS entries, which a GRUB with `blscfg` reads).
pub fn sysroot_bootloader(deploy: &Path) -> &'static str {
    if fs::symlink_metadata(deploy.join(GRUB2_HOOK)).is_ok() {
        "grub2"
    } else {
        "none"
    }
}

/// What to deploy and how.
#[derive(Clone, Debug)]
pub struct DeployOptions {
    /// The stateroot (`fedora-coreos` upstream).
    pub osname: String,
    /// The deployment's `.origin` keyfile (`[origin]` with `refspec=` or
    /// `container-image-reference=`).
    pub origin: String,
    /// Kernel arguments for the BLS entry, before `ostree=`.
    pub kargs: Vec<String>,
}

/// A BLS (Boot Loader Specification) entry as ostree writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlsEntry {
    pub title: String,
    pub version: String,
    pub options: String,
    /// Paths relative to the boot file system's root.
    pub linux: String,
    pub initrd: Option<String>,
}

impl BlsEntry {
    pub fn render(&self) -> String {
        let mut s = format!(
            "title {}\nversion {}\noptions {}\nlinux {}\n",
            self.title, self.version, self.options, self.linux
        );
        if let Some(i) = &self.initrd {
            s.push_str(&format!("initrd {i}\n"));
        }
        s
    }

    pub fn parse(text: &str) -> Result<BlsEntry> {
        let mut keys: BTreeMap<&str, &str> = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            keys.insert(k, v.trim());
        }
        let get = |k: &str| -> Result<String> {
            keys.get(k)
                .map(|s| s.to_string())
                .with_context(|| format!("BLS entry has no `{k}` line"))
        };
        Ok(BlsEntry {
            title: get("title")?,
            version: get("version")?,
            options: get("options")?,
            linux: get("linux")?,
            initrd: keys.get("initrd").map(|s| s.to_string()),
        })
    }
}

/// What `deploy` made.
#[derive(Clone, Debug)]
pub struct Deployment {
    pub commit: String,
    pub osname: String,
    pub kver: String,
    pub bootcsum: String,
    /// `ostree/deploy/<osname>/deploy/<commit>.0`, relative to the sysroot.
    pub deploy_path: PathBuf,
    /// `ostree=/ostree/boot.1/<osname>/<bootcsum>/0`
    pub ostree_karg: String,
    pub bls: BlsEntry,
    /// The BLS file, relative to the boot directory.
    pub bls_path: PathBuf,
    /// Number of distinct content objects in the bare repository.
    pub objects: usize,
    /// `sysroot.bootloader` of the sysroot repository ([`sysroot_bootloader`]).
    pub bootloader: &'static str,
}

/// One directory of the commit, in walk order (parents first).
struct DirEntry {
    path: PathBuf,
    meta: DirMeta,
}

/// Everything a commit holds: directories, files (path -> content checksum)
/// and the metadata objects to copy.
struct Walk {
    dirs: Vec<DirEntry>,
    files: Vec<(PathBuf, String)>,
    metadata: Vec<(String, ObjectType)>,
}

/// ostree's bootcsum: the hex sha256 of the kernel followed by the
/// initramfs; it names the deployment's boot directory.
pub fn boot_checksum(kernel: &[u8], initramfs: Option<&[u8]>) -> String {
    let mut h = crate::util::digest::Hasher::sha256();
    h.update(kernel);
    if let Some(i) = initramfs {
        h.update(i);
    }
    h.finish_hex()
}

fn walk_commit(repo: &Repo, commit: &str) -> Result<Walk> {
    let c = repo.read_commit(commit)?;
    let mut w = Walk {
        dirs: Vec::new(),
        files: Vec::new(),
        metadata: vec![(commit.to_string(), ObjectType::Commit)],
    };
    if repo.has_object(commit, ObjectType::CommitMeta) {
        w.metadata
            .push((commit.to_string(), ObjectType::CommitMeta));
    }
    let mut stack = vec![(PathBuf::new(), c.root.0, c.root.1)];
    while let Some((path, tree, meta)) = stack.pop() {
        let dm = DirMeta::parse(&repo.read_object(&meta, ObjectType::DirMeta)?)
            .with_context(|| format!("parsing dirmeta {meta}"))?;
        w.metadata.push((tree.clone(), ObjectType::DirTree));
        w.metadata.push((meta.clone(), ObjectType::DirMeta));
        let t = repo.read_dirtree(&tree)?;
        for (name, csum) in t.files {
            w.files.push((path.join(name), csum));
        }
        for (name, st, sm) in t.dirs.into_iter().rev() {
            stack.push((path.join(name), st, sm));
        }
        w.dirs.push(DirEntry { path, meta: dm });
    }
    w.metadata.sort();
    w.metadata.dedup();
    Ok(w)
}

fn mkdirs(path: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))
}

fn set_owner(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .with_context(|| format!("setting the owner of {} to {uid}:{gid}", path.display()))
}

fn set_xattrs(path: &Path, xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
    for (name, value) in xattrs {
        let n: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(name);
        xattr::set(path, n, value).with_context(|| {
            format!(
                "setting xattr {} on {}",
                String::from_utf8_lossy(name),
                path.display()
            )
        })?;
    }
    Ok(())
}

fn zero_mtime(path: &Path) -> Result<()> {
    let t = filetime::FileTime::from_unix_time(0, 0);
    filetime::set_symlink_file_times(path, t, t)
        .with_context(|| format!("setting the times of {}", path.display()))
}

/// Write one content object of a bare repository at `dest`.
fn write_bare_object(dest: &Path, meta: &FileMeta, content: &[u8]) -> Result<()> {
    if let Some(dir) = dest.parent() {
        mkdirs(dir, 0o755)?;
    }
    if meta.is_symlink() {
        symlink(&meta.symlink, dest)
            .with_context(|| format!("creating symlink {}", dest.display()))?;
    } else {
        ensure!(
            meta.mode & libc::S_IFMT == libc::S_IFREG,
            "content object for {} is neither a regular file nor a symlink (mode {:o})",
            dest.display(),
            meta.mode
        );
        let mut f =
            fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
        f.write_all(content)
            .with_context(|| format!("writing {}", dest.display()))?;
        drop(f);
    }
    set_owner(dest, meta.uid, meta.gid)?;
    if !meta.is_symlink() {
        // After chown, which clears setuid/setgid.
        fs::set_permissions(dest, fs::Permissions::from_mode(meta.mode & 0o7777))
            .with_context(|| format!("setting the mode of {}", dest.display()))?;
    }
    set_xattrs(dest, &meta.xattrs)?;
    zero_mtime(dest)
}

/// Create a bare repository at `path` with the sysroot settings upstream sets.
fn init_bare_repo(path: &Path) -> Result<()> {
    for d in super::repo::REPO_DIRS {
        mkdirs(&path.join(d), 0o755)?;
    }
    crate::util::write_atomic(&path.join("config"), bare_config("none").as_bytes())
}

fn object_rel(checksum: &str, kind: ObjectType) -> PathBuf {
    let ext = match kind {
        ObjectType::File => "file",
        other => other.extension(),
    };
    PathBuf::from("objects")
        .join(&checksum[..2])
        .join(format!("{}.{ext}", &checksum[2..]))
}

/// Copy `src` (a directory of the deployment) to `dest`, as new files:
/// ostree's initial `/etc` from `/usr/etc`.
fn copy_tree(src: &Path, dest: &Path) -> Result<()> {
    let md = fs::symlink_metadata(src).with_context(|| format!("reading {}", src.display()))?;
    let ft = md.file_type();
    use std::os::unix::fs::MetadataExt;
    if ft.is_dir() {
        mkdirs(dest, 0o755)?;
        let mut entries: Vec<_> = fs::read_dir(src)
            .with_context(|| format!("reading {}", src.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", src.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            copy_tree(&e.path(), &dest.join(e.file_name()))?;
        }
    } else if ft.is_symlink() {
        let t = fs::read_link(src).with_context(|| format!("reading {}", src.display()))?;
        symlink(&t, dest).with_context(|| format!("creating {}", dest.display()))?;
    } else if ft.is_file() {
        fs::copy(src, dest)
            .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
    } else {
        bail!("{} is not a file, directory or symlink", src.display());
    }
    set_owner(dest, md.uid(), md.gid())?;
    if !ft.is_symlink() {
        fs::set_permissions(dest, fs::Permissions::from_mode(md.mode() & 0o7777))
            .with_context(|| format!("setting the mode of {}", dest.display()))?;
    }
    set_xattrs(dest, &super::repo::read_xattrs(src)?)?;
    Ok(())
}

/// The kernel the tree ships: (kver, vmlinuz path, initramfs path), both
/// under `usr/lib/modules/<kver>/` as rpm-ostree leaves them.
pub fn find_kernel(tree: &Path) -> Result<(String, PathBuf, Option<PathBuf>)> {
    let modules = tree.join("usr/lib/modules");
    let mut found = Vec::new();
    if let Ok(rd) = fs::read_dir(&modules) {
        for e in rd {
            let e = e.with_context(|| format!("reading {}", modules.display()))?;
            let k = e.path().join("vmlinuz");
            if k.is_file() {
                found.push((e.file_name().to_string_lossy().into_owned(), k));
            }
        }
    }
    found.sort();
    match found.len() {
        0 => bail!(
            "the commit has no kernel (no usr/lib/modules/<kver>/vmlinuz): it is not bootable, \
             so no disk image can be made from it"
        ),
        1 => {}
        _ => bail!(
            "the commit has {} kernels ({}); a bootable commit has exactly one",
            found.len(),
            found
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    let (kver, vmlinuz) = found.remove(0);
    let initramfs = vmlinuz.with_file_name("initramfs.img");
    let initramfs = initramfs.is_file().then_some(initramfs);
    Ok((kver, vmlinuz, initramfs))
}

fn os_release_title(deploy: &Path, version: Option<&str>) -> Result<String> {
    let p = ["usr/lib/os-release", "etc/os-release"]
        .iter()
        .map(|r| deploy.join(r))
        .find(|p| p.exists())
        .context("the deployment has no usr/lib/os-release or etc/os-release")?;
    let text = fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let mut vals = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            vals.insert(k.trim().to_string(), shell_unquote(v.trim()));
        }
    }
    let mut title = vals
        .get("PRETTY_NAME")
        .or_else(|| vals.get("ID"))
        .cloned()
        .with_context(|| format!("{} has no PRETTY_NAME or ID", p.display()))?;
    if let Some(v) = version
        && !v.is_empty()
        && !title.contains(v)
    {
        title.push(' ');
        title.push_str(v);
    }
    title.push_str(" (ostree:0)");
    Ok(title)
}

fn shell_unquote(v: &str) -> String {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        v[1..v.len() - 1].replace("\\\"", "\"")
    } else {
        v.to_string()
    }
}

/// Deploy `commit` of `repo` into `sysroot` (the root file system's future
/// contents) and `boot` (the boot file system's). Both directories must be
/// empty or missing.
pub fn deploy(
    repo: &Repo,
    commit: &str,
    sysroot: &Path,
    boot: &Path,
    opts: &DeployOptions,
) -> Result<Deployment> {
    ensure!(
        !opts.osname.is_empty()
            && opts
                .osname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
        "invalid osname {:?}: use letters, digits, '-', '_' and '.'",
        opts.osname
    );
    for d in [sysroot, boot] {
        if d.exists()
            && fs::read_dir(d)
                .with_context(|| format!("reading {}", d.display()))?
                .next()
                .is_some()
        {
            bail!(
                "{} is not empty; a deployment needs an empty directory",
                d.display()
            );
        }
        mkdirs(d, 0o755)?;
    }
    let os = &opts.osname;
    let walk = walk_commit(repo, commit)?;
    let commit_meta = repo.read_commit(commit)?;
    let version = commit_meta
        .metadata
        .get("version")
        .and_then(|v| v.as_str())
        .map(str::to_string);

    // The bare repository: metadata objects byte for byte, content objects
    // as real files with their owner, mode and xattrs (mtime 0, as ostree).
    let brepo = sysroot.join("ostree/repo");
    init_bare_repo(&brepo)?;
    for (csum, kind) in &walk.metadata {
        let data = repo.read_object(csum, *kind)?;
        let dest = brepo.join(object_rel(csum, *kind));
        mkdirs(dest.parent().expect("object dir"), 0o755)?;
        fs::write(&dest, &data).with_context(|| format!("writing {}", dest.display()))?;
    }
    let mut objects: Vec<&str> = walk.files.iter().map(|(_, c)| c.as_str()).collect();
    objects.sort_unstable();
    objects.dedup();
    objects.par_iter().try_for_each(|csum| -> Result<()> {
        let data = repo.read_object(csum, ObjectType::File)?;
        let (meta, content) =
            parse_filez(&data).with_context(|| format!("reading content object {csum}"))?;
        let actual = content_checksum(&meta, &content);
        ensure!(
            actual == *csum,
            "content object {csum} in {} is corrupt (its content hashes to {actual})",
            repo.path().display()
        );
        write_bare_object(
            &brepo.join(object_rel(csum, ObjectType::File)),
            &meta,
            &content,
        )
    })?;

    // The stateroot and the deployment, hardlinked to the objects.
    let stateroot = sysroot.join("ostree/deploy").join(os);
    mkdirs(&stateroot.join("var"), 0o755)?;
    for (d, mode) in [("var/tmp", 0o1777), ("var/lib", 0o755), ("var/log", 0o755)] {
        mkdirs(&stateroot.join(d), 0o755)?;
        fs::set_permissions(stateroot.join(d), fs::Permissions::from_mode(mode))?;
    }
    let deploy_rel = PathBuf::from(format!("ostree/deploy/{os}/deploy/{commit}.0"));
    let deploy = sysroot.join(&deploy_rel);
    for d in &walk.dirs {
        let p = deploy.join(&d.path);
        if d.path.as_os_str().is_empty() {
            mkdirs(&p, 0o755)?;
        } else {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&p)
                .with_context(|| format!("creating {}", p.display()))?;
        }
    }
    walk.files.par_iter().try_for_each(|(path, csum)| {
        let src = brepo.join(object_rel(csum, ObjectType::File));
        let dest = deploy.join(path);
        fs::hard_link(&src, &dest)
            .with_context(|| format!("linking {} to {}", dest.display(), src.display()))
    })?;
    for d in walk.dirs.iter().rev() {
        let p = deploy.join(&d.path);
        set_owner(&p, d.meta.uid, d.meta.gid)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(d.meta.mode & 0o7777))
            .with_context(|| format!("setting the mode of {}", p.display()))?;
        set_xattrs(&p, &d.meta.xattrs)?;
    }
    // ostree's first deployment: /etc is a fresh copy of /usr/etc.
    let usr_etc = deploy.join("usr/etc");
    if usr_etc.is_dir() {
        let etc = deploy.join("etc");
        if etc.exists() {
            bail!("commit {commit} has both /etc and /usr/etc; it cannot be deployed");
        }
        copy_tree(&usr_etc, &etc)?;
    }
    crate::util::write_atomic(
        &sysroot.join(format!("ostree/deploy/{os}/deploy/{commit}.0.origin")),
        opts.origin.as_bytes(),
    )?;
    let bootloader = sysroot_bootloader(&deploy);
    crate::util::write_atomic(&brepo.join("config"), bare_config(bootloader).as_bytes())?;

    // Kernel and initramfs into the boot directory.
    let (kver, vmlinuz, initramfs) = find_kernel(&deploy)?;
    let kdata = fs::read(&vmlinuz).with_context(|| format!("reading {}", vmlinuz.display()))?;
    let idata = initramfs
        .as_ref()
        .map(|p| fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let bootcsum = boot_checksum(&kdata, idata.as_deref());
    let bootcsumdir = format!("ostree/{os}-{bootcsum}");
    mkdirs(&boot.join(&bootcsumdir), 0o775)?;
    let linux = format!("/{bootcsumdir}/vmlinuz-{kver}");
    fs::write(boot.join(&linux[1..]), &kdata)
        .with_context(|| format!("writing {linux} in {}", boot.display()))?;
    let initrd = match &idata {
        Some(i) => {
            let p = format!("/{bootcsumdir}/initramfs-{kver}.img");
            fs::write(boot.join(&p[1..]), i)
                .with_context(|| format!("writing {p} in {}", boot.display()))?;
            Some(p)
        }
        None => None,
    };

    // The boot links: /ostree/boot.1 -> boot.1.1, and the deployment link.
    let bootlink_dir = sysroot.join(format!(
        "ostree/boot.{BOOTVERSION}.{SUBBOOTVERSION}/{os}/{bootcsum}"
    ));
    mkdirs(&bootlink_dir, 0o755)?;
    symlink(
        format!("../../../deploy/{os}/deploy/{commit}.0"),
        bootlink_dir.join("0"),
    )
    .context("creating the deployment's boot link")?;
    symlink(
        format!("boot.{BOOTVERSION}.{SUBBOOTVERSION}"),
        sysroot.join(format!("ostree/boot.{BOOTVERSION}")),
    )
    .context("creating /ostree/boot.1")?;
    // The physical root's top directories, as `ostree admin init-fs` makes
    // them: a deployment's /tmp is a link to sysroot/tmp.
    for d in ["boot", "dev", "home", "proc", "run", "sys"] {
        mkdirs(&sysroot.join(d), 0o755)?;
    }
    let tmp = sysroot.join("tmp");
    mkdirs(&tmp, 0o1777)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))
        .with_context(|| format!("setting the mode of {}", tmp.display()))?;

    // The BLS entry.
    let ostree_karg = format!("ostree=/ostree/boot.{BOOTVERSION}/{os}/{bootcsum}/0");
    let mut options: Vec<String> = opts.kargs.clone();
    options.push(ostree_karg.clone());
    let bls = BlsEntry {
        title: os_release_title(&deploy, version.as_deref())?,
        version: "1".to_string(),
        options: options.join(" "),
        linux,
        initrd,
    };
    let entries = boot.join(format!("loader.{BOOTVERSION}/entries"));
    mkdirs(&entries, 0o755)?;
    let bls_path = PathBuf::from(format!("loader.{BOOTVERSION}/entries/ostree-1-{os}.conf"));
    fs::write(boot.join(&bls_path), bls.render())
        .with_context(|| format!("writing {}", bls_path.display()))?;
    symlink(format!("loader.{BOOTVERSION}"), boot.join("loader"))
        .context("creating the boot loader link")?;

    Ok(Deployment {
        commit: commit.to_string(),
        osname: os.clone(),
        kver,
        bootcsum,
        deploy_path: deploy_rel,
        ostree_karg,
        bls,
        bls_path,
        objects: objects.len(),
        bootloader,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bls_round_trips() {
        let e = BlsEntry {
            title: "cosa sample OS 1.20260101.dev.0 (ostree:0)".into(),
            version: "1".into(),
            options: "rw ignition.platform.id=qemu ostree=/ostree/boot.1/x/ab/0".into(),
            linux: "/ostree/x-ab/vmlinuz-6.1".into(),
            initrd: Some("/ostree/x-ab/initramfs-6.1.img".into()),
        };
        assert_eq!(BlsEntry::parse(&e.render()).unwrap(), e);
        assert!(BlsEntry::parse("title x\n").is_err());
    }

    #[test]
    fn the_grub_hook_in_the_tree_chooses_the_grub2_backend() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(sysroot_bootloader(t.path()), "none");
        let hook = t.path().join(GRUB2_HOOK);
        fs::create_dir_all(hook.parent().unwrap()).unwrap();
        // A link to ostree-boot's script, dangling outside the deployment.
        symlink("/usr/libexec/libostree/grub2-15_ostree", &hook).unwrap();
        assert_eq!(sysroot_bootloader(t.path()), "grub2");
        assert!(bare_config("grub2").contains("[sysroot]\nbootloader=grub2\n"));
    }

    #[test]
    fn unquotes_os_release_values() {
        assert_eq!(shell_unquote("\"a b\""), "a b");
        assert_eq!(shell_unquote("'1.2'"), "1.2");
        assert_eq!(shell_unquote("plain"), "plain");
    }
}

/// How [`checkout_layer`] treats a path the destination already has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerConflict {
    /// Refuse (rpm-ostree's `ostree-layers`).
    Error,
    /// Replace it (`ostree-override-layers`).
    Override,
}

/// Check `commit` out over the directory `dest`, as rpm-ostree applies
/// `ostree-layers`: directories merge (created with the commit's mode and
/// owner when missing), files and symlinks are written with their owner,
/// mode and xattrs; a file or symlink `dest` already has is an error, or
/// replaced with [`LayerConflict::Override`]. A parent that is a symlink in
/// `dest` is refused, so a layer never writes outside it. Returns the
/// number of files written.
pub fn checkout_layer(
    repo: &Repo,
    commit: &str,
    dest: &Path,
    conflict: LayerConflict,
) -> Result<u64> {
    let w = walk_commit(repo, commit)?;
    for d in &w.dirs {
        let p = dest.join(&d.path);
        match fs::symlink_metadata(&p) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => bail!(
                "layer commit {commit}: /{} is a directory in the layer but not in the tree",
                d.path.display()
            ),
            Err(_) => {
                mkdirs(&p, d.meta.mode & 0o7777)?;
                set_owner(&p, d.meta.uid, d.meta.gid)?;
                fs::set_permissions(&p, fs::Permissions::from_mode(d.meta.mode & 0o7777))
                    .with_context(|| format!("setting the mode of {}", p.display()))?;
                set_xattrs(&p, &d.meta.xattrs)?;
            }
        }
    }
    let mut n = 0;
    for (path, csum) in &w.files {
        let p = dest.join(path);
        if fs::symlink_metadata(&p).is_ok() {
            match conflict {
                LayerConflict::Error => bail!(
                    "layer commit {commit}: /{} is already in the tree (use ostree-override-layers to replace files)",
                    path.display()
                ),
                LayerConflict::Override => {
                    if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                        bail!(
                            "layer commit {commit}: /{} is a directory in the tree and a file in the layer",
                            path.display()
                        );
                    }
                    fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
                }
            }
        }
        let data = repo.read_object(csum, ObjectType::File)?;
        let (meta, content) =
            parse_filez(&data).with_context(|| format!("reading content object {csum}"))?;
        write_bare_object(&p, &meta, &content)
            .with_context(|| format!("checking out /{} of layer {commit}", path.display()))?;
        n += 1;
    }
    Ok(n)
}
